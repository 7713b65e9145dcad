"""The GRU over whole episodes: `qtran.gru.gru_sequence` against Flax's GRUCell in a lax.scan.

    python benchmarks/bench_gru.py [--steps 26] [--batch 96] [--hidden 64] [--repeats 5]

Times one jitted value-and-gradient (cell parameters and inputs) of a loss over every step's
hidden state, the work a recurrent agent's update does. Defaults are JaxMARL's QMIX on MPE
simple_spread: 26-step sequences, 32 episodes x 3 agents, 64 hidden units. Both are timed in
turn, several rounds, in one process; the ratio of medians is the figure to quote.
"""

from __future__ import annotations

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from qtran.gru import gru_sequence


def timed(fn, args, calls: int) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=26)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of timing, each side in turn")
    parser.add_argument("--calls", type=int, default=100, help="calls per timing")
    a = parser.parse_args()

    cell = nn.GRUCell(features=a.hidden)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = cell.init(keys[0], jnp.zeros((1, a.hidden)), jnp.zeros((1, a.hidden)))["params"]
    xs = jax.random.normal(keys[1], (a.steps, a.batch, a.hidden))
    h0 = jnp.zeros((a.batch, a.hidden))
    weights = jax.random.normal(keys[2], (a.steps, a.batch, a.hidden))

    def flax_scan(p, x, h):
        return jax.lax.scan(lambda c, xt: cell.apply({"params": p}, c, xt), h, x)[1]

    runs = {name: jax.jit(jax.value_and_grad(lambda p, x, run=run: jnp.sum(run(p, x, h0) * weights),
                                             argnums=(0, 1)))
            for name, run in (("flax GRUCell in lax.scan", flax_scan), ("qtran gru_sequence", gru_sequence))}
    times = {name: [] for name in runs}
    for _ in range(a.repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn, (params, xs), a.calls))

    print(f"{jax.devices()[0].platform}: value and gradient over {a.steps} steps, batch {a.batch}, "
          f"hidden {a.hidden}; median of {a.repeats} rounds of {a.calls} calls")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"  {name:28s} {m * 1e3:8.3f} ms")
    base, ours = medians.values()
    print(f"  speed-up: {base / ours:.2f}x")


if __name__ == "__main__":
    main()
