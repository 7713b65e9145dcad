import os

# Tests run on the CPU even where a GPU is present; determinism tests compare exact bits.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


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
