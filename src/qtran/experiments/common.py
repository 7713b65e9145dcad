"""Running many configurations at once and finding them again on disk."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from qtran.checks import check_runnable, episode_bytes, memory_bytes, state_bytes  # noqa: F401 (this module's API too)
from qtran.config import make_config
from qtran.config_keys import whole_number
from qtran.errors import UserError
from qtran.results import prepare_run_dir, read_summary, write_json
from qtran.run import train


def default_workers(n_jobs: int) -> int:
    return max(1, min(n_jobs, os.cpu_count() or 1))


# The experiments' jobs train on one device each unless the user says `shard=true`: run_jobs
# already trains one job per core, so spreading each job over the cores as well bought nothing
# (reproduce table1: 65.7 s against 69.0 s), and a job's results then stay those of one device
# whatever the machine (sharded, QMIX's greedy actions on Table 1 changed by float rounding).
JOB_DEFAULTS = ["shard=false"]


def build_configs(jobs: dict[str, list[str]], out: Path) -> dict:
    """Validate every job's overrides (before anything trains); job k writes to out/k."""
    configs = {name: make_config(JOB_DEFAULTS + list(overrides) + [f"out={out / name}"])
               for name, overrides in jobs.items()}
    for cfg in configs.values():
        check_runnable(cfg)
    return configs


def check_experiment_out(out: str | Path, experiment: str) -> None:
    """Refuse an `out` that is a training run's own directory, or that holds another
    experiment: an experiment writes a directory of runs of its own (docs/run-directories.md)."""
    from qtran.results import run_status

    out = Path(out)
    status = run_status(out) if out.is_dir() else None
    if status is not None:
        raise UserError(f"out={out} is the directory of a{'n' if status == 'interrupted' else ''} {status} "
                        f"training run; reproduce {experiment} writes a directory of runs of its own: "
                        "choose another out=")
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("experiment") != experiment:
        raise UserError(f"{out / 'experiment.json'} is a {manifest.get('experiment')!r} experiment, not "
                        f"{experiment}; choose another out=")


def split_finished(configs: dict) -> tuple[list[str], dict]:
    """(the jobs finished already with these settings, the jobs still to train), each job in
    its cfg.out. A job whose directory holds a run, finished or not, trained with other
    settings is refused (UserError), so that no command replaces or mixes in earlier results."""
    from qtran.results import run_status
    from qtran.sweep import settings_difference

    finished, todo = [], {}
    for name, cfg in configs.items():
        run_dir = Path(cfg.out)
        status = run_status(run_dir) if run_dir.is_dir() else None
        if status is not None:
            differ = settings_difference(run_dir, cfg)
            if differ is not None:
                raise UserError(f"{run_dir} holds a{'n' if status == 'interrupted' else ''} {status} run trained "
                                f"with other settings ({differ}); give the same settings, or choose another out=")
        if status == "finished":
            finished.append(name)
        else:
            todo[name] = cfg
    return finished, todo


def prepare_experiment(out: str | Path, experiment: str, jobs: dict[str, list[str]]) -> tuple[Path, dict]:
    """Check `out` and every job before anything is written: (out as a Path, {job: config})."""
    check_experiment_out(out, experiment)
    configs = build_configs(jobs, Path(out))
    split_finished(configs)
    return prepare_run_dir(out), configs


def run_jobs(configs: dict, workers: int | None = None, label: str = "") -> dict[str, dict]:
    """Train every config not finished yet, `workers` at a time in threads; returns {name:
    summary} of all of them. A job finished already with the same settings is read back, not
    trained again; an interrupted one resumes from its checkpoint (`sweep.train_or_resume`);
    one of other settings is refused (`split_finished`).

    XLA runs these small networks on about one core each and releases the GIL while it runs,
    so two threads on two cores give about 1.6x the throughput of one (see benchmarks/).
    """
    from qtran.run_notices import say
    from qtran.sweep import train_or_resume

    finished, todo = split_finished(configs)
    if finished:
        say(f"{label}{len(finished)} of {len(configs)} runs finished already with these settings, "
            f"kept and not trained again: {', '.join(finished)}")
    summaries = {name: read_summary(configs[name].out) for name in finished}
    jobs = [(name, cfg, f"{label}{name:<16}", i) for i, (name, cfg) in enumerate(todo.items())]
    for cfg in todo.values():
        prepare_run_dir(cfg.out)
    if (workers or default_workers(len(todo))) == 1 or len(todo) <= 1:  # in this thread: Ctrl-C checkpoints
        for name, cfg, desc, i in jobs:
            summaries[name] = train_or_resume(cfg, Path(cfg.out), desc, i)
    else:
        with ThreadPoolExecutor(workers or default_workers(len(todo))) as pool:
            futures = {name: pool.submit(train_or_resume, cfg, Path(cfg.out), desc, i) for name, cfg, desc, i in jobs}
            summaries.update({name: f.result() for name, f in futures.items()})
    return {name: summaries[name] for name in configs}


def write_manifest(out: Path, experiment: str, **details) -> None:
    """experiment.json: what `qtran plot` needs to redraw this experiment's figures."""
    write_json(out / "experiment.json", {"experiment": experiment, **details})


def with_earlier(out: Path, key: str, values, order) -> list[str]:
    """`values` and those experiment.json already lists under `key` (runs of an earlier command
    into the same out=), in `order`: a second command never hides the first one's runs."""
    earlier = (read_manifest(out) or {}).get(key)
    earlier = [v for v in earlier if isinstance(v, str)] if isinstance(earlier, list) else []
    chosen = set(values) | set(earlier)
    # names outside `order` (table1's successors: qplex, ow-qmix, cw-qmix) follow, first seen first
    return [v for v in order if v in chosen] + list(dict.fromkeys(v for v in [*earlier, *values] if v not in order))


def read_manifest(out: str | Path) -> dict | None:
    path = Path(out) / "experiment.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8
        raise UserError(f"{path}: cannot read it ({type(err).__name__})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: not a qtran experiment manifest (not a JSON object)")
    return manifest


def load_summaries(out: Path, names, required: bool = True) -> dict[str, dict]:
    """{name: summary} of the runs out/<name> that have finished, in the order of `names`.
    Nothing finished raises UserError when `required`; else it gives {} (a claims table still
    has to say "not run")."""
    found = {}
    for name in names:
        if (out / name / "summary.json").is_file():
            found[name] = read_summary(out / name)
    if required and not found:
        raise UserError(f"no finished runs under {out}")
    return found


def parse_workers(overrides: list[str]) -> tuple[int | None, list[str]]:
    """Take `workers=N` out of a list of overrides."""
    workers, rest = None, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "workers":
            workers = whole_number(key, value)
            if workers < 1:
                raise UserError(f"workers must be a positive integer, got {value!r}")
        else:
            rest.append(item)
    return workers, rest


def final_reward_table(rows: dict[str, dict[str, object]], algos, what: str) -> str:
    """A Markdown table: one row per setting, one column per algorithm, each cell the mean and
    the interval half-width of that setting's final per-seed rewards (None: not run)."""
    from qtran.plots import ALGO_LABELS, INTERVAL_METHOD, format_mean_ci

    lines = [f"{what}, mean +- half-width of the {INTERVAL_METHOD}", "",
             "| setting | " + " | ".join(ALGO_LABELS.get(a, a) for a in algos) + " |",
             "|---|" + "---|" * len(algos)]
    for label, finals in rows.items():
        cells = []
        for a in algos:
            values = finals.get(a)
            if values is None:
                cells.append("-")
                continue
            cells.append(format_mean_ci(values, digits=2, count=True))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comma_choices(key: str, value: str, allowed: dict[str, str]) -> tuple[str, ...]:
    """A comma list of names from `allowed` ({typed: meant}), each once, at least one."""
    items = [v.strip() for v in value.split(",")]
    for item in items:
        if item not in allowed:
            raise UserError(f"{key}={value!r}: {item!r} is not one of {', '.join(allowed)}")
    if len(set(items)) != len(items):
        raise UserError(f"{key}={value!r} names a value twice")
    return tuple(allowed[i] for i in items)


def parse_algos(overrides: list[str], allowed) -> tuple[tuple[str, ...], list[str]]:
    """Take `algos=a,b` (a subset of `allowed`, default all) out of the overrides: (the
    algorithms in `allowed`'s order, the rest)."""
    algos, rest = tuple(allowed), []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "algos":
            algos = comma_choices("algos", value, {a: a for a in allowed})
        else:
            rest.append(item)
    return tuple(a for a in allowed if a in algos), rest
