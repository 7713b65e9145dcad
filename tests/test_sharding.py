"""The run axis spread over several devices gives the one-device results.

CPU devices are split with XLA_FLAGS=--xla_force_host_platform_device_count=2, which must be
set before JAX starts, so each configuration runs in its own process.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qtran.devices import pad_runs, padding_runs, real_runs, run_sharding, shard_count

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


@pytest.mark.parametrize("runs, devices, used, padding", [
    (4, 2, 2, 0), (6, 4, 3, 0), (5, 2, 2, 1), (15, 2, 2, 1), (8, 8, 8, 0), (1, 4, 1, 0), (12, 8, 6, 0),
    (7, 1, 1, 0), (9, 8, 5, 1), (3, 4, 3, 0), (10, 4, 4, 2)])
def test_runs_go_to_the_fewest_devices_that_give_the_smallest_batch_each(runs, devices, used, padding):
    assert shard_count(runs, devices) == used
    assert padding_runs(runs, used) == padding
    assert (runs + padding) % used == 0 and padding < used


def test_padding_copies_run_zero_and_real_runs_drop_it():
    tree = {"a": np.arange(6.0).reshape(3, 2), "b": np.array([7, 8, 9], np.int8)}
    padded = pad_runs(tree, 2)
    np.testing.assert_array_equal(padded["a"], [[0, 1], [2, 3], [4, 5], [0, 1], [0, 1]])
    np.testing.assert_array_equal(padded["b"], [7, 8, 9, 7, 7])
    assert padded["b"].dtype == np.int8
    back = real_runs(padded, 3)
    np.testing.assert_array_equal(back["a"], tree["a"])
    metrics = {"loss": np.zeros((4, 5)), "active": np.ones(4, bool)}  # [iterations, runs] and [iterations]
    kept = real_runs(metrics, 3, axis=1)
    assert kept["loss"].shape == (4, 3) and kept["active"].shape == (4,)


def test_one_device_means_no_sharding():
    assert run_sharding(4) is None  # this process sees one CPU device


# ---- a batch that does not split evenly: padded with a copy of run 0 ---------------------------

PADDED = """
import json, sys, jax
from qtran.run import fit, resume
if sys.argv[1] == "resume":
    summary = resume(sys.argv[2])
else:
    summary = fit(sys.argv[2:] + ["out=" + sys.argv[1]])[1]
print(json.dumps({"devices": summary["devices"], "padding": summary["padding_runs"]}))
"""
# Predator-prey (a multi-step game, a replay of episodes): 3 runs on 2 devices train as 4.
PREY = ["algo=qtran-base", "env=predator_prey", "env.grid=4", "env.episode_limit=20", "steps=400",
        "eval.interval=100", "warmup_steps=40", "updates_per_step=0.25", "batch_size=8", "eval.episodes=4",
        "agent.hidden=16", "progress=false", "tensorboard=false", "checkpoint.keep=100"]


def _padded(args, devices: int = 2) -> tuple[dict, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    done = subprocess.run([sys.executable, "-c", PADDED, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_padded_batch_trains_its_real_runs_as_an_even_batch_does(tmp_path):
    """3 runs on 2 devices (padded to 4) against 4 runs on 2 devices: each device gets the same
    shapes and runs 0-2 the same streams, so their numbers agree bit for bit; what is written
    holds the 3 real runs only, and the line says a padding run was added."""
    three, err = _padded([str(tmp_path / "three"), *PREY, "seeds=3", "progress=true"])
    four, _ = _padded([str(tmp_path / "four"), *PREY, "seeds=4"])
    assert three == {"devices": 2, "padding": 1} and four == {"devices": 2, "padding": 0}
    assert "training 3 runs on 2 CPU devices" in err and "1 padding run" in err
    with np.load(tmp_path / "three" / "params.npz") as a, np.load(tmp_path / "four" / "params.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].shape[0] == 3 and b[key].shape[0] == 4, key
            np.testing.assert_array_equal(a[key], b[key][:3], err_msg=key)
    with np.load(tmp_path / "three" / "eval_episodes.npz") as a, np.load(tmp_path / "four" / "eval_episodes.npz") as b:
        assert a["returns"].shape[1] == 3
        np.testing.assert_array_equal(a["returns"], b["returns"][:, :3])
    s3, s4 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("three", "four"))
    assert s3["seeds"] == [0, 1, 2]
    assert np.asarray(s3["eval_curve"]["returns"]).tolist() == np.asarray(s4["eval_curve"]["returns"])[:, :3].tolist()
    checkpoints = sorted((tmp_path / "three" / "checkpoints").glob("ckpt-*.npz"))
    with np.load(checkpoints[-1]) as ckpt:  # the real runs only: a resume on any device count fits
        assert ckpt["state/key"].shape[0] == 3


def test_a_padded_batch_resumes_to_the_same_bits(tmp_path):
    full = tmp_path / "full"
    _padded([str(full), *PREY, "seeds=3", "env_values=[0.5]"])
    partial = tmp_path / "partial"  # as if killed after chunk 1, resumed in another process
    shutil.copytree(full, partial)
    (partial / "summary.json").unlink()
    for path in sorted((partial / "checkpoints").glob("ckpt-*.npz"))[2:]:
        path.unlink()
    _padded(["resume", str(partial)])
    assert json.loads((partial / "summary.json").read_text())["resumed_from_chunk"] == 2
    for name in ("params.npz", "eval_episodes.npz"):
        with np.load(full / name) as a, np.load(partial / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
    assert (full / "metrics.csv").read_text() == (partial / "metrics.csv").read_text()
