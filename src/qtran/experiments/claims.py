"""What every claims table shares: verdicts, rows, the statistics behind the rules, Markdown.

A figure's claims module (fig3_claims, fig4_claims) turns learning curves
{"steps": [E], "returns": [E, seeds]} into `Row`s with these helpers; `report(out)` picks the
module from the directory's experiment.json (`qtran claims DIR`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtran.errors import UserError

SHOWS, DOES_NOT_SHOW, NOT_RUN = "shows", "does not show", "not run"
ALPHA = 0.05  # one-sided Welch t-test level for "ends above"


@dataclass(frozen=True)
class Row:
    number: str
    claim: str
    panels: str
    numbers: str
    budget: str
    verdict: str


def verdict(ok: bool) -> str:
    return SHOWS if ok else DOES_NOT_SHOW


def finals(curve: dict) -> np.ndarray:
    """Final reward per seed: the last evaluation of a curve."""
    return np.asarray(curve["returns"], dtype=float)[-1]


def interval(values) -> tuple[float, float]:
    """(mean, half-width) of the 95% Student-t interval over seeds; NaN half-width for one seed."""
    from qtran.plots import mean_ci

    mean, half = mean_ci(np.asarray(values, dtype=float))
    return float(mean), float(half)


def welch_p(a, b) -> float:
    """One-sided Welch t-test p-value of mean(a) > mean(b); NaN with fewer than 2 seeds."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if a.var() == 0 and b.var() == 0:  # the t statistic is undefined; the order is certain
        return 0.0 if a.mean() > b.mean() else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def above(a, b) -> bool:
    return welch_p(a, b) < ALPHA  # False for NaN


def first_step(curve: dict, threshold: float) -> int | None:
    """The first evaluation step whose mean over seeds is > threshold (None: never)."""
    means = np.asarray(curve["returns"], dtype=float).mean(axis=1)
    hits = np.flatnonzero(means > threshold)
    return None if len(hits) == 0 else int(curve["steps"][hits[0]])


def earlier(step: int | None, others: list[int | None]) -> bool:
    """`step` is reached, and strictly before each of `others` (never reached = later than any)."""
    return step is not None and all(o is None or step < o for o in others)


def describe(values) -> str:
    mean, half = interval(values)
    half_text = "n/a" if math.isnan(half) else f"{half:.2f}"
    return f"{mean:.2f} +- {half_text} (n={len(values)})"


def step_text(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"


def percent(fraction: float) -> str:
    """0.02 -> '2%', 0.3333 -> '33%', 0.0000133 -> '0.0013%': tiny budgets stay visible."""
    value = 100 * fraction
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def rows_markdown(rows: list[Row]) -> list[str]:
    """The table part of a claims report, one line per row."""
    lines = ["| # | claim | panels | our numbers (mean +- half-width, n seeds) | budget | verdict |",
             "|---|---|---|---|---|---|"]
    return lines + [f"| {r.number} | {cell(r.claim)} | {r.panels} | {cell(r.numbers)} | {cell(r.budget)} | "
                    f"**{r.verdict}** |" for r in rows]


def checked_manifest(out: Path, experiment: str) -> dict | None:
    """experiment.json of a directory that should hold `experiment` (None: it has none);
    UserError for what is not a directory or holds another experiment."""
    from qtran.experiments.common import read_manifest

    if not out.is_dir():
        raise UserError(f"not a directory: {out}")
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("experiment") != experiment:
        raise UserError(f"{out} holds experiment {manifest.get('experiment')!r}, not {experiment}")
    return manifest
