"""The run axis spread over several devices gives the one-device results.

CPU devices are split with XLA_FLAGS=--xla_force_host_platform_device_count=2, which must be
set before JAX starts, so each configuration runs in its own process.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qtran.devices import run_sharding, shard_count

SCRIPT = """
import json, sys, jax
from qtran.run import fit
states, summary = fit(sys.argv[2:] + ["out=" + sys.argv[1]])
leaf = jax.tree.leaves(states.params)[0]
print(json.dumps({"devices": jax.device_count(), "used": summary["devices"],
                  "spread": len(leaf.sharding.device_set)}))
"""
RUN = ["algo=qtran-alt", "seeds=4", "steps=600", "eval.interval=200", "warmup_steps=64", "progress=false",
       "tensorboard=false"]


def _train(out, devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), *RUN], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_device_run_equals_one_device_run(tmp_path):
    one = _train(tmp_path / "one", 1)
    two = _train(tmp_path / "two", 2)
    assert (one["devices"], one["used"], one["spread"]) == (1, 1, 1)
    assert (two["devices"], two["used"], two["spread"]) == (2, 2, 2)
    # Same random streams and maths; each device multiplies a batch of 2 runs instead of 4, and
    # XLA picks other kernels for other shapes, so parameters agree to float32 rounding.
    with np.load(tmp_path / "one" / "params.npz") as a, np.load(tmp_path / "two" / "params.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    s1, s2 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert s1["eval_curve"] == s2["eval_curve"]
    assert s1["greedy_joint_actions"] == s2["greedy_joint_actions"]


@pytest.mark.parametrize("runs, devices, used", [(4, 2, 2), (6, 4, 3), (5, 2, 1), (8, 8, 8), (1, 4, 1),
                                                 (12, 8, 6), (7, 1, 1)])
def test_runs_go_to_the_largest_device_count_that_divides_them(runs, devices, used):
    assert shard_count(runs, devices) == used


def test_one_device_means_no_sharding():
    assert run_sharding(4) is None  # this process sees one CPU device
