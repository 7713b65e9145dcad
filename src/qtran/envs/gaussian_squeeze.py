"""Gaussian squeeze (GS) and multi-domain Gaussian squeeze (MGS), one-step games.

N agents each own a resource amount s_i (drawn at every reset) and choose a usage level u_i.
The joint usage is x = sum_i s_i u_i and the team reward is

    G(x) = sum_k x * exp(-(x - mu_k)^2 / sigma_k^2).

GS has one domain, (mu, sigma) = (8, 0.5): G rises all the way to its peak near x = 8.
MGS adds a broad domain (5, 1) whose hill near x = 5 is a "pitfall": easy to find, worth only
about 5, against about 8 at the narrow peak near x = 8 (Son et al., 2019, section 4.1).

Two settings (the paper's section 4.1; the released code, Sonkyunghwan/QTRAN):
  paper: u_i in {0..9}, s_i ~ U[0, 0.2], x = sum_i s_i u_i.
  code:  u_i in {0..10}, s_i ~ U[0, 2], x = (sum_i s_i u_i) / N   (the authors' released code).
For N = 10 the two scales match; only the extra action 10 differs.

The state is the s vector. `step` reads s from the state it is given, so a test can pick s
with `state_from_s`. Observations carry s only; the agent network appends a one-hot id.

When s is drawn (`s_draw`, docs/figure3.md):
  once:        from `s_seed`, the same s for every run and episode (a single-state game);
  per_run:     from each run's own seed (the trainer's run key), kept for the whole run: each
               run is a single-state game, runs differ;
  per_episode: anew every episode (the released code).
`reachability` says, for one s, the best reward any joint action can reach and whether it comes
near the global optimum and the pitfall; training records it per run (summary.json, `env_runs`).
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
S_DRAWS = ("once", "per_run", "per_episode")
# A peak counts as reachable with a given s when some joint action earns at least this share of
# the peak's reward (the actions are discrete, so x rarely lands exactly on the peak).
REACH_SHARE = 0.95
# Resolution of x in `reachability`: each agent's s_i u_i is rounded to this grid, so x is
# exact to within N * X_GRID / 2 (5e-4 for ten agents; G changes by < 0.01 over that).
X_GRID = 1e-4
# s draws averaged for the per-episode design's expected best reward (fixed NumPy seed).
MAX_EXPECTED_AGENT_ACTIONS = 1000  # agents x actions above which expected_best is skipped
EXPECTED_DRAWS = 128


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
    # Number of agents N.
    agents: int = 10
    # own: agent i observes [s_i]; all: every agent observes the whole s vector (released code).
    obs: str = "own"
    # None: a fresh s every episode (released code). An integer: s is drawn once from this
    # seed and kept for every episode, one reading of the paper's "s_i given a priori"; the
    # game is then single-state and its learned Q tables are recorded.
    s_seed: Optional[int] = None
    # When s is drawn: once (from s_seed), per_run (from each run's seed, kept for the run) or
    # per_episode. None: once if s_seed is set, else per_episode (what s_seed alone meant before).
    s_draw: Optional[str] = None


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


def reward_float64(x: np.ndarray, mus: Sequence[float], sigmas: Sequence[float]) -> np.ndarray:
    """G(x) in NumPy float64, for analysis on the host (`reward` is the jitted game's)."""
    x = np.asarray(x, np.float64)
    mu, sg = np.asarray(mus, np.float64)[:, None], np.asarray(sigmas, np.float64)[:, None]
    return np.sum(x * np.exp(-((x - mu) ** 2) / sg**2), axis=0)


def reference_points(mus: Sequence[float], sigmas: Sequence[float], x_max: float) -> dict:
    """Global maximum and best other local maximum ("pitfall") of G on [0, x_max].

    Computed on a fine grid (step 1e-4) in float64. Beyond max(mu) + 6 max(sigma) every term
    is below x e^-36, so the grid stops there even when a large N makes x_max huge.
    """
    hi = min(float(x_max), max(mus) + 6 * max(sigmas))
    x = np.linspace(0.0, hi, int(round(hi / 1e-4)) + 1)
    g = reward_float64(x, mus, sigmas)
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


def valley_x(mus: Sequence[float], sigmas: Sequence[float], ref: dict) -> Optional[float]:
    """Where G is lowest between the pitfall and the global optimum (None without a pitfall):
    the border between the two peaks' sides."""
    if ref.get("pitfall_x") is None:
        return None
    lo, hi = sorted((ref["pitfall_x"], ref["optimum_x"]))
    x = np.linspace(lo, hi, max(2, int(round((hi - lo) / 1e-4)) + 1))
    return float(x[int(np.argmin(reward_float64(x, mus, sigmas)))])


def reachable_x(s: Sequence[float], n_actions: int, scale: float, x_cap: float) -> np.ndarray:
    """Every x = scale * sum_i s_i u_i that some joint action reaches, up to x_cap, on a grid of
    X_GRID (each agent's term rounded to it). Dynamic programming over agents: |U| shifts of a
    boolean array per agent, instead of |U|^N joint actions."""
    size = int(np.floor(x_cap / X_GRID)) + 1
    reach = np.zeros(size, bool)
    reach[0] = True
    for s_i in np.asarray(s, dtype=np.float64):
        nxt = np.zeros(size, bool)
        for u in range(n_actions):
            shift = int(round(scale * s_i * u / X_GRID))
            if shift < size:
                nxt[shift:] |= reach[: size - shift]
        reach = nxt
    return np.flatnonzero(reach) * X_GRID


def reachability(s: Sequence[float], n_actions: int, scale: float, mus: Sequence[float],
                 sigmas: Sequence[float], ref: dict) -> dict:
    """What the joint actions can earn with this s (the game's `ref` from `reference_points`).

    best_reward / best_x: the best joint action's reward and x. optimum_side_best and
    pitfall_side_best: the best reward with x on the optimum's and on the pitfall's side of the
    valley between them (no pitfall: the optimum's side is everything, the pitfall's None).
    optimum_reachable / pitfall_reachable: that side's best is at least REACH_SHARE of the
    peak's reward (G's global maximum, or the pitfall's)."""
    x_cap = max(mus) + 6 * max(sigmas)  # beyond it G < x e^-36: nothing there can be best
    x = reachable_x(s, n_actions, scale, x_cap)
    g = reward_float64(x, mus, sigmas)
    valley = valley_x(mus, sigmas, ref)
    if valley is None:
        optimum_side = np.ones_like(x, bool)
    else:
        optimum_side = x > valley if ref["optimum_x"] > valley else x < valley
    best_opt = float(g[optimum_side].max()) if optimum_side.any() else 0.0
    best_pit = None if valley is None else (float(g[~optimum_side].max()) if (~optimum_side).any() else 0.0)
    best = int(np.argmax(g))
    return {
        "s": [float(v) for v in s],
        "best_reward": float(g[best]),
        "best_x": float(x[best]),
        "optimum_side_best": best_opt,
        "pitfall_side_best": best_pit,
        "optimum_reachable": bool(best_opt >= REACH_SHARE * ref["optimum"]),
        "pitfall_reachable": None if best_pit is None else bool(best_pit >= REACH_SHARE * ref["pitfall"]),
    }


def expected_best(draw_s, n_actions: int, scale: float, mus, sigmas, ref: dict, draws: int = EXPECTED_DRAWS) -> dict:
    """Mean over `draws` random s (draw_s(rng) -> s, NumPy seed 0) of the best reward on each
    side: what a policy that knows every episode's best joint action would earn on average when
    s is re-drawn every episode."""
    rng = np.random.default_rng(0)
    found = [reachability(draw_s(rng), n_actions, scale, mus, sigmas, ref) for _ in range(draws)]
    pit = [f["pitfall_side_best"] for f in found]
    return {
        "expected_best": float(np.mean([f["best_reward"] for f in found])),
        "expected_pitfall_side_best": None if pit[0] is None else float(np.mean(pit)),
        "expected_optimum_reachable_share": float(np.mean([f["optimum_reachable"] for f in found])),
    }


def s_draw_of(cfg: Any) -> str:
    """The effective `s_draw` (UserError for a contradictory pair with `s_seed`)."""
    s_seed, s_draw = _get(cfg, "s_seed"), _get(cfg, "s_draw")
    if s_seed is not None and (isinstance(s_seed, bool) or not isinstance(s_seed, (int, np.integer))):
        raise UserError(f"env.s_seed must be an integer or null, got {s_seed!r}")
    if s_draw is None:
        return "per_episode" if s_seed is None else "once"
    if s_draw not in S_DRAWS:
        raise UserError(f"env.s_draw={s_draw!r} is unknown; choose one of {', '.join(S_DRAWS)}")
    if s_draw == "once" and s_seed is None:
        raise UserError("env.s_draw=once needs env.s_seed=<int> (the seed s is drawn from)")
    if s_draw != "once" and s_seed is not None:
        raise UserError(f"env.s_draw={s_draw} draws s without env.s_seed; set env.s_seed=null")
    return str(s_draw)


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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise UserError(f"env.agents must be an integer of at least 2 (Gaussian squeeze is a multi-agent "
                        f"task: one agent alone has nothing to coordinate with), got {n!r}")
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

    s_draw = s_draw_of(cfg)
    s_seed = _get(cfg, "s_seed")
    fixed_key = jax.random.PRNGKey(int(s_seed)) if s_draw == "once" else None

    def draw_s(key):
        # equal_s draws one value and gives it to everyone.
        s = jax.random.uniform(key, () if equal_s else (n,), jnp.float32, 0.0, s_max)
        return jnp.broadcast_to(s, (n,))

    def reset(key):
        # per_episode: a fresh s from the episode's key; once: the same s every episode.
        # (per_run: the trainer calls reset_for_run with the run's key instead.)
        state = GSState(draw_s(key if fixed_key is None else fixed_key))
        return observe(state), state

    def reset_for_run(key, run_key):
        del key  # s depends on the run alone
        state = GSState(draw_s(run_key))
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
    ref = reference_points(mus, sigmas, x_max)
    meta = {"mus": mus, "sigmas": sigmas, "x_max": x_max, "s_draw": s_draw, **ref}

    def reach(s) -> dict:
        return reachability(np.asarray(s, np.float64), n_actions, scale, mus, sigmas, ref)

    def run_info(run_key) -> dict:
        """What a run's s allows (once: the same for every run)."""
        return reach(draw_s(fixed_key if fixed_key is not None else run_key))

    # The expected best costs draws x agents x actions shifts of a fine x grid: a second for
    # the paper's 10 agents x 10 actions; far beyond that it is skipped (the figures then draw
    # no reference line) rather than stall or exhaust memory when the environment is built.
    if s_draw == "per_episode" and n * n_actions <= MAX_EXPECTED_AGENT_ACTIONS:
        def numpy_s(rng):
            return np.broadcast_to(rng.uniform(0.0, s_max, () if equal_s else (n,)), (n,))

        meta.update(expected_best(numpy_s, n_actions, scale, mus, sigmas, ref))
    suffix = {"once": f":s{s_seed}", "per_run": ":s_per_run", "per_episode": ""}[s_draw]
    return Env(
        name=f"gaussian_squeeze:{domains}:{setting}" + (":equal_s" if equal_s else "") + suffix,
        n_agents=n,
        n_actions=n_actions,
        obs_dim=obs_dim,
        state_dim=n,
        episode_limit=1,
        reset=reset,
        step=step,
        avail_actions=avail_actions,
        global_state=global_state,
        single_state=s_draw != "per_episode",
        one_step=True,
        reset_for_run=reset_for_run if s_draw == "per_run" else None,
        run_info=None if s_draw == "per_episode" else run_info,
        meta=meta,
    )


FAMILY = (GaussianSqueezeConfig, make_gaussian_squeeze)

__all__ = [
    "DOMAINS", "FAMILY", "GSState", "GaussianSqueezeConfig", "REACH_SHARE", "SETTINGS", "S_DRAWS",
    "expected_best", "make_gaussian_squeeze", "reachability", "reachable_x", "reference_points", "reward",
    "s_draw_of", "state_from_s", "valley_x",
]
