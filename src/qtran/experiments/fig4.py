"""The paper's Figure 4: modified predator-prey, N = 2 (one prey, 5x5) and N = 4 (two prey,
7x7), penalty P in {0.5, 1.0, 1.5}.

The three penalties of one N train in one compiled program together with the seeds
(`env_values`), so each (N, algorithm) pair is one job. Runs land in <out>/<n2|n4>/<algo>/,
the six panels in <out>/fig4_n<N>_p<P>.{png,svg,txt}.

Budgets:
- `paper`: the released code's 3M (N = 2) and 6M (N = 4) steps, replay of 600k / 1M
  transitions, target copy every 10,000 updates, 9,600 random warm-up steps, evaluation every
  100 training episodes on 100 greedy test episodes, one update per step. For a GPU or time
  to spare.
- `medium`: the smallest budget known to show the paper's contrast on this project's 2-core
  CPU machine. N = 2 is, run for run, the setting of tests/test_pp_learning.py: 1M steps, one
  update (batch 32) every 4 steps, target copy every 2,000 updates; there, at P = 1.5,
  QTRAN-alt learned to catch (final 5.3 / 16.8 / -0.8 over seeds 0-2) while VDN only learned
  to avoid the penalty (-2.0 / -2.0 / -1.9). N = 4 doubles the steps; it was not run. On 2
  cores the N = 2 half alone takes over an hour (QTRAN-alt: about 0.5 ms per update and run,
  15 runs x 250,000 updates); see NOTES.md.
- `quick`: a smoke-size run for the 2-core CPU machine; everything else as `paper`, scaled
  down with the step budget. Measured: the N = 2 half takes about 10 minutes, and at 60k
  steps no method has learned to catch yet (rewards still negative, all four within their
  intervals), so `quick` does not show the paper's contrast. Shortcuts that were tried and
  did not make a cheaper budget learn to catch (NOTES.md): one update every 10 steps; 32-wide
  networks at 1M steps; 400k steps with target copies every 1,000 updates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtran.errors import UserError
from qtran.experiments.common import (
    build_configs, final_reward_table, load_summaries, read_manifest, run_jobs, write_manifest,
)
from qtran.plots import plot_curves
from qtran.results import prepare_run_dir

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix")
PENALTIES = (0.5, 1.0, 1.5)
SETTINGS = {"n2": ["env.agents=2", "env.prey=1", "env.grid=5"], "n4": ["env.agents=4", "env.prey=2", "env.grid=7"]}
COMMON = ["env=predator_prey", "seeds=5", "gamma=0.99", "adam_eps=1.5e-4", "batch_size=32",
          f"env_values=[{','.join(str(p) for p in PENALTIES)}]"]
BUDGETS = {
    "paper": {
        "n2": ["steps=3000000", "buffer_size=6000", "target_update_interval=10000", "warmup_steps=9600",
               "eval.interval=10000", "eval.episodes=100"],
        "n4": ["steps=6000000", "buffer_size=10000", "target_update_interval=10000", "warmup_steps=9600",
               "eval.interval=10000", "eval.episodes=100"],
    },
    "medium": {
        "n2": ["steps=1000000", "updates_per_step=0.25", "buffer_size=1000", "target_update_interval=2000",
               "warmup_steps=3200", "eval.interval=50000", "eval.episodes=20"],
        "n4": ["steps=2000000", "updates_per_step=0.25", "buffer_size=1000", "target_update_interval=2000",
               "warmup_steps=3200", "eval.interval=100000", "eval.episodes=20"],
    },
    "quick": {
        "n2": ["steps=60000", "buffer_size=600", "target_update_interval=2000", "warmup_steps=3200",
               "eval.interval=5000", "eval.episodes=20"],
        "n4": ["steps=40000", "buffer_size=400", "target_update_interval=2000", "warmup_steps=3200",
               "eval.interval=5000", "eval.episodes=20"],
    },
}

# Said before a long budget starts on a machine without an accelerator (measured, NOTES.md).
SLOW_ON_CPU = {
    "medium": "the N = 2 half alone is estimated at about an hour on 2 cores; N = 4 was never run here",
    "paper": "3M / 6M steps with an update per step: about 2-3 days of compute on 2 cores (estimated "
             "from the per-update cost in NOTES.md); use a GPU",
}


def jobs(overrides: list[str], budget: str, settings=tuple(SETTINGS), algos=ALGOS) -> dict[str, list[str]]:
    if budget not in BUDGETS:
        raise UserError(f"budget={budget!r} is unknown; choose one of {', '.join(BUDGETS)}")
    return {f"{n}/{a}": COMMON + SETTINGS[n] + BUDGETS[budget][n] + list(overrides) + [f"algo={a}"]
            for n in settings for a in algos}


def run(overrides: list[str], out: str = "runs/fig4", budget: str = "quick", settings=tuple(SETTINGS),
        algos=ALGOS, workers: int | None = None) -> dict[str, dict]:
    out_dir = prepare_run_dir(out)
    configs = build_configs(jobs(overrides, budget, settings, algos), out_dir)
    summaries = run_jobs(configs, workers, label="Figure 4: ")
    write_manifest(out_dir, "fig4", settings=list(settings), algos=list(algos), budget=budget,
                   overrides=list(overrides))
    draw(out_dir)
    return summaries


def split_by_value(summary: dict) -> dict[float, dict]:
    """One batched run's curves, split per environment value: {P: {"steps", "returns"[E, seeds]}}."""
    values = np.asarray(summary["env_values"])
    returns = np.asarray(summary["eval_curve"]["returns"])
    return {float(v): {"steps": summary["eval_curve"]["steps"], "returns": returns[:, values == v]}
            for v in dict.fromkeys(values.tolist())}


def final_table(summaries: dict[str, dict], settings, algos) -> str:
    rows = {f"N={n[1:]}, P={p}": {a: split_by_value(summaries[f"{n}/{a}"])[p]["returns"][-1]
                                  if f"{n}/{a}" in summaries else None for a in algos}
            for n in settings for p in PENALTIES}
    return final_reward_table(rows, algos, "Final greedy team reward per episode")


def draw(out: str | Path) -> list[Path]:
    out = Path(out)
    manifest = read_manifest(out) or {}
    settings, algos = manifest.get("settings", list(SETTINGS)), manifest.get("algos", list(ALGOS))
    summaries = load_summaries(out, [f"{n}/{a}" for n in settings for a in algos])
    written = []
    letters = iter("abcdef")
    for n in settings:
        for p in PENALTIES:
            curves = {a: split_by_value(summaries[f"{n}/{a}"])[p] for a in algos if f"{n}/{a}" in summaries}
            title = f"Figure 4{next(letters)}: N = {n[1:]}, P = {p}"
            written += plot_curves(curves, out / f"fig4_{n}_p{p}", title, ylabel="team reward per test episode",
                                   caption=f"Budget: {manifest.get('budget', '?')}. Greedy test episodes of 100 steps.")
    (out / "final_rewards.md").write_text(final_table(summaries, settings, algos))
    return written + [out / "final_rewards.md"]
