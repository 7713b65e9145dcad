"""Independent Q-learning (Tan, 1993; Tampuu et al., 2017): each agent regresses its own Q_i
onto r + gamma * max Q_i^-(tau'_i), treating the others as part of the environment."""

from __future__ import annotations

from qtran.algorithms.base import (
    Algorithm, chosen, masked_mean, next_step, online_values, single_state_cuts, td_target,
)


def make(cfg, env, agents) -> Algorithm:
    one_state = single_state_cuts(cfg, env)  # the agents once per update

    def loss(params, target_params, batch):
        online = online_values(agents, params, batch, cfg.double_q, one_state)
        y = td_target(batch, cfg.gamma, not env.one_step,
                      lambda: _next_q(target_params, batch, online.next_q), per_agent=True)
        td = masked_mean(((chosen(online.q, batch.actions) - y) ** 2).mean(-1), batch.mask)
        return td, {"loss_td": td}

    def _next_q(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        return chosen(nxt.target_q, nxt.actions)  # [B, T, N]

    return Algorithm("iql", agents, init_mixer=lambda key: {}, loss=loss)
