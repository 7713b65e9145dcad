"""Algorithm registry. Each module's `make(cfg, env, agents)` returns an `Algorithm`."""

from __future__ import annotations

from qtran.algorithms import iql, qmix, qplex, qtran_alt, qtran_base, vdn, weighted_qmix
from qtran.algorithms.base import Algorithm, Batch
from qtran.networks import Agents

ALGORITHMS = {
    "qtran-base": qtran_base.make,
    "qtran-alt": qtran_alt.make,
    "vdn": vdn.make,
    "qmix": qmix.make,
    "iql": iql.make,
    "qplex": qplex.make,
    "ow-qmix": weighted_qmix.make_ow,
    "cw-qmix": weighted_qmix.make_cw,
}


def make_algorithm(cfg, env) -> Algorithm:
    agents = Agents(env.n_agents, env.n_actions, env.obs_dim, cfg.agent.hidden, cfg.agent.shared,
                    cfg.agent.recurrent, cfg.agent.init, cfg.agent.head, cfg.agent.onehot_id)
    return ALGORITHMS[cfg.algo](cfg, env, agents)


__all__ = ["ALGORITHMS", "Algorithm", "Batch", "make_algorithm"]
