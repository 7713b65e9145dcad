"""What names Figure 4's pieces: the algorithms, the penalties P trained together in one run
(`env_values`), and how one such batched run splits into a curve per P.

Both the experiment (fig4, which trains and draws) and the claims checked against its runs
(fig4_claims) read these; keeping them here, below both, means neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix")
PENALTIES = (0.5, 1.0, 1.5)
SETTINGS_DIRS = ("n2", "n4")
# Settings that change how a run prints, not its results (as qtran.run.config_hash).
COSMETIC = ("progress", "tensorboard")


def result_overrides(overrides: list[str]) -> dict[str, str]:
    """The overrides that decide results, as {key: value} (the last of a repeated key wins)."""
    found = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() not in COSMETIC:
            found[key.strip()] = value
    return found


def piece_name(n: str, algo: str, penalties=PENALTIES) -> str:
    """<n>/<algo> for all three penalties, <n>/<algo>-p1.0-1.5 for some."""
    if tuple(penalties) == PENALTIES:
        return f"{n}/{algo}"
    return f"{n}/{algo}-p" + "-".join(str(p) for p in penalties)


def split_piece(name: str) -> tuple[str, str]:
    """(n, algo) of a piece name."""
    n, _, rest = name.partition("/")
    return n, rest.split("-p", 1)[0]


def piece_penalties(name: str) -> tuple[float, ...]:
    """The penalties a piece name says it trains (read from its name, not its files)."""
    _, _, rest = name.partition("/")
    if "-p" not in rest:
        return PENALTIES
    return tuple(float(v) for v in rest.split("-p", 1)[1].split("-"))


def piece_dirs(out: Path) -> list[str]:
    """Names of the piece directories present under out (finished or not)."""
    out = Path(out)
    return [f"{n}/{d.name}" for n in SETTINGS_DIRS if (out / n).is_dir() for d in sorted((out / n).iterdir())
            if d.is_dir() and split_piece(f"{n}/{d.name}")[1] in ALGOS]


def split_by_value(summary: dict) -> dict[float, dict]:
    """One batched run's curves, split per environment value: {P: {"steps", "returns"[E, seeds]}}."""
    values = np.asarray(summary["env_values"])
    returns = np.asarray(summary["eval_curve"]["returns"])
    return {float(v): {"steps": summary["eval_curve"]["steps"], "returns": returns[:, values == v]}
            for v in dict.fromkeys(values.tolist())}
