"""The dense layers' matrix product, with the kernel's gradient taken in the kernel's layout.

JAX differentiates y = x @ W with respect to W as the product dy^T x, laid out [out, in], and
then transposes it to W's [in, out]. Inside a program vmapped over a single run (one seed, or
one run per device when the runs are sharded), XLA's CPU backend keeps that transpose as two
extra passes over every kernel-sized gradient on each update, and picks a slower product for
it: OW-QMIX's 256-wide Q-hat* trained one seed at half the speed of two (NOTES.md, 2026-11-30, commit 1f8013f).
Here the kernel's gradient is x^T dy, contracted over every leading axis of x, which is laid
out [in, out] from the start. The forward product and x's gradient are exactly JAX's.

Same values to float32 rounding (tests/test_matmul.py). Where more than one run is vmapped,
XLA computed the same products either way in every case measured (OW-QMIX and CW-QMIX on
Table 1, climb21 and MGS: every parameter bit for bit, NOTES.md, commit 1f8013f); in a lone run
the kernel's gradient may differ in the last bits.
"""

from __future__ import annotations

import jax


def _forward(x, kernel):
    return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))


@jax.custom_vjp
def dense_matmul(x, kernel):
    """x[..., in] @ kernel[in, out] -> [..., out]."""
    return _forward(x, kernel)


def _dense_matmul_fwd(x, kernel):
    return _forward(x, kernel), (x, kernel)


def _dense_matmul_bwd(saved, dy):
    x, kernel = saved
    dx = jax.lax.dot_general(dy, kernel, (((dy.ndim - 1,), (1,)), ((), ())))
    rows_x, rows_dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])  # every leading axis as one
    dkernel = jax.lax.dot_general(rows_x, rows_dy, (((0,), (0,)), ((), ())))
    return dx, dkernel


dense_matmul.defvjp(_dense_matmul_fwd, _dense_matmul_bwd)


def dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """flax.linen.Dense's `dot_general`: `dense_matmul` for the product Dense makes (the last
    axis of the input against a 2-D kernel's first, default precision); anything else is
    passed to lax.dot_general unchanged."""
    (contract_lhs, contract_rhs), (batch_lhs, _) = dimension_numbers
    if (tuple(contract_lhs) == (lhs.ndim - 1,) and tuple(contract_rhs) == (0,) and not batch_lhs
            and rhs.ndim == 2 and precision is None and preferred_element_type is None):
        return dense_matmul(lhs, rhs)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                               preferred_element_type=preferred_element_type)
