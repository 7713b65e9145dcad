"""Run directories: resolved config, metrics CSV, TensorBoard events and summary.json.

Every number a report or figure shows is read back from these files.
"""

from __future__ import annotations

import csv
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from qtran.errors import UserError

# `run` is the index into the run batch (the order of summary.json's `seeds`, of `--run` in
# eval and render); `env_value` is the run's value of the batched setting (`env_values`;
# summary.json's `env_value_name` says which setting), empty without one.
METRIC_COLUMNS = ["step", "run", "seed", "env_value", "eval_return", "train_return", "epsilon",
                  "loss", "loss_td", "loss_opt", "loss_nopt"]

# What qtran itself writes into a run directory (training, resume, plot, render). Only a
# directory holding nothing else may be emptied by `qtran train --overwrite`.
RUN_FILES = {"config.yaml", "metrics.csv", "summary.json", "params.npz", "eval_episodes.npz", "tables.npz",
             "checkpoints", "tb", "curves.png", "curves.svg", "curves.txt", ".write-test"}
RUN_FILE_PATTERNS = ("episode_run*.gif", "*.tmp")


def default_out(algo: str, env_name: str) -> str:
    """runs/<algo>-<env>-<time>, with a suffix when two runs start within the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{algo}-{env_name.replace(':', '-')}-{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    return str(path)


def run_status(path: str | Path) -> str | None:
    """"finished" (summary.json), "interrupted" (config.yaml or checkpoints, no summary) or
    None: the directory holds no qtran run."""
    path = Path(path)
    if (path / "summary.json").is_file():
        return "finished"
    if (path / "config.yaml").is_file() or any((path / "checkpoints").glob("ckpt-*.npz")):
        return "interrupted"
    return None


def foreign_entries(path: Path) -> list[str]:
    """Names in a run directory that qtran did not write there (sorted)."""
    return sorted(p.name for p in path.iterdir()
                  if p.name not in RUN_FILES and not any(p.match(pat) for pat in RUN_FILE_PATTERNS))


def claim_run_dir(path: str | Path, overwrite: bool = False) -> bool:
    """May a new run train into `path`? A directory that already holds a run is refused; with
    `overwrite` it is accepted if it holds nothing but qtran's run files. Returns whether it
    must be emptied (`empty_run_dir`) before training; raises UserError when refused."""
    path = Path(path)
    status = run_status(path) if path.is_dir() else None
    if status is None:
        return False
    if not overwrite:
        hint = (f"continue it with: qtran resume {path}" if status == "interrupted"
                else "qtran resume continues only unfinished runs")
        raise UserError(f"out={path} already holds a{'n' if status == 'interrupted' else ''} {status} run "
                        f"({hint}); choose another out=, or pass --overwrite to delete it and train anew")
    foreign = foreign_entries(path)
    if foreign:
        raise UserError(f"out={path} holds a run and files qtran did not write ({', '.join(foreign[:3])}); "
                        "--overwrite empties only run directories: move them or choose another out=")
    return True


def empty_run_dir(path: str | Path) -> None:
    """Delete everything in `path` (a run directory `claim_run_dir` accepted for overwriting)."""
    import shutil

    for entry in Path(path).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def prepare_run_dir(path: str | Path) -> Path:
    """Create the directory and prove it is writable, before any training starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to out={path}: {err.strerror or err}") from None
    return path


def to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


class RunWriter:
    """Appends metrics rows (CSV, and TensorBoard when enabled) and writes the summary."""

    def __init__(self, path: Path, tensorboard: bool = True, resume_step: int | None = None):
        """With `resume_step`, continue a run's files: rows logged after that step (written
        after its last checkpoint) are dropped, and TensorBoard is told to purge them too."""
        self.path = path
        kept = _rows_up_to(path / "metrics.csv", resume_step) if resume_step is not None else []
        self._csv_file = open(path / "metrics.csv", "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        self._csv.writeheader()
        self._csv.writerows(kept)
        self._csv_file.flush()
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(logdir=str(path / "tb"), purge_step=purge)

    def log(self, step: int, seeds: list[int], per_seed: dict[str, np.ndarray],
            env_values: list[float | None] | None = None) -> None:
        """One CSV row per run; TensorBoard gets the mean over seeds, per env value if batched."""
        values_of_runs = env_values if env_values is not None else [None] * len(seeds)
        for k, (seed, value) in enumerate(zip(seeds, values_of_runs)):
            row = {"step": step, "run": k, "seed": seed, "env_value": "" if value is None else value}
            row.update({name: _fmt(values[k]) for name, values in per_seed.items()})
            self._csv.writerow(row)
        self._csv_file.flush()
        if self._tb is not None:
            for group, runs in run_groups(values_of_runs).items():
                suffix = "mean" if group is None else f"mean_env_value={group:g}"
                for name, values in per_seed.items():
                    values = np.asarray(values, dtype=float)[runs]
                    if np.all(np.isfinite(values)):
                        self._tb.add_scalar(f"{name}/{suffix}", float(values.mean()), step)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)

    def close(self) -> None:
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()


def run_groups(env_values: list | None) -> dict[float | None, list[int]]:
    """Run indices grouped by env value, in first-seen order ({None: all runs} without values)."""
    groups: dict = {}
    for k, value in enumerate(env_values or []):
        groups.setdefault(None if value is None else float(value), []).append(k)
    return groups


def run_ids(seeds: list[int], env_values: list | None) -> dict[str, np.ndarray]:
    """Arrays that name the runs of a per-run array file: `seeds` and, if batched, `env_values`."""
    ids = {"seeds": np.asarray(seeds, dtype=np.int64)}
    if env_values is not None and any(v is not None for v in env_values):
        ids["env_values"] = np.asarray(env_values, dtype=np.float64)
    return ids


def _rows_up_to(path: Path, step: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("step", "").isdigit() and int(row["step"]) <= step]


def _fmt(value) -> str:
    value = float(value)
    return "" if not np.isfinite(value) else f"{value:.6g}"


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1))
    tmp.replace(path)


def read_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise UserError(f"no summary.json in {run_dir} (not a finished qtran run directory)")
    try:
        summary = json.loads(path.read_text())
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8
        raise UserError(f"{path}: cannot read it ({type(err).__name__})") from None
    _check_summary(summary, path)
    return summary


# What every summary.json holds (see run.py), and what readers of one may rely on.
SUMMARY_FIELDS = {"algo": str, "env": str, "seeds": list, "steps": int, "final_eval_return": list,
                  "eval_curve": dict}


def _check_summary(summary, path: Path) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise UserError(f"{path}: not a qtran summary ({what})")

    need(isinstance(summary, dict), "not a JSON object")
    for key, kind in SUMMARY_FIELDS.items():
        value = summary.get(key)
        need(isinstance(value, kind) and not isinstance(value, bool), f"{key!r} missing or not {kind.__name__}")
    need(len(summary["final_eval_return"]) == len(summary["seeds"]), "one final_eval_return per seed")
    need(all(_is_number(r) for r in summary["final_eval_return"]),
         "final_eval_return must hold numbers")
    curve = summary["eval_curve"]
    need(isinstance(curve.get("steps"), list) and isinstance(curve.get("returns"), list),
         "eval_curve needs steps and returns")
    runs = len(summary["seeds"])
    need(len(curve["returns"]) == len(curve["steps"])
         and all(isinstance(row, list) and len(row) == runs and all(_is_number(r) for r in row)
                 for row in curve["returns"]),
         "eval_curve.returns needs one row of numbers per step, one number per run")
    values = summary.get("env_values")
    need(values is None or (isinstance(values, list) and len(values) == runs and all(_is_number(v) for v in values)),
         "env_values must hold one number per run")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def marl_eval_runs(run_dir: str | Path, metric: str = "return") -> dict:
    """One run directory in marl-eval's raw-data layout: {"run_<seed>": {"step_k": ...}}.

    Each evaluation becomes `step_k` with `step_count` and the per-episode greedy returns;
    `absolute_metrics` holds the final evaluation's episodes (marl-eval's convention is a
    larger final evaluation; we reuse the last one and say so here).
    """
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    with np.load(run_dir / "eval_episodes.npz", allow_pickle=False) as data:
        steps, returns = data["steps"], data["returns"]  # [E], [E, seeds, episodes]
    runs = {}
    values, value_name = summary.get("env_values"), summary.get("env_value_name", "env_value")
    for k, seed in enumerate(summary["seeds"]):
        # with env_values one seed trains once per value: the value is part of the run's name
        name = f"run_{seed}" if values is None else f"run_{seed}_{value_name}={values[k]}"
        run = {f"step_{e}": {"step_count": int(steps[e]), metric: returns[e, k].tolist()} for e in range(len(steps))}
        run["absolute_metrics"] = {metric: returns[-1, k].tolist()}
        runs[name] = run
    return runs


def marl_eval_export(groups: dict[str, dict[str, dict[str, str | Path]]], path: Path) -> None:
    """Write {env: {task: {algo: run_dir}}} as one marl-eval JSON file."""
    data = {env: {task: {algo: marl_eval_runs(d) for algo, d in algos.items()} for task, algos in tasks.items()}
            for env, tasks in groups.items()}
    write_json(path, data)


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def save_params(path: Path, params, ids: dict[str, np.ndarray] | None = None) -> None:
    """A parameter pytree as .npz, one array per leaf named by its path (no pickle), and
    `ids`: which run each entry of the leading run axis is (`run_ids`)."""
    import jax

    leaves = {_path_name(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    clash = set(leaves) & set(ids or {})
    if clash:
        raise ValueError(f"parameter names {sorted(clash)} clash with the run ids")
    np.savez_compressed(path, **(ids or {}), **leaves)


def load_params(path: Path, template):
    """Fill `template` (a pytree of the same structure) with the arrays saved by save_params."""
    import jax

    if not Path(path).is_file():
        raise UserError(f"no saved parameters at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            flat, treedef = jax.tree_util.tree_flatten_with_path(template)
            missing = [_path_name(p) for p, _ in flat if _path_name(p) not in data]
            if missing:
                raise UserError(f"{path} does not match this configuration (missing {missing[0]})")
            arrays = [data[_path_name(p)] for p, _ in flat]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # not an .npz of plain arrays
        raise UserError(f"{path}: cannot read saved parameters ({type(err).__name__})") from None
    for (p, leaf), array in zip(flat, arrays):  # saved arrays carry a leading run axis
        if array.ndim < 1 or array.shape[1:] != tuple(leaf.shape):
            raise UserError(f"{path} does not match this configuration ({_path_name(p)} has shape {array.shape})")
    return jax.tree_util.tree_unflatten(treedef, arrays)
