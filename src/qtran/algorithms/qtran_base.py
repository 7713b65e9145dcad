"""QTRAN-base (Son et al., 2019, Sections 3.2-3.3).

Networks beyond the agents: a joint action-value network Q_jt = f_r(pool_i h_Q,i(tau_i, u_i))
and a state-value network V_jt = f_v(pool_i h_V,i(tau_i)). Loss (6):

    L = L_td + lambda_opt * L_opt + lambda_nopt * L_nopt
    L_td   = (Q_jt(tau, u) - y)^2
    L_opt  = (Q'_jt(tau, u_bar) - Q_hat(tau, u_bar) + V)^2
    L_nopt = min(Q'_jt(tau, u) - Q_hat(tau, u) + V, 0)^2

with Q'_jt = sum_i Q_i, u_bar the agents' greedy actions and Q_hat = stop_gradient(Q_jt):
the factorisation losses move the Q_i and V towards Q_jt, never Q_jt towards them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qtran.algorithms.base import (
    Algorithm, chosen, greedy, masked_mean, masked_q, next_step, one_input, online_values, per_joint_action,
    pick_rows, pool, single_state_cuts, td_target,
)
import flax.linen as nn

from qtran.networks import JOINT_INITS, MLP, HiddenQ, HiddenV, hidden_q_at, hidden_q_table, hidden_q_trunk_part

# f_r, the layers from the pooled h_Q to Q_jt (`qtran.f_r`): "relu", one ReLU layer then linear
# (the paper's figures draw one hidden layer), or "elu2", two ELU layers then linear (the
# released predator-prey code, generate_PQMIX7 in agents/pos_cac_fo/dq_network.py).
F_R_FORMS = ("relu", "elu2")


def joint_head(cfg) -> MLP:
    """QTRAN-base's f_r as `qtran.f_r` and `qtran.init` describe it."""
    q, init = cfg.qtran, JOINT_INITS[cfg.qtran.init]
    if q.f_r == "elu2":
        return MLP((q.hidden, q.hidden, 1), init, activation=nn.elu)
    return MLP((q.hidden, 1), init)


class QtranNets:
    """The encoders and value heads both QTRAN variants share; parameters are a plain dict."""

    def __init__(self, cfg, env):
        self.cfg, self.n_agents, self.n_actions = cfg.qtran, env.n_agents, env.n_actions
        self.split_hq = bool(cfg.compute_cuts)
        self.kernel_init = JOINT_INITS[cfg.qtran.init]
        self.hq = HiddenQ(env.n_actions, cfg.qtran.hidden, self.kernel_init)
        self.hv = HiddenV(cfg.qtran.hidden, self.kernel_init)
        self.f_v = MLP((cfg.qtran.hidden, 1), self.kernel_init)

    def init(self, key, agent_hidden: int) -> dict:
        k_hq, k_hv, k_fv = jax.random.split(key, 3)
        trunk = jnp.zeros((agent_hidden,))
        params = {"hq": self.hq.init(k_hq, trunk, jnp.zeros((), jnp.int32))}
        if self.cfg.v_net:
            params["hv"] = self.hv.init(k_hv, trunk)
            params["f_v"] = self.f_v.init(k_fv, jnp.zeros((self.cfg.hidden,)))
        return params

    def h_q(self, params, trunk, actions):
        return self.h_q_of(params, trunk)(actions)

    def h_q_of(self, params, trunk):
        """actions[..., N] -> h_Q(trunk, actions)[..., N, F] for one trunk[..., N, H].

        With `compute_cuts` the trunk's part of the first layer is computed here, once, and
        each call adds only the actions' rows (`hidden_q_trunk_part`); without, every call
        runs the module on [trunk, onehot(u)].
        """
        if not self.split_hq:
            return lambda actions: self.hq.apply(params["hq"], trunk, actions)
        part = hidden_q_trunk_part(params["hq"], trunk)
        return lambda actions: hidden_q_at(params["hq"], part, actions, self.n_actions)

    def h_q_table(self, params, trunk):
        """h_Q for every agent and action: [..., N, U, F] from trunk[..., N, H]."""
        return hidden_q_table(params["hq"], hidden_q_trunk_part(params["hq"], trunk), self.n_actions)

    def h_v(self, params, trunk):
        return self.hv.apply(params["hv"], trunk)

    def state_value(self, params, trunk):
        """V_jt from trunk[..., N, H]; exactly 0 when the V network is switched off."""
        if not self.cfg.v_net:
            return jnp.zeros(trunk.shape[:-2])
        return self.value_from_hv(params, self.h_v(params, trunk))

    def value_from_hv(self, params, h_v):
        """V_jt from h_V[..., N, F] already computed; exactly 0 when V is switched off."""
        if not self.cfg.v_net:
            return jnp.zeros(h_v.shape[:-2])
        return self.f_v.apply(params["f_v"], pool(h_v, self.cfg.pooling))[..., 0]


def factorisation_losses(q, actions, avail, q_jt_taken, q_jt_greedy, v):
    """L_opt and L_nopt per sample, from the agents' q[..., N, U] and a fixed Q_jt."""
    q_prime_taken = chosen(q, actions).sum(-1)
    q_prime_greedy = masked_q(q, avail).max(-1).sum(-1)
    l_opt = (q_prime_greedy - jax.lax.stop_gradient(q_jt_greedy) + v) ** 2
    l_nopt = jnp.minimum(q_prime_taken - jax.lax.stop_gradient(q_jt_taken) + v, 0.0) ** 2
    return l_opt, l_nopt


def make(cfg, env, agents) -> Algorithm:
    nets = QtranNets(cfg, env)
    f_r = joint_head(cfg)
    lam_opt, lam_nopt = cfg.qtran.lambda_opt, cfg.qtran.lambda_nopt

    def init_mixer(key):
        k_nets, k_fr = jax.random.split(key)
        params = nets.init(k_nets, cfg.agent.hidden)
        params["f_r"] = f_r.init(k_fr, jnp.zeros((cfg.qtran.hidden,)))
        return params

    def joint_from_hq(params, h_q):
        """Q_jt = f_r(pool_i h_Q,i) from h_Q[..., N, F]."""
        return f_r.apply(params["f_r"], pool(h_q, cfg.qtran.pooling))[..., 0]

    def q_jt(params, trunk, actions):
        """Q_jt(tau, u) from trunk[..., N, H] and actions[..., N]."""
        return joint_from_hq(params, nets.h_q(params, trunk, actions))

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        if cfg.qtran.td_target == "paper":  # Q_jt^-(tau', u_bar')
            return q_jt(target_params["mixer"], nxt.target_trunk, nxt.actions)
        return masked_q(nxt.target_q, nxt.avail).max(-1).sum(-1)  # code: sum_i max Q_i^-(tau')

    def total(batch, q, avail, q_taken, q_greedy, v, y):
        """Loss (6) from the agents' q[B, T, N, U] and Q_jt at the taken and greedy actions."""
        l_opt, l_nopt = factorisation_losses(q, batch.actions, avail, q_taken, q_greedy, v)
        td = masked_mean((q_taken - y) ** 2, batch.mask)
        opt, nopt = masked_mean(l_opt, batch.mask), masked_mean(l_nopt, batch.mask)
        return td + lam_opt * opt + lam_nopt * nopt, {"loss_td": td, "loss_opt": opt, "loss_nopt": nopt}

    def loss(params, target_params, batch):
        mixer = params["mixer"]
        online = online_values(agents, params, batch, cfg.double_q)
        q, trunk = online.q, online.trunk
        avail = batch.avail[:, :-1]
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        h_q = nets.h_q_of(mixer, trunk)
        q_taken = joint_from_hq(mixer, h_q(batch.actions))
        q_greedy = joint_from_hq(mixer, h_q(greedy(q, avail)))
        return total(batch, q, avail, q_taken, q_greedy, nets.state_value(mixer, trunk), y)

    def loss_one_input(params, target_params, batch):
        """`loss` for a single-state one-step game (`single_state_cuts`): the agents, h_Q per
        (agent, action) and V once; f_r per sample on gathered rows (or once per joint action,
        `per_joint_action`), and once at u_bar."""
        mixer = params["mixer"]
        q1, trunk1, q = one_input(agents, params, batch)
        table = nets.h_q_table(mixer, trunk1)  # [N, U, F]
        u_bar = greedy(q1, batch.avail[0, 0])
        q_taken = per_joint_action(lambda u: joint_from_hq(mixer, pick_rows(table, u)), batch.actions,
                                   env.n_actions)  # [B, T]
        q_greedy = joint_from_hq(mixer, pick_rows(table, u_bar))  # the same for every sample
        y = td_target(batch, cfg.gamma, False, None)
        return total(batch, q, batch.avail[:, :-1], q_taken, q_greedy, nets.state_value(mixer, trunk1), y)

    def joint_q(params, obs, state, joint_actions):
        _, trunk = agents.apply(params["agent"], obs)
        trunk = jnp.broadcast_to(trunk, joint_actions.shape + trunk.shape[-1:])
        return q_jt(params["mixer"], trunk, joint_actions)

    def state_value(params, obs, state):
        _, trunk = agents.apply(params["agent"], obs)
        return nets.state_value(params["mixer"], trunk)

    chosen_loss = loss_one_input if single_state_cuts(cfg, env) else loss
    return Algorithm("qtran-base", agents, init_mixer, chosen_loss, joint_q, state_value)
