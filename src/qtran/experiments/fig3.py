"""The paper's Figure 3: Gaussian squeeze (GS) and multi-domain GS (MGS).

Panels (the paper's Figure 3 and section 4.1): 3a GS with epsilon annealed, 3b GS with full
exploration, 3c MGS with every s_i equal. The paper gives each agent its s_i "a priori"; three
designs read that differently (`design=`, docs/figure3.md):
  single (default): s drawn once from env.s_seed=2 and shared by every run (a single-state game);
  per_run: each run draws its own s from its seed and keeps it (env.s_draw=per_run);
  per_episode: s re-drawn every episode, as the released code does, at a longer budget.
Budgets are the released code's: 10,000 steps, replay of 10,000 episodes, batch 32, one update
per step, 320 random warm-up steps, a target copy every 3,000 updates, epsilon 1.0 -> 0.1 over
45% of training (3a, 3c); per_episode trains PER_EPISODE_STEPS steps instead.
Runs land in <out>/<panel>/<algo>/; figures, the final-reward table, the claims table
(claims.md) and a marl-eval export land in <out>.
"""

from __future__ import annotations

from pathlib import Path

from qtran.experiments.common import (
    comma_choices, final_reward_table, load_summaries, prepare_experiment, read_manifest, run_jobs, with_earlier,
    write_manifest,
)
from qtran.experiments.fig3_layout import ALGOS, DESIGN_TEXT, PANELS
from qtran.errors import UserError
from qtran.plots import plot_curves
from qtran.results import marl_eval_export

COMMON = ["env=gaussian_squeeze", "env.setting=paper", "env.obs=all", "seeds=10",
          "steps=10000", "buffer_size=10000", "target_update_interval=3000", "warmup_steps=320",
          "eval.interval=500"]
# The per-episode design's budget: where its 3c curves had flattened in 100,000-step probes
# (docs/figure3.md says how it was chosen), with an evaluation every 2,500 steps.
PER_EPISODE_STEPS = 100_000
DESIGNS = {
    # env.s_seed=2: s is drawn once (from seed 2) and kept, one reading of "s_i given a
    # priori"; for 3c that gives s = 0.128 for every agent, so both x = 8 and the pitfall x = 5
    # are reachable.
    "single": ["env.s_seed=2"],
    # each run its own s, from its seed: no hand-picked value shared by every seed
    "per_run": ["env.s_seed=null", "env.s_draw=per_run"],
    # the released code: a fresh s every episode
    "per_episode": ["env.s_seed=null", "env.s_draw=per_episode", f"steps={PER_EPISODE_STEPS}",
                    f"eval.interval={PER_EPISODE_STEPS // 40}"],
}


def parse_options(overrides: list[str]) -> tuple[str, tuple[str, ...], tuple[str, ...], list[str]]:
    """Take design=, panels= and algos= out of the overrides: (design, panels, algos, the rest).
    Defaults: the single draw, every panel, every algorithm."""
    design, panels, algos, rest = "single", tuple(PANELS), ALGOS, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "design":
            if value not in DESIGNS:
                raise UserError(f"design={value!r} is unknown; choose one of {', '.join(DESIGNS)}")
            design = value
        elif key.strip() == "panels":
            panels = comma_choices("panels", value, {p: p for p in PANELS} | {p[3:]: p for p in PANELS})
        elif key.strip() == "algos":
            algos = comma_choices("algos", value, {a: a for a in ALGOS})
        else:
            rest.append(item)
    # the file layout's order, whatever order they were typed in
    return design, tuple(p for p in PANELS if p in panels), tuple(a for a in ALGOS if a in algos), rest


def jobs(overrides: list[str], panels=tuple(PANELS), algos=ALGOS, design: str = "single") -> dict[str, list[str]]:
    return {f"{p}/{a}": COMMON + DESIGNS[design] + PANELS[p][1] + list(overrides) + [f"algo={a}"]
            for p in panels for a in algos}


def run(overrides: list[str], out: str = "runs/fig3", panels=tuple(PANELS), algos=ALGOS,
        workers: int | None = None, design: str = "single") -> dict[str, dict]:
    unknown = [p for p in panels if p not in PANELS]
    if unknown:
        raise UserError(f"unknown panel {unknown[0]!r}; choose from {', '.join(PANELS)}")
    if design not in DESIGNS:
        raise UserError(f"design={design!r} is unknown; choose one of {', '.join(DESIGNS)}")
    out_dir, configs = prepare_experiment(out, "fig3", jobs(overrides, panels, algos, design))
    summaries = run_jobs(configs, workers)
    write_manifest(out_dir, "fig3", panels=with_earlier(out_dir, "panels", panels, PANELS),
                   algos=with_earlier(out_dir, "algos", algos, ALGOS), overrides=list(overrides), design=design)
    draw(out_dir)
    return summaries


def final_table(summaries: dict[str, dict], panels, algos) -> str:
    rows = {p: {a: summaries[f"{p}/{a}"]["final_eval_return"] if f"{p}/{a}" in summaries else None
                for a in algos} for p in panels}
    return final_reward_table(rows, algos, "Final greedy evaluation reward")


def mean_best_reachable(summary: dict) -> float | None:
    """The mean over runs of the best reward their s allows: per run (env_runs) when runs drew
    different s, per episode (env_reference's expected_best); None when every run shares one s."""
    runs = summary.get("env_runs")
    if isinstance(runs, list) and runs and all(isinstance(r, dict) for r in runs):
        best = [r.get("best_reward") for r in runs]
        numbers = [b for b in best if isinstance(b, (int, float)) and not isinstance(b, bool)]
        return float(sum(numbers) / len(numbers)) if len(numbers) == len(best) and len(set(best)) > 1 else None
    expected = (summary.get("env_reference") or {}).get("expected_best")
    return float(expected) if isinstance(expected, (int, float)) and not isinstance(expected, bool) else None


def draw(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Redraw every panel, the final-reward table and the marl-eval export from the run files
    under `out`, into `dest` (default: `out` itself)."""
    out = Path(out)
    to = Path(dest) if dest is not None else out
    to.mkdir(parents=True, exist_ok=True)
    from qtran.experiments import fig3_claims

    manifest = read_manifest(out) or {}
    panels, algos = manifest.get("panels", list(PANELS)), manifest.get("algos", list(ALGOS))
    design = str(manifest.get("design", "single"))
    summaries = load_summaries(out, [f"{p}/{a}" for p in panels for a in algos])
    written = []
    for p in panels:
        curves = {a: summaries[f"{p}/{a}"]["eval_curve"] for a in algos if f"{p}/{a}" in summaries}
        if not curves:
            continue
        name = next(f"{p}/{a}" for a in algos if f"{p}/{a}" in summaries)
        first = fig3_claims.completed(summaries[name], out / name)
        ref = first.get("env_reference", {})
        refs = {"global optimum": ref["optimum"]} if ref.get("optimum") is not None else {}
        best = mean_best_reachable(first)
        if best is not None:  # what the runs' s allow, when that differs from G's optimum
            refs["mean best reachable"] = best
        if ref.get("pitfall") is not None:
            refs["pitfall (local optimum)"] = ref["pitfall"]
        steps = first["steps"]
        written += plot_curves(curves, to / p, PANELS[p][0], references=refs,
                               caption="Evaluation: greedy joint action of every agent from its own Q_i.",
                               note=f"Design: {DESIGN_TEXT.get(design, design)}; {steps:,} steps.",
                               missing=[a for a in ALGOS if f"{p}/{a}" not in summaries])
    table = final_table(summaries, panels, algos)
    (to / "final_rewards.md").write_text(table)
    (to / "claims.md").write_text(fig3_claims.report(out))
    groups = {"gaussian_squeeze": {p: {a: out / p / a for a in algos if f"{p}/{a}" in summaries} for p in panels}}
    marl_eval_export(groups, to / "marl_eval.json")
    return written + [to / "final_rewards.md", to / "claims.md", to / "marl_eval.json"]
