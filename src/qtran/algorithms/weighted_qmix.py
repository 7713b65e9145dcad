"""Weighted QMIX (Rashid et al., NeurIPS 2020): OW-QMIX and CW-QMIX.

Two joint values are learned side by side (Section 5):

- Q_tot: QMIX's monotonic mixing of the agents' Q_i (the `qmix.*` settings). The agents act
  on their Q_i, so u_hat = the agents' greedy joint action is Q_tot's argmax.
- Q-hat*: an unrestricted feed-forward network of the state and the utilities of a separate
  set of agents (same architecture as the acting agents, own parameters), no monotonicity.

Both regress onto y = r + gamma Q-hat*^-(s', u'), u' the greedy joint action of Q_tot at s'
(the online agents' with double_q, else the target agents'). Q-hat* minimises the plain squared
error; Q_tot the weighted one, w(s, u) (Q_tot(s, u) - y)^2, with w = 1 where the weighting's
condition holds and alpha (`wqmix.alpha`) elsewhere (Section 4):

- optimistic (OW-QMIX):   w = 1 where Q_tot(s, u) < y
- central (CW-QMIX):      w = 1 where u = u_hat or y > Q-hat*(s, u_hat)

The weights are constants in the gradient. The loss is the sum of both terms, each with
weight 1 (the authors' code: central_loss = qmix_loss = 1).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from qtran.algorithms.base import (
    Algorithm, chosen, greedy, masked_mean, next_step, one_input, online_values, per_joint_action,
    per_joint_action_and_at, single_state_cuts, td_target,
)
from qtran.algorithms.qmix import QMixer, qmixer
from qtran.matmul import dense_dot_general
from qtran.networks import MLP, Agents


def optimistic_weights(q_tot, y, alpha):
    """OW-QMIX: 1 where Q_tot(s, u) underestimates the target, alpha where it does not."""
    return jnp.where(q_tot < y, 1.0, alpha)


def central_weights(is_greedy, y, central_at_greedy, alpha):
    """CW-QMIX: 1 where u is Q_tot's greedy joint action or the target beats Q-hat*(s, u_hat),
    alpha elsewhere."""
    return jnp.where(is_greedy | (y > central_at_greedy), 1.0, alpha)


class CentralQ(nn.Module):
    """Q-hat*(s, u) = f([s, q*_1(u_1), ..., q*_N(u_N)]) + V(s), f with 3 hidden ReLU layers."""

    hidden: int = 256

    @nn.compact
    def __call__(self, utilities, state):
        """utilities[..., N], state[..., S] whose leading axes broadcast against theirs. V runs
        on the states as given: a single state's V once, not once per row."""
        rows = jnp.broadcast_to(state, utilities.shape[:-1] + state.shape[-1:])
        # dense_matmul: the kernels' gradients in their own layout, which a lone run needs
        # to keep these 256 x 256 layers fast (qtran.matmul)
        layers = MLP((self.hidden, self.hidden, self.hidden, 1), dot_general=dense_dot_general)
        advantage = layers(jnp.concatenate([rows, utilities], axis=-1))[..., 0]
        return advantage + MLP((self.hidden, 1), dot_general=dense_dot_general)(state)[..., 0]


def weighted_losses(q_tot, central, y, weights, mask):
    """(total loss, metrics) from Q_tot and Q-hat* at the taken actions, the targets and the
    weights of Q_tot's squared errors (all [B, T])."""
    weights = jax.lax.stop_gradient(weights)
    qmix_term = masked_mean(weights * (q_tot - y) ** 2, mask)
    central_term = masked_mean((central - y) ** 2, mask)
    return qmix_term + central_term, {"loss_td": qmix_term, "loss_central": central_term,
                                      "weight_mean": masked_mean(weights, mask)}


def make_ow(cfg, env, agents) -> Algorithm:
    return make(cfg, env, agents, "optimistic")


def make_cw(cfg, env, agents) -> Algorithm:
    return make(cfg, env, agents, "central")


def make(cfg, env, agents, weighting: str) -> Algorithm:
    mixer = qmixer(cfg, env.n_agents)
    central = CentralQ(cfg.wqmix.central_hidden)
    central_agents = Agents(env.n_agents, env.n_actions, env.obs_dim, cfg.agent.hidden, cfg.agent.shared,
                            cfg.agent.recurrent, cfg.agent.init, cfg.agent.head, cfg.agent.onehot_id)
    alpha = cfg.wqmix.alpha
    one_state = single_state_cuts(cfg, env)

    def init_mixer(key):
        k_mix, k_agents, k_central = jax.random.split(key, 3)
        return {"qmix": mixer.init(k_mix, jnp.zeros((env.n_agents,)), jnp.zeros((env.state_dim,))),
                "central_agent": central_agents.init(k_agents),
                "central": central.init(k_central, jnp.zeros((env.n_agents,)), jnp.zeros((env.state_dim,)))}

    def weights_of(q_tot, y, is_greedy, central_at_greedy):
        if weighting == "optimistic":
            return optimistic_weights(q_tot, y, alpha)
        return central_weights(is_greedy, y, central_at_greedy, alpha)

    def next_value(target_params, batch, chooser):
        """Q-hat*^-(s', u') with u' greedy on the agents (Q_tot's argmax)."""
        nxt = next_step(agents, target_params, batch, chooser)
        utilities, _ = central_agents.following(target_params["mixer"]["central_agent"], batch.obs)
        return central.apply(target_params["mixer"]["central"], chosen(utilities, nxt.actions), batch.state[:, 1:])

    def loss(params, target_params, batch):
        p = params["mixer"]
        online = online_values(agents, params, batch, cfg.double_q)
        utilities = online_values(central_agents, {"agent": p["central_agent"]}, batch, False).q
        state, avail = batch.state[:, :-1], batch.avail[:, :-1]
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        q_tot = mixer.apply(p["qmix"], chosen(online.q, batch.actions), state)
        central_taken = central.apply(p["central"], chosen(utilities, batch.actions), state)
        u_hat = greedy(online.q, avail)
        central_at_greedy = central.apply(p["central"], chosen(utilities, u_hat), state)
        weights = weights_of(q_tot, y, jnp.all(batch.actions == u_hat, axis=-1), central_at_greedy)
        return weighted_losses(q_tot, central_taken, y, weights, batch.mask)

    def loss_one_input(params, target_params, batch):
        """`loss` for a single-state one-step game (`single_state_cuts`): both sets of agents
        and QMIX's hypernetworks once; Q-hat* once per joint action or per sample
        (`per_joint_action`). CW-QMIX's Q-hat*(u_hat) comes out of the same call (a gathered
        or appended row, `per_joint_action_and_at`); OW-QMIX's weights never read it."""
        p = params["mixer"]
        q1, _, q = one_input(agents, params, batch)
        utilities1, _ = central_agents.apply(p["central_agent"], batch.obs[0, 0])  # [N, U]
        state1 = batch.state[0, 0]
        y = td_target(batch, cfg.gamma, False, None)
        hyper = mixer.apply(p["qmix"], state1, method=QMixer.hyper)
        q_tot = mixer.apply(p["qmix"], chosen(q, batch.actions), *hyper, method=QMixer.mix)
        u_hat = greedy(q1, batch.avail[0, 0])

        def central_at(u):
            return central.apply(p["central"], chosen(utilities1, u), state1)

        if weighting == "central":
            central_taken, central_at_greedy = per_joint_action_and_at(central_at, batch.actions, u_hat,
                                                                       env.n_actions)
        else:
            central_taken, central_at_greedy = per_joint_action(central_at, batch.actions, env.n_actions), None
        weights = weights_of(q_tot, y, jnp.all(batch.actions == u_hat, axis=-1), central_at_greedy)
        return weighted_losses(q_tot, central_taken, y, weights, batch.mask)

    def joint_q(params, obs, state, joint_actions):
        """Q_tot, the value the agents act on."""
        q, _ = agents.apply(params["agent"], obs)
        qs = chosen(q, joint_actions)  # [K, N]
        return mixer.apply(params["mixer"]["qmix"], qs, jnp.broadcast_to(state, qs.shape[:1] + state.shape))

    def central_q(params, obs, state, joint_actions):
        """Q-hat* at joint_actions[K, N]."""
        utilities, _ = central_agents.apply(params["mixer"]["central_agent"], obs)
        return central.apply(params["mixer"]["central"], chosen(utilities, joint_actions), state)

    name = {"optimistic": "ow-qmix", "central": "cw-qmix"}[weighting]
    return Algorithm(name, agents, init_mixer, loss_one_input if one_state else loss, joint_q,
                     extras={"central_q": central_q})
