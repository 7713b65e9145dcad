"""Every factorisation on every single-state game we ship, same trainer, seeds and budgets.

Games: the matrix games (Table 1, climbing, penalty, climb21) at Table 1's budget (10 seeds,
20,000 steps, full exploration) and MGS with every s_i equal at Figure 3c's (`fig3`). No
method gets settings of its own beyond those its paper gives (the `qplex.*` and `wqmix.*`
defaults). Runs land in <out>/<game>/<algo>/; the table (compare.md, compare.json) and the
MGS learning curves (mgs.png/.svg) in <out>. Running again with the same out= trains only the
runs not finished yet; a finished run of other settings there is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtran.errors import UserError
from qtran.experiments import fig3, table1
from qtran.experiments.common import (
    load_summaries, prepare_experiment, read_manifest, run_jobs, with_earlier, write_manifest,
)
from qtran.plots import ALGO_LABELS, INTERVAL_METHOD, mean_ci, plot_curves
from qtran.results import write_json

ALGOS = ("iql", "vdn", "qmix", "ow-qmix", "cw-qmix", "qplex", "qtran-base", "qtran-alt")
MATRIX_GAMES = ("table1", "climbing", "penalty", "climb21")
GAMES = {g: [s for s in table1.SETTINGS if not s.startswith("env.payoff=")] + [f"env.payoff={g}"]
         for g in MATRIX_GAMES}
# Figure 3c as the README shows it: the default single draw of s (env.s_seed=2), a single-state
# game. Named here, not inherited through fig3.COMMON, so a change of Figure 3's designs cannot
# silently turn this row into another game (it once did: s re-drawn every episode; NOTES.md).
GAMES["mgs"] = fig3.COMMON + fig3.DESIGNS["single"] + fig3.PANELS["fig3c"][1]
TITLES = {"table1": "Table 1 game (3x3)", "climbing": "climbing game (3x3)", "penalty": "penalty game (3x3)",
          "climb21": "climb21 (21x21)", "mgs": "MGS, all s_i equal (Figure 3c)"}


def jobs(overrides: list[str], games=tuple(GAMES), algos=ALGOS) -> dict[str, list[str]]:
    return {f"{g}/{a}": GAMES[g] + list(overrides) + [f"algo={a}"] for g in games for a in algos}


def run(overrides: list[str], out: str = "runs/compare", games=tuple(GAMES), algos=ALGOS,
        workers: int | None = None) -> list[Path]:
    out_dir, configs = prepare_experiment(out, "compare", jobs(overrides, games, algos))
    run_jobs(configs, workers, label="compare: ")
    write_manifest(out_dir, "compare", games=with_earlier(out_dir, "games", games, GAMES),
                   algos=with_earlier(out_dir, "algos", algos, ALGOS), overrides=list(overrides))
    return draw(out_dir)


def optimum_hits(summary: dict, game: str) -> list[bool]:
    """Per seed: whether the greedy joint action is optimal. Matrix games: it is one of the
    payoff's argmax cells. MGS: the final greedy return lies nearer the optimum than the
    pitfall (above their midpoint), i.e. the agents found the optimum's hill."""
    if game in MATRIX_GAMES:
        optima = {tuple(u) for u in summary["optimal_joint_actions"]}
        return [tuple(g) in optima for g in summary["greedy_joint_actions"]]
    ref = summary["env_reference"]
    threshold = (ref["optimum"] + ref["pitfall"]) / 2 if ref.get("pitfall") is not None else ref["optimum"] * 0.99
    return [r > threshold for r in summary["final_eval_return"]]


def value_at_optimum(summary: dict) -> float | None:
    """Mean over seeds of the learned joint value (Q_jt, or Q_tot) at the payoff's optimum
    (the best of the optimal cells where there are several); None without a joint value."""
    q_jt = summary.get("tables", {}).get("q_jt")
    if q_jt is None:
        return None
    q_jt = np.asarray(q_jt)
    cells = [tuple(u) for u in summary["optimal_joint_actions"]]
    return float(np.mean([max(q[c] for c in cells) for q in q_jt]))


def row(summary: dict, game: str) -> dict:
    returns = np.asarray(summary["final_eval_return"], dtype=float)
    mean, half = mean_ci(returns)
    return {"optimal_seeds": int(sum(optimum_hits(summary, game))), "seeds": len(returns),
            "final_return_mean": float(mean), "final_return_ci95": float(half),
            "value_at_optimum": value_at_optimum(summary) if game in MATRIX_GAMES else None,
            "train_seconds": float(summary["train_seconds"]), "compile_seconds": float(summary["compile_seconds"])}


def table(rows: dict[str, dict[str, dict]], references: dict[str, float]) -> str:
    lines = ["Every algorithm on every single-state game: seeds whose greedy joint action is optimal, "
             f"final greedy return (mean +- half-width of the {INTERVAL_METHOD}), and the learned "
             "Q_jt / Q_tot at the optimum (mean over seeds; matrix games).", ""]
    for game, by_algo in rows.items():
        lines += [f"### {TITLES.get(game, game)}: optimum {references[game]:.4g}", "",
                  "| algorithm | seeds at optimum | final greedy return | Q_jt at optimum |", "|---|---|---|---|"]
        for algo, r in by_algo.items():
            value = "-" if r["value_at_optimum"] is None else f"{r['value_at_optimum']:.2f}"
            lines.append(f"| {ALGO_LABELS.get(algo, algo)} | {r['optimal_seeds']}/{r['seeds']} | "
                         f"{r['final_return_mean']:.2f} +- {r['final_return_ci95']:.2f} | {value} |")
        lines.append("")
    return "\n".join(lines)


def draw(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """The table (compare.md, compare.json) and the MGS curves from the run files under `out`,
    into `dest` (default `out`)."""
    out = Path(out)
    to = Path(dest) if dest is not None else out
    manifest = read_manifest(out) or {}
    games, algos = manifest.get("games", list(GAMES)), manifest.get("algos", list(ALGOS))
    if not all(isinstance(x, list) and all(isinstance(n, str) for n in x) for x in (games, algos)):
        raise UserError(f"{out / 'experiment.json'}: games and algos must be lists of names")
    summaries = load_summaries(out, [f"{g}/{a}" for g in games for a in algos])
    rows, references = {}, {}
    for g in games:
        found = {a: summaries[f"{g}/{a}"] for a in algos if f"{g}/{a}" in summaries}
        try:
            if found:
                rows[g] = {a: row(s, g) for a, s in found.items()}
                references[g] = float(next(iter(found.values()))["env_reference"]["optimum"])
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise UserError(f"{out / g}: a run's summary.json lacks what the comparison reads "
                            f"({type(err).__name__}: {err})") from None
    to.mkdir(parents=True, exist_ok=True)
    (to / "compare.md").write_text(table(rows, references))
    write_json(to / "compare.json", rows)
    written = [to / "compare.md", to / "compare.json"]
    if "mgs" in rows:
        ref = summaries[f"mgs/{next(iter(rows['mgs']))}"]["env_reference"]
        refs = {"global optimum": ref["optimum"]}
        if ref.get("pitfall") is not None:
            refs["pitfall (local optimum)"] = ref["pitfall"]
        curves = {a: summaries[f"mgs/{a}"]["eval_curve"] for a in rows["mgs"]}
        written += plot_curves(curves, to / "mgs", TITLES["mgs"],
                    references=refs, caption="Evaluation: greedy joint action of every agent from its own Q_i.",
                    missing=[a for a in algos if a not in rows["mgs"]])
    return written
