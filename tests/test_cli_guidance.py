"""A CLI that guides (issue 15, items 6-11, 13, 14): what `qtran` says before and while it
trains, how it reads settings, what its help lists. Every call is a real `qtran` process; a
mistake must end with exit status 2 and one line on stderr, never a traceback."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qtran.cli import EXPERIMENTS
from qtran.config import Config, env_config_classes, make_config
from qtran.config_keys import field_notes, settings_overview
from qtran.envs import FAMILIES, TASK_FAMILIES, make_env
from qtran.experiments.common import parse_workers
from qtran.run_notices import rounding_note, too_short_warning
from qtran.sweep import parse_options
from qtran.train import Schedule

ROOT = Path(__file__).resolve().parents[1]


def qtran(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="100")
    return subprocess.run([sys.executable, "-m", "qtran", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd, check=False)


def user_error(*args) -> str:
    """The one line a mistake prints (after checking exit status 2, no traceback, no stdout)."""
    proc = qtran(*args)
    assert proc.returncode == 2, (args, proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---- 9. whole-number settings ---------------------------------------------------------------

@pytest.mark.parametrize("given,expected", [("steps=1e4", "steps: 10000"), ("steps=2.5e5", "steps: 250000"),
                                            ("eps.anneal_steps=1e3", "anneal_steps: 1000"),
                                            ("seeds=3.0", "seeds: 3")])
def test_integral_floats_are_accepted_for_integer_settings(given, expected):
    proc = qtran("config", given)
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^\s*{re.escape(expected)}$", proc.stdout, re.M), proc.stdout


@pytest.mark.parametrize("args,key", [(("steps=1.5e0",), "steps"), (("seeds=2.5",), "seeds"),
                                      (("env=predator_prey", "env.grid=5.5"), "env.grid"),
                                      (("steps=ten",), "steps")])
def test_a_number_that_is_not_whole_is_named(args, key):
    assert f"{key} must be a whole number" in user_error("train", *args)


def test_command_level_integers_take_whole_numbers_too():
    assert parse_workers(["workers=2e0", "steps=5"]) == (2, ["steps=5"])
    assert parse_options([("workers", "4.0"), ("max_retries", "1e1")]).workers == 4
    assert "workers must be a whole number" in user_error("reproduce", "table1", "workers=1.5")
    assert "max_retries must be a whole number" in user_error("sweep", "steps=10,20", "max_retries=x")


# ---- 10. empty values and unknown keys -------------------------------------------------------

def test_an_empty_value_is_one_clear_line():
    line = user_error("train", "env.payoff=")
    assert "env.payoff" in line and "empty" in line
    assert "None" not in line and "Incompatible" not in line


def test_an_empty_optional_setting_still_means_its_default():
    proc = qtran("config", "eval.interval=")
    assert proc.returncode == 0 and re.search(r"^\s*interval: null$", proc.stdout, re.M)


def test_an_environment_setting_names_the_environments_that_have_it():
    line = user_error("train", "env.penalty=1.0")
    assert "env.penalty belongs to env=predator_prey" in line
    line = user_error("train", "env.episode_limit=5")  # several owners: all named
    assert all(f"env={name}" in line for name in ("predator_prey", "jaxmarl", "pettingzoo"))


@pytest.mark.parametrize("args,suggestion", [
    (("train", "lamda_opt=1"), "did you mean 'qtran.lambda_opt'"),
    (("train", "qtran.lamda_opt=1"), "did you mean 'qtran.lambda_opt'"),
    (("train", "stpes=100"), "did you mean 'steps'"),
    (("train", "env=predator_prey", "env.payof=x"), "did you mean 'env.payoff' (env=matrix)"),
])
def test_a_misspelt_key_gets_the_closest_known_one(args, suggestion):
    line = user_error(*args)
    assert line.startswith("qtran: error: unknown setting") and suggestion in line


def test_a_group_given_one_value_is_explained():
    assert "eps is a group of settings" in user_error("train", "eps=0.5")


def test_an_outside_environment_name_without_its_family_points_to_it():
    line = user_error("train", "env.name=MPE_simple_spread_v3")
    assert all(f"env={name}" in line for name in TASK_FAMILIES) and "env.task" in line


def test_reproduce_refuses_the_environment_under_either_spelling():
    for key in ("env.name", "env.task"):
        assert "cannot be changed" in user_error("reproduce", "table1", f"{key}=x")


# ---- 11. train --help lists the settings -------------------------------------------------------

def test_every_setting_has_a_meaning_in_its_dataclass():
    """The help is generated from the comments on the config fields: a field without one
    would show a blank meaning."""
    notes, defaults = field_notes(Config), Config(env=None)
    settings = [f.name for f in dataclasses.fields(Config)
                if f.name != "env" and not dataclasses.is_dataclass(getattr(defaults, f.name))]
    assert "steps" in settings and "eps" not in settings  # groups are listed by their keys
    assert [name for name in settings if not notes.get(name)] == []


def test_train_help_lists_common_settings_with_defaults_and_meanings():
    proc = qtran("train", "--help")
    assert proc.returncode == 0
    text, defaults, notes = proc.stdout, Config(env=None), field_notes(Config)
    for f in dataclasses.fields(Config):
        value = getattr(defaults, f.name)
        if f.name == "env":
            continue
        if dataclasses.is_dataclass(value):
            assert f"{f.name}.*" in text
            continue
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        line = next((ln for ln in text.splitlines() if ln.split() and ln.split()[0] == f"{f.name}={shown}"), None)
        assert line is not None, f.name
        assert notes[f.name].split()[0] in line  # its meaning begins beside it
    for name in FAMILIES:
        assert re.search(rf"^\s+{name}\s+env\.", text, re.M), name
    assert "qtran config env=NAME" in text and "see README" not in text
    assert "env.name=ID" in text and "env.task" in text


def test_the_help_points_to_a_command_that_shows_each_environment():
    for name in ("predator_prey", "gaussian_squeeze"):
        proc = qtran("config", f"env={name}")
        assert proc.returncode == 0
        for f in dataclasses.fields(env_config_classes()[name]):
            assert re.search(rf"^\s+{f.name}:", proc.stdout, re.M), (name, f.name)


def test_docs_cli_carries_the_current_settings_overview():
    """docs/cli.md repeats the generated overview; it must not drift from the code."""
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert settings_overview(Config, env_config_classes()) in docs


# ---- 14. reproduce --help lists every experiment -------------------------------------------------

def test_reproduce_help_lists_every_experiment_and_the_fig4_options():
    proc = qtran("reproduce", "--help")
    assert proc.returncode == 0
    for name in EXPERIMENTS:  # the names cmd_reproduce accepts
        assert re.search(rf"^\s+{name}\s+\S", proc.stdout, re.M), name
    for option in ("budget=quick|medium|paper", "n=2|4", "algos=", "out=DIR", "workers=N"):
        assert option in proc.stdout
    assert set(EXPERIMENTS) >= {"table1", "fig2", "fig3", "fig4"}


# ---- 6, 7, 8. what a run says before it trains ------------------------------------------------

@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """12 steps (10 rounded up to iterations of 4), all within the warm-up."""
    out = tmp_path_factory.mktemp("short") / "run"
    proc = qtran("train", "env=matrix", "steps=10", "n_envs=4", "tensorboard=false", f"out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((out / "summary.json").read_text())


def test_compiling_is_said_before_and_timed_after(short_run):
    lines = short_run[0].stderr.splitlines()
    start = lines.index("compiling ...")
    done = [i for i, ln in enumerate(lines) if re.fullmatch(r"compiled in \d+\.\d s", ln)]
    assert len(done) == 1 and done[0] > start


def test_rounded_steps_are_said(short_run):
    assert "steps=10 rounded up to 12" in short_run[0].stderr
    assert short_run[1]["steps"] == 12


def test_a_run_without_updates_warns_once_and_records_it(short_run):
    proc, summary = short_run
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "warmup_steps=320" in warnings[0] and "no gradient update" in warnings[0]
    assert summary["updates"] == 0
    assert len(summary["warnings"]) == 1 and "no gradient update" in summary["warnings"][0]


def test_quiet_runs_keep_the_warning_and_drop_the_status_lines(tmp_path):
    proc = qtran("train", "env=matrix", "steps=10", "n_envs=4", "tensorboard=false", "progress=false",
                 f"out={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compiling" not in proc.stderr and "rounded up" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]


def _schedule(*overrides):
    cfg = make_config(list(overrides))
    return cfg, Schedule.from_config(cfg, make_env(cfg.env))


def test_predator_prey_rounds_to_whole_episodes():
    cfg, sched = _schedule("env=predator_prey", "steps=50")
    assert "steps=50 rounded up to 100" in rounding_note(cfg, sched)
    assert rounding_note(*_schedule("env=predator_prey", "steps=300")) is None


def test_a_run_past_the_warm_up_is_not_warned():
    cfg, sched = _schedule("steps=400")  # matrix: one step per iteration, 80 updates
    assert sched.total_updates == 80 and too_short_warning(cfg, sched) is None
    cfg, sched = _schedule("steps=320")
    assert sched.total_updates == 0 and too_short_warning(cfg, sched) is not None


# ---- 13. conditions say what "infeasible" means --------------------------------------------

def test_conditions_explain_infeasible_in_one_line(tmp_path):
    payoff = np.zeros((2, 2, 2))
    payoff[0, 0, 0] = 1.0  # QTRAN-alt: infeasible everywhere (tests/test_conditions.py)
    (tmp_path / "all3.json").write_text(json.dumps(payoff.tolist()))
    proc = qtran("conditions", str(tmp_path / "all3.json"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = lines.index("  infeasible for every greedy joint action")
    meaning = lines[at + 1]
    assert "loss cannot reach zero" in meaning and "optimum" in meaning
