"""Gaussian squeeze (GS) and multi-domain Gaussian squeeze (MGS), one-step games.

N agents each own a resource amount s_i (drawn at every reset) and choose a usage level u_i.
The joint usage is x = sum_i s_i u_i and the team reward is

    G(x) = sum_k x * exp(-(x - mu_k)^2 / sigma_k^2).

GS has one domain, (mu, sigma) = (8, 0.5): G rises all the way to its peak near x = 8.
MGS adds a broad domain (5, 1) whose hill near x = 5 is a "pitfall": easy to find, worth only
about 5, against about 8 at the narrow peak near x = 8 (Son et al., 2019, section 4.1).

Two settings (see shared SPEC.md):
  paper: u_i in {0..9}, s_i ~ U[0, 0.2], x = sum_i s_i u_i.
  code:  u_i in {0..10}, s_i ~ U[0, 2], x = (sum_i s_i u_i) / N   (the authors' released code).
For N = 10 the two scales match; only the extra action 10 differs.

The state is the s vector. `step` reads s from the state it is given, so a test can pick s
with `state_from_s`. Observations carry s only; the agent network appends a one-hot id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from qtran.envs.base import Env
from qtran.errors import UserError

# (mu_k, sigma_k) of each domain.
DOMAINS: dict[str, tuple[tuple[float, float], ...]] = {
    "gs": ((8.0, 0.5),),
    "mgs": ((8.0, 0.5), (5.0, 1.0)),
}
# setting -> (number of actions, upper end of the s_i range, divide x by N?)
SETTINGS: dict[str, tuple[int, float, bool]] = {
    "paper": (10, 0.2, False),
    "code": (11, 2.0, True),
}
OBS_MODES = ("own", "all")


@dataclass
class GaussianSqueezeConfig:
    """`env=gaussian_squeeze` settings."""

    name: str = "gaussian_squeeze"
    # gs: one domain (8, 0.5); mgs: adds the pitfall domain (5, 1).
    domains: str = "gs"
    # paper: 10 actions, s_i in [0, 0.2], x = sum s_i u_i; code: 11 actions, s_i in [0, 2], x / N.
    setting: str = "paper"
    # true: one s drawn per episode and shared by every agent (the paper's Figure 3c).
    equal_s: bool = False
    agents: int = 10
    # own: agent i observes [s_i]; all: every agent observes the whole s vector (released code).
    obs: str = "own"
    # None: a fresh s every episode (released code). An integer: s is drawn once from this
    # seed and kept for every episode, one reading of the paper's "s_i given a priori"; the
    # game is then single-state and its learned Q tables are recorded.
    s_seed: Optional[int] = None


class GSState(NamedTuple):
    s: jax.Array  # float32[N], each agent's unit resource for this episode


def state_from_s(s: Sequence[float] | jax.Array) -> GSState:
    """A state holding the given s vector, for tests and analysis (reset draws s at random)."""
    return GSState(jnp.asarray(s, jnp.float32))


def reward(x, mus: Sequence[float], sigmas: Sequence[float]) -> jax.Array:
    """G(x) = sum_k x exp(-(x - mu_k)^2 / sigma_k^2), elementwise over any shape of x."""
    x = jnp.asarray(x, jnp.float32)[..., None]
    mus = jnp.asarray(mus, jnp.float32)
    sigmas = jnp.asarray(sigmas, jnp.float32)
    return jnp.sum(x * jnp.exp(-((x - mus) ** 2) / sigmas**2), axis=-1)


def reference_points(mus: Sequence[float], sigmas: Sequence[float], x_max: float) -> dict:
    """Global maximum and best other local maximum ("pitfall") of G on [0, x_max].

    Computed on a fine grid (step 1e-4) in float64. Beyond max(mu) + 6 max(sigma) every term
    is below x e^-36, so the grid stops there even when a large N makes x_max huge.
    """
    hi = min(float(x_max), max(mus) + 6 * max(sigmas))
    x = np.linspace(0.0, hi, int(round(hi / 1e-4)) + 1)
    mu, sg = np.asarray(mus)[:, None], np.asarray(sigmas)[:, None]
    g = np.sum(x * np.exp(-((x - mu) ** 2) / sg**2), axis=0)
    best = int(np.argmax(g))
    # Interior strict local maxima other than the global one; the best of them is the pitfall.
    peaks = np.flatnonzero((g[1:-1] > g[:-2]) & (g[1:-1] >= g[2:])) + 1
    others = [p for p in peaks if abs(x[p] - x[best]) > 1e-2]
    pit: Optional[int] = max(others, key=lambda p: g[p]) if others else None
    return {
        "optimum": float(g[best]),
        "optimum_x": float(x[best]),
        "pitfall": None if pit is None else float(g[pit]),
        "pitfall_x": None if pit is None else float(x[pit]),
    }


def _get(cfg: Any, key: str) -> Any:
    # Works for the dataclass and for the OmegaConf node the CLI builds from it.
    return getattr(cfg, key, getattr(GaussianSqueezeConfig, key))


def make_gaussian_squeeze(cfg: Any) -> Env:
    domains, setting, obs_mode = str(_get(cfg, "domains")), str(_get(cfg, "setting")), str(_get(cfg, "obs"))
    n, equal_s = _get(cfg, "agents"), bool(_get(cfg, "equal_s"))
    if domains not in DOMAINS:
        raise UserError(f"env.domains={domains!r} is unknown; choose one of {', '.join(DOMAINS)}")
    if setting not in SETTINGS:
        raise UserError(f"env.setting={setting!r} is unknown; choose one of {', '.join(SETTINGS)}")
    if obs_mode not in OBS_MODES:
        raise UserError(f"env.obs={obs_mode!r} is unknown; choose one of {', '.join(OBS_MODES)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"env.agents must be an integer of at least 1, got {n!r}")
    n = int(n)

    mus = tuple(m for m, _ in DOMAINS[domains])
    sigmas = tuple(s for _, s in DOMAINS[domains])
    n_actions, s_max, divide = SETTINGS[setting]
    # x = scale * sum_i s_i u_i; the released code averages over agents instead of summing.
    scale = 1.0 / n if divide else 1.0
    obs_dim = n if obs_mode == "all" else 1

    def observe(state: GSState) -> jax.Array:
        if obs_mode == "all":
            return jnp.broadcast_to(state.s, (n, n))
        return state.s[:, None]

    s_seed = _get(cfg, "s_seed")
    if s_seed is not None and (isinstance(s_seed, bool) or not isinstance(s_seed, (int, np.integer))):
        raise UserError(f"env.s_seed must be an integer or null, got {s_seed!r}")
    fixed_key = None if s_seed is None else jax.random.PRNGKey(int(s_seed))

    def reset(key):
        # equal_s draws one value and gives it to everyone, still anew each episode
        # (or the same every episode with s_seed).
        key = key if fixed_key is None else fixed_key
        shape = () if equal_s else (n,)
        s = jax.random.uniform(key, shape, jnp.float32, 0.0, s_max)
        state = GSState(jnp.broadcast_to(s, (n,)))
        return observe(state), state

    def step(key, state, actions):
        del key  # deterministic given s and u
        x = scale * jnp.sum(state.s * actions.astype(jnp.float32))
        r = reward(x, mus, sigmas)
        # The episode is over; the trainer resets, so the state is returned unchanged.
        return observe(state), state, r, jnp.bool_(True), {"x": x}

    def avail_actions(state):
        del state
        return jnp.ones((n, n_actions), bool)

    def global_state(state):
        return state.s

    # Largest reachable x: every agent at the top action with s at the top of its range.
    x_max = scale * n * s_max * (n_actions - 1)
    meta = {"mus": mus, "sigmas": sigmas, "x_max": x_max, **reference_points(mus, sigmas, x_max)}
    return Env(
        name=f"gaussian_squeeze:{domains}:{setting}" + (":equal_s" if equal_s else "")
        + ("" if s_seed is None else f":s{s_seed}"),
        n_agents=n,
        n_actions=n_actions,
        obs_dim=obs_dim,
        state_dim=n,
        episode_limit=1,
        reset=reset,
        step=step,
        avail_actions=avail_actions,
        global_state=global_state,
        single_state=s_seed is not None,
        one_step=True,
        meta=meta,
    )


FAMILY = (GaussianSqueezeConfig, make_gaussian_squeeze)

__all__ = [
    "DOMAINS", "FAMILY", "GSState", "GaussianSqueezeConfig", "SETTINGS", "make_gaussian_squeeze",
    "reference_points", "reward", "state_from_s",
]
