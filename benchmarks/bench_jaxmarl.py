"""JaxMARL's MPE simple_spread through our adapter against JaxMARL's own rollouts; training on it.

    python benchmarks/bench_jaxmarl.py            # needs: pip install -e ".[dev]"

1. Environment only, uniformly random actions, `n_envs` environments vmapped, one jitted
   `lax.scan` over one 25-step episode (reset included), best of 3 timed runs:
   - JaxMARL `env.step`: its public step, which computes a reset at every step for its
     automatic reset (how JaxMARL's own examples roll out);
   - JaxMARL `CTRolloutManager.batch_step`: the wrapper JaxMARL's Q-learning baselines
     (IQL, VDN, QMIX) collect with: batched step plus padded observations, agent ids,
     global state and team reward (needs gymnax, which needs `six`; skipped without it);
   - JaxMARL `env.step_env`: the bare transition, no reset (the floor);
   - ours: `env=jaxmarl` (`qtran.envs.jaxmarl_adapter`): step_env plus padding, global state,
     team reward and the frozen-after-termination select.
2. Training on it with our trainer (compiled end to end): QMIX and VDN, 3 seeds vmapped,
   against the return of uniformly random actions. And VDN through the PettingZoo adapter
   and host loop (`env=pettingzoo env.name=mpe2.simple_spread_v3`), whose environment steps
   in Python, for its cost.
3. JaxMARL's own QMIX baseline is not part of the `jaxmarl` package on PyPI (the wheel holds
   only `jaxmarl/`: environments, wrappers, viz, tutorials); it is a script in the
   repository's baselines/QLearning/ with flashbax, hydra and wandb. bench_jaxmarl_qmix.py
   runs it from a clone next to our QMIX.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs import make_env
from qtran.envs.jaxmarl_adapter import import_jaxmarl
from qtran.rollout import run_episode
from qtran.run import train

TASK = "MPE_simple_spread_v3"
STEPS = 25  # one episode (our episode_limit; PettingZoo MPE's max_cycles)
TRAIN = ["seeds=3", "steps=20000", "n_envs=8", "updates_per_step=0.25", "batch_size=128", "lr=1e-3",
         "target_update_interval=50", "eval.interval=5000", "eval.episodes=64", "progress=false"]
RUNS = {  # gamma 0.9 for QMIX as JaxMARL's QMIX config for MPE; with 0.99 ours does not learn here
    "qmix (gamma 0.9)": ["algo=qmix", "gamma=0.9"],
    "vdn": ["algo=vdn"],
}


def best_rate(run, n_envs: int, repeats: int = 3) -> float:
    run(jax.random.split(jax.random.PRNGKey(0), n_envs))  # compile
    best = float("inf")
    for r in range(repeats):
        keys = jax.random.split(jax.random.PRNGKey(r + 1), n_envs)
        t0 = time.perf_counter()
        jax.block_until_ready(run(keys))
        best = min(best, time.perf_counter() - t0)
    return n_envs * STEPS / best


def env_only(n_envs: int) -> dict[str, float]:
    jaxmarl = import_jaxmarl()
    ref = jaxmarl.make(TASK)
    agents = list(ref.agents)
    ours = make_env(make_config(["env=jaxmarl", f"env.name={TASK}"]).env)
    n, u = ours.n_agents, ours.n_actions

    def actions_of(key):
        return jax.random.randint(key, (n,), 0, u)

    def jaxmarl_rollout(step_fn):
        def rollout(key):
            k_reset, k_run = jax.random.split(key)
            _, state = ref.reset(k_reset)

            def body(carry, key):
                state, total = carry
                k_act, k_env = jax.random.split(key)
                a = actions_of(k_act)
                obs, state, rew, _, _ = step_fn(k_env, state, {ag: a[i] for i, ag in enumerate(agents)})
                return (state, total + sum(rew[ag] for ag in agents) + obs[agents[0]].sum() * 0.0), None

            (_, total), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(k_run, STEPS))
            return total

        return jax.jit(jax.vmap(rollout))

    def our_rollout(key):
        k_reset, k_run = jax.random.split(key)
        _, state = ours.reset(k_reset)

        def body(carry, key):
            state, total = carry
            k_act, k_env = jax.random.split(key)
            obs, state, reward, _, _ = ours.step(k_env, state, actions_of(k_act))
            return (state, total + reward + obs.sum() * 0.0 + ours.global_state(state).sum() * 0.0), None

        (_, total), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(k_run, STEPS))
        return total

    rates = {
        "JaxMARL env.step (auto-reset)": best_rate(jaxmarl_rollout(ref.step), n_envs),
        "JaxMARL env.step_env (no reset)": best_rate(jaxmarl_rollout(ref.step_env), n_envs),
        "qtran env=jaxmarl adapter": best_rate(jax.jit(jax.vmap(our_rollout)), n_envs),
    }
    try:
        from jaxmarl.wrappers.baselines import CTRolloutManager
    except ImportError as err:
        print(f"  (JaxMARL CTRolloutManager skipped: {err})")
        return rates
    manager = CTRolloutManager(ref, batch_size=n_envs)

    def managed(key):
        k_reset, k_run = jax.random.split(key)
        _, state = manager.batch_reset(k_reset)

        def body(carry, key):
            state, total = carry
            k_act, k_env = jax.random.split(key)
            a = jax.random.randint(k_act, (n, n_envs), 0, u)
            obs, state, rew, _, _ = manager.batch_step(k_env, state, {ag: a[i] for i, ag in enumerate(agents)})
            return (state, total + rew["__all__"] + obs["__all__"].sum(-1) * 0.0), None

        (_, total), _ = jax.lax.scan(body, (state, jnp.zeros(n_envs)), jax.random.split(k_run, STEPS))
        return total

    run = jax.jit(managed)
    run(jax.random.PRNGKey(0))
    best = float("inf")
    for r in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run(jax.random.PRNGKey(r + 1)))
        best = min(best, time.perf_counter() - t0)
    rates["JaxMARL CTRolloutManager (baselines' wrapper)"] = n_envs * STEPS / best
    return rates


def random_return(episodes: int = 2048) -> float:
    cfg = make_config(["algo=vdn", "env=jaxmarl", f"env.name={TASK}"])
    env = make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    params = algo.agents.init(jax.random.PRNGKey(0))
    run = jax.jit(jax.vmap(lambda k: run_episode(env, algo.agents, params, k, 1.0)[1]))
    return float(np.mean(run(jax.random.split(jax.random.PRNGKey(1), episodes))))


def report_training(label: str, summary: dict) -> None:
    curve = np.asarray(summary["eval_curve"]["returns"])
    seeds = len(summary["seeds"])
    rate = summary["steps"] * seeds / summary["train_seconds"]
    print(f"  {label:<34} untrained {curve[0].mean():7.1f}  final {curve[-1].mean():6.1f} "
          f"(per seed {', '.join(f'{x:.1f}' for x in curve[-1])})  compile {summary['compile_seconds']:4.1f} s  "
          f"train {summary['train_seconds']:5.1f} s  {rate:,.0f} env steps/s (all seeds, evaluation included)")


def pettingzoo_only(episodes: int = 200) -> float:
    """One mpe2 simple_spread parallel env stepping in Python, random actions (no adapter)."""
    from qtran.envs.pettingzoo_adapter import load_parallel_env

    env, rng = load_parallel_env("mpe2.simple_spread_v3"), np.random.default_rng(0)
    steps, t0 = 0, time.perf_counter()
    for e in range(episodes):
        env.reset(seed=e)
        while env.agents:
            env.step({a: int(rng.integers(5)) for a in env.agents})
            steps += 1
    return steps / (time.perf_counter() - t0)


def main() -> None:
    jaxmarl = import_jaxmarl()
    print(f"device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}), jax {jax.__version__}, "
          f"jaxmarl {jaxmarl.__version__}")
    for n_envs in (1024, 4096):
        print(f"environment only: {TASK}, {n_envs} envs vmapped, {STEPS}-step episodes, random actions")
        for name, rate in env_only(n_envs).items():
            print(f"  {name:<46} {rate:>12,.0f} steps/s")
    print(f"  {'PettingZoo mpe2 simple_spread_v3, 1 env, Python':<46} {pettingzoo_only():>12,.0f} steps/s")
    print(f"training on {TASK}: {' '.join(TRAIN)}")
    print(f"  uniformly random actions: mean return {random_return():.1f} per episode")
    for label, extra in RUNS.items():
        report_training(f"{label}, env=jaxmarl", train(make_config(
            ["env=jaxmarl", f"env.name={TASK}", *TRAIN, *extra]), write=False))
    host = [o if not o.startswith("steps=") else "steps=6000" for o in TRAIN]
    host = [o if not o.startswith("eval.interval=") else "eval.interval=3000" for o in host]
    report_training("vdn, env=pettingzoo (host loop)", train(make_config(
        ["env=pettingzoo", "env.name=mpe2.simple_spread_v3", "algo=vdn", *host]), write=False))
    print("  (the host-loop run trains 6,000 steps per seed, the compiled ones 20,000)")
    print("JaxMARL's own QMIX baseline: not in the jaxmarl package on PyPI (a repository script "
          "under baselines/QLearning/); not run")


if __name__ == "__main__":
    main()
