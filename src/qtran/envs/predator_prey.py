"""Modified predator-prey (MPP), Son et al. (2019) section 4.1.

A `grid` x `grid` world, every cell usable, edges block. N predators (the agents) and M prey
start on distinct random cells. Each step:

1. Predators move one after another in index order (0, 1, ...). A move off the grid or into
   a cell that is occupied right now (by a predator, moved or not yet moved, or by a prey)
   leaves the mover where it was (`move_rule="block"`, the default).
2. Then every prey, again in index order, picks one of the 5 actions uniformly at random and
   moves under the same blocking rule.

`move_rule="follow"` is the rule of the authors' released code (Sonkyunghwan/QTRAN,
`Predator-Prey/envs/grid_core.py`, `World.single_agent_step`): every entity, predators then
prey, has its action fixed before anyone moves; a mover whose target cell holds an entity that
has not moved yet lets that entity make its own move first, then enters if the cell is now
free. Chains are followed (a waits for b, b for c); an entity already waiting in the chain, or
one that has already moved, is not asked again, so a swap or a cycle blocks everyone in it. A
prey asked to move early keeps its pre-drawn action and does not move a second time.
3. For each prey, count the predators on its 4 orthogonal neighbour cells (diagonals do not
   count): >= 2 is a catch (+1, and the prey respawns on a random empty cell), exactly 1 is a
   penalty (-P), 0 gives nothing. The team reward is the sum over prey.

Actions (rows grow downwards, row 0 is the top line):

    0 up (row - 1)   1 left (col - 1)   2 stay   3 right (col + 1)   4 down (row + 1)

Episodes last exactly `episode_limit` (100) steps and are never terminal: `step` always
returns done=False, because a time limit is not a terminal state and targets must keep
bootstrapping. The state still counts steps (`t`).

The penalty P lives in the state, not in a closed-over constant, so a trainer can vmap one
compiled environment over several penalties: `reset(key)` uses the config's penalty and
`Env.reset_with_value(key, penalty)` any other (the trainer's `env_values` batch axis).

Observation of agent i (obs_dim = 2 * (N + M) + 3; 9 for N=2, M=1 and 15 for N=4, M=2):

    [ (row_k - row_i) / grid, (col_k - col_i) / grid   for k = predator 0 .. N-1 (i itself
                                                        included, always (0, 0)),
                                                        then prey 0 .. M-1,
      i / N,
      row_i / grid, col_i / grid ]

This is the fully observable observation of the authors' released code (obs="full").
`positions="centred"` writes the absolute positions, the own position here and every
position of the global state, as (row - grid / 2) / grid, as the released code does
(`agents/pos_cac_fo/agent.py`, `state_to_index`); the default "corner" writes row / grid.
obs="local" keeps the same layout and size but hides every entity farther than `view` cells
from agent i (Chebyshev distance, so the view is a (2 view + 1)^2 square): its relative
position reads (0, 0). That is unambiguous, because no two entities ever share a cell, so
only agent i's own slot can truly be (0, 0); the id and the own position stay visible.

Global state (QMIX's mixer input, state_dim = 2 * (N + M)): every position divided by grid,
predators then prey, each as (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qtran.envs.base import Env
from qtran.errors import UserError

N_ACTIONS = 5
ACTION_NAMES = ("up", "left", "stay", "right", "down")
# (d_row, d_col) per action, in the order above. A NumPy constant: a jnp array here would start
# JAX's backend when qtran is imported, before the CLI can choose the CPU device count.
MOVES = np.array([[-1, 0], [0, -1], [0, 0], [0, 1], [1, 0]], np.int32)
OBS_MODES = ("full", "local")
MOVE_RULES = ("block", "follow")
MAX_GRID = 1024
POSITION_ORIGINS = ("corner", "centred")


@dataclass
class PredatorPreyConfig:
    """`env=predator_prey` settings. The paper's runs: agents=2, prey=1, grid=5 and
    agents=4, prey=2, grid=7, each with penalty in {0.5, 1.0, 1.5}."""

    name: str = "predator_prey"
    # Number of predators N (the learning agents).
    agents: int = 2
    # Number of prey M (moving at random).
    prey: int = 1
    # Side of the square grid.
    grid: int = 5
    # P: the team loses P whenever exactly one predator is next to a prey.
    penalty: float = 0.5
    # "full": every entity visible (the released code); "local": only entities within `view`.
    obs: str = "full"
    # Radius of the local view in cells (Chebyshev distance); used only with obs="local".
    view: int = 2
    # Steps per episode; the episode is cut here, never terminated.
    episode_limit: int = 100
    # "block": a move into a cell occupied now fails (this project's default; the paper states
    # no rule); "follow": the occupant moves first and the mover enters if the cell is then
    # free (the released code's envs/grid_core.py).
    move_rule: str = "block"
    # Absolute positions (own position in the observation, the global state): "corner" is
    # row / grid, "centred" is (row - grid / 2) / grid (the released code's state_to_index).
    positions: str = "corner"


class PPState(NamedTuple):
    """Everything the dynamics need, as arrays (a pytree, so it vmaps and scans)."""

    predators: jax.Array  # int32[N, 2] (row, col)
    prey: jax.Array  # int32[M, 2] (row, col), after respawns
    penalty: jax.Array  # float32[] P, per environment so it can be vmapped
    t: jax.Array  # int32[] steps taken this episode
    # The last step's outcome, kept for rendering: predators next to each prey when counted,
    # and where the prey stood then (before a caught prey respawned). Zeros after reset.
    hits: jax.Array  # int32[M]
    counted_at: jax.Array  # int32[M, 2]


def state_from_positions(predators, prey, penalty=0.5, t=0) -> PPState:
    """A state with the given (row, col) positions; for tests and hand-made trajectories."""
    prey = jnp.asarray(prey, jnp.int32).reshape(-1, 2)
    return PPState(
        predators=jnp.asarray(predators, jnp.int32).reshape(-1, 2),
        prey=prey,
        penalty=jnp.asarray(penalty, jnp.float32),
        t=jnp.asarray(t, jnp.int32),
        hits=jnp.zeros(prey.shape[0], jnp.int32),
        counted_at=prey,
    )


def move(positions: jax.Array, index: int, action: jax.Array, grid: int) -> jax.Array:
    """Move entity `index` of `positions` (int[K, 2], all entities) by `action`.

    The move is cancelled when the target is off the grid or occupied by any entity at its
    current position; the caller decides the order, which is what makes moves sequential.
    """
    here = positions[index]
    target = here + jnp.asarray(MOVES)[action]
    off_grid = jnp.any((target < 0) | (target >= grid))
    # "Stay" targets the mover's own cell, which counts as occupied: the result is the same.
    occupied = jnp.any(jnp.all(positions == target, axis=-1))
    return positions.at[index].set(jnp.where(off_grid | occupied, here, target))


def neighbour_counts(predators: jax.Array, prey: jax.Array) -> jax.Array:
    """int32[M]: predators on each prey's 4 orthogonal neighbour cells (Manhattan distance 1)."""
    dist = jnp.abs(prey[:, None, :] - predators[None, :, :]).sum(-1)  # [M, N]
    return (dist == 1).sum(-1).astype(jnp.int32)


def _random_empty_cell(key, positions, grid):
    """A uniformly random cell (row, col) that no entity in `positions` occupies.

    One random integer picks the rank among the free cells, rather than a categorical draw
    over all grid^2 cells (one Gumbel sample per cell, every step, caught or not): that made
    the environment 1.35-1.66x faster (benchmarks/bench_predator_prey.py, NOTES.md).
    """
    cells = positions[:, 0] * grid + positions[:, 1]
    free = jnp.ones(grid * grid, jnp.int32).at[cells].set(0)
    rank = jax.random.randint(key, (), 0, free.sum())
    flat = jnp.argmax(jnp.cumsum(free) > rank)
    return jnp.stack([flat // grid, flat % grid]).astype(jnp.int32)


def move_all_following(positions: jax.Array, actions: jax.Array, grid: int) -> jax.Array:
    """Every entity of positions[K, 2] moves by actions[K] in index order under the released
    code's rule (`move_rule="follow"`, module docstring).

    The released code recurses: a mover marks itself waiting and asks the occupant of its
    target to move first. Here the same calls are laid out flat, as a chain: from mover i,
    follow occupants that have neither moved nor joined the chain; then resolve the chain
    from its far end back to i, each member entering its target if that cell is free by
    then. K is static, so every loop unrolls; the chain has at most K members.
    """
    k = positions.shape[0]
    moved = jnp.zeros(k, bool)
    for i in range(k):
        # Build the chain i -> occupant -> occupant's occupant ... (indices, valid up to length).
        chain = jnp.full(k, i, jnp.int32)
        in_chain = jnp.zeros(k, bool).at[i].set(True)
        length = jnp.int32(1)
        growing = ~moved[i]
        for step in range(1, k):
            last = chain[step - 1]
            target = positions[last] + jnp.asarray(MOVES)[actions[last]]
            at_target = jnp.all(positions == target, axis=-1)  # who stands there now
            occupant = jnp.argmax(at_target)
            asks = growing & at_target.any() & ~moved[occupant] & ~in_chain[occupant]
            chain = chain.at[step].set(jnp.where(asks, occupant, chain[step]))
            in_chain = in_chain.at[occupant].set(in_chain[occupant] | asks)
            length = length + asks.astype(jnp.int32)
            growing = asks
        # Resolve from the far end: each member moves if its target is on the grid and free now.
        for step in reversed(range(k)):
            who = chain[step]
            active = (step < length) & ~moved[i]
            here = positions[who]
            target = here + jnp.asarray(MOVES)[actions[who]]
            off_grid = jnp.any((target < 0) | (target >= grid))
            occupied = jnp.any(jnp.all(positions == target, axis=-1))
            new = jnp.where(active & ~off_grid & ~occupied, target, here)
            positions = positions.at[who].set(new)
            moved = moved.at[who].set(moved[who] | active)
    return positions


def transition(
    key, state: PPState, actions, grid: int, prey_actions=None, move_rule: str = "block"
) -> tuple[PPState, jax.Array, jax.Array, jax.Array]:
    """One step of the dynamics: (next state, team reward, catches, penalties).

    `prey_actions` (int[M]) scripts the prey instead of drawing their moves uniformly from
    `key`; tests use it to replay hand-drawn situations. Respawns always use `key`.
    `move_rule` is "block" or "follow" (module docstring).
    """
    n, m = state.predators.shape[0], state.prey.shape[0]
    k_prey, k_respawn = jax.random.split(key)
    pos = jnp.concatenate([state.predators, state.prey])
    if prey_actions is None:
        prey_actions = jax.random.randint(k_prey, (m,), 0, N_ACTIONS)
    if move_rule == "follow":
        pos = move_all_following(pos, jnp.concatenate([jnp.asarray(actions), jnp.asarray(prey_actions)]), grid)
    else:
        # n and m are static, so these loops unroll; each mover sees everyone's current cell.
        for i in range(n):
            pos = move(pos, i, actions[i], grid)
        for j in range(m):
            pos = move(pos, n + j, prey_actions[j], grid)

    hits = neighbour_counts(pos[:n], pos[n:])
    caught = hits >= 2
    single = hits == 1
    counted_at = pos[n:]
    # Respawn caught prey one by one, so two prey caught together never land on the same
    # cell; the caught prey's own cell counts as taken, so it always really moves away.
    for j, k in enumerate(jax.random.split(k_respawn, m)):
        fresh = _random_empty_cell(k, pos, grid)
        pos = pos.at[n + j].set(jnp.where(caught[j], fresh, pos[n + j]))

    catches = caught.sum().astype(jnp.float32)
    penalties = single.sum().astype(jnp.float32)
    reward = catches - state.penalty * penalties
    nxt = PPState(pos[:n], pos[n:], state.penalty, state.t + 1, hits, counted_at)
    return nxt, reward, catches, penalties


def absolute(cells: jax.Array, grid: int, positions: str = "corner") -> jax.Array:
    """Absolute cells int[..., 2] as floats: row / grid ("corner") or (row - grid / 2) / grid
    ("centred", the released code's)."""
    shift = grid / 2 if positions == "centred" else 0.0
    return (cells - shift) / grid


def observations(state: PPState, grid: int, mode: str = "full", view: int = 2,
                 positions: str = "corner") -> jax.Array:
    """float32[N, 2 (N + M) + 3], the layout in the module docstring."""
    n = state.predators.shape[0]
    entities = jnp.concatenate([state.predators, state.prey])  # [N + M, 2]
    rel = entities[None, :, :] - state.predators[:, None, :]  # [N, N + M, 2]
    if mode == "local":
        visible = jnp.abs(rel).max(-1, keepdims=True) <= view
        rel = jnp.where(visible, rel, 0)
    ids = jnp.arange(n, dtype=jnp.float32)[:, None] / n
    return jnp.concatenate(
        [rel.reshape(n, -1) / grid, ids, absolute(state.predators, grid, positions)], axis=-1
    ).astype(jnp.float32)


def global_state(state: PPState, grid: int, positions: str = "corner") -> jax.Array:
    """float32[2 (N + M)]: all positions (`absolute`), predators then prey."""
    cells = jnp.concatenate([state.predators, state.prey]).reshape(-1)
    return absolute(cells, grid, positions).astype(jnp.float32)


def position_dtype(grid: int):
    """The smallest integer type that holds a coordinate: replay stores positions in it."""
    return jnp.int8 if grid <= 127 else jnp.int16 if grid <= 32767 else jnp.int32


def validate(cfg: PredatorPreyConfig) -> None:
    if int(cfg.agents) < 2:  # a catch needs two predators on the prey: one could never earn a reward
        raise UserError(f"env.agents={cfg.agents}: a catch needs two predators next to the prey, so fewer "
                        "than 2 can never be rewarded; give env.agents=2 or more")
    if int(cfg.prey) < 1:
        raise UserError(f"env.prey={cfg.prey} must be at least 1")
    # One free cell beyond everyone is needed so a caught prey has somewhere to respawn.
    if int(cfg.grid) < 1 or int(cfg.grid) ** 2 <= int(cfg.agents) + int(cfg.prey):
        raise UserError(
            f"env.grid={cfg.grid} is too small for {cfg.agents} predators and {cfg.prey} prey "
            "(need grid*grid > agents + prey)"
        )
    # Every step scans all grid * grid cells (a respawn's free cell); past this the cell count
    # also leaves int32, which reset's permutation of cells needs.
    if int(cfg.grid) > MAX_GRID:
        raise UserError(f"env.grid={cfg.grid} is too large (at most {MAX_GRID}: every step scans all grid * grid cells)")
    if not float(cfg.penalty) >= 0:  # also rejects NaN
        raise UserError(f"env.penalty={cfg.penalty} must be >= 0")
    if cfg.obs not in OBS_MODES:
        raise UserError(f"env.obs={cfg.obs!r} is unknown; choose one of {', '.join(OBS_MODES)}")
    if int(cfg.view) < 0:
        raise UserError(f"env.view={cfg.view} must be >= 0")
    if int(cfg.episode_limit) < 1:
        raise UserError(f"env.episode_limit={cfg.episode_limit} must be at least 1")
    if cfg.move_rule not in MOVE_RULES:
        raise UserError(f"env.move_rule={cfg.move_rule!r} is unknown; choose one of {', '.join(MOVE_RULES)}")
    if cfg.positions not in POSITION_ORIGINS:
        raise UserError(f"env.positions={cfg.positions!r} is unknown; choose one of {', '.join(POSITION_ORIGINS)}")


def make_predator_prey(cfg: PredatorPreyConfig) -> Env:
    validate(cfg)
    n, m, grid = int(cfg.agents), int(cfg.prey), int(cfg.grid)
    mode, view = cfg.obs, int(cfg.view)
    rule, origin = str(cfg.move_rule), str(cfg.positions)

    def obs_of(state):
        return observations(state, grid, mode, view, origin)

    def reset_with_penalty(key, penalty):
        # Distinct cells for everyone: the first N + M entries of a permutation of all cells.
        cells = jax.random.permutation(key, grid * grid)[: n + m]
        pos = jnp.stack([cells // grid, cells % grid], axis=-1).astype(jnp.int32)
        state = state_from_positions(pos[:n], pos[n:], penalty)
        return obs_of(state), state

    def reset(key):
        return reset_with_penalty(key, cfg.penalty)

    def step(key, state, actions):
        nxt, reward, catches, penalties = transition(key, state, actions, grid, move_rule=rule)
        info = {"catches": catches, "penalties": penalties}
        return obs_of(nxt), nxt, reward, jnp.bool_(False), info

    def avail_actions(state):
        del state
        return jnp.ones((n, N_ACTIONS), bool)

    def record(state):
        """The positions, predators then prey: all that observations, state and masks read."""
        return jnp.concatenate([state.predators, state.prey]).astype(position_dtype(grid))

    def rebuild(positions):
        state = state_from_positions(positions[:n].astype(jnp.int32), positions[n:].astype(jnp.int32))
        return obs_of(state), global_state(state, grid, origin), avail_actions(state)

    return Env(
        name=f"predator_prey:n{n}m{m}g{grid}p{cfg.penalty}"
        + ("" if mode == "full" else f":{mode}{view}")
        + ("" if rule == "block" else f":{rule}") + ("" if origin == "corner" else f":{origin}"),
        n_agents=n,
        n_actions=N_ACTIONS,
        obs_dim=2 * (n + m) + 3,
        state_dim=2 * (n + m),
        episode_limit=int(cfg.episode_limit),
        reset=reset,
        step=step,
        avail_actions=avail_actions,
        global_state=lambda state: global_state(state, grid, origin),
        value_name="penalty",
        reset_with_value=reset_with_penalty,
        record=record,
        rebuild=rebuild,
        meta={
            "action_names": ACTION_NAMES,
            "grid": grid,
            "prey": m,
            "penalty": float(cfg.penalty),
        },
    )


FAMILY = (PredatorPreyConfig, make_predator_prey)
