"""The keys of the configuration: which exist for which environment, what each holds and means.

Two users: `make_config` checks every `key=value` against the chosen environment's tree
before OmegaConf sees it (OmegaConf's own messages name its node types, not the mistake),
and `qtran train --help` lists the settings with their defaults and meanings, read from the
config dataclasses themselves (the comment above or beside each field), so the help cannot
drift from the code.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import math
import re
import textwrap
import tokenize

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._yaml import get_yaml_loader
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import IntegerNode, ValueNode

from qtran.errors import UserError

OPEN_GROUPS = ("env.kwargs",)  # free-form constructor arguments of an outside environment


# ---- checking overrides ---------------------------------------------------------------------

def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    """Every dotted key of a plain config tree whose value is not itself a group."""
    keys = []
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in OPEN_GROUPS:
            keys.extend(leaf_keys(value, f"{key}."))
        else:
            keys.append(key)
    return keys


def _known(tree: dict, key: str) -> bool:
    """Whether `key` names something in the tree (a group, a leaf, or anything inside an open
    group). Keys that go through a list or a leaf (`env_values.0`) are left to OmegaConf."""
    node = tree
    for depth, part in enumerate(key.split(".")):
        if ".".join(key.split(".")[:depth]) in OPEN_GROUPS or not isinstance(node, dict):
            return True
        if part not in node:
            return False
        node = node[part]
    return True


def unknown_key_message(key: str, env_name: str, tree: dict, families: dict) -> str:
    """One line: the key is unknown here, and either the environments that have it or the
    closest known key. `families`: environment name -> its config dataclass."""
    owners = [f"env={name}" for name, config_cls in families.items()
              if name != env_name and key.startswith("env.")
              and _known({"env": dataclasses.asdict(config_cls())}, key)]
    if owners:
        return f"unknown setting {key!r} for env={env_name}; {key} belongs to {or_list(owners)}"
    # the closest key here, or in another environment's settings (said with its env=)
    candidates = {k: "" for k in leaf_keys(tree)}
    for name, config_cls in families.items():
        for k in leaf_keys({"env": dataclasses.asdict(config_cls())}):
            candidates.setdefault(k, f" (env={name})")
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    if not close:  # `lambda_opt` for `qtran.lambda_opt`: the same last part in another group
        close = [k for k in candidates if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]][:1]
    hint = f"; did you mean {close[0]!r}{candidates[close[0]]}?" if close else ""
    return f"unknown setting {key!r}{hint}"


def or_list(names) -> str:
    """'a', 'a or b', 'a, b or c'."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def group_message(key: str, tree: dict) -> str | None:
    """A one-line error when `key` names a group of settings rather than one setting."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, dict) or not node or key in OPEN_GROUPS:
        return None
    return f"{key} is a group of settings, not one value; set its keys, e.g. {key}.{next(iter(node))}=..."


def _node(base: DictConfig, key: str):
    """The OmegaConf node of a leaf key (None where the key does not lead to a leaf node)."""
    parent, _, name = key.rpartition(".")
    try:
        group = OmegaConf.select(base, parent) if parent else base
    except OmegaConfBaseException:  # a key OmegaConf's grammar cannot read: its own error later
        return None
    if not isinstance(group, DictConfig) or name not in group:
        return None
    node = group._get_node(name)
    return node if isinstance(node, ValueNode) else None


def _parsed(value: str):
    """The value as OmegaConf will read it (YAML); the raw string where YAML cannot read it."""
    try:
        return yaml.load(value, Loader=get_yaml_loader())
    except (yaml.YAMLError, UnicodeError, RecursionError, ValueError, TypeError):
        return value


def typed_value(base: DictConfig, key: str, value: str) -> str:
    """The value to hand OmegaConf: an integral float for an integer setting becomes that
    integer (`steps=1e4`, `steps=2.5e5`). Raises UserError for an empty value of a setting
    that cannot be None, and for a number that is not whole where a whole one is needed."""
    node = _node(base, key)
    if node is None or value.strip().startswith("${"):  # a group, a list, an interpolation
        return value
    parsed = _parsed(value)
    if parsed is None and not node._is_optional():
        default = node._value()
        hint = f" (default {key}={_default(default)})" if default is not None else ""
        raise UserError(f"{key}= is empty; give it a value{hint}")
    if isinstance(node, IntegerNode) and parsed is not None and not isinstance(parsed, bool):
        if isinstance(parsed, int):
            return value
        if isinstance(parsed, float) and math.isfinite(parsed) and parsed.is_integer():
            return str(int(parsed))
        raise UserError(f"{key} must be a whole number, got {value!r}")
    return value


def whole_number(key: str, value: str) -> int:
    """`value` as an int, in any spelling of a whole number (`4`, `4.0`, `1e4`); for the
    command-level integers that do not go through OmegaConf (`workers=`, `max_retries=`)."""
    text = value.strip()
    try:
        number = float(text) if text.isascii() else math.nan
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number.is_integer()):
        raise UserError(f"{key} must be a whole number, got {value!r}")
    return int(text) if text.lstrip("+-").isdigit() else int(number)  # big integers: exactly


def check_overrides(base: DictConfig, env_name: str, items: list[str], families: dict) -> list[str]:
    """`key=value` items checked against the tree of `env_name`; returns them with integer
    settings given as integral floats turned into integers. `families`: environment name ->
    its config dataclass, to say where an unknown `env.*` key belongs."""
    tree = OmegaConf.to_container(base)
    out = []
    for item in items:
        key, _, value = item.partition("=")
        if not _known(tree, key):
            raise UserError(unknown_key_message(key, env_name, tree, families))
        problem = group_message(key, tree)
        if problem and not isinstance(_parsed(value), dict):  # `eps={start: 0.5}` sets a group
            raise UserError(problem)
        out.append(f"{key}={typed_value(base, key, value)}")
    return out


# ---- describing the settings ------------------------------------------------------------------

def field_notes(cls) -> dict[str, str]:
    """The comment above each field of a dataclass (consecutive comment lines) and the one
    beside it, joined: {field name: text}. Empty where the source cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source shipped (frozen application)
        return {}
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    names = {f.name for f in dataclasses.fields(cls)}
    notes = {}
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.match(r"\s+(\w+)\s*:", line)
        if not match or match.group(1) not in names:
            continue
        above, row = [], number - 1
        while row in comments and row not in code_lines:  # a comment-only line just above
            above.insert(0, comments[row])
            row -= 1
        beside = [comments[number]] if number in comments else []
        notes[match.group(1)] = " ".join(above + beside)
    return notes


def first_clause(text: str, limit: int = 200) -> str:
    """The first sentence; if longer than `limit`, its first clause (full stops and semicolons
    inside parentheses do not count)."""
    ends = {".": None, ";": None}
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in ends and ends[char] is None and text[i + 1: i + 2] in ("", " "):
            ends[char] = i
    sentence = text if ends["."] is None else text[: ends["."]]
    if len(sentence) > limit and ends[";"] is not None and ends[";"] < len(sentence):
        return text[: ends[";"]]
    return sentence


def _default(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def settings_overview(config_cls, families: dict, width: int = 100) -> str:
    """The settings of `qtran train`, from the dataclasses: every top-level key with its
    default and meaning, each group's keys with their defaults, each environment's keys.
    `families`: environment name -> its config dataclass."""
    notes = field_notes(config_cls)
    defaults = config_cls(env=None)
    scalar, groups = [], []
    for f in dataclasses.fields(config_cls):
        value = getattr(defaults, f.name)
        if f.name == "env":
            continue
        (groups if dataclasses.is_dataclass(value) else scalar).append((f.name, value))
    lines = ["settings (key=value; defaults shown):"]
    column = max(len(f"{name}={_default(value)}") for name, value in scalar) + 4
    for name, value in scalar:
        lines += _entry(f"{name}={_default(value)}", first_clause(notes.get(name, "")), column, width)
    lines.append("")
    lines.append("groups (group.key=value):")
    column = max(len(name) for name, _ in groups) + 6
    for name, value in groups:
        keys = " ".join(f"{f.name}={_default(getattr(value, f.name))}" for f in dataclasses.fields(value))
        lines += _entry(f"{name}.*", keys, column, width)
    lines.append("")
    lines.append("environments (env=NAME; every env.* setting with its value: qtran config env=NAME):")
    column = max(map(len, families)) + 4
    for name, env_config_cls in families.items():
        cfg = env_config_cls()
        keys = " ".join(f"env.{f.name}={_default(getattr(cfg, f.name))}"
                        for f in dataclasses.fields(cfg) if f.name != "name")
        lines += _entry(name, keys, column, width)
    return "\n".join(lines)


def _entry(head: str, text: str, column: int, width: int) -> list[str]:
    """`head` indented by two, `text` wrapped in a column beside it (or below, if head is long)."""
    head = f"  {head}"
    body = textwrap.wrap(text, width - column) or [""]
    if len(head) + 2 > column:
        return [head] + [" " * column + b for b in body if b]
    return [head.ljust(column) + body[0]] + [" " * column + b for b in body[1:]]
