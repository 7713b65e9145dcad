"""The successors' claim on the Table 1 game (paper budget: 10 fixed seeds, eps = 1, 20,000
steps): QPLEX (Wang et al., 2021) and OW-QMIX / CW-QMIX (Rashid et al., 2020), whose experiments
include this payoff, pick the optimum (A, A) in most seeds, at their papers' settings.

Measured here (docs/algorithms.md): OW-QMIX and CW-QMIX 10/10; QPLEX 4/10, its failing seeds
stuck with the agents' greedy action on a 0-payoff cell whose Q_tot and Q_tot(A, A) both sit
near 4 (Q_tot(A, A) cannot exceed the greedy cell's value). That claim is marked as an
expected failure, strictly, so it shows the day it starts to hold. With the authors' code's
gradient path and gradient clip (`qplex.stop_gradient=true grad_clip=10`) it does hold: 10/10
on these seeds (measured 2026-11-30, commit d89f3ac), though its utilities diverge on the way
(docs/algorithms.md).
"""

import pytest

pytestmark = pytest.mark.slow

from qtran.experiments import table1

QPLEX_SHORT = pytest.mark.xfail(strict=True, reason="QPLEX picks (A, A) in 4/10 seeds at this budget (measured)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("successors")
    return table1.run(["progress=false", "tensorboard=false", "checkpoint.every=0"], out=str(out),
                      algos=("qplex", "ow-qmix", "cw-qmix"))


@pytest.mark.parametrize("algo", ["ow-qmix", "cw-qmix", pytest.param("qplex", marks=QPLEX_SHORT)])
def test_picks_a_a_in_most_seeds(runs, algo):
    s = runs[algo]
    assert len(s["seeds"]) == 10
    assert sum(tuple(g) == (0, 0) for g in s["greedy_joint_actions"]) >= 6



def test_qplex_in_the_authors_code_form_picks_a_a_in_most_seeds():
    from qtran.run import train

    s = train(table1.SETTINGS + ["algo=qplex", "qplex.stop_gradient=true", "grad_clip=10", "progress=false"],
              write=False)
    assert len(s["seeds"]) == 10
    assert sum(tuple(g) == (0, 0) for g in s["greedy_joint_actions"]) >= 6
