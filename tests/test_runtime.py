"""The process-wide JAX setup of qtran.runtime: the persistent compilation cache and one CPU
device per core. Both act before JAX starts, so every case runs `qtran` in a fresh subprocess
(conftest turns both off for the rest of the suite)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qtran import checkpoint
from qtran.cli import main
from qtran.devices import shard_count
from qtran.runtime import cache_allowed, cache_dir, cpu_cores, write_cache_entries_whole

RUN = ["algo=vdn", "steps=400", "eval.interval=100", "warmup_steps=64", "tensorboard=false"]
# `qtran ARGS` in this process, counting JAX's persistent-cache events (jax.monitoring).
PROBE = """
import json, sys
import jax.monitoring
events = []
jax.monitoring.register_event_listener(lambda name, **kwargs: events.append(name))
from qtran.cli import main
code = main(sys.argv[1:])
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "lookups": events.count("/jax/compilation_cache/compile_requests_use_cache")}))
sys.exit(code)
"""


def _env(cache_home: Path | None = None, cache: str | None = None, per_core: bool = False) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
    if cache is not None:
        env["QTRAN_COMPILE_CACHE"] = cache
    if per_core:  # qtran's default, which conftest turns off: no device count anywhere
        env.pop("JAX_NUM_CPU_DEVICES", None)
        env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                    if "xla_force_host_platform_device_count" not in f)
    return env


def _qtran(args, env) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _entries(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def _same_files(a: Path, b: Path, names=("params.npz", "eval_episodes.npz", "tables.npz")) -> None:
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    for name in names:
        with np.load(a / name) as x, np.load(b / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}:{key}")


# ---- the compilation cache ------------------------------------------------------------------


def test_a_second_process_compiles_nothing_and_gets_the_same_bits(tmp_path):
    home = tmp_path / "xdg"
    cold, _ = _qtran(["train", *RUN, "seeds=2", f"out={tmp_path / 'cold'}"], _env(home, "1"))
    cache = home / "qtran" / "jax"
    written = _entries(cache)
    assert cold["hits"] == 0 and cold["lookups"] > 0 and len(written) == cold["lookups"]
    warm, _ = _qtran(["train", *RUN, "seeds=2", f"out={tmp_path / 'warm'}"], _env(home, "1"))
    # Every executable came from the cache, and the cache was only read.
    assert warm["hits"] == warm["lookups"] == cold["lookups"]
    assert _entries(cache) == written
    assert _summary(tmp_path / "warm")["compile_seconds"] < _summary(tmp_path / "cold")["compile_seconds"]
    _same_files(tmp_path / "cold", tmp_path / "warm")


@pytest.mark.parametrize("switch", ["setting", "environment"])
def test_the_off_switches_write_nothing(tmp_path, switch):
    home = tmp_path / "xdg"
    home.mkdir()
    args = ["train", *RUN, f"out={tmp_path / 'run'}"]
    env = _env(home, "1")
    if switch == "setting":
        args.append("compile_cache=false")
    else:
        env["QTRAN_COMPILE_CACHE"] = "0"
    events, _ = _qtran(args, env)
    assert events == {"hits": 0, "lookups": 0}
    assert list(home.rglob("*")) == []


def test_cache_entries_appear_whole_or_not_at_all(monkeypatch, tmp_path):
    """A reader finds an entry complete or not at all: it is written under another name and
    renamed into place (JAX wrote it in place, and a thread compiling the same program read
    half of it). The first entry for a key stays; a failed write leaves nothing behind."""
    from jax._src import lru_cache

    assert write_cache_entries_whole()
    cache = lru_cache.LRUCache(str(tmp_path), max_size=-1)
    value = os.urandom(1 << 20)
    renames, real_replace = [], os.replace

    def spy(src, dst):  # at the rename: nothing under the entry's name yet, all of it elsewhere
        renames.append((Path(dst).name, Path(dst).exists(), Path(src).read_bytes() == value,
                        Path(src).name.endswith("-cache")))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    cache.put("k1", value)
    assert renames == [("k1-cache", False, True, False)]
    assert cache.get("k1") == value and [p.name for p in tmp_path.iterdir()] == ["k1-cache"]
    cache.put("k1", b"another")
    assert cache.get("k1") == value and len(renames) == 1

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        cache.put("k2", value)
    assert cache.get("k2") is None and [p.name for p in tmp_path.iterdir()] == ["k1-cache"]

    # With a size limit JAX locks its own reads and writes: left to it.
    monkeypatch.setattr(os, "replace", spy)
    limited = lru_cache.LRUCache(str(tmp_path / "limited"), max_size=1 << 30)
    limited.put("k3", value)
    assert limited.get("k3") == value and len(renames) == 1


def test_turning_the_cache_on_installs_the_whole_entry_writer(tmp_path):
    probe = ("from jax._src import lru_cache; from qtran.runtime import use_compile_cache\n"
             "installed = lambda: getattr(lru_cache.LRUCache.put, 'writes_whole_entries', False)\n"
             "print(installed(), use_compile_cache(True) is not None, installed())")
    done = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ["False", "True", "True"], done.stderr[-2000:]


def test_cache_directory_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "qtran" / "jax"
    for ignored in ("", "relative/dir"):  # the XDG rule: only an absolute path counts
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)
        assert cache_dir() == Path.home() / ".cache" / "qtran" / "jax"


def test_a_bad_QTRAN_COMPILE_CACHE_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    for value, allowed in (("0", False), ("off", False), ("1", True), ("", True)):
        monkeypatch.setenv("QTRAN_COMPILE_CACHE", value)
        assert cache_allowed() is allowed
    monkeypatch.setenv("QTRAN_COMPILE_CACHE", "sometimes")
    assert main(["train", *RUN, f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "QTRAN_COMPILE_CACHE must be 0 or 1" in err


# ---- one CPU device per core ----------------------------------------------------------------


def test_experiment_jobs_train_on_one_device_unless_told(tmp_path):
    from qtran.experiments.common import build_configs

    jobs = {"plain": ["algo=vdn"], "told": ["algo=vdn", "shard=true"]}
    configs = build_configs(jobs, tmp_path)
    assert (configs["plain"].shard, configs["told"].shard) == (False, True)


def test_importing_qtran_leaves_jax_unstarted_and_the_api_uses_the_cores(tmp_path):
    script = ("import sys, jax, qtran, qtran.cli, qtran.sweep, qtran.saved_policy, qtran.experiments.table1\n"
              "from jax._src import xla_bridge\n"
              "assert not xla_bridge.backends_are_initialized(), 'importing qtran started JAX'\n"
              "s = qtran.train(sys.argv[1:])\n"
              "print(s['devices'], s['devices_available'])")
    done = subprocess.run([sys.executable, "-c", script, *RUN, "seeds=4", "progress=false",
                           f"out={tmp_path / 'run'}"], env=_env(per_core=True), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    cores = cpu_cores()
    assert done.stdout.split() == [str(shard_count(4, cores)), str(cores)]


def test_the_command_spreads_runs_over_the_cores_and_resumes_to_the_same_bits(tmp_path):
    env = _env(per_core=True)
    full = tmp_path / "full"
    _, err = _qtran(["train", *RUN, "seeds=4", "checkpoint.keep=100", f"out={full}"], env)
    used, cores = shard_count(4, cpu_cores()), cpu_cores()
    assert f"training 4 runs on {used} CPU device" in err
    assert (_summary(full)["devices"], _summary(full)["devices_available"]) == (used, cores)
    partial = tmp_path / "partial"  # as if killed after chunk 1: resumed in another process
    shutil.copytree(full, partial)
    (partial / "summary.json").unlink()
    for chunk, path in checkpoint.list_checkpoints(partial / "checkpoints"):
        if chunk > 1:
            path.unlink()
    _qtran(["resume", str(partial)], env)
    assert _summary(partial)["resumed_from_chunk"] == 2
    _same_files(full, partial)


def test_shard_false_and_a_users_device_count_give_the_one_device_bits(tmp_path):
    one = tmp_path / "one"
    _qtran(["train", *RUN, "seeds=4", f"out={one}"], _env())  # conftest: XLA_FLAGS says one device
    assert (_summary(one)["devices"], _summary(one)["devices_available"]) == (1, 1)
    unsharded = tmp_path / "unsharded"
    _, err = _qtran(["train", *RUN, "seeds=4", "shard=false", f"out={unsharded}"], _env(per_core=True))
    assert _summary(unsharded)["devices"] == 1
    if cpu_cores() > 1:
        assert "(shard=false)" in err
    _same_files(one, unsharded)


UNROLL_PROBE = """
import json, jax, jax.numpy as jnp
from qtran.runtime import unroll_threefry_on_cpu

def draws(key):  # every kind of call the trainer and the environments make
    a, b = jax.random.split(key)
    return {"split": jax.random.split(key, 5), "fold_in": jax.random.fold_in(key, 7),
            "uniform": jax.random.uniform(a, (3, 4)), "randint": jax.random.randint(b, (9,), 0, 25),
            "categorical": jax.random.categorical(a, jnp.zeros((2, 5))),
            "permutation": jax.random.permutation(b, 49)}

def run(key):  # a fresh function each time, so each is lowered anew
    fn = jax.jit(jax.vmap(lambda k: draws(k)))
    text = fn.lower(key).as_text()
    return {k: v.tolist() for k, v in jax.device_get(fn(key)).items()}, text.count("stablehlo.while")

keys = jax.random.split(jax.random.PRNGKey(3), 15)
rolled, loops_before = run(keys)
assert unroll_threefry_on_cpu()
unrolled, loops_after = run(keys)
print(json.dumps({"same": rolled == unrolled, "loops": [loops_before, loops_after]}))
"""


def test_unrolled_threefry_draws_the_same_bits_without_loops():
    done = subprocess.run([sys.executable, "-c", UNROLL_PROBE], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["same"]
    before, after = out["loops"]
    assert before > 0 and after == 0  # the switch took effect: no rolled round loops are left


TRAINER_UNROLL_PROBE = """
import sys, jax
from qtran.algorithms import make_algorithm
from qtran.config import make_config
from qtran.envs import make_env
from qtran.train import Trainer

def loops():
    return jax.jit(lambda k: jax.random.split(k, 3)).lower(jax.random.PRNGKey(0)).as_text().count("stablehlo.while")

before = loops()
cfg = make_config(sys.argv[1:])
env = make_env(cfg.env)
Trainer(cfg, env, make_algorithm(cfg, env))
print(before, loops())
"""


@pytest.mark.parametrize("game", [["env=matrix", "env.payoff=table1"], ["env=gaussian_squeeze"],
                                  ["env=predator_prey", "env.grid=5"]])
def test_every_trainer_unrolls_threefry_one_step_games_included(game):
    # One-step games were once left rolled (a guess that their compile would cost more); a
    # Table 1 chunk then ran ~10 rolled loops per iteration, each 5 rounds of a dozen operations.
    done = subprocess.run([sys.executable, "-c", TRAINER_UNROLL_PROBE, "algo=qtran-alt", *game], env=_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = map(int, done.stdout.split()[-2:])
    assert before > 0 and after == 0
