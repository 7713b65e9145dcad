import json
from importlib import resources

import numpy as np
import pytest

from qtran.igm import check_igm, transformed_q


def _paper():
    return json.loads(resources.files("qtran.data").joinpath("table1.json").read_text())


def test_paper_qtran_tables_satisfy_igm_and_theorem_1():
    ref = _paper()["qtran"]
    report = check_igm(np.array([ref["q1"], ref["q2"]]), np.array(ref["q_jt"]), v=0.0)
    assert report.igm and report.greedy_joint_action == (0, 0)
    # the printed tables round to 2 decimals: (4a) and (4b) hold to that precision
    assert report.residual_4a < 0.02 and report.residual_4b == 0.0


def test_paper_vdn_tables_fail_igm_on_the_payoff():
    ref = _paper()
    report = check_igm(np.array([ref["vdn"]["q1"], ref["vdn"]["q2"]]), np.array(ref["payoff"], float))
    assert not report.igm
    assert report.greedy_joint_action == (2, 1)  # (C, B), as the paper says


def test_residuals_by_hand():
    q_i = np.array([[1.0, 0.0], [2.0, 0.0]])  # greedy (0, 0), Q'(0,0) = 3
    q_jt = np.array([[5.0, 0.0], [4.0, 10.0]])  # argmax (1, 1): IGM fails
    r = check_igm(q_i, q_jt, v=2.0)
    # D = Q' - Q_jt + V = [[3-5+2, 1-0+2], [2-4+2, 0-10+2]] = [[0, 3], [0, -8]]
    assert not r.igm and r.q_jt_argmax == (1, 1)
    assert r.residual_4a == pytest.approx(0.0)
    assert r.residual_4b == pytest.approx(8.0)
    # (7): min over agent 0's action per column: [0, -8]; over agent 1's per row: [0, -8]
    assert r.residual_7 == pytest.approx(8.0)


def test_default_v_is_theorem_1_definition():
    q_i = np.array([[1.0, 0.0], [0.5, 0.0]])
    q_jt = np.array([[4.0, -1.0], [-1.0, 0.0]])
    r = check_igm(q_i, q_jt)
    assert r.v == pytest.approx(4.0 - 1.5) and r.residual_4a == pytest.approx(0.0) and r.igm


def test_transformed_q_three_agents():
    q_i = np.arange(6.0).reshape(3, 2)
    tq = transformed_q(q_i)
    assert tq.shape == (2, 2, 2) and tq[1, 0, 1] == q_i[0, 1] + q_i[1, 0] + q_i[2, 1]
