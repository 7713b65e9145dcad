"""QPLEX (Wang et al., ICLR 2021, "Duplex Dueling Multi-Agent Q-Learning", Section 3).

Each agent's Q_i is read in dueling form, V_i = max_u Q_i (over its available actions) and
A_i = Q_i - V_i <= 0. The transformation (Section 3, the duplex dueling architecture)
conditions both on the global state s:

    V_i(s) = w_i(s) V_i + b_i(s),   A_i(s, u_i) = w_i(s) A_i(u_i),   w_i(s) > 0,

and the dueling mixing adds them up with positive importance weights:

    Q_tot(s, u) = sum_i V_i(s) + sum_i lambda_i(s, u) A_i(s, u_i),   lambda_i(s, u) > 0.

Every A_i(s, u_i) is <= 0 and is 0 exactly at agent i's greedy action, so Q_tot is largest at
the agents' greedy joint action whatever the networks' weights: IGM holds by construction
(as the paper shows), and nothing restricts which greedy action can be represented (the
paper proves its function class IGM-complete).

lambda_i: the paper's multi-head attention (same section),
lambda_i(s, u) = sum_k v_k(s) phi_ik(s) lambda_ik(s, u), with a positive key
v_k = |f_k(s)| + eps per head and sigmoid gates phi_ik from the state and lambda_ik from the
state and the one-hot joint action. We keep it rather than a simpler positive network because
it is what the paper evaluates, it is cheap at these sizes, and a single-state game computes
the state parts once per update anyway. Each of the
three parts is a 2-layer network (state or state + joint action -> hidden ReLU -> out).

Trained by ordinary TD on Q_tot: y = r + gamma Q_tot^-(s', u'), u' greedy on the agents (the
online agents with double_q), where the target's A_i(u'_i) is 0 when u' is its own greedy
choice. No stop-gradient on A_i inside the mixing (the authors' code has an option for one;
the paper's equations have none).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from qtran.algorithms.base import (
    Algorithm, chosen, masked_mean, masked_q, next_step, one_input, online_values, per_joint_action,
    pick_rows, single_state_cuts, td_target,
)
from qtran.networks import MLP

# Keeps w_i and the attention keys strictly positive when a network output is exactly 0
# (the authors' implementation adds the same kind of floor).
POSITIVE_FLOOR = 1e-10


class QplexMixer(nn.Module):
    n_agents: int
    n_actions: int
    hidden: int = 64  # QPLEX's released settings: adv_hypernet_embed 64, 2-layer networks
    heads: int = 4  # attention heads K (the authors' configuration, num_kernel)
    stop_gradient: bool = False  # the authors' code's gradient path (`mix`)

    def setup(self):
        n = self.n_agents
        self.weight_net = MLP((self.hidden, n))  # w_i(s) before |.|
        self.bias_net = MLP((self.hidden, n))  # b_i(s)
        self.key_net = MLP((self.hidden, self.heads))  # v_k(s) before |.|
        self.agent_gate_net = MLP((self.hidden, self.heads * n))  # phi_ik(s) before the sigmoid
        self.action_gate_net = MLP((self.hidden, self.heads * n))  # lambda_ik(s, u) before the sigmoid

    def transform(self, state):
        """The state-only parts: w[..., N] > 0, b[..., N], keys[..., K] > 0, gates[..., K, N]."""
        w = jnp.abs(self.weight_net(state)) + POSITIVE_FLOOR
        keys = jnp.abs(self.key_net(state)) + POSITIVE_FLOOR
        gates = nn.sigmoid(self.agent_gate_net(state)).reshape(state.shape[:-1] + (self.heads, self.n_agents))
        return w, self.bias_net(state), keys, gates

    def action_gates(self, state, actions):
        """lambda_ik(s, u)[..., K, N] from state[..., S] and the joint action actions[..., N]."""
        onehot = jax.nn.one_hot(actions, self.n_actions).reshape(actions.shape[:-1] + (-1,))
        state = jnp.broadcast_to(state, onehot.shape[:-1] + state.shape[-1:])
        out = self.action_gate_net(jnp.concatenate([state, onehot], axis=-1))
        return nn.sigmoid(out).reshape(actions.shape[:-1] + (self.heads, self.n_agents))

    def __call__(self, values, advantages, state, actions):
        """Q_tot[...] from V_i (values[..., N]), A_i(u_i) (advantages[..., N]), the state and u."""
        return mix(values, advantages, self.transform(state), self.action_gates(state, actions), self.stop_gradient)


def importance(keys, gates, action_gates):
    """lambda_i = sum_k v_k phi_ik lambda_ik > 0: [..., N] (the paper's attention)."""
    return jnp.sum(keys[..., :, None] * gates * action_gates, axis=-2)


def mix(values, advantages, transformed, action_gates, stop_gradient: bool = False):
    """The transformation and the dueling mixing, sum_i (w_i V_i + b_i) + sum_i lambda_i w_i A_i,
    from the agents' V_i and A_i(u_i) [..., N], `transform`'s outputs and `action_gates`'
    (leading axes broadcast).

    With stop_gradient, the authors' code's form of the same value: sum_i (w_i Q_i(u_i) + b_i)
    + sum_i (lambda_i - 1) sg(w_i A_i), where Q_i(u_i) = V_i + A_i. The agents, w_i and b_i then
    learn through the first sum alone, lambda_i through the second alone."""
    w, b, keys, gates = transformed
    lam = importance(keys, gates, action_gates)
    if stop_gradient:
        return (jnp.sum(w * (values + advantages) + b, axis=-1)
                + jnp.sum((lam - 1.0) * jax.lax.stop_gradient(w * advantages), axis=-1))
    return jnp.sum(w * values + b, axis=-1) + jnp.sum(lam * w * advantages, axis=-1)


def dueling(q, avail, actions):
    """V_i = max over available actions and A_i(u_i) = Q_i(u_i) - V_i: two [..., N] arrays."""
    values = masked_q(q, avail).max(-1)
    return values, chosen(q, actions) - values


def make(cfg, env, agents) -> Algorithm:
    mixer = QplexMixer(env.n_agents, env.n_actions, cfg.qplex.hidden, cfg.qplex.heads, cfg.qplex.stop_gradient)

    def init_mixer(key):
        return mixer.init(key, jnp.zeros((env.n_agents,)), jnp.zeros((env.n_agents,)),
                          jnp.zeros((env.state_dim,)), jnp.zeros((env.n_agents,), jnp.int32))

    def q_tot(params, q, avail, actions, state):
        return mixer.apply(params, *dueling(q, avail, actions), state, actions)

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        return q_tot(target_params["mixer"], nxt.target_q, nxt.avail, nxt.actions, batch.state[:, 1:])

    def loss(params, target_params, batch):
        online = online_values(agents, params, batch, cfg.double_q)
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        q_taken = q_tot(params["mixer"], online.q, batch.avail[:, :-1], batch.actions, batch.state[:, :-1])
        td = masked_mean((q_taken - y) ** 2, batch.mask)
        return td, {"loss_td": td}

    def loss_one_input(params, target_params, batch):
        """`loss` for a single-state one-step game (`single_state_cuts`): the agents and the
        state parts of the mixer once; the joint-action gates once per joint action or per
        sample (`per_joint_action`)."""
        q1, _, _ = one_input(agents, params, batch)
        state1 = batch.state[0, 0]
        values = masked_q(q1, batch.avail[0, 0]).max(-1)  # [N]
        advantages = pick_rows(q1 - values[:, None], batch.actions)  # [B, T, N]
        transformed = mixer.apply(params["mixer"], state1, method=QplexMixer.transform)
        gates = per_joint_action(lambda u: mixer.apply(params["mixer"], state1, u, method=QplexMixer.action_gates),
                                 batch.actions, env.n_actions)  # [B, T, K, N]
        y = td_target(batch, cfg.gamma, False, None)
        td = masked_mean((mix(values, advantages, transformed, gates, cfg.qplex.stop_gradient) - y) ** 2, batch.mask)
        return td, {"loss_td": td}

    def joint_q(params, obs, state, joint_actions):
        """Q_tot at joint_actions[K, N]; V_i is the max over every action (no availability
        is known here; every action is available in the single-state games tables cover)."""
        q, _ = agents.apply(params["agent"], obs)
        avail = jnp.ones(q.shape, bool)
        return q_tot(params["mixer"], jnp.broadcast_to(q, joint_actions.shape + q.shape[-1:]), avail, joint_actions,
                     state)

    chosen_loss = loss_one_input if single_state_cuts(cfg, env) else loss
    return Algorithm("qplex", agents, init_mixer, chosen_loss, joint_q)
