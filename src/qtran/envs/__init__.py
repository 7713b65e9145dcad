"""Environment registry: each family has a config dataclass (its `env.*` settings) and a builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

from qtran.envs import gaussian_squeeze, jaxmarl_adapter, pettingzoo_adapter, predator_prey
from qtran.envs.base import Env
from qtran.envs.matrix import PRESETS, MatrixConfig, load_payoff, make_matrix_game
from qtran.errors import UserError


class Family(NamedTuple):
    config: type
    build: Callable[[Any], Env]


def _matrix(cfg: Any) -> Env:
    env = make_matrix_game(load_payoff(str(cfg.payoff)), name=f"matrix:{cfg.payoff}")
    spec = str(cfg.payoff)
    env.meta["payoff_source"] = spec if spec in PRESETS else str(Path(spec).resolve())  # for summary.json
    return env


FAMILIES: dict[str, Family] = {
    "matrix": Family(MatrixConfig, _matrix),
    "gaussian_squeeze": Family(*gaussian_squeeze.FAMILY),
    "predator_prey": Family(*predator_prey.FAMILY),
    # Other people's environments (optional packages, imported only when built):
    "jaxmarl": Family(*jaxmarl_adapter.FAMILY),  # compiled, like ours
    "pettingzoo": Family(*pettingzoo_adapter.FAMILY),  # steps in Python: qtran.host_loop
}

# Families whose config has a `task` (the outside environment's own name): there
# `env.name=X` on the command line, X not a family, means `env.task=X`.
TASK_FAMILIES = ("jaxmarl", "pettingzoo")


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"unknown environment {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def make_env(cfg: Any) -> Env:
    return family(cfg.name).build(cfg)


__all__ = ["Env", "FAMILIES", "family", "make_env"]
