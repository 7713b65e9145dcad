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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs import make_env
from qtran.train import Trainer

ALGOS = ("qtran-base", "qtran-alt", "vdn", "qmix", "iql")
PYMARL_STEPS_PER_S = 250.0


def warm_trainer(algo: str, seeds: int, iters: int, extra: tuple[str, ...] = ()):
    """A trainer whose chunk is `iters` iterations, compiled, and its states after one chunk
    (so the replay buffer holds real episodes): training from the first step, full exploration."""
    cfg = make_config([f"algo={algo}", f"seeds={seeds}", "steps=100000000", "warmup_steps=0",
                       "eps.start=1", "eps.end=1", *extra])
    env = make_env(cfg.env)
    cfg.eval.interval = iters * cfg.n_envs * env.episode_limit
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    states = trainer.init_runs(range(seeds))
    trainer.compile(states)
    states, _ = trainer.chunk(states, jnp.int32(0))
    return trainer, jax.block_until_ready(states)


def throughput(algo: str, seeds: int, iters: int, extra: tuple[str, ...] = ()) -> dict:
    """Compiled-chunk throughput of `iters` training iterations (after one warm chunk)."""
    trainer, states = warm_trainer(algo, seeds, iters, extra)
    t0 = time.perf_counter()
    states, _ = trainer.chunk(states, jnp.int32(iters))
    jax.block_until_ready(states)
    dt = time.perf_counter() - t0
    sched = trainer.schedule
    cost = trainer.chunk.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    # XLA counts a scan body once: the work of one iteration, with its inner scan over
    # updates counted once too, so scale by the updates per iteration.
    flops_per_iter = float(cost.get("flops", 0.0)) * sched.updates_per_iter if cost else 0.0
    return {
        "gflops": flops_per_iter * iters / dt / 1e9,
        "compile_s": trainer.compile_seconds,
        "steps_per_s": seeds * iters * sched.steps_per_iter / dt,
        "updates_per_s": seeds * iters * sched.updates_per_iter / dt,
    }


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of one large jitted float32 matmul: what this machine can reach at best."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


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
