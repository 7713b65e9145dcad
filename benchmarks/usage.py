"""How much of the CPU a timed piece of work got, and over how many threads.

On a shared machine a process's CPU time over wall time says what share of the cores it got,
not whether it could use them all: with other jobs running, a program that keeps two threads
busy may still get half a core. Which threads burnt the CPU time answers the second question
regardless of load, so the meter also counts the threads that did a real part of the work
(Linux: per-thread times from /proc/self/task; elsewhere the count is left at 0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

BUSY_SHARE = 0.2  # a thread "works" when it took at least this share of the process's CPU time


def _thread_ticks() -> dict[str, int]:
    """utime + stime of every thread of this process, in clock ticks."""
    ticks = {}
    for task in Path("/proc/self/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            ticks[task.name] = int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
    return ticks


@dataclass
class Usage:
    wall: float = 0.0
    cpu: float = 0.0
    threads: int = 0  # threads that took >= BUSY_SHARE of the CPU time

    @property
    def cores(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0


class meter:
    """`with meter() as u: ...` fills u.wall, u.cpu and u.threads."""

    def __enter__(self) -> Usage:
        self.usage = Usage()
        self._ticks = _thread_ticks()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self.usage

    def __exit__(self, *exc) -> None:
        self.usage.wall = time.perf_counter() - self._wall
        self.usage.cpu = time.process_time() - self._cpu
        after = _thread_ticks()
        spent = [after[t] - self._ticks.get(t, 0) for t in after]
        total = sum(spent)
        self.usage.threads = sum(s >= BUSY_SHARE * total for s in spent) if total > 0 else 0


def combine(usages: list[Usage]) -> Usage:
    """Several measurements as one: summed times, the most threads seen busy at once."""
    return Usage(sum(u.wall for u in usages), sum(u.cpu for u in usages),
                 max((u.threads for u in usages), default=0))
