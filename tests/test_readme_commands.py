"""Every command the documentation shows works as written, and every link in it resolves.

The commands are the lines of README.md's and docs/*.md's fenced code blocks that run `qtran`
(`qtran ...`, `python3 -m qtran ...`, also after `$ ` or `&&`; `\\` continues a line). Each is
checked by `qtran.cli.check_command`, which parses and validates it as the command would,
without training: the command exists, every key=value is a known setting with a valid value.
Every path it would read must exist in the repository, be written by an earlier command of the
same page (an `out=`, or `reproduce`'s default `runs/<experiment>`), or be marked as the
reader's own file by a name starting with `my_`.

Lines with placeholders (`<dir>`, `RUN_DIR`, `[--run K]`, `...`) are usage summaries, not
commands, and are skipped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from qtran.cli import check_command
from qtran.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
EXAMPLE_PREFIX = "my_"  # a file the reader brings, not one in the repository
QTRAN_PREFIXES = (["qtran"], ["python3", "-m", "qtran"], ["python", "-m", "qtran"])
NOT_SHELL = ("python", "py", "yaml", "json", "toml")  # code blocks whose lines are no shell commands


@dataclass(frozen=True)
class Command:
    page: Path
    line: int  # 1-based line of the command's first line
    argv: tuple[str, ...]  # the arguments after `qtran`

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: qtran {shlex.join(self.argv)}"


def code_blocks(text: str):
    """(info string, first line number, lines) of every fenced code block."""
    info, start, lines = None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```+\s*(\S*)", line)
        if fence and info is None:
            info, start, lines = fence.group(1).lower(), number + 1, []
        elif fence:
            yield info, start, lines
            info = None
        elif info is not None:
            lines.append(line)


def logical_lines(start: int, lines: list[str]):
    """(line number, text) with `\\`-continued lines joined and a leading `$ ` prompt removed."""
    pending, first = "", start
    for number, line in enumerate(lines, start):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        yield first, text[2:] if text.startswith("$ ") else text


def is_usage_summary(words: list[str]) -> bool:
    """A line that describes a command (`<dir>`, `RUN_DIR`, `[--run K]`, `...`) instead of being one."""
    return any(re.search(r"<[^<>]*>", word) or word.startswith("[") or word == "..."
               or re.fullmatch(r"[A-Z][A-Z_]*", word) for word in words)


def qtran_argv(text: str) -> list[list[str]]:
    """The argument lists of the `qtran` calls on one shell line (comments dropped)."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # not shell (an unbalanced quote in output text)
        return []
    calls, segment = [], []
    for word in words + ["&&"]:
        if word in ("&&", "||", ";", "|"):
            for prefix in QTRAN_PREFIXES:
                if segment[: len(prefix)] == prefix:
                    calls.append(segment[len(prefix):])
            segment = []
        else:
            segment.append(word)
    return [argv for argv in calls if not is_usage_summary(argv)]


def commands_in(page: Path) -> list[Command]:
    found = []
    for info, start, lines in code_blocks(page.read_text()):
        if info in NOT_SHELL:
            continue
        for number, text in logical_lines(start, lines):
            found += [Command(page, number, tuple(argv)) for argv in qtran_argv(text)]
    return found


def written_by(command: Command) -> list[str]:
    """The directories a command writes: its `out=` (`reproduce`: by default runs/<experiment>)."""
    outs = [a[4:] for a in command.argv if a.startswith("out=")]
    if not outs and command.argv[:1] == ("reproduce",) and len(command.argv) > 1:
        outs = [f"runs/{command.argv[1]}"]
    return outs


def is_provided(path: str, earlier_outs: list[str]) -> bool:
    """A path exists in the repository, comes from an earlier command's `out=`, or is the reader's own."""
    concrete = re.split(r"[*?\[]", path, maxsplit=1)[0].rstrip("/") or "."
    if (ROOT / concrete).exists() or Path(path).name.startswith(EXAMPLE_PREFIX):
        return True
    return any(concrete == out.rstrip("/") or concrete.startswith(out.rstrip("/") + "/") for out in earlier_outs)


ALL_COMMANDS = [c for page in PAGES for c in commands_in(page)]


def test_the_readme_shows_commands():
    """The extraction finds the README's commands (a broken extractor would check nothing)."""
    readme = [c for c in ALL_COMMANDS if c.page.name == "README.md"]
    assert any(c.argv[:2] == ("reproduce", "table1") for c in readme)
    assert {c.argv[0] for c in readme} >= {"train", "reproduce", "plot"}


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=str)
def test_documented_command_parses(command):
    try:
        paths = check_command(list(command.argv))
    except (UserError, SystemExit) as err:
        pytest.fail(f"{command}\n  fails: {err}")
    earlier = [out for c in ALL_COMMANDS if c.page == command.page and c.line < command.line
               for out in written_by(c)]
    missing = [p for p in paths if not is_provided(p, earlier)]
    assert not missing, f"{command}\n  reads {missing}: not in the repository, not written by an " \
                        f"earlier command on the page, and not named {EXAMPLE_PREFIX}*"


@pytest.mark.parametrize("argv, wrong", [
    (["train", "algo=qtran-alt", "eps.strat=1"], "eps.strat"),  # a typo'd key
    (["train", "algo=qtran-alt", "env.payoff=table1", "seeds=ten"], "seeds"),  # a wrong type
    (["reproduce", "table1", "budget=medium"], "budget"),  # fig4's option on table1
    (["reproduce", "fig4", "algos=qtran-alt,iql"], "iql"),
    (["sweep", "algo=vdn,qmx"], "qmx"),
    (["reproduce", "fig5"], "fig5"),
])
def test_check_command_refuses_a_mistake(argv, wrong):
    with pytest.raises(UserError, match=wrong):
        check_command(argv)


def test_extraction_of_a_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "```bash",
        "pip install -e . && python3 -m qtran reproduce table1   # comment",
        "qtran train algo=vdn \\",
        "    seeds=3",
        "qtran plot RUN_DIR [RUN_DIR ...]",
        "qtran train algo=<iql|vdn>",
        "```",
        "```python",
        "qtran.train(['algo=vdn'])",
        "```",
        "```",
        "$ qtran conditions table1",
        "qtran: error: not a command line",
        "```",
    ]))
    assert [(c.line, c.argv) for c in commands_in(page)] == [
        (2, ("reproduce", "table1")), (3, ("train", "algo=vdn", "seeds=3")), (12, ("conditions", "table1"))]


def test_paths_must_exist_or_be_produced_or_be_examples():
    assert is_provided("docs/results/fig4", [])
    assert is_provided("runs/pp-sweep/*/", ["runs/pp-sweep"])
    assert is_provided("my_game.npy", [])
    assert not is_provided("runs/pp", ["runs/pp2"])
    assert not is_provided("game.npy", [])


# ---- links --------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to -."""
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not in_code:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            found.add(slug)
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"
