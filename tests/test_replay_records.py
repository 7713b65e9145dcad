"""The compact replay layout (issue 23): environments that store records, rebuilt exactly.

Predator-prey stores its positions as int8 and rebuilds observations, global state and
available actions inside the update. Every batch the losses see must be bit for bit the batch
the float layout gave: for every observation mode, for single transitions and whole episodes,
after jit, through the trainer's own sampling. And an old-format checkpoint is refused.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from qtran import checkpoint
from qtran.envs.predator_prey import PredatorPreyConfig, make_predator_prey
from qtran.networks import Agents
from qtran.replay import add, expand, init_buffer, sample, sample_transitions, stored
from qtran.rollout import run_episode

SHAPES = {
    "n2-full": PredatorPreyConfig(agents=2, prey=1, grid=5),
    "n4-full": PredatorPreyConfig(agents=4, prey=2, grid=7),
    "n3-local": PredatorPreyConfig(agents=3, prey=2, grid=6, obs="local", view=1),
    "wide-grid": PredatorPreyConfig(agents=2, prey=1, grid=130, episode_limit=20),  # int16 positions
    # the released code's form: centred positions in observations and state, its movement rule
    "n2-code": PredatorPreyConfig(agents=2, prey=1, grid=5, positions="centred", move_rule="follow"),
}


def _float_layout(env):
    """The same environment without records: the buffer keeps obs, state and avail as floats."""
    return dataclasses.replace(env, record=None, rebuild=None)


def _buffers(env, episodes=5, capacity=8):
    """(compact buffer, float buffer) holding the same epsilon-greedy episodes."""
    agents = Agents(env.n_agents, env.n_actions, env.obs_dim, 8, True)
    params = agents.init(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), episodes)
    plain = _float_layout(env)

    def collect(e, store):
        eps = jax.vmap(lambda k: run_episode(e, agents, params, k, 0.5, store=store)[0])(keys)
        return add(init_buffer(e, capacity), stored(e, eps))

    return collect(env, True), collect(plain, False), plain


def _assert_same(a, b):
    for name in a._fields:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name  # bit for bit: same values, no tolerance


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_rebuilt_batches_equal_the_float_layout_bit_for_bit(shape):
    env = make_predator_prey(SHAPES[shape])
    compact, floats, plain = _buffers(env)
    assert compact.data.state is None and compact.data.obs.dtype in (np.int8, np.int16)
    for draw in range(3):
        key = jax.random.PRNGKey(10 + draw)
        pairs = [(jax.jit(lambda b, k: expand(env, sample_transitions(b, k, 16)))(compact, key),
                  jax.jit(lambda b, k: expand(plain, sample_transitions(b, k, 16)))(floats, key)),
                 (jax.jit(lambda b, k: expand(env, sample(b, k, 4)))(compact, key),
                  jax.jit(lambda b, k: expand(plain, sample(b, k, 4)))(floats, key))]
        for rebuilt, kept in pairs:
            _assert_same(rebuilt, kept)


def test_the_compact_buffer_is_a_tenth_of_the_float_one():
    env = make_predator_prey(SHAPES["n4-full"])
    size = lambda b: sum(x.nbytes for x in jax.tree.leaves(b.data))  # noqa: E731
    compact, floats = init_buffer(env, 10), init_buffer(_float_layout(env), 10)
    assert size(compact) * 10 < size(floats)


def test_an_older_format_checkpoint_is_refused_with_one_line(tmp_path):
    arrays = {"state/x": np.zeros(3)}
    arrays["__header__"] = np.asarray(json.dumps({"format": checkpoint.FORMAT - 1, "chunk": 0,
                                                  "config_hash": "h"}))
    arrays["__sha256__"] = np.asarray(checkpoint.checksum(arrays))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    np.savez(checkpoint.path_for(folder, 0), **arrays)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_latest(folder, "h")
    message = str(err.value)
    assert "\n" not in message
    assert f"format {checkpoint.FORMAT - 1}" in message and f"format {checkpoint.FORMAT}" in message
    assert "re-run" in message and str(folder) in message
