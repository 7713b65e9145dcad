"""The Figure 4 claims table, fed hand-made run files in `reproduce fig4`'s layout
(<out>/<n2|n4>/<algo>/summary.json, the three penalties batched as env_values), for which
every verdict is known: each claim shows on a paper-like set of curves, stops showing when
one number is changed against it, and is "not run" when one of its runs is missing."""

import json
import shutil

import numpy as np
import pytest

from qtran.cli import main
from qtran.experiments import fig4, fig4_claims
from qtran.experiments.fig4_claims import DOES_NOT_SHOW, NOT_RUN, SHOWS

STEPS = [0, 10_000, 20_000, 30_000, 40_000]
OFFSETS = np.array([-0.6, -0.3, 0.0, 0.3, 0.6])  # per seed, mean 0: 95% half-width 0.589

# (final reward, index of the first evaluation whose mean is > 0; None: only the last, if at all)
PAPER_LIKE = {
    ("n2", 0.5): {"qtran-base": (10, 1), "qtran-alt": (10, 1), "vdn": (9, 2), "qmix": (9, 3)},
    ("n2", 1.0): {"qtran-base": (8, 2), "qtran-alt": (9, 2), "vdn": (2, None), "qmix": (1, None)},
    ("n2", 1.5): {"qtran-base": (7, 2), "qtran-alt": (8, 2), "vdn": (-2, None), "qmix": (-2, None)},
    ("n4", 0.5): {"qtran-base": (8, 2), "qtran-alt": (12, 1), "vdn": (10, 3), "qmix": (10, 3)},
    ("n4", 1.0): {"qtran-base": (4, 3), "qtran-alt": (8, 2), "vdn": (-1, None), "qmix": (-1, None)},
    ("n4", 1.5): {"qtran-base": (1, 4), "qtran-alt": (6, 2), "vdn": (-2, None), "qmix": (-1, None)},
}

# For each claim: changes to PAPER_LIKE that break it, and a run whose absence leaves it unjudged.
AGAINST = {
    "1.1": ({("n2", 0.5, "qmix"): (0.3, None)}, "n2/qmix"),  # interval reaches below 0
    "1.2": ({("n4", 0.5, "vdn"): (-1, None)}, "n4/vdn"),
    "1.3": ({("n2", 0.5, "vdn"): (9, 1)}, "n2/vdn"),  # VDN as early as QTRAN: not strictly later
    "1.4": ({("n4", 0.5, "qmix"): (10, 1)}, "n4/qmix"),
    "2.1": ({("n2", 1.0, "vdn"): (8.5, 2)}, "n2/qtran-base"),  # VDN above QTRAN-base
    "2.2": ({("n2", 1.5, "qmix"): (7.5, 2)}, "n2/qtran-alt"),
    "2.3": ({("n2", 1.0, "vdn"): (-3, None), ("n2", 1.0, "qmix"): (-3, None)}, "n2/vdn"),  # gap 11.5 > 9.5
    "3.1": ({("n4", 1.5, "qmix"): (0.8, None)}, "n4/qmix"),  # upper end 1.39 > 1
    "3.2": ({("n4", 1.5, "qtran-alt"): (0.3, None)}, "n4/qtran-alt"),
    "3.3": ({("n4", 1.5, "qtran-base"): (6, 2)}, "n4/qtran-base"),  # base level with alt
    "4.1": ({("n4", 1.0, "qtran-base"): (8, 2)}, "n4/qtran-alt"),
    "4.2": ({("n2", p, "qtran-alt"): (15, 1) for p in fig4.PENALTIES}, "n2/qtran-base"),  # N=2 gap 5.7 > 4.3
}


def _curve(final: float, cross: int | None) -> np.ndarray:
    """Returns [E, seeds]: mean -5 before `cross`, 1 from it, `final` at the last evaluation."""
    last = len(STEPS) - 1
    means = [final if e == last else (1.0 if cross is not None and e >= cross else -5.0) for e in range(len(STEPS))]
    return np.asarray(means)[:, None] + OFFSETS[None, :]


def write_fig4_dir(out, table, budget="medium", skip=()):
    """A Figure 4 directory as `reproduce fig4` leaves it, from {(n, P): {algo: (final, cross)}}."""
    seeds = list(range(len(OFFSETS)))
    pieces = {}
    for n in fig4.SETTINGS:
        for algo in fig4.ALGOS:
            if f"{n}/{algo}" in skip:
                continue
            # runs ordered as the trainer orders them: every penalty x every seed
            returns = np.concatenate([_curve(*table[(n, p)][algo]) for p in fig4.PENALTIES], axis=1)
            run_dir = out / n / algo
            run_dir.mkdir(parents=True)
            summary = {"algo": algo, "env": "predator_prey", "seeds": seeds * 3, "steps": 1_000_000,
                       "final_eval_return": returns[-1].tolist(),
                       "eval_curve": {"steps": STEPS, "returns": returns.tolist()},
                       "env_value_name": "penalty",
                       "env_values": [p for p in fig4.PENALTIES for _ in seeds], "run_dir": str(run_dir)}
            (run_dir / "summary.json").write_text(json.dumps(summary))
            (run_dir / "config.yaml").write_text("updates_per_step: 0.25\nsteps: 1000000\n")
            pieces[f"{n}/{algo}"] = {"budget": budget, "steps": 1_000_000, "updates_per_step": 0.25}
    manifest = {"experiment": "fig4", "budget": budget, "overrides": [], "pieces": pieces}
    (out / "experiment.json").write_text(json.dumps(manifest))
    return out


def _changed(changes):
    table = {k: dict(v) for k, v in PAPER_LIKE.items()}
    for (n, p, algo), value in changes.items():
        table[(n, p)][algo] = value
    return table


def _verdicts(out):
    curves, budgets = fig4_claims.load(out)
    return {r.number: r for r in fig4_claims.claim_rows(curves, fig4_claims.budget_texts(budgets, short=True))}


def test_every_claim_shows_on_paper_like_curves(tmp_path):
    rows = _verdicts(write_fig4_dir(tmp_path / "f4", PAPER_LIKE))
    assert sorted(rows) == sorted(AGAINST)  # every claim has its cases below
    assert {n: r.verdict for n, r in rows.items()} == {n: SHOWS for n in AGAINST}
    assert "10.00 +- 0.59 (n=5)" in rows["1.1"].numbers  # mean +- t half-width, seeds
    assert "QTRAN-alt 10,000" in rows["1.4"].numbers and "VDN 30,000" in rows["1.4"].numbers
    assert rows["2.3"].numbers.endswith("P=1.0 7.00, P=1.5 9.50")
    assert rows["1.1"].budget == "N=2: medium, 1,000,000 steps (33% of the paper's)"


@pytest.mark.parametrize("number", sorted(AGAINST))
def test_each_claim_stops_showing_when_its_numbers_turn(number, tmp_path):
    changes, _ = AGAINST[number]
    rows = _verdicts(write_fig4_dir(tmp_path / "f4", _changed(changes)))
    assert rows[number].verdict == DOES_NOT_SHOW, rows[number]


@pytest.mark.parametrize("number", sorted(AGAINST))
def test_each_claim_is_not_run_without_its_runs(number, tmp_path):
    _, missing = AGAINST[number]
    rows = _verdicts(write_fig4_dir(tmp_path / "f4", PAPER_LIKE, skip=(missing,)))
    assert rows[number].verdict == NOT_RUN and rows[number].numbers.startswith("missing: ")
    n, algo = missing.split("/")
    needing = {num for num, _, _, keys, _ in fig4_claims.CLAIMS if any(k[0] == n and k[2] == algo for k in keys)}
    # claims that do not need the missing run are still judged
    assert all(r.verdict == (NOT_RUN if num in needing else SHOWS) for num, r in rows.items())


def test_claims_cli_on_a_directory_without_runs_says_not_run(tmp_path, capsys):
    out = tmp_path / "f4"
    out.mkdir()
    (out / "experiment.json").write_text(json.dumps({"experiment": "fig4", "budget": "quick", "overrides": []}))
    assert main(["fig4-claims", str(out)]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| 1.") or line.startswith("| 2.")
            or line.startswith("| 3.") or line.startswith("| 4.")]
    assert len(rows) == len(fig4_claims.CLAIMS) and all(row.endswith("| **not run** |") for row in rows)
    assert "Welch" in text and "N = 4: not run (paper: 6,000,000 steps, one update per step)" in text


def _no_values(s):
    del s["env_values"]


def _text_values(s):
    s["env_values"] = [str(v) for v in s["env_values"]]


def _one_step_short(s):
    s["eval_curve"]["steps"] = s["eval_curve"]["steps"][:-1]


def _ragged(s):
    s["eval_curve"]["returns"][0] = s["eval_curve"]["returns"][0][:-1]


@pytest.mark.parametrize("setup,fragment", [
    ("missing", "not a directory"),
    ("empty", "not a Figure 4 directory"),
    ("fig3", "not fig4"),
    (_no_values, "not a Figure 4 run"),
    # summary.json itself malformed: every reader of a run refuses it (results.read_summary)
    (_text_values, "not a qtran summary (env_values must hold one number per run)"),
    (_one_step_short, "not a qtran summary (eval_curve.returns needs one row"),
    (_ragged, "not a qtran summary (eval_curve.returns needs one row"),
])
def test_claims_cli_refuses_what_is_not_a_fig4_directory(setup, fragment, tmp_path, capsys):
    out = tmp_path / "d"
    if setup != "missing":
        out.mkdir()
    if setup == "fig3":
        (out / "experiment.json").write_text(json.dumps({"experiment": "fig3"}))
    if callable(setup):  # a damaged summary where a Figure 4 run should be
        write_fig4_dir(out, PAPER_LIKE)
        path = out / "n2" / "vdn" / "summary.json"
        summary = json.loads(path.read_text())
        setup(summary)
        path.write_text(json.dumps(summary))
    assert main(["fig4-claims", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err


def test_draw_names_missing_runs_and_budgets_then_plot_redraws(tmp_path, capsys):
    out = write_fig4_dir(tmp_path / "f4", PAPER_LIKE, skip=("n2/qmix", *(f"n4/{a}" for a in fig4.ALGOS)))
    fig4.draw(out)
    assert sorted(p.name for p in out.glob("fig4_*.png")) == [f"fig4_{n}_p{p}.png" for n in ("n2", "n4")
                                                               for p in fig4.PENALTIES]
    caption = (out / "fig4_n2_p1.5.txt").read_text()
    assert "Not run: QMIX." in caption
    assert "budget=medium, 1,000,000 steps, one update every 4 steps (33% of the paper's 3,000,000 steps" in caption
    empty = (out / "fig4_n4_p0.5.txt").read_text()
    assert "Not run: QTRAN-base, QTRAN-alt, VDN, QMIX." in empty and "not run (paper: 6,000,000 steps" in empty
    assert "not run" in (out / "fig4_n4_p0.5.svg").read_text()  # on the axes, not only in the caption
    claims = (out / "claims.md").read_text()
    (out / "claims.md").unlink()
    shutil.rmtree(out / "n2" / "vdn")
    assert main(["plot", str(out)]) == 0
    assert (out / "claims.md").read_text() != claims  # redrawn from what is there now
    assert "missing: VDN N=2 P=0.5" in (out / "claims.md").read_text()


def test_statistics_edge_cases():
    assert fig4_claims.welch_p([1.0, 1.0], [0.0, 0.0]) == 0.0  # no spread: the order is certain
    assert fig4_claims.welch_p([0.0, 0.0], [0.0, 0.0]) == 1.0
    assert np.isnan(fig4_claims.welch_p([5.0], [0.0, 1.0]))  # one seed: no test
    assert not fig4_claims.above([5.0], [0.0, 1.0]) and not fig4_claims.clearly_positive([5.0])
    # the mean over seeds decides, not any one seed
    assert fig4_claims.first_positive_step({"steps": [0, 5], "returns": [[-1, 0.5], [3, -4]]}) is None
    assert fig4_claims.first_positive_step({"steps": [0, 5], "returns": [[-1, 0.5], [3, -2]]}) == 5
    assert fig4_claims.percent(60_000 / 3_000_000) == "2%" and fig4_claims.percent(1 / 3) == "33%"
    assert fig4_claims.update_rate(0.25) == "one update every 4 steps" and fig4_claims.update_rate(1.0) == \
        "one update per step"


def test_a_cell_catches_has_no_catch_or_is_mixed():
    assert fig4_claims.catch_word([20.0, 22.0, 21.0, 23.0, 19.0]) == "catches"  # lower end > 0
    assert fig4_claims.catch_word([-1.5, -1.2, -1.8, -1.1, -1.4]) == "no catch"  # upper end <= 1
    assert fig4_claims.catch_word([25.0, -1.0, 24.0, -2.0, -1.5]) == "mixed"  # two of five seeds catch
    assert fig4_claims.catch_word([0.9, 0.95, 0.92]) == "catches"  # about one catch an episode, every seed
    assert fig4_claims.catch_word([-0.5, 0.9, 0.0]) == "mixed"  # the interval reaches past 0 and past 1
    assert fig4_claims.catch_word([5.0]) == "mixed"  # one seed: no interval, nothing claimed
    table = "\n".join(fig4_claims.finals_across([{("n2", 1.0, "vdn"): {"steps": [0, 10], "returns": [
        [0.0, 0.0, 0.0], [-1.5, -1.2, -1.8]]}}, {}]))
    assert "| 2 | 1.0 | VDN | -1.50 +- 0.75 (n=3) *no catch* | - |" in table
