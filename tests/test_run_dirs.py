"""Run directories are never clobbered and say which run each row is (issue 15, items 1-5, 12).

- `qtran train out=DIR` refuses a DIR that holds a run (finished or interrupted) unless told
  `--overwrite`, which empties it first, and only after every other check has passed;
- `qtran plot` of several runs writes only to `--out`, never into a run, and draws runs of
  different environments (or env values) in separate panels;
- with `env_values`, metrics.csv, eval_episodes.npz, params.npz and the sweep table name each
  run's seed and value; plot and eval treat each value on its own;
- `env_values=0.5,1.0` is a list; a one-value summary prints no "+- nan".

Each item's CLI behaviour is checked through a real `python -m qtran` subprocess (variants
of a case in this process); the runs they work on are trained once per module, in this process.
"""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import fingerprint, one_error_line, qtran_cli
from qtran.cli import main
from qtran.config import make_config
from qtran.experiments.common import final_reward_table
from qtran.run import train
from qtran.sweep import Run, collect_table, write_table

MATRIX = ["algo=vdn", "env=matrix", "steps=200", "eval.interval=100", "eps.start=1", "eps.end=1",
          "progress=false", "tensorboard=false"]
PP = ["algo=vdn", "env=predator_prey", "env.episode_limit=4", "steps=40", "eval.interval=20", "warmup_steps=0",
      "eval.episodes=2", "agent.hidden=8", "seeds=2", "progress=false", "tensorboard=false"]
PENALTIES = (0.5, 1.5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-seed matrix run, a two-seed run on another payoff, and a predator-prey run with
    batched penalties (2 seeds x 2 values)."""
    base = tmp_path_factory.mktemp("runs")
    train(make_config([*MATRIX, "env.payoff=table1", "seeds=1", f"out={base / 'one_seed'}"]))
    train(make_config([*MATRIX, "env.payoff=penalty", "seeds=2", f"out={base / 'penalty_game'}"]))
    train(make_config([*PP, f"env_values=[{','.join(map(str, PENALTIES))}]", f"out={base / 'batched'}"]))
    return base


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


# ---- 1. train never overwrites a run silently -------------------------------------------------


def test_train_refuses_a_directory_holding_a_finished_run(runs, tmp_path):
    run = copy_of(runs / "one_seed", tmp_path)
    before = fingerprint(run)
    line = one_error_line(qtran_cli("train", *MATRIX, f"out={run}"))
    assert "finished run" in line and "qtran resume" in line and "--overwrite" in line
    assert fingerprint(run) == before


def test_train_refuses_an_interrupted_run_and_names_resume(runs, tmp_path):
    run = copy_of(runs / "one_seed", tmp_path)
    (run / "summary.json").unlink()  # as a run killed before its end leaves it
    before = fingerprint(run)
    line = one_error_line(qtran_cli("train", *MATRIX, f"out={run}"))
    assert f"qtran resume {run}" in line and "--overwrite" in line
    assert fingerprint(run) == before


def test_overwrite_empties_the_directory_first_and_only_after_the_checks(runs, tmp_path):
    run = copy_of(runs / "penalty_game", tmp_path)
    (run / "curves.png").write_bytes(b"an old figure")
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.old").write_bytes(b"an old run's events")
    before = fingerprint(run)
    # a mistake in the settings: refused, and the old run is still whole
    one_error_line(qtran_cli("train", *MATRIX, "env.payoff=missing.json", f"out={run}", "--overwrite"))
    assert fingerprint(run) == before
    # the flag between settings is fine; the new run replaces every old file
    done = qtran_cli("train", *MATRIX, "--overwrite", "seeds=1", f"out={run}")
    assert done.returncode == 0, done.stderr
    assert not (run / "curves.png").exists() and not (run / "tb").exists()  # the old run's leftovers
    assert json.loads((run / "summary.json").read_text())["seeds"] == [0]


def test_overwrite_refuses_a_directory_with_files_qtran_did_not_write(runs, tmp_path):
    run = copy_of(runs / "one_seed", tmp_path)
    (run / "notes.txt").write_text("mine")
    before = fingerprint(run)
    line = one_error_line(qtran_cli("train", *MATRIX, f"out={run}", "--overwrite"))
    assert "notes.txt" in line
    assert fingerprint(run) == before


# ---- 2, 3. plot writes figures of several runs only to --out, one panel per environment --------


def test_plot_of_several_runs_needs_out_and_never_writes_into_a_run(runs, tmp_path, capsys):
    dirs = [runs / "one_seed", runs / "penalty_game"]
    before = {d: fingerprint(d) for d in dirs}
    assert "--out" in one_error_line(qtran_cli("plot", *dirs))
    for into_a_run in (dirs[0], dirs[1] / "figs"):  # one of the runs, or inside one
        assert main(["plot", *map(str, dirs), "--out", str(into_a_run)]) == 2
        assert "directory of its own" in capsys.readouterr().err
    assert main(["plot", *map(str, dirs), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "curves.png").is_file()
    assert {d: fingerprint(d) for d in dirs} == before


def test_plot_draws_runs_of_different_environments_in_separate_panels(runs, tmp_path):
    done = qtran_cli("plot", runs / "one_seed", runs / "penalty_game", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    caption = (tmp_path / "curves.txt").read_text()
    assert "panel 1: matrix:table1" in caption and "panel 2: matrix:penalty" in caption
    svg = (tmp_path / "curves.svg").read_text()
    assert "matrix:table1" in svg and "matrix:penalty" in svg  # each panel titled after its own game


def test_plot_of_one_run_still_goes_into_it(runs):
    done = qtran_cli("plot", runs / "one_seed")
    assert done.returncode == 0, done.stderr
    assert (runs / "one_seed" / "curves.png").is_file()


# ---- 4. batched settings: every per-run file says which run it is -----------------------------


def _expected_runs():
    return [(seed, value) for value in PENALTIES for seed in (0, 1)]  # the trainer's batch order


def test_metrics_csv_names_seed_and_value_of_every_row(runs):
    with open(runs / "batched" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"run", "seed", "env_value"} <= set(rows[0])
    steps = sorted({int(r["step"]) for r in rows})
    assert steps == [0, 20, 40]
    for step in steps:
        at = [r for r in rows if int(r["step"]) == step]
        assert [(int(r["seed"]), float(r["env_value"])) for r in at] == _expected_runs()
        assert [int(r["run"]) for r in at] == [0, 1, 2, 3]
    summary = json.loads((runs / "batched" / "summary.json").read_text())
    assert summary["env_value_name"] == "penalty"
    assert list(zip(summary["seeds"], summary["env_values"])) == _expected_runs()


@pytest.mark.parametrize("name", ["eval_episodes.npz", "params.npz"])
def test_per_run_arrays_carry_their_seeds_and_values(runs, name):
    with np.load(runs / "batched" / name, allow_pickle=False) as data:
        assert list(zip(data["seeds"].tolist(), data["env_values"].tolist())) == _expected_runs()
        if name == "eval_episodes.npz":
            assert data["returns"].shape[1] == len(_expected_runs())
    with np.load(runs / "one_seed" / name, allow_pickle=False) as data:
        assert data["seeds"].tolist() == [0] and "env_values" not in data.files


def test_matrix_tables_carry_their_seeds(runs):
    with np.load(runs / "penalty_game" / "tables.npz", allow_pickle=False) as data:
        assert data["seeds"].tolist() == [0, 1] and data["q_jt"].shape[1] == 2


def test_plot_draws_one_panel_per_value_not_one_averaged_curve(runs, tmp_path):
    done = qtran_cli("plot", runs / "batched", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    caption = (tmp_path / "curves.txt").read_text()
    assert "panel 1: predator_prey:n2m1g5p0.5" in caption and "panel 2: predator_prey:n2m1g5p1.5" in caption
    svg = (tmp_path / "curves.svg").read_text()
    assert "VDN (2 seeds)" in svg and "4 seeds" not in svg


def test_eval_summarises_each_value_on_its_own(runs):
    done = qtran_cli("eval", runs / "batched", "--episodes", "2")
    assert done.returncode == 0, done.stderr
    assert "run 2 (seed 0 penalty=1.5)" in done.stdout
    assert "over the seeds of penalty=0.5" in done.stdout and "over the seeds of penalty=1.5" in done.stdout
    assert "over runs" not in done.stdout  # never an average over different penalties


def test_sweep_table_has_one_row_per_value(runs, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    os.symlink(runs / "batched", out / "run")
    rows = collect_table(out, [Run("run", (), ())])
    assert [r["env_value"] for r in rows] == list(PENALTIES) and [r["n"] for r in rows] == [2, 2]
    returns = np.asarray(json.loads((runs / "batched" / "summary.json").read_text())["final_eval_return"])
    assert [r["mean"] for r in rows] == pytest.approx([returns[:2].mean(), returns[2:].mean()])
    write_table(out, rows, [])
    header = (out / "summary.csv").read_text().splitlines()[0].split(",")
    assert "env_value" in header


# ---- 5. env_values without brackets -----------------------------------------------------------


def test_env_values_accept_a_plain_comma_list():
    done = qtran_cli("config", "env=predator_prey", "env_values=0.5,1.0")
    assert done.returncode == 0, done.stderr
    assert "env_values:\n- 0.5\n- 1.0\n" in done.stdout
    assert make_config(["env=predator_prey", "env_values=0.5"]).env_values == [0.5]
    assert make_config(["env=predator_prey", "env_values=[0.5, 1.0]"]).env_values == [0.5, 1.0]
    assert make_config(["env=predator_prey", "env_values=null"]).env_values is None


def test_env_values_that_are_not_numbers_are_one_line(capsys):
    assert main(["config", "env=predator_prey", "env_values=a,b"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "env_values" in line and "AnyNode" not in line


# ---- 12. one value: no interval -----------------------------------------------------------------


def test_eval_of_a_one_seed_run_prints_no_nan_interval(runs):
    done = qtran_cli("eval", runs / "one_seed", "--episodes", "1")
    assert done.returncode == 0, done.stderr
    assert "nan" not in done.stdout
    assert "over runs: " in done.stdout and "no interval" in done.stdout


def test_tables_of_one_seed_print_no_nan_interval():
    table = final_reward_table({"P=0.5": {"vdn": [1.25]}, "P=1.0": {"vdn": [1.0, 2.0]}}, ["vdn"], "reward")
    assert "nan" not in table and "1.25 (one value, no interval)" in table and "1.50 +- " in table
