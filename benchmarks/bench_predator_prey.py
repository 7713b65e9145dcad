"""Predator-prey throughput: the environment alone, and training at N = 2 and N = 4.

    python benchmarks/bench_predator_prey.py

Environment only: uniformly random actions, 4096 environments vmapped, a jitted lax.scan
over 100 steps. Training: 5 seeds vmapped, one gradient update (batch 32 transitions) per
environment step, as the released code; the FLOP rate is XLA's count of one iteration's
work against one large matmul on the same machine (the honest ceiling).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).parent))
from bench_table1 import matmul_ceiling, throughput  # noqa: E402

from qtran.envs.predator_prey import PredatorPreyConfig, make_predator_prey  # noqa: E402

SETTINGS = {"N=2": ["env.agents=2", "env.prey=1", "env.grid=5"], "N=4": ["env.agents=4", "env.prey=2", "env.grid=7"]}


def env_only(n_envs: int = 4096, steps: int = 100, repeats: int = 3) -> float:
    env = make_predator_prey(PredatorPreyConfig(agents=2, prey=1, grid=5))

    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset)

        def step(carry, key):
            state, total = carry
            k_act, k_env = jax.random.split(key)
            actions = jax.random.randint(k_act, (env.n_agents,), 0, env.n_actions)
            obs, state, reward, _, _ = env.step(k_env, state, actions)
            return (state, total + reward + obs.sum() * 0.0), None

        (_, total), _ = jax.lax.scan(step, (state, 0.0), jax.random.split(k_run, steps))
        return total

    run = jax.jit(jax.vmap(rollout))
    keys = jax.random.split(jax.random.PRNGKey(0), n_envs)
    run(keys).block_until_ready()
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        run(jax.random.split(jax.random.PRNGKey(r + 1), n_envs)).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return n_envs * steps / best


def main() -> None:
    print(f"device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax {jax.__version__}")
    print(f"environment only (N=2, 5x5, 4096 envs vmapped, 100 steps): {env_only():,.0f} steps/s")
    ceiling = matmul_ceiling()
    print(f"ceiling: one 2048x2048 float32 matmul reaches {ceiling:.0f} GFLOP/s")
    print(f"{'algorithm':<11} {'setting':>7} {'steps/s/seed':>12} {'updates/s':>10} {'GFLOP/s':>8} {'of ceil':>7}")
    for name, setting in SETTINGS.items():
        for algo in ("qtran-base", "qtran-alt", "vdn", "qmix"):
            r = throughput(algo, 5, 5, ("env=predator_prey", *setting))  # 5 iterations = 500 steps
            print(f"{algo:<11} {name:>7} {r['steps_per_s'] / 5:>12,.0f} {r['updates_per_s']:>10,.0f} "
                  f"{r['gflops']:>8.1f} {r['gflops'] / ceiling:>7.0%}", flush=True)


if __name__ == "__main__":
    main()
