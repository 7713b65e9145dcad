import atexit
import os
import shutil
import tempfile

# Tests run on the CPU even where a GPU is present; determinism tests compare exact bits.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One CPU device unless a test asks for more (tests/test_sharding.py, tests/test_runtime.py):
# the qtran command would otherwise make one per core, and bitwise comparisons between a run in
# this process and one in a subprocess need both to see the same devices. Subprocesses inherit it.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1").strip()
# A compilation cache of the test process's own, deleted when it exits: never the user's
# ~/.cache, and the many tests that train the same small configurations compile them once
# (the fast suite: 564 s without a cache, 482 s with one; NOTES.md, commit 6a6268f). Results are bit
# for bit those of a fresh compilation (tests/test_runtime.py). Subprocesses inherit it. A test
# about the cache itself sets its own XDG_CACHE_HOME; QTRAN_COMPILE_CACHE=0 turns it off.
if "QTRAN_TEST_CACHE_HOME" not in os.environ:
    os.environ["QTRAN_TEST_CACHE_HOME"] = tempfile.mkdtemp(prefix="qtran-test-cache-")
    atexit.register(shutil.rmtree, os.environ["QTRAN_TEST_CACHE_HOME"], ignore_errors=True)
os.environ["XDG_CACHE_HOME"] = os.environ["QTRAN_TEST_CACHE_HOME"]


# The files that take minutes, longest first (measured with --durations; NOTES.md). With
# `--dist loadfile --no-loadscope-reorder` in pyproject.toml, xdist hands files to its two
# workers in collection order, so starting with the longest keeps one worker from running
# them all at the end while the other sits idle (xdist's default reorders by test count,
# which put these few-test files last).
LONGEST_FIRST = ("test_pp_learning.py", "test_table1.py", "test_mgs_learning.py")


def pytest_collection_modifyitems(session, config, items):
    slow_files = {i.path for i in items if i.get_closest_marker("slow")}
    order = {}
    for item in items:
        name = item.path.name
        order.setdefault(item.path, LONGEST_FIRST.index(name) if name in LONGEST_FIRST
                         else len(LONGEST_FIRST) + (0 if item.path in slow_files else 1))
    items.sort(key=lambda i: order[i.path])  # stable: tests keep their order within a file
