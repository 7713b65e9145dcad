"""Drive a training run from Python: chunks, evaluation, progress bar, run directory."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs import Env, make_env
from qtran.igm import check_igm
from qtran.results import RunWriter, default_out, prepare_run_dir, save_params
from qtran.train import Trainer, table_function

LOSS_KEYS = ("loss", "loss_td", "loss_opt", "loss_nopt")
MAX_TABLE_CELLS = 4096  # joint Q tables (|U|^N cells) only for games this small


def save_table_history(path, steps: list[int], snapshots: list[dict]) -> None:
    """tables.npz: `steps[E]` and, per table name, an array [E, seeds, ...] (no pickle)."""
    arrays = {name: np.stack([s[name] for s in snapshots]) for name in snapshots[0]}
    np.savez_compressed(path, steps=np.asarray(steps), **arrays)


def _chunk_means(metrics: dict) -> dict[str, np.ndarray]:
    """Per-seed means over the iterations of a chunk that ran (and, for losses, updated)."""
    active = np.asarray(metrics["active"])[:, None]
    trained = np.asarray(metrics["trained"]) & active
    out = {}
    for name in ("train_return", "epsilon") + LOSS_KEYS:
        if name not in metrics:
            continue
        values = np.asarray(metrics[name], dtype=float)
        use = trained if name in LOSS_KEYS else np.broadcast_to(active, values.shape)
        count = use.sum(0)
        out[name] = np.where(count > 0, (values * use).sum(0) / np.maximum(count, 1), np.nan)
    return out


def train(cfg: DictConfig | list[str] | None = None, write: bool = True, desc: str | None = None,
          position: int | None = None, env: Env | None = None) -> dict:
    """Train cfg.seeds seeds together and return the run's summary (also written to disk).

    `cfg` is a config from `make_config`, or a list of `key=value` overrides.
    """
    return fit(cfg, write=write, desc=desc, position=position, env=env)[1]


def fit(cfg: DictConfig | list[str] | None = None, write: bool = True, desc: str | None = None,
        position: int | None = None, env: Env | None = None):
    """As `train`, returning (final seed-batched TrainState, summary).

    `env` trains on an environment object of your own instead of the one `cfg.env` names.
    """
    if cfg is None or isinstance(cfg, (list, tuple)):
        cfg = make_config(list(cfg or []))
    env = env or make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    trainer = Trainer(cfg, env, algo)
    seeds, env_values = trainer.runs(range(cfg.seed, cfg.seed + cfg.seeds))  # checks env_values
    writer = None
    if write:
        out = cfg.out or default_out(cfg.algo, env.name)
        run_dir = prepare_run_dir(out)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        writer = RunWriter(run_dir, tensorboard=cfg.tensorboard)

    sched = trainer.schedule
    states = trainer.init_runs(range(cfg.seed, cfg.seed + cfg.seeds))
    trainer.compile(states)

    curve_steps, curve_returns, episode_returns, snapshots = [], [], [], []
    small = env.n_actions**env.n_agents <= MAX_TABLE_CELLS
    record_tables = env.single_state and small
    tables_of = table_function(algo, env, joint_tables=small) if env.single_state else None

    def evaluate(index: int, step: int, extra: dict | None = None) -> np.ndarray:
        episodes = np.asarray(trainer.evaluate(states, index))  # [seeds, eval.episodes]
        returns = episodes.mean(-1)
        curve_steps.append(step)
        curve_returns.append(returns)
        episode_returns.append(episodes)
        if record_tables:  # learned tables at every evaluation, for figures of their evolution
            snapshots.append(tables_of(states.params))
        if writer is not None:
            writer.log(step, seeds, dict(extra or {}, eval_return=returns))
        return returns

    t0 = time.perf_counter()
    returns = evaluate(0, 0)
    total_steps = sched.total_iters * sched.steps_per_iter
    bar = tqdm(total=total_steps, desc=desc or f"{cfg.algo} {env.name}", unit="step",
               disable=None if cfg.progress else True, dynamic_ncols=True, leave=True, position=position)
    for c in range(sched.n_chunks):
        states, metrics = trainer.chunk(states, jnp.int32(c * sched.chunk_iters))
        done_iters = min((c + 1) * sched.chunk_iters, sched.total_iters)
        step = done_iters * sched.steps_per_iter
        returns = evaluate(c + 1, step, _chunk_means(jax.device_get(metrics)))
        bar.update(step - bar.n)
        bar.set_postfix(eval_return=f"{returns.mean():.3g}")
    bar.close()
    jax.block_until_ready(states)
    train_seconds = time.perf_counter() - t0

    summary = {
        "algo": cfg.algo,
        "env": env.name,
        "seeds": seeds,  # one entry per run (the batch axis)
        "steps": total_steps,
        "final_eval_return": returns.tolist(),
        "eval_curve": {"steps": curve_steps, "returns": np.stack(curve_returns).tolist()},
        "compile_seconds": trainer.compile_seconds,
        "train_seconds": train_seconds,
        "device": jax.devices()[0].platform,
        # the environment's scalar reference values (optimum, pitfall), for figures
        "env_reference": {k: v for k, v in env.meta.items() if isinstance(v, (int, float)) or v is None},
    }
    if cfg.env_values is not None:
        summary["env_value_name"] = env.value_name
        summary["env_values"] = env_values  # one entry per run, beside `seeds`
    if env.single_state:
        summary.update(single_state_summary(env, tables_of(states.params)))
    if writer is not None:
        save_params(writer.path / "params.npz", states.params)  # per run, for eval and render
        np.savez_compressed(writer.path / "eval_episodes.npz", steps=np.asarray(curve_steps),
                            returns=np.stack(episode_returns))
    if writer is not None and snapshots:
        save_table_history(writer.path / "tables.npz", curve_steps, snapshots)
    if writer is not None:
        summary["run_dir"] = str(writer.path)
        writer.write_summary(summary)
        writer.close()
    return states, summary


def single_state_summary(env, tables: dict) -> dict:
    q_i = tables["q_i"]
    greedy = [[int(a) for a in np.argmax(q, axis=-1)] for q in q_i]
    out = {"greedy_joint_actions": greedy, "tables": tables}
    if "q_jt" in tables:
        out["tables"]["q_prime_minus_q_jt"] = tables["q_prime_jt"] - tables["q_jt"]
        v = tables.get("v")
        out["igm"] = [
            check_igm(q_i[s], tables["q_jt"][s], None if v is None else float(v[s])).to_dict()
            for s in range(len(q_i))
        ]
    payoff = env.meta.get("payoff")
    if payoff is not None:
        out["payoff"] = payoff
        out["optimal_joint_actions"] = [list(map(int, u)) for u in np.argwhere(payoff == payoff.max())]
    return out
