"""How this process runs JAX: a persistent compilation cache, and one CPU device per core.

Both are process-wide JAX settings that only take effect if made early: the device count
before JAX starts its backend, the cache before the first compilation. The `qtran` command
applies them first thing (`main`), and `qtran.run.fit` / `resume` (behind `qtran.train`)
apply them again for Python callers; where JAX has already started, the device count is
left as it is.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from pathlib import Path

import jax

from qtran.errors import UserError

CACHE_ENV = "QTRAN_COMPILE_CACHE"  # "0" turns the cache off for every qtran command and run
# Every executable goes to the cache, however quickly it compiled: a run compiles a few dozen
# small programs (initialisation, evaluation, tables, eager operations) besides its training
# chunk, and with JAX's default threshold (1 s) a warm run still spent seconds compiling them.
MIN_COMPILE_SECONDS = 0.0
_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")

_lock = threading.Lock()  # reproduce and sweep call fit from several threads at once
_cache_state: bool | None = None  # what use_compile_cache last applied (None: never called)
_our_cache_dir: str | None = None  # the directory we set, to tell it from one the user set
_unwritable: Path | None = None  # our directory, once it could not be created (said once)


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/qtran/jax, or ~/.cache/qtran/jax (the XDG rule: a relative or empty
    XDG_CACHE_HOME is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "qtran" / "jax"


def cache_allowed() -> bool:
    """False when the environment turns the cache off (QTRAN_COMPILE_CACHE=0)."""
    value = os.environ.get(CACHE_ENV, "").strip().lower()
    if value and value not in _OFF + _ON:
        raise UserError(f"{CACHE_ENV} must be 0 or 1, got {os.environ[CACHE_ENV]!r}")
    return value not in _OFF


def use_compile_cache(enabled: bool) -> Path | None:
    """Turn JAX's persistent compilation cache on (in cache_dir(), unless the user pointed
    JAX_COMPILATION_CACHE_DIR elsewhere) or off; returns the directory in use, or None."""
    global _cache_state
    with _lock:
        if enabled != _cache_state:
            if enabled:
                enabled = _point_cache_at_a_directory()
                write_cache_entries_whole()
            jax.config.update("jax_enable_compilation_cache", enabled)
            # JAX decides at its first compilation whether this process uses the cache, and
            # keeps that answer; a compilation may have come before this call (a payoff turned
            # into an array), or the last call said otherwise: make it decide again.
            from jax.experimental.compilation_cache import compilation_cache

            compilation_cache.reset_cache()
            _cache_state = enabled
        return Path(jax.config.jax_compilation_cache_dir) if _cache_state else None


def _point_cache_at_a_directory() -> bool:
    """Set the cache directory (ours unless the user chose one) and the write threshold; False
    when ours cannot be created (the run goes on without a cache)."""
    global _our_cache_dir, _unwritable
    current = jax.config.jax_compilation_cache_dir
    if current is None or current == _our_cache_dir:
        path = cache_dir()
        if path == _unwritable:
            return False
        try:
            # Private (0700): JAX trusts its cache, and whoever can write executables into
            # it can run code in this process.
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            print(f"qtran: no compilation cache: cannot create {path} ({err.strerror or err})",
                  file=sys.stderr)
            _unwritable = path
            return False
        _our_cache_dir = str(path)
        jax.config.update("jax_compilation_cache_dir", _our_cache_dir)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # else the user's threshold
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return True


def write_cache_entries_whole() -> bool:
    """Make JAX write each persistent-cache entry to a temporary file and rename it into place.

    Without a size limit JAX writes an entry straight to its final name, unlocked, so a
    process or thread that looks the same program up meanwhile reads half a file: a cold
    `qtran reproduce table1` once warned "Error reading persistent compilation cache entry for
    'jit__evaluate_one' ... truncated stream" (VDN and IQL compile the same evaluation in two
    threads; JAX then compiles it again). A rename is atomic on one file system, so a reader
    finds the whole entry or none. The other cure, a size limit (JAX then locks every read and
    write), made the test suite 20% slower (NOTES.md, 2026-12-07); with a limit the user set,
    and for remote cache directories, JAX's own writing is kept. Process-wide and idempotent;
    a no-op (False) where JAX's internals differ."""
    try:
        from jax._src import lru_cache

        original = lru_cache.LRUCache.put
        suffix = lru_cache._CACHE_SUFFIX
    except (ImportError, AttributeError):
        return False
    if getattr(original, "writes_whole_entries", False):
        return True

    def put(self, key: str, value: bytes) -> None:
        directory = str(getattr(self, "path", ""))
        if not key or getattr(self, "eviction_enabled", True) or not directory or "://" in directory:
            return original(self, key, value)
        final = os.path.join(directory, f"{key}{suffix}")
        if os.path.exists(final):  # as JAX does: the first entry for a key stays
            return
        handle, partial = tempfile.mkstemp(dir=directory, prefix=".partial-")  # never named *-cache
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(value)
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise

    put.writes_whole_entries = True
    lru_cache.LRUCache.put = put
    return True


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def user_chose_cpu_devices() -> bool:
    """Whether the CPU device count was already set: in XLA_FLAGS, JAX_NUM_CPU_DEVICES or
    jax.config (JAX reads the environment variable into its config)."""
    return ("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            or jax.config.jax_num_cpu_devices != -1)


def use_cpu_cores() -> int | None:
    """One CPU device per core, so that a batch of runs can be sharded over the cores
    (qtran.devices). Returns the device count set, or None when left alone: the user chose
    one, JAX_PLATFORMS excludes the CPU, there is one core, or JAX has already started."""
    platforms = (jax.config.jax_platforms or "").split(",")
    if user_chose_cpu_devices() or (platforms != [""] and "cpu" not in platforms):
        return None
    cores = cpu_cores()
    if cores < 2:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the backend has started (JAX was used before qtran): keep its devices
        return None
    return cores


def unroll_threefry_on_cpu() -> bool:
    """Lower JAX's threefry hash on the CPU with its rounds unrolled, as on other platforms.

    JAX lowers threefry2x32 on the CPU as a rolled loop (5 iterations of 4 rounds) to keep
    compilation small. Every random call inside a training step then becomes a while loop of
    a dozen tiny operations, and the runtime between operations dominates: predator-prey's
    chunk ran about 200,000 operations per iteration, 38,000 with the rounds unrolled (VDN,
    N = 2, 15 runs; benchmarks/bench_fig4_piece.py, NOTES.md). The hash is the same, so every
    random bit is the same: only the program's shape changes (tests/test_runtime.py checks
    the bits). The trainer calls it for every environment: a one-step game's chunk was once
    left rolled, on a guess that its compile would cost more, but measured quietly it is the
    other way (`qtran reproduce table1`, 2026-12-07, alternating: cold 45.0-46.0 s unrolled
    against 48.2-51.6 s rolled, warm 30.1-31.7 s either way). Process-wide, like the other
    settings here; a no-op where JAX's internals differ (returns False then).
    """
    try:
        from jax._src.random import threefry2x32 as threefry
        from jax.interpreters import mlir

        unrolled = threefry._threefry2x32_lowering_rule  # JAX's rule for non-CPU platforms
    except (ImportError, AttributeError):
        return False
    mlir.register_lowering(threefry.threefry2x32_p, unrolled, platform="cpu")
    return True


def setup(compile_cache: bool = True) -> None:
    """Everything above, for an entry point: devices first (nothing compiles before)."""
    use_cpu_cores()
    use_compile_cache(compile_cache and cache_allowed())


def describe_devices(runs: int, used: int, shard: bool = True, padding: int = 0) -> str:
    """The line saying where a batch of runs trains, e.g. 'training 10 runs on 2 CPU devices
    (one per core)', or with padding 'training 15 runs on 2 CPU devices (one per core; 1
    padding run, a copy of run 0, evens the split and is not written)'."""
    devices = jax.devices()
    kind = devices[0].platform.upper()
    plural = "s" if runs > 1 else ""
    line = f"training {runs} run{plural} on {used} {kind} device{'s' if used > 1 else ''}"
    if len(devices) == 1 or runs == 1:
        return line
    if used > 1:
        notes = ["one per core"] if kind == "CPU" and len(devices) == cpu_cores() else []
        if padding:
            notes.append(f"{padding} padding run{'s' if padding > 1 else ''}, a copy of run 0, evens the split "
                         "and is not written")
        return line + (f" ({'; '.join(notes)})" if notes else "")
    return line + f" of {len(devices)}" + (" (shard=false)" if not shard else "")
