"""The paper's claims about Figure 3, checked against a Figure 3 directory's finished runs.

`qtran claims OUT_DIR` (or `qtran fig3-claims OUT_DIR`) prints the table; `reproduce fig3` and
`qtran plot` write it as `claims.md`. Everything but `load` and `report` is a pure function of
learning curves {(panel, algo): {"steps": [E], "returns": [E, seeds]}} and references
{(panel, algo): Reference}, so each verdict can be tested on hand-made curves.

What a run can earn depends on its s (docs/figure3.md), so rewards are compared with the run's
own reference: `best`, the best reward any joint action reaches with the run's s, and
`pitfall`, the best with x on the pitfall's side of the valley (summary.json `env_runs`). With
s re-drawn every episode there is no s per run; the reference is then the mean of both over
random draws (`env_reference`: expected_best, expected_pitfall_side_best).

Seeds: with s drawn per run, some seeds' s cannot reach the optimum (or, on MGS, the pitfall):
those runs cannot show any claim, so every claim uses only the seeds whose s reaches both,
the same seeds for every algorithm (s depends on the seed alone), and says how many.

Rules (stated again in the table's header):
- reaches the optimum: the mean over seeds of final reward / best is >= REACH;
- first: the first evaluation whose mean over seeds of reward / best is >= REACH, strictly
  earlier for the better QTRAN variant than for VDN and for QMIX (never = later than any step);
- deteriorates (3a -> 3b): one-sided Welch t-test of mean(3a) > mean(3b), p < ALPHA;
- at the pitfall: |mean over seeds of (final reward - pitfall)| <= PITFALL_BAND;
- A significantly higher than B: one-sided Welch t-test of mean(A) > mean(B), p < ALPHA;
- more stable: lower fluctuation, the mean over seeds of the standard deviation of a run's
  evaluations over the second half of training (compared on the point values, no test).
A claim whose runs have not all finished is "not run".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtran.errors import UserError
from qtran.experiments.claims import (
    ALPHA, NOT_RUN, Row, checked_manifest, describe, earlier, finals, first_step, rows_markdown, step_text, verdict, welch_p,
)
from qtran.experiments.fig3_layout import ALGOS, DESIGN_TEXT, PANELS
from qtran.plots import ALGO_LABELS as LABELS

REACH = 0.9  # share of the run's best reward that counts as reaching the optimum
PITFALL_BAND = 0.5  # reward per episode around the pitfall that counts as "at the pitfall"
QTRAN = ("qtran-base", "qtran-alt")
BASELINES = ("vdn", "qmix")
METHODS = QTRAN + BASELINES  # the paper's Figure 3 shows these four (IQL is ours, not claimed)
PANEL_NAMES = {"fig3a": "3a", "fig3b": "3b", "fig3c": "3c"}

RULES = (f"Rules: final reward = last evaluation's mean greedy reward per run; 'best' = the best reward "
         f"any joint action reaches with the run's s (s re-drawn every episode: its mean over 128 draws); "
         f"'pitfall' = the best with x on the pitfall's side. Seeds whose s cannot reach the optimum "
         f"(and, on MGS, the pitfall) are left out of every claim. 'Reaches the optimum': mean over seeds "
         f"of final / best >= {REACH:g}. 'First': the first evaluation whose mean of reward / best is >= "
         f"{REACH:g}, strictly earlier for the better QTRAN variant than for VDN and for QMIX (never = "
         f"later). 'Deteriorates' and 'significantly higher': one-sided Welch t-test, p < {ALPHA:g}. "
         f"'At the pitfall': |mean of (final - pitfall)| <= {PITFALL_BAND:g}. 'More stable': lower mean "
         f"over seeds of the standard deviation of a run's evaluations over the second half of training. "
         f"'not run': some of the claim's runs have not finished.")


@dataclass(frozen=True)
class Reference:
    """Per seed (in the curve's seed order): the best reachable reward, the pitfall's (None
    without one), and whether the seed can show the claims (its s reaches what they need)."""

    best: tuple[float, ...]
    pitfall: tuple[float | None, ...]
    usable: tuple[bool, ...]


# ---- per-run statistics ---------------------------------------------------------------------


def usable_curve(curve: dict, ref: Reference) -> tuple[dict, np.ndarray, np.ndarray]:
    """The curve restricted to usable seeds, with their best and pitfall references."""
    keep = np.asarray(ref.usable, bool)
    returns = np.asarray(curve["returns"], dtype=float)[:, keep]
    best = np.asarray(ref.best, dtype=float)[keep]
    pit = np.asarray([math.nan if p is None else p for p in ref.pitfall], dtype=float)[keep]
    return {"steps": list(curve["steps"]), "returns": returns}, best, pit


def normalised(curve: dict, best: np.ndarray) -> dict:
    """Every evaluation as a share of its run's best reward."""
    return {"steps": curve["steps"], "returns": np.asarray(curve["returns"], dtype=float) / best}


def fluctuation(curve: dict) -> float:
    """Mean over seeds of the standard deviation of a run's evaluations in the second half of
    training (by step): how much a run's greedy policy keeps changing once it has learned."""
    steps = np.asarray(curve["steps"], dtype=float)
    late = np.asarray(curve["returns"], dtype=float)[steps >= steps[-1] / 2]
    return float(late.std(axis=0).mean())


# ---- the claims -----------------------------------------------------------------------------
# Each takes (curves, refs) and returns (numbers, ok); rows turn missing runs into "not run".


def _seeds_note(refs, panel, algos) -> str:
    usable = refs[(panel, algos[0])].usable  # the same for every algorithm: s follows the seed
    return f"{sum(usable)} of {len(usable)} seeds usable"


def _reaches(curves, refs, panel, algos):
    parts, ok = [], True
    for a in algos:
        curve, best, _ = usable_curve(curves[(panel, a)], refs[(panel, a)])
        share = finals(normalised(curve, best))
        reached = len(share) > 0 and float(share.mean()) >= REACH
        parts.append(f"{LABELS[a]} {describe(finals(curve))}, final/best {share.mean():.2f}" if len(share)
                     else f"{LABELS[a]} no usable seed")
        ok = ok and reached
    return "; ".join(parts) + f" ({_seeds_note(refs, panel, algos)})", ok


def _first(curves, refs, panel):
    steps = {}
    for a in METHODS:
        curve, best, _ = usable_curve(curves[(panel, a)], refs[(panel, a)])
        # first_step asks for "> threshold"; a hair below REACH makes it ">= REACH"
        steps[a] = first_step(normalised(curve, best), REACH - 1e-12) if len(best) else None
    reached = [steps[a] for a in QTRAN if steps[a] is not None]
    ok = earlier(min(reached) if reached else None, [steps[b] for b in BASELINES])
    text = f"first step with mean reward/best >= {REACH:g}: "
    return text + "; ".join(f"{LABELS[a]} {step_text(s)}" for a, s in steps.items()), ok


def _deteriorate(curves, refs):
    parts, ok = [], True
    for a in BASELINES:
        fa = finals(usable_curve(curves[("fig3a", a)], refs[("fig3a", a)])[0])
        fb = finals(usable_curve(curves[("fig3b", a)], refs[("fig3b", a)])[0])
        p = welch_p(fa, fb)
        parts.append(f"{LABELS[a]} 3a {describe(fa)}, 3b {describe(fb)}, Welch p = {p:.3g}")
        ok = ok and p < ALPHA
    return "; ".join(parts), ok


def _at_pitfall(curves, refs):
    parts, ok = [], True
    for a in BASELINES:
        curve, _, pit = usable_curve(curves[("fig3c", a)], refs[("fig3c", a)])
        gap = finals(curve) - pit
        mean_gap = float(np.mean(gap)) if len(gap) else math.nan
        parts.append(f"{LABELS[a]} {describe(finals(curve))}, minus pitfall {mean_gap:+.2f}")
        ok = ok and abs(mean_gap) <= PITFALL_BAND  # False for NaN
    return "; ".join(parts) + f" ({_seeds_note(refs, 'fig3c', BASELINES)})", ok


def _qtran_higher(curves, refs):
    f = {a: finals(usable_curve(curves[("fig3c", a)], refs[("fig3c", a)])[0]) for a in METHODS}
    ps = [welch_p(f[q], f[b]) for q in QTRAN for b in BASELINES]
    numbers = "; ".join(f"{LABELS[a]} {describe(f[a])}" for a in METHODS)
    worst = max(ps)  # NaN if any is NaN
    ok = all(p < ALPHA for p in ps)
    return numbers + f"; largest Welch p = {worst:.3g}", ok


def _alt_stabler(curves, refs):
    fl = {a: fluctuation(usable_curve(curves[("fig3c", a)], refs[("fig3c", a)])[0]) for a in QTRAN}
    numbers = "fluctuation (second half): " + "; ".join(f"{LABELS[a]} {v:.3f}" for a, v in fl.items())
    return numbers, fl["qtran-alt"] < fl["qtran-base"]


def _keys(panels, algos):
    return [(p, a) for p in panels for a in algos]


# (number, claim, panels, the runs it needs, function of (curves, refs))
CLAIMS = [
    ("3a.1", "GS, epsilon annealed: every method (QTRAN-base, QTRAN-alt, VDN, QMIX) reaches the optimum", "3a",
     _keys(["fig3a"], METHODS), lambda c, r: _reaches(c, r, "fig3a", METHODS)),
    ("3a.2", "GS, epsilon annealed: QTRAN gets there first", "3a",
     _keys(["fig3a"], METHODS), lambda c, r: _first(c, r, "fig3a")),
    ("3b.1", "GS, full exploration: QTRAN-base and QTRAN-alt learn the same policy as in 3a (still reach the optimum)",
     "3a, 3b", _keys(["fig3a", "fig3b"], QTRAN), lambda c, r: _reaches(c, r, "fig3b", QTRAN)),
    ("3b.2", "GS, full exploration: VDN and QMIX deteriorate (end below their 3a)", "3a, 3b",
     _keys(["fig3a", "fig3b"], BASELINES), _deteriorate),
    ("3c.1", "MGS, equal s: VDN and QMIX end at the pitfall", "3c", _keys(["fig3c"], BASELINES), _at_pitfall),
    ("3c.2", "MGS, equal s: QTRAN-base and QTRAN-alt end significantly higher than VDN and QMIX", "3c",
     _keys(["fig3c"], METHODS), _qtran_higher),
    ("3c.3", "MGS, equal s: QTRAN-alt is more stable than QTRAN-base", "3c", _keys(["fig3c"], QTRAN), _alt_stabler),
]


def claim_rows(curves: dict, refs: dict, budgets: dict[str, str] | None = None) -> list[Row]:
    """One row per claim from curves and refs {(panel, algo): ...}; `budgets` {panel: text}."""
    budgets = budgets or {}
    rows = []
    for number, claim, panels, needed, function in CLAIMS:
        used = list(dict.fromkeys(p for p, _ in needed))
        budget = "; ".join(f"{PANEL_NAMES[p]}: {budgets.get(p, 'not run')}" for p in used)
        missing = [k for k in needed if k not in curves]
        if missing:
            rows.append(Row(number, claim, panels, "missing: " + ", ".join(f"{LABELS[a]} {PANEL_NAMES[p]}"
                                                                           for p, a in missing), budget, NOT_RUN))
            continue
        numbers, ok = function(curves, refs)
        rows.append(Row(number, claim, panels, numbers, budget, verdict(ok)))
    return rows


def markdown(rows: list[Row], design: str, budgets: dict[str, str]) -> str:
    lines = [f"# The paper's claims about Figure 3, against our runs (design: {design})", "",
             "Budgets: " + "; ".join(f"{PANEL_NAMES[p]}: {budgets.get(p, 'not run')}" for p in PANEL_NAMES) + ".",
             "", RULES, ""] + rows_markdown(rows)
    return "\n".join(lines) + "\n"


# ---- reading a Figure 3 directory -----------------------------------------------------------


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def reference_of(summary: dict, panel: str, where) -> Reference:
    """A run's Reference from its summary: env_runs (s drawn once or per run), else the
    per-episode expectation in env_reference, else G's optimum and pitfall (older runs)."""
    n = len(summary["seeds"])
    needs_pitfall = panel == "fig3c"
    runs = summary.get("env_runs")
    if runs is not None:
        if not isinstance(runs, list) or len(runs) != n or not all(isinstance(r, dict) for r in runs):
            raise UserError(f"{where}: env_runs must hold one record per seed")
        try:
            best = tuple(float(r["best_reward"]) for r in runs)
            pit = tuple(None if r.get("pitfall_side_best") is None else float(r["pitfall_side_best"]) for r in runs)
            usable = tuple(bool(r["optimum_reachable"]) and (not needs_pitfall or bool(r.get("pitfall_reachable")))
                           for r in runs)
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where}: an env_runs record lacks best_reward or optimum_reachable") from None
        # a seed whose s reaches nothing has best 0; only usable seeds are divided by their best
        if not all(_number(b) and (b > 0 or not ok) for b, ok in zip(best, usable)):
            raise UserError(f"{where}: env_runs best_reward must be numbers, positive where the optimum is reachable")
        return Reference(best, pit, usable)
    ref = summary.get("env_reference") or {}
    best = ref.get("expected_best", ref.get("optimum"))
    pit = ref.get("expected_pitfall_side_best", ref.get("pitfall"))
    if not _number(best) or best <= 0 or (pit is not None and not _number(pit)):
        raise UserError(f"{where}: no usable env_reference (expected_best or optimum)")
    return Reference((float(best),) * n, (pit,) * n, (True,) * n)


def completed(summary: dict, run_dir: Path) -> dict:
    """The summary, with what runs trained before `env_runs` and `expected_best` existed lack
    rebuilt from their config.yaml (the same functions training records them with)."""
    ref = summary.get("env_reference") or {}
    if "env_runs" in summary or "expected_best" in ref or not (run_dir / "config.yaml").is_file():
        return summary
    from qtran.config import load_config
    from qtran.envs import make_env
    from qtran.run import env_runs

    env = make_env(load_config(run_dir).env)
    if env.run_info is not None:
        return dict(summary, env_runs=env_runs(env, summary["seeds"]))
    extra = {k: v for k, v in env.meta.items() if k.startswith("expected_")}
    return dict(summary, env_reference=dict(ref, **extra)) if extra else summary


def _check_curve(summary: dict, where) -> dict:
    curve = summary.get("eval_curve")
    try:
        steps = list(curve["steps"])
        returns = np.asarray(curve["returns"], dtype=float)
    except (TypeError, KeyError, ValueError):
        raise UserError(f"{where}: eval_curve must hold steps and returns [evaluations, seeds]") from None
    if (returns.ndim != 2 or returns.shape != (len(steps), len(summary.get("seeds", []))) or returns.size == 0
            or not all(_number(s) for s in steps) or not np.all(np.isfinite(returns))):
        raise UserError(f"{where}: eval_curve must hold one finite reward per evaluation and seed")
    return {"steps": steps, "returns": returns}


def load(out: str | Path) -> tuple[dict, dict, dict[str, list[int]], str]:
    """Curves, references, the steps of each panel's finished runs, and the design, of a
    Figure 3 directory (<out>/<panel>/<algo>/summary.json)."""
    from qtran.experiments.common import load_summaries, read_manifest

    out = Path(out)
    manifest = read_manifest(out) or {}
    curves, refs, steps, names = {}, {}, {p: [] for p in PANELS}, []
    finished = load_summaries(out, [f"{p}/{a}" for p in PANELS for a in ALGOS], required=False)
    for name, summary in finished.items():
        panel, algo = name.split("/")
        run_dir = out / name
        if not isinstance(summary.get("seeds"), list) or not summary["seeds"]:
            raise UserError(f"{run_dir / 'summary.json'}: no seeds")
        summary = completed(summary, run_dir)
        names.append(summary["env"])
        curves[(panel, algo)] = _check_curve(summary, run_dir / "summary.json")
        refs[(panel, algo)] = reference_of(summary, panel, run_dir / "summary.json")
        if _number(summary.get("steps")):
            steps[panel].append(int(summary["steps"]))
    design = manifest.get("design") or design_of_env(names)
    return curves, refs, steps, str(design)


def design_of_env(env_names: list[str]) -> str:
    """The design runs were trained with, from their environment names (gaussian_squeeze:...
    ends in :s<seed> when s is drawn once, :s_per_run per run, neither per episode), for a
    directory whose experiment.json does not say (older runs, or training still going on)."""
    if not env_names:
        return "single"
    last = str(env_names[0]).rsplit(":", 1)[-1]
    return "per_run" if last == "s_per_run" else "single" if last[1:].isdigit() and last[0] == "s" else "per_episode"


def budget_texts(steps: dict[str, list[int]], design: str) -> dict[str, str]:
    return {p: (" / ".join(f"{s:,} steps" for s in sorted(set(v))) + f", {DESIGN_TEXT.get(design, design)}"
                if v else "not run") for p, v in steps.items()}


def report(out: str | Path) -> str:
    """The claims table of a Figure 3 directory, from its finished runs."""
    out = Path(out)
    checked_manifest(out, "fig3")
    curves, refs, steps, design = load(out)
    budgets = budget_texts(steps, design)
    return markdown(claim_rows(curves, refs, budgets), design, budgets)


__all__ = ["CLAIMS", "REACH", "PITFALL_BAND", "RULES", "Reference", "budget_texts", "claim_rows", "completed",
           "fluctuation", "load", "markdown", "normalised", "reference_of", "report", "usable_curve"]
