"""Decentralised acting: every agent picks its action from its own Q_i only."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qtran.algorithms.base import Batch, greedy
from qtran.envs.base import Env
from qtran.networks import Agents


def epsilon_greedy(key, q, avail, eps):
    """Per agent: with probability eps a uniformly random available action, else its argmax."""
    k_explore, k_random = jax.random.split(key)
    random_actions = jax.random.categorical(k_random, jnp.where(avail, 0.0, -jnp.inf))
    explore = jax.random.uniform(k_explore, random_actions.shape) < eps
    return jnp.where(explore, random_actions, greedy(q, avail))


def step_inputs(env: Env, obs, state, avail, store: bool):
    """What an episode keeps of a step's inputs: (obs, global state, available actions), or
    with `store`, for an environment that can rebuild them, (its record of the state, None, None)."""
    if store and env.record is not None:
        return env.record(state), None, None
    return obs, env.global_state(state), avail


def run_episode(env: Env, agents: Agents, agent_params, key, eps, reset=None, store: bool = False):
    """One episode of at most `episode_limit` steps -> (episode padded, its return, q[T, N, U]).

    A recurrent agent starts from its initial carry here, so its hidden state is reset exactly
    at the episode's first step. Steps after the episode ended are still computed (shapes stay
    fixed) but masked out. `reset` replaces env.reset (for per-run environment values).
    With `store` the episode is in the replay buffer's layout (`step_inputs`, `replay.expand`).
    """
    k_reset, k_steps = jax.random.split(key)
    obs, state = (reset or env.reset)(k_reset)

    def step(carry, key):
        obs, state, hidden, finished = carry
        k_act, k_env = jax.random.split(key)
        avail = env.avail_actions(state)
        hidden, q, _ = agents.step(agent_params, hidden, obs)
        actions = epsilon_greedy(k_act, q, avail, eps)
        next_obs, next_state, reward, done, _ = env.step(k_env, state, actions)
        active = ~finished
        record = (*step_inputs(env, obs, state, avail, store), actions, jnp.where(active, reward, 0.0),
                  done & active, active, q)
        return (next_obs, next_state, hidden, finished | done), record

    keys = jax.random.split(k_steps, env.episode_limit)
    start = (obs, state, agents.initial_carry(), jnp.bool_(False))
    (last_obs, last_state, _, _), rec = jax.lax.scan(step, start, keys)
    obs_seq, state_seq, avail_seq, actions, reward, terminated, mask, q_seq = rec
    last = step_inputs(env, last_obs, last_state, env.avail_actions(last_state), store)
    obs_seq, state_seq, avail_seq = jax.tree.map(lambda seq, end: jnp.concatenate([seq, end[None]], axis=0),
                                                 (obs_seq, state_seq, avail_seq), last)
    episode = Batch(
        obs=obs_seq,
        state=state_seq,
        avail=avail_seq,
        actions=actions.astype(jnp.int32),
        reward=reward.astype(jnp.float32),
        terminated=terminated,
        mask=mask,
    )
    return episode, reward.sum(), q_seq


def play(env: Env, agents: Agents, agent_params, key, reset=None):
    """One greedy episode, keeping every environment state: (states with a leading time axis
    of length T + 1, rewards[T]). For rendering; training never needs the states."""
    k_reset, k_steps = jax.random.split(key)
    obs, state = (reset or env.reset)(k_reset)

    def step(carry, key):
        obs, state, hidden = carry
        hidden, q, _ = agents.step(agent_params, hidden, obs)
        actions = epsilon_greedy(key, q, env.avail_actions(state), 0.0)
        next_obs, next_state, reward, _, _ = env.step(key, state, actions)
        return (next_obs, next_state, hidden), (next_state, reward)

    keys = jax.random.split(k_steps, env.episode_limit)
    _, (states, rewards) = jax.lax.scan(step, (obs, state, agents.initial_carry()), keys)
    states = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), state, states)
    return states, rewards
