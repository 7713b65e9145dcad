"""QMIX (Rashid et al., 2018): Q_jt is a monotonic function of the Q_i, mixed by a network
whose non-negative weights are produced by hypernetworks of the global state."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from qtran.algorithms.base import Algorithm, chosen, masked_mean, next_step, online_values, td_target
from qtran.networks import MLP


class QMixer(nn.Module):
    n_agents: int
    embed: int = 32
    hypernet_layers: int = 2
    hypernet_hidden: int = 64
    init_scale: Optional[float] = None  # None: Flax's default kernels; else orthogonal, this gain

    def _kernel_init(self):
        if self.init_scale is None:
            return nn.initializers.lecun_normal()
        return nn.initializers.orthogonal(self.init_scale)

    def _hyper(self, width, state):
        if self.hypernet_layers == 1:
            return nn.Dense(width, kernel_init=self._kernel_init())(state)
        return MLP((self.hypernet_hidden, width), self._kernel_init())(state)

    @nn.compact
    def __call__(self, qs, state):
        """qs[..., N] chosen agent values, state[..., S] -> Q_tot[...]."""
        w1 = jnp.abs(self._hyper(self.n_agents * self.embed, state))
        w1 = w1.reshape(state.shape[:-1] + (self.n_agents, self.embed))
        b1 = nn.Dense(self.embed, kernel_init=self._kernel_init())(state)
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", qs, w1) + b1)
        w2 = jnp.abs(self._hyper(self.embed, state))
        v = MLP((self.embed, 1), self._kernel_init())(state)[..., 0]
        return jnp.sum(hidden * w2, axis=-1) + v


def make(cfg, env, agents) -> Algorithm:
    mixer = QMixer(env.n_agents, cfg.qmix.embed, cfg.qmix.hypernet_layers, cfg.qmix.hypernet_hidden,
                   cfg.qmix.init_scale)

    def init_mixer(key):
        return mixer.init(key, jnp.zeros((env.n_agents,)), jnp.zeros((env.state_dim,)))

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        return mixer.apply(target_params["mixer"], chosen(nxt.target_q, nxt.actions), batch.state[:, 1:])

    def loss(params, target_params, batch):
        online = online_values(agents, params, batch, cfg.double_q)
        q_tot = mixer.apply(params["mixer"], chosen(online.q, batch.actions), batch.state[:, :-1])
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        td = masked_mean((q_tot - y) ** 2, batch.mask)
        return td, {"loss_td": td}

    def joint_q(params, obs, state, joint_actions):
        q, _ = agents.apply(params["agent"], obs)
        qs = chosen(q, joint_actions)  # [K, N]
        return mixer.apply(params["mixer"], qs, jnp.broadcast_to(state, qs.shape[:1] + state.shape))

    return Algorithm("qmix", agents, init_mixer=init_mixer, loss=loss, joint_q=joint_q)
