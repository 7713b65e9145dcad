"""benchmarks/flops.py: the loop-aware matmul count that checks how bench_ceiling scales
XLA's cost analysis (which counts a loop body once). Counts only; nothing here is timed."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from flops import dot_flops, loop_corrected_flops, xla_flops  # noqa: E402

N = 32
MATMUL = 2 * N**3  # FLOPs of one [N, N] @ [N, N]


def compiled(fn, *args):
    return jax.jit(fn).lower(*args).compile()


def repeated_matmul(length):
    a = jnp.eye(N)
    return lambda x: jax.lax.scan(lambda c, _: (c @ a, None), x, None, length=length)[0]


@pytest.mark.parametrize("length", [2, 7])
def test_loop_body_times_its_trip_count(length):
    program = compiled(repeated_matmul(length), jnp.ones((N, N)))
    flops, known = dot_flops(program.as_text())
    assert known and flops == length * MATMUL
    # XLA's own count takes the body once: the reason bench_ceiling rebuilds a chunk's FLOPs.
    assert xla_flops(program) < 2 * MATMUL


def test_nested_and_vmapped_loops_multiply():
    def outer(x):
        return jax.lax.scan(lambda c, _: (repeated_matmul(3)(c), None), x, None, length=4)[0]

    program = compiled(jax.vmap(outer), jnp.ones((5, N, N)))
    assert dot_flops(program.as_text()) == (5 * 4 * 3 * MATMUL, True)


def test_conditional_counts_its_costlier_branch():
    a = jnp.ones((N, N))
    program = compiled(lambda p: jax.lax.cond(p > 0, lambda: a @ a @ a, lambda: a @ a), 1.0)
    assert dot_flops(program.as_text())[0] == 2 * MATMUL


def test_rectangular_product():
    program = compiled(lambda x, y: x @ y, jnp.ones((3, 5)), jnp.ones((5, 7)))
    assert dot_flops(program.as_text())[0] == 2 * 3 * 5 * 7


def test_loop_corrected_count_takes_every_trip_of_a_matmul():
    program = compiled(repeated_matmul(5), jnp.ones((N, N)))
    assert dot_flops(program.as_text(), loops=False)[0] == MATMUL
    assert loop_corrected_flops(program) == pytest.approx(5 * MATMUL, rel=1e-3)
