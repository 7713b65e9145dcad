"""Small helpers shared by several test files (pytest puts this folder on sys.path)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import qtran
import qtran.run

SRC = str(Path(qtran.__file__).resolve().parents[1])


def count_calls(monkeypatch, name: str, fail: bool = False) -> list:
    """Wrap qtran.run.<name> (train / resume) to record its calls; with fail, any call fails
    the test (a finished run must be skipped, not trained again)."""
    calls = []
    real = getattr(qtran.run, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0] if args else None)
        if fail:
            raise AssertionError(f"qtran.run.{name} must not be called here")
        return real(*args, **kwargs)

    monkeypatch.setattr(qtran.run, name, wrapper)
    return calls


def qtran_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python -m qtran ...` in a fresh process, on this checkout's source."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "qtran", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed (exit status 2, nothing else on stderr)."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr[-2000:])
    return lines[0]


def fingerprint(run_dir: Path) -> dict[str, str]:
    """Every file under a directory and a hash of its bytes."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}
