"""JaxMARL environments behind qtran's `Env` interface (`env=jaxmarl env.name=<JaxMARL id>`).

JaxMARL (https://github.com/FLAIROx/JaxMARL, `pip install "qtran[jaxmarl]"`) writes its
environments as pure JAX functions, so the adapter keeps them inside our compiled training
loop: reset and step are traced into the trainer's `lax.scan` and vmapped over seeds and
parallel environments exactly like our own environments. `jaxmarl` is imported only when an
environment of this family is built, so `qtran` itself does not need it.

What the adapter does with JaxMARL's dict-of-agents API:

- Agents are `env.agents` in JaxMARL's own order; row i of every array is agent i.
- Observations: each agent's observation flattened and zero-padded at the end to the largest
  agent's size (obs_dim). Our shared agent network appends its own one-hot agent id.
- Available actions: `env.get_avail_actions(state)` where the environment has it (SMAX);
  otherwise every action of the agent's `Discrete(n)` space. Agents with fewer actions than
  the largest have the extra slots marked unavailable. Discrete actions only: an environment
  with a continuous (or multi-discrete) action space is refused with a `UserError`.
- Global state (the mixers' input): `obs["world_state"]` where the environment provides one
  (SMAX), otherwise the concatenation of all agents' flattened (unpadded) observations, which
  is the default of JaxMARL's own Q-learning baselines (`CTRolloutManager.global_state`).
- Team reward, `env.team_reward`: `sum` (the sum over agents, JaxMARL's baselines' default
  global reward), `mean`, or `first` (agent 0's reward: right where every agent receives the
  same team reward, as SMAX's do). `auto` (the default) is `first` for the SMAX family and
  `sum` otherwise, again as JaxMARL's baselines choose. MPE simple_spread gives agent i
  `local_ratio * (-collisions of i) + (1 - local_ratio) * (-sum of landmark distances)`, which
  differs between agents when they collide, so `auto` sums it.
- Termination versus time limit. JaxMARL reports an episode end in `dones["__all__"]`
  without saying whether it was its time limit (`max_steps`) or a real terminal state, and
  its `step` resets the environment on the spot. The adapter therefore (1) builds the
  environment with `max_steps = episode_limit + 1`, so JaxMARL's own clock never ends an
  episode and every `done` it reports is a real termination (SMAX: one side wiped out), while
  the trainer cuts episodes after `episode_limit` steps without bootstrapping errors, and
  (2) calls `step_env`, the transition without the automatic reset, with the same key
  JaxMARL's `step` would hand it. After a terminal step the adapter's state stays frozen
  (same observation, reward 0, done true), which the rollout masks out anyway.
  `env.episode_limit` defaults to the environment's `max_steps` (MPE 25, SMAX 100), or to
  `env.kwargs.max_steps` when given. An environment without `max_steps` is used as it is.

The environment's other constructor arguments go in `env.kwargs.*` (for example
`env.kwargs.num_agents=4 env.kwargs.local_ratio=0.5`), and SMAX maps by name in
`env.scenario` (for example `env.name=HeuristicEnemySMAX env.scenario=3m`).
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from qtran.envs.base import Env
from qtran.errors import UserError

TEAM_REWARDS = ("auto", "sum", "mean", "first")
INSTALL_HINT = 'install it with: pip install "qtran[jaxmarl]"'


@dataclass
class JaxMARLConfig:
    """`env=jaxmarl` settings."""

    name: str = "jaxmarl"
    # JaxMARL's environment id, as its `jaxmarl.make` takes it (given as `env.name=...` on the
    # command line, e.g. MPE_simple_spread_v3 or HeuristicEnemySMAX).
    task: str = "MPE_simple_spread_v3"
    # SMAX map name (3m, 2s3z, 5m_vs_6m, ...) for the SMAX environments; None for the others.
    scenario: str | None = None
    # Steps per episode before the trainer cuts it (not a terminal state); None: the
    # environment's own max_steps.
    episode_limit: int | None = None
    # How the agents' rewards become one team reward: auto, sum, mean or first.
    team_reward: str = "auto"
    # Further keyword arguments for the environment's constructor.
    kwargs: dict[str, Any] = field(default_factory=dict)


class AdapterState(NamedTuple):
    env_state: Any  # JaxMARL's own state
    obs: jax.Array  # float32[N, obs_dim]: the observations of env_state
    global_state: jax.Array  # float32[state_dim]
    avail: jax.Array  # bool[N, n_actions]
    done: jax.Array  # bool[]: the episode has terminated (the state is frozen)


@contextlib.contextmanager
def _quiet_import():
    """Swallow what importing jaxmarl prints (a notice about optional environments on stdout).

    Its optional-brax module resets sys.stdout/stderr to sys.__stdout__/__stderr__, so those
    are redirected too, and all four are put back afterwards."""
    saved = sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__
    sink = io.StringIO()
    sys.stdout = sys.__stdout__ = sink
    sys.__stderr__ = saved[1]
    try:
        yield
    finally:
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved


def import_jaxmarl():
    try:
        with _quiet_import():
            import jaxmarl
    except ImportError as err:
        raise UserError(f"env=jaxmarl needs the jaxmarl package ({err}); {INSTALL_HINT}") from None
    return jaxmarl


def _registered(jaxmarl) -> list[str]:
    from jaxmarl.registration import registered_envs

    return list(registered_envs)


def _space_size(space) -> int:
    return int(math.prod(getattr(space, "shape", ()) or ()))


def _check_discrete(env, task: str) -> list[int]:
    """The number of actions of each agent; refuses anything but Discrete(n) spaces."""
    sizes = []
    for agent in env.agents:
        space = env.action_space(agent)
        kind = type(space).__name__
        if kind != "Discrete" or not hasattr(space, "n"):
            raise UserError(
                f"{task} has {kind} actions (agent {agent}); qtran's algorithms need discrete "
                "actions (pick the environment's discrete variant, e.g. env.kwargs.action_type=...)"
            )
        sizes.append(int(space.n))
    return sizes


def _make(jaxmarl, task: str, kwargs: dict):
    try:
        return jaxmarl.make(task, **kwargs)
    except TypeError as err:  # an argument the environment's constructor does not take
        raise UserError(f"jaxmarl:{task}: {err}") from None


def _team_reward_mode(mode: str, env) -> str:
    if mode not in TEAM_REWARDS:
        raise UserError(f"env.team_reward={mode!r} is unknown; choose one of {', '.join(TEAM_REWARDS)}")
    if mode == "auto":
        return "first" if "SMAX" in type(env).__name__ else "sum"
    return mode


def make_jaxmarl_env(cfg: JaxMARLConfig) -> Env:
    jaxmarl = import_jaxmarl()
    task = str(cfg.task)
    known = _registered(jaxmarl)
    if task not in known:
        raise UserError(f"jaxmarl has no environment {task!r}; its environments: {', '.join(known)}")
    kwargs = dict(cfg.kwargs or {})
    if cfg.scenario is not None:
        from jaxmarl.environments.smax import map_name_to_scenario

        try:
            kwargs["scenario"] = map_name_to_scenario(str(cfg.scenario))
        except KeyError:
            raise UserError(f"env.scenario={cfg.scenario!r} is not a SMAX map JaxMARL knows") from None
    own_limit = kwargs.pop("max_steps", None)
    env = _make(jaxmarl, task, kwargs)
    if own_limit is None:
        own_limit = getattr(env, "max_steps", None)
    limit = cfg.episode_limit if cfg.episode_limit is not None else own_limit
    if limit is None:
        raise UserError(f"jaxmarl:{task} has no max_steps; set env.episode_limit")
    limit = int(limit)
    if limit < 1:
        raise UserError(f"env.episode_limit={limit} must be at least 1")
    if hasattr(env, "max_steps"):  # JaxMARL's clock never ends an episode: see the docstring
        env = _make(jaxmarl, task, dict(kwargs, max_steps=limit + 1))
    return wrap(env, limit, _team_reward_mode(str(cfg.team_reward), env),
                name=f"jaxmarl:{task}" + (f":{cfg.scenario}" if cfg.scenario is not None else ""))


def wrap(env, episode_limit: int, team_reward: str = "sum", name: str | None = None) -> Env:
    """Any JaxMARL `MultiAgentEnv` with discrete actions as a qtran `Env`.

    `env` is used as it is: for a clean split of termination and time limit give it a
    `max_steps` above `episode_limit` (as `env=jaxmarl` does).
    """
    agents = list(env.agents)
    n = len(agents)
    task = name or f"jaxmarl:{type(env).__name__}"
    action_sizes = _check_discrete(env, task)
    n_actions = max(action_sizes)
    team_reward = _team_reward_mode(team_reward, env)

    obs_shapes, state_shapes = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    obs_sizes = [_space_size(obs_shapes[a]) for a in agents]
    obs_dim = max(obs_sizes)
    has_world_state = isinstance(obs_shapes, dict) and "world_state" in obs_shapes
    state_dim = _space_size(obs_shapes["world_state"]) if has_world_state else sum(obs_sizes)
    try:
        jax.eval_shape(env.get_avail_actions, state_shapes)
        env_masks = True
    except NotImplementedError:
        env_masks = False
    static_avail = jnp.asarray([[u < size for u in range(n_actions)] for size in action_sizes])

    def observations(obs: dict) -> jax.Array:
        rows = [jnp.ravel(obs[a]).astype(jnp.float32) for a in agents]
        return jnp.stack([jnp.pad(r, (0, obs_dim - r.shape[0])) for r in rows])

    def global_of(obs: dict) -> jax.Array:
        if has_world_state:
            return jnp.ravel(obs["world_state"]).astype(jnp.float32)
        return jnp.concatenate([jnp.ravel(obs[a]).astype(jnp.float32) for a in agents])

    def avail_of(env_state) -> jax.Array:
        if not env_masks:
            return static_avail
        masks = env.get_avail_actions(env_state)
        rows = [jnp.asarray(masks[a]).astype(bool) for a in agents]
        return jnp.stack([jnp.pad(r, (0, n_actions - r.shape[0])) for r in rows])

    def team(rewards: dict) -> jax.Array:
        values = jnp.stack([jnp.asarray(rewards[a], jnp.float32) for a in agents])
        if team_reward == "first":
            return values[0]
        return values.mean() if team_reward == "mean" else values.sum()

    def wrap_state(obs: dict, env_state, done) -> AdapterState:
        return AdapterState(env_state, observations(obs), global_of(obs), avail_of(env_state),
                            jnp.asarray(done, bool))

    def reset(key):
        obs, env_state = env.reset(key)
        state = wrap_state(obs, env_state, False)
        return state.obs, state

    def step(key, state: AdapterState, actions):
        # JaxMARL's own step() splits its key into (transition, reset) and hands the first to
        # step_env; doing the same keeps trajectories identical to JaxMARL's.
        k_step, _ = jax.random.split(key)
        obs, env_state, rewards, dones, _ = env.step_env(
            k_step, state.env_state, {a: actions[i] for i, a in enumerate(agents)})
        stepped = wrap_state(obs, env_state, dones["__all__"])
        reward = team(rewards)
        # A terminated episode stays at its terminal state.
        frozen = state.done
        nxt = jax.tree.map(lambda old, new: jnp.where(frozen, old, new), state, stepped)
        return nxt.obs, nxt, jnp.where(frozen, 0.0, reward), nxt.done, {}

    return Env(
        name=task,
        n_agents=n,
        n_actions=n_actions,
        obs_dim=obs_dim,
        state_dim=state_dim,
        episode_limit=int(episode_limit),
        reset=reset,
        step=step,
        avail_actions=lambda state: state.avail,
        global_state=lambda state: state.global_state,
        meta={"agents": agents, "team_reward": team_reward, "jaxmarl_env": env},
    )


FAMILY = (JaxMARLConfig, make_jaxmarl_env)
