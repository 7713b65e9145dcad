"""QMIX (Rashid et al., 2018): Q_jt is a monotonic function of the Q_i, mixed by a network
whose non-negative weights are produced by hypernetworks of the global state."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from qtran.algorithms.base import (
    Algorithm, chosen, masked_mean, next_step, online_values, single_state_cuts, td_target,
)
from qtran.networks import JOINT_INITS, MLP

# Where the first layer's bias b1 enters: "inside" the ELU, elu(q w1 + b1) (the QMIX paper), or
# "after" it, elu(q w1) + b1 (the released QTRAN code's generate_QMIX in dq_network.py).
B1_PLACES = ("inside", "after")


class QMixer(nn.Module):
    n_agents: int
    embed: int = 32
    hypernet_layers: int = 2
    hypernet_hidden: int = 64
    init_scale: Optional[float] = None  # None: `init`'s kernels; else orthogonal, this gain
    b1: str = "inside"  # one of B1_PLACES
    weights: str = "default"  # a key of JOINT_INITS ("init" would shadow Module.init)

    def setup(self):
        # Attribute names are the submodule names the earlier single-method version was given
        # automatically, so parameter trees (and checkpoints) are unchanged.
        init = JOINT_INITS[self.weights] if self.init_scale is None else nn.initializers.orthogonal(self.init_scale)
        bias_1 = nn.Dense(self.embed, kernel_init=init)
        value = MLP((self.embed, 1), init)
        if self.hypernet_layers == 1:
            self.Dense_0 = nn.Dense(self.n_agents * self.embed, kernel_init=init)
            self.Dense_1, self.Dense_2 = bias_1, nn.Dense(self.embed, kernel_init=init)
            self.MLP_0 = value
        else:
            self.MLP_0 = MLP((self.hypernet_hidden, self.n_agents * self.embed), init)
            self.Dense_0, self.MLP_1 = bias_1, MLP((self.hypernet_hidden, self.embed), init)
            self.MLP_2 = value

    def hyper(self, state):
        """The mixing weights from the global state[..., S]: w1[..., N, E] >= 0, b1[..., E],
        w2[..., E] >= 0 and the state value v[...]. A function of the state alone: a
        single-state game computes it once per update."""
        if self.hypernet_layers == 1:
            nets = (self.Dense_0, self.Dense_1, self.Dense_2, self.MLP_0)
        else:
            nets = (self.MLP_0, self.Dense_0, self.MLP_1, self.MLP_2)
        w1 = jnp.abs(nets[0](state)).reshape(state.shape[:-1] + (self.n_agents, self.embed))
        return w1, nets[1](state), jnp.abs(nets[2](state)), nets[3](state)[..., 0]

    def mix(self, qs, w1, b1, w2, v):
        """Q_tot[...] from the chosen agent values qs[..., N] and `hyper`'s weights (whose
        leading axes broadcast against qs's)."""
        w1 = jnp.broadcast_to(w1, qs.shape + w1.shape[-1:])
        mixed = jnp.einsum("...n,...ne->...e", qs, w1)
        hidden = nn.elu(mixed + b1) if self.b1 == "inside" else nn.elu(mixed) + b1
        return jnp.sum(hidden * w2, axis=-1) + v

    def __call__(self, qs, state):
        """qs[..., N] chosen agent values, state[..., S] -> Q_tot[...]."""
        return self.mix(qs, *self.hyper(state))


def qmixer(cfg, n_agents: int) -> QMixer:
    """The mixer the `qmix.*` settings describe (QMIX and weighted QMIX)."""
    q = cfg.qmix
    return QMixer(n_agents, q.embed, q.hypernet_layers, q.hypernet_hidden, q.init_scale, q.b1, q.init)


def make(cfg, env, agents) -> Algorithm:
    mixer = qmixer(cfg, env.n_agents)
    one_state = single_state_cuts(cfg, env)

    def init_mixer(key):
        return mixer.init(key, jnp.zeros((env.n_agents,)), jnp.zeros((env.state_dim,)))

    def next_value(target_params, batch, chooser):
        nxt = next_step(agents, target_params, batch, chooser)
        return mixer.apply(target_params["mixer"], chosen(nxt.target_q, nxt.actions), batch.state[:, 1:])

    def q_tot(params, qs, batch):
        if one_state:  # the hypernetworks once, on the game's one state (`single_state_cuts`)
            weights = mixer.apply(params, batch.state[0, 0], method=QMixer.hyper)
            return mixer.apply(params, qs, *weights, method=QMixer.mix)
        return mixer.apply(params, qs, batch.state[:, :-1])

    def loss(params, target_params, batch):
        online = online_values(agents, params, batch, cfg.double_q, one_state)
        y = td_target(batch, cfg.gamma, not env.one_step, lambda: next_value(target_params, batch, online.next_q))
        td = masked_mean((q_tot(params["mixer"], chosen(online.q, batch.actions), batch) - y) ** 2, batch.mask)
        return td, {"loss_td": td}

    def joint_q(params, obs, state, joint_actions):
        q, _ = agents.apply(params["agent"], obs)
        qs = chosen(q, joint_actions)  # [K, N]
        return mixer.apply(params["mixer"], qs, jnp.broadcast_to(state, qs.shape[:1] + state.shape))

    return Algorithm("qmix", agents, init_mixer=init_mixer, loss=loss, joint_q=joint_q)
