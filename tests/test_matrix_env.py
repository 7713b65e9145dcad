import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.envs.matrix import PRESETS, load_payoff, make_matrix_game
from qtran.errors import UserError


@pytest.mark.parametrize("n_agents,n_actions", [(2, 3), (3, 2), (4, 3)])
def test_reward_is_the_payoff_entry_for_every_joint_action(n_agents, n_actions):
    payoff = np.random.default_rng(0).normal(size=(n_actions,) * n_agents)
    env = make_matrix_game(payoff)
    assert (env.n_agents, env.n_actions, env.episode_limit) == (n_agents, n_actions, 1)
    obs, state = env.reset(jax.random.PRNGKey(0))
    assert obs.shape == (n_agents, env.obs_dim)
    for joint in itertools.product(range(n_actions), repeat=n_agents):
        _, _, reward, done, _ = env.step(jax.random.PRNGKey(1), state, jnp.array(joint))
        assert float(reward) == pytest.approx(payoff[joint], rel=1e-6)
        assert bool(done)
    assert env.avail_actions(state).shape == (n_agents, n_actions)
    assert bool(env.avail_actions(state).all())


def test_table1_preset():
    env = make_matrix_game(load_payoff("table1"))
    _, state = env.reset(jax.random.PRNGKey(0))
    rewards = {(a, b): float(env.step(None, state, jnp.array([a, b]))[2]) for a in range(3) for b in range(3)}
    assert rewards[(0, 0)] == 8 and rewards[(0, 1)] == -12 and rewards[(1, 0)] == -12
    assert rewards[(1, 1)] == rewards[(2, 2)] == rewards[(1, 2)] == 0


def test_vmapped_step_equals_loop():
    payoff = np.random.default_rng(1).normal(size=(4, 4, 4))
    env = make_matrix_game(payoff)
    _, state = env.reset(jax.random.PRNGKey(0))
    actions = jax.random.randint(jax.random.PRNGKey(2), (16, 3), 0, 4)
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    batched = jax.jit(jax.vmap(env.step, in_axes=(0, None, 0)))(keys, state, actions)[2]
    looped = [env.step(k, state, a)[2] for k, a in zip(keys, actions)]
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(looped))


def test_payoff_from_json_and_npy(tmp_path):
    payoff = np.arange(8.0).reshape(2, 2, 2)
    (tmp_path / "p.json").write_text(json.dumps(payoff.tolist()))
    (tmp_path / "q.json").write_text(json.dumps({"payoff": payoff.tolist()}))
    np.save(tmp_path / "p.npy", payoff)
    for name in ("p.json", "q.json", "p.npy"):
        np.testing.assert_array_equal(load_payoff(str(tmp_path / name)), payoff)


@pytest.mark.parametrize("bad,message", [
    ([[1, 2, 3], [4, 5, 6]], "not |U|^N"),
    ([[1, float("nan")], [0, 0]], "NaN"),
    ([[1]], "at least 2 actions"),
    ([], "non-empty"),
])
def test_bad_payoffs_are_user_errors(tmp_path, bad, message):
    (tmp_path / "bad.json").write_text(json.dumps(bad).replace("NaN", "NaN"))
    with pytest.raises(UserError, match=message.replace("|", r"\|").replace("^", r"\^")):
        load_payoff(str(tmp_path / "bad.json"))


def test_unknown_payoff_name_and_missing_file():
    with pytest.raises(UserError, match="preset"):
        load_payoff("no-such-game")
    with pytest.raises(UserError, match="not found"):
        load_payoff("/nonexistent/payoff.json")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="cannot read"):
        load_payoff(str(tmp_path / "obj.npy"))


def test_presets_are_valid():
    for name in PRESETS:
        assert load_payoff(name).ndim == 2
