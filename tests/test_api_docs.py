"""Every example of docs/api.md runs: its ```python blocks, in order, as one script, from an
empty directory, with fewer seeds and steps than the page shows (the page's sizes give the
results it describes; these give a test of a minute)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
# The page's sizes -> the test's. Every one must be on the page: a changed size is noticed here.
SHRINK = {'"seeds=10"': '"seeds=2"', '"steps=20000"': '"steps=400"', "episodes=100": "episodes=4"}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_page_has_the_examples_it_promises():
    blocks = python_blocks(PAGE.read_text())
    code = "\n".join(blocks)
    for call in ("qtran.make_config(", "qtran.train(", "check_igm(", "load_policy(", "evaluate_saved(",
                 "Env(", "env=make_meet()"):
        assert call in code, call
    missing = [size for size in SHRINK if size not in code]
    assert not missing, f"update SHRINK in {Path(__file__).name}: the page no longer has {missing}"


def test_every_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for number, block in enumerate(python_blocks(PAGE.read_text()), 1):
        for big, small in SHRINK.items():
            block = block.replace(big, small)
        exec(compile(block, f"docs/api.md python block {number}", "exec"), namespace)
    assert (tmp_path / "runs" / "api-alt" / "summary.json").is_file()
    assert (tmp_path / "runs" / "api-meet" / "summary.json").is_file()
