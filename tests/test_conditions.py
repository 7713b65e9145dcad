"""`qtran conditions`: the exact solver of Theorem 1's (4a)+(4b) and Theorem 2's (4a)+(7).

Expected answers come from hand arguments (written out below) or from an independent checker
defined in this file: plain linear programs solved with scipy.optimize.linprog, built from
explicit loops over joint actions, sharing no code with qtran.conditions. Notation: D(u) =
sum_i Q_i(u_i) - R(u) + V; "greedy" is a strict argmax of every Q_i; the margin is
min_i min_{a != greedy_i} Q_i(greedy_i) - Q_i(a).
"""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linprog

from qtran import conditions
from qtran.cli import main
from qtran.errors import UserError

# ----- independent checker (no qtran code) -----------------------------------------------


def _cells(shape):
    return list(itertools.product(*(range(k) for k in shape)))


def _d(payoff, q, v):
    """D(u) = sum_i Q_i(u_i) - R(u) + V, cell by cell."""
    d = np.empty(payoff.shape)
    for u in _cells(payoff.shape):
        d[u] = sum(q[i][a] for i, a in enumerate(u)) - payoff[u] + v
    return d


def _line_minima(d):
    """min over u_i of D(u_i, u_-i), for every agent i and every u_-i."""
    return [d.min(axis=i) for i in range(d.ndim)]


def _best_margin(payoff, greedy, zero_cells=()):
    """max t over free Q_i and V with D(greedy) = 0, D = 0 on `zero_cells`, D >= 0 elsewhere and
    Q_i(greedy_i) - Q_i(a) >= t >= 0. None when infeasible. t is capped at range + 1, which no
    margin reaches: D(a, greedy_-i) >= 0 and D(greedy) = 0 give margin <= R(greedy) - R(a, greedy_-i).
    """
    n, k = payoff.ndim, payoff.shape[0]
    n_vars = n * k + 2  # Q_1..Q_N, V, t

    def sum_q_plus_v(u):
        row = np.zeros(n_vars)
        for i, a in enumerate(u):
            row[i * k + a] += 1.0
        row[n * k] = 1.0
        return row

    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    for u in _cells(payoff.shape):
        if u == greedy or u in zero_cells:
            a_eq.append(sum_q_plus_v(u))
            b_eq.append(payoff[u])
        else:  # -(sum Q + V) <= -R
            a_ub.append(-sum_q_plus_v(u))
            b_ub.append(-payoff[u])
    for i, g in enumerate(greedy):
        for a in range(k):
            if a != g:  # Q_i(a) - Q_i(g) + t <= 0
                row = np.zeros(n_vars)
                row[i * k + a], row[i * k + g], row[-1] = 1.0, -1.0, 1.0
                a_ub.append(row)
                b_ub.append(0.0)
    cost = np.zeros(n_vars)
    cost[-1] = -1.0
    cap = float(payoff.max() - payoff.min()) + 1.0
    res = linprog(cost, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq,
                  bounds=[(None, None)] * (n_vars - 1) + [(0.0, cap)], method="highs")
    assert res.status in (0, 2), res.message
    return None if res.status == 2 else -res.fun


def _classify(margin, payoff, tol=conditions.DEFAULT_TOL):
    if margin is None:
        return "infeasible"
    return "feasible" if margin > tol * float(payoff.max() - payoff.min()) else "ties"


def _alt_margin(payoff, greedy, tol=conditions.DEFAULT_TOL):
    """QTRAN-alt by enumerating where each minimum of (7) is attained, one LP per choice.

    A choice picks one cell per line {(a, u_-i) : a} and asks D = 0 there; with D >= 0 everywhere
    that is exactly "min over the line = 0". Two exact shortcuts keep it fast: a line through
    `greedy` needs no choice (D(greedy) = 0 is its minimum), nor does a line that already holds
    a chosen cell; and a partial choice whose LP is infeasible is not extended (more equalities
    only shrink the set). Returns the margin of the first choice with margin > tol * range,
    else the best margin seen (ties), else None.
    """
    n, k = payoff.ndim, payoff.shape[0]
    lines = []
    for i in range(n):
        for rest in itertools.product(range(k), repeat=n - 1):
            line = [rest[:i] + (a,) + rest[i:] for a in range(k)]
            if greedy not in line:
                lines.append(line)
    threshold = tol * float(payoff.max() - payoff.min())
    best = [None]

    def search(chosen, start):
        margin = _best_margin(payoff, greedy, chosen)
        if margin is None:
            return False
        open_lines = [j for j in range(start, len(lines)) if not chosen & set(lines[j])]
        if not open_lines:
            best[0] = margin if best[0] is None else max(best[0], margin)
            return margin > threshold
        j = open_lines[0]
        return any(search(chosen | {cell}, j + 1) for cell in lines[j])

    search(frozenset(), 0)
    return best[0]


def _satisfies(payoff, greedy, q, v, method, atol):
    """Check an example solution numerically against the paper's conditions."""
    d = _d(payoff, q, v)
    ok = abs(d[greedy]) <= atol and d.min() >= -atol  # (4a), (4b)
    for i, g in enumerate(greedy):
        others = np.delete(np.asarray(q[i]), g)
        ok = ok and q[i][g] - others.max() > atol  # strict argmax
    if method == "qtran-alt":
        ok = ok and all(np.abs(m).max() <= atol for m in _line_minima(d))  # (7)
    return bool(ok)


def _status(report, method, greedy):
    return next(o for o in report[method] if o.greedy == greedy)


# ----- 1. the paper's Table 1 -----------------------------------------------------------


def test_table1_only_the_optimum_is_representable_by_both():
    payoff = conditions.load("table1")
    report = conditions.analyse(payoff)
    # (A, A) = (0, 0) must be there. Nothing else can be: with a strict argmax, (4a)+(4b) give
    # 0 < Q'(greedy) - Q'(u) <= R(greedy) - R(u) for every u != greedy (Theorem 1's proof), so
    # the greedy joint action must be the unique maximiser of R, and alt's (7) implies (4b).
    for method in conditions.METHODS:
        assert conditions.feasible_greedy(report[method]) == [[0, 0]]
        best = _status(report, method, (0, 0))
        assert _satisfies(payoff, (0, 0), best.q, best.v, method, atol=1e-5 * 20)
    # every other greedy pair loses to R(0, 0) = 8 > R(u): not even a tied argmax works
    assert all(o.status == "infeasible" for o in report["qtran-base"] if o.greedy != (0, 0))
    # the independent checker agrees on the best margin of base at (0, 0)
    assert _status(report, "qtran-base", (0, 0)).margin == pytest.approx(_best_margin(payoff, (0, 0)), abs=1e-6)


def test_paper_table1_qtran_tables_are_accepted_by_the_conditions():
    # Table 1b's learned Q_i with V = 0 satisfy (4a)+(4b) up to the printed rounding; the
    # solver's own example must do so exactly (checked above). Here: the paper's tables pass
    # the same verifier at the printing precision, so the verifier is not too strict.
    q = [[3.84, -2.06, -2.25], [4.16, 2.29, 2.29]]
    payoff = conditions.load("table1")
    assert _satisfies(payoff, (0, 0), q, 0.0, "qtran-base", atol=0.01)


# ----- 2. a two-agent case worked by hand ------------------------------------------------

# R = [[4, 0],      greedy (0, 0). Fix Q_i(0) = 0 (adding c_i to Q_i and -sum c_i to V changes
#      [1, 2]]      nothing), so (4a) gives V = 4; write Q_1(1) = -x, Q_2(1) = -y, x, y > 0.
# D(0,1) = 0 - y - 0 + 4 = 4 - y     D(1,0) = -x - 1 + 4 = 3 - x     D(1,1) = -x - y - 2 + 4 = 2 - x - y
# base (4b): x <= 3, y <= 4, x + y <= 2  -> best margin min(x, y) = 1, at x = y = 1.
# alt  (7):  agent 1 with u_2 = 1: min(D(0,1), D(1,1)) = 2 - x - y = 0 (D(1,1) < D(0,1));
#            agent 2 with u_1 = 1: min(D(1,0), D(1,1)) = 2 - x - y = 0; lines through (0,0): D >= 0.
#            So x + y = 2 with x <= 3, y <= 4: feasible, best margin again 1, at x = y = 1:
#            Q_1 = [0, -1], Q_2 = [0, -1], V = 4.
# Greedy (1, 1) (or (0, 1), (1, 0)) is impossible for both: D(greedy) = 0 and D(0,0) >= 0 give
# Q'(greedy) - Q'(0,0) <= R(greedy) - R(0,0) < 0, yet a strict greedy has Q'(greedy) > Q'(0,0).
HAND = np.array([[4.0, 0.0], [1.0, 2.0]])


@pytest.mark.parametrize("method", conditions.METHODS)
def test_hand_two_agent_case(method):
    report = conditions.analyse(HAND)
    assert conditions.feasible_greedy(report[method]) == [[0, 0]]
    best = _status(report, method, (0, 0))
    assert best.margin == pytest.approx(1.0, abs=1e-6)
    assert _satisfies(HAND, (0, 0), best.q, best.v, method, atol=1e-5)
    # the hand solution passes the same verifier, and the solver's agrees with it once normalised
    assert _satisfies(HAND, (0, 0), [[0, -1], [0, -1]], 4.0, method, atol=1e-9)
    if method == "qtran-alt":  # unique at the best margin
        q = best.q - best.q[:, :1]
        np.testing.assert_allclose(q, [[0, -1], [0, -1]], atol=1e-6)
        assert best.v + best.q[:, 0].sum() == pytest.approx(4.0, abs=1e-6)
    for greedy in [(0, 1), (1, 0), (1, 1)]:
        assert not _status(report, method, greedy).feasible


def test_shifting_and_scaling_the_payoff_scales_the_answer():
    report = conditions.analyse(3.0 * HAND - 7.0)
    best = _status(report, "qtran-alt", (0, 0))
    assert best.margin == pytest.approx(3.0, abs=1e-5)
    assert _satisfies(3.0 * HAND - 7.0, (0, 0), best.q, best.v, "qtran-alt", atol=1e-5)


# ----- 3. infeasibility reported as such ------------------------------------------------

# Three agents, reward 1 only when all play 0 (R = 0 elsewhere). Greedy (0,0,0), Q_i(0) = 0,
# V = 1, Q_i(1) = -x_i < 0, so D(u) = 1 - (sum of x_i over agents playing 1) for u != 0.
# base: D(1,1,1) = 1 - x1 - x2 - x3 >= 0 is the binding one: x_i = 1/3 works, best margin 1/3.
# alt: on agent 1's line with (u2, u3) = (1, 0), D(1,1,0) = 1 - x1 - x2 < D(0,1,0), so (7)
# forces x1 + x2 = 1; likewise agent 1 at (0, 1): x1 + x3 = 1; agent 2 at (u1, u3) = (0, 1):
# x2 + x3 = 1. Hence x_i = 1/2 and D(1,1,1) = -1/2 < 0: (4b), implied by (7), fails.
# Every other greedy action has R(greedy) = 0 < R(0,0,0): infeasible for both (as above).
ALL_THREE = np.zeros((2, 2, 2))
ALL_THREE[0, 0, 0] = 1.0


def test_alt_infeasible_where_base_is_feasible():
    report = conditions.analyse(ALL_THREE, exhaustive=True)
    assert conditions.feasible_greedy(report["qtran-base"]) == [[0, 0, 0]]
    assert _status(report, "qtran-base", (0, 0, 0)).margin == pytest.approx(1 / 3, abs=1e-6)
    assert conditions.feasible_greedy(report["qtran-alt"]) == []
    assert all(o.status == "infeasible" for o in report["qtran-alt"])  # not even with ties
    assert _alt_margin(ALL_THREE, (0, 0, 0)) is None  # the checker agrees
    out = conditions.to_json(report)
    assert out["qtran-alt"]["feasible_greedy"] == [] and out["qtran-alt"]["solutions"] == []
    text = conditions.format_text(report, "all-three", ALL_THREE.shape, conditions.DEFAULT_TOL)
    assert "infeasible for every greedy joint action" in text


def test_tied_maximum_is_reported_as_ties_not_feasible():
    # penalty game: R(0,2) = R(2,0) = 10. A strict greedy (0,2) would need
    # Q'(0,2) - Q'(2,0) <= R(0,2) - R(2,0) = 0, i.e. ties; Q_i = 0, V = 10 satisfies it with ties.
    report = conditions.analyse(conditions.load("penalty"))
    assert conditions.feasible_greedy(report["qtran-base"]) == []
    assert sorted(o.greedy for o in report["qtran-base"] if o.status == "ties") == [(0, 2), (2, 0)]
    assert conditions.feasible_greedy(report["qtran-alt"]) == []


# ----- 4. agreement with the independent checker on random 2x2x2 payoffs ------------------


def _random_payoffs():
    """20 payoffs: 10 additive + noise (near VDN-representable, so alt is sometimes feasible),
    10 small integers (ties and exact coincidences, the degenerate cases)."""
    out = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        additive = sum(rng.normal(size=[2 if j == i else 1 for j in range(3)]) for i in range(3))
        out.append(additive + 0.3 * rng.normal(size=(2, 2, 2)))
    for seed in range(10):
        out.append(np.random.default_rng(100 + seed).integers(-3, 4, size=(2, 2, 2)).astype(float))
    return out


def test_random_payoffs_agree_with_independent_lp_enumeration():
    seen = {"qtran-base": set(), "qtran-alt": set()}
    for payoff in _random_payoffs():
        report = conditions.analyse(payoff, exhaustive=True)  # the MILP on every candidate
        span = float(payoff.max() - payoff.min())
        for greedy in _cells(payoff.shape):
            base_margin = _best_margin(payoff, greedy)
            expected = {"qtran-base": _classify(base_margin, payoff)}
            # (7) implies (4b): where base's LP is infeasible alt is too, no enumeration needed
            alt_margin = None if base_margin is None else _alt_margin(payoff, greedy)
            expected["qtran-alt"] = _classify(alt_margin, payoff)
            for method in conditions.METHODS:
                got = _status(report, method, greedy)
                assert got.status == expected[method], (payoff.tolist(), greedy, method)
                seen[method].add(got.status)
                if got.feasible:
                    assert _satisfies(payoff, greedy, got.q, got.v, method, atol=1e-5 * span)
            if base_margin is not None:
                assert _status(report, "qtran-base", greedy).margin == pytest.approx(base_margin, abs=1e-6 * span)
    # the sample exercises every answer, so agreement is not vacuous
    assert seen["qtran-alt"] == {"feasible", "ties", "infeasible"}
    assert {"feasible", "infeasible"} <= seen["qtran-base"]


def test_default_mode_matches_exhaustive_mode():
    for payoff in _random_payoffs()[:5]:
        fast, full = conditions.analyse(payoff), conditions.analyse(payoff, exhaustive=True)
        for method in conditions.METHODS:
            assert conditions.feasible_greedy(fast[method]) == conditions.feasible_greedy(full[method])


# ----- bad input and the CLI ------------------------------------------------------------


def test_bad_payoffs_are_user_errors(tmp_path):
    nan = tmp_path / "nan.json"
    nan.write_text("[[1, 2], [3, NaN]]")  # Python's json reads NaN
    one_agent = tmp_path / "one.json"
    one_agent.write_text("[1, 2, 3]")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((65, 65)))
    for spec in ["nope", str(tmp_path / "missing.json"), str(nan), str(one_agent), str(empty), str(big)]:
        with pytest.raises(UserError):
            conditions.load(spec)
    with pytest.raises(UserError):
        conditions.analyse(HAND, tol=0.0)


def test_cli_json_is_one_object_with_the_right_keys():
    proc = subprocess.run([sys.executable, "-m", "qtran", "conditions", "table1", "--json"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON document
    assert set(out) == {"qtran-base", "qtran-alt"}
    assert out["qtran-base"]["feasible_greedy"] == [[0, 0]]
    assert out["qtran-alt"]["feasible_greedy"] == [[0, 0]]


@pytest.mark.parametrize("spec", ["nope", "missing.json", "one.json"])
def test_cli_bad_payoff_exits_2_with_one_line(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.json").write_text("[1, 2, 3]")
    code = main(["conditions", spec, "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_cli_text_lists_each_method(capsys):
    assert main(["conditions", "table1"]) == 0
    out = capsys.readouterr().out
    assert "qtran-base" in out and "qtran-alt" in out and "greedy (0, 0): feasible" in out
