"""Small helpers shared by several test files (pytest puts this folder on sys.path)."""

from __future__ import annotations

import qtran.run


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
