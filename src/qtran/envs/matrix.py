"""Single-state matrix games: N agents, |U| actions each, a payoff tensor of shape |U|^N.

Every episode is one step. Each agent observes the same constant (a single 1.0); the
global state is that constant too, so only the agents' identities tell them apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from qtran.envs.base import Env
from qtran.errors import UserError

# Presets. Sources: table1 is the paper's Table 1a (Son et al., 2019); the climbing and
# penalty games are Claus & Boutilier (1998), the ones the authors' released code also tried.
def climb21() -> list:
    """Our 21-action game for the paper's Figure 2, whose payoff was never published.

    With a, b in 0..20 (agent 1's and agent 2's actions):

        hill(a, b)    = 6 exp(-((a - 5)^2 + (b - 5)^2) / 50)     broad lower optimum near (5, 5)
        peak(a, b)    = 10 exp(-((a - 15)^2 + (b - 15)^2) / 2)   narrow high optimum at (15, 15)
        penalty(a, b) = -10 when exactly one of |a - 15| <= 1, |b - 15| <= 1 holds
        R = clip(hill + peak + penalty, -10, 10)

    The optimum (15, 15) = 10 is surrounded by miscoordination penalties, so a monotonic or
    additive fit of uniformly explored data prefers the broad hill (about 6), as in Table 1.
    """
    a = np.arange(21.0)[:, None]
    b = np.arange(21.0)[None, :]
    hill = 6.0 * np.exp(-((a - 5) ** 2 + (b - 5) ** 2) / 50.0)
    peak = 10.0 * np.exp(-((a - 15) ** 2 + (b - 15) ** 2) / 2.0)
    near_a, near_b = np.abs(a - 15) <= 1, np.abs(b - 15) <= 1
    penalty = -10.0 * (near_a ^ near_b)
    return np.round(np.clip(hill + peak + penalty, -10.0, 10.0), 4).tolist()


PRESETS: dict[str, list] = {
    "table1": [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]],
    "climbing": [[11, -30, 0], [-30, 7, 6], [0, 0, 5]],
    "penalty": [[-10, 0, 10], [0, 2, 0], [10, 0, -10]],
    "climb21": climb21(),
}


@dataclass
class MatrixConfig:
    """`env=matrix` settings."""

    name: str = "matrix"
    # A preset (table1; climb21, our 21-action game for Figure 2; climbing and penalty from Claus
    # & Boutilier, 1998) or a .json / .npy file holding a |U|^N tensor (nested lists, or
    # {"payoff": ...}).
    payoff: str = "table1"


def load_payoff(spec: str) -> np.ndarray:
    """A payoff tensor from a preset name or a .json / .npy file, validated."""
    if spec in PRESETS:
        payoff = np.asarray(PRESETS[spec], dtype=np.float64)
    else:
        payoff = _read_payoff_file(spec)
    return validate_payoff(payoff, source=spec)


def _read_payoff_file(spec: str) -> np.ndarray:
    path = Path(spec)
    if path.suffix not in (".json", ".npy"):
        raise UserError(
            f"env.payoff={spec!r} is neither a preset ({', '.join(sorted(PRESETS))}) "
            "nor a .json or .npy file"
        )
    if not path.is_file():
        raise UserError(f"payoff file not found: {spec}")
    try:
        if path.suffix == ".npy":
            # allow_pickle=False: a payoff file must never run code when loaded. Mapped, not
            # read, so that its size is checked before it fills memory.
            data = np.load(path, allow_pickle=False, mmap_mode="r")
            check_payoff_size(data.shape, spec)
            return np.asarray(data, dtype=np.float64)
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("payoff")
        return np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError, OSError, RecursionError) as err:  # RecursionError: JSON nested too deep
        raise UserError(f"cannot read payoff from {spec}: {err}".splitlines()[0]) from None


# The largest payoff trained: 2^20 cells (20 agents x 2 actions) compiled in 31 s and peaked at
# 1.1 GB (`qtran train env.payoff=<2^20 .npy> steps=200`, 2026-12-06, 2 loaded cores); 2^25
# cells grew by 1 GB every 15 s while compiling until killed (issue 25).
MAX_PAYOFF_CELLS = 2**20


def check_payoff_size(shape: tuple[int, ...], source: str) -> None:
    """Refuse, before anything compiles, a payoff that is not multi-agent or too large."""
    if len(shape) == 1:
        raise UserError(f"{source}: a 1-D payoff is a game of one agent; a multi-agent game needs a "
                        "payoff of shape |U|^N with N >= 2 agents (one axis per agent)")
    cells = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if cells > MAX_PAYOFF_CELLS:
        raise UserError(f"{source}: payoff of shape {tuple(shape)} has {cells:,} cells, more than the "
                        f"{MAX_PAYOFF_CELLS:,} (2^20) that train; its table is compiled into the program")


def validate_payoff(payoff: np.ndarray, source: str = "payoff") -> np.ndarray:
    if payoff.ndim < 1 or payoff.size == 0:
        raise UserError(f"{source}: payoff must be a non-empty tensor of shape |U|^N")
    check_payoff_size(payoff.shape, source)
    if len(set(payoff.shape)) != 1:
        raise UserError(
            f"{source}: payoff shape {payoff.shape} is not |U|^N "
            "(every agent must have the same number of actions)"
        )
    if payoff.shape[0] < 2:
        raise UserError(f"{source}: payoff needs at least 2 actions per agent")
    if not np.all(np.isfinite(payoff)):
        raise UserError(f"{source}: payoff holds NaN or infinite values")
    if np.abs(payoff).max() > np.finfo(np.float32).max:  # rewards are float32 in training
        raise UserError(f"{source}: payoff values must be at most {np.finfo(np.float32).max:.3g} in size")
    return payoff


def make_matrix_game(payoff: np.ndarray, name: str = "matrix") -> Env:
    payoff = validate_payoff(np.asarray(payoff, dtype=np.float64))
    n_agents, n_actions = payoff.ndim, payoff.shape[0]
    table = jnp.asarray(payoff, dtype=jnp.float32)
    obs = jnp.ones((n_agents, 1), jnp.float32)

    def reset(key):
        del key
        return obs, jnp.zeros((), jnp.int32)

    def step(key, state, actions):
        del key
        reward = table[tuple(actions[i] for i in range(n_agents))]
        return obs, state + 1, reward, jnp.bool_(True), {}

    def avail_actions(state):
        del state
        return jnp.ones((n_agents, n_actions), bool)

    def global_state(state):
        del state
        return jnp.ones((1,), jnp.float32)

    return Env(
        name=name,
        n_agents=n_agents,
        n_actions=n_actions,
        obs_dim=1,
        state_dim=1,
        episode_limit=1,
        reset=reset,
        step=step,
        avail_actions=avail_actions,
        global_state=global_state,
        single_state=True,
        one_step=True,
        meta={"payoff": payoff, "optimum": float(payoff.max())},
    )
