"""Modified predator-prey: dynamics on hand-drawn grids, observations, rendering.

Grids are drawn as strings, row 0 on top: digits are predators (1 is agent index 0), X are
prey (indexed in reading order), '.' is empty. Prey moves are scripted where a test needs
them fixed (transition's `prey_actions`), so every expected outcome is worked out by hand.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.envs.predator_prey import (
    FAMILY,
    PredatorPreyConfig,
    make_predator_prey,
    move,
    observations,
    state_from_positions,
    transition,
)
from qtran.errors import UserError
from qtran.render import gif, text_frame

UP, LEFT, STAY, RIGHT, DOWN = range(5)


def parse(rows, penalty=0.5):
    """A state from ASCII art (see the module docstring)."""
    predators, prey = {}, []
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch.isdigit():
                predators[int(ch) - 1] = (r, c)
            elif ch == "X":
                prey.append((r, c))
    assert sorted(predators) == list(range(len(predators))), "predators must be 1..N"
    return state_from_positions([predators[i] for i in range(len(predators))], prey, penalty)


def draw(state, grid):
    """The ASCII art of a state (the inverse of parse), via the renderer's text frame."""
    return text_frame(state, grid).splitlines()[:grid]


@partial(jax.jit, static_argnums=3)
def _transition(key, state, actions, grid, prey_actions):
    return transition(key, state, actions, grid, prey_actions)


def play(rows, actions, prey_actions=None, penalty=0.5, key=0):
    """One scripted step from a drawn grid.

    Returns (drawn next grid, next state, reward, catches, penalties)."""
    state = parse(rows, penalty)
    grid = len(rows)
    if prey_actions is None:
        prey_actions = [STAY] * state.prey.shape[0]
    nxt, reward, catches, penalties = _transition(
        jax.random.PRNGKey(key), state, jnp.array(actions), grid, jnp.array(prey_actions)
    )
    return draw(nxt, grid), nxt, float(reward), float(catches), float(penalties)


# --- movement -------------------------------------------------------------------------------


def test_agent_one_moves_first_and_blocks_agent_two():
    # Both head for the middle cell: agent 1 gets there first, agent 2 bumps and stays.
    after, *_ = play(["1.2..", ".....", ".....", ".....", "....X"], [RIGHT, LEFT])
    assert after == [".12..", ".....", ".....", ".....", "....X"]


def test_agent_one_is_blocked_by_agent_two_before_agent_two_moves():
    # Agent 1 tries the cell agent 2 is about to leave: agent 2 has not moved yet, so 1 stays.
    after, *_ = play(["12...", ".....", ".....", ".....", "....X"], [RIGHT, RIGHT])
    assert after == ["1.2..", ".....", ".....", ".....", "....X"]


def test_agent_two_can_take_the_cell_agent_one_left():
    after, *_ = play(["21...", ".....", ".....", ".....", "....X"], [RIGHT, RIGHT])
    assert after == [".21..", ".....", ".....", ".....", "....X"]


def test_edges_block():
    rows = ["1....", ".....", "..X..", ".....", "....2"]
    for a1, a2 in [(UP, DOWN), (LEFT, RIGHT)]:
        after, *_ = play(rows, [a1, a2])
        assert after == rows
    after, *_ = play(rows, [DOWN, UP])
    assert after == [".....", "1....", "..X..", "....2", "....."]


def test_prey_blocks_predators_and_predators_block_prey():
    rows = [".....", ".1X..", ".....", ".....", "....2"]
    after, *_ = play(rows, [RIGHT, STAY], prey_actions=[LEFT])
    assert after == rows
    # Prey move after all predators: the cell predator 1 just left is free for the prey.
    after, *_ = play(rows, [DOWN, STAY], prey_actions=[LEFT])
    assert after == [".....", ".X...", ".1...", ".....", "....2"]


def test_move_helper_is_pure_and_blocks():
    pos = jnp.array([[0, 0], [0, 1]])
    assert move(pos, 0, jnp.array(RIGHT), 5).tolist() == [[0, 0], [0, 1]]
    assert move(pos, 0, jnp.array(DOWN), 5).tolist() == [[1, 0], [0, 1]]
    assert move(pos, 1, jnp.array(UP), 5).tolist() == [[0, 0], [0, 1]]
    assert pos.tolist() == [[0, 0], [0, 1]]


def test_prey_moves_uniformly_at_random():
    env = make_predator_prey(PredatorPreyConfig())
    state = parse(["1....", ".....", "..X..", ".....", "....2"])
    keys = jax.random.split(jax.random.PRNGKey(3), 2000)
    _, nxt, *_ = jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))(
        keys, state, jnp.array([STAY, STAY])
    )
    d = np.asarray(nxt.prey[:, 0] - state.prey[0])
    moves = {(-1, 0): 0, (0, -1): 0, (0, 0): 0, (0, 1): 0, (1, 0): 0}
    for dy, dx in d:
        moves[(int(dy), int(dx))] += 1
    freq = np.array(list(moves.values())) / len(d)
    assert sum(moves.values()) == len(d)
    assert np.all(np.abs(freq - 0.2) < 0.04), freq


# --- rewards --------------------------------------------------------------------------------


def test_diagonal_and_distant_predators_do_not_count():
    after, nxt, reward, catches, penalties = play(
        ["..1..", ".2.3.", "..X..", ".4.5.", "....."], [STAY] * 5
    )
    assert (reward, catches, penalties) == (0.0, 0.0, 0.0)
    assert int(nxt.hits[0]) == 0


def test_one_predator_gives_minus_p():
    rows = [".....", ".....", ".1X..", ".....", "....2"]
    after, nxt, reward, catches, penalties = play(rows, [STAY, STAY], penalty=1.5)
    assert (reward, catches, penalties) == (-1.5, 0.0, 1.0)
    assert after == rows  # no catch, no respawn


def test_counting_happens_after_the_prey_moved():
    after, _, reward, *_ = play(
        [".....", "..2..", ".1X..", ".....", "....."], [STAY, STAY], prey_actions=[DOWN]
    )
    assert after == [".....", "..2..", ".1...", "..X..", "....."]
    assert reward == 0.0


def test_two_predators_catch_and_prey_respawns_on_an_empty_cell():
    rows = [".....", "..2..", "1.X..", ".....", "....."]
    after, nxt, reward, catches, penalties = play(rows, [RIGHT, DOWN])
    assert (reward, catches, penalties) == (1.0, 1.0, 0.0)
    # Predator 1 steps right next to the prey; predator 2 bumps into the prey and stays above it.
    assert nxt.predators.tolist() == [[2, 1], [1, 2]]
    assert nxt.counted_at.tolist() == [[2, 2]] and int(nxt.hits[0]) == 2
    assert nxt.prey.tolist() != [[2, 2]]


def test_respawns_land_only_on_empty_cells_and_reach_all_of_them():
    # 3x3 and crowded: both prey are caught (by 1+2 and by 3+4). Prey 1 respawns first, onto
    # one of the 3 empty cells; prey 2 then also may take the corner prey 1 just left.
    rows = ["X1.", "2.3", ".4X"]
    state = parse(rows)
    empty = {(0, 2), (1, 1), (2, 0)}
    keys = jax.random.split(jax.random.PRNGKey(0), 300)
    stay4, stay2 = jnp.full(4, STAY), jnp.full(2, STAY)
    step = jax.jit(jax.vmap(lambda k: transition(k, state, stay4, 3, stay2)))
    nxt, reward, catches, penalties = step(keys)
    assert np.all(np.asarray(reward) == 2.0) and np.all(np.asarray(catches) == 2.0)
    landed0, landed1 = set(), set()
    for p0, p1 in np.asarray(nxt.prey).tolist():
        assert tuple(p0) in empty
        assert tuple(p1) in (empty | {(0, 0)}) - {tuple(p0)}
        landed0.add(tuple(p0))
        landed1.add(tuple(p1))
    assert landed0 == empty and landed1 == empty | {(0, 0)}
    assert np.all(np.asarray(nxt.predators) == np.asarray(state.predators))


def test_respawn_cell_is_uniform_over_the_empty_cells():
    # One catch on 3x3 leaves 6 empty cells (the prey's own cell is taken until it moves).
    # 6000 draws: each cell expects 1000, sd about 29; a bias towards low or high ranks,
    # or an off-by-one that never picks the last free cell, lands far outside 850-1150.
    state = parse(["X1.", "2..", "..."])
    keys = jax.random.split(jax.random.PRNGKey(1), 6000)
    step = jax.jit(jax.vmap(lambda k: transition(k, state, jnp.full(2, STAY), 3, jnp.full(1, STAY))))
    prey = np.asarray(step(keys)[0].prey)[:, 0]
    cells, counts = np.unique(prey[:, 0] * 3 + prey[:, 1], return_counts=True)
    assert cells.tolist() == [2, 4, 5, 6, 7, 8]
    assert counts.min() > 850 and counts.max() < 1150, counts


def test_reward_is_summed_over_prey():
    rows = ["X1...", "2....", ".....", "...X.", "...3."]
    _, nxt, reward, catches, penalties = play(rows, [STAY] * 3, penalty=1.5)
    assert (catches, penalties) == (1.0, 1.0)
    assert reward == pytest.approx(1.0 - 1.5)
    assert nxt.hits.tolist() == [2, 1]


def test_penalty_lives_in_the_state_and_vmaps():
    env = make_predator_prey(PredatorPreyConfig(penalty=0.5))
    reset_p = env.reset_with_value
    penalties = jnp.array([0.0, 0.5, 1.0, 1.5])
    _, states = jax.jit(jax.vmap(reset_p, in_axes=(None, 0)))(jax.random.PRNGKey(0), penalties)
    assert np.allclose(states.penalty, penalties)
    assert float(env.reset(jax.random.PRNGKey(0))[1].penalty) == 0.5
    # Prey in the corner next to predator 1: whatever it does, exactly one predator touches it.
    stacked = jax.vmap(lambda p: parse(["X1...", ".....", "2....", ".....", "....."], p))(penalties)
    _, _, reward, _, _ = jax.jit(jax.vmap(env.step, in_axes=(None, 0, None)))(
        jax.random.PRNGKey(1), stacked, jnp.array([STAY, STAY])
    )
    assert np.allclose(reward, -penalties)


# --- episodes, observations, determinism ----------------------------------------------------


def rollout(env, key, steps):
    """Random actions for `steps` steps: stacked (states, rewards, dones)."""
    k_reset, k_run = jax.random.split(key)
    _, state = env.reset(k_reset)

    def body(state, k):
        k_act, k_env = jax.random.split(k)
        actions = jax.random.randint(k_act, (env.n_agents,), 0, env.n_actions)
        _, nxt, reward, done, info = env.step(k_env, state, actions)
        return nxt, (nxt, reward, done, info["catches"])

    return jax.lax.scan(body, state, jax.random.split(k_run, steps))[1]


_ENV = make_predator_prey(PredatorPreyConfig())
_rollout = jax.jit(lambda key: rollout(_ENV, key, _ENV.episode_limit))


def test_episode_is_100_steps_and_never_done():
    assert _ENV.episode_limit == 100
    states, rewards, dones, _ = jax.vmap(_rollout)(jax.random.split(jax.random.PRNGKey(0), 8))
    assert dones.shape == (8, 100) and not bool(dones.any())
    assert states.t[:, -1].tolist() == [100] * 8
    # Everyone stays on the grid, on distinct cells, at every step.
    pos = np.concatenate([states.predators, states.prey], axis=2)  # [8, 100, 3, 2]
    assert pos.min() >= 0 and pos.max() < 5
    flat = pos[..., 0] * 5 + pos[..., 1]
    assert all(len(set(row)) == 3 for row in flat.reshape(-1, 3).tolist())


def test_same_seed_same_trajectory():
    a = _rollout(jax.random.PRNGKey(7))
    b = _rollout(jax.random.PRNGKey(7))
    c = _rollout(jax.random.PRNGKey(8))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0].predators, c[0].predators)


def test_vmapped_step_equals_looped_step():
    env = make_predator_prey(PredatorPreyConfig(agents=4, prey=2, grid=7, penalty=1.0))
    keys = jax.random.split(jax.random.PRNGKey(2), 6)
    _, states = jax.jit(jax.vmap(env.reset))(keys)
    actions = jax.random.randint(jax.random.PRNGKey(3), (6, 4), 0, 5)
    batched = jax.jit(jax.vmap(env.step))(keys, states, actions)
    step = jax.jit(env.step)
    for b in range(6):
        one = jax.tree.map(lambda x: x[b], states)
        looped = step(keys[b], one, actions[b])
        for x, y in zip(jax.tree.leaves(looped), jax.tree.leaves(batched)):
            assert np.array_equal(np.asarray(x), np.asarray(y)[b])


def test_reset_places_everyone_on_distinct_cells():
    env = make_predator_prey(PredatorPreyConfig(agents=4, prey=2, grid=3))
    _, states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 200))
    pos = np.concatenate([states.predators, states.prey], axis=1)
    flat = pos[..., 0] * 3 + pos[..., 1]
    assert all(len(set(row)) == 6 for row in flat.tolist())
    assert len({tuple(row) for row in flat.tolist()}) > 50  # really random


OBS_ROWS_2 = [".....", ".1...", ".....", "...X.", "....2"]
# Agent 1 at (1,1), agent 2 at (4,4), prey at (3,3); grid 5. Layout per agent: relative
# (row, col) of predator 1, predator 2, prey; id i/N; own (row, col); all divided by 5.
OBS_FULL_2 = [
    [0, 0, 3, 3, 2, 2, 0, 1, 1],
    [-3, -3, 0, 0, -1, -1, 2.5, 4, 4],
]
# Local view 2: the other predator is 3 cells away (Chebyshev) for both, so it reads (0, 0).
OBS_LOCAL_2 = [
    [0, 0, 0, 0, 2, 2, 0, 1, 1],
    [0, 0, 0, 0, -1, -1, 2.5, 4, 4],
]


@pytest.mark.parametrize("mode,expected", [("full", OBS_FULL_2), ("local", OBS_LOCAL_2)])
def test_observation_layout_two_agents(mode, expected):
    env = make_predator_prey(PredatorPreyConfig(obs=mode))
    assert (env.obs_dim, env.state_dim) == (9, 6)
    state = parse(OBS_ROWS_2)
    got = observations(state, 5, mode, 2)
    assert got.shape == (2, 9)
    assert np.allclose(got, np.array(expected) / 5), got * 5
    assert np.allclose(env.global_state(state), np.array([1, 1, 4, 4, 3, 3]) / 5)
    # reset and step return exactly this function of their state.
    obs, state = env.reset(jax.random.PRNGKey(0))
    assert np.array_equal(obs, observations(state, 5, mode, 2))
    obs, state, *_ = env.step(jax.random.PRNGKey(1), state, jnp.array([STAY, RIGHT]))
    assert np.array_equal(obs, observations(state, 5, mode, 2))


OBS_ROWS_4 = ["1......", ".......", "..X....", "...3...", ".......", "....X.2", "4......"]


@pytest.mark.parametrize("mode", ["full", "local"])
def test_observation_layout_four_agents(mode):
    env = make_predator_prey(PredatorPreyConfig(agents=4, prey=2, grid=7, obs=mode))
    assert (env.obs_dim, env.state_dim) == (15, 12)
    obs = observations(parse(OBS_ROWS_4), 7, mode, 2)
    assert obs.shape == (4, 15)
    # Agent 3 at (3,3): predators 1, 2, 3, 4 and prey 1 (2,2), prey 2 (5,4).
    rel = [[-3, -3], [2, 3], [0, 0], [3, -3], [-1, -1], [2, 1]]
    if mode == "local":  # predators 1, 2, 4 are 3 cells away
        rel = [[0, 0], [0, 0], [0, 0], [0, 0], [-1, -1], [2, 1]]
    expected = np.array(sum(rel, []) + [2 / 4 * 7, 3, 3]) / 7
    assert np.allclose(obs[2], expected), obs[2] * 7


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"agents": 0},
        {"prey": 0},
        {"grid": 1},
        {"agents": 4, "prey": 5, "grid": 3},
        {"penalty": -0.1},
        {"penalty": float("nan")},
        {"obs": "partial"},
        {"view": -1},
        {"episode_limit": 0},
        {"grid": 2147483647},  # found by the slow fuzz test: grid * grid left int32 in reset
    ],
)
def test_bad_config_is_a_one_line_user_error(kwargs):
    with pytest.raises(UserError) as err:
        make_predator_prey(PredatorPreyConfig(**kwargs))
    assert "\n" not in str(err.value)


def test_family_and_defaults():
    config, build = FAMILY
    cfg = config()
    assert (cfg.name, cfg.agents, cfg.prey, cfg.grid, cfg.penalty, cfg.obs, cfg.view) == (
        "predator_prey", 2, 1, 5, 0.5, "full", 2,
    )
    env = build(cfg)
    assert (env.n_agents, env.n_actions, env.obs_dim, env.episode_limit) == (2, 5, 9, 100)
    _, state = env.reset(jax.random.PRNGKey(0))
    assert env.avail_actions(state).shape == (2, 5) and bool(env.avail_actions(state).all())
    assert not env.one_step and not env.single_state


# --- rendering ------------------------------------------------------------------------------


def test_text_frame_of_a_drawn_grid():
    rows = [".....", ".....", ".1X..", ".....", "....2"]
    assert text_frame(parse(rows), 5) == "\n".join(rows) + "\nt=0 reward=0 catches=0 penalties=0"
    _, nxt, *_ = play(rows, [STAY, STAY], penalty=1.5)
    assert text_frame(nxt, 5).splitlines()[-1] == "t=1 reward=-1.5 catches=0 penalties=1"


def test_gif_writes_an_animation(tmp_path):
    from PIL import Image

    rows = [".....", "..2..", "1.X..", ".....", "....."]
    s0 = parse(rows)
    _, s1, r1, *_ = play(rows, [RIGHT, DOWN])  # a catch
    _, s2, r2, *_ = play(draw(s1, 5), [STAY, STAY])
    path = tmp_path / "episode.gif"
    assert gif([s0, s1, s2], str(path), 5, rewards=[r1, r2]) == str(path)
    assert path.stat().st_size > 0 and path.read_bytes()[:4] == b"GIF8"
    with Image.open(path) as im:
        assert im.n_frames == 3
    # A stacked trajectory (leading time axis) works too.
    stacked = jax.tree.map(lambda *x: jnp.stack(x), s0, s1, s2)
    gif(stacked, str(tmp_path / "stacked.gif"), 5)
    assert (tmp_path / "stacked.gif").stat().st_size > 0
