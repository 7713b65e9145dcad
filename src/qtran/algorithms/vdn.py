"""VDN (Sunehag et al., 2018): Q_jt = sum_i Q_i, trained end to end on the team TD error."""

from __future__ import annotations

from qtran.algorithms.base import (
    Algorithm, chosen, masked_mean, next_step, online_values, single_state_cuts, td_target,
)


def make(cfg, env, agents) -> Algorithm:
    one_state = single_state_cuts(cfg, env)  # the agents once per update

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        return chosen(nxt.target_q, nxt.actions).sum(-1)

    def loss(params, target_params, batch):
        online = online_values(agents, params, batch, cfg.double_q, one_state)
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        td = masked_mean((chosen(online.q, batch.actions).sum(-1) - y) ** 2, batch.mask)
        return td, {"loss_td": td}

    def joint_q(params, obs, state, joint_actions):
        q, _ = agents.apply(params["agent"], obs)  # [N, U]
        return chosen(q, joint_actions).sum(-1)

    return Algorithm("vdn", agents, init_mixer=lambda key: {}, loss=loss, joint_q=joint_q)
