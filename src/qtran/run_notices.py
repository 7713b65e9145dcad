"""What a training run tells its user before the progress bar starts.

- "compiling ...", then how long it took: a run is silent for seconds (a matrix game) to
  minutes (predator-prey, recurrent agents) while XLA compiles its programs.
- A step budget rounded up: one iteration collects `n_envs` whole episodes, so `steps` is
  rounded up to a whole number of iterations (predator-prey: steps=50 trains 100).
- A run too short to learn: every step inside the warm-up means no gradient update at all,
  and its returns are those of the untrained networks. This one is a warning, said whatever
  `progress` is and recorded in summary.json (`updates`, `warnings`).

Status lines go to stderr through tqdm (so they do not tear a progress bar), prefixed with
the run's label when several runs train at once, and only with `progress=true`, like the
line that names the devices.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def say(text: str, desc: str | None = None) -> None:
    tqdm.write(f"{desc.strip() + ': ' if desc else ''}{text}", file=sys.stderr)


def status(cfg, text: str, desc: str | None = None) -> None:
    """A status line, unless the run was asked to be quiet (progress=false)."""
    if cfg.progress:
        say(text, desc)


def compiling_started(cfg, desc: str | None = None) -> float:
    """Say that compilation starts; returns the clock to hand to compiling_done."""
    status(cfg, "compiling ...", desc)
    return time.perf_counter()


def compiling_done(cfg, started: float, desc: str | None = None) -> float:
    """Say how long the start-up took (compiling, initialising, the step-0 evaluation); returns
    it, for summary.json's `startup_seconds`."""
    seconds = time.perf_counter() - started
    status(cfg, f"compiled in {seconds:.1f} s", desc)
    return seconds


def steps_trained(schedule) -> int:
    return schedule.total_iters * schedule.steps_per_iter


def rounding_note(cfg, schedule) -> str | None:
    """How `steps` was rounded up to whole iterations, or None when it was not."""
    trained = steps_trained(schedule)
    if trained == cfg.steps:
        return None
    episode = schedule.steps_per_iter // max(1, cfg.n_envs)
    return (f"steps={cfg.steps} rounded up to {trained}: training runs whole iterations of "
            f"n_envs x episode length = {cfg.n_envs} x {episode} steps")


def too_short_warning(cfg, schedule) -> str | None:
    """Why the run will not learn, or None when it makes at least one gradient update."""
    if schedule.total_updates > 0:
        return None
    return (f"steps={steps_trained(schedule)} ends within the warm-up (warmup_steps={cfg.warmup_steps}): "
            f"no gradient update, so the returns are those of untrained networks")


def announce(cfg, schedule, desc: str | None = None) -> list[str]:
    """Say the rounding (a status line) and any warning; returns the warnings for summary.json."""
    note = rounding_note(cfg, schedule)
    if note:
        status(cfg, note, desc)
    warnings = [w for w in (too_short_warning(cfg, schedule),) if w]
    for warning in warnings:
        say(f"warning: {warning}", desc)
    return warnings


def summary_fields(schedule, warnings: list[str]) -> dict:
    """summary.json's record of what the schedule did: gradient updates per run, warnings."""
    return {"updates": schedule.total_updates, "warnings": list(warnings)}
