"""IGM checker for single-state games (paper, Definition 1, Theorems 1 and 2).

Given learned per-agent tables Q_i[N, U] and a joint table Q_jt of shape U^N, report whether
the agents' greedy joint action is an argmax of Q_jt, and how far the tables are from the
paper's sufficient conditions, with D(u) = Q'_jt(u) - Q_jt(u) + V and Q'_jt = sum_i Q_i:

    (4a)  D(u_bar) = 0                           residual |D(u_bar)|
    (4b)  D(u) >= 0 for u != u_bar               residual max(0, -min D)
    (7)   min_{u_i} D(u_i, u_-i) = 0 for all i   residual max |min_{u_i} D|

V defaults to the theorem's definition, max Q_jt - Q'_jt(u_bar).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class IgmReport:
    greedy_joint_action: tuple[int, ...]
    q_jt_argmax: tuple[int, ...]
    igm: bool  # the greedy joint action attains max Q_jt
    v: float
    residual_4a: float
    residual_4b: float
    residual_7: float

    def to_dict(self) -> dict:
        return asdict(self)


def transformed_q(q_i: np.ndarray) -> np.ndarray:
    """Q'_jt(u) = sum_i Q_i(u_i) over the whole joint action grid."""
    n = q_i.shape[0]
    total = np.zeros((q_i.shape[1],) * n)
    for i in range(n):
        shape = [1] * n
        shape[i] = -1
        total = total + q_i[i].reshape(shape)
    return total


def check_igm(q_i, q_jt, v: float | None = None, atol: float = 1e-6) -> IgmReport:
    q_i, q_jt = np.asarray(q_i, np.float64), np.asarray(q_jt, np.float64)
    n, u = q_i.shape
    if q_jt.shape != (u,) * n:
        raise ValueError(f"Q_jt shape {q_jt.shape} does not match {n} agents with {u} actions")
    u_bar = tuple(int(np.argmax(row)) for row in q_i)
    q_prime = transformed_q(q_i)
    if v is None:
        v = float(q_jt.max() - q_prime[u_bar])
    d = q_prime - q_jt + v
    others = d.copy()
    others[u_bar] = np.inf
    residual_7 = max(float(np.abs(d.min(axis=i)).max()) for i in range(n))
    return IgmReport(
        greedy_joint_action=u_bar,
        q_jt_argmax=tuple(int(a) for a in np.unravel_index(np.argmax(q_jt), q_jt.shape)),
        igm=bool(q_jt[u_bar] >= q_jt.max() - atol),
        v=float(v),
        residual_4a=float(abs(d[u_bar])),
        residual_4b=float(max(0.0, -others.min())) if others.size > 1 else 0.0,
        residual_7=residual_7,
    )
