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
    Algorithm, chosen, greedy, masked_mean, masked_q, next_step, online_values, pool, td_target,
)
from qtran.networks import MLP, HiddenQ, HiddenV


class QtranNets:
    """The encoders and value heads both QTRAN variants share; parameters are a plain dict."""

    def __init__(self, cfg, env):
        self.cfg, self.n_agents, self.n_actions = cfg.qtran, env.n_agents, env.n_actions
        self.hq = HiddenQ(env.n_actions, cfg.qtran.hidden)
        self.hv = HiddenV(cfg.qtran.hidden)
        self.f_v = MLP((cfg.qtran.hidden, 1))

    def init(self, key, agent_hidden: int) -> dict:
        k_hq, k_hv, k_fv = jax.random.split(key, 3)
        trunk = jnp.zeros((agent_hidden,))
        params = {"hq": self.hq.init(k_hq, trunk, jnp.zeros((), jnp.int32))}
        if self.cfg.v_net:
            params["hv"] = self.hv.init(k_hv, trunk)
            params["f_v"] = self.f_v.init(k_fv, jnp.zeros((self.cfg.hidden,)))
        return params

    def h_q(self, params, trunk, actions):
        return self.hq.apply(params["hq"], trunk, actions)

    def h_v(self, params, trunk):
        return self.hv.apply(params["hv"], trunk)

    def state_value(self, params, trunk):
        """V_jt from trunk[..., N, H]; exactly 0 when the V network is switched off."""
        if not self.cfg.v_net:
            return jnp.zeros(trunk.shape[:-2])
        return self.f_v.apply(params["f_v"], pool(self.h_v(params, trunk), self.cfg.pooling))[..., 0]


def factorisation_losses(q, actions, avail, q_jt_taken, q_jt_greedy, v):
    """L_opt and L_nopt per sample, from the agents' q[..., N, U] and a fixed Q_jt."""
    q_prime_taken = chosen(q, actions).sum(-1)
    q_prime_greedy = masked_q(q, avail).max(-1).sum(-1)
    l_opt = (q_prime_greedy - jax.lax.stop_gradient(q_jt_greedy) + v) ** 2
    l_nopt = jnp.minimum(q_prime_taken - jax.lax.stop_gradient(q_jt_taken) + v, 0.0) ** 2
    return l_opt, l_nopt


def make(cfg, env, agents) -> Algorithm:
    nets = QtranNets(cfg, env)
    f_r = MLP((cfg.qtran.hidden, 1))
    lam_opt, lam_nopt = cfg.qtran.lambda_opt, cfg.qtran.lambda_nopt

    def init_mixer(key):
        k_nets, k_fr = jax.random.split(key)
        params = nets.init(k_nets, cfg.agent.hidden)
        params["f_r"] = f_r.init(k_fr, jnp.zeros((cfg.qtran.hidden,)))
        return params

    def q_jt(params, trunk, actions):
        """Q_jt(tau, u) from trunk[..., N, H] and actions[..., N]."""
        return f_r.apply(params["f_r"], pool(nets.h_q(params, trunk, actions), cfg.qtran.pooling))[..., 0]

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        if cfg.qtran.td_target == "paper":  # Q_jt^-(tau', u_bar')
            return q_jt(target_params["mixer"], nxt.target_trunk, nxt.actions)
        return masked_q(nxt.target_q, nxt.avail).max(-1).sum(-1)  # code: sum_i max Q_i^-(tau')

    def loss(params, target_params, batch):
        mixer = params["mixer"]
        online = online_values(agents, params, batch, cfg.double_q)
        q, trunk = online.q, online.trunk
        avail = batch.avail[:, :-1]
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        q_taken = q_jt(mixer, trunk, batch.actions)
        q_greedy = q_jt(mixer, trunk, greedy(q, avail))
        l_opt, l_nopt = factorisation_losses(q, batch.actions, avail, q_taken, q_greedy,
                                             nets.state_value(mixer, trunk))
        td = masked_mean((q_taken - y) ** 2, batch.mask)
        opt, nopt = masked_mean(l_opt, batch.mask), masked_mean(l_nopt, batch.mask)
        return td + lam_opt * opt + lam_nopt * nopt, {"loss_td": td, "loss_opt": opt, "loss_nopt": nopt}

    def joint_q(params, obs, state, joint_actions):
        _, trunk = agents.apply(params["agent"], obs)
        trunk = jnp.broadcast_to(trunk, joint_actions.shape + trunk.shape[-1:])
        return q_jt(params["mixer"], trunk, joint_actions)

    def state_value(params, obs, state):
        _, trunk = agents.apply(params["agent"], obs)
        return nets.state_value(params["mixer"], trunk)

    return Algorithm("qtran-base", agents, init_mixer, loss, joint_q, state_value)
