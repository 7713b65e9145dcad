"""Episode replay buffer: a pytree of fixed-shape arrays, so it lives inside jit and vmap.

Whole episodes are stored, padded to the environment's episode limit with a mask, so a
recurrent agent can replay histories from their first step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from qtran.algorithms.base import Batch
from qtran.envs.base import Env


class Buffer(NamedTuple):
    data: Batch  # every leaf has a leading capacity axis
    pos: jax.Array  # next slot to write
    size: jax.Array  # slots filled so far


def empty_episode(env: Env) -> Batch:
    t, n, u = env.episode_limit, env.n_agents, env.n_actions
    return Batch(
        obs=jnp.zeros((t + 1, n, env.obs_dim), jnp.float32),
        state=jnp.zeros((t + 1, env.state_dim), jnp.float32),
        avail=jnp.zeros((t + 1, n, u), bool),
        actions=jnp.zeros((t, n), jnp.int32),
        reward=jnp.zeros((t,), jnp.float32),
        terminated=jnp.zeros((t,), bool),
        mask=jnp.zeros((t,), bool),
    )


def init_buffer(env: Env, capacity: int) -> Buffer:
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), empty_episode(env))
    return Buffer(data, jnp.int32(0), jnp.int32(0))


def add(buffer: Buffer, episodes: Batch) -> Buffer:
    """Write episodes (leading axis E) at the ring position, overwriting the oldest."""
    capacity = buffer.data.reward.shape[0]
    count = episodes.reward.shape[0]
    slots = (buffer.pos + jnp.arange(count)) % capacity
    data = jax.tree.map(lambda store, new: store.at[slots].set(new), buffer.data, episodes)
    return Buffer(data, (buffer.pos + count) % capacity, jnp.minimum(buffer.size + count, capacity))


def sample(buffer: Buffer, key: jax.Array, batch_size: int) -> Batch:
    """batch_size episodes drawn uniformly, with replacement, from the filled slots."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda store: store[idx], buffer.data)
