"""Spreading the run axis (seeds, or env values x seeds) over several accelerators.

Every leaf of the training state has the runs as its leading axis and runs never talk to each
other, so placing that axis on a one-dimensional device mesh lets XLA's partitioner split the
whole jitted chunk across devices with no communication: no `pmap`, no code change. On one
device (a laptop's CPU) nothing is placed and the program is the single-device one.

A batch that does not split evenly (15 runs on 2 devices) is padded with copies of run 0
(`pad_runs`) that are dropped from everything written (`real_runs`): one run of extra work
buys the second device, where a divisor-only rule left 15 runs on one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"


def shard_count(n_runs: int, n_devices: int) -> int:
    """How many devices, at most n_devices, the runs go to: the fewest that give the smallest
    batch per device, ceil(n_runs / devices). 15 runs on 2 devices: 2 (8 and 7 + 1 padding run);
    6 on 4: 3 (2 each, no padding rather than 2, 2, 1 + 1); 1 run: 1."""
    n_runs, n_devices = max(1, n_runs), max(1, n_devices)
    return min(range(1, min(n_runs, n_devices) + 1), key=lambda k: (-(-n_runs // k), k))


def padding_runs(n_runs: int, devices: int) -> int:
    """Runs added so that n_runs split evenly over `devices` (fewer than `devices`)."""
    return -(-n_runs // devices) * devices - n_runs


class RunLayout(NamedTuple):
    """Where a batch of runs trains: its sharding (None on one device) and the padding runs
    appended to make the batch split evenly (copies of run 0, thrown away)."""

    sharding: NamedSharding | None
    padding: int

    @property
    def devices(self) -> int:
        return 1 if self.sharding is None else len(self.sharding.mesh.devices.flat)


def run_layout(n_runs: int, devices=None) -> RunLayout:
    """The layout of n_runs over the local devices (or `devices`): shard_count of them, padded."""
    devices = list(devices if devices is not None else jax.devices())
    count = shard_count(n_runs, len(devices))
    if count == 1:
        return RunLayout(None, 0)
    mesh = Mesh(np.asarray(devices[:count]), (RUN_AXIS,))
    return RunLayout(NamedSharding(mesh, PartitionSpec(RUN_AXIS)), padding_runs(n_runs, count))


def run_sharding(n_runs: int, devices=None) -> NamedSharding | None:
    """The sharding of run_layout (None when that is one device)."""
    return run_layout(n_runs, devices).sharding


def pad_runs(tree, padding: int):
    """Append `padding` copies of run 0 along every leaf's leading (run) axis.

    A copy of a real run, not zeros: it computes what run 0 computes (no NaN or empty-buffer
    path of its own), and runs never read each other, so the real runs' numbers do not depend
    on it. Copying run 0 again after a resume gives the padding the state it had anyway."""
    if padding == 0:
        return tree
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], padding, axis=0)]), tree)


def real_runs(tree, n_runs: int, axis: int = 0):
    """The first n_runs entries along `axis` of every leaf with that axis (padding dropped),
    as NumPy arrays on the host."""
    def trim(x):
        x = np.asarray(x)
        return x[(slice(None),) * axis + (slice(0, n_runs),)] if x.ndim > axis else x
    return jax.tree.map(trim, tree)


def place(states, sharding: NamedSharding | None):
    """Put every leaf's leading (run) axis on the mesh; unchanged without a sharding."""
    return states if sharding is None else jax.device_put(states, sharding)
