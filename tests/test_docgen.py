"""docs/options.md and docs/cli.md are generated from the code (`python3 -m qtran.docgen`) and
hold every setting, command, argument and experiment option the code has."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from qtran import docgen
from qtran.cli import EXPERIMENTS, build_parser
from qtran.config import env_config_classes, make_config
from qtran.config_keys import leaf_keys

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.mark.parametrize("name", sorted(docgen.PAGES))
def test_committed_page_is_what_the_code_generates(name):
    committed = (DOCS / name).read_text()
    assert committed == docgen.PAGES[name](), (
        f"docs/{name} is stale: a setting, a command or their wording changed in the code. "
        f"Regenerate it with `{docgen.REGENERATE}` and commit the result.")


def every_setting_key() -> set[str]:
    """Every dotted key of every environment family's configuration, as `qtran config` has it."""
    keys = {"env"}
    for name in env_config_classes():
        tree = OmegaConf.to_container(make_config([f"env={name}"]))
        keys |= {k for k in leaf_keys(tree) if k != "env.name"}
    return keys


def test_options_page_has_every_setting_of_every_environment():
    page = docgen.options_page()
    missing = sorted(k for k in every_setting_key() if f"| `{k}` |" not in page)
    assert not missing, f"settings missing from docs/options.md's tables: {missing}"
    assert {"qplex.heads", "wqmix.alpha", "env.kwargs"} <= every_setting_key()  # the keys cover groups


def test_every_setting_has_a_description():
    assert docgen.missing_descriptions() == [], "add a comment above each of these fields"


def subcommands():
    return {name: sub for name, _, sub in docgen.commands(build_parser())}


def test_cli_page_has_every_command_argument_and_experiment_option():
    page = docgen.cli_page()
    missing = []
    for name, sub in subcommands().items():
        if f"## `qtran {name}`" not in page:
            missing.append(name)
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help") and f"`{flag}" not in page:
                    missing.append(f"{name} {flag}")
    for experiment in EXPERIMENTS:  # `reproduce compare` and the others, from their epilog
        if f"\n  {experiment} " not in page:
            missing.append(f"reproduce {experiment}")
    for option in ("design=single|per_run|per_episode", "panels=", "algos=", "budget=quick|medium|paper"):
        if option not in page:
            missing.append(option)
    assert not missing, f"missing from docs/cli.md: {missing}"
    assert {"claims", "fig3-claims", "fig4-claims"} <= set(subcommands())


def test_every_argument_has_help():
    undescribed = [f"{name} {action.dest}" for name, sub in subcommands().items() for action in sub._actions
                   if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not undescribed, "give these arguments help= in qtran.cli.build_parser"


def test_check_mode_names_a_stale_page_and_passes_a_current_one(tmp_path, capsys):
    assert docgen.main([str(tmp_path)]) == 0
    assert docgen.main(["--check", str(tmp_path)]) == 0
    page = tmp_path / "options.md"
    page.write_text(page.read_text().replace("| `qplex.heads` |", "| `qplex.head_count` |"))
    assert docgen.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "options.md is stale" in err and docgen.REGENERATE in err and "cli.md" not in err


def test_a_missing_docs_directory_is_one_line_and_status_2(tmp_path, capsys):
    assert docgen.main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
