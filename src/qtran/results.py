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

METRIC_COLUMNS = ["step", "seed", "eval_return", "train_return", "epsilon",
                  "loss", "loss_td", "loss_opt", "loss_nopt"]


def default_out(algo: str, env_name: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{algo}-{env_name.replace(':', '-')}-{stamp}")


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

    def log(self, step: int, seeds: list[int], per_seed: dict[str, np.ndarray]) -> None:
        for k, seed in enumerate(seeds):
            row = {"step": step, "seed": seed}
            row.update({name: _fmt(values[k]) for name, values in per_seed.items()})
            self._csv.writerow(row)
        self._csv_file.flush()
        if self._tb is not None:
            for name, values in per_seed.items():
                values = np.asarray(values, dtype=float)
                if np.all(np.isfinite(values)):
                    self._tb.add_scalar(f"{name}/mean", float(values.mean()), step)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)

    def close(self) -> None:
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()


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
    need(all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in summary["final_eval_return"]),
         "final_eval_return must hold numbers")
    curve = summary["eval_curve"]
    need(isinstance(curve.get("steps"), list) and isinstance(curve.get("returns"), list),
         "eval_curve needs steps and returns")


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
    for k, seed in enumerate(summary["seeds"]):
        run = {f"step_{e}": {"step_count": int(steps[e]), metric: returns[e, k].tolist()} for e in range(len(steps))}
        run["absolute_metrics"] = {metric: returns[-1, k].tolist()}
        runs[f"run_{seed}"] = run
    return runs


def marl_eval_export(groups: dict[str, dict[str, dict[str, str | Path]]], path: Path) -> None:
    """Write {env: {task: {algo: run_dir}}} as one marl-eval JSON file."""
    data = {env: {task: {algo: marl_eval_runs(d) for algo, d in algos.items()} for task, algos in tasks.items()}
            for env, tasks in groups.items()}
    write_json(path, data)


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def save_params(path: Path, params) -> None:
    """A parameter pytree as .npz, one array per leaf named by its path (no pickle)."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    np.savez_compressed(path, **{_path_name(p): np.asarray(v) for p, v in leaves})


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
