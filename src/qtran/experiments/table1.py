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

from qtran.errors import UserError

from qtran.experiments.common import load_summaries, prepare_experiment, run_jobs, with_earlier, write_manifest
from qtran.results import write_json

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix", "iql")
SETTINGS = ["env=matrix", "env.payoff=table1", "seeds=10", "steps=20000",
            "eps.start=1", "eps.end=1"]
ALGO_NAMES = {"iql": "IQL"}
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
    out = ["Table 1 (Son et al., 2019): 3x3 one-step game, eps = 1, mean over seeds; "
           "paper's value in parentheses. Rows: agent 1's action, columns: agent 2's."]
    for algo, summary in summaries.items():
        out += [""] + algorithm_block(algo, summary, ref["actions"], ref.get(PAPER_KEY.get(algo, ""), None))
    return "\n".join(out)


def run_report(summary: dict, run_dir: str) -> str:
    """The learned tables of one training run on any single-state game (a custom payoff
    included), mean over its seeds, in Table 1's layout without the paper's values."""
    if "tables" not in summary:
        raise UserError(f"{run_dir}: {summary.get('env')} is not a single-state game; only those have "
                        "learned tables to print")
    n_actions = len(summary["tables"]["q_i"][0][0])
    names = [chr(ord("A") + a) for a in range(n_actions)] if n_actions <= 26 else [str(a) for a in range(n_actions)]
    head = (f"{summary['algo']} on {summary['env']} ({run_dir}): learned tables, mean over "
            f"{len(summary['seeds'])} seeds; actions named {names[0]}..{names[-1]} in index order.")
    return "\n".join([head, ""] + algorithm_block(summary["algo"], summary, names, None))


def algorithm_block(algo: str, summary: dict, names: list[str], paper: dict | None) -> list[str]:
    """One algorithm's lines: greedy actions, Q_i, and for two agents Q_jt (and QTRAN's Q'_jt
    and their difference) as matrices; with `paper`, the paper's values in parentheses."""
    tables = {k: np.mean(np.asarray(v), axis=0) for k, v in summary["tables"].items()}
    n_seeds = len(summary["seeds"])
    greedy = " ".join("".join(names[a] for a in g) for g in summary["greedy_joint_actions"])
    where = f"({names[0]}, {names[0]})" if paper is not None else "the optimum"
    optimum = f"{where} in {optimal_count(summary)}/{n_seeds} seeds; " if "optimal_joint_actions" in summary else ""
    out = [f"{algo}: greedy joint action is {optimum}greedy per seed: {greedy}"]
    out += format_vectors(tables["q_i"], paper, names)
    if "q_jt" in tables and tables["q_jt"].ndim == 2:
        out += format_matrix("Q_jt", tables["q_jt"], paper and paper.get("q_jt"), names)
        if algo.startswith("qtran"):
            out += format_matrix("Q'_jt = sum_i Q_i", tables["q_prime_jt"], paper and paper.get("q_prime_jt"), names)
            out += format_matrix("Q'_jt - Q_jt", tables["q_prime_minus_q_jt"],
                                 paper and paper.get("q_prime_minus_q_jt"), names)
    elif "q_jt" in tables:
        out.append(f"  (Q_jt has {tables['q_jt'].ndim} axes, one per agent: summary.json's tables.q_jt)")
    else:
        out.append(f"  ({ALGO_NAMES.get(algo, algo)} has no joint action-value function)")
    if "v" in tables:
        note = " (the paper printed Q'_jt - Q_jt for V = 0)" if paper is not None else ""
        out.append(f"  V_jt = {float(tables['v']):.2f}{note}")
    if "igm" in summary:
        holds = sum(r["igm"] for r in summary["igm"])
        out.append(f"  IGM holds in {holds}/{n_seeds} seeds: the greedy joint action of the Q_i also maximises the "
                   "learned Q_jt (the factorisation is consistent; whether that action is optimal is the count above)")
    out.append(f"  time: {startup_text(summary)}, train {summary['train_seconds']:.1f} s")
    return out


def startup_text(summary: dict) -> str:
    """The start-up time as the run's "compiled in" line said it, and the part of it spent
    compiling the training program (summary.json's compile_seconds)."""
    compile_text = f"the training program alone {summary['compile_seconds']:.1f} s"
    if "startup_seconds" not in summary:  # a run from before startup_seconds was recorded
        return f"compiling {compile_text}"
    return f"compiled in {summary['startup_seconds']:.1f} s ({compile_text})"
