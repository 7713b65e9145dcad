"""`qtran plot`: redraw figures from run directories alone, without training again.

A directory written by `qtran reproduce <experiment>` (it holds experiment.json) is redrawn
exactly as that experiment draws it. Plain run directories from `qtran train` are drawn
together as learning curves, one line per run.
"""

from __future__ import annotations

from pathlib import Path

from qtran.errors import UserError
from qtran.experiments.common import read_manifest
from qtran.results import read_summary


def redraw(run_dirs: list[str], out: str | None = None) -> list[Path]:
    written, plain = [], []
    for d in run_dirs:
        if not Path(d).is_dir():
            raise UserError(f"not a directory: {d}")
        manifest = read_manifest(d)
        if manifest is None:
            plain.append(d)
            continue
        kind = manifest.get("experiment")
        if kind == "fig3":
            from qtran.experiments import fig3

            written += fig3.draw(d)
        elif kind == "fig2":
            from qtran.experiments import fig2

            written += fig2.draw(d)
        elif kind == "fig4":
            from qtran.experiments import fig4

            written += fig4.draw(d)
        elif kind == "compare":
            from qtran.experiments import compare

            written += compare.draw(d)
        elif kind == "table1":
            from qtran.experiments import table1

            report = Path(d) / "report.txt"
            report.write_text(table1.report(table1.load(d)))
            written.append(report)
        else:
            raise UserError(f"{d}: unknown experiment {kind!r} in experiment.json")
    if plain:
        written += _curves(plain, Path(out) if out else Path(plain[0]))
    return written


def _curves(run_dirs: list[str], out: Path) -> list[Path]:
    from qtran.plots import plot_curves

    curves, env = {}, None
    for d in run_dirs:
        s = read_summary(d)
        name = s["algo"] if s["algo"] not in curves else f"{s['algo']} ({Path(d).name})"
        curves[name] = s["eval_curve"]
        env = env or s["env"]
    ref = read_summary(run_dirs[0]).get("env_reference", {})
    refs = {k: ref[k] for k in ("optimum", "pitfall") if ref.get(k) is not None}
    return plot_curves(curves, out / "curves", f"Greedy evaluation on {env}", references=refs)
