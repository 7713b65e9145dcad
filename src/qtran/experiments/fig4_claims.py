"""The paper's claims about Figure 4, checked against whatever Figure 4 runs have finished.

`qtran fig4-claims OUT_DIR` prints the table; `reproduce fig4` and `qtran plot` write it as
`claims.md`. Everything here but `load` and `report` (which read files) is a pure function of
learning curves {(setting, P, algo): {"steps": [E], "returns": [E, seeds]}}, so each verdict
can be tested on hand-made curves without training.

"Final reward" of a run is its last evaluation's mean greedy team reward; a claim compares
those over seeds. The verdict rules (stated again in the table's header):
- clearly above 0: the lower end of the 95% Student-t interval of the mean over seeds is > 0;
- near 0 or below: the upper end of that interval is <= NEAR_ZERO;
- A ends above B: one-sided Welch t-test of mean(A) > mean(B), p < ALPHA (Welch because the
  methods' spreads over seeds differ a lot: a method that never catches has almost none);
- reaches a positive reward first: the first evaluation step at which the mean over seeds
  is > 0, strictly earlier for the better QTRAN variant than for VDN and for QMIX (never
  reaching it counts as later than any step);
- a gap grows: compared on the means alone (no test), and the larger gap must be positive.
A claim whose runs have not all finished is "not run".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qtran.errors import UserError
from qtran.experiments.claims import (  # noqa: F401 (finals, interval, above: this module's API too)
    ALPHA, DOES_NOT_SHOW, NOT_RUN, SHOWS, Row, above, cell, checked_manifest, describe, earlier, finals, first_step, interval,
    percent, rows_markdown, step_text, welch_p,
)
from qtran.experiments.fig4_layout import ALGOS, PENALTIES, piece_dirs, result_overrides, split_by_value, split_piece
from qtran.plots import ALGO_LABELS as LABELS

NEAR_ZERO = 1.0  # team reward per episode; about one catch per 100-step episode
QTRAN = ("qtran-base", "qtran-alt")
BASELINES = ("vdn", "qmix")
PANELS = {("n2", 0.5): "4a", ("n2", 1.0): "4b", ("n2", 1.5): "4c",
          ("n4", 0.5): "4d", ("n4", 1.0): "4e", ("n4", 1.5): "4f"}
# The released code's budgets (one gradient update per environment step).
PAPER_STEPS = {"n2": 3_000_000, "n4": 6_000_000}

RULES = (f"Rules: final reward = last evaluation's mean greedy team reward per run; intervals are 95% "
         f"Student-t intervals of the mean over seeds. 'Clearly above 0': the interval's lower end > 0. "
         f"'Near 0 or below': its upper end <= {NEAR_ZERO:g}. 'A above B': one-sided Welch t-test of "
         f"mean(A) > mean(B), p < {ALPHA:g}. 'First': the first evaluation step whose mean over seeds is "
         f"> 0, strictly earlier for the better QTRAN variant than for VDN and QMIX (never = later than "
         f"any step). Gaps are compared on means, and the larger one must be > 0. 'not run': some of "
         f"the claim's runs have not finished.")


def clearly_positive(values) -> bool:
    mean, half = interval(values)
    return mean - half > 0  # False for a NaN half-width: one seed proves nothing


def near_zero_or_below(values) -> bool:
    mean, half = interval(values)
    return mean + half <= NEAR_ZERO


def first_positive_step(curve: dict) -> int | None:
    """The first evaluation step whose mean over seeds is > 0 (None: never)."""
    return first_step(curve, 0.0)


def _who(key) -> str:
    n, p, algo = key
    return f"{LABELS[algo]} N={n[1:]} P={p}"


# ---- the claims -----------------------------------------------------------------------------
# Each takes the curves and returns (numbers, verdict); `check` turns missing runs into "not run".


def _catch(curves, n):
    keys = [(n, 0.5, a) for a in ALGOS]
    numbers = "; ".join(f"{LABELS[a]} {describe(finals(curves[k]))}" for k, a in zip(keys, ALGOS))
    return numbers, all(clearly_positive(finals(curves[k])) for k in keys)


def _first(curves, n):
    steps = {a: first_positive_step(curves[(n, 0.5, a)]) for a in ALGOS}
    reached = [steps[a] for a in QTRAN if steps[a] is not None]
    ok = earlier(min(reached) if reached else None, [steps[b] for b in BASELINES])
    return "first step with mean > 0: " + "; ".join(f"{LABELS[a]} {step_text(s)}" for a, s in steps.items()), ok


def _qtran_above(curves, n, p):
    f = {a: finals(curves[(n, p, a)]) for a in ALGOS}
    ps = {(q, b): welch_p(f[q], f[b]) for q in QTRAN for b in BASELINES}
    numbers = "; ".join(f"{LABELS[a]} {describe(f[a])}" for a in ALGOS)
    numbers += "; largest Welch p = " + f"{max(ps.values()):.3g}"
    return numbers, all(v < ALPHA for v in ps.values())


def _gap(curves, n, p, high, low) -> float:
    """Mean final reward of the `high` methods minus that of the `low` methods."""
    mean = lambda algos: float(np.mean([finals(curves[(n, p, a)]).mean() for a in algos]))  # noqa: E731
    return mean(high) - mean(low)


def _gap_grows_with_p(curves):
    g10, g15 = (_gap(curves, "n2", p, QTRAN, BASELINES) for p in (1.0, 1.5))
    return f"QTRAN minus VDN/QMIX (means of means): P=1.0 {g10:.2f}, P=1.5 {g15:.2f}", g15 > g10 and g15 > 0


def _run_away(curves):
    f = {b: finals(curves[("n4", 1.5, b)]) for b in BASELINES}
    numbers = "; ".join(f"{LABELS[b]} {describe(v)}, upper end {sum(interval(v)):.2f}" for b, v in f.items())
    return numbers, all(near_zero_or_below(v) for v in f.values())


def _alt_positive(curves):
    v = finals(curves[("n4", 1.5, "qtran-alt")])
    mean, half = interval(v)
    return f"QTRAN-alt {describe(v)}, lower end {mean - half:.2f}", clearly_positive(v)


def _alt_above_base(curves, n, penalties):
    parts, ok = [], True
    for p in penalties:
        alt, base = finals(curves[(n, p, "qtran-alt")]), finals(curves[(n, p, "qtran-base")])
        pv = welch_p(alt, base)
        parts.append(f"P={p}: QTRAN-alt {describe(alt)}, QTRAN-base {describe(base)}, Welch p = {pv:.3g}")
        ok = ok and pv < ALPHA
    return "; ".join(parts), ok


def _alt_gap_larger_at_n4(curves):
    gaps = {n: float(np.mean([_gap(curves, n, p, ("qtran-alt",), ("qtran-base",)) for p in PENALTIES]))
            for n in ("n2", "n4")}
    numbers = f"QTRAN-alt minus QTRAN-base, mean over P: N=2 {gaps['n2']:.2f}, N=4 {gaps['n4']:.2f}"
    return numbers, gaps["n4"] > gaps["n2"] and gaps["n4"] > 0


def _keys(settings, penalties, algos):
    return [(n, p, a) for n in settings for p in penalties for a in algos]


# (number, claim, panels, the runs it needs, function of the curves)
CLAIMS = [
    ("1.1", "P = 0.5, N = 2: every method learns to catch (final reward clearly above 0)", "4a",
     _keys(["n2"], [0.5], ALGOS), lambda c: _catch(c, "n2")),
    ("1.2", "P = 0.5, N = 4: every method learns to catch (final reward clearly above 0)", "4d",
     _keys(["n4"], [0.5], ALGOS), lambda c: _catch(c, "n4")),
    ("1.3", "P = 0.5, N = 2: QTRAN reaches a positive reward before VDN and QMIX", "4a",
     _keys(["n2"], [0.5], ALGOS), lambda c: _first(c, "n2")),
    ("1.4", "P = 0.5, N = 4: QTRAN reaches a positive reward before VDN and QMIX", "4d",
     _keys(["n4"], [0.5], ALGOS), lambda c: _first(c, "n4")),
    ("2.1", "N = 2, P = 1.0: QTRAN-base and QTRAN-alt end above VDN and QMIX", "4b",
     _keys(["n2"], [1.0], ALGOS), lambda c: _qtran_above(c, "n2", 1.0)),
    ("2.2", "N = 2, P = 1.5: QTRAN-base and QTRAN-alt end above VDN and QMIX", "4c",
     _keys(["n2"], [1.5], ALGOS), lambda c: _qtran_above(c, "n2", 1.5)),
    ("2.3", "N = 2: the gap between QTRAN and VDN/QMIX grows with P (larger at 1.5 than at 1.0)", "4b, 4c",
     _keys(["n2"], [1.0, 1.5], ALGOS), _gap_grows_with_p),
    ("3.1", "N = 4, P = 1.5: VDN and QMIX end near 0 or below (they learn to run away)", "4f",
     _keys(["n4"], [1.5], BASELINES), _run_away),
    ("3.2", "N = 4, P = 1.5: QTRAN-alt ends above 0", "4f",
     _keys(["n4"], [1.5], ["qtran-alt"]), _alt_positive),
    ("3.3", "N = 4, P = 1.5: QTRAN-base ends below QTRAN-alt", "4f",
     _keys(["n4"], [1.5], QTRAN), lambda c: _alt_above_base(c, "n4", [1.5])),
    ("4.1", "N = 4: QTRAN-alt ends above QTRAN-base at every P", "4d, 4e, 4f",
     _keys(["n4"], PENALTIES, QTRAN), lambda c: _alt_above_base(c, "n4", PENALTIES)),
    ("4.2", "The QTRAN-alt minus QTRAN-base gap is larger at N = 4 than at N = 2", "4a-4f",
     _keys(["n2", "n4"], PENALTIES, QTRAN), _alt_gap_larger_at_n4),
]


def claim_rows(curves: dict, budgets: dict[str, str] | None = None) -> list[Row]:
    """One row per claim: numbers and verdict from `curves` {(n, P, algo): curve}; `budgets`
    {n: text} says in short what each setting was trained with."""
    budgets = budgets or {}
    rows = []
    for number, claim, panels, needed, function in CLAIMS:
        settings = list(dict.fromkeys(n for n, _, _ in needed))
        budget = "; ".join(f"N={n[1:]}: {budgets.get(n, 'not run')}" for n in settings)
        missing = [k for k in needed if k not in curves]
        if missing:
            rows.append(Row(number, claim, panels, "missing: " + ", ".join(_who(k) for k in missing), budget,
                            NOT_RUN))
            continue
        numbers, ok = function(curves)
        rows.append(Row(number, claim, panels, numbers, budget, SHOWS if ok else DOES_NOT_SHOW))
    return rows


def markdown(rows: list[Row], budgets: dict[str, str] | None = None) -> str:
    budgets = budgets or {}
    lines = ["# The paper's claims about Figure 4, against our runs", "",
             "Budgets: " + "; ".join(f"N = {n[1:]}: {budgets.get(n, 'not run')}" for n in PAPER_STEPS) + ".",
             "", RULES, ""] + rows_markdown(rows)
    return "\n".join(lines) + "\n"


# ---- budgets --------------------------------------------------------------------------------


def update_rate(updates_per_step: float | None) -> str:
    if updates_per_step is None:
        return "updates per step unknown"
    if updates_per_step == 1:
        return "one update per step"
    every = 1 / updates_per_step
    if updates_per_step < 1 and abs(every - round(every)) < 1e-9:
        return f"one update every {round(every)} steps"
    return f"{updates_per_step:g} updates per step"


def budget_text(setting: str, pieces: list[dict], short: bool = False) -> str:
    """What one setting's finished runs were trained with, against the paper's budget.

    pieces: one {"budget", "steps", "updates_per_step"} per finished run of this setting;
    `short`: only the budget, the steps and their share of the paper's."""
    paper = PAPER_STEPS[setting]
    if not pieces:
        return "not run" if short else f"not run (paper: {paper:,} steps, one update per step)"
    kinds = sorted({(str(p.get("budget")), int(p["steps"]), p.get("updates_per_step")) for p in pieces},
                   key=str)
    parts = []
    for budget, steps, ups in kinds:
        if short:
            parts.append(f"{budget}, {steps:,} steps ({percent(steps / paper)} of the paper's)")
            continue
        updates = "" if ups is None else f", about {percent(steps * ups / paper)} of its updates"
        parts.append(f"budget={budget}, {steps:,} steps, {update_rate(ups)} "
                     f"({percent(steps / paper)} of the paper's {paper:,} steps{updates})")
    return " / ".join(parts)


# ---- reading a Figure 4 directory -----------------------------------------------------------


def _check_batched(summary: dict, where) -> None:
    """A Figure 4 summary holds one number per evaluation in eval_curve.steps and one penalty
    per run (env_values) in eval_curve.returns [evaluations, runs]."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    values, steps = summary.get("env_values"), summary["eval_curve"]["steps"]
    try:
        returns = np.asarray(summary["eval_curve"]["returns"], dtype=float)
    except (TypeError, ValueError):  # ragged or non-numeric lists
        returns = np.zeros(0)
    ok = (isinstance(values, list) and values and all(number(v) for v in values) and all(number(s) for s in steps)
          and returns.ndim == 2 and returns.shape == (len(steps), len(values)) and returns.size > 0)
    if not ok:
        raise UserError(f"{where}: not a Figure 4 run (needs env_values, one per run of eval_curve, "
                        "and one eval_curve step per evaluation)")


def _updates_per_step(run_dir: Path) -> float | None:
    import yaml

    try:
        value = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("updates_per_step")
    except (OSError, yaml.YAMLError, AttributeError, UnicodeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load(out: str | Path) -> tuple[dict, dict[str, list[dict]]]:
    """Curves {(n, P, algo): curve} of every finished run under `out` (<out>/<n2|n4>/<algo>/),
    and per setting the budgets its finished runs were trained with."""
    from qtran.experiments.common import load_summaries, read_manifest

    out = Path(out)
    manifest = read_manifest(out) or {}
    recorded = manifest.get("pieces") if isinstance(manifest.get("pieces"), dict) else {}
    curves, budgets = {}, {n: [] for n in PAPER_STEPS}
    finished = load_summaries(out, piece_dirs(out), required=False)
    for name, summary in finished.items():
        n, algo = split_piece(name)
        run_dir = out / name
        _check_batched(summary, run_dir / "summary.json")
        for p, curve in split_by_value(summary).items():
            if (n, p, algo) in curves:  # two pieces of one algorithm trained this penalty
                raise UserError(f"{out}: two pieces of {algo} at N = {n[1:]} hold P = {p}; remove one")
            curves[(n, p, algo)] = curve
        piece = recorded.get(name) if isinstance(recorded.get(name), dict) else {}
        budgets[n].append({"budget": piece.get("budget", manifest.get("budget", "?")),
                           "steps": summary["steps"], "updates_per_step": _updates_per_step(run_dir)})
    return curves, budgets


def budget_texts(budgets: dict[str, list[dict]], short: bool = False) -> dict[str, str]:
    return {n: budget_text(n, budgets.get(n, []), short) for n in PAPER_STEPS}


def report(out: str | Path) -> str:
    """The claims table of a Figure 4 directory, from its finished runs."""
    out = Path(out)
    manifest = checked_manifest(out, "fig4")
    if manifest is None and not any((out / n).is_dir() for n in PAPER_STEPS):
        raise UserError(f"{out} is not a Figure 4 directory (no experiment.json, no n2/ or n4/)")
    curves, budgets = load(out)
    return table(curves, budgets)


def table(curves: dict, budgets: dict[str, list[dict]]) -> str:
    """The claims table in Markdown: budgets in full in the header, in short in each row."""
    return markdown(claim_rows(curves, budget_texts(budgets, short=True)), budget_texts(budgets))


# ---- several directories: one column per (form, budget) ------------------------------------


def column_label(out: Path, manifest: dict | None, budgets: dict[str, list[dict]]) -> str:
    """What a directory's runs are: its form, its budget(s) and any override beyond the form
    that changes results (e.g. `env.move_rule=follow`), for a column heading."""
    manifest = manifest or {}
    form = manifest.get("form", "paper")
    kinds = sorted({str(p.get("budget")) for pieces in budgets.values() for p in pieces})
    budget = "/".join(kinds) if kinds else str(manifest.get("budget", "?"))
    extra = " ".join(f"{k}={v}" for k, v in result_overrides([str(o) for o in manifest.get("overrides") or []]).items())
    return f"form={form}, budget={budget}" + (f", {extra}" if extra else "")


def evidence(outs: list[str | Path]) -> str:
    """The claims against several Figure 4 directories side by side: one verdict column per
    directory (each a form and budget), then, per claim, where it shows and where it does not."""
    columns, all_curves = [], []
    for out in map(Path, outs):
        manifest = checked_manifest(out, "fig4")
        curves, budgets = load(out)
        rows = claim_rows(curves, budget_texts(budgets, short=True))
        columns.append((column_label(out, manifest, budgets), out, rows))
        all_curves.append(curves)
    lines = ["# The paper's claims about Figure 4: the evidence across forms and budgets", "",
             "One column per directory of runs; each cell is that directory's verdict (its claims.md has "
             "the numbers and the exact budget). " + RULES, "", "Columns:", ""]
    lines += [f"{i + 1}. {label}: `{out}`" for i, (label, out, _) in enumerate(columns)]
    heads = " | ".join(f"({i + 1})" for i in range(len(columns)))
    lines += ["", f"| # | claim | {heads} | in words |", "|---|---|" + "---|" * len(columns) + "---|"]
    for k, (number, claim, *_rest) in enumerate(CLAIMS):
        verdicts = [rows[k].verdict for _, _, rows in columns]
        lines.append(f"| {number} | {cell(claim)} | " + " | ".join(f"**{v}**" for v in verdicts)
                     + f" | {_in_words(verdicts)} |")
    return "\n".join(lines + [""] + finals_across(all_curves)) + "\n"


def finals_across(curves_per_column: list[dict]) -> list[str]:
    """Final greedy team reward of every (N, P, algorithm) that any column trained, one column
    per directory: what a claim's verdict rests on, cell by cell, even where a directory holds
    too few algorithms for a claim (a run of QTRAN-base alone, say)."""
    keys = sorted({k for curves in curves_per_column for k in curves},
                  key=lambda k: (k[0], k[1], ALGOS.index(k[2])))
    heads = " | ".join(f"({i + 1})" for i in range(len(curves_per_column)))
    lines = ["Final greedy team reward per episode, mean +- 95% t half-width over seeds, per directory "
             f"(-: not trained there), and whether the cell catches: *catches* (the interval's lower end "
             f"> 0), *no catch* (its upper end <= {NEAR_ZERO:g}), *mixed* (neither: some seeds catch):",
             "", f"| N | P | algorithm | {heads} |", "|---|---|---|" + "---|" * len(curves_per_column)]
    for n, p, algo in keys:
        cells = [_final_cell(finals(c[(n, p, algo)])) if (n, p, algo) in c else "-" for c in curves_per_column]
        lines.append(f"| {n[1:]} | {p} | {LABELS[algo]} | " + " | ".join(cells) + " |")
    return lines


def catch_word(values) -> str:
    """One cell's outcome in a word: 'catches', 'no catch' or 'mixed' (the rules of RULES)."""
    if clearly_positive(values):
        return "catches"
    return "no catch" if near_zero_or_below(values) else "mixed"


def _final_cell(values) -> str:
    return f"{describe(values)} *{catch_word(values)}*"


def _in_words(verdicts: list[str]) -> str:
    where = lambda v: [f"({i + 1})" for i, x in enumerate(verdicts) if x == v]  # noqa: E731
    shows, not_shown = where(SHOWS), where(DOES_NOT_SHOW)
    if not shows and not not_shown:
        return "not run anywhere"
    if not shows:
        return "does not show anywhere it was run: " + ", ".join(not_shown)
    if not not_shown:
        return "shows everywhere it was run: " + ", ".join(shows)
    return f"shows in {', '.join(shows)}; does not show in {', '.join(not_shown)}"
