"""Drive a training run from Python: chunks, evaluation, progress bar, run directory."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from qtran.algorithms import make_algorithm
from qtran.chunk_metrics import LOSS_KEYS, chunk_means
from qtran.checkpoint import header as ckpt_header
from qtran.checkpoint import history as ckpt_history
from qtran.checkpoint import list_checkpoints, load_latest, restore, save
from qtran.config import load_config, make_config
from qtran.devices import RunLayout, pad_runs, place, real_runs, run_layout
from qtran.envs import Env, make_env
from qtran.errors import Interrupted, TrainingDiverged, UserError
from qtran.igm import check_igm
from qtran.results import RunWriter, default_out, prepare_run_dir, run_ids, save_params
from qtran.run_notices import announce, compiling_done, compiling_started, say, summary_fields
from qtran.runtime import describe_devices
from qtran.runtime import setup as setup_jax
from qtran.train import Trainer, table_function

CHECKPOINTS = "checkpoints"  # sub-directory of a run directory
MAX_TABLE_CELLS = 4096  # joint Q tables (|U|^N cells) only for games this small


def save_table_history(path, steps: list[int], snapshots: list[dict], ids: dict | None = None) -> None:
    """tables.npz: `steps[E]`, per table name an array [E, runs, ...], and `ids` (the runs'
    seeds and env values, `results.run_ids`) (no pickle)."""
    arrays = {name: np.stack([s[name] for s in snapshots]) for name in snapshots[0]}
    np.savez_compressed(path, steps=np.asarray(steps), **(ids or {}), **arrays)


def train(cfg: DictConfig | list[str] | None = None, write: bool = True, desc: str | None = None,
          position: int | None = None, env: Env | None = None, overwrite: bool = False) -> dict:
    """Train cfg.seeds seeds together and return the run's summary (also written to disk).

    `cfg` is a config from `make_config`, or a list of `key=value` overrides. An `out` that
    already holds a run (finished or interrupted) is refused with a UserError, as by
    `qtran train`; `overwrite=True` empties it first (only if it holds nothing but run files).
    """
    return fit(cfg, write=write, desc=desc, position=position, env=env, overwrite=overwrite)[1]


def fit(cfg: DictConfig | list[str] | None = None, write: bool = True, desc: str | None = None,
        position: int | None = None, env: Env | None = None, overwrite: bool = False):
    """As `train`, returning (final seed-batched TrainState, summary).

    `env` trains on an environment object of your own instead of the one `cfg.env` names.
    """
    from qtran.results import claim_run_dir, empty_run_dir

    if cfg is None or isinstance(cfg, (list, tuple)):
        cfg = make_config(list(cfg or []))
    if write and cfg.out and claim_run_dir(cfg.out, overwrite=overwrite):  # never over a run silently
        empty_run_dir(cfg.out)
    setup_jax(cfg.compile_cache)  # before JAX starts or compiles: devices per core, cache
    if env is None and cfg.env.name == "pettingzoo":  # steps in Python: see qtran.host_loop
        from qtran.host_loop import fit_host
        return fit_host(cfg, write=write, desc=desc, position=position)
    run_dir = None
    if write:
        run_dir = prepare_run_dir(cfg.out or default_out(cfg.algo, (env.name if env else cfg.env.name)))
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        for old in list_checkpoints(run_dir / CHECKPOINTS):  # a new run in an old directory
            old[1].unlink()
    return _fit(cfg, env, run_dir, desc, position, resume=False)


def resume(run_dir: str | Path, desc: str | None = None, position: int | None = None,
           env: Env | None = None) -> dict:
    """Continue an interrupted run from its newest intact checkpoint and return its summary.

    The finished run's metrics, evaluations and parameters equal those of a run never
    interrupted. Without any checkpoint (killed before the first one) it starts over.
    """
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        raise UserError(f"{run_dir} has already finished (summary.json exists); nothing to resume")
    cfg = load_config(run_dir)
    cfg.out = str(run_dir)
    setup_jax(cfg.compile_cache)
    return _fit(cfg, env, run_dir, desc, position, resume=True)[1]


def config_hash(cfg: DictConfig) -> str:
    """What a checkpoint must have been trained with: the config less where and how it prints."""
    data = OmegaConf.to_container(cfg)
    for key in ("out", "progress", "tensorboard", "compile_cache"):
        data.pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class History:
    """The evaluations so far (Python-side state that checkpoints carry with the TrainState)."""

    def __init__(self):
        self.steps: list[int] = []
        self.returns: list[np.ndarray] = []  # per evaluation: mean greedy return per run
        self.episodes: list[np.ndarray] = []  # per evaluation: [runs, eval.episodes]
        self.tables: list[dict] = []  # per evaluation of a single-state game: learned tables

    def arrays(self, count: int) -> dict[str, np.ndarray]:
        """The first `count` evaluations as arrays (a Ctrl-C may land mid-evaluation)."""
        out = {"steps": np.asarray(self.steps[:count]), "returns": np.stack(self.returns[:count]),
               "episodes": np.stack(self.episodes[:count])}
        if self.tables:
            out.update({f"tables/{k}": np.stack([t[k] for t in self.tables[:count]]) for k in self.tables[0]})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> History:
        h = cls()
        h.steps = [int(s) for s in arrays["steps"]]
        h.returns = list(arrays["returns"])
        h.episodes = list(arrays["episodes"])
        names = [k[len("tables/"):] for k in arrays if k.startswith("tables/")]
        # none recorded (not a single-state game): stay empty, or a resumed run would write tables.npz
        h.tables = [{n: arrays[f"tables/{n}"][e] for n in names} for e in range(len(h.steps))] if names else []
        return h


def non_finite_loss(metrics: dict) -> str | None:
    """A description of the first NaN or infinite loss of a chunk, or None if all are finite."""
    trained = np.asarray(metrics["trained"]) & np.asarray(metrics["active"])[:, None]  # [iters, runs]
    for name in LOSS_KEYS:
        if name not in metrics:
            continue
        bad = ~np.isfinite(np.asarray(metrics[name], dtype=float)) & trained
        if bad.any():
            it, run = map(int, np.argwhere(bad)[0])
            return f"{name} is {float(np.asarray(metrics[name])[it, run])} (run {run})"
    return None


def _fit(cfg: DictConfig, env: Env | None, run_dir: Path | None, desc, position, resume: bool):
    env = env or make_env(cfg.env)
    algo = make_algorithm(cfg, env)
    trainer = Trainer(cfg, env, algo)
    seed_range = range(cfg.seed, cfg.seed + cfg.seeds)
    seeds, env_values = trainer.runs(seed_range)  # checks env_values
    sched = trainer.schedule
    n_runs = len(seeds)
    layout = run_layout(n_runs) if cfg.shard else RunLayout(None, 0)
    sharding = layout.sharding
    if cfg.progress:
        line = describe_devices(n_runs, layout.devices, cfg.shard, layout.padding)
        tqdm.write(f"{desc.strip() + ': ' if desc else ''}{line}", file=sys.stderr)

    def real(tree, axis: int = 0):  # what is written and returned: the padding runs dropped
        return tree if layout.padding == 0 else real_runs(tree, n_runs, axis)

    warnings = announce(cfg, sched, desc)
    compile_clock = compiling_started(cfg, desc)
    fresh = trainer.init_runs(seed_range)  # the real runs: the shapes a checkpoint holds
    states = place(pad_runs(fresh, layout.padding), sharding)
    ckpt_dir = None if run_dir is None or cfg.checkpoint.every == 0 else run_dir / CHECKPOINTS
    digest = config_hash(cfg)

    history, first_chunk = History(), 0
    found = load_latest(run_dir / CHECKPOINTS, digest) if resume else None
    if found is not None:
        arrays, path = found
        states = place(pad_runs(restore(arrays, fresh, path), layout.padding), sharding)  # fresh: shapes only
        history = History.from_arrays(ckpt_history(arrays))
        first_chunk = ckpt_header(arrays)["chunk"] + 1
    del fresh  # (a whole replay buffer)
    if resume:  # said whatever `progress` is: where the run goes on from, or that it starts over
        say(f"resuming {run_dir} from step {history.steps[-1]} (chunk {first_chunk} of {sched.n_chunks})"
            if found is not None else f"no checkpoint in {run_dir / CHECKPOINTS}: training it from step 0", desc)
    writer = None
    if run_dir is not None:
        resume_step = history.steps[-1] if history.steps else None
        writer = RunWriter(run_dir, tensorboard=cfg.tensorboard, resume_step=resume_step)
    trainer.compile(states)

    small = env.n_actions**env.n_agents <= MAX_TABLE_CELLS
    record_tables = env.single_state and small
    tables_of = table_function(algo, env, joint_tables=small, seeds=seeds) if env.single_state else None

    def evaluate(index: int, step: int, extra: dict | None = None) -> np.ndarray:
        episodes = np.asarray(trainer.evaluate(states, index))[:n_runs]  # [runs, eval.episodes]
        returns = episodes.mean(-1)
        history.steps.append(step)
        history.returns.append(returns)
        history.episodes.append(episodes)
        if record_tables:  # learned tables at every evaluation, for figures of their evolution
            history.tables.append(tables_of(real(states.params)))
        if writer is not None:
            writer.log(step, seeds, dict(extra or {}, eval_return=returns), env_values)
        return returns

    def checkpoint(chunk: int, done_states, evaluations: int) -> None:
        if ckpt_dir is not None:
            save(ckpt_dir, chunk, real(done_states), history.arrays(evaluations), {"config_hash": digest},
                 keep=cfg.checkpoint.keep)

    t0 = time.perf_counter()
    if first_chunk == 0:
        evaluate(0, 0)
    startup_seconds = compiling_done(cfg, compile_clock, desc)  # with the step-0 evaluation, which compiles its program
    total_steps = sched.total_iters * sched.steps_per_iter
    bar = tqdm(total=total_steps, initial=history.steps[-1], desc=desc or f"{cfg.algo} {env.name}",
               unit="step", disable=None if cfg.progress else True, dynamic_ncols=True, leave=True,
               position=position)
    saved = first_chunk - 1  # the newest chunk whose state is on disk
    done = (first_chunk - 1, states, len(history.steps))  # newest complete chunk, its evaluations
    try:
        for c in range(first_chunk, sched.n_chunks):
            states, metrics = trainer.chunk(states, jnp.int32(c * sched.chunk_iters))
            metrics = real(jax.device_get(metrics), axis=1)  # [iterations, runs, ...]
            problem = non_finite_loss(metrics)
            if problem is not None:
                where = "" if saved < 0 else f"; the last good checkpoint is chunk {saved + 1} in {ckpt_dir}"
                raise TrainingDiverged(f"training stopped: {problem} in the chunk ending at step "
                                       f"{min((c + 1) * sched.chunk_iters, sched.total_iters) * sched.steps_per_iter}"
                                       f"{where}")
            step = min((c + 1) * sched.chunk_iters, sched.total_iters) * sched.steps_per_iter
            returns = evaluate(c + 1, step, chunk_means(metrics))
            done = (c, states, len(history.steps))
            if (c + 1) % max(cfg.checkpoint.every, 1) == 0 or c == sched.n_chunks - 1:
                checkpoint(*done)
                saved = c
            bar.update(step - bar.n)
            bar.set_postfix(eval_return=f"{returns.mean():.3g}")
    except KeyboardInterrupt:
        if done[0] > saved and ckpt_dir is not None:  # Ctrl-C: keep what is complete
            checkpoint(*done)
            saved = done[0]
        if writer is not None:
            writer.close()
            kept = saved >= 0 and ckpt_dir is not None
            step = min((saved + 1) * sched.chunk_iters, sched.total_iters) * sched.steps_per_iter
            raise Interrupted(run_dir, saved + 1 if kept else None, step if kept else None) from None
        raise
    finally:
        bar.close()
    jax.block_until_ready(states)
    train_seconds = time.perf_counter() - t0
    returns = history.returns[-1]

    summary = {
        "algo": cfg.algo,
        "env": env.name,
        "seeds": seeds,  # one entry per run (the batch axis)
        "steps": total_steps,
        "final_eval_return": returns.tolist(),
        "eval_curve": {"steps": history.steps, "returns": np.stack(history.returns).tolist()},
        "compile_seconds": trainer.compile_seconds,  # the training program alone
        "startup_seconds": startup_seconds,  # what "compiled in" said: with initialising, first evaluation
        "train_seconds": train_seconds,  # of this process (since the resume, if resumed)
        "resumed_from_chunk": first_chunk if first_chunk else None,
        "device": jax.devices()[0].platform,
        "devices": layout.devices,
        "padding_runs": layout.padding,  # copies of run 0 trained beside them to fill the devices
        "devices_available": jax.device_count(),  # of the platform; see qtran.runtime
        # the environment's scalar reference values (optimum, pitfall), for figures
        "env_reference": {k: v for k, v in env.meta.items() if isinstance(v, (int, float)) or v is None},
        **summary_fields(sched, warnings),
    }
    if cfg.env_values is not None:
        summary["env_value_name"] = env.value_name
        summary["env_values"] = env_values  # one entry per run, beside `seeds`
    if env.run_info is not None:  # each run's draw of the game (Gaussian squeeze: s, what it allows)
        summary["env_runs"] = env_runs(env, seeds)
    if env.single_state:
        summary.update(single_state_summary(env, tables_of(real(states.params))))
    if writer is not None:
        ids = run_ids(seeds, env_values)  # every per-run file says which run each entry is
        save_params(writer.path / "params.npz", real(states.params), ids)  # per run, for eval and render
        np.savez_compressed(writer.path / "eval_episodes.npz", steps=np.asarray(history.steps),
                            returns=np.stack(history.episodes), **ids)
        if history.tables:
            save_table_history(writer.path / "tables.npz", history.steps, history.tables, ids)
        summary["run_dir"] = str(writer.path)
        writer.write_summary(summary)
        writer.close()
    return real(states), summary


def env_runs(env, seeds) -> list[dict]:
    """env.run_info of every run, from its seed's run key (the key the trainer drew with)."""
    from qtran.train import run_key_of_seed

    return [env.run_info(run_key_of_seed(seed)) for seed in seeds]


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
        out.update(payoff_fields(payoff, env.meta.get("payoff_source")))
    return out


def payoff_fields(payoff: np.ndarray, source: str | None) -> dict:
    """summary.json's record of a matrix game: the payoff itself only when it is small (a 2^20-
    cell payoff made an 88 MB summary), else its shape and where the full one is; the optimal
    joint actions when there are few."""
    optima = np.argwhere(payoff == payoff.max())
    out = {"payoff_shape": list(payoff.shape), "payoff_optimum": float(payoff.max())}
    if payoff.size <= MAX_TABLE_CELLS:
        out["payoff"] = payoff
    else:
        out["payoff_source"] = (f"{payoff.size:,} cells, more than {MAX_TABLE_CELLS:,}: not copied here; "
                                f"the full payoff is env.payoff of config.yaml ({source or 'not recorded'})")
    if len(optima) <= MAX_TABLE_CELLS:
        out["optimal_joint_actions"] = [list(map(int, u)) for u in optima]
    return out
