"""Pictures of predator-prey episodes: a text frame per state and an animated GIF.

Both work from environment states alone (`qtran.envs.predator_prey.PPState`), so they can
draw a hand-made trajectory as well as one recorded by a trainer. A state remembers the last
step's outcome (`hits`: predators next to each prey, `counted_at`: where that prey stood),
which is how a catch can still be drawn after the caught prey has respawned elsewhere.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# One character per predator: 1..9, then letters, so one cell stays one character.
_AGENT_CHARS = "123456789abcdefghijklmnopqrstuvwxyz"


def _np(state: Any) -> dict:
    return {name: np.asarray(value) for name, value in state._asdict().items()}


def step_summary(state: Any) -> tuple[int, float, int, int]:
    """(step, reward, catches, penalties) of the step that produced `state`."""
    s = _np(state)
    catches = int((s["hits"] >= 2).sum())
    penalties = int((s["hits"] == 1).sum())
    return int(s["t"]), catches - float(s["penalty"]) * penalties, catches, penalties


def text_frame(state: Any, grid: int) -> str:
    """The grid, one character per cell (predators 1..N, prey X, empty .), then a status line."""
    s = _np(state)
    cells = [["."] * grid for _ in range(grid)]
    for r, c in s["prey"]:
        cells[r][c] = "X"
    for i, (r, c) in enumerate(s["predators"]):
        cells[r][c] = _AGENT_CHARS[i % len(_AGENT_CHARS)]
    t, reward, catches, penalties = step_summary(state)
    status = f"t={t} reward={reward:g} catches={catches} penalties={penalties}"
    return "\n".join("".join(row) for row in cells) + "\n" + status


def unstack(states: Any) -> list:
    """A list of states from a list, or from one state whose leaves have a leading time axis."""
    if isinstance(states, (list, tuple)) and not hasattr(states, "_asdict"):
        return list(states)
    leaves = _np(states)
    length = len(leaves["t"])
    return [type(states)(**{k: v[i] for k, v in leaves.items()}) for i in range(length)]


def gif(
    frames_states: Any,
    path: str,
    grid: int,
    rewards: Sequence[float] | None = None,
    fps: int = 3,
) -> str:
    """Write an animated GIF of the states to `path` and return the path.

    Predators are numbered blue discs, prey black crosses. A green square marks where a prey
    was caught in the step leading to a frame (the prey itself has already respawned), a red
    square where exactly one predator stood next to a prey (the penalty). `rewards`, when given
    (one per state, or one per step: a state fewer), replace in the title the rewards
    computed from the states.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.patches import Rectangle

    states = unstack(frames_states)
    if not states:
        raise ValueError("gif needs at least one state")
    summaries = [step_summary(s) for s in states]
    if rewards is None:
        step_rewards = [x[1] for x in summaries]
    else:
        step_rewards = [float(r) for r in rewards]
        # T rewards for T + 1 states (reset first): the reset frame earned nothing.
        if len(step_rewards) == len(states) - 1:
            step_rewards = [0.0] + step_rewards
        if len(step_rewards) != len(states):
            raise ValueError(f"{len(step_rewards)} rewards for {len(states)} states")

    fig, ax = plt.subplots(figsize=(3.2, 3.5), dpi=80)

    def draw(k: int):
        ax.clear()
        s = _np(states[k])
        ax.set_xlim(-0.5, grid - 0.5)
        ax.set_ylim(grid - 0.5, -0.5)  # row 0 at the top, as in text_frame
        ax.set_xticks(np.arange(-0.5, grid, 1))
        ax.set_yticks(np.arange(-0.5, grid, 1))
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.tick_params(length=0)
        ax.grid(True, color="0.8")
        ax.set_aspect("equal")
        if k > 0:  # the reset frame has no previous step to show
            for hits, (r, c) in zip(s["hits"], s["counted_at"]):
                if hits >= 1:
                    colour = "limegreen" if hits >= 2 else "red"
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour, alpha=0.5))
        for r, c in s["prey"]:
            ax.plot(c, r, marker="X", color="black", markersize=14)
        for i, (r, c) in enumerate(s["predators"]):
            ax.plot(c, r, marker="o", color="tab:blue", markersize=16)
            ax.text(c, r, _AGENT_CHARS[i % len(_AGENT_CHARS)], color="white",
                    ha="center", va="center", fontsize=9, weight="bold")
        t, _, catches, penalties = summaries[k]
        reward, total = step_rewards[k], sum(step_rewards[: k + 1])
        ax.set_title(f"t={t} r={reward:+g} total={total:+g}\ncatch {catches}  penalty {penalties}",
                     fontsize=8)

    animation = FuncAnimation(fig, draw, frames=len(states))
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
