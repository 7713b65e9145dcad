"""Where the test suite's XLA compilation goes: per test, per file and per compiled function.

Most of the suite's time outside its learning tests is XLA compiling programs (NOTES.md,
2026-12-07), so the question for making it faster is which tests compile, how often and what.
This is a pytest plugin that listens to JAX's compile events in every test process, and a
summary of what it wrote:

    PYTHONPATH=benchmarks QTRAN_COMPILE_PROFILE=/tmp/cprof python3 -m pytest -p compile_profile -m "not slow"
    python3 benchmarks/compile_profile.py /tmp/cprof

Each pytest process (the main one, each xdist worker) writes `<dir>/<worker>.json` when it
ends: seconds of backend compilation, tracing and lowering, and the number of compilations,
per test and per compiled function (`jit(_chunk)` is a training chunk, `jit(_init_one)` the
runs' init, `jit(add)` and the like are operations run one by one outside `jit`). Processes a
test starts itself (`python -m qtran ...`) are not counted; in the fast suite they compiled
about 60 of 770 s (2026-12-07). A compilation served by the persistent cache is not counted
as one: JAX reports only real compilations.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import pytest

ENV = "QTRAN_COMPILE_PROFILE"  # the directory the plugin writes to
COMPILE = "/jax/core/compile/backend_compile_duration"
STAGES = {"/jax/core/compile/jaxpr_trace_duration": "trace", "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          COMPILE: "compile"}

_by_test: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_by_function: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])  # name -> [seconds, compilations]
_current = {"test": None}
OUTSIDE = "(outside tests)"  # compilations at collection or session start, in no test


def _listen(event: str, duration: float, **info) -> None:
    stage = STAGES.get(event)
    if stage is None:
        return
    test = _current["test"] or OUTSIDE
    _by_test[test][stage] += duration
    if event == COMPILE:
        _by_test[test]["compilations"] += 1
        record = _by_function[info.get("fun_name", "?")]
        record[0] += duration
        record[1] += 1


# ---- the pytest plugin ------------------------------------------------------------------
def pytest_configure(config) -> None:
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_listen)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current["test"] = item.nodeid  # setup, call and teardown: a module fixture counts for its first test
    start = time.perf_counter()
    yield
    _by_test[item.nodeid]["wall"] += time.perf_counter() - start
    _current["test"] = None


def pytest_unconfigure(config) -> None:
    out = os.environ.get(ENV)
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    payload = {"tests": _by_test, "functions": _by_function}
    (Path(out) / f"{worker}.json").write_text(json.dumps(payload, indent=1))


# ---- the summary ------------------------------------------------------------------------
def merge(payloads: list[dict]) -> tuple[dict, dict]:
    """(per test, per function) over every process's file; a test runs in one process."""
    tests, functions = {}, collections.defaultdict(lambda: [0.0, 0])
    for payload in payloads:
        tests.update(payload["tests"])
        for name, (seconds, count) in payload["functions"].items():
            functions[name][0] += seconds
            functions[name][1] += count
    return tests, dict(functions)


def by_file(tests: dict) -> dict[str, collections.Counter]:
    files: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, values in tests.items():
        files[nodeid.split("::")[0]].update(values)
    return files


def summary(tests: dict, functions: dict, top: int = 20) -> str:
    compiled = sum(v.get("compile", 0.0) for v in tests.values())
    wall = sum(v.get("wall", 0.0) for v in tests.values())
    count = sum(int(v.get("compilations", 0)) for v in tests.values())
    lines = [f"{sum(name != OUTSIDE for name in tests)} tests: {wall:,.0f} s of test time, "
             f"{compiled:,.0f} s of it backend compilation ({count:,} compilations)", "",
             "by file: compile s / test s / compilations"]
    files = by_file(tests)
    for name, values in sorted(files.items(), key=lambda kv: -kv[1].get("compile", 0.0))[:top]:
        lines.append(f"  {values.get('compile', 0.0):7.1f} {values.get('wall', 0.0):7.1f} "
                     f"{int(values.get('compilations', 0)):6d}  {name}")
    lines += ["", "by compiled function: compile s / compilations / mean ms"]
    for name, (seconds, count) in sorted(functions.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"  {seconds:7.1f} {count:6d} {1e3 * seconds / max(count, 1):7.0f}  {name}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python3 benchmarks/compile_profile.py DIR (the plugin's QTRAN_COMPILE_PROFILE directory)",
              file=sys.stderr)
        return 2
    payloads = [json.loads(p.read_text()) for p in sorted(Path(argv[0]).glob("*.json"))]
    if not payloads:
        print(f"no profile files in {argv[0]}", file=sys.stderr)
        return 2
    print(summary(*merge(payloads)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
