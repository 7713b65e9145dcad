"""Checkpoints and exact resume: killed runs continue to the same bits as uninterrupted ones."""

import filecmp
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qtran import checkpoint
from qtran.cli import main
from qtran.errors import UserError
from qtran.run import fit, resume

# 30 chunks of a matrix game: a few seconds, with a checkpoint after every chunk.
MATRIX = ["algo=qtran-alt", "steps=3000", "eval.interval=100", "warmup_steps=64", "progress=false",
          "seeds=2"]
# Recurrent agents on predator-prey with the penalty batched: whole-episode replay, GRU state.
PREY = ["algo=qmix", "env=predator_prey", "env.grid=4", "env.episode_limit=20", "env_values=[0.5,1.5]",
        "steps=400", "eval.interval=100", "warmup_steps=40", "agent.recurrent=true", "agent.hidden=16",
        "updates_per_step=0.25", "batch_size=8", "eval.episodes=4", "progress=false", "tensorboard=false"]
RESULT_FILES = ("metrics.csv", "params.npz", "eval_episodes.npz")


def assert_same_results(a: Path, b: Path) -> None:
    assert filecmp.cmp(a / "metrics.csv", b / "metrics.csv", shallow=False)
    for name in RESULT_FILES[1:] + (("tables.npz",) if (a / "tables.npz").exists() else ()):
        with np.load(a / name) as x, np.load(b / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}:{key}")


def newest_checkpoint(run_dir: Path) -> int:
    """The chunk of the newest checkpoint on disk (checkpoints are written whole or not at all)."""
    kept = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert kept, "no checkpoint to resume from"
    return kept[-1][0]


def assert_resumed_from(run_dir: Path, checkpoint_chunk: int) -> None:
    """summary.json says the run went on from checkpoint `checkpoint_chunk`, not from scratch:
    `resumed_from_chunk` is the first chunk it trained (run.py: the checkpoint's chunk + 1, and
    null for a run that started at chunk 0). Equal results alone cannot tell a resumed run from
    one trained again from the start: training is deterministic."""
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_chunk"] == checkpoint_chunk + 1, summary["resumed_from_chunk"]


@pytest.fixture(scope="module")
def matrix_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    fit(MATRIX + [f"out={out}"])
    return out


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "qtran", *args]


def _wait_for_checkpoints(run_dir: Path, count: int, proc, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(checkpoint.list_checkpoints(run_dir / "checkpoints")) < count:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(matrix_reference, tmp_path):
    rng = random.Random(1234)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for trial in range(3):
        run_dir = tmp_path / f"killed{trial}"
        proc = subprocess.Popen(_cli("train", *MATRIX, f"out={run_dir}"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_checkpoints(run_dir, rng.randint(1, 2), proc)
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere: mid-chunk, mid-evaluation, mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (run_dir / "summary.json").exists()
        kept = newest_checkpoint(run_dir)
        done = subprocess.run(_cli("resume", str(run_dir)), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert_resumed_from(run_dir, kept)
        assert_same_results(matrix_reference, run_dir)


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_identically(matrix_reference, tmp_path):
    run_dir = tmp_path / "interrupted"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # xdist workers ignore SIGINT and children inherit that (Python then installs no
    # KeyboardInterrupt handler), so the child installs Python's usual handler itself.
    cli = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
           "from qtran.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", cli, "train", *MATRIX, "checkpoint.every=1000",
                             f"out={run_dir}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "metrics.csv").exists() or len((run_dir / "metrics.csv").read_text().splitlines()) < 8:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "qtran resume" in err and "Traceback" not in err
    # every=1000 writes none on its own: this one is Ctrl-C's
    assert len(checkpoint.list_checkpoints(run_dir / "checkpoints")) == 1
    kept = newest_checkpoint(run_dir)
    resume(run_dir)
    assert_resumed_from(run_dir, kept)
    assert_same_results(matrix_reference, run_dir)


def test_resume_mid_run_of_a_recurrent_batched_run(tmp_path):
    full = tmp_path / "full"
    fit(PREY + [f"out={full}", "checkpoint.keep=100"])
    kept = checkpoint.list_checkpoints(full / "checkpoints")
    assert [c for c, _ in kept] == [0, 1, 2, 3]
    for chunk in (1,):  # each resume compiles a GRU program (~10 s); one mid-run point
        partial = tmp_path / f"from{chunk}"
        shutil.copytree(full, partial)
        (partial / "summary.json").unlink()
        for c, path in checkpoint.list_checkpoints(partial / "checkpoints"):
            if c > chunk:
                path.unlink()
        summary = resume(partial)
        assert summary["resumed_from_chunk"] == chunk + 1
        assert_same_results(full, partial)


def test_corrupt_newest_checkpoint_is_refused_and_the_previous_one_used(matrix_reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(matrix_reference, run_dir)
    (run_dir / "summary.json").unlink()
    ckpts = checkpoint.list_checkpoints(run_dir / "checkpoints")
    newest = ckpts[-1][1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside an array
    newest.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match="corrupted|unreadable|checksum"):
        checkpoint.read(newest)
    summary = resume(run_dir)
    assert summary["resumed_from_chunk"] == ckpts[-2][0] + 1
    assert "trying the previous checkpoint" in capsys.readouterr().err
    assert_same_results(matrix_reference, run_dir)


def test_truncated_checkpoint_gives_one_clear_line(matrix_reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(matrix_reference, run_dir)
    (run_dir / "summary.json").unlink()
    for _, path in checkpoint.list_checkpoints(run_dir / "checkpoints"):
        path.write_bytes(path.read_bytes()[:1000])
    assert main(["resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "every checkpoint" in err and "Traceback" not in err


def test_checksum_catches_a_changed_value_even_in_a_valid_file(tmp_path):
    arrays = {"state/x": np.arange(4.0), "__header__": np.asarray('{"chunk": 0}')}
    arrays["__sha256__"] = np.asarray(checkpoint.checksum(arrays))
    arrays["state/x"] = np.arange(4.0) + 1  # a consistent zip, a wrong value
    np.savez(tmp_path / "ckpt-00000000.npz", **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="checksum"):
        checkpoint.read(tmp_path / "ckpt-00000000.npz")


def test_resume_refuses_finished_and_foreign_directories(matrix_reference, tmp_path):
    with pytest.raises(UserError, match="already finished"):
        resume(matrix_reference)
    with pytest.raises(UserError, match="config.yaml"):
        resume(tmp_path)


def test_checkpoint_from_another_config_is_refused(matrix_reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(matrix_reference, run_dir)
    (run_dir / "summary.json").unlink()
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.0005", "lr: 0.001"))
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        resume(run_dir)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_good_checkpoint(tmp_path, capsys):
    payoff = tmp_path / "huge.json"
    payoff.write_text("[[3e38, 0], [0, 1]]")  # finite rewards whose squared TD error overflows
    run_dir = tmp_path / "run"
    code = main(["train", "algo=vdn", f"env.payoff={payoff}", "steps=600", "eval.interval=100",
                 "warmup_steps=100", "progress=false", f"out={run_dir}"])  # chunk 0 only explores
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "training stopped" in err and ("nan" in err or "inf" in err)
    assert not (run_dir / "summary.json").exists()
    good = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert good and "last good checkpoint" in err
    for _, path in good:
        state = checkpoint.read(path)
        assert all(np.isfinite(v).all() for k, v in state.items() if k.startswith("state/params"))
