"""`qtran plot`: redraw figures from run directories alone, without training again.

A directory written by `qtran reproduce <experiment>` (it holds experiment.json) is redrawn
exactly as that experiment draws it. Plain run directories from `qtran train` are drawn as
learning curves, one line per run directory (mean over its seeds), one panel per environment:

- one panel per environment (summary.json's `env`), and per value of a batched setting
  (`env_values`): rewards of different environments, or of one game at two penalties, have
  different scales and optima, so they are never averaged into one line nor drawn against
  one environment's title and optimum line;
- the figure of one run directory goes into it (`curves.png/.svg/.txt`), as before; a
  figure of several goes only to `--out`, which must not be one of the runs (or inside one),
  so that plotting never overwrites a run's own figure;
- with `--out`, an experiment directory's figures and tables go there and nowhere else (the
  directory itself is only read): redrawing committed results never rewrites them;
- a sweep directory (`qtran sweep`: summary.csv and one run directory per point) is drawn as
  its finished runs, into itself unless `--out` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from qtran.errors import UserError
from qtran.experiments.common import read_manifest
from qtran.results import read_summary, run_groups, run_status


def redraw(run_dirs: list[str], out: str | None = None) -> list[Path]:
    written, plain, experiments = [], [], []
    for d in run_dirs:
        if not Path(d).is_dir():
            raise UserError(f"not a directory: {d}")
        manifest = read_manifest(d)
        if manifest is not None:
            experiments.append((d, manifest.get("experiment")))
        elif run_status(d) is None and (Path(d) / "summary.csv").is_file():
            sweep_runs = finished_runs_of_sweep(d)
            written += _curves(sweep_runs, Path(out) if out is not None else Path(d))
        else:
            plain.append(d)
    if out is not None and len(experiments) > 1:
        raise UserError(f"--out takes one experiment directory at a time ({len(experiments)} given); "
                        "their figures would overwrite each other")
    for d, kind in experiments:
        written += draw_experiment(d, kind, out)
    if plain:
        written += _curves(plain, curves_out(plain, out))
    return written


def draw_experiment(d: str, kind, dest: str | None) -> list[Path]:
    """An experiment directory's figures and tables, into `dest` (default: the directory)."""
    if kind == "fig3":
        from qtran.experiments import fig3

        return fig3.draw(d, dest=dest)
    if kind == "fig2":
        from qtran.experiments import fig2

        return fig2.draw(d, dest=dest)
    if kind == "fig4":
        from qtran.experiments import fig4

        return fig4.draw(d, dest=dest)
    if kind == "compare":
        from qtran.experiments import compare

        return compare.draw(d, dest=dest)
    if kind == "table1":
        from qtran.experiments import table1

        to = Path(dest) if dest is not None else Path(d)
        to.mkdir(parents=True, exist_ok=True)
        (to / "report.txt").write_text(table1.report(table1.load(d)))
        return [to / "report.txt"]
    raise UserError(f"{d}: unknown experiment {kind!r} in experiment.json")


def finished_runs_of_sweep(sweep_dir: str) -> list[str]:
    """The finished run directories of a sweep directory, in name order."""
    found = sorted(str(p.parent) for p in Path(sweep_dir).glob("*/summary.json"))
    if not found:
        raise UserError(f"{sweep_dir}: a sweep directory without finished runs; nothing to draw")
    return found


def curves_out(run_dirs: list[str], out: str | None) -> Path:
    """Where the learning-curve figure of plain run directories goes (see the module notes)."""
    if out is None:
        if len(run_dirs) > 1:
            raise UserError(f"a figure of {len(run_dirs)} runs needs --out DIR (a new directory; "
                            "it is never written into one of the runs)")
        return Path(run_dirs[0])
    target = Path(out).resolve()
    for d in run_dirs:
        inside = Path(d).resolve()
        if len(run_dirs) > 1 and (target == inside or inside in target.parents):
            raise UserError(f"--out {out} is (inside) the run {d}; a figure of several runs goes to a "
                            "directory of its own")
    if len(run_dirs) > 1 and target.is_dir() and run_status(target) is not None:
        raise UserError(f"--out {out} holds a run; a figure of several runs goes to a directory of its own")
    return Path(out)


def env_groups(run_dir: str, summary: dict) -> list[tuple[str, list[int]]]:
    """(environment name, indices of the runs trained on it) of one run directory: one group,
    or one per value of its batched setting (`env_values`)."""
    values = summary.get("env_values")
    if values is None:
        return [(summary["env"], list(range(len(summary["seeds"]))))]
    name = summary.get("env_value_name") or "env_value"
    return [(_env_name_at(run_dir, summary, name, v), runs) for v, runs in run_groups(values).items()]


def _env_name_at(run_dir: str, summary: dict, setting: str, value: float) -> str:
    """The environment's name with its batched setting at `value`, as a run trained with
    `env.<setting>=value` names it (so that both land in the same panel)."""
    from qtran.config import load_config
    from qtran.envs import make_env

    try:
        cfg = load_config(run_dir)
        if setting in cfg.env:
            cfg.env[setting] = value
            return make_env(cfg.env).name
    except UserError:
        pass
    return f"{summary['env']} with {setting}={value:g}"


def _curves(run_dirs: list[str], out: Path) -> list[Path]:
    import numpy as np

    from qtran.plots import ALGO_LABELS, plot_curve_panels, plot_curves

    panels: dict[str, dict] = {}  # environment name -> {"title", "curves", "references"}
    for d in run_dirs:
        s = read_summary(d)
        ref = s.get("env_reference") if isinstance(s.get("env_reference"), dict) else {}
        returns = np.asarray(s["eval_curve"]["returns"], dtype=float).reshape(len(s["eval_curve"]["steps"]), -1)
        for env, runs in env_groups(d, s):
            panel = panels.setdefault(env, {"title": env, "curves": {}, "references": {
                k: ref[k] for k in ("optimum", "pitfall") if isinstance(ref.get(k), (int, float))}})
            algo = s["algo"]
            name = algo if algo not in panel["curves"] else f"{algo} ({Path(d).name})"
            panel["curves"][name] = {"algo": algo, "label": ALGO_LABELS.get(algo, algo) + name[len(algo):],
                                     "steps": s["eval_curve"]["steps"], "returns": returns[:, runs]}
    if len(panels) == 1:
        panel = next(iter(panels.values()))
        return plot_curves(panel["curves"], out / "curves", f"Greedy evaluation on {panel['title']}",
                           references=panel["references"])
    return plot_curve_panels(list(panels.values()), out / "curves", "Greedy evaluation, one panel per environment")
