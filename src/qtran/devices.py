"""Spreading the run axis (seeds, or env values x seeds) over several accelerators.

Every leaf of the training state has the runs as its leading axis and runs never talk to each
other, so placing that axis on a one-dimensional device mesh lets XLA's partitioner split the
whole jitted chunk across devices with no communication: no `pmap`, no code change. On one
device (a laptop's CPU) nothing is placed and the program is the single-device one.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"


def shard_count(n_runs: int, n_devices: int) -> int:
    """The largest number of devices, at most n_devices, that divides n_runs evenly."""
    return max(k for k in range(1, n_devices + 1) if n_runs % k == 0)


def run_sharding(n_runs: int, devices=None) -> NamedSharding | None:
    """Shard n_runs over shard_count(...) devices; None when that is one device."""
    devices = list(devices if devices is not None else jax.devices())
    count = shard_count(n_runs, len(devices))
    if count == 1:
        return None
    return NamedSharding(Mesh(np.asarray(devices[:count]), (RUN_AXIS,)), PartitionSpec(RUN_AXIS))


def place(states, sharding: NamedSharding | None):
    """Put every leaf's leading (run) axis on the mesh; unchanged without a sharding."""
    return states if sharding is None else jax.device_put(states, sharding)
