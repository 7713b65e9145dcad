"""`qtran sweep`: the cartesian product of comma-separated override values, one run each.

    qtran sweep algo=qtran-base,qtran-alt,vdn,qmix env=predator_prey env.penalty=0.5,1.0,1.5 seeds=5

is 12 runs; each trains its own seeds as one vmapped batch (`qtran.run.train`). Runs land in
one sweep directory, one sub-directory per run named from the values it was given
(`algo=vdn,env.penalty=1.0`), with `summary.md` and `summary.csv` beside them: one row per
run, its final greedy return as mean and 95% interval over seeds.

Sweep-level settings, taken off before the rest goes to `qtran.config.make_config`:

    backend=local|ray   local (default): the runs one after another (or `workers` at a time,
                        in threads) on this machine; ray: one Ray task per run
    address=ADDR        ray: the cluster to join (`auto`, or the head's host:port); default:
                        start a Ray instance on this machine with `workers` CPUs
    out=DIR             the sweep directory (default runs/sweep-<time>)
    max_retries=N       times a failed run is tried again (default: 3 on Ray, 0 locally)
    workers=N           runs at once: local threads (default 1), or the CPUs of the local
                        Ray instance (default: every core)

Every run's configuration is resolved and checked before any run starts. Running the same
command again (same `out`) skips finished runs (those with a summary.json), continues
interrupted ones from their checkpoints where `qtran.run.resume` exists, and starts the
others over.

Ray tasks train in a temporary directory on whichever node runs them and send the run's
files back, so the sweep directory need not be on a shared filesystem. Relative paths in
the settings (a payoff file) are read relative to this command's working directory, so on a
multi-node cluster they must exist at the same place on every node.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qtran.errors import UserError

SWEEP_KEYS = ("backend", "address", "out", "max_retries", "workers")
BACKENDS = ("local", "ray")
MAX_RUNS = 10_000  # a grid this large is almost certainly a typo
MAX_NAME = 120  # characters of a run directory's name before it is shortened with a hash
# JAX inside a Ray worker: one XLA thread and one CPU device per task. Ray gives each task one
# CPU, and without this every worker process would size its thread pools to every core of the
# node (and qtran.runtime would make one device per core). Checked to give the same bits as the
# default multi-threaded CPU runtime for these networks (tests).
RAY_XLA_FLAGS = ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 "
                 "--xla_force_host_platform_device_count=1")


@dataclass(frozen=True)
class Run:
    """One point of the grid."""

    name: str  # its directory under the sweep directory
    overrides: tuple[str, ...]  # every key=value it is trained with (less out=)
    varied: tuple[tuple[str, str], ...]  # the swept keys and this run's values


@dataclass
class Options:
    backend: str = "local"
    address: str | None = None
    out: str | None = None
    max_retries: int | None = None
    workers: int | None = None

    def retries(self) -> int:
        if self.max_retries is not None:
            return self.max_retries
        return 3 if self.backend == "ray" else 0


@dataclass
class Outcome:
    """What a sweep did: runs trained now, skipped as finished, and failed (name: error)."""

    out: Path
    runs: list[Run]
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)


# ---- the grid -------------------------------------------------------------------------------


def split_values(value: str) -> list[str]:
    """`a,b,[1,2]` -> ['a', 'b', '[1,2]']: commas inside brackets or quotes do not split."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(value):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"expected key=value, got {item!r}")
    return key, value


def _canonical(key: str) -> str:
    return "env" if key == "env.name" else key


def _positive_int(key: str, value: str, minimum: int) -> int:
    from qtran.config_keys import whole_number

    number = whole_number(key, value)
    if number < minimum:
        raise UserError(f"{key} must be an integer of at least {minimum}, got {value!r}")
    return number


def parse_options(items: list[tuple[str, str]]) -> Options:
    opts = Options()
    for key, value in items:
        if key == "backend":
            if value not in BACKENDS:
                raise UserError(f"backend={value!r} is unknown; choose one of {', '.join(BACKENDS)}")
            opts.backend = value
        elif key == "address":
            if not value.strip():
                raise UserError("address must not be empty (use address=auto for a running cluster)")
            opts.address = value.strip()
        elif key == "out":
            if not value.strip():
                raise UserError("out must not be empty")
            opts.out = value
        elif key == "max_retries":
            opts.max_retries = _positive_int(key, value, 0)
        elif key == "workers":
            opts.workers = _positive_int(key, value, 1)
    if opts.address is not None and opts.backend != "ray":
        raise UserError("address= needs backend=ray")
    if opts.address is not None and opts.workers is not None:
        raise UserError("workers= sets the CPUs of a Ray instance started here; "
                        "with address= the cluster's resources decide")
    return opts


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


def run_name(varied: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """A run's directory name from its swept values: `algo=vdn,env.penalty=1.0`.

    Anything but letters, digits and `._=,+-` becomes `_`; a name so changed, or cut for
    length, ends with a hash of the full text so that names stay distinct."""
    if not varied:
        return "run"
    text = ",".join(f"{k}={v}" for k, v in varied)
    name = _UNSAFE.sub("_", text)
    if name != text or len(name) > MAX_NAME or name.startswith("."):
        import hashlib

        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[:MAX_NAME]}-{digest}".lstrip(".")
    return name


def parse_grid(overrides: list[str]) -> tuple[Options, list[Run]]:
    """Sweep options and the runs of the grid, first key varying slowest."""
    options, keys, values = [], [], []
    seen = set()
    for item in overrides:
        key, value = _key_value(item)
        if _canonical(key) in seen:
            raise UserError(f"{key} is given twice; list its values once: {key}=a,b,...")
        seen.add(_canonical(key))
        if key in SWEEP_KEYS:
            if len(split_values(value)) > 1:
                raise UserError(f"{key} is a setting of the sweep itself and takes one value, got {value!r}")
            options.append((key, value))
        else:
            keys.append(key)
            values.append(split_values(value))
    opts = parse_options(options)
    size = math.prod(len(v) for v in values)
    if size > MAX_RUNS:
        raise UserError(f"the grid has {size} runs; at most {MAX_RUNS} in one sweep")
    swept = [i for i, v in enumerate(values) if len(v) > 1]
    runs, names = [], set()
    for combo in itertools.product(*values):
        varied = tuple((keys[i], combo[i]) for i in swept)
        name = run_name(varied)
        if name in names:
            raise UserError(f"two runs of the grid would share the directory {name!r} (a value given twice?)")
        names.add(name)
        runs.append(Run(name, tuple(f"{k}={v}" for k, v in zip(keys, combo)), varied))
    return opts, runs


# ---- checking -------------------------------------------------------------------------------


def run_config(run: Run, out: Path):
    from qtran.config import make_config

    return make_config(list(run.overrides) + [f"out={out / run.name}"])


def build_configs(runs: list[Run], out: Path) -> dict[str, object]:
    """Every run's resolved config, each fully checked, before any run starts."""
    from qtran.checks import check_runnable

    configs = {}
    for run in runs:
        try:
            cfg = run_config(run, out)
            check_runnable(cfg)
        except UserError as err:
            where = f"run {run.name}: " if run.varied else ""
            raise UserError(f"{where}{err}") from None
        configs[run.name] = cfg
    return configs


def _settings(cfg) -> dict:
    """A config less where and how it prints: what decides a run's results."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg)
    for key in ("out", "progress", "tensorboard", "compile_cache"):
        data.pop(key, None)
    return data


def _flat(data, prefix: str = "") -> dict:
    """{dotted key: value} of nested settings."""
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def settings_difference(run_dir: Path, cfg) -> str | None:
    """How the run saved in `run_dir` was trained differently from `cfg` (`seeds=10 there,
    2 here; ...`), "its config.yaml cannot be read" when that fails, None when they agree."""
    from qtran.config import load_config

    try:
        old, new = _flat(_settings(load_config(run_dir))), _flat(_settings(cfg))
    except UserError:
        return "its config.yaml cannot be read"
    differ = [k for k in dict.fromkeys([*old, *new]) if old.get(k, "(unset)") != new.get(k, "(unset)")]
    if not differ:
        return None
    shown = "; ".join(f"{k}={old.get(k, '(unset)')} there, {new.get(k, '(unset)')} here" for k in differ[:3])
    return shown + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")


def saved_matches(run_dir: Path, cfg) -> bool:
    return settings_difference(run_dir, cfg) is None


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()


def can_resume(run_dir: Path) -> bool:
    from qtran import run as qrun

    return hasattr(qrun, "resume") and (run_dir / "checkpoints").is_dir() and (run_dir / "config.yaml").is_file()


# ---- running one run ------------------------------------------------------------------------


def run_one(overrides: list[str] | tuple[str, ...], run_dir: str | Path, desc: str | None = None,
            position: int | None = None) -> dict:
    """Train one run into `run_dir` and return its summary (`train_or_resume`).
    `desc` and `position` label its progress bar (several runs in threads)."""
    from qtran.config import make_config

    return train_or_resume(make_config(list(overrides) + [f"out={run_dir}"]), Path(run_dir), desc, position)


def train_or_resume(cfg, run_dir: Path, desc: str | None = None, position: int | None = None) -> dict:
    """A finished run is left alone (its summary is read back); an interrupted one with
    checkpoints of these settings is resumed when `qtran.run.resume` exists; anything else
    (an earlier attempt's partial files) starts over."""
    from qtran import run as qrun
    from qtran.results import read_summary, run_status

    if is_finished(run_dir):
        return read_summary(run_dir)
    if run_dir.is_dir() and can_resume(run_dir) and saved_matches(run_dir, cfg):
        return qrun.resume(run_dir, desc=desc, position=position)
    if run_dir.is_dir() and run_status(run_dir) is not None:
        shutil.rmtree(run_dir)  # an earlier attempt's partial files, started over
    return qrun.train(cfg, desc=desc, position=position)


def _attempts(function, retries: int):
    """function() with `retries` more tries after an exception (a UserError is not retried)."""
    for attempt in range(retries + 1):
        try:
            return function()
        except (UserError, KeyboardInterrupt):
            raise
        except Exception:
            if attempt == retries:
                raise


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip()


# ---- Ray ------------------------------------------------------------------------------------


def pack_dir(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def unpack_dir(files: dict[str, bytes], path: Path) -> None:
    """Write a packed run directory; summary.json last, so that a run is only ever seen as
    finished once every other file is in place."""
    path.mkdir(parents=True, exist_ok=True)
    for rel in sorted(files, key=lambda r: r == "summary.json"):
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(files[rel])
        tmp.replace(target)


def remote_run(overrides: tuple[str, ...], name: str, files: dict[str, bytes], cwd: str) -> dict[str, bytes]:
    """A Ray task: one run trained in a temporary directory on the worker, its files returned.

    `files` is what the sweep directory already holds of the run (checkpoints to resume
    from); `cwd` is the sweep command's working directory, for relative paths in settings."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    with tempfile.TemporaryDirectory(prefix="qtran-sweep-") as tmp:
        run_dir = Path(tmp) / name
        if files:
            unpack_dir({k: v for k, v in files.items() if k != "summary.json"}, run_dir)
        run_one(overrides, run_dir)
        return pack_dir(run_dir)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("backend=ray needs Ray: pip install 'qtran[ray]'") from None
    return ray


def _finish_remote(files: dict[str, bytes], cfg, run_dir: Path) -> None:
    """Place a Ray task's files in the sweep directory, with this machine's paths in them."""
    import json

    from omegaconf import OmegaConf

    files = dict(files)
    files["config.yaml"] = OmegaConf.to_yaml(cfg).encode()
    if "summary.json" in files:
        summary = json.loads(files["summary.json"])
        if "run_dir" in summary:
            summary["run_dir"] = str(run_dir)
        files["summary.json"] = json.dumps(summary, indent=1).encode()
    if run_dir.is_dir():
        shutil.rmtree(run_dir)
    unpack_dir(files, run_dir)


def _run_ray(todo: list[Run], configs: dict, out: Path, opts: Options, outcome: Outcome, log) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        with warnings.catch_warnings():
            # JAX warns on any fork once it runs (it did, checking the configs); Ray's fork
            # is subprocess's fork-and-exec of its own processes, which is safe.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            if opts.address is None:
                ray.init(num_cpus=opts.workers or os.cpu_count() or 1, include_dashboard=False)
            else:
                try:
                    ray.init(address=opts.address)
                except (ConnectionError, RuntimeError, ValueError) as err:
                    raise UserError(f"cannot join the Ray cluster at address={opts.address}: "
                                    f"{_describe(err)}") from None
        started = True
    try:
        flags = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), RAY_XLA_FLAGS) if f)
        task = ray.remote(remote_run).options(
            num_cpus=1, max_retries=opts.retries(), retry_exceptions=True,
            runtime_env={"env_vars": {"XLA_FLAGS": flags}})
        cwd = os.getcwd()
        pending = {}
        for run in todo:
            run_dir = out / run.name
            files = pack_dir(run_dir) if can_resume(run_dir) and saved_matches(run_dir, configs[run.name]) else {}
            pending[task.remote(run.overrides, run.name, files, cwd)] = run
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            try:
                files = ray.get(ready[0])
            except Exception as err:  # noqa: BLE001 (RayTaskError after every retry, a lost worker...)
                cause = getattr(err, "cause", None) or err
                outcome.failed[run.name] = _describe(cause)
                log(f"  failed: {run.name}: {outcome.failed[run.name]}")
                continue
            _finish_remote(files, configs[run.name], out / run.name)
            outcome.trained.append(run.name)
            log(f"  done: {run.name}")
    finally:
        if started:
            ray.shutdown()


def _run_local(todo: list[Run], out: Path, opts: Options, outcome: Outcome, log) -> None:
    def one(run: Run) -> Exception | None:
        try:
            _attempts(lambda: run_one(run.overrides, out / run.name), opts.retries())
        except Exception as err:  # noqa: BLE001 (a failed run is reported; the others go on)
            return err
        return None

    def record(run: Run, error: Exception | None) -> None:
        if error is None:
            outcome.trained.append(run.name)
            log(f"  done: {run.name}")
        else:
            outcome.failed[run.name] = _describe(error)
            log(f"  failed: {run.name}: {outcome.failed[run.name]}")

    if (opts.workers or 1) == 1:
        for run in todo:
            record(run, one(run))
        return
    with ThreadPoolExecutor(opts.workers) as pool:
        for run, future in [(run, pool.submit(one, run)) for run in todo]:
            record(run, future.result())


# ---- the summary table ----------------------------------------------------------------------


def collect_table(out: Path, runs: list[Run], failed: dict[str, str] | None = None) -> list[dict]:
    """One row per run: its swept values, final greedy return (mean, 95% half-width over seeds),
    steps and seconds, read from the run's summary.json. A run trained with `env_values` gives
    one row per value (column `env_value`): its values are different tasks, never averaged."""
    from qtran.plots import mean_ci
    from qtran.results import read_summary, run_groups

    failed = failed or {}
    rows = []
    for run in runs:
        row = {"run": run.name, **dict(run.varied), "status": "missing", "n": 0, "mean": math.nan,
               "ci95": math.nan, "steps": None, "seconds": None}
        if not is_finished(out / run.name):
            if run.name in failed:
                row.update(status="failed", error=failed[run.name])
            rows.append(row)
            continue
        s = read_summary(out / run.name)
        returns = np.asarray(s["final_eval_return"], dtype=float)
        row.update(status="done", steps=s.get("steps"),
                   seconds=float(s.get("compile_seconds", 0.0)) + float(s.get("train_seconds", 0.0)))
        for value, idx in run_groups(s.get("env_values") or [None] * len(returns)).items():
            mean, half = mean_ci(returns[idx])
            extra = {} if value is None else {"env_value": value}
            rows.append(dict(row, n=len(idx), mean=float(mean), ci95=float(half), **extra))
    return rows


def _num(x, digits: int) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def write_table(out: Path, rows: list[dict], keys: list[str]) -> tuple[Path, Path]:
    from qtran.plots import INTERVAL_METHOD

    if any("env_value" in r for r in rows):  # a batched setting: which value each row is
        keys = [*keys, "env_value"]
    columns = ["run", *keys, "status", "seeds", "final_return_mean", "final_return_ci95", "steps", "seconds"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r["run"], *(r.get(k, "") for k in keys), r["status"], r["n"],
                         _num(r["mean"], 6), _num(r["ci95"], 6), r["steps"] if r["steps"] is not None else "",
                         _num(r["seconds"], 1)])
    csv_path = out / "summary.csv"
    csv_path.write_text(buf.getvalue())

    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"Final greedy evaluation return, mean +- half-width of the {INTERVAL_METHOD}", "",
             "| run | " + "".join(f"{cell(k)} | " for k in keys) + "final return | seeds | steps | seconds |",
             "|---|" + "---|" * len(keys) + "---|---|---|---|"]
    for r in rows:
        if r["status"] == "done":
            result = f"{r['mean']:.3f}" + (f" +- {r['ci95']:.3f}" if r["n"] > 1 else " (one value, no interval)")
        else:
            result = r["status"] + (f" ({cell(r['error'])})" if r.get("error") else "")
        lines.append(f"| {cell(r['run'])} | " + "".join(f"{cell(r.get(k, ''))} | " for k in keys)
                     + f"{result} | {r['n'] or ''} | {r['steps'] if r['steps'] is not None else ''} | "
                     + f"{_num(r['seconds'], 1)} |")
    md_path = out / "summary.md"
    md_path.write_text("\n".join(lines) + "\n")
    return md_path, csv_path


# ---- the sweep ------------------------------------------------------------------------------


def default_out() -> str:
    return str(Path("runs") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}")


def sweep(overrides: list[str], log=print) -> Outcome:
    """Parse, check every run, then train the runs not finished yet; writes the summary table."""
    from qtran.results import prepare_run_dir

    opts, runs = parse_grid(list(overrides))
    if opts.backend == "ray":
        _import_ray()  # a missing Ray is a usage error, found before anything else
    out = Path(opts.out or default_out())
    configs = build_configs(runs, out)
    outcome = Outcome(out=out, runs=runs)
    todo = []
    for run in runs:
        run_dir = out / run.name
        if is_finished(run_dir):
            if not saved_matches(run_dir, configs[run.name]):
                raise UserError(f"{run_dir} holds a finished run trained with other settings; "
                                "choose another out= or remove it")
            outcome.skipped.append(run.name)
        else:
            todo.append(run)
    prepare_run_dir(out)
    log(f"sweep: {len(runs)} runs, {len(outcome.skipped)} finished already, {len(todo)} to train "
        f"({opts.backend}); directory {out}")
    keys = list(dict.fromkeys(k for run in runs for k, _ in run.varied))
    try:
        if todo and opts.backend == "ray":
            _run_ray(todo, configs, out, opts, outcome, log)
        elif todo:
            _run_local(todo, out, opts, outcome, log)
    finally:
        outcome.rows = collect_table(out, runs, outcome.failed)
        write_table(out, outcome.rows, keys)
    return outcome
