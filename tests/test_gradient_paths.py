"""The two QTRAN modelling choices docs/options.md writes down ("Two modelling choices no
setting switches"), checked on the gradients and parameters themselves."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs.matrix import make_matrix_game

from test_losses import _setup  # a small multi-step matrix game, its batch and parameters


def _factorisation_gradient(algo: str, **settings) -> dict[str, float]:
    """Largest change, per network, that L_opt and L_nopt make to the loss gradient: the full
    loss's gradient against the same loss with lambda_opt = lambda_nopt = 0."""
    _, alg, params, target, batch = _setup(algo, **settings)
    _, td_only, _, _, _ = _setup(algo, **settings, **{"qtran.lambda_opt": 0, "qtran.lambda_nopt": 0})
    full = jax.jit(jax.grad(lambda p: alg.loss(p, target, batch)[0]))(params)
    td = jax.jit(jax.grad(lambda p: td_only.loss(p, target, batch)[0]))(params)
    change = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), full, td)
    per_net = {name: max(jax.tree.leaves(tree)) for name, tree in change["mixer"].items()}
    per_net["agent"] = max(jax.tree.leaves(change["agent"]))
    return per_net


@pytest.mark.parametrize("algo, joint", [("qtran-base", "f_r"), ("qtran-alt", "f_alt")])
@pytest.mark.parametrize("v_net", ["true", "false"])
def test_factorisation_losses_stop_at_q_jt_but_reach_the_layers_below(algo, joint, v_net):
    change = _factorisation_gradient(algo, **{"qtran.v_net": v_net})
    assert change[joint] == 0.0 and change["hq"] == 0.0  # Q_jt's own layers: L_td only
    assert change["agent"] > 1e-4  # the agents' trunk and heads, in every setting
    if v_net == "true":  # through V: h_V and f_v (in alt, h_V,i is also a head's input)
        assert change["hv"] > 1e-4 and change["f_v"] > 1e-4
    elif "hv" in change:  # alt keeps h_V for its heads; without V it learns from L_td only
        assert change["hv"] == 0.0


def test_qtran_alt_has_one_counterfactual_network_for_all_agents():
    """f_alt's parameters do not depend on the number of agents: no per-agent copies, no id."""
    def f_alt_shapes(n_agents: int):
        env = make_matrix_game(np.zeros((3,) * n_agents))
        alg = make_algorithm(make_config(["algo=qtran-alt"]), env)
        return jax.tree.map(jnp.shape, alg.init_mixer(jax.random.PRNGKey(0))["f_alt"])

    assert f_alt_shapes(2) == f_alt_shapes(3)
