"""The paper's Figure 4: modified predator-prey, N = 2 (one prey, 5x5) and N = 4 (two prey,
7x7), penalty P in {0.5, 1.0, 1.5}.

The three penalties of one N train in one compiled program together with the seeds
(`env_values`), so each (N, algorithm) pair is one job, a "piece". Runs land in
<out>/<n2|n4>/<algo>/, the six panels in <out>/fig4_n<N>_p<P>.{png,svg,txt}, the paper's
claims checked against them in <out>/claims.md (`fig4_claims`).

Forms: `form=paper` (the default) trains the paper's setting as SPEC.md describes it;
`form=code` turns on, for all four algorithms, every choice of the authors' released
predator-prey code (Sonkyunghwan/QTRAN, `Predator-Prey/`) where it differs, each of which is
also a switch of its own (`CODE_FORM` below lists them with the file each comes from). The
form is recorded in experiment.json and in every piece's summary.json, and one directory never
mixes forms.

Penalty pieces: `p=1.0,1.5` trains only those penalties (still one batch axis, in one
program); the piece is named <algo>-p1.0-1.5, so a directory can hold, say, QTRAN-base at
P = 1.0 and 1.5 in one piece and at P = 0.5 in another. Two pieces of one algorithm and N never
share a penalty.

Pieces: `qtran reproduce fig4 n=2 algos=qtran-alt,vdn` trains only those. Running again on
the same `out` skips finished pieces and resumes unfinished ones from their checkpoints (the
sweep's `run_one`); experiment.json records the budget and overrides of the directory, and a
command with others is refused, so one directory never mixes budgets. A finished piece keeps
only its small files (no checkpoints, no TensorBoard events), so results fit in git.

Budgets:
- `paper`: the released code's 3M (N = 2) and 6M (N = 4) steps, replay of 600k / 1M
  transitions, target copy every 10,000 updates, 9,600 random warm-up steps, evaluation every
  100 training episodes on 100 greedy test episodes, one update per step. For a GPU or time
  to spare.
- `medium`: the smallest budget known to show the paper's contrast on this project's 2-core
  CPU machine. N = 2 is, run for run, the setting of tests/test_pp_learning.py: 1M steps, one
  update (batch 32) every 4 steps, target copy every 2,000 updates; there, at P = 1.5,
  QTRAN-alt learned to catch (final 5.3 / 16.8 / -0.8 over seeds 0-2) while VDN only learned
  to avoid the penalty (-2.0 / -2.0 / -1.9). N = 4 doubles the steps. The whole figure at this
  budget is in docs/results/fig4/; its pieces' `train_seconds`, mostly two at a time on 2 loaded
  cores: N = 2 VDN 731, QMIX 906, QTRAN-base 4,395, QTRAN-alt 4,905; N = 4 VDN 1,763, QMIX
  2,029, QTRAN-base 4,432, QTRAN-alt 5,701 (about 3.5 hours of wall time in all; NOTES.md).
- `quick`: a smoke-size run for the 2-core CPU machine; everything else as `paper`, scaled
  down with the step budget. Measured: the N = 2 half takes about 10 minutes, and at 60k
  steps no method has learned to catch yet (rewards still negative, all four within their
  intervals), so `quick` does not show the paper's contrast. Shortcuts that were tried and
  did not make a cheaper budget learn to catch (NOTES.md): one update every 10 steps; 32-wide
  networks at 1M steps; 400k steps with target copies every 1,000 updates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from qtran.errors import UserError
from qtran.experiments.common import (
    JOB_DEFAULTS, build_configs, comma_choices, final_reward_table, read_manifest, write_manifest,
)
from qtran.experiments.fig4_layout import (  # noqa: F401 (split_by_value is read as fig4.split_by_value)
    ALGOS, COSMETIC, PENALTIES, SETTINGS_DIRS, piece_dirs, piece_name, piece_penalties, result_overrides,
    split_by_value, split_piece,
)
from qtran.plots import ALGO_LABELS, plot_curves
from qtran.results import prepare_run_dir, read_summary

# The released code's choices, each a switch of its own (docs/reproduce.md says more):
CODE_FORM = [
    # envs/grid_core.py, World.single_agent_step: the occupant of a target cell moves first.
    "env.move_rule=follow",
    # agents/pos_cac_fo/agent.py, state_to_index: positions as (p - map_size / 2) / map_size.
    "env.positions=centred",
    # dq_network.py, generate_*: the agent input is the observation with the scalar id i / N only,
    # and every dense layer starts from N(0, 0.1) kernels and zero biases.
    "agent.onehot_id=false", "agent.init=code", "qtran.init=code", "qmix.init=code",
    # dq_network.py, generate_PQMIX7 (QTRAN-base) and generate_PQMIX5 (QTRAN-alt): no V network,
    # mean pooling of the h_Q,i, the code's TD targets, and f_r as two ELU layers.
    "qtran.v_net=false", "qtran.pooling=mean", "qtran.td_target=code", "qtran.f_r=elu2",
    # dq_network.py, generate_QMIX: embed 64, one-layer hypernetworks, b1 added after the ELU.
    "qmix.embed=64", "qmix.hypernet_layers=1", "qmix.b1=after",
]
FORMS = {"paper": [], "code": CODE_FORM}

SETTINGS = {"n2": ["env.agents=2", "env.prey=1", "env.grid=5"], "n4": ["env.agents=4", "env.prey=2", "env.grid=7"]}
# tensorboard=false: the events would be deleted with the checkpoints once a piece finishes.
# The penalties (env_values) are added per piece by `jobs`.
COMMON = ["env=predator_prey", "seeds=5", "gamma=0.99", "adam_eps=1.5e-4", "batch_size=32", "tensorboard=false"]
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
    "medium": "each piece took 12-95 minutes on 2 loaded cores (N = 2 VDN 12 to QTRAN-alt 82, N = 4 VDN "
              "29 to QTRAN-alt 95; NOTES.md), the whole figure about 3.5 hours two pieces at a time",
    "paper": "3M / 6M steps with an update per step: one N = 2 QTRAN-base piece of one penalty (p=, 5 runs) "
             "about 70 minutes alone on 2 quiet cores (timed at 2% of the budget, NOTES.md 2026-12-07), the "
             "whole figure about 2-3 days of compute on 2 cores; use a GPU, or train it in p= pieces",
}


# What a finished piece keeps is its small files; these go once summary.json exists.
BULKY = ("checkpoints", "tb")


def jobs(overrides: list[str], budget: str, settings=tuple(SETTINGS), algos=ALGOS, form: str = "paper",
         penalties=PENALTIES) -> dict[str, list[str]]:
    if budget not in BUDGETS:
        raise UserError(f"budget={budget!r} is unknown; choose one of {', '.join(BUDGETS)}")
    if form not in FORMS:
        raise UserError(f"form={form!r} is unknown; choose one of {', '.join(FORMS)}")
    values = [f"env_values=[{','.join(str(p) for p in penalties)}]"]
    return {piece_name(n, a, penalties): COMMON + values + SETTINGS[n] + BUDGETS[budget][n] + FORMS[form]
            + list(overrides) + [f"algo={a}"] for n in settings for a in algos}


class Pieces(NamedTuple):
    """What `qtran reproduce fig4` was asked to train, and the overrides left for every job."""

    budget: str
    settings: tuple[str, ...]
    algos: tuple[str, ...]
    rest: list[str]
    form: str = "paper"
    penalties: tuple[float, ...] = PENALTIES


def parse_pieces(overrides: list[str]) -> Pieces:
    """Take budget=, n=, algos=, form= and p= out of the overrides. Defaults: budget quick,
    both N, all four algorithms, the paper's form, all three penalties."""
    budget, settings, algos, form, penalties, rest = "quick", tuple(SETTINGS), ALGOS, "paper", PENALTIES, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "budget":
            if value not in BUDGETS:
                raise UserError(f"budget={value!r} is unknown; choose one of {', '.join(BUDGETS)}")
            budget = value
        elif key == "n":
            settings = comma_choices("n", value, {n[1:]: n for n in SETTINGS})
        elif key == "algos":
            algos = comma_choices("algos", value, {a: a for a in ALGOS})
        elif key == "form":
            if value not in FORMS:
                raise UserError(f"form={value!r} is unknown; choose one of {', '.join(FORMS)}")
            form = value
        elif key == "p":
            chosen = comma_choices("p", value, {t: float(t) for p in PENALTIES for t in (str(p), f"{p:g}")})
            penalties = tuple(p for p in PENALTIES if p in chosen)
        else:
            rest.append(item)
    # the file layout's order, whatever order they were typed in
    return Pieces(budget, tuple(n for n in SETTINGS if n in settings), tuple(a for a in ALGOS if a in algos), rest,
                  form, penalties)


def check_out(out: str | Path, budget: str, overrides: list[str], form: str = "paper") -> dict | None:
    """Refuse an `out` holding Figure 4 runs of another budget, form or other overrides (so one
    directory never mixes them); returns its manifest, None for a new directory."""
    manifest = read_manifest(out)
    if manifest is None:
        return None
    where = Path(out) / "experiment.json"
    if manifest.get("experiment") != "fig4":
        raise UserError(f"{where} is a {manifest.get('experiment')!r} experiment, not fig4; choose another out=")
    if manifest.get("budget") != budget:
        raise UserError(f"{where} holds budget={manifest.get('budget')} runs, not budget={budget}; give "
                        f"budget={manifest.get('budget')} or choose another out=")
    saved_form = manifest.get("form", "paper")  # directories made before form= existed hold the paper's
    if saved_form != form:
        raise UserError(f"{where} holds form={saved_form} runs, not form={form}; give form={saved_form} "
                        "or choose another out=")
    saved = manifest.get("overrides")
    if not isinstance(saved, list):
        raise UserError(f"{where} does not record its overrides; choose another out=")
    old, new = result_overrides([str(o) for o in saved]), result_overrides(overrides)
    if old != new:
        differ = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
        shown = lambda d: " ".join(f"{k}={d[k]}" if k in d else f"{k} unset (the default)" for k in differ)  # noqa: E731
        raise UserError(f"{where} holds runs trained with {shown(old)}, this command gives {shown(new)}; "
                        f"give the same overrides or choose another out=")
    return manifest


def trim(run_dir: Path) -> None:
    """Delete a finished run's checkpoints and TensorBoard events (resume needs neither)."""
    import shutil

    if (run_dir / "summary.json").is_file():
        for name in BULKY:
            if (run_dir / name).is_dir():
                shutil.rmtree(run_dir / name)


def _piece_record(summary: dict, budget: str, form: str, cfg) -> dict:
    return {"budget": budget, "form": form, "penalties": list(dict.fromkeys(float(v) for v in summary["env_values"])),
            "steps": summary["steps"], "updates_per_step": float(cfg.updates_per_step)}


def record_in_summary(run_dir: Path, record: dict) -> None:
    """Write the piece's Figure 4 record (form, budget, penalties) into its summary.json, so
    the file says by itself what it is; the training results in it are left as they are."""
    import json

    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    if summary.get("fig4") == record:
        return
    summary["fig4"] = record
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(path)


def check_penalties(out: Path, pieces: dict, manifest: dict) -> None:
    """Refuse a piece whose penalties overlap another piece's of the same N and algorithm."""
    held = {}
    for name in list(dict.fromkeys([*(manifest.get("pieces") or {}), *piece_dirs(out)])):
        held[name] = piece_penalties(name)
    for name in pieces:
        n, algo = split_piece(name)
        for other, values in held.items():
            if other != name and split_piece(other) == (n, algo) and set(values) & set(piece_penalties(name)):
                raise UserError(f"{out / other} already holds {ALGO_LABELS.get(algo, algo)} at N = {n[1:]} for P = "
                                f"{', '.join(str(p) for p in sorted(set(values) & set(piece_penalties(name))))}; "
                                "choose other penalties (p=) or another out=")


def run(overrides: list[str], out: str = "runs/fig4", budget: str = "quick", settings=tuple(SETTINGS),
        algos=ALGOS, workers: int | None = None, form: str = "paper", penalties=PENALTIES) -> dict[str, dict]:
    """Train the pieces `settings` x `algos` (at `penalties`, in `form`) into `out` (finished
    ones are skipped, unfinished ones resumed), then draw every panel and the claims table;
    returns {piece: summary}."""
    from qtran import sweep

    out_dir = Path(out)
    manifest = check_out(out_dir, budget, overrides, form)
    pieces = jobs(overrides, budget, settings, algos, form, penalties)
    check_penalties(out_dir, pieces, manifest or {})
    configs = build_configs(pieces, out_dir)
    finished = [name for name in configs if sweep.is_finished(out_dir / name)]
    for name in finished:
        if not sweep.saved_matches(out_dir / name, configs[name]):
            raise UserError(f"{out_dir / name} holds a finished run trained with other settings; "
                            "choose another out= or remove it")
    prepare_run_dir(out_dir)
    manifest = manifest or {"experiment": "fig4", "budget": budget, "form": form, "overrides": list(overrides),
                            "pieces": {}}
    manifest.setdefault("form", form)
    manifest.setdefault("pieces", {})
    for key, values in (("settings", settings), ("algos", algos)):  # everything asked for so far
        manifest[key] = list(dict.fromkeys(list(manifest.get(key) or []) + list(values)))
    # Written before anything trains, so an interrupted first command still fixes the budget.
    write_manifest(out_dir, **manifest)

    def done(name: str, summary: dict) -> None:
        trim(out_dir / name)
        manifest["pieces"][name] = _piece_record(summary, budget, form, configs[name])
        record_in_summary(out_dir / name, manifest["pieces"][name])
        write_manifest(out_dir, **manifest)

    summaries = {}
    for name in finished:
        summaries[name] = read_summary(out_dir / name)
        done(name, summaries[name])
    # Trained with the same defaults build_configs validated them with, so a finished piece's
    # saved settings match the next command's.
    todo = {name: JOB_DEFAULTS + pieces[name] for name in configs if name not in finished}
    sharded = bool(todo) and all(configs[name].shard for name in todo)  # as make_config resolved shard=
    summaries.update(_train(todo, out_dir, workers, done, sharded))
    draw(out_dir)
    return summaries


def idle_core_note(pieces: int, workers: int, cores: int, sharded: bool = False) -> str | None:
    """What to say when cores will sit idle: a piece is one program, which XLA runs on about one
    core on a CPU when it trains on one device (jobs train with shard=false, so that their
    numbers do not depend on the machine), so only pieces trained side by side, or pieces told
    shard=true, fill the cores."""
    busy = min(pieces, workers)
    if pieces == 0 or busy >= cores or sharded:
        return None
    return (f"{busy} piece{'s' if busy > 1 else ''} at a time on {cores} cores: each piece runs on about one "
            f"core, so {cores - busy} will be mostly idle; name more pieces in one command (algos=, n=), or add "
            f"shard=true to spread each piece's runs over the cores (its numbers may then differ in the last "
            f"bits with the core count)")


def _train(todo: dict[str, list[str]], out: Path, workers: int | None, done, sharded: bool = False) -> dict[str, dict]:
    """Train or resume each piece (sweep.run_one), calling done(name, summary) as each ends;
    the first failure is raised once the others have ended."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from qtran.experiments.common import default_workers
    from qtran.sweep import run_one

    workers = workers or default_workers(len(todo))
    note = idle_core_note(len(todo), workers, os.cpu_count() or 1, sharded)
    if note:
        from qtran.run_notices import say

        say(note)
    if workers == 1 or len(todo) <= 1:  # in this thread, so that Ctrl-C checkpoints and stops it
        results = {}
        for i, (name, overrides) in enumerate(todo.items()):
            results[name] = run_one(overrides, out / name, desc=f"Figure 4: {name:<16}", position=i)
            done(name, results[name])
        return results
    results, errors = {}, []
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(run_one, overrides, out / name, desc=f"Figure 4: {name:<16}", position=i): name
                   for i, (name, overrides) in enumerate(todo.items())}
        for future in as_completed(futures):
            name = futures[future]
            try:
                results[name] = future.result()
            except Exception as err:  # noqa: BLE001 (the other pieces go on; raised below)
                errors.append(err)
                continue
            done(name, results[name])
    if errors:
        raise errors[0]
    return results


def final_table(curves: dict) -> str:
    """Final rewards of every (N, P) setting and algorithm, from curves {(n, P, algo): curve}."""
    rows = {f"N={n[1:]}, P={p}": {a: np.asarray(curves[(n, p, a)]["returns"])[-1] if (n, p, a) in curves else None
                                  for a in ALGOS}
            for n in SETTINGS for p in PENALTIES}
    return final_reward_table(rows, ALGOS, "Final greedy team reward per episode (-: not run)")


def draw(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Every panel, whatever has finished: an algorithm without a finished run is named
    "not run" in the panel's legend and caption (a panel without any says so on its axes).
    Drawn from the runs under `out` into `dest` (default `out`)."""
    from qtran.experiments import fig4_claims

    out = Path(out)
    to = Path(dest) if dest is not None else out
    curves, budgets = fig4_claims.load(out)
    texts = fig4_claims.budget_texts(budgets)
    written = []
    for n in SETTINGS:
        for p in PENALTIES:
            panel = fig4_claims.PANELS[(n, p)]
            present = {a: curves[(n, p, a)] for a in ALGOS if (n, p, a) in curves}
            missing = [a for a in ALGOS if a not in present]
            not_run = f" Not run: {', '.join(ALGO_LABELS[a] for a in missing)}." if missing else ""
            caption = f"Budget (N = {n[1:]}): {texts[n]}. Greedy test episodes of 100 steps.{not_run}"
            written += plot_curves(present, to / f"fig4_{n}_p{p}", f"Figure {panel}: N = {n[1:]}, P = {p}",
                                   ylabel="team reward per test episode", caption=caption, missing=missing,
                                   note=f"Budget: {texts[n]}")
    (to / "final_rewards.md").write_text(final_table(curves))
    (to / "claims.md").write_text(fig4_claims.table(curves, budgets))
    return written + [to / "final_rewards.md", to / "claims.md"]
