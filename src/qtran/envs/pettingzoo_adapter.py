"""PettingZoo parallel-API environments for qtran (`env=pettingzoo env.name=<module path>`).

A PettingZoo environment steps in Python, so it cannot live inside the trainer's compiled
`lax.scan`. It trains through `qtran.host_loop` instead: the environment steps on the host
while action selection, replay and the algorithm's updates stay jitted and vmapped over seeds
(`qtran train env=pettingzoo ...` dispatches there by itself). `pettingzoo` is imported only
when such an environment is built (`pip install "qtran[pettingzoo]"`; MPE lives in the
separate package `mpe2` since PettingZoo 1.25: `env.name=mpe2.simple_spread_v3`).

`env.name` is a module path whose module has `parallel_env(**kwargs)` (all PettingZoo and
MPE2 environments do); `env.kwargs.*` are passed to it, e.g. `env.kwargs.N=4` or
`env.kwargs.max_cycles=50`.

How the parallel API maps onto fixed-size arrays (`ParallelAdapter`):

- Agent order: `env.possible_agents`, fixed for the whole run; row i is possible_agents[i].
- Observations: each agent's observation flattened to float32 and zero-padded at the end to
  the largest agent's size. An observation that is a dict with an "observation" entry (the
  convention of PettingZoo's action-masked environments) uses that entry.
- Available actions: all of the agent's `Discrete(n)` actions unless the environment gives a
  mask, as `obs[agent]["action_mask"]` or `infos[agent]["action_mask"]`; either is honoured.
  Slots past an agent's own n are unavailable. Discrete actions only: any other action space
  is refused with a `UserError`. `Discrete(n, start=s)` actions are sent as s + index.
- Agents that have left the episode (PettingZoo removes terminated or truncated agents from
  `env.agents`) keep the last observation the environment returned for them on the step
  they left; on later steps they observe zeros, may take only action 0 (which is not sent
  to the environment) and receive no reward.
- Global state (the mixers' input): `env.state()` where the environment implements it (MPE:
  all agents' observations concatenated), otherwise all agents' flattened observations
  concatenated.
- Team reward, `env.team_reward`: `sum` over agents (default), `mean`, or `first`.
- Termination versus truncation. The episode ends when no agent is left or every agent is
  terminated or truncated. Its last step is terminal (`done`: no bootstrapping) only if no
  agent was truncated on it; a time-limit cut (PettingZoo's truncation, e.g. MPE's
  max_cycles) and qtran's own `episode_limit` are not terminal, and targets bootstrap from
  the last observation.
- `env.episode_limit` defaults to the environment's `max_cycles` when it has one.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qtran.envs.base import Env
from qtran.errors import UserError

TEAM_REWARDS = ("sum", "mean", "first")
INSTALL_HINT = 'install it with: pip install "qtran[pettingzoo]"'


@dataclass
class PettingZooConfig:
    """`env=pettingzoo` settings."""

    name: str = "pettingzoo"
    # Module path of a PettingZoo environment with parallel_env() (given as `env.name=...`
    # on the command line), e.g. mpe2.simple_spread_v3.
    task: str = "mpe2.simple_spread_v3"
    # Steps per episode before the trainer cuts it (not a terminal state); None: the
    # environment's max_cycles.
    episode_limit: int | None = None
    # How the agents' rewards become one team reward: sum, mean or first.
    team_reward: str = "sum"
    # Keyword arguments for parallel_env().
    kwargs: dict[str, Any] = field(default_factory=dict)


def load_parallel_env(task: str, kwargs: dict | None = None):
    """`<task>.parallel_env(**kwargs)`; a UserError naming what is missing otherwise."""
    try:
        import pettingzoo  # noqa: F401
    except ImportError as err:
        raise UserError(f"env=pettingzoo needs the pettingzoo package ({err}); {INSTALL_HINT}") from None
    try:
        module = importlib.import_module(task)
    except ImportError as err:  # PettingZoo >= 1.25 raises this for pettingzoo.mpe (moved to mpe2)
        raise UserError(f"env.name={task!r}: cannot import it ({err})") from None
    if not hasattr(module, "parallel_env"):
        raise UserError(f"env.name={task!r} has no parallel_env(); name a PettingZoo environment module")
    try:
        return module.parallel_env(**dict(kwargs or {}))
    except TypeError as err:
        raise UserError(f"env.name={task!r}: {err}") from None


def _flat_size(space) -> int:
    if hasattr(space, "spaces") and isinstance(space.spaces, dict) and "observation" in space.spaces:
        space = space.spaces["observation"]
    shape = getattr(space, "shape", None)
    if shape is None:
        raise UserError(f"observation space {space} has no shape; qtran needs array observations")
    return int(math.prod(shape))


class ParallelAdapter:
    """One PettingZoo parallel environment as fixed-size numpy arrays (see the module doc)."""

    def __init__(self, env, team_reward: str = "sum", name: str = "pettingzoo"):
        if team_reward not in TEAM_REWARDS:
            raise UserError(f"env.team_reward={team_reward!r} is unknown; choose one of {', '.join(TEAM_REWARDS)}")
        self.env, self.team_reward, self.name = env, team_reward, name
        self.agents = list(env.possible_agents)
        self.n_agents = len(self.agents)
        self.action_sizes, self.action_starts = [], []
        for agent in self.agents:
            space = env.action_space(agent)
            if type(space).__name__ != "Discrete":
                raise UserError(f"{name} has {type(space).__name__} actions (agent {agent}); qtran's "
                                "algorithms need discrete actions (e.g. env.kwargs.continuous_actions=false)")
            self.action_sizes.append(int(space.n))
            self.action_starts.append(int(getattr(space, "start", 0)))
        self.n_actions = max(self.action_sizes)
        self.obs_sizes = [_flat_size(env.observation_space(a)) for a in self.agents]
        self.obs_dim = max(self.obs_sizes)
        self._own_state = True
        try:
            env.reset(seed=0)
            state = env.state()
        except (NotImplementedError, AttributeError):
            self._own_state = False
        self.state_dim = int(np.size(state)) if self._own_state else sum(self.obs_sizes)
        limit = getattr(env.unwrapped, "max_cycles", None) if hasattr(env, "unwrapped") else None
        self.max_cycles = None if limit is None else int(limit)
        self._static_avail = np.array([[u < k for u in range(self.n_actions)] for k in self.action_sizes])
        self._live: list[str] = []

    # ---- conversions -----------------------------------------------------------------
    def _arrays(self, obs: dict, infos: dict):
        out = np.zeros((self.n_agents, self.obs_dim), np.float32)
        avail = self._static_avail.copy()
        for i, agent in enumerate(self.agents):
            if agent not in obs:  # left the episode on an earlier step
                avail[i] = False
                avail[i, 0] = True  # a placeholder action, never sent
                continue
            o = obs.get(agent)
            mask = None
            if isinstance(o, dict):
                mask = o.get("action_mask")
                o = o.get("observation")
            if mask is None and isinstance(infos.get(agent), dict):
                mask = infos[agent].get("action_mask")
            if o is not None:
                flat = np.asarray(o, np.float32).ravel()
                out[i, : flat.size] = flat
            if mask is not None:
                m = np.asarray(mask).astype(bool).ravel()
                avail[i, : m.size] = m[: self.n_actions]
                if not avail[i].any():  # nothing legal: keep a placeholder so argmax stays finite
                    avail[i, 0] = True
        if self._own_state:
            state = np.asarray(self.env.state(), np.float32).ravel()
        else:
            state = np.concatenate([out[i, :k] for i, k in enumerate(self.obs_sizes)])
        return out, state, avail

    # ---- the episode -----------------------------------------------------------------
    def reset(self, seed: int | None = None):
        """-> obs[N, obs_dim], state[state_dim], avail[N, n_actions]."""
        obs, infos = self.env.reset(seed=seed)
        self._live = list(self.env.agents)
        return self._arrays(obs, infos)

    def step(self, actions):
        """actions[N] (indices) -> (obs, state, avail, team reward, terminated, ended).

        `ended`: the episode is over; `terminated`: it ended in a terminal state (no agent was
        truncated on this step).
        """
        acting = list(self._live)
        sent = {a: self.action_starts[i] + int(actions[i]) for i, a in enumerate(self.agents) if a in acting}
        obs, rewards, terms, truncs, infos = self.env.step(sent)
        values = [float(rewards.get(a, 0.0)) for a in self.agents]
        if self.team_reward == "first":
            reward = values[0]
        else:
            reward = float(np.sum(values)) if self.team_reward == "sum" else float(np.mean(values))
        gone = {a for a in acting if terms.get(a, False) or truncs.get(a, False)}
        self._live = [a for a in self.env.agents if a not in gone]
        ended = not self._live
        truncated = any(truncs.get(a, False) for a in acting)
        arrays = self._arrays(obs, infos)
        return (*arrays, reward, ended and not truncated, ended)

    def close(self) -> None:
        self.env.close()


def _host_only(*_args, **_kwargs):
    raise UserError("env=pettingzoo steps in Python and trains through qtran.host_loop "
                    "(qtran train does this); it cannot run inside a compiled rollout")


def adapter_factory(cfg: PettingZooConfig) -> Callable[[], ParallelAdapter]:
    task, kwargs, mode = str(cfg.task), dict(cfg.kwargs or {}), str(cfg.team_reward)
    return lambda: ParallelAdapter(load_parallel_env(task, kwargs), mode, name=f"pettingzoo:{task}")


def make_pettingzoo_env(cfg: PettingZooConfig) -> Env:
    """The sizes of the environment, as an `Env` whose functions refuse to be called: the
    trainer's networks and replay need only the sizes; `meta["make_adapter"]` builds the
    Python environments that `qtran.host_loop` steps."""
    factory = adapter_factory(cfg)
    probe = factory()
    limit = cfg.episode_limit if cfg.episode_limit is not None else probe.max_cycles
    if limit is None:
        raise UserError(f"{probe.name} has no max_cycles; set env.episode_limit")
    if int(limit) < 1:
        raise UserError(f"env.episode_limit={limit} must be at least 1")
    probe.close()
    return Env(
        name=probe.name,
        n_agents=probe.n_agents,
        n_actions=probe.n_actions,
        obs_dim=probe.obs_dim,
        state_dim=probe.state_dim,
        episode_limit=int(limit),
        reset=_host_only,
        step=_host_only,
        avail_actions=_host_only,
        global_state=_host_only,
        meta={"host": True, "make_adapter": factory, "agents": probe.agents},
    )


FAMILY = (PettingZooConfig, make_pettingzoo_env)
