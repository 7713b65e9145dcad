"""qtran.matmul: a dense layer's product whose kernel gradient is taken in the kernel's layout.
Same forward bits, same gradients to float32 rounding, in every layout the losses use."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qtran.matmul import dense_dot_general, dense_matmul

IN, OUT = 6, 5


def _inputs(lead):
    x = jax.random.normal(jax.random.PRNGKey(0), lead + (IN,))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (IN, OUT))
    return x, kernel


def _loss(product):
    # a non-linear read-out, so that dy differs from row to row
    return lambda x, kernel: jnp.sum(jnp.tanh(product(x, kernel)) * jnp.arange(OUT))


@pytest.mark.parametrize("lead", [(), (9,), (4, 3), (2, 3, 2)])
def test_forward_bits_and_gradients_of_every_input_layout(lead):
    x, kernel = _inputs(lead)
    np.testing.assert_array_equal(dense_matmul(x, kernel), x @ kernel)
    ours = jax.grad(_loss(dense_matmul), argnums=(0, 1))(x, kernel)
    plain = jax.grad(_loss(jnp.matmul), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours, plain):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_kernel_gradient_by_hand():
    # y = x @ W, loss = sum(y * c): dloss/dW = x^T c over the rows
    x = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    kernel = jnp.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
    c = jnp.array([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]])
    grad = jax.grad(lambda w: jnp.sum(dense_matmul(x, w) * c))(kernel)
    np.testing.assert_allclose(grad, [[1.0, -3.0, 5.0], [2.0, 1.0, 3.0]])


@pytest.mark.parametrize("runs", [1, 2, 3])
def test_vmapped_over_runs_as_the_trainer_does(runs):
    xs = jax.random.normal(jax.random.PRNGKey(2), (runs, 9, IN))
    kernels = jax.random.normal(jax.random.PRNGKey(3), (runs, IN, OUT))
    ours = jax.vmap(jax.grad(_loss(dense_matmul), argnums=(0, 1)))(xs, kernels)
    plain = jax.vmap(jax.grad(_loss(jnp.matmul), argnums=(0, 1)))(xs, kernels)
    for a, b in zip(ours, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_dense_layer_keeps_its_parameters_and_outputs():
    x = jax.random.normal(jax.random.PRNGKey(4), (7, IN))
    plain, ours = nn.Dense(OUT), nn.Dense(OUT, dot_general=dense_dot_general)
    params = plain.init(jax.random.PRNGKey(5), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(5), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_array_equal(ours.apply(params, x), plain.apply(params, x))
    g_ours = jax.grad(lambda p: jnp.sum(jnp.sin(ours.apply(p, x))))(params)
    g_plain = jax.grad(lambda p: jnp.sum(jnp.sin(plain.apply(p, x))))(params)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_other_products_pass_through_unchanged():
    a = jax.random.normal(jax.random.PRNGKey(6), (2, 3, 4))
    b = jax.random.normal(jax.random.PRNGKey(7), (2, 4, 5))
    numbers = (((2,), (1,)), ((0,), (0,)))  # a batched product, which Dense never makes
    np.testing.assert_array_equal(dense_dot_general(a, b, numbers), jax.lax.dot_general(a, b, numbers))
