"""Which greedy joint actions can QTRAN-base and QTRAN-alt represent on a single-state game?

For a payoff tensor R of shape [U]*N (single state, so the true Q_jt is R itself) and a
candidate greedy joint action u_bar, we ask whether per-agent tables Q_i[U] and a scalar V
exist such that, with D(u) = sum_i Q_i(u_i) - R(u) + V (the paper's Q'_jt - Q_jt + V_jt, eq. (5)):

    QTRAN-base, Theorem 1:   D(u_bar) = 0                                        (4a)
                             D(u) >= 0 for every u != u_bar                       (4b)
    QTRAN-alt, Theorem 2:    (4a) and, for every agent i and every u_-i,
                             min_{u_i} D(u_i, u_-i) = 0                           (7)

and, in both, u_bar_i = argmax Q_i for every agent (the theorems' definition of u_bar).
(7) is stated "for u != u_bar"; every u_-i arises from some u != u_bar (change u_i), so it is
one condition per agent i and per u_-i, and on the line through u_bar it just says D >= 0 there
because D(u_bar) = 0 already attains the minimum. (7) implies (4b): each u lies on a line of
agent 1, whose minimum is 0.

Greedy means a strict argmax. With ties an agent's argmax is not a single action, and the
conditions degenerate: all Q_i = 0 and V = R(u_bar) satisfy (4a)+(4b) for every u_bar that
attains max R, however badly the agents would then coordinate. Rather than a fixed margin
eps (Q_i(u_bar_i) >= Q_i(a) + eps), we MAXIMISE the margin t and call u_bar feasible when the
best t is positive. A fixed eps would lose generality: the payoff is fixed, so the Q_i cannot
be scaled up or down freely (D mixes them with R), and for example (4a)+(4b) with margin eps
need R(u_bar) - R(u) >= eps * (number of agents whose action differs) for every u, which a
game with a small but positive gap fails. What IS free is scaling and shifting the payoff
together with the tables: if (Q, V) works for R then (s Q, s V + c) works for s R + c, s > 0.
So we solve on R scaled to [0, 1] and map the answer back; the only threshold left is the
numerical tolerance `tol` on the best margin, relative to the payoff's range (default 1e-5,
ten times HiGHS's MIP feasibility tolerance of 1e-6, so that constraint slack the solver
allows cannot pass for a margin): a margin below it is reported as "ties only".

A consequence worth knowing (it is Theorem 1's proof): with a strict argmax, (4a)+(4b) give
0 < Q'_jt(u_bar) - Q'_jt(u) <= R(u_bar) - R(u) for u != u_bar, so u_bar must be the UNIQUE
maximiser of R. Both lists below therefore hold at most that one joint action; a game whose
maximum is tied (the penalty game) has none, and QTRAN-alt may have none even when the
maximum is unique (see SPEC, "Known limits of the method").

Exactness. (4a)+(4b) plus the margin is a linear program. (7) is a disjunction -- on each line
one cell must be zero -- so QTRAN-alt is a mixed-integer program: one binary z per (agent,
cell) picks the cell of the line where the minimum is attained, with D(cell) <= M (1 - z) and
sum of z over the line = 1. Both are solved by HiGHS through scipy.optimize.milp.

The box and the big-M, and why they cut nothing off. The conditions are unchanged by adding
c_i to Q_i and subtracting sum_i c_i from V, so we fix Q_i(u_bar_i) = 0 without loss; (4a)
then forces V = R(u_bar), and the margin t >= 0 makes every Q_i(a) <= 0. With R scaled to
[0, 1]: D(u) = sum_i Q_i(u_i) - R(u) + R(u_bar) <= R(u_bar) - R(u) <= 1, so M = 1 bounds D on
every normalised solution; and D(a, u_bar_-i) >= 0 gives Q_i(a) >= R(a, u_bar_-i) - R(u_bar)
>= -1, so the box Q_i in [-1, 0], V in [0, 1], t in [0, 1] only restates what the constraints
imply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from qtran.envs.matrix import PRESETS, load_payoff, validate_payoff
from qtran.errors import UserError

METHODS = ("qtran-base", "qtran-alt")
CONDITIONS = {"qtran-base": "(4a) + (4b)", "qtran-alt": "(4a) + (7)"}
# What "infeasible" does and does not say (docs/conditions.md explains it at length).
INFEASIBLE_MEANS = ("(infeasible: no Q_i, V meet these conditions with Q_jt = payoff, so this method's loss "
                    "cannot reach zero here; trained agents may still pick the optimum greedily, "
                    "only without the theorem's guarantee)")
MAX_CELLS = 4096  # joint actions: one LP per candidate, ~15 ms each near the limit (1-2 min in all)
DEFAULT_TOL = 1e-5  # best greedy margin below this (relative to the payoff range) = ties only

# HiGHS status codes returned by scipy.optimize.milp
_OPTIMAL, _INFEASIBLE = 0, 2


@dataclass(frozen=True)
class Outcome:
    """The answer for one (method, candidate greedy joint action).

    status: "feasible" (a strict argmax works), "ties" (the conditions hold only with a tied
    argmax: best margin <= tol), "infeasible" (no tables at all), or "skipped" (QTRAN-alt when
    QTRAN-base already fails: (7) implies (4b), so alt fails too).
    q, v, margin: an example solution in payoff units, for "feasible" and "ties".
    """

    greedy: tuple[int, ...]
    status: str
    q: np.ndarray | None = None
    v: float | None = None
    margin: float | None = None

    @property
    def feasible(self) -> bool:
        return self.status == "feasible"


def prepare_payoff(payoff) -> np.ndarray:
    """Validate a payoff tensor for this analysis: >= 2 agents, finite, at most MAX_CELLS cells."""
    payoff = validate_payoff(np.asarray(payoff, dtype=np.float64))
    if payoff.ndim < 2:
        raise UserError(f"payoff has {payoff.ndim} agent; the conditions need at least 2 agents")
    if payoff.size > MAX_CELLS:
        raise UserError(
            f"payoff has {payoff.size} joint actions (shape {payoff.shape}); "
            f"the exact check enumerates them and accepts at most {MAX_CELLS}"
        )
    return payoff


def load(spec: str) -> np.ndarray:
    """A payoff from a preset name or a .json / .npy path, ready for `analyse`."""
    if spec not in PRESETS and Path(spec).suffix not in (".json", ".npy"):
        raise UserError(
            f"payoff {spec!r} is neither a preset ({', '.join(sorted(PRESETS))}) nor a .json or .npy file"
        )
    return prepare_payoff(load_payoff(spec))


def unit_scale(payoff: np.ndarray) -> tuple[np.ndarray, float, float]:
    """R -> (R - low) / span in [0, 1]; returns (scaled, low, span). A constant payoff keeps span 1."""
    low = float(payoff.min())
    span = float(payoff.max()) - low
    span = span if span > 0 else 1.0
    return (payoff - low) / span, low, span


def joint_actions(n_agents: int, n_actions: int) -> list[tuple[int, ...]]:
    """Every joint action in C order, which is also the lexicographic order."""
    return [tuple(int(a) for a in u) for u in np.ndindex(*(n_actions,) * n_agents)]


# ----- variable layout: x = [Q_1(0..U-1), ..., Q_N(0..U-1), V, t, z (alt only)] -----


def _q_index(i: int, a, n_actions: int):
    return i * n_actions + a


def _sum_q_plus_v(n_agents: int, n_actions: int) -> sparse.csr_array:
    """Rows over cells (C order), columns over [Q, V, t]: row u computes sum_i Q_i(u_i) + V."""
    cells = np.indices((n_actions,) * n_agents).reshape(n_agents, -1)  # [N, cells]
    n_cells = cells.shape[1]
    rows = np.repeat(np.arange(n_cells), n_agents + 1)
    cols = np.concatenate(
        [np.stack([_q_index(i, cells[i], n_actions) for i in range(n_agents)]),
         np.full((1, n_cells), n_agents * n_actions)]
    ).T.reshape(-1)
    data = np.ones_like(rows, dtype=np.float64)
    return sparse.csr_array((data, (rows, cols)), shape=(n_cells, n_agents * n_actions + 2))


def _greedy_rows(greedy: tuple[int, ...], n_actions: int, n_vars: int) -> sparse.csr_array:
    """Rows Q_i(u_bar_i) - Q_i(a) - t, one per agent i and action a != u_bar_i (kept >= 0)."""
    t_col = len(greedy) * n_actions + 1
    rows, cols, data = [], [], []
    r = 0
    for i, best in enumerate(greedy):
        for a in range(n_actions):
            if a == best:
                continue
            rows += [r, r, r]
            cols += [_q_index(i, best, n_actions), _q_index(i, a, n_actions), t_col]
            data += [1.0, -1.0, -1.0]
            r += 1
    return sparse.csr_array((data, (rows, cols)), shape=(r, n_vars))


def _bounds(greedy: tuple[int, ...], n_actions: int, n_binaries: int) -> Bounds:
    """The box of the module docstring: Q_i(u_bar_i) = 0, Q_i(a) in [-1, 0], V, t in [0, 1], z in {0, 1}."""
    n_q = len(greedy) * n_actions
    lower = np.concatenate([np.full(n_q, -1.0), [0.0, 0.0], np.zeros(n_binaries)])
    upper = np.concatenate([np.zeros(n_q), [1.0, 1.0], np.ones(n_binaries)])
    for i, best in enumerate(greedy):
        lower[_q_index(i, best, n_actions)] = 0.0
    return Bounds(lower, upper)


def _lines(n_agents: int, n_actions: int, agent: int) -> np.ndarray:
    """Flat cell indices of agent `agent`'s lines: row k = the cells (a, u_-i) for a = 0..U-1."""
    flat = np.arange(n_actions**n_agents).reshape((n_actions,) * n_agents)
    return np.moveaxis(flat, agent, -1).reshape(-1, n_actions)


def _identity(n: int) -> sparse.csr_array:
    return sparse.csr_array((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))


def _alt_rows(n_agents: int, n_actions: int, base: sparse.csr_array):
    """The big-M rows of (7) with M = 1, on x extended by z[i, cell] (N * cells binaries).

    D(cell) <= M (1 - z[i, cell]) is written as (sum Q + V)(cell) + z[i, cell] <= 1 + R(cell)
    (right-hand sides added by the caller), and the z[i, .] of each line of agent i sum to 1.
    """
    n_cells = n_actions**n_agents
    n_cont = base.shape[1]
    big_m = sparse.hstack(
        [sparse.vstack([base] * n_agents), _identity(n_agents * n_cells)], format="csr"
    )
    line_rows, line_cols = [], []
    r = 0
    for i in range(n_agents):
        for line in _lines(n_agents, n_actions, i):
            line_rows += [r] * n_actions
            line_cols += list(n_cont + i * n_cells + line)
            r += 1
    pick = sparse.csr_array(
        (np.ones(len(line_rows)), (line_rows, line_cols)), shape=(r, n_cont + n_agents * n_cells)
    )
    return big_m, pick


def solve(unit: np.ndarray, greedy: tuple[int, ...], method: str, tol: float = DEFAULT_TOL):
    """Maximise the greedy margin t under `method`'s conditions on a payoff scaled to [0, 1].

    Returns (status, x) with status "feasible" / "ties" / "infeasible" and x the solution
    vector [Q (N*U), V, t] (None when infeasible).
    """
    n_agents, n_actions = unit.ndim, unit.shape[0]
    r = unit.reshape(-1)
    base = _sum_q_plus_v(n_agents, n_actions)
    n_cont = base.shape[1]
    at_greedy = np.ravel_multi_index(greedy, unit.shape)
    # (4a) at u_bar, (4b) elsewhere: (sum Q + V)(u) - R(u) = 0 / >= 0
    upper = np.full(r.size, np.inf)
    upper[at_greedy] = r[at_greedy]
    blocks = [(base, r, upper), (_greedy_rows(greedy, n_actions, n_cont), 0.0, np.inf)]
    n_bin = 0
    if method == "qtran-alt":
        n_bin = n_agents * r.size
        big_m, pick = _alt_rows(n_agents, n_actions, base)
        blocks = [(sparse.hstack([m, sparse.csr_array((m.shape[0], n_bin))]), lo, hi)
                  for m, lo, hi in blocks]
        blocks += [(big_m, -np.inf, np.tile(1.0 + r, n_agents)), (pick, 1.0, 1.0)]
    elif method != "qtran-base":
        raise ValueError(f"unknown method {method!r}")
    cost = np.zeros(n_cont + n_bin)
    cost[n_cont - 1] = -1.0  # maximise t
    res = milp(
        cost,
        integrality=np.concatenate([np.zeros(n_cont), np.ones(n_bin)]),
        bounds=_bounds(greedy, n_actions, n_bin),
        constraints=[LinearConstraint(m, lo, hi) for m, lo, hi in blocks],
        options={"mip_rel_gap": 1e-9},
    )
    if res.status == _INFEASIBLE:
        return "infeasible", None
    if res.status != _OPTIMAL:
        raise RuntimeError(f"HiGHS did not finish on greedy {greedy} ({method}): {res.message}")
    x = res.x[:n_cont]
    return ("feasible" if x[-1] > tol else "ties"), x


def outcome(payoff: np.ndarray, greedy: tuple[int, ...], method: str, tol: float = DEFAULT_TOL) -> Outcome:
    """Solve one candidate and express the example solution in the payoff's own units."""
    unit, low, span = unit_scale(payoff)
    status, x = solve(unit, greedy, method, tol)
    if x is None:
        return Outcome(greedy, status)
    n_agents, n_actions = payoff.ndim, payoff.shape[0]
    q = span * x[: n_agents * n_actions].reshape(n_agents, n_actions) + 0.0  # no -0.0
    # (s Q, s V + c) works for s R + c: V carries the shift, the Q_i only the scale
    return Outcome(greedy, status, q=q, v=float(span * x[-2] + low), margin=float(span * x[-1]))


def analyse(payoff, tol: float = DEFAULT_TOL, exhaustive: bool = False) -> dict[str, list[Outcome]]:
    """Every candidate greedy joint action under both methods, in lexicographic order.

    QTRAN-alt's MILP is skipped where QTRAN-base is not strictly feasible ((7) implies (4b)
    and both use the same margin), unless `exhaustive`, which solves every candidate of both.
    """
    payoff = prepare_payoff(payoff)
    if not tol > 0:
        raise UserError(f"tolerance must be positive, got {tol}")
    report: dict[str, list[Outcome]] = {m: [] for m in METHODS}
    for greedy in joint_actions(payoff.ndim, payoff.shape[0]):
        base = outcome(payoff, greedy, "qtran-base", tol)
        report["qtran-base"].append(base)
        if base.feasible or exhaustive:
            report["qtran-alt"].append(outcome(payoff, greedy, "qtran-alt", tol))
        else:
            report["qtran-alt"].append(Outcome(greedy, "skipped"))
    return report


def feasible_greedy(outcomes: list[Outcome]) -> list[list[int]]:
    return sorted(list(o.greedy) for o in outcomes if o.feasible)


def to_json(report: dict[str, list[Outcome]]) -> dict:
    """{method: {"feasible_greedy": [...], "ties_only": [...], "solutions": [...]}}."""
    out = {}
    for method, outcomes in report.items():
        out[method] = {
            "conditions": CONDITIONS[method],
            "feasible_greedy": feasible_greedy(outcomes),
            "ties_only": sorted(list(o.greedy) for o in outcomes if o.status == "ties"),
            "solutions": [
                {"greedy": list(o.greedy), "q": o.q.tolist(), "v": o.v, "margin": o.margin}
                for o in outcomes if o.feasible
            ],
        }
    return out


def _fmt(x: float) -> str:
    x = 0.0 if abs(x) < 5e-10 else x  # no "-0"
    return f"{x:.6g}"


def format_text(report: dict[str, list[Outcome]], name: str, shape: tuple[int, ...], tol: float) -> str:
    """The human-readable report: per method, the feasible greedy joint actions with an example."""
    lines = [
        (f"payoff {name}: {len(shape)} agents x {shape[0]} actions ({int(np.prod(shape))} joint actions); "
         f"greedy = strict argmax, margin tolerance {tol:g} of the payoff range")
    ]
    for method, outcomes in report.items():
        feasible = [o for o in outcomes if o.feasible]
        ties = [o.greedy for o in outcomes if o.status == "ties"]
        lines.append("")
        lines.append(f"{method}, conditions {CONDITIONS[method]}:")
        if not feasible:
            lines.append("  infeasible for every greedy joint action")
            lines.append(f"  {INFEASIBLE_MEANS}")
        for o in feasible:
            lines.append(f"  greedy {o.greedy}: feasible, best greedy margin {_fmt(o.margin)}; example:")
            for i, row in enumerate(o.q):
                lines.append(f"    Q_{i + 1} = [{', '.join(_fmt(v) for v in row)}]")
            lines.append(f"    V = {_fmt(o.v)}")
        if ties:
            lines.append(f"  only with a tied argmax (margin 0): {', '.join(map(str, ties))}")
        if any(o.status == "skipped" for o in outcomes):
            lines.append("  (MILP skipped where qtran-base already fails: (7) implies (4b); "
                         "--exhaustive solves them all)")
    lines.append("")
    lines.append("(Q_i are unique only up to Q_i + c_i, V - sum c_i; shown with Q_i(greedy) = 0.)")
    return "\n".join(lines)
