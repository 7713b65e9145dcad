"""Load a trained policy back from its run directory (config.yaml + params.npz)."""

from __future__ import annotations

from pathlib import Path

import jax

from qtran.algorithms import make_algorithm
from qtran.config import load_config
from qtran.envs import make_env
from qtran.errors import UserError
from qtran.results import load_params, read_summary
from qtran.runtime import setup as setup_jax
from qtran.train import run_key_of_seed


def load_all(run_dir: str | Path):
    """(cfg, env, algorithm, params with a leading run axis, summary) of a finished run."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    setup_jax(cfg.compile_cache)
    summary = read_summary(run_dir)
    env = make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    template = jax.eval_shape(lambda k: {"agent": algo.agents.init(k), "mixer": algo.init_mixer(k)},
                              jax.random.PRNGKey(0))
    return cfg, env, algo, load_params(run_dir / "params.npz", template), summary


def evaluate_saved(run_dir: str | Path, episodes: int, seed: int = 0):
    """Greedy returns of every saved run: float[runs, episodes], each agent acting on its own Q_i."""
    import jax.numpy as jnp

    from qtran.rollout import run_episode

    cfg, env, algo, params, summary = load_all(run_dir)
    values = summary.get("env_values")
    values = jnp.asarray(values if values is not None else [0.0] * len(summary["seeds"]), jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)

    run_keys = jnp.stack([run_key_of_seed(s) for s in summary["seeds"]])

    def one_run(agent_params, value, run_key):
        reset = run_reset(env, summary, value, run_key)
        return jax.vmap(lambda k: run_episode(env, algo.agents, agent_params, k, 0.0, reset)[1])(keys)

    returns = jax.jit(jax.vmap(one_run))(params["agent"], values, run_keys)
    return summary, returns


def run_reset(env, summary: dict, value, run_key):
    """One run's reset: the environment's own, with the run's batched value, or with its run key
    (a game drawn per run); as the trainer resets that run."""
    if env.reset_for_run is not None:
        return lambda key: env.reset_for_run(key, run_key)
    if summary.get("env_values") is not None:
        return lambda key: env.reset_with_value(key, value)
    return None


def load_policy(run_dir: str | Path, run: int = 0):
    """(cfg, env, algorithm, params of run `run`, that run's env reset or None, its seed)."""
    cfg, env, algo, all_params, summary = load_all(run_dir)
    n_runs = len(summary["seeds"])
    if not 0 <= run < n_runs:
        raise UserError(f"run={run} is out of range: {run_dir} holds runs 0..{n_runs - 1}")
    params = jax.tree.map(lambda x: x[run], all_params)
    values = summary.get("env_values")
    value = None if values is None else values[run]
    reset = run_reset(env, summary, value, run_key_of_seed(summary["seeds"][run]))
    return cfg, env, algo, params, reset, summary["seeds"][run]
