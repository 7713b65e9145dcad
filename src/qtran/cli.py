"""The `qtran` command.

    qtran train algo=<iql|vdn|qmix|ow-qmix|cw-qmix|qplex|qtran-base|qtran-alt> env=matrix env.payoff=<table1|FILE>
                seeds=<int> steps=<int> out=<dir> [key=value ...] [--overwrite]
                                         an out= holding a run is refused unless --overwrite
    qtran reproduce <table1|fig2|fig3|fig4|compare> [out=<dir>] [budget=quick|medium|paper] [workers=<int>] [key=value ...]
    qtran reproduce fig4 [budget=...] [n=<2|4>] [algos=<a,b,...>] [form=paper|code] [p=<P,...>] [out=<dir>]
                                         train any pieces of Figure 4; again on the same out: the rest
    qtran reproduce fig3 [design=single|per_run|per_episode] [out=<dir>]
                                         Figure 3 with s drawn once, once per run, or every episode
    qtran claims OUT_DIR                 the paper's claims (fig3 or fig4) against the finished runs
    qtran fig4-claims OUT_DIR [OUT_DIR ...]
                                         the paper's Figure 4 claims against the finished runs;
                                         several directories: one verdict column each
    qtran fig3-claims OUT_DIR            the paper's Figure 3 claims against the finished runs
    qtran plot RUN_DIR [RUN_DIR ... --out DIR]
                                         redraw figures from run files alone; one panel per
                                         environment; several runs need --out
    qtran render RUN_DIR [--run K]       a trained predator-prey team playing: GIF + text
    qtran resume RUN_DIR                 continue an interrupted run exactly from its checkpoint
    qtran eval RUN_DIR [--episodes N]    re-evaluate saved policies greedily, with intervals
    qtran report table1 RUN_DIR          Table 1's report; on a training run, its learned tables
    qtran config [key=value ...]         print the resolved configuration
    qtran conditions PAYOFF [--json]     which greedy joint actions QTRAN-base / -alt can represent
    qtran sweep key=a,b key2=x,y [backend=local|ray] [out=<dir>] [key=value ...]
                                         every combination of the listed values, one run each

Mistakes in the input print one line and exit with status 2 before any training starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qtran.errors import Interrupted, UserError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, instead of argparse's usage dump
        raise UserError(message)


def printable(text: str) -> str:
    """One line of text, whatever the user typed into it: line breaks, terminal control
    characters and undecodable bytes are shown as escapes (\\r, \\x1b, \\udcff)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _pop_out(overrides: list[str], default: str) -> tuple[str, list[str]]:
    out, rest = default, []
    for item in overrides:
        if item.startswith("out="):
            out = item[4:]
        else:
            rest.append(item)
    return out, rest


def final_returns_text(summary: dict) -> str:
    """The final greedy returns, per seed, and grouped by env value when values were batched
    (the environment's name then carries the config's value, not each run's)."""
    from qtran.results import run_groups

    returns = [round(r, 3) for r in summary["final_eval_return"]]
    values = summary.get("env_values")
    if values is None:
        return f"final greedy return per seed {returns}"
    setting = summary.get("env_value_name") or "env_value"
    return "final greedy return per seed, " + "; ".join(
        f"{setting}={value:g}: {[returns[k] for k in runs]}" for value, runs in run_groups(values).items())


def cmd_train(args) -> int:
    from qtran.config import make_config
    from qtran.checks import check_runnable
    from qtran.results import claim_run_dir, empty_run_dir
    from qtran.run import train

    cfg = make_config(args.overrides)
    # an earlier run in out= is refused at once; with --overwrite it is deleted only once every
    # other check has passed, so that a mistake in the settings loses nothing
    replace = bool(cfg.out) and claim_run_dir(cfg.out, overwrite=args.overwrite)
    check_runnable(cfg)  # payoff file, environment, schedule: every mistake before training starts
    if replace:
        empty_run_dir(cfg.out)
    print_outcome(train(cfg))
    return 0


def print_outcome(summary: dict) -> None:
    """What train and resume print once a run has finished."""
    print(f"{summary['algo']} on {summary['env']}: {final_returns_text(summary)}")
    if "greedy_joint_actions" in summary:
        print(f"greedy joint actions per seed: {summary['greedy_joint_actions']}")
    print(f"run directory: {summary['run_dir']}")


def cmd_resume(args) -> int:
    from qtran.run import resume

    summary = resume(args.run_dir)
    print_outcome(summary)
    return 0


# Every experiment `qtran reproduce` runs, with what it makes (for the help and the errors).
EXPERIMENTS = {
    "table1": "Table 1: the 3x3 one-step game, five algorithms x 10 seeds, tables beside the paper's",
    "fig2": "Figure 2: Q_jt and Q'_jt of QTRAN-base and -alt on the 21x21 game climb21",
    "fig3": "Figure 3: Gaussian squeeze (3a, 3b) and multi-domain GS (3c), five algorithms",
    "fig4": "Figure 4: predator-prey, N = 2 and 4, P = 0.5, 1.0, 1.5, four algorithms (below)",
    "compare": "every algorithm, QPLEX and weighted QMIX included, x 10 seeds on four matrix games and MGS",
}


def cmd_reproduce(args) -> int:
    if args.what not in EXPERIMENTS:
        raise UserError(f"unknown experiment {args.what!r}; available: {', '.join(EXPERIMENTS)}")
    from qtran.experiments.common import check_experiment_out, parse_algos, parse_workers

    out, rest = _pop_out(args.overrides, f"runs/{args.what}")
    workers, overrides = parse_workers(rest)
    _refuse_fixed_settings(args.what, overrides)
    check_experiment_out(out, args.what)  # not a training run's directory, nor another experiment's
    if args.what == "table1":
        from qtran.experiments import table1

        algos, overrides = parse_algos(overrides, table1.ALGOS)
        print(table1.report(table1.run(overrides, out=out, algos=algos, workers=workers)))
    elif args.what == "fig2":
        from qtran.experiments import fig2

        algos, overrides = parse_algos(overrides, fig2.ALGOS)
        fig2.run(overrides, out=out, algos=algos, workers=workers)
        print((Path(out) / "summary.txt").read_text(), end="")
    elif args.what == "fig3":
        from qtran.experiments import fig3

        design, panels, algos, rest_overrides = fig3.parse_options(overrides)
        fig3.run(rest_overrides, out=out, workers=workers, design=design, panels=panels, algos=algos)
        print((Path(out) / "final_rewards.md").read_text(), end="")
        print("\n" + (Path(out) / "claims.md").read_text(), end="")
    elif args.what == "compare":
        from qtran.experiments import compare

        algos, overrides = parse_algos(overrides, compare.ALGOS)
        compare.run(overrides, out=out, algos=algos, workers=workers)
        print((Path(out) / "compare.md").read_text(), end="")
    else:
        from qtran.experiments import fig4

        asked = fig4.parse_pieces(overrides)
        budget, rest_overrides = asked.budget, asked.rest
        import jax

        from qtran.config import make_config

        # bad input fails here, before the note and before anything trains
        for job in fig4.jobs(rest_overrides, budget, asked.settings, asked.algos, asked.form, asked.penalties).values():
            make_config(job)
        fig4.check_out(out, budget, rest_overrides, asked.form)
        if budget in fig4.SLOW_ON_CPU and jax.default_backend() == "cpu":
            print(f"note: budget={budget} on a CPU: {fig4.SLOW_ON_CPU[budget]}", file=sys.stderr)
        fig4.run(rest_overrides, out=out, budget=budget, settings=asked.settings, algos=asked.algos, workers=workers,
                 form=asked.form, penalties=asked.penalties)
        print((Path(out) / "final_rewards.md").read_text(), end="")
        print("\n" + (Path(out) / "claims.md").read_text(), end="")
    print(f"\nrun directories, figures and reports under {out}")
    return 0


def _refuse_fixed_settings(what: str, overrides: list[str]) -> None:
    """The experiments fix the algorithm and the environment; anything else may change."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key == "algo":
            raise UserError(f"{item!r}: reproduce {what} trains several algorithms; choose which with "
                            f"algos=a,b,... (or train one alone with qtran train {item})")
        if key in ("env", "env.name", "env.task"):
            raise UserError(f"{item!r} cannot be changed in reproduce {what} (the experiment's game is fixed; "
                            f"train another with qtran train {item})")


def reproduce_epilog() -> str:
    experiments = "\n".join(f"  {name:<8}{text}" for name, text in EXPERIMENTS.items())
    return f"""experiments:
{experiments}

options of every experiment:
  out=DIR                     where runs, figures and reports go (default runs/<experiment>)
  workers=N                   runs trained at once, one per core (default: the cores)
  algos=a,b,...               which of the experiment's algorithms to train (default all)
  key=value                   any training setting (qtran train --help) but algo and env
  Run again with the same out= and settings: finished runs are kept, unfinished ones resume;
  an out= holding runs of other settings, or a training run, is refused.

fig3 options:
  design=single|per_run|per_episode
                              when s is drawn: once from env.s_seed=2 for every run (default),
                              once per run from its seed, or every episode (100,000 steps);
                              docs/figure3.md. Writes three panels, final_rewards.md, claims.md.
  panels=fig3a,fig3b,fig3c    which panels to train (default all; 3a,3c also works)
  algos=qtran-base,qtran-alt,vdn,qmix,iql
                              which algorithms to train (default all five)

fig4 options:
  budget=quick|medium|paper   steps and schedule of every run (default quick)
  n=2|4|2,4                   which N to train (default both)
  algos=qtran-base,qtran-alt,vdn,qmix
                              which algorithms to train, a comma list (default all four)
  form=paper|code             the paper's setting (default) or every choice of the authors'
                              released code at once (movement, inputs, initialisation, QTRAN's
                              and QMIX's networks; docs/reproduce.md lists them)
  p=0.5,1.0,1.5               which penalties to train (default all three, in one program);
                              a piece of some penalties is named <algo>-p1.0-1.5
  Run again with the same out= to train more pieces: finished runs are skipped, unfinished
  ones resume from their checkpoints; an out= of another budget, form or other overrides is
  refused, and so is a piece whose penalties another piece of that algorithm already holds.
  Writes six panels, final_rewards.md and claims.md (also: qtran fig4-claims OUT_DIR)."""


def cmd_fig4_claims(args) -> int:
    from qtran.experiments import fig4_claims

    dirs = args.out_dir if isinstance(args.out_dir, list) else [args.out_dir]
    text = fig4_claims.report(dirs[0]) if len(dirs) == 1 else fig4_claims.evidence(dirs)
    print(text, end="")
    return 0


def cmd_fig3_claims(args) -> int:
    from qtran.experiments import fig3_claims

    print(fig3_claims.report(args.out_dir), end="")
    return 0


def claims_report(out: str | Path) -> str:
    """The claims table of an experiment directory whose experiment.json names fig3 or fig4."""
    from qtran.experiments.common import read_manifest

    out = Path(out)
    if not out.is_dir():
        raise UserError(f"not a directory: {out}")
    manifest = read_manifest(out)
    experiment = None if manifest is None else manifest.get("experiment")
    if experiment == "fig3":
        from qtran.experiments import fig3_claims

        return fig3_claims.report(out)
    if experiment == "fig4" or (manifest is None and any((out / n).is_dir() for n in ("n2", "n4"))):
        from qtran.experiments import fig4_claims

        return fig4_claims.report(out)
    what = "no experiment.json" if manifest is None else f"experiment {experiment!r}"
    raise UserError(f"{out}: {what}; claims tables exist for fig3 and fig4 directories")


def cmd_claims(args) -> int:
    print(claims_report(args.out_dir), end="")
    return 0


def cmd_render(args) -> int:
    import jax

    from qtran import render
    from qtran.saved_policy import load_policy
    from qtran.rollout import play

    cfg, env, algo, params, reset, seed = load_policy(args.run_dir, args.run)
    if cfg.env.name != "predator_prey":
        raise UserError(f"render draws predator-prey episodes; {args.run_dir} is {cfg.env.name}")
    out = Path(args.gif or Path(args.run_dir) / f"episode_run{args.run}.gif")
    check_writable_file(out, "--gif" if args.gif else "the GIF")  # before any frame is played or printed
    states, rewards = play(env, algo.agents, params["agent"], jax.random.PRNGKey(args.episode_seed), reset)
    frames = render.unstack(states)
    if not args.no_text:
        for frame in frames:
            print(render.text_frame(frame, int(cfg.env.grid)) + "\n")
    render.gif(frames, str(out), int(cfg.env.grid), rewards=[float(r) for r in rewards])
    print(f"seed {seed}: team reward {float(rewards.sum()):.2f} over {len(rewards)} steps; GIF: {out}")
    return 0


def check_writable_file(path: Path, what: str) -> None:
    """Refuse a file path that cannot be written: its folder is missing or read-only, or the
    path is a folder."""
    import os

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory; give a file name such as {path / 'episode.gif'}")
    if not folder.is_dir():
        raise UserError(f"{what} {path}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{what} {path}: cannot write there (permission denied)")


def cmd_eval(args) -> int:
    import numpy as np

    from qtran.plots import INTERVAL_METHOD, format_mean_ci
    from qtran.saved_policy import evaluate_saved
    from qtran.results import run_groups

    if args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    summary, returns = evaluate_saved(args.run_dir, args.episodes, args.seed)
    returns = np.asarray(returns)
    values = summary.get("env_values")
    setting = summary.get("env_value_name") or "env_value"
    print(f"{summary['algo']} on {summary['env']}: greedy return over {args.episodes} episodes "
          f"(mean +- half-width of the {INTERVAL_METHOD.replace('of the mean over seeds', 'over episodes')})")
    for k, seed in enumerate(summary["seeds"]):
        extra = "" if values is None else f" {setting}={values[k]:g}"
        print(f"  run {k} (seed {seed}{extra}): {format_mean_ci(returns[k])}")
    # runs of different env values are different tasks: each value is summarised on its own
    for value, runs in run_groups(values or [None] * len(summary["seeds"])).items():
        over = "over runs" if value is None else f"over the seeds of {setting}={value:g}"
        print(f"  {over}: {format_mean_ci(returns[runs].mean(-1))} (runs: {len(runs)})")
    return 0


def cmd_plot(args) -> int:
    from qtran.redraw import redraw

    for path in redraw(args.run_dirs, out=args.out):
        print(path)
    return 0


def cmd_report(args) -> int:
    """`report table1 DIR`: Table 1's report of a `reproduce table1` directory, or the learned
    tables of a training run on any single-state game (`report tables RUN` says the same)."""
    if args.what not in ("table1", "tables"):
        raise UserError(f"unknown report {args.what!r}; available: table1, tables")
    from qtran.experiments import table1
    from qtran.results import read_summary, run_status

    if Path(args.run_dir).is_dir() and run_status(args.run_dir) == "finished":  # one training run
        print(table1.run_report(read_summary(args.run_dir), args.run_dir))
    elif args.what == "tables":
        raise UserError(f"{args.run_dir}: no finished training run (summary.json) to print the tables of")
    else:
        print(table1.report(table1.load(args.run_dir)))
    return 0


def cmd_sweep(args) -> int:
    from qtran.sweep import sweep

    outcome = sweep(args.overrides)
    print((outcome.out / "summary.md").read_text(), end="")
    print(f"\n{len(outcome.trained)} trained, {len(outcome.skipped)} already finished, "
          f"{len(outcome.failed)} failed; summary.md and summary.csv in {outcome.out}")
    for name, error in outcome.failed.items():
        print(f"qtran: run {name} failed: {error}", file=sys.stderr)
    return 1 if outcome.failed else 0


def cmd_config(args) -> int:
    from qtran.config import make_config, to_yaml

    print(to_yaml(make_config(args.overrides)), end="")
    return 0


def cmd_conditions(args) -> int:
    import json

    from qtran import conditions

    payoff = conditions.load(args.payoff)
    tol = conditions.DEFAULT_TOL if args.tol is None else args.tol
    report = conditions.analyse(payoff, tol=tol, exhaustive=args.exhaustive)
    if args.json:
        print(json.dumps(conditions.to_json(report)))
    else:
        print(conditions.format_text(report, args.payoff, payoff.shape, tol))
    return 0


def check_command(argv: list[str]) -> list[str]:
    """Parse and validate a command line as `main` would, without training, drawing or reading
    anything: the command exists and every key=value is a known setting with a valid value (for
    `reproduce` and `sweep`, in every job they would train). Returns the paths the command would
    read (run directories, payoff files) for the caller to look at. Raises UserError, as the
    command would (tests/test_readme_commands.py checks the documentation's commands with it)."""
    from qtran.config import make_config

    args = build_parser().parse_args(argv)
    if args.command in ("train", "config"):
        return _payoff_files([make_config(args.overrides)])
    if args.command == "reproduce":
        return _payoff_files([make_config(job) for job in _reproduce_jobs(args.what, args.overrides)])
    if args.command == "sweep":
        from qtran.sweep import parse_grid, run_config

        options, runs = parse_grid(args.overrides)
        return _payoff_files([run_config(run, Path(options.out or "runs/sweep")) for run in runs])
    if args.command == "conditions":
        from qtran.envs.matrix import PRESETS

        return [] if args.payoff in PRESETS else [args.payoff]
    if args.command == "plot":
        return list(args.run_dirs)
    if args.command == "fig4-claims":
        return list(args.out_dir)
    return [args.out_dir if args.command in ("fig3-claims", "claims") else args.run_dir]


def _reproduce_jobs(what: str, overrides: list[str]) -> list[list[str]]:
    """The overrides of every job `qtran reproduce <what> <overrides>` would train."""
    from qtran.experiments import common, compare, fig2, fig3, fig4, table1

    if what not in EXPERIMENTS:
        raise UserError(f"unknown experiment {what!r}; available: {', '.join(EXPERIMENTS)}")
    _, rest = _pop_out(overrides, f"runs/{what}")
    _, rest = common.parse_workers(rest)
    _refuse_fixed_settings(what, rest)
    if what == "fig4":
        asked = fig4.parse_pieces(rest)
        jobs = fig4.jobs(asked.rest, asked.budget, asked.settings, asked.algos, asked.form, asked.penalties)
    elif what == "fig3":
        design, panels, algos, rest = fig3.parse_options(rest)
        jobs = fig3.jobs(rest, panels, algos, design)
    elif what == "compare":
        algos, rest = common.parse_algos(rest, compare.ALGOS)
        jobs = compare.jobs(rest, algos=algos)
    else:
        module = table1 if what == "table1" else fig2
        algos, rest = common.parse_algos(rest, module.ALGOS)
        jobs = {a: module.SETTINGS + rest + [f"algo={a}"] for a in algos}
    return [common.JOB_DEFAULTS + job for job in jobs.values()]


def _payoff_files(configs) -> list[str]:
    """The payoff files (not presets) among the configs' matrix games."""
    from qtran.envs.matrix import PRESETS

    payoffs = {str(cfg.env.payoff) for cfg in configs if cfg.env.name == "matrix"}
    return sorted(p for p in payoffs if p not in PRESETS)


def train_epilog() -> str:
    from qtran.config import Config, env_config_classes
    from qtran.config_keys import settings_overview
    from qtran.envs import TASK_FAMILIES

    outside = " and ".join(f"env={name}" for name in TASK_FAMILIES)
    return f"""{settings_overview(Config, env_config_classes())}

With {outside}, env.name=ID names the outside environment (JaxMARL's id, or a
PettingZoo module path); config.yaml keeps it as env.task, and env.task=ID works too.
Whole-number settings take any spelling of a whole number: steps=1e4, steps=2.5e5.
Every command and what it writes: docs/cli.md."""


def build_parser() -> argparse.ArgumentParser:
    from qtran import __version__

    parser = _Parser(prog="qtran", description="QTRAN, QPLEX, weighted QMIX, QMIX, VDN and IQL in JAX.")
    parser.add_argument("--version", action="version", version=f"qtran {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("train", help="train one algorithm on one environment, seeds vmapped",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=train_epilog())
    p.add_argument("overrides", nargs="*", help="key=value settings (below)")
    p.add_argument("--overwrite", action="store_true",
                   help="out= may hold an earlier run: delete it first (default: refuse such an out=)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("resume", help="continue an interrupted training run from its last checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the interrupted run's directory (its out=)")
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("reproduce", help="reproduce a table or figure of the paper",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=reproduce_epilog())
    p.add_argument("what", metavar="EXPERIMENT", help=", ".join(EXPERIMENTS) + " (below)")
    p.add_argument("overrides", nargs="*", help="out=<dir>, workers=<int> and key=value settings; "
                   "fig3 also design=, fig4 also budget=, n=, algos= (below)")
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser("fig4-claims", help="the paper's Figure 4 claims against a fig4 directory's finished runs; "
                       "with several directories, one verdict column per directory (form and budget)")
    p.add_argument("out_dir", metavar="OUT_DIR", nargs="+", help="directories made by qtran reproduce fig4")
    p.set_defaults(func=cmd_fig4_claims)
    p = sub.add_parser("fig3-claims", help="the paper's Figure 3 claims against a fig3 directory's finished runs")
    p.add_argument("out_dir", metavar="OUT_DIR", help="a directory made by qtran reproduce fig3")
    p.set_defaults(func=cmd_fig3_claims)
    p = sub.add_parser("claims", help="the paper's claims against a fig3 or fig4 directory's finished runs")
    p.add_argument("out_dir", metavar="OUT_DIR", help="a directory made by qtran reproduce fig3 or fig4")
    p.set_defaults(func=cmd_claims)
    p = sub.add_parser("plot", help="redraw figures from run directories, without training")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories of qtran train, or one directory of qtran reproduce")
    p.add_argument("--out", default=None,
                   help="directory for the figure of plain run directories: needed for several runs "
                        "(never one of them); one run's figure goes into it by default. Runs of "
                        "different environments or env values get one panel each")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("eval", help="re-evaluate a saved policy greedily")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's directory")
    p.add_argument("--episodes", type=int, default=100, help="greedy episodes per run")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("render", help="play a trained predator-prey team: GIF and text frames")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished predator-prey run's directory")
    p.add_argument("--run", type=int, default=0, help="which run of the batch (index into summary seeds)")
    p.add_argument("--episode-seed", type=int, default=0, help="seed of the episode played")
    p.add_argument("--gif", default=None, help="GIF path (default RUN_DIR/episode_run<k>.gif)")
    p.add_argument("--no-text", action="store_true", help="do not print text frames")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("report", help="print Table 1's report, or the learned tables of a training run")
    p.add_argument("what", help="table1 (a reproduce table1 directory, or a training run on any single-state "
                   "game, a custom payoff included) or tables (a training run)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a reproduce table1 directory or a training run's directory")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("sweep", help="train every combination of comma-separated values (locally or on Ray)")
    p.add_argument("overrides", nargs="*", help="key=v1,v2,... settings; backend=, address=, out=, "
                   "max_retries=, workers= for the sweep itself")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("config", help="print the resolved configuration")
    p.add_argument("overrides", nargs="*", help="env=NAME and key=value settings, as for train")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("conditions", help="solve Theorem 1 / 2 conditions exactly on a payoff (MILP)")
    p.add_argument("payoff", metavar="PAYOFF", help="preset (table1, climbing, penalty, climb21) or .json/.npy")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--tol", type=float, default=None,
                   help="smallest greedy margin, relative to the payoff range, that counts as strict "
                        "(default 1e-5)")
    p.add_argument("--exhaustive", action="store_true",
                   help="solve QTRAN-alt's MILP for every candidate, even where QTRAN-base already fails")
    p.set_defaults(func=cmd_conditions)
    return parser


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """As parse_args, but a flag may stand between key=value settings (`train a=1 --overwrite
    b=2`): argparse leaves the settings after it over, and they join the others, in order."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not isinstance(getattr(args, "overrides", None), list) or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        from qtran.runtime import use_cpu_cores

        use_cpu_cores()  # first: checking a config already starts JAX (it asks for the memory)
        args = parse_command_line(build_parser(), argv)
        return args.func(args)
    except UserError as err:
        print(f"qtran: error: {printable(str(err))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Interrupted as stop:
        saved = ("no checkpoint yet" if stop.chunk is None
                 else f"checkpoint saved at step {stop.step} (chunk {stop.chunk})")
        print(f"qtran: interrupted ({saved}); continue with: qtran resume {stop.run_dir}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("qtran: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (| head)
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
