"""Training on environments that step in Python (PettingZoo's parallel API).

The compiled trainer (`qtran.train.Trainer`) scans whole iterations, environment included,
inside one jitted program; a Python environment cannot be traced into it. Here only the
environment leaves the compiled world:

- the networks, optimiser, replay buffer and loss are the `Trainer`'s own (its `_init_one`,
  `_sample` and `_update`), vmapped over the runs (seeds) as there;
- each environment step is one jitted call that picks every run's and every environment's
  actions at once (epsilon-greedy over available actions, from each agent's own Q_i);
- the Python environments step on the host, and the finished episodes, padded to
  `episode_limit` like the compiled rollout's, are written into replay by one jitted call;
- the updates of an iteration are one jitted `lax.scan`, as in the Trainer.

The schedule is the Trainer's (`Schedule.from_config`): an iteration runs `n_envs` episodes
per run, counts `n_envs * episode_limit` environment steps whether or not episodes end
early, acts uniformly at random during the warm-up, anneals epsilon the same way and
copies the target network every `target_update_interval` updates. Evaluation runs
`eval.episodes` greedy episodes per run, at step 0 and after every `eval.interval` steps.

Environments are seeded from (run seed, episode number): training episode j of the run with
seed s resets with a seed drawn from numpy's SeedSequence((s, 0, j)), evaluation episode e
of evaluation k from SeedSequence((s, 1, k, e)); so two algorithms trained with the same
seeds see the same evaluation episodes.

`fit_host` writes the same run directory as `qtran.run.fit` (config.yaml, metrics.csv,
TensorBoard events, params.npz, eval_episodes.npz, summary.json with the same keys). It has
no checkpoints, so such runs cannot be resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from qtran.algorithms import Algorithm, Batch, make_algorithm
from qtran.chunk_metrics import chunk_means
from qtran.config import make_config
from qtran.envs import Env, make_env
from qtran.errors import UserError
from qtran.replay import add, empty_episode, time_limit_terminal
from qtran.results import RunWriter, default_out, prepare_run_dir, run_ids, save_params
from qtran.rollout import epsilon_greedy
from qtran.run_notices import announce, compiling_done, compiling_started, summary_fields
from qtran.train import Trainer, TrainState, epsilon


def _reset_seed(*entropy: int) -> int:
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


class HostTrainer:
    """Jitted pieces around host-side environments; all take run-batched TrainStates."""

    def __init__(self, cfg, env: Env, algo: Algorithm, make_adapter: Callable[[], Any]):
        if cfg.env_values is not None:
            raise UserError("env_values: host-side environments have no setting that can be batched")
        self.cfg, self.env, self.algo = cfg, env, algo
        self.trainer = Trainer(cfg, env, algo)
        self.schedule = self.trainer.schedule
        self.make_adapter = make_adapter
        self.compile_seconds = 0.0
        self._acts: dict[int, Any] = {}  # episodes per run -> compiled action selection
        self._store = jax.jit(jax.vmap(self._store_one), donate_argnums=0)
        self._learn = jax.jit(self._learn_runs, donate_argnums=0)
        self._keys = jax.jit(jax.vmap(lambda key: tuple(jax.random.split(key, 3))))
        self._loss_shapes: dict = {}
        self._pool: list[list[Any]] = []

    # ---- jitted pieces -----------------------------------------------------------------
    def _act_runs(self, agent_params, carry, obs, avail, keys, t, eps):
        """carry[R, E, N, H], obs[R, E, N, D], avail[R, E, N, U], keys[R] -> (actions[R, E, N], carry)."""
        agents = self.algo.agents

        def one(params, carry, obs, avail, key):
            carry, q, _ = agents.step(params, carry, obs)
            ks = jax.random.split(jax.random.fold_in(key, t), obs.shape[0])
            actions = jax.vmap(epsilon_greedy, in_axes=(0, 0, 0, None))(ks, q, avail, eps)
            return actions.astype(jnp.int32), carry

        return jax.vmap(one)(agent_params, carry, obs, avail, keys)

    def _store_one(self, state: TrainState, episodes: Batch) -> TrainState:
        if self.cfg.time_limit == "terminal":
            episodes = time_limit_terminal(episodes)
        return state._replace(buffer=add(state.buffer, episodes))

    def _learn_runs(self, states: TrainState, keys, first_update):
        """updates_per_iter gradient updates per run (the Trainer's _update), as one scan."""
        def per_run(state, key):
            def one(state, k):
                sync = (first_update + k + 1) % self.cfg.target_update_interval == 0
                return self.trainer._update(state, jax.random.fold_in(key, k), sync)

            state, metrics = jax.lax.scan(one, state, jnp.arange(self.schedule.updates_per_iter))
            return state, jax.tree.map(jnp.mean, metrics)

        return jax.vmap(per_run)(states, keys)

    def compile(self, states: TrainState) -> None:
        """Compile ahead of time (so compile time is reported apart) and fix the argument types."""
        t0 = time.perf_counter()
        runs, agents, keys = len(states.key), self.algo.agents, states.key
        n, u, d = self.env.n_agents, self.env.n_actions, self.env.obs_dim
        struct = jax.ShapeDtypeStruct
        for count in sorted({self.cfg.n_envs, self.cfg.eval.episodes}):
            self._acts[count] = jax.jit(self._act_runs).lower(
                states.params["agent"], agents.initial_carry((runs, count)),
                struct((runs, count, n, d), jnp.float32), struct((runs, count, n, u), jnp.bool_),
                keys, jnp.int32(0), jnp.float32(0)).compile()
        episodes = jax.eval_shape(lambda: jax.tree.map(
            lambda x: jnp.zeros((runs, self.cfg.n_envs) + x.shape, x.dtype), empty_episode(self.env)))
        self._store = jax.jit(jax.vmap(self._store_one), donate_argnums=0).lower(states, episodes).compile()
        learn = jax.jit(self._learn_runs, donate_argnums=0).lower(states, keys, jnp.int32(0))
        self._learn = learn.compile()
        self._loss_shapes = learn.out_info[1]  # the warm-up's zero losses (no second trace)
        e = max(self.cfg.n_envs, self.cfg.eval.episodes)
        self._pool = [[self.make_adapter() for _ in range(e)] for _ in range(runs)]
        self.compile_seconds = time.perf_counter() - t0

    # ---- episodes on the host ------------------------------------------------------------
    def episodes(self, states: TrainState, keys, eps: float, count: int, seed_of) -> tuple[Batch, np.ndarray]:
        """`count` episodes per run, in lockstep: (Batch with leaves [R, count, ...], returns[R, count]).

        `seed_of(r, e)` is the reset seed of run r's episode e. Padding after an episode's end
        repeats its last observation, state and available actions (a frozen environment, as in
        the compiled rollout), masked out of every loss.
        """
        runs, t_max = len(self._pool), self.env.episode_limit
        n, u, d, s = self.env.n_agents, self.env.n_actions, self.env.obs_dim, self.env.state_dim
        obs = np.zeros((runs, count, t_max + 1, n, d), np.float32)
        gstate = np.zeros((runs, count, t_max + 1, s), np.float32)
        avail = np.zeros((runs, count, t_max + 1, n, u), bool)
        actions = np.zeros((runs, count, t_max, n), np.int32)
        reward = np.zeros((runs, count, t_max), np.float32)
        terminated = np.zeros((runs, count, t_max), bool)
        mask = np.zeros((runs, count, t_max), bool)
        length = np.full((runs, count), t_max)
        for r in range(runs):
            for e in range(count):
                obs[r, e, 0], gstate[r, e, 0], avail[r, e, 0] = self._pool[r][e].reset(seed=seed_of(r, e))
        running = np.ones((runs, count), bool)
        carry = self.algo.agents.initial_carry((runs, count))
        params, eps, act = states.params["agent"], jnp.float32(eps), self._acts[count]
        for t in range(t_max):
            chosen, carry = act(params, carry, obs[:, :, t], avail[:, :, t], keys, jnp.int32(t), eps)
            chosen = np.asarray(chosen)
            for r, e in zip(*np.nonzero(running)):
                env = self._pool[r][e]
                o, g, a, rew, term, ended = env.step(chosen[r, e])
                obs[r, e, t + 1], gstate[r, e, t + 1], avail[r, e, t + 1] = o, g, a
                # time_limit=terminal: the environment's own truncation ends the task too
                term = term or (ended and self.cfg.time_limit == "terminal")
                actions[r, e, t], reward[r, e, t], terminated[r, e, t], mask[r, e, t] = chosen[r, e], rew, term, True
                if ended:
                    running[r, e] = False
                    length[r, e] = t + 1
            if not running.any():
                break
        for r, e in zip(*np.nonzero(length < t_max)):  # freeze what comes after the end
            end = length[r, e]
            obs[r, e, end + 1:], gstate[r, e, end + 1:], avail[r, e, end + 1:] = \
                obs[r, e, end], gstate[r, e, end], avail[r, e, end]
        batch = Batch(obs=obs, state=gstate, avail=avail, actions=actions, reward=reward,
                      terminated=terminated, mask=mask)
        return batch, reward.sum(-1)

    def evaluate(self, states: TrainState, index: int, seeds: list[int]) -> np.ndarray:
        """Returns [R, eval.episodes] of greedy episodes (eps = 0)."""
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(states.eval_key, index)
        _, returns = self.episodes(states, keys, 0.0, self.cfg.eval.episodes,
                                   lambda r, e: _reset_seed(seeds[r], 1, index, e))
        return returns

    def iteration(self, states: TrainState, it: int, seeds: list[int]):
        """One iteration (collect n_envs episodes per run, then update): (states, metrics)."""
        s, cfg = self.schedule, self.cfg
        training = it >= s.first_train_iter
        eps = float(epsilon(cfg, it * s.steps_per_iter)) if training else 1.0
        key, k_collect, k_update = self._keys(states.key)
        states = states._replace(key=key)
        batch, returns = self.episodes(states, k_collect, eps, cfg.n_envs,
                                       lambda r, e: _reset_seed(seeds[r], 0, it * cfg.n_envs + e))
        states = self._store(states, jax.tree.map(jnp.asarray, batch))
        runs = len(seeds)
        if training:
            states, losses = self._learn(states, k_update, jnp.int32((it - s.first_train_iter) * s.updates_per_iter))
            losses = {k: np.asarray(v, float) for k, v in losses.items()}
        else:
            losses = {k: np.zeros(v.shape, float) for k, v in self._loss_shapes.items()}
        metrics = dict(losses, train_return=returns.mean(-1), epsilon=np.full(runs, eps),
                       trained=np.full(runs, training))
        return states, metrics

    def close(self) -> None:
        for row in self._pool:
            for env in row:
                env.close()


def _stack(per_iter: list[dict]) -> dict[str, np.ndarray]:
    """Per-iteration metrics as the compiled chunk returns them: [iters, R], active [iters]."""
    out = {k: np.stack([m[k] for m in per_iter]) for k in per_iter[0]}
    out["active"] = np.ones(len(per_iter), bool)
    return out


def fit_host(cfg: DictConfig | list[str] | None = None, write: bool = True, desc: str | None = None,
             position: int | None = None):
    """`qtran.run.fit` for a host-side environment: (final run-batched TrainState, summary)."""

    if cfg is None or isinstance(cfg, (list, tuple)):
        cfg = make_config(list(cfg or []))
    env = make_env(cfg.env)
    make_adapter = env.meta.get("make_adapter")
    if make_adapter is None:
        raise UserError(f"{env.name} is not a host-side environment; train it with qtran.run.fit")
    algo = make_algorithm(cfg, env)
    host = HostTrainer(cfg, env, algo, make_adapter)
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    sched = host.schedule
    writer = None
    if write:
        run_dir = prepare_run_dir(cfg.out or default_out(cfg.algo, env.name))
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        writer = RunWriter(run_dir, tensorboard=cfg.tensorboard)

    warnings = announce(cfg, sched, desc)
    compile_clock = compiling_started(cfg, desc)
    states = host.trainer.init_runs(seeds)
    host.compile(states)
    steps, curve, episodes = [], [], []

    def evaluate(index: int, step: int, extra: dict | None = None) -> np.ndarray:
        per_episode = host.evaluate(states, index, seeds)
        returns = per_episode.mean(-1)
        steps.append(step)
        curve.append(returns)
        episodes.append(per_episode)
        if writer is not None:
            writer.log(step, seeds, dict(extra or {}, eval_return=returns))
        return returns

    t0 = time.perf_counter()
    returns = evaluate(0, 0)
    compiling_done(cfg, compile_clock, desc)  # with the step-0 evaluation
    total_steps = sched.total_iters * sched.steps_per_iter
    bar = tqdm(total=total_steps, desc=desc or f"{cfg.algo} {env.name}", unit="step",
               disable=None if cfg.progress else True, dynamic_ncols=True, leave=True, position=position)
    try:
        for c in range(sched.n_chunks):
            per_iter = []
            for it in range(c * sched.chunk_iters, min((c + 1) * sched.chunk_iters, sched.total_iters)):
                states, metrics = host.iteration(states, it, seeds)
                per_iter.append(metrics)
            step = min((c + 1) * sched.chunk_iters, sched.total_iters) * sched.steps_per_iter
            returns = evaluate(c + 1, step, chunk_means(_stack(per_iter)))
            bar.update(step - bar.n)
            bar.set_postfix(eval_return=f"{returns.mean():.3g}")
    finally:
        bar.close()
        host.close()
    jax.block_until_ready(states)
    train_seconds = time.perf_counter() - t0

    summary = {
        "algo": cfg.algo,
        "env": env.name,
        "seeds": seeds,
        "steps": total_steps,
        "final_eval_return": returns.tolist(),
        "eval_curve": {"steps": steps, "returns": np.stack(curve).tolist()},
        "compile_seconds": host.compile_seconds,
        # the compiled path's "compiled in" time; here the update's compilation is all of it
        "startup_seconds": host.compile_seconds,
        "train_seconds": train_seconds,
        "resumed_from_chunk": None,
        "device": jax.devices()[0].platform,
        "devices": 1,
        "padding_runs": 0,  # one device: no padding (qtran.devices)
        "devices_available": jax.device_count(),
        "env_reference": {k: v for k, v in env.meta.items() if isinstance(v, (int, float)) or v is None},
        "host_loop": True,  # the environment stepped in Python (qtran.host_loop)
        **summary_fields(sched, warnings),
    }
    if writer is not None:
        ids = run_ids(seeds, None)
        save_params(writer.path / "params.npz", states.params, ids)
        np.savez_compressed(writer.path / "eval_episodes.npz", steps=np.asarray(steps),
                            returns=np.stack(episodes), **ids)
        summary["run_dir"] = str(writer.path)
        writer.write_summary(summary)
        writer.close()
    return states, summary
