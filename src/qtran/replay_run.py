"""Load a trained policy back from its run directory (config.yaml + params.npz)."""

from __future__ import annotations

from pathlib import Path

import jax

from qtran.algorithms import make_algorithm
from qtran.config import load_config
from qtran.envs import make_env
from qtran.errors import UserError
from qtran.results import load_params, read_summary


def load_policy(run_dir: str | Path, run: int = 0):
    """(cfg, env, algorithm, params of run `run`, that run's env reset or None, its seed)."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    summary = read_summary(run_dir)
    n_runs = len(summary["seeds"])
    if not 0 <= run < n_runs:
        raise UserError(f"run={run} is out of range: {run_dir} holds runs 0..{n_runs - 1}")
    env = make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    template = jax.eval_shape(lambda k: {"agent": algo.agents.init(k), "mixer": algo.init_mixer(k)},
                              jax.random.PRNGKey(0))
    params = jax.tree.map(lambda x: x[run], load_params(run_dir / "params.npz", template))
    reset = None
    values = summary.get("env_values")
    if values is not None:
        value = values[run]
        reset = lambda key: env.reset_with_value(key, value)  # noqa: E731
    return cfg, env, algo, params, reset, summary["seeds"][run]
