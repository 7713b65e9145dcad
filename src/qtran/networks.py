"""Networks shared by all algorithms: the per-agent Q network and the hidden-feature encoders.

The agent network maps one agent's input to Q_i(tau_i, .) over all actions and also returns
its trunk features (the second hidden layer). QTRAN builds the paper's hidden features from
that trunk (Figure 1 of the paper; the released code does the same):

    h_Q,i(tau_i, u_i) = HiddenQ([trunk_i, onehot(u_i)])     action-dependent
    h_V,i(tau_i)      = HiddenV(trunk_i)                    action-independent

so the joint networks share the agents' lower layers and TD gradients reach them.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qtran.gru import gru_sequence, gru_step


class MLP(nn.Module):
    """Dense layers with an activation (ReLU unless told) between them and a linear last layer."""

    features: Sequence[int]
    kernel_init: Any = nn.initializers.lecun_normal()  # Flax's default
    dot_general: Any = None  # the layers' product (None: Flax's; qtran.matmul's for wide layers)
    activation: Any = nn.relu

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.features):
            x = nn.Dense(width, kernel_init=self.kernel_init, dot_general=self.dot_general)(x)
            if i < len(self.features) - 1:
                x = self.activation(x)
        return x


# Agent weight initialisations (`agent.init`): Flax's default (LeCun normal kernels), the
# released code's N(0, 0.1) kernels (Sonkyunghwan/QTRAN) or orthogonal ones with gain 1 (JaxMARL's
# Q-learning baselines); biases start at zero in all.
AGENT_INITS = {"default": nn.initializers.lecun_normal(), "code": nn.initializers.normal(stddev=0.1),
               "orthogonal": nn.initializers.orthogonal(1.0)}
# Kernel initialisations of the joint networks (`qtran.init`, `qmix.init`): Flax's default or
# the released code's N(0, 0.1) (every dense layer of its dq_network.py); biases start at zero.
JOINT_INITS = {"default": nn.initializers.lecun_normal(), "code": nn.initializers.normal(stddev=0.1)}
# Q heads (`agent.head`): the layers from the trunk to the Q values.
AGENT_HEADS = ("mlp", "linear")


class AgentMLP(nn.Module):
    """obs -> 2 ReLU layers (the trunk) -> 1 ReLU layer -> Q values (released code's shape);
    with head="linear" the trunk maps straight to the Q values."""

    n_actions: int
    hidden: int = 64
    weights: str = "default"  # a key of AGENT_INITS ("init" would shadow Module.init)
    head: str = "mlp"  # one of AGENT_HEADS

    @nn.compact
    def __call__(self, x):
        dense = lambda width: nn.Dense(width, kernel_init=AGENT_INITS[self.weights])  # noqa: E731
        trunk = nn.relu(dense(self.hidden)(nn.relu(dense(self.hidden)(x))))
        if self.head == "linear":
            return dense(self.n_actions)(trunk), trunk
        q = dense(self.n_actions)(nn.relu(dense(self.hidden)(trunk)))
        return q, trunk


class AgentGRU(nn.Module):
    """obs -> ReLU layer -> GRU cell (its output is the trunk) -> ReLU layer -> Q values; with
    head="linear" (PyMARL's and JaxMARL's shape) the GRU output maps straight to Q values.

    The recurrent agent for partially observable tasks: the GRU state summarises tau_i. Its
    three stages are methods, so `Agents.unroll` runs the input and output layers once over
    whole episodes (bigger, fewer matrix products) and the cell's maths along the episodes
    with `qtran.gru.gru_sequence` on this cell's parameters (acting: `gru_step`). `__call__`
    runs the Flax cell itself: it creates the parameters and is the reference in tests.
    Submodule names keep the parameter tree of the earlier single-method version.
    """

    n_actions: int
    hidden: int = 64
    weights: str = "default"  # the Dense layers' kernels (the GRU cell keeps its own init)
    head_kind: str = "mlp"  # one of AGENT_HEADS ("head" is the method)

    def setup(self):
        dense = lambda width: nn.Dense(width, kernel_init=AGENT_INITS[self.weights])  # noqa: E731
        self.Dense_0 = dense(self.hidden)  # input layer
        self.GRUCell_0 = nn.GRUCell(features=self.hidden)
        if self.head_kind == "mlp":
            self.Dense_2 = dense(self.hidden)  # hidden layer of the Q head
        self.Dense_1 = dense(self.n_actions)  # Q values

    def embed(self, x):
        return nn.relu(self.Dense_0(x))

    def recur(self, carry, embedded):
        """One GRU step; its output is the new carry, which is also the trunk."""
        return self.GRUCell_0(carry, embedded)[0]

    def head(self, trunk):
        if self.head_kind == "linear":
            return self.Dense_1(trunk)
        return self.Dense_1(nn.relu(self.Dense_2(trunk)))

    def __call__(self, carry, x):
        carry = self.recur(carry, self.embed(x))
        return carry, (self.head(carry), carry)


class HiddenQ(nn.Module):
    """h_Q,i(tau_i, u_i): trunk features and a one-hot action -> hidden ReLU -> linear."""

    n_actions: int
    hidden: int = 64
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, trunk, actions):
        x = jnp.concatenate([trunk, jax.nn.one_hot(actions, self.n_actions)], axis=-1)
        return MLP((self.hidden, self.hidden), self.kernel_init)(x)


def _hq_layers(params):
    """HiddenQ's two Dense layers as (first, second) parameter dicts."""
    mlp = params["params"]["MLP_0"]
    return mlp["Dense_0"], mlp["Dense_1"]


def hidden_q_trunk_part(params, trunk):
    """The action-independent part of h_Q's first layer: trunk @ W_t + b, [..., hidden].

    `[trunk, onehot(u)] @ W` equals `trunk @ W_t + W_a[u]` with W = [W_t; W_a], so this part is
    computed once per trunk row and reused for every action a loss asks about (taken, greedy,
    next greedy, or all of them). Same parameters as `HiddenQ`.
    """
    first, _ = _hq_layers(params)
    return trunk @ first["kernel"][: trunk.shape[-1]] + first["bias"]


def hidden_q_at(params, trunk_part, actions, n_actions: int):
    """h_Q at integer actions[...] from trunk_part[..., hidden] (leading axes broadcast)."""
    first, second = _hq_layers(params)
    action_rows = first["kernel"][-n_actions:][actions]  # W_a[u], one row per action taken
    return nn.relu(trunk_part + action_rows) @ second["kernel"] + second["bias"]


def hidden_q_table(params, trunk_part, n_actions: int):
    """h_Q for every action: [..., U, hidden] from trunk_part[..., hidden]."""
    first, second = _hq_layers(params)
    action_rows = first["kernel"][-n_actions:]  # [U, hidden]
    return nn.relu(trunk_part[..., None, :] + action_rows) @ second["kernel"] + second["bias"]


class HiddenV(nn.Module):
    """h_V,i(tau_i): trunk features -> hidden ReLU -> linear."""

    hidden: int = 64
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, trunk):
        return MLP((self.hidden, self.hidden), self.kernel_init)(trunk)


class Agents:
    """All N agents' Q networks, with shared or per-agent parameters, feed-forward or recurrent.

    Each agent's output depends on its own observations only (decentralised execution). With
    shared parameters a one-hot agent id is appended so agents can still differ, unless
    `onehot_id` is false (the released predator-prey code: its observation already carries
    the scalar id i / N).

    - `step(params, carry, obs[..., N, D]) -> (carry, q[..., N, U], trunk[..., N, H])`: one
      acting step; `initial_carry(batch_shape)` is the state at an episode's first step.
    - `unroll(params, obs[B, T, N, D])`: q and trunk along whole episodes, each started from
      the initial carry (replay stores whole episodes from their first step).
    - `current` / `following`: the unrolled outputs at t = 0..T-1 (tau) and t = 1..T (tau').
      A feed-forward agent evaluates only the steps it needs.
    - `apply(params, obs)`: outputs at an episode's first step (one-step and single-state games).
    """

    def __init__(self, n_agents: int, n_actions: int, obs_dim: int, hidden: int, shared: bool,
                 recurrent: bool = False, init: str = "default", head: str = "mlp", onehot_id: bool = True):
        self.n_agents, self.n_actions, self.obs_dim, self.hidden = n_agents, n_actions, obs_dim, hidden
        self.shared, self.recurrent, self.onehot_id = shared, recurrent, onehot_id
        self.net = (AgentGRU if recurrent else AgentMLP)(n_actions, hidden, init, head)

    def _inputs(self, obs):
        if not (self.shared and self.onehot_id):
            return obs
        ids = jnp.broadcast_to(jnp.eye(self.n_agents, dtype=obs.dtype), obs.shape[:-1] + (self.n_agents,))
        return jnp.concatenate([obs, ids], axis=-1)

    def initial_carry(self, batch_shape=()):
        width = self.hidden if self.recurrent else 0
        return jnp.zeros(tuple(batch_shape) + (self.n_agents, width), jnp.float32)

    def _net(self, params, carry, x):
        """The network on inputs x[..., D'] (one agent's row each), returning (carry, q, trunk)."""
        if self.recurrent:  # the cell by `gru_step`, the same maths as the unroll's
            method = lambda name, *a: self.net.apply(params, *a, method=getattr(AgentGRU, name))  # noqa: E731
            carry = gru_step(params["params"]["GRUCell_0"], carry, method("embed", x))
            return carry, method("head", carry), carry
        q, trunk = self.net.apply(params, x)
        return carry, q, trunk

    def _per_agent(self, fn, params, *arrays):
        """fn(params, *arrays) on arrays[..., N, X]: the shared parameters on every row, or
        agent k's parameters on agent k's rows."""
        if self.shared:
            return fn(params, *arrays)
        out = jax.vmap(fn)(params, *(jnp.moveaxis(a, -2, 0) for a in arrays))
        return jax.tree.map(lambda a: jnp.moveaxis(a, 0, -2), out)

    def init(self, key):
        x = self._inputs(jnp.zeros((self.n_agents, self.obs_dim), jnp.float32))
        carry = self.initial_carry()
        args = (carry, x) if self.recurrent else (x,)
        if self.shared:
            return self.net.init(key, *(a[0] for a in args))
        keys = jax.random.split(key, self.n_agents)
        return jax.vmap(self.net.init)(keys, *args)

    def step(self, params, carry, obs):
        return self._per_agent(self._net, params, carry, self._inputs(obs))

    def apply(self, params, obs):
        _, q, trunk = self.step(params, self.initial_carry(obs.shape[:-2]), obs)
        return q, trunk

    def unroll(self, params, obs_seq):
        if not self.recurrent:
            return self.apply(params, obs_seq)
        method = lambda name: lambda p, *a: self.net.apply(p, *a, method=getattr(AgentGRU, name))  # noqa: E731
        embedded = self._per_agent(method("embed"), params, self._inputs(obs_seq))  # [B, T, N, H]
        trunk = self._per_agent(self._gru_over_time, params, embedded)
        return self._per_agent(method("head"), params, trunk), trunk

    def _gru_over_time(self, params, embedded):
        """The GRU cell along axis 1 of embedded[B, T, ..., H] from the initial (zero) carry,
        by `gru_sequence`: the cell's maths with a hand-written backward pass (faster)."""
        h0 = jnp.zeros(embedded.shape[:1] + embedded.shape[2:-1] + (self.hidden,), embedded.dtype)
        hs = gru_sequence(params["params"]["GRUCell_0"], jnp.moveaxis(embedded, 1, 0), h0)
        return jnp.moveaxis(hs, 0, 1)

    def current(self, params, obs_seq):
        if not self.recurrent:
            return self.apply(params, obs_seq[:, :-1])
        q, trunk = self.unroll(params, obs_seq)
        return q[:, :-1], trunk[:, :-1]

    def following(self, params, obs_seq):
        if not self.recurrent:
            return self.apply(params, obs_seq[:, 1:])
        q, trunk = self.unroll(params, obs_seq)
        return q[:, 1:], trunk[:, 1:]
