"""What a configuration needs before it trains: everything training would refuse, checked
from shapes alone (nothing is allocated, nothing compiles but the shapes' tracing).

Below both `qtran.experiments.common` and `qtran.sweep`, which check every job before any
trains, so neither has to import the other back.
"""

from __future__ import annotations

import math
import os

from qtran.errors import UserError


def check_runnable(cfg) -> None:
    """Everything training would refuse, short of training: the environment (a payoff file,
    its sizes), the algorithm, the step schedule and `env_values`. Raises UserError."""
    from qtran.algorithms import make_algorithm
    from qtran.config import INT32_MAX
    from qtran.envs import make_env
    from qtran.runtime import setup
    from qtran.train import Trainer

    setup(cfg.compile_cache)  # the commands check before they train: the cache before compiling
    env = make_env(cfg.env)
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    trainer.runs([cfg.seed])
    for name, value in vars(trainer.schedule).items():  # iteration counters are 32-bit in the trainer
        if value > INT32_MAX:
            raise UserError(f"steps, n_envs and updates_per_step make {name} = {value}, more than {INT32_MAX}")
    need, have = state_bytes(trainer, cfg), memory_bytes()
    if have is not None and need > have:
        raise UserError(f"the training state (replay buffer, networks and optimizer of every seed) would need "
                        f"{need / 2**30:.1f} GiB, more than the {have / 2**30:.1f} GiB here "
                        f"(buffer_size={cfg.buffer_size}, seeds={cfg.seeds})")
    # A sampled batch and an evaluation hold whole episodes of every run at once; their inputs
    # alone must fit (the networks' activations come on top).
    episode, runs = episode_bytes(env), len(trainer.runs([cfg.seed + i for i in range(cfg.seeds)])[0])
    for key, count in (("batch_size", cfg.batch_size), ("eval.episodes", cfg.eval.episodes)):
        size = count * episode * runs
        if have is not None and size > have:
            raise UserError(f"{key}={count} would need {size / 2**30:.1f} GiB of episodes for {runs} runs, more "
                            f"than the {have / 2**30:.1f} GiB here; choose a smaller {key}")


def episode_bytes(env) -> int:
    """Bytes of one stored episode (what replay keeps per slot), from shapes alone."""
    import jax

    from qtran.replay import empty_episode

    one = jax.eval_shape(lambda: empty_episode(env))
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(one))


def state_bytes(trainer, cfg) -> int:
    """Bytes of the seed-batched training state (replay buffer, parameters, optimizer), from its
    shapes alone: nothing is allocated."""
    import jax

    one_seed = jax.eval_shape(lambda: trainer.init_runs([cfg.seed]))
    return cfg.seeds * sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(one_seed))


def memory_bytes() -> int | None:
    """Memory of the accelerators JAX trains on, or of this machine on the CPU (None: unknown)."""
    import jax

    limits = [(d.memory_stats() or {}).get("bytes_limit", 0) for d in jax.local_devices()
              if hasattr(d, "memory_stats")]
    if sum(limits) > 0:
        return int(sum(limits))
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return None
