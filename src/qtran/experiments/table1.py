"""The paper's Table 1: the 3x3 one-step game, full exploration, 20,000 steps, 10 seeds.

Every algorithm trains its seeds as one vmapped batch into <out>/<algo>/; the report prints
the learned tables (mean over seeds) beside the values printed in the paper, and how many
seeds' greedy joint action is the optimum (A, A).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from qtran.experiments.common import load_summaries, prepare_experiment, run_jobs, with_earlier, write_manifest
from qtran.results import write_json

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix", "iql")
SETTINGS = ["env=matrix", "env.payoff=table1", "seeds=10", "steps=20000",
            "eps.start=1", "eps.end=1"]
# Which of the paper's columns each algorithm is printed beside (the paper shows one QTRAN).
PAPER_KEY = {"qtran-base": "qtran", "qtran-alt": "qtran", "vdn": "vdn", "qmix": "qmix"}


def paper_reference() -> dict:
    """The paper's printed Table 1 values, shipped as package data."""
    return json.loads(resources.files("qtran.data").joinpath("table1.json").read_text())


def run(overrides: list[str], out: str = "runs/table1", algos=ALGOS, workers: int | None = None) -> dict[str, dict]:
    """Train every algorithm and return {algo: summary}; overrides apply to all of them."""
    out_dir, configs = prepare_experiment(out, "table1", {a: SETTINGS + list(overrides) + [f"algo={a}"] for a in algos})
    run_jobs(configs, workers, label="Table 1: ")
    algos = with_earlier(out_dir, "algos", algos, ALGOS)
    write_manifest(out_dir, "table1", algos=algos)
    summaries = load_summaries(out_dir, algos)
    (out_dir / "report.txt").write_text(report(summaries))
    write_json(out_dir / "table1.json", {a: _condensed(s) for a, s in summaries.items()})
    return summaries


def load(out: str) -> dict[str, dict]:
    """Summaries of an earlier `reproduce table1` run, read from its run directories."""
    return load_summaries(Path(out), ALGOS)


def _condensed(summary: dict) -> dict:
    tables = summary["tables"]
    return {
        "seeds": summary["seeds"],
        "greedy_joint_actions": summary["greedy_joint_actions"],
        "optimal_seeds": optimal_count(summary),
        "mean": {k: np.mean(np.asarray(v), axis=0) for k, v in tables.items()},
    }


def optimal_count(summary: dict) -> int:
    optima = {tuple(u) for u in summary["optimal_joint_actions"]}
    return sum(tuple(g) in optima for g in summary["greedy_joint_actions"])


def _cell(value: float, paper: float | None) -> str:
    return f"{value:7.2f}" + (f" ({paper:6.2f})" if paper is not None else "")


def format_matrix(title: str, ours: np.ndarray, paper, names: list[str]) -> list[str]:
    width = 16 if paper is not None else 8
    lines = [f"  {title}", "    " + "".join(f"{n:>{width}}" for n in names)]
    for r, row in enumerate(ours):
        cells = [_cell(v, None if paper is None else paper[r][c]) for c, v in enumerate(row)]
        lines.append(f"    {names[r]:<3}" + "".join(f"{c:>{width}}" for c in cells))
    return lines


def format_vectors(q_i: np.ndarray, paper: dict | None, names: list[str]) -> list[str]:
    width = 16 if paper is not None else 8
    lines = ["    " + "".join(f"{n:>{width}}" for n in names)]
    for i, row in enumerate(q_i):
        ref = None if paper is None else paper.get(f"q{i + 1}")
        cells = [_cell(v, None if ref is None else ref[c]) for c, v in enumerate(row)]
        lines.append(f"  Q_{i + 1}" + "".join(f"{c:>{width}}" for c in cells))
    return lines


def report(summaries: dict[str, dict]) -> str:
    ref = paper_reference()
    names = ref["actions"]
    out = ["Table 1 (Son et al., 2019): 3x3 one-step game, eps = 1, mean over seeds; "
           "paper's value in parentheses. Rows: agent 1's action, columns: agent 2's."]
    for algo, summary in summaries.items():
        tables = {k: np.mean(np.asarray(v), axis=0) for k, v in summary["tables"].items()}
        paper = ref.get(PAPER_KEY.get(algo, ""), None)
        n_seeds = len(summary["seeds"])
        out += ["", f"{algo}: greedy joint action is (A, A) in {optimal_count(summary)}/{n_seeds} seeds"
                f"; greedy per seed: {' '.join(''.join(names[a] for a in g) for g in summary['greedy_joint_actions'])}"]
        out += format_vectors(tables["q_i"], paper, names)
        if "q_jt" in tables:
            out += format_matrix("Q_jt", tables["q_jt"], paper and paper.get("q_jt"), names)
        else:
            out.append("  (IQL has no joint action-value function)")
        if algo.startswith("qtran"):
            out += format_matrix("Q'_jt = sum_i Q_i", tables["q_prime_jt"], paper.get("q_prime_jt"), names)
            out += format_matrix("Q'_jt - Q_jt", tables["q_prime_minus_q_jt"],
                                 paper.get("q_prime_minus_q_jt"), names)
        if "v" in tables:
            out.append(f"  V_jt = {float(tables['v']):.2f} (the paper printed Q'_jt - Q_jt for V = 0)")
        if "igm" in summary:
            holds = sum(r["igm"] for r in summary["igm"])
            out.append(f"  IGM (greedy joint action maximises its own learned Q_jt): {holds}/{n_seeds} seeds")
        out.append(f"  time: compile {summary['compile_seconds']:.1f} s, train {summary['train_seconds']:.1f} s")
    return "\n".join(out)
