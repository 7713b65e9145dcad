"""The paper's Figure 2: Q_jt and Q'_jt of QTRAN-base and QTRAN-alt on a 21-action game.

The paper's 21x21 payoff was never published; we use our documented `climb21` preset (see
`qtran.envs.matrix.climb21`): a narrow optimum of 10 at (15, 15) fenced by miscoordination
penalties, and a broad hill of 6 around (5, 5). Full exploration, as for Table 1. The figure
shows, at four points of training, Q_jt and Q'_jt = sum_i Q_i for both variants on one
shared colour scale, next to the payoff.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtran.experiments.common import (
    load_summaries, prepare_experiment, read_manifest, run_jobs, with_earlier, write_manifest,
)
from qtran.plots import plot_heatmaps

ALGOS = ("qtran-base", "qtran-alt")
SETTINGS = ["env=matrix", "env.payoff=climb21", "seeds=5", "steps=20000", "eps.start=1", "eps.end=1",
            "eval.interval=1000"]
LABELS = {"qtran-base": "base", "qtran-alt": "alt"}


def run(overrides: list[str], out: str = "runs/fig2", algos=ALGOS, workers: int | None = None) -> dict[str, dict]:
    out_dir, configs = prepare_experiment(out, "fig2", {a: SETTINGS + list(overrides) + [f"algo={a}"] for a in algos})
    summaries = run_jobs(configs, workers, label="Figure 2: ")
    write_manifest(out_dir, "fig2", algos=with_earlier(out_dir, "algos", algos, ALGOS), overrides=list(overrides))
    draw(out_dir)
    return summaries


def snapshot_indices(steps: np.ndarray, count: int = 4) -> list[int]:
    """Evaluations nearest to 1/count, 2/count, ..., 1 of the training budget."""
    targets = [steps[-1] * (k + 1) / count for k in range(count)]
    return [int(np.argmin(np.abs(steps - t))) for t in targets]


def summary_lines(summaries: dict[str, dict]) -> list[str]:
    lines = []
    for algo, s in summaries.items():
        optima = {tuple(u) for u in s["optimal_joint_actions"]}
        hits = sum(tuple(g) in optima for g in s["greedy_joint_actions"])
        greedy = " ".join(f"({a},{b})" for a, b in s["greedy_joint_actions"])
        lines.append(f"{algo}: greedy joint action is the optimum in {hits}/{len(s['seeds'])} seeds; greedy: {greedy}")
    return lines


def draw(out: str | Path, seed_index: int = 0, dest: str | Path | None = None) -> list[Path]:
    """The figure and summary.txt from the run files under `out`, into `dest` (default `out`)."""
    out = Path(out)
    to = Path(dest) if dest is not None else out
    manifest = read_manifest(out) or {}
    summaries = load_summaries(out, manifest.get("algos", ALGOS))
    rows = []
    payoff = np.asarray(next(iter(summaries.values()))["payoff"])
    for algo in summaries:
        with np.load(out / algo / "tables.npz", allow_pickle=False) as data:
            steps, q_jt, q_prime = data["steps"], data["q_jt"], data["q_prime_jt"]
        picks = snapshot_indices(steps)
        label = LABELS.get(algo, algo)
        rows.append([(f"{label}: Q_jt, step {steps[e]}", q_jt[e, seed_index]) for e in picks])
        rows.append([(f"{label}: Q'_jt, step {steps[e]}", q_prime[e, seed_index]) for e in picks])
    rows.insert(0, [("payoff (climb21)", payoff)])
    seed = next(iter(summaries.values()))["seeds"][seed_index]
    lines = summary_lines(summaries)
    to.mkdir(parents=True, exist_ok=True)
    (to / "summary.txt").write_text("\n".join(lines) + "\n")
    caption = (f"Seed {seed}; full exploration. " + " ".join(lines))
    return plot_heatmaps(rows, to / "fig2", "Figure 2: QTRAN-base and QTRAN-alt on the 21-action game",
                         caption=caption) + [to / "summary.txt"]
