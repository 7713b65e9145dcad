"""Predator-prey's `move_rule="follow"`, the released code's movement, on drawn grids and
against a plain recursive reference written from the rule's description.

Grids as in test_predator_prey.py: digits are predators (1 is agent index 0), X are prey in
reading order, '.' is empty, row 0 on top. The prey's actions are scripted.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.envs.predator_prey import MOVES, PredatorPreyConfig, make_predator_prey, move_all_following, transition
from tests.test_predator_prey import DOWN, LEFT, RIGHT, STAY, UP, draw, parse


@partial(jax.jit, static_argnums=(3, 5))
def _transition(key, state, actions, grid, prey_actions, rule):
    return transition(key, state, actions, grid, prey_actions, move_rule=rule)


def play(rows, actions, prey_actions, rule="follow"):
    state = parse(rows)
    grid = len(rows)
    nxt, *_ = _transition(jax.random.PRNGKey(0), state, jnp.array(actions), grid, jnp.array(prey_actions), rule)
    return draw(nxt, grid)


def test_mover_follows_an_occupant_that_moves_away():
    # Agent 1 steps right into agent 2's cell; agent 2 moves right first, so 1 follows.
    rows = ["12...", ".....", ".....", ".....", "....X"]
    assert play(rows, [RIGHT, RIGHT], [STAY]) == [".12..", ".....", ".....", ".....", "....X"]
    # Under the default rule agent 2 had not moved yet, so agent 1 stays.
    assert play(rows, [RIGHT, RIGHT], [STAY], "block") == ["1.2..", ".....", ".....", ".....", "....X"]


def test_predator_follows_the_prey_it_pushes():
    # Predator 1 moves into the prey's cell; the prey (drawn action: right) moves first.
    rows = [".....", ".1X..", ".....", ".....", "....2"]
    assert play(rows, [RIGHT, STAY], [RIGHT]) == [".....", "..1X.", ".....", ".....", "....2"]
    assert play(rows, [RIGHT, STAY], [RIGHT], "block") == [".....", ".1.X.", ".....", ".....", "....2"]


def test_no_follow_when_the_occupant_stays_or_is_blocked():
    rows = [".....", ".1X..", ".....", ".....", "....2"]
    assert play(rows, [RIGHT, STAY], [STAY]) == rows
    # The prey is at the edge and tries to leave the grid: it stays, so the predator stays.
    rows = ["...1X", ".....", ".....", ".....", "....2"]
    assert play(rows, [RIGHT, STAY], [RIGHT]) == rows


def test_a_swap_blocks_both():
    rows = ["12...", ".....", ".....", ".....", "....X"]
    assert play(rows, [RIGHT, LEFT], [STAY]) == rows


def test_a_chain_moves_front_to_back():
    # 1 -> 2 -> 3 -> free cell: 3 moves, then 2, then 1.
    rows = ["123..", ".....", ".....", ".....", "....X"]
    state = parse(rows)
    nxt, *_ = _transition(jax.random.PRNGKey(0), state, jnp.array([RIGHT, RIGHT, RIGHT]), 5, jnp.array([STAY]),
                          "follow")
    assert draw(nxt, 5) == [".123.", ".....", ".....", ".....", "....X"]


def test_a_prey_moved_early_does_not_move_twice():
    # Predator 1 pushes the prey down (its drawn action); the prey must not move again later.
    rows = ["..1..", "..X..", ".....", ".....", "2...."]
    assert play(rows, [DOWN, STAY], [DOWN]) == [".....", "..1..", "..X..", ".....", "2...."]


def test_a_cycle_blocks_everyone():
    # 1 right into 2, 2 down into 3, 3 left into 4, 4 up into 1: a cycle of four, nobody moves.
    rows = ["12...", "43...", ".....", ".....", "....X"]
    state = parse(rows)
    acts = jnp.array([RIGHT, DOWN, LEFT, UP])
    nxt, *_ = _transition(jax.random.PRNGKey(0), state, acts, 5, jnp.array([STAY]), "follow")
    assert draw(nxt, 5) == rows


def reference_follow(positions, actions, grid):
    """The rule as the released code states it, recursively, in plain Python."""
    pos = [tuple(p) for p in positions]
    done, waiting = [False] * len(pos), [False] * len(pos)

    def step(i):
        if done[i] or waiting[i]:
            return
        dr, dc = MOVES[actions[i]]
        target = (pos[i][0] + dr, pos[i][1] + dc)
        if (dr, dc) == (0, 0):
            done[i] = True
            return
        if target in pos:
            waiting[i] = True
            step(pos.index(target))
            waiting[i] = False
        if 0 <= target[0] < grid and 0 <= target[1] < grid and target not in pos:
            pos[i] = target
        done[i] = True

    for i in range(len(pos)):
        step(i)
    return np.array(pos)


@pytest.mark.parametrize("grid,k", [(3, 5), (4, 6), (6, 7), (2, 3)])
def test_follow_matches_the_recursive_rule_on_random_crowded_grids(grid, k):
    rng = np.random.default_rng(grid * 10 + k)
    fn = jax.jit(move_all_following, static_argnums=2)
    for _ in range(150):
        cells = rng.choice(grid * grid, size=k, replace=False)
        positions = np.stack([cells // grid, cells % grid], -1).astype(np.int32)
        actions = rng.integers(0, 5, size=k).astype(np.int32)
        got = np.asarray(fn(jnp.asarray(positions), jnp.asarray(actions), grid))
        want = reference_follow(positions, actions, grid)
        assert np.array_equal(got, want), (positions.tolist(), actions.tolist(), got.tolist(), want.tolist())


def test_follow_keeps_everyone_on_distinct_cells_over_an_episode():
    env = make_predator_prey(PredatorPreyConfig(agents=4, prey=2, grid=4, move_rule="follow"))
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.PRNGKey(3))
    key = jax.random.PRNGKey(4)
    for _ in range(60):
        key, k_a, k_s = jax.random.split(key, 3)
        _, state, *_ = step(k_s, state, jax.random.randint(k_a, (4,), 0, 5))
        cells = np.concatenate([np.asarray(state.predators), np.asarray(state.prey)])
        assert len({tuple(c) for c in cells}) == len(cells)


def test_centred_positions_shift_own_position_and_state():
    rows = [".....", ".1...", ".....", ".....", "...X2"]
    state = parse(rows)
    corner = make_predator_prey(PredatorPreyConfig())
    centred = make_predator_prey(PredatorPreyConfig(positions="centred"))
    from qtran.envs.predator_prey import observations

    a, b = observations(state, 5, "full", 2, "corner"), observations(state, 5, "full", 2, "centred")
    # Relative positions and the id are the same; the own position moves by grid / 2 / grid.
    assert np.array_equal(a[:, :7], b[:, :7])
    assert np.allclose(b[0, 7:], [(1 - 2.5) / 5, (1 - 2.5) / 5])
    assert np.allclose(b[1, 7:], [(4 - 2.5) / 5, (4 - 2.5) / 5])
    assert np.allclose(corner.global_state(state), np.array([1, 1, 4, 4, 4, 3]) / 5)
    assert np.allclose(centred.global_state(state), (np.array([1, 1, 4, 4, 4, 3]) - 2.5) / 5)
