"""What an algorithm is, and the pieces every algorithm's loss is made of.

An algorithm differs from the others only in how it builds a joint value from the agents'
Q_i and which loss it minimises. Everything else (acting, replay, targets, evaluation) lives
in the trainer.

Batches hold whole episodes (time axis T = episode_limit, padded, with a mask):
    obs[B, T+1, N, D]  state[B, T+1, S]  avail[B, T+1, N, U]
    actions[B, T, N]   reward[B, T]      terminated[B, T]    mask[B, T]
Index t and t+1 along the time axis are (tau, tau').
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from qtran.networks import Agents


class Batch(NamedTuple):
    obs: jax.Array
    state: jax.Array
    avail: jax.Array
    actions: jax.Array
    reward: jax.Array
    terminated: jax.Array
    mask: jax.Array


class Algorithm(NamedTuple):
    name: str
    agents: Agents
    # key -> parameters of the networks beyond the agents (mixer, joint and V networks).
    init_mixer: Callable[[jax.Array], Any]
    # (params, target_params, batch) -> (scalar loss, dict of scalar metrics);
    # params = {"agent": ..., "mixer": ...}.
    loss: Callable[[Any, Any, Batch], tuple[jax.Array, dict]]
    # (params, obs[N, D], state[S], joint_actions[K, N]) -> Q_jt[K]; None when the
    # algorithm has no joint value (IQL).
    joint_q: Optional[Callable] = None
    # (params, obs[N, D], state[S]) -> V_jt; None when the algorithm has no V.
    state_value: Optional[Callable] = None
    # Algorithm-specific functions worth reaching from outside (tests, figures).
    extras: dict = {}


def chosen(q: jax.Array, actions: jax.Array) -> jax.Array:
    """q[..., U] at integer actions[...] (leading axes broadcast)."""
    shape = jnp.broadcast_shapes(q.shape[:-1], actions.shape)
    q = jnp.broadcast_to(q, shape + q.shape[-1:])
    return jnp.take_along_axis(q, jnp.broadcast_to(actions, shape)[..., None], axis=-1)[..., 0]


def masked_q(q: jax.Array, avail: jax.Array) -> jax.Array:
    return jnp.where(avail, q, -jnp.inf)


def greedy(q: jax.Array, avail: jax.Array) -> jax.Array:
    """Each agent's argmax over its available actions (ties: lowest index)."""
    return jnp.argmax(masked_q(q, avail), axis=-1)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def pool(x: jax.Array, how: str, axis: int = -2) -> jax.Array:
    """Combine per-agent features over the agent axis: the paper sums, the released code averages."""
    return jnp.sum(x, axis) if how == "sum" else jnp.mean(x, axis)


def td_target(batch: Batch, gamma: float, bootstrap: bool, next_value: Callable[[], jax.Array],
              per_agent: bool = False) -> jax.Array:
    """y = r + gamma * (1 - terminated) * next_value(), with no gradient: [B, T] or [B, T, N].

    `bootstrap` is False for one-step games, where every episode ends after its first step:
    then y = r exactly and the target networks are not evaluated at all (half the work).
    `per_agent` gives y a trailing agent axis (one target per agent or per head).
    """
    reward, keep = batch.reward, 1.0 - batch.terminated.astype(jnp.float32)
    if per_agent:
        reward, keep = reward[..., None], keep[..., None]
    if not bootstrap:
        return jax.lax.stop_gradient(reward)
    return jax.lax.stop_gradient(reward + gamma * keep * next_value())


class NextStep(NamedTuple):
    """What every TD target needs about tau': the target network's outputs and u_bar'."""

    target_q: jax.Array  # [B, T, N, U]
    target_trunk: jax.Array  # [B, T, N, H]
    actions: jax.Array  # [B, T, N], greedy over available actions
    avail: jax.Array  # [B, T, N, U]


def next_step(agents: Agents, target_params, batch: Batch, chooser: jax.Array | None = None) -> NextStep:
    """The target agents at tau'; u_bar' greedy on `chooser` (double Q: the online agents' values
    at tau', from `online_values`) or, when it is None, on the target values themselves (DQN)."""
    avail = batch.avail[:, 1:]
    tq, ttrunk = agents.following(target_params["agent"], batch.obs)
    return NextStep(tq, ttrunk, greedy(tq if chooser is None else chooser, avail), avail)


class Online(NamedTuple):
    """The online agents' outputs a loss needs."""

    q: jax.Array  # [B, T, N, U] at tau
    trunk: jax.Array  # [B, T, N, H] at tau
    next_q: jax.Array | None  # [B, T, N, U] at tau' for double Q-learning, else None


def single_state_cuts(cfg, env) -> bool:
    """Whether a loss may compute each distinct input once per update (`compute_cuts`).

    In a single-state one-step game (a matrix game, Gaussian squeeze with a fixed s) every
    sample of a batch has the same observation and state, so the agents, h_V, V_jt and the
    QMIX hypernetworks see one input per update; only what depends on the sampled joint action
    needs one row per sample. Same loss, same gradients (the per-sample copies' gradients are
    summed by the gather's transpose instead of by the batch). A single-state game that
    bootstraps would need its target networks at the same single input too; none exists, so
    such a game takes the per-sample path.
    """
    return bool(cfg.compute_cuts) and env.single_state and env.one_step


def one_input(agents: Agents, params, batch: Batch):
    """The agents at a single-state game's one observation: q[N, U], trunk[N, H], and q
    broadcast to every sample, [B, T, N, U], for the terms that pair it with sampled actions."""
    q, trunk = agents.apply(params["agent"], batch.obs[0, 0])
    return q, trunk, jnp.broadcast_to(q, batch.actions.shape + q.shape[-1:])


def pick_rows(table: jax.Array, actions: jax.Array) -> jax.Array:
    """table[i, u_i] for every agent i: table[N, U, F], actions[..., N] -> [..., N, F]."""
    return table[jnp.arange(table.shape[0]), actions]


def joint_actions(n_agents: int, n_actions: int) -> jax.Array:
    """Every joint action, [U^N, N], in row-major order (`joint_index` inverts it)."""
    return jnp.stack([a.ravel() for a in jnp.indices((n_actions,) * n_agents)], axis=-1)


def joint_index(actions: jax.Array, n_actions: int) -> jax.Array:
    """The row of `joint_actions` that holds each joint action actions[..., N]."""
    return jnp.ravel_multi_index(tuple(jnp.moveaxis(actions, -1, 0)), (n_actions,) * actions.shape[-1], mode="clip")


def gathers_joint_table(actions: jax.Array, n_actions: int) -> bool:
    """Whether the game has fewer joint actions (|U|^N) than the batch has samples, so a
    function of the joint action is cheaper once per joint action than once per sample."""
    return n_actions ** actions.shape[-1] < math.prod(actions.shape[:-1])


def per_joint_action(fn: Callable[[jax.Array], jax.Array], actions: jax.Array, n_actions: int) -> jax.Array:
    """fn(actions[..., N]) -> [..., X] for a single-state game, where it depends on the joint
    action alone: when the game has fewer joint actions (|U|^N) than the batch has samples, fn
    runs once per joint action and each sample gathers its row (Table 1: 9 rows instead of 32);
    otherwise once per sample."""
    if not gathers_joint_table(actions, n_actions):
        return fn(actions)
    return fn(joint_actions(actions.shape[-1], n_actions))[joint_index(actions, n_actions)]


def per_joint_action_and_at(fn: Callable[[jax.Array], jax.Array], actions: jax.Array, extra: jax.Array,
                            n_actions: int) -> tuple[jax.Array, jax.Array]:
    """(`per_joint_action`(fn, actions), fn at one more joint action extra[N]) from one call of
    fn: the extra row is gathered from the joint-action table where there is one, else appended
    to the per-sample rows. A wide network then reads its weights once, not twice. Where the
    caller stops the extra row's gradient, its zero cotangent adds exact zeros to the weights'
    gradients."""
    if gathers_joint_table(actions, n_actions):
        table = fn(joint_actions(actions.shape[-1], n_actions))
        return table[joint_index(actions, n_actions)], table[joint_index(extra, n_actions)]
    lead = actions.shape[:-1]
    rows = fn(jnp.concatenate([actions.reshape((-1, actions.shape[-1])), extra[None]], axis=0))
    return rows[:-1].reshape(lead + rows.shape[1:]), rows[-1]


def online_values(agents: Agents, params, batch: Batch, double_q: bool, single_state: bool = False) -> Online:
    """The online agents at tau and, with double_q, at tau' (no gradient flows through the latter:
    it only picks u_bar' inside the stopped TD target). With `single_state` the agents run
    once on the game's one observation and their outputs are broadcast to every sample.

    A recurrent agent's values at tau and tau' come from one unroll of the whole episode;
    evaluating them separately ran the GRU over the episode twice (double Q cost 8-17% more
    per QMIX update on MPE before, NOTES.md). A feed-forward agent evaluates each step it needs.
    """
    if single_state:  # one input (`single_state_cuts`); a one-step game never needs tau'
        _, trunk, q = one_input(agents, params, batch)
        return Online(q, jnp.broadcast_to(trunk, q.shape[:-1] + trunk.shape[-1:]), None)
    if agents.recurrent:
        q, trunk = agents.unroll(params["agent"], batch.obs)
        return Online(q[:, :-1], trunk[:, :-1], q[:, 1:] if double_q else None)
    q, trunk = agents.current(params["agent"], batch.obs)
    return Online(q, trunk, agents.following(params["agent"], batch.obs)[0] if double_q else None)
