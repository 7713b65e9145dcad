"""`gru_sequence` against Flax's GRUCell scanned over time: same hidden states, same gradients
for the cell's parameters, the inputs and the initial state."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.gru import gru_sequence, gru_step
from qtran.networks import Agents


def _cell_params(key, hidden, inputs):
    cell = nn.GRUCell(features=hidden)
    params = cell.init(key, jnp.zeros((1, hidden)), jnp.zeros((1, inputs)))["params"]
    # Flax starts biases at zero; perturb every leaf so each bias's gradient path is exercised.
    noise = jax.random.split(jax.random.fold_in(key, 1), len(jax.tree.leaves(params)))
    leaves = [a + 0.2 * jax.random.normal(k, a.shape) for a, k in zip(jax.tree.leaves(params), noise)]
    return cell, jax.tree.unflatten(jax.tree.structure(params), leaves)


def _flax_sequence(cell, params, xs, h0):
    return jax.lax.scan(lambda h, x: cell.apply({"params": params}, h, x), h0, xs)[1]


@pytest.mark.parametrize("batch", [(5,), (4, 3), ()])
def test_values_and_gradients_equal_the_scanned_flax_cell(batch):
    t, hidden, inputs = 7, 6, 5
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    cell, params = _cell_params(keys[0], hidden, inputs)
    xs = jax.random.normal(keys[1], (t, *batch, inputs))
    h0 = 0.5 * jax.random.normal(keys[2], (*batch, hidden))
    weights = jax.random.normal(keys[3], (t, *batch, hidden))

    np.testing.assert_allclose(gru_sequence(params, xs, h0), _flax_sequence(cell, params, xs, h0),
                               rtol=1e-5, atol=1e-6)

    def loss(run):  # a non-linear read-out of every step, so every d_hs[t] differs
        return lambda p, x, h: jnp.sum(jnp.sin(run(p, x, h)) * weights)

    ours = jax.grad(loss(gru_sequence), argnums=(0, 1, 2))(params, xs, h0)
    flax = jax.grad(loss(lambda p, x, h: _flax_sequence(cell, p, x, h)), argnums=(0, 1, 2))(params, xs, h0)
    assert jax.tree.structure(ours) == jax.tree.structure(flax)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(flax)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_vmapped_over_per_agent_parameters_keeps_agents_apart():
    t, hidden, inputs, agents = 4, 3, 2, 2
    cells = [_cell_params(jax.random.PRNGKey(k), hidden, inputs) for k in range(agents)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[p for _, p in cells])
    xs = jax.random.normal(jax.random.PRNGKey(9), (agents, t, 3, inputs))
    h0 = jnp.zeros((agents, 3, hidden))
    together = jax.vmap(gru_sequence)(stacked, xs, h0)
    for k, (cell, params) in enumerate(cells):
        np.testing.assert_allclose(together[k], _flax_sequence(cell, params, xs[k], h0[k]), rtol=1e-5, atol=1e-6)


def test_one_step_equals_the_flax_cell():
    cell, params = _cell_params(jax.random.PRNGKey(3), 6, 5)
    h = jax.random.normal(jax.random.PRNGKey(4), (2, 3, 6))
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 5))
    np.testing.assert_allclose(gru_step(params, h, x), cell.apply({"params": params}, h, x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared", [True, False])
def test_acting_agents_equal_the_flax_module_they_are_built_from(shared):
    agents = Agents(3, 4, 5, 8, shared=shared, recurrent=True)
    params = agents.init(jax.random.PRNGKey(0))
    carry = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (2, 3, 8))
    obs = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 5))
    carry_ours, q_ours, _ = agents.step(params, carry, obs)
    reference = lambda p, c, x: agents.net.apply(p, c, x)  # AgentGRU.__call__: the Flax cell
    carry_ref, (q_ref, _) = agents._per_agent(reference, params, carry, agents._inputs(obs))
    np.testing.assert_allclose(carry_ours, carry_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_ours, q_ref, rtol=1e-5, atol=1e-6)
