"""`qtran reproduce compare`: the job grid, and the table's numbers from run summaries."""

import numpy as np
import pytest

from qtran.config import make_config
from qtran.experiments import compare


def test_every_algorithm_on_every_game_at_the_paper_budgets():
    grid = compare.jobs([])
    assert set(grid) == {f"{g}/{a}" for g in ("table1", "climbing", "penalty", "climb21", "mgs")
                         for a in ("iql", "vdn", "qmix", "ow-qmix", "cw-qmix", "qplex", "qtran-base", "qtran-alt")}
    climb = make_config(grid["climbing/qplex"])
    assert (climb.env.payoff, climb.seeds, climb.steps, climb.eps.start, climb.eps.end) == ("climbing", 10, 20000, 1, 1)
    mgs = make_config(grid["mgs/ow-qmix"])
    assert (mgs.env.domains, mgs.env.equal_s, mgs.seeds, mgs.steps) == ("mgs", True, 10, 10000)
    assert mgs.algo == "ow-qmix" and mgs.wqmix.alpha == 0.1


def test_mgs_is_figure_3c_single_draw_game():
    """The MGS row is the game of the README's Figure 3c (s drawn once from env.s_seed=2, the
    same for every episode and run), not the released code's s re-drawn every episode."""
    from qtran.envs.gaussian_squeeze import s_draw_of
    from qtran.experiments import fig3

    mgs = make_config(compare.jobs([], games=("mgs",), algos=("vdn",))["mgs/vdn"])
    fig3c = make_config(fig3.jobs([], panels=("fig3c",), algos=("vdn",), design="single")["fig3c/vdn"])
    assert mgs.env == fig3c.env
    assert mgs.env.s_seed == 2 and s_draw_of(mgs.env) == "once"


def _matrix_summary(greedy, q_jt, optima, returns):
    return {"greedy_joint_actions": greedy, "optimal_joint_actions": optima, "final_eval_return": returns,
            "tables": {"q_jt": q_jt}, "env_reference": {"optimum": 10.0}, "train_seconds": 1.0,
            "compile_seconds": 2.0}


def test_matrix_rows_count_any_optimal_cell_and_read_q_at_the_best_optimum():
    # the penalty game's shape: two optimal cells, (0, 2) and (2, 0)
    q1 = np.zeros((3, 3)); q1[0, 2], q1[2, 0] = 9.0, 7.0  # noqa: E702
    q2 = np.zeros((3, 3)); q2[0, 2], q2[2, 0] = 5.0, 8.0  # noqa: E702
    s = _matrix_summary([[0, 2], [1, 1], [2, 0]], [q1, q2, q2], [[0, 2], [2, 0]], [10.0, 2.0, 10.0])
    assert compare.optimum_hits(s, "penalty") == [True, False, True]
    r = compare.row(s, "penalty")
    assert r["optimal_seeds"] == 2 and r["seeds"] == 3
    assert r["value_at_optimum"] == pytest.approx((9.0 + 8.0 + 8.0) / 3)
    assert r["final_return_mean"] == pytest.approx(22.0 / 3)
    assert r["final_return_ci95"] > 0
    # IQL has no joint value: no number, a dash in the table
    del s["tables"]["q_jt"]
    assert compare.row(s, "penalty")["value_at_optimum"] is None
    text = compare.table({"penalty": {"iql": compare.row(s, "penalty")}}, {"penalty": 10.0})
    assert "| IQL | 2/3 |" in text and text.rstrip().endswith("| - |")


def test_mgs_counts_seeds_past_the_midpoint_between_pitfall_and_optimum():
    s = {"final_eval_return": [8.0, 6.6, 6.4, 5.0], "env_reference": {"optimum": 8.0, "pitfall": 5.0}}
    assert compare.optimum_hits(s, "mgs") == [True, True, False, False]
