"""One trainer for every algorithm.

Training runs in chunks: a jitted `lax.scan` over a fixed number of iterations, then back to
Python to evaluate, log and draw the progress bar. Seeds are the leading axis of the whole
training state and are `vmap`ped; the iteration counter is shared by all seeds and stays
unbatched, so schedule decisions (warm-up, target copies) are real branches, not selects.

One iteration, per seed: run `n_envs` episodes epsilon-greedily, store them, then (after the
warm-up) do K gradient updates on batches sampled from replay, copying the target network
every `target_update_interval` updates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qtran.algorithms import Algorithm
from qtran.config import anneal_steps, eval_interval
from qtran.envs.base import Env
from qtran.errors import UserError
from qtran.replay import Buffer, add, expand, init_buffer, sample, sample_transitions, stored, time_limit_terminal
from qtran.rollout import run_episode
from qtran.runtime import unroll_threefry_on_cpu


# Folded into a run's evaluation key to make its run key (`run_key_of_seed`); any constant
# works, this one keeps it apart from the evaluation indices 0, 1, 2, ... folded in elsewhere.
RUN_KEY_TAG = 0x5EED_0F_5


# The primitives of a QR decomposition (jnp.linalg.qr, flax's orthogonal initialiser).
QR_PRIMITIVES = frozenset({"qr", "geqrf", "geqp3", "householder_product", "orgqr"})


def primitive_names(jaxpr):
    """Every primitive a jaxpr calls, once per call, nested jaxprs (jit, cond, scan, custom
    rules) included."""
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from primitive_names(inner)


def uses_primitive(jaxpr, names) -> bool:
    """Whether a jaxpr calls any of the named primitives, at any depth."""
    return any(name in names for name in primitive_names(jaxpr))


def seed_keys(key) -> tuple:
    """A run's (agent init, mixer init, training, evaluation) keys from PRNGKey(seed)."""
    return tuple(jax.random.split(key, 4))


def run_key_from_eval_key(eval_key):
    """A key constant for a whole run (environments drawn per run use it): from the run's
    evaluation key, which never changes, so no field of the training state is added for it."""
    return jax.random.fold_in(eval_key, RUN_KEY_TAG)


def run_key_of_seed(seed: int):
    """The run key of the run trained with `seed` (what the trainer passes to reset_for_run)."""
    return run_key_from_eval_key(seed_keys(jax.random.PRNGKey(int(seed)))[3])


class TrainState(NamedTuple):
    params: Any  # {"agent": ..., "mixer": ...}
    target_params: Any
    opt_state: Any
    buffer: Buffer
    key: jax.Array
    eval_key: jax.Array
    env_value: jax.Array  # this run's value of the environment's batchable setting (or 0)


@dataclass(frozen=True)
class Schedule:
    """Step bookkeeping derived from the config; all plain Python ints."""

    steps_per_iter: int  # environment steps one iteration collects
    updates_per_iter: int
    total_iters: int
    first_train_iter: int  # first iteration that updates (after the warm-up)
    chunk_iters: int  # iterations between evaluations

    @classmethod
    def from_config(cls, cfg, env: Env) -> "Schedule":
        steps_per_iter = cfg.n_envs * env.episode_limit
        return cls(
            steps_per_iter=steps_per_iter,
            updates_per_iter=max(1, round(steps_per_iter * cfg.updates_per_step)),
            total_iters=math.ceil(cfg.steps / steps_per_iter),
            first_train_iter=math.ceil(cfg.warmup_steps / steps_per_iter),
            chunk_iters=max(1, math.ceil(eval_interval(cfg) / steps_per_iter)),
        )

    @property
    def total_updates(self) -> int:
        """Gradient updates in the whole run (the learning-rate schedule's length)."""
        return max(0, self.total_iters - self.first_train_iter) * self.updates_per_iter

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.total_iters / self.chunk_iters)


def epsilon(cfg, env_step):
    """Linear anneal from eps.start to eps.end over eps.anneal_steps, then constant."""
    span = anneal_steps(cfg)
    frac = jnp.clip(env_step / span, 0.0, 1.0) if span > 0 else 1.0
    return cfg.eps.start + frac * (cfg.eps.end - cfg.eps.start)


def learning_rate(cfg, total_updates: int):
    """`lr`, constant or (lr_schedule=linear) falling linearly to 0 over the run's gradient
    updates, as JaxMARL's Q-learning baselines do (their `LR_LINEAR_DECAY`)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return optax.linear_schedule(cfg.lr, 0.0, max(1, total_updates))


def make_optimizer(cfg, total_updates: int = 1) -> optax.GradientTransformation:
    """Adam (the released code, PyMARL) or RAdam (JaxMARL's baselines), after an optional
    global-norm clip."""
    build = {"adam": optax.adam, "radam": optax.radam}[cfg.optimizer]
    opt = build(learning_rate(cfg, total_updates), eps=cfg.adam_eps)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt) if cfg.grad_clip > 0 else opt


class Trainer:
    """Jitted pieces for one (config, environment, algorithm); all take seed-batched state."""

    def __init__(self, cfg, env: Env, algo: Algorithm):
        self.cfg, self.env, self.algo = cfg, env, algo
        unroll_threefry_on_cpu()  # the same bits, far fewer operations per random call
        self.schedule = Schedule.from_config(cfg, env)
        self.optimizer = make_optimizer(cfg, self.schedule.total_updates)
        self._init = None  # (keys[R], env_values[R]) -> states, chosen on first use (`init`)
        self.chunk = jax.jit(self._chunk)
        self.evaluate = jax.jit(jax.vmap(self._evaluate_one, in_axes=(0, None)))
        self.compile_seconds = 0.0

    # ---- state -------------------------------------------------------------------------
    def _init_one(self, key, env_value) -> TrainState:
        k_agent, k_mixer, k_train, k_eval = seed_keys(key)
        params = {"agent": self.algo.agents.init(k_agent), "mixer": self.algo.init_mixer(k_mixer)}
        return TrainState(params, params, self.optimizer.init(params),
                          init_buffer(self.env, self.cfg.buffer_size), k_train, k_eval,
                          jnp.asarray(env_value, jnp.float32))

    def init(self, keys, values) -> TrainState:
        """Every run's initial state: the runs vmapped, or looped over where the init has a QR
        decomposition (an orthogonal initialiser, as a GRU's recurrent kernel has): XLA's CPU
        runtime deadlocked executing batched QRs (qtran-base, agent.recurrent=true, 2 runs;
        JAX 0.10.2). Both give every parameter bit for bit (tests/test_trainer.py); the vmap
        compiles in about half the time (QTRAN-alt on Table 1: 1.7 s against 3.1 s, 2026-12-07),
        and the suite and every cold start compile an init for each new setting."""
        if self._init is None:
            looped = lambda k, v: jax.lax.map(lambda a: self._init_one(*a), (k, v))  # noqa: E731
            has_qr = uses_primitive(jax.make_jaxpr(self._init_one)(keys[0], values[0]).jaxpr, QR_PRIMITIVES)
            self._init = jax.jit(looped if has_qr else jax.vmap(self._init_one))
        return self._init(keys, values)

    def runs(self, seeds) -> tuple[list[int], list[float | None]]:
        """The batch axis: every seed, or every (env value, seed) pair with cfg.env_values."""
        values = self.cfg.env_values
        if values is None:
            return list(seeds), [None] * len(seeds)
        if self.env.reset_with_value is None:
            raise UserError(f"env_values: {self.env.name} has no setting that can be batched")
        if self.env.reset_for_run is not None:  # not both: one reset per run
            raise UserError(f"env_values: {self.env.name} draws its setting per run already")
        return [s for _ in values for s in seeds], [float(v) for v in values for _ in seeds]

    def init_runs(self, seeds) -> TrainState:
        run_seeds, values = self.runs(seeds)
        keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in run_seeds])
        return self.init(keys, jnp.asarray([0.0 if v is None else v for v in values], jnp.float32))

    def _episodes(self, state: TrainState, keys, eps, store: bool = False):
        """One episode per key, in parallel, acting epsilon-greedily with the online agents;
        with `store`, in the replay buffer's layout."""
        reset = self._reset(state)
        return jax.vmap(lambda k: run_episode(self.env, self.algo.agents, state.params["agent"], k, eps, reset,
                                              store))(keys)

    def _reset(self, state: TrainState):
        """The environment's reset for this run: with its own value when values are batched,
        with its run key when the environment draws per run."""
        if self.env.reset_for_run is not None:
            return lambda key: self.env.reset_for_run(key, run_key_from_eval_key(state.eval_key))
        if self.cfg.env_values is None:
            return None
        return lambda key: self.env.reset_with_value(key, state.env_value)

    # ---- one iteration (per seed; `it` is shared and unbatched) --------------------------
    def _collect(self, state: TrainState, key, eps):
        keys = jax.random.split(key, self.cfg.n_envs)
        episodes, returns, _ = self._episodes(state, keys, eps, store=True)
        if self.cfg.time_limit == "terminal":
            episodes = time_limit_terminal(episodes)
        return state._replace(buffer=add(state.buffer, stored(self.env, episodes))), returns.mean()

    def _sample(self, buffer: Buffer, key):
        """Whole episodes for a recurrent agent (it needs the history); else single transitions.
        Either way in the full layout the losses read (`replay.expand`)."""
        if self.algo.agents.recurrent or self.env.episode_limit == 1:
            return expand(self.env, sample(buffer, key, self.cfg.batch_size))
        return expand(self.env, sample_transitions(buffer, key, self.cfg.batch_size))

    def _update(self, state: TrainState, key, sync):
        batch = self._sample(state.buffer, key)
        (loss, metrics), grads = jax.value_and_grad(self.algo.loss, has_aux=True)(
            state.params, state.target_params, batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target = jax.lax.cond(sync, lambda: params, lambda: state.target_params)
        return state._replace(params=params, target_params=target, opt_state=opt_state), \
            dict(metrics, loss=loss)

    def _iteration(self, state: TrainState, it):
        s = self.schedule
        env_step = it * s.steps_per_iter
        training = it >= s.first_train_iter
        eps = jnp.where(training, epsilon(self.cfg, env_step), 1.0)
        key, k_collect, k_update = jax.random.split(state.key, 3)
        state, train_return = self._collect(state._replace(key=key), k_collect, eps)
        first_update = (it - s.first_train_iter) * s.updates_per_iter

        def do_updates(state):
            def one(state, k):
                u = first_update + k
                return self._update(state, jax.random.fold_in(k_update, k),
                                    (u + 1) % self.cfg.target_update_interval == 0)
            state, metrics = jax.lax.scan(one, state, jnp.arange(s.updates_per_iter))
            return state, jax.tree.map(jnp.mean, metrics)

        # Jitted so that the shapes no_update asks for and the cond's branch share one trace of
        # the update (tracing it twice was a third of the chunk's lowering time).
        updates = jax.jit(do_updates)

        def no_update(state):  # the warm-up: same outputs as do_updates, all zero
            shapes = jax.eval_shape(updates, state)[1]
            return state, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

        state, metrics = jax.lax.cond(training, updates, no_update, state)
        return state, dict(metrics, train_return=train_return, epsilon=eps, trained=training)

    def _chunk(self, states: TrainState, start):
        """chunk_iters iterations from `start`; iterations past the budget are skipped."""
        def body(states, it):
            # Jitted for one trace of the iteration, shared with skip's shapes (as in _iteration).
            run = jax.jit(lambda states: jax.vmap(self._iteration, in_axes=(0, None))(states, it))

            def skip(states):
                shapes = jax.eval_shape(run, states)[1]
                return states, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

            states, metrics = jax.lax.cond(it < self.schedule.total_iters, run, skip, states)
            return states, dict(metrics, active=it < self.schedule.total_iters)

        return jax.lax.scan(body, states, start + jnp.arange(self.schedule.chunk_iters))

    # ---- evaluation --------------------------------------------------------------------
    def _evaluate_one(self, state: TrainState, index):
        """Returns of eval.episodes greedy episodes (eps = 0), each agent acting on its own Q_i."""
        keys = jax.random.split(jax.random.fold_in(state.eval_key, index), self.cfg.eval.episodes)
        _, returns, _ = self._episodes(state, keys, 0.0)
        return returns

    def compile(self, states: TrainState) -> None:
        """Compile the chunk ahead of time so compile time can be reported apart."""
        t0 = time.perf_counter()
        self.chunk = jax.jit(self._chunk).lower(states, jnp.int32(0)).compile()
        self.compile_seconds = time.perf_counter() - t0


def table_function(algo: Algorithm, env: Env, joint_tables: bool = True, seeds=None):
    """A jitted function: seed-batched params -> learned Q_i, Q_jt, Q'_jt (and V) per seed.

    Only meaningful for single-state games. The joint tables cover the whole joint action
    space (|U|^N cells); with joint_tables=False only the per-agent Q_i are computed. A game
    drawn per run (`reset_for_run`) needs the runs' `seeds`: each table is at its run's state.
    """
    n, u = env.n_agents, env.n_actions
    joint = jnp.stack([a.ravel() for a in jnp.indices((u,) * n)], axis=-1) if joint_tables else None
    if env.reset_for_run is None:
        starts = [env.reset(jax.random.PRNGKey(0))]
    else:
        starts = [env.reset_for_run(jax.random.PRNGKey(0), run_key_of_seed(s)) for s in seeds]
    obs_runs = jnp.stack([o for o, _ in starts])  # [1 or runs, N, obs]
    gstate_runs = jnp.stack([env.global_state(st) for _, st in starts])

    def one(p, obs, gstate):
        q_i, _ = algo.agents.apply(p["agent"], obs)  # [N, U]
        if not joint_tables:
            return {"q_i": q_i}
        q_prime = jnp.take_along_axis(q_i[None], joint[..., None], axis=-1)[..., 0].sum(-1)
        out = {"q_i": q_i, "q_prime_jt": q_prime.reshape((u,) * n)}
        if algo.joint_q is not None:
            out["q_jt"] = algo.joint_q(p, obs, gstate, joint).reshape((u,) * n)
        if algo.state_value is not None:
            out["v"] = algo.state_value(p, obs, gstate)
        return out

    shared = env.reset_for_run is None  # every run at the one state
    batched = jax.jit(jax.vmap(one, in_axes=(0, None, None) if shared else (0, 0, 0)))
    obs_in, gstate_in = (obs_runs[0], gstate_runs[0]) if shared else (obs_runs, gstate_runs)
    return lambda params: jax.tree.map(np.asarray, batched(params, obs_in, gstate_in))
