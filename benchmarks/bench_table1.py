"""Throughput on the Table 1 game and the time of `qtran reproduce table1`.

    python benchmarks/bench_table1.py            # per-algorithm throughput, then end to end
    python benchmarks/bench_table1.py --no-e2e   # throughput only

Throughput is measured on a compiled chunk (compile excluded), after one warm-up chunk.
An environment step here is one step of one seed; a gradient update is one update of one
seed on a batch of 32 episodes. Reference point for PyMARL (PyTorch) on the same game and
budget, from the project's issue tracker: about 250 steps/s for one seed of QTRAN.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from flops import xla_flops  # noqa: E402
from usage import meter  # noqa: E402

from qtran.algorithms import make_algorithm  # noqa: E402
from qtran.config import make_config  # noqa: E402
from qtran.envs import make_env  # noqa: E402
from qtran.train import Trainer  # noqa: E402

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix", "iql")
PYMARL_STEPS_PER_S = 250.0


def warm_trainer(algo: str, seeds: int, iters: int, extra: tuple[str, ...] = (), donate: bool = False):
    """A trainer whose chunk is `iters` iterations, compiled, and its states after one chunk
    (so the replay buffer holds real episodes): training from the first step, full exploration.
    The step budget and warm-up are set after `extra`, so an experiment's own settings (which
    carry both) still give a chunk that trains and never runs past the budget.

    With `donate`, the chunk is compiled with its input states donated (reused for the output).
    The trainer's own chunk is not: each call copies the whole state, replay buffer included,
    once per chunk. A real run amortises that over its evaluation interval (e.g. 100
    iterations); a timed chunk of a few iterations would mostly measure the copy (predator-prey
    at the paper budget holds gigabytes of replay)."""
    cfg = make_config([f"algo={algo}", f"seeds={seeds}", "eps.start=1", "eps.end=1", *extra,
                       "steps=100000000", "warmup_steps=0"])
    env = make_env(cfg.env)
    cfg.eval.interval = iters * cfg.n_envs * env.episode_limit
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    states = trainer.init_runs(range(seeds))
    if donate:
        t0 = time.perf_counter()
        trainer.chunk = jax.jit(trainer._chunk, donate_argnums=0).lower(states, jnp.int32(0)).compile()
        trainer.compile_seconds = time.perf_counter() - t0
    else:
        trainer.compile(states)
    states, _ = trainer.chunk(states, jnp.int32(0))
    return trainer, jax.block_until_ready(states)


def throughput(algo: str, seeds: int, iters: int, extra: tuple[str, ...] = ()) -> dict:
    """Compiled-chunk throughput of `iters` training iterations (after one warm chunk)."""
    trainer, states = warm_trainer(algo, seeds, iters, extra)
    states, usage = timed_chunk(trainer, states, iters)
    dt = usage.wall
    sched = trainer.schedule
    # XLA counts a scan body once: the work of one iteration, with its inner scan over
    # updates counted once too, so scale by the updates per iteration.
    flops_per_iter = xla_flops(trainer.chunk) * sched.updates_per_iter
    return {
        "gflops": flops_per_iter * iters / dt / 1e9,
        "compile_s": trainer.compile_seconds,
        "steps_per_s": seeds * iters * sched.steps_per_iter / dt,
        "updates_per_s": seeds * iters * sched.updates_per_iter / dt,
    }


def timed_chunk(trainer, states, start: int):
    """Run one compiled chunk from iteration `start`: (states, its `usage.Usage`: wall and CPU
    seconds, and how many threads did the work)."""
    with meter() as usage:
        states, _ = trainer.chunk(states, jnp.int32(start))
        jax.block_until_ready(states)
    return states, usage


def matmul_rates(n: int = 2048, repeats: int = 10) -> dict:
    """GFLOP/s of one large jitted float32 matmul, timed `repeats` times after a warm-up call:
    the best and median call, CPU / wall over them, and how many threads worked (2 when XLA's
    CPU backend multithreads it over both cores of the 2-core machine)."""
    a, b = jax.random.normal(jax.random.PRNGKey(0), (2, n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    rates = []
    with meter() as usage:  # over all calls: one call is too short for per-thread CPU ticks
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b).block_until_ready()
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return {"best": max(rates), "median": statistics.median(rates), "cores": usage.cores,
            "threads": usage.threads}


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of one large jitted float32 matmul (median call): what this machine can reach."""
    return matmul_rates(n, repeats)["median"]


def end_to_end() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qtran", "reproduce", "table1", f"out={tmp}", "progress=false",
                        "tensorboard=false"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        summaries = [json.loads((Path(tmp) / a / "summary.json").read_text()) for a in ALGOS]
    return {"wall_s": wall, "compile_s": sum(s["compile_seconds"] for s in summaries),
            "train_s": sum(s["train_seconds"] for s in summaries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000, help="timed iterations per measurement")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end reproduce timing")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax {jax.__version__}")
    ceiling = matmul_ceiling()
    print(f"ceiling: one 2048x2048 float32 matmul reaches {ceiling:.0f} GFLOP/s")
    print(f"{'algorithm':<11} {'seeds':>5} {'env steps/s':>12} {'updates/s':>11} {'GFLOP/s':>8} "
          f"{'of ceil':>7} {'compile s':>9} {'x PyMARL':>9}")
    for algo in ALGOS:
        for seeds in (1, 10):
            r = throughput(algo, seeds, args.iters)
            print(f"{algo:<11} {seeds:>5} {r['steps_per_s']:>12,.0f} {r['updates_per_s']:>11,.0f} "
                  f"{r['gflops']:>8.1f} {r['gflops'] / ceiling:>7.0%} {r['compile_s']:>9.1f} {r['steps_per_s'] / PYMARL_STEPS_PER_S:>9.1f}", flush=True)
    if not args.no_e2e:
        r = end_to_end()
        print(f"\nqtran reproduce table1 (5 algorithms x 10 seeds x 20,000 steps): {r['wall_s']:.1f} s wall; "
              f"summed over algorithms: compile {r['compile_s']:.1f} s, training {r['train_s']:.1f} s "
              f"(algorithms run two at a time)")
        print(f"PyMARL for the same 10 seeds x QTRAN alone: about {10 * 20000 / PYMARL_STEPS_PER_S:.0f} s")


if __name__ == "__main__":
    main()
