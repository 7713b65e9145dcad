"""QTRAN-alt (Son et al., 2019, Section 3.4).

The joint network is counterfactual: head i takes h_V,i(tau_i) + pool_{j != i} h_Q,j(tau_j, u_j)
and outputs Q_jt(tau, ., u_-i) for every action of agent i, so all N heads estimate the same
Q_jt and one pass gives every agent's counterfactual row. The loss replaces L_nopt with

    L_nopt_min = (1/N) sum_i (min_{u_i} D(tau, u_i, u_-i))^2,
    D = Q'_jt(tau, u_i, u_-i) - Q_hat_i(tau, u_i, u_-i) + V_jt(tau),

and computes L_td and L_opt for every head. Unavailable actions are left out of the min.
Condition (7) cannot always be met for N >= 3 (docs/conditions.md: `qtran conditions` finds games with no solution); this file
implements the paper's loss as written and does not work around that.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qtran.algorithms.base import (
    Algorithm, chosen, greedy, masked_mean, masked_q, next_step, one_input, online_values, per_joint_action,
    pick_rows, single_state_cuts, td_target,
)
from qtran.algorithms.qtran_base import QtranNets
from qtran.networks import MLP


def opt_loss_all_heads(q, avail, rows_at_greedy, v):
    """L_opt averaged over heads: (1/N) sum_i (Q'_jt(u_bar) - Q_hat_i(u_bar) + V)^2.

    q[..., N, U] agent values, rows_at_greedy[..., N, U] the heads evaluated with u_-i = u_bar_-i,
    v[...] the state value. Returns [...].
    """
    u_bar = greedy(q, avail)
    q_prime_greedy = masked_q(q, avail).max(-1).sum(-1, keepdims=True)
    q_hat = jax.lax.stop_gradient(chosen(rows_at_greedy, u_bar))
    return ((q_prime_greedy - q_hat + v[..., None]) ** 2).mean(-1)


def nopt_min_loss(q, actions, avail, rows, v):
    """L_nopt_min: (1/N) sum_i (min_{u_i} D(u_i, u_-i))^2 over available u_i; returns [...].

    D(u_i, u_-i) = Q_i(u_i) + sum_{j != i} Q_j(u_j) - Q_hat_i(u_i, u_-i) + V, with rows[..., N, U]
    the heads evaluated at the sampled u_-i.
    """
    q_taken = chosen(q, actions)
    q_prime_rows = q + (q_taken.sum(-1, keepdims=True) - q_taken)[..., None]
    d = q_prime_rows - jax.lax.stop_gradient(rows) + v[..., None, None]
    d_min = jnp.min(jnp.where(avail, d, jnp.inf), axis=-1)
    return (d_min**2).mean(-1)


def make(cfg, env, agents) -> Algorithm:
    nets = QtranNets(cfg, env)
    # The counterfactual head; the released code's shape is 64 - 64 - |U|.
    f_alt = MLP((cfg.qtran.hidden, cfg.qtran.hidden, env.n_actions), nets.kernel_init)
    n = env.n_agents
    lam_opt, lam_nopt = cfg.qtran.lambda_opt, cfg.qtran.lambda_nopt

    def init_mixer(key):
        k_nets, k_hv, k_alt = jax.random.split(key, 3)
        params = nets.init(k_nets, cfg.agent.hidden)
        if "hv" not in params:  # the heads need h_V,i even when V itself is switched off
            params["hv"] = nets.hv.init(k_hv, jnp.zeros((cfg.agent.hidden,)))
        params["f_alt"] = f_alt.init(k_alt, jnp.zeros((cfg.qtran.hidden,)))
        return params

    def heads(params, h_v, h_q):
        """Every head's row Q_jt(tau, ., u_-i): [..., N, U] from h_V[..., N, F] and h_Q[..., N, F]
        (h_V may have fewer leading axes: a single-state game's one input)."""
        others = jnp.sum(h_q, axis=-2, keepdims=True) - h_q  # sum over j != i
        if cfg.qtran.pooling == "mean":
            others = others / n
        return f_alt.apply(params["f_alt"], h_v + others)

    def counterfactual_q(params, trunk, actions):
        """Q_jt(tau, ., u_-i) for every agent i: [..., N, U] from trunk[..., N, H], actions[..., N]."""
        return heads(params, nets.h_v(params, trunk), nets.h_q(params, trunk, actions))

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        rows = counterfactual_q(target_params["mixer"], nxt.target_trunk, nxt.actions)
        if cfg.qtran.td_target == "paper":  # each head at the next greedy joint action
            return chosen(rows, nxt.actions)  # [B, T, N]
        best = masked_q(rows, nxt.avail).max(-1).max(-1)  # code: one target for every head
        return jnp.broadcast_to(best[..., None], best.shape + (n,))

    def total(batch, q, q_greedy_side, avail_greedy, rows, rows_greedy, v, y):
        """L_td and L_opt for every head, and L_nopt_min, from the heads' rows at the taken
        actions [B, T, N, U] and at u_bar. The greedy side (the agents' q, their availability,
        rows_greedy and V) may be one input's, without the sample axes."""
        td = masked_mean(((chosen(rows, batch.actions) - y) ** 2).mean(-1), batch.mask)
        l_opt = opt_loss_all_heads(q_greedy_side, avail_greedy, rows_greedy, v)
        opt = masked_mean(jnp.broadcast_to(l_opt, batch.mask.shape), batch.mask)
        v_all = jnp.broadcast_to(v, batch.mask.shape)
        nopt = masked_mean(nopt_min_loss(q, batch.actions, batch.avail[:, :-1], rows, v_all), batch.mask)
        return td + lam_opt * opt + lam_nopt * nopt, {"loss_td": td, "loss_opt": opt, "loss_nopt": nopt}

    def loss(params, target_params, batch):
        mixer = params["mixer"]
        online = online_values(agents, params, batch, cfg.double_q)
        q, trunk = online.q, online.trunk
        avail = batch.avail[:, :-1]
        y = td_target(batch, cfg.gamma, not env.one_step,
                      lambda: next_value(target_params, batch, online.next_q), per_agent=True)
        h_v, h_q = nets.h_v(mixer, trunk), nets.h_q_of(mixer, trunk)
        rows = heads(mixer, h_v, h_q(batch.actions))  # [B, T, N, U]
        rows_greedy = heads(mixer, h_v, h_q(greedy(q, avail)))
        return total(batch, q, q, avail, rows, rows_greedy, nets.value_from_hv(mixer, h_v), y)

    def loss_one_input(params, target_params, batch):
        """`loss` for a single-state one-step game (`single_state_cuts`): the agents, h_V, V and
        h_Q per (agent, action) once; the heads per sample on gathered rows (or once per joint
        action, `per_joint_action`), and once at u_bar."""
        mixer = params["mixer"]
        q1, trunk1, q = one_input(agents, params, batch)
        h_v = nets.h_v(mixer, trunk1)  # [N, F]
        table = nets.h_q_table(mixer, trunk1)  # [N, U, F]
        avail1 = batch.avail[0, 0]
        rows = per_joint_action(lambda u: heads(mixer, h_v, pick_rows(table, u)), batch.actions,
                                env.n_actions)  # [B, T, N, U]
        rows_greedy = heads(mixer, h_v, pick_rows(table, greedy(q1, avail1)))  # [N, U]
        y = td_target(batch, cfg.gamma, False, None, per_agent=True)
        return total(batch, q, q1, avail1, rows, rows_greedy, nets.value_from_hv(mixer, h_v), y)

    def joint_q(params, obs, state, joint_actions):
        """Q_jt as the mean of the N heads' estimates."""
        _, trunk = agents.apply(params["agent"], obs)
        trunk = jnp.broadcast_to(trunk, joint_actions.shape + trunk.shape[-1:])
        return chosen(counterfactual_q(params["mixer"], trunk, joint_actions), joint_actions).mean(-1)

    def state_value(params, obs, state):
        _, trunk = agents.apply(params["agent"], obs)
        return nets.state_value(params["mixer"], trunk)

    chosen_loss = loss_one_input if single_state_cuts(cfg, env) else loss
    return Algorithm("qtran-alt", agents, init_mixer, chosen_loss, joint_q, state_value,
                     extras={"counterfactual_q": counterfactual_q})
