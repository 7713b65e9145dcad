import os

# Tests run on the CPU even where a GPU is present; determinism tests compare exact bits.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One CPU device unless a test asks for more (tests/test_sharding.py, tests/test_runtime.py):
# the qtran command would otherwise make one per core, and bitwise comparisons between a run in
# this process and one in a subprocess need both to see the same devices. Subprocesses inherit it.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1").strip()
# No persistent compilation cache: the suite must not write into the user's ~/.cache, and a test
# that wants the cache turns it on with its own temporary XDG_CACHE_HOME (tests/test_runtime.py).
os.environ.setdefault("QTRAN_COMPILE_CACHE", "0")
