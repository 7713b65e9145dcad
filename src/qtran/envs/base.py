"""The environment interface every qtran environment implements.

An environment is a bundle of pure functions plus its sizes. Nothing in it holds mutable
state, so every function can be jitted, vmapped over seeds or parallel environments, and
scanned over time:

    reset(key)                      -> (obs[N, obs_dim], state)
    step(key, state, actions[N])    -> (obs[N, obs_dim], state, team_reward, done, info)
    avail_actions(state)            -> bool[N, n_actions]
    global_state(state)             -> float[state_dim]     (what QMIX's mixer conditions on)

`done` means the episode really ended (a terminal state: no bootstrapping from the next
observation). Episodes cut by a time limit report `done = False` and are stopped by the
trainer after `episode_limit` steps; the replay buffer keeps the two apart.

`info` is a dict of scalar arrays (may be empty); its keys must be the same at every step.

`one_step` marks games whose every episode terminates after one step; `single_state` marks games with one constant observation (matrix games, one-step Gaussian
squeeze with a fixed s): for them the trainer can print the whole learned Q tables.

A game may instead draw its one state per run (Gaussian squeeze, `s_draw=per_run`): then
`reset_for_run(key, run_key)` replaces `reset` wherever a run's episodes start, `run_key` being
constant for the run and a function of its seed alone (`qtran.train.run_key_of_seed`), and
`single_state` means one state per run. `run_info(run_key)` describes a run's draw for
summary.json (`env_runs`).

An environment whose inputs are cheap to recompute may give `record(state)`, a pytree of small
arrays (predator-prey: the positions as int8), and `rebuild(record)` -> (obs[N, obs_dim],
global_state, avail_actions), equal bit for bit to what reset/step, global_state and
avail_actions give for that state. The replay buffer then stores the records instead of float
observations, states and masks (a tenth of the memory), and each update rebuilds its batch
inside the jitted program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jax

Array = jax.Array


@dataclass(frozen=True)
class Env:
    name: str
    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    episode_limit: int
    reset: Callable[[Array], tuple[Array, Any]]
    step: Callable[[Array, Any, Array], tuple[Array, Any, Array, Array, dict]]
    avail_actions: Callable[[Any], Array]
    global_state: Callable[[Any], Array]
    single_state: bool = False
    # Every episode ends terminally after its first step (matrix games, Gaussian squeeze), so
    # TD targets are the reward alone and the trainer skips the target networks.
    one_step: bool = False
    # A setting that changes only values, not shapes (predator-prey: the penalty P), which the
    # trainer can batch together with the seeds: its name, and reset(key, value).
    value_name: Optional[str] = None
    reset_with_value: Optional[Callable[[Array, Array], tuple[Array, Any]]] = None
    # A game whose constants are drawn once per run (see above): reset(key, run_key).
    reset_for_run: Optional[Callable[[Array, Array], tuple[Array, Any]]] = None
    # run_key -> JSON-able description of that run's game (its draw, what it allows), or None.
    run_info: Optional[Callable[[Array], dict]] = None
    # Replay compaction (see above): both or neither.
    record: Optional[Callable[[Any], Any]] = None
    rebuild: Optional[Callable[[Any], tuple[Array, Array, Array]]] = None
    # Anything an environment wants reports to know (payoff tensor, action names, optimum).
    meta: dict = field(default_factory=dict, compare=False, hash=False)
