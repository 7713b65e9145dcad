"""Networks shared by all algorithms: the per-agent Q network and the hidden-feature encoders.

The agent network maps one agent's input to Q_i(tau_i, .) over all actions and also returns
its trunk features (the second hidden layer). QTRAN builds the paper's hidden features from
that trunk (Figure 1 of the paper; the released code does the same):

    h_Q,i(tau_i, u_i) = HiddenQ([trunk_i, onehot(u_i)])     action-dependent
    h_V,i(tau_i)      = HiddenV(trunk_i)                    action-independent

so the joint networks share the agents' lower layers and TD gradients reach them.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """Dense layers with ReLU between them and a linear last layer."""

    features: Sequence[int]

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.features):
            x = nn.Dense(width)(x)
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


class AgentMLP(nn.Module):
    """obs -> 2 ReLU layers (the trunk) -> 1 ReLU layer -> Q values (released code's shape)."""

    n_actions: int
    hidden: int = 64

    @nn.compact
    def __call__(self, x):
        trunk = nn.relu(nn.Dense(self.hidden)(nn.relu(nn.Dense(self.hidden)(x))))
        q = nn.Dense(self.n_actions)(nn.relu(nn.Dense(self.hidden)(trunk)))
        return q, trunk


class HiddenQ(nn.Module):
    """h_Q,i(tau_i, u_i): trunk features and a one-hot action -> hidden ReLU -> linear."""

    n_actions: int
    hidden: int = 64

    @nn.compact
    def __call__(self, trunk, actions):
        x = jnp.concatenate([trunk, jax.nn.one_hot(actions, self.n_actions)], axis=-1)
        return MLP((self.hidden, self.hidden))(x)


class HiddenV(nn.Module):
    """h_V,i(tau_i): trunk features -> hidden ReLU -> linear."""

    hidden: int = 64

    @nn.compact
    def __call__(self, trunk):
        return MLP((self.hidden, self.hidden))(trunk)


class Agents:
    """All N agents' Q networks, with shared or per-agent parameters.

    `apply(params, obs[..., N, obs_dim]) -> (q[..., N, U], trunk[..., N, H])`. Each agent's
    output depends on its own observation row only (decentralised execution). With shared
    parameters a one-hot agent id is appended so agents can still differ.
    """

    def __init__(self, n_agents: int, n_actions: int, obs_dim: int, hidden: int, shared: bool):
        self.n_agents, self.n_actions, self.obs_dim = n_agents, n_actions, obs_dim
        self.shared = shared
        self.net = AgentMLP(n_actions=n_actions, hidden=hidden)

    def _inputs(self, obs):
        if not self.shared:
            return obs
        ids = jnp.broadcast_to(jnp.eye(self.n_agents, dtype=obs.dtype), obs.shape[:-1] + (self.n_agents,))
        return jnp.concatenate([obs, ids], axis=-1)

    def init(self, key):
        dummy = self._inputs(jnp.zeros((self.n_agents, self.obs_dim), jnp.float32))
        if self.shared:
            return self.net.init(key, dummy[0])
        keys = jax.random.split(key, self.n_agents)
        return jax.vmap(self.net.init)(keys, dummy)

    def apply(self, params, obs):
        x = self._inputs(obs)
        if self.shared:
            return self.net.apply(params, x)
        # Per-agent parameters: map agent k's parameters over agent k's inputs.
        x = jnp.moveaxis(x, -2, 0)
        q, trunk = jax.vmap(self.net.apply)(params, x)
        return jnp.moveaxis(q, 0, -2), jnp.moveaxis(trunk, 0, -2)
