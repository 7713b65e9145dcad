"""Every way in keeps a user's results (issue 25, "Breakages found" and "Confusions").

- `qtran reproduce <experiment>` keeps docs/run-directories.md's promise: a finished run of the
  same settings is kept (not trained again), a run of other settings is refused, and an out=
  that is a training run's own directory is refused;
- the Python API (`qtran.train`) refuses a directory holding a run, as the CLI does;
- what cannot be a multi-agent task, or is too large to compile, is refused with its reason.

CLI behaviour is checked through a real `python -m qtran` subprocess (one line, exit 2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import qtran
from helpers import count_calls, fingerprint, one_error_line, qtran_cli
from qtran.config import make_config
from qtran.errors import UserError
from qtran.experiments import compare, fig2, fig3, table1
from qtran.run import train

QUIET = ["progress=false", "tensorboard=false"]
SMALL = ["seeds=2", "steps=200", "eval.interval=100", *QUIET]  # a table1 job, shrunk
MATRIX = ["algo=vdn", "env=matrix", "steps=200", "eval.interval=100", "eps.start=1", "eps.end=1", *QUIET]


@pytest.fixture(scope="module")
def table1_dir(tmp_path_factory):
    """`reproduce table1 algos=vdn` at a tiny budget, and a plain training run."""
    base = tmp_path_factory.mktemp("safety")
    table1.run(SMALL, out=str(base / "table1"), algos=("vdn",))
    train(make_config([*MATRIX, "seeds=1", f"out={base / 'train_run'}"]))
    return base


def copy_of(path: Path, tmp_path: Path, name: str = "copy") -> Path:
    shutil.copytree(path, tmp_path / name)
    return tmp_path / name


# ---- 1. reproduce keeps finished runs of the same settings, refuses others ------------------


def test_reproduce_again_with_the_same_settings_trains_nothing_and_keeps_the_runs(table1_dir, tmp_path, monkeypatch):
    out = copy_of(table1_dir / "table1", tmp_path)
    before = fingerprint(out / "vdn")
    count_calls(monkeypatch, "train", fail=True)
    count_calls(monkeypatch, "resume", fail=True)
    summaries = table1.run(SMALL, out=str(out), algos=("vdn",))
    assert fingerprint(out / "vdn") == before
    assert summaries["vdn"]["seeds"] == [0, 1]


def test_reproduce_with_other_settings_is_refused_and_changes_nothing(table1_dir, tmp_path):
    out = copy_of(table1_dir / "table1", tmp_path)
    before = fingerprint(out)
    line = one_error_line(qtran_cli("reproduce", "table1", "algos=vdn", "seeds=1", "steps=200",
                                    "eval.interval=100", *QUIET, f"out={out}"))
    assert "other settings" in line and "seeds=2 there, 1 here" in line, line
    assert fingerprint(out) == before


@pytest.mark.parametrize("experiment", ["table1", "fig2", "fig3", "compare"])
def test_every_experiment_refuses_a_finished_run_of_other_settings(experiment, table1_dir, tmp_path, monkeypatch):
    """The tiny Table 1 run placed where each experiment keeps one of its own runs: each
    refuses it before training anything, rather than replacing it."""
    where = {"table1": "vdn", "fig2": "qtran-base", "fig3": "fig3a/vdn", "compare": "table1/vdn"}[experiment]
    out = tmp_path / "out"
    shutil.copytree(table1_dir / "table1" / "vdn", out / where)
    before = fingerprint(out)
    count_calls(monkeypatch, "train", fail=True)
    runner = {"table1": table1.run, "fig2": fig2.run, "fig3": fig3.run, "compare": compare.run}[experiment]
    with pytest.raises(UserError, match="other settings"):
        runner(list(QUIET), out=str(out))
    assert fingerprint(out) == before


def test_an_unfinished_run_of_other_settings_is_refused_too(table1_dir, tmp_path, monkeypatch):
    out = copy_of(table1_dir / "table1", tmp_path)
    (out / "vdn" / "summary.json").unlink()  # as if interrupted
    count_calls(monkeypatch, "train", fail=True)
    with pytest.raises(UserError, match="interrupted run trained with other settings"):
        table1.run(["seeds=3", "steps=200", "eval.interval=100", *QUIET], out=str(out), algos=("vdn",))
    assert (out / "vdn" / "config.yaml").is_file()


def test_a_second_command_adds_runs_and_the_report_keeps_the_first(table1_dir, tmp_path, monkeypatch):
    out = copy_of(table1_dir / "table1", tmp_path)
    table1.run(SMALL, out=str(out), algos=("iql",))
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["algos"] == ["vdn", "iql"]
    report = (out / "report.txt").read_text()
    assert "vdn:" in report and "iql:" in report


# ---- 2. reproduce never writes into a training run ----------------------------------------


def test_reproduce_into_a_training_run_is_refused(table1_dir, tmp_path):
    run = copy_of(table1_dir / "train_run", tmp_path)
    before = fingerprint(run)
    line = one_error_line(qtran_cli("reproduce", "table1", "algos=vdn", *SMALL, f"out={run}"))
    assert "training run" in line and "choose another out=" in line, line
    with pytest.raises(UserError, match="training run"):  # the Python entry point as well
        table1.run(SMALL, out=str(run), algos=("vdn",))
    assert fingerprint(run) == before


def test_reproduce_into_another_experiment_is_refused(table1_dir, tmp_path):
    out = copy_of(table1_dir / "table1", tmp_path)
    line = one_error_line(qtran_cli("reproduce", "fig2", *QUIET, f"out={out}"))
    assert "'table1' experiment, not fig2" in line, line


# ---- 3. the Python API refuses a directory holding a run, as the CLI does ---------------------


def test_api_train_refuses_a_finished_run_and_overwrites_only_when_told(table1_dir, tmp_path):
    run = copy_of(table1_dir / "train_run", tmp_path)
    before = fingerprint(run)
    with pytest.raises(UserError, match="already holds a finished run"):
        qtran.train([*MATRIX, "seeds=1", "steps=100", f"out={run}"])
    assert fingerprint(run) == before
    summary = qtran.train([*MATRIX, "seeds=1", "steps=100", f"out={run}"], overwrite=True)
    assert summary["steps"] == 100 and json.loads((run / "summary.json").read_text())["steps"] == 100


def test_api_train_refuses_an_interrupted_run(table1_dir, tmp_path):
    run = copy_of(table1_dir / "train_run", tmp_path)
    (run / "summary.json").unlink()
    with pytest.raises(UserError, match="qtran resume"):
        qtran.train([*MATRIX, "seeds=1", f"out={run}"])
    assert (run / "config.yaml").is_file() and (run / "params.npz").is_file()


# ---- 4. plot --out writes there and nowhere else; figures are byte-reproducible ---------------

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "results" / "fig3" / "single"


def test_plot_of_an_experiment_with_out_writes_only_there_the_committed_bytes(tmp_path):
    """Redrawing a committed experiment directory into another one gives the committed files
    byte for byte (no date, no random ids), and leaves the directory drawn from untouched."""
    from qtran.cli import main

    source = copy_of(COMMITTED, tmp_path, "fig3_single")
    before = fingerprint(source)
    assert main(["plot", str(source), "--out", str(tmp_path / "redrawn")]) == 0
    assert fingerprint(source) == before
    redrawn = fingerprint(tmp_path / "redrawn")
    committed = fingerprint(COMMITTED)
    compared = [name for name in redrawn if name in committed]
    assert {"fig3a.svg", "fig3a.png", "fig3c.svg", "final_rewards.md", "claims.md"} <= set(compared)
    assert {name: redrawn[name] for name in compared} == {name: committed[name] for name in compared}


def test_plot_of_a_sweep_directory_draws_its_finished_runs(table1_dir, tmp_path):
    from qtran.redraw import redraw

    sweep = tmp_path / "sweep"
    for name in ("algo=vdn,seed=0", "algo=vdn,seed=1"):
        shutil.copytree(table1_dir / "train_run", sweep / name)
    (sweep / "summary.csv").write_text("run\n")
    written = redraw([str(sweep)])
    assert sweep / "curves.png" in written and (sweep / "curves.svg").is_file()
    assert not any((sweep / name / "curves.png").exists() for name in ("algo=vdn,seed=0", "algo=vdn,seed=1"))


# ---- 6. a payoff too large is refused before compiling; summary.json keeps only small ones ---


def test_a_payoff_too_large_is_refused_before_anything_is_written(tmp_path, capsys):
    from qtran.cli import main

    payoff = tmp_path / "big.npy"
    np.save(payoff, np.zeros((2,) * 21, dtype=np.int8))  # 2^21 cells, one more agent than the limit
    assert main(["train", f"env.payoff={payoff}", "steps=10", *QUIET, f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2,097,152 cells" in err[0] and "1,048,576" in err[0], err
    assert not (tmp_path / "run").exists()


def test_summary_keeps_a_small_payoff_and_says_where_a_large_one_is():
    from qtran.run import MAX_TABLE_CELLS, payoff_fields

    small = payoff_fields(np.arange(9.0).reshape(3, 3), "table1")
    assert np.asarray(small["payoff"]).shape == (3, 3) and small["optimal_joint_actions"] == [[2, 2]]
    large = np.zeros((2,) * 13)
    large[(1,) * 13] = 1.0
    assert large.size > MAX_TABLE_CELLS
    fields = payoff_fields(large, "/data/big.npy")
    assert "payoff" not in fields and "/data/big.npy" in fields["payoff_source"]
    assert fields["payoff_shape"] == [2] * 13 and fields["optimal_joint_actions"] == [[1] * 13]


# ---- 7. what cannot be a multi-agent task is refused, with the reason ------------------------


@pytest.mark.parametrize("settings, reason", [
    (["env=predator_prey", "env.agents=1"], "two predators"),
    (["env=gaussian_squeeze", "env.agents=1"], "at least 2"),
    (["env.payoff=ONE_D"], "1-D payoff is a game of one agent"),
])
def test_single_agent_tasks_are_refused_with_the_reason(settings, reason, tmp_path, capsys):
    from qtran.cli import main

    one_d = tmp_path / "one_d.json"
    one_d.write_text(json.dumps({"payoff": [1.0, 2.0, 3.0]}))
    settings = [s.replace("ONE_D", str(one_d)) for s in settings]
    assert main(["train", *settings, "steps=10", *QUIET, f"out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0], err
    assert not (tmp_path / "run").exists()


# ---- 8. one numbering of chunks: Ctrl-C, resume and summary.json agree ------------------------


def test_ctrl_c_resume_and_summary_name_the_same_chunk_and_step(tmp_path, monkeypatch, capsys):
    import qtran.run as qrun
    from qtran.cli import main

    run = tmp_path / "run"
    real, calls = qrun.non_finite_loss, []

    def interrupt_at_the_fourth_chunk(metrics):  # called once per chunk, after it trained
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(metrics)

    monkeypatch.setattr(qrun, "non_finite_loss", interrupt_at_the_fourth_chunk)
    assert main(["train", *MATRIX, "steps=600", "checkpoint.every=1", f"out={run}"]) == 130
    assert "checkpoint saved at step 300 (chunk 3)" in capsys.readouterr().err
    monkeypatch.setattr(qrun, "non_finite_loss", real)
    assert main(["resume", str(run)]) == 0
    captured = capsys.readouterr()
    assert f"resuming {run} from step 300 (chunk 3 of 6)" in captured.err
    assert "greedy joint actions per seed" in captured.out  # as train prints
    assert json.loads((run / "summary.json").read_text())["resumed_from_chunk"] == 3


def test_resume_without_a_checkpoint_says_it_starts_over(table1_dir, tmp_path, capsys):
    from qtran.cli import main

    run = copy_of(table1_dir / "train_run", tmp_path)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "checkpoints")
    assert main(["resume", str(run)]) == 0
    assert f"no checkpoint in {run / 'checkpoints'}: training it from step 0" in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["resumed_from_chunk"] is None


# ---- confusions: our own wording, hints that agree, tables of any training run ---------------


@pytest.mark.parametrize("item, said", [
    ("lr=fast", "lr must be a number, got 'fast'"),
    ("eps.start=x", "eps.start must be a number, got 'x'"),
    ("tensorboard=maybe", "tensorboard must be true or false, got 'maybe'"),
])
def test_a_value_of_the_wrong_type_is_said_in_our_words(item, said):
    with pytest.raises(UserError) as caught:
        make_config([item])
    assert str(caught.value) == said


def test_reproduce_algo_points_to_algos_and_algos_is_taken(capsys):
    from qtran.cli import check_command, main

    assert main(["reproduce", "table1", "algo=vdn"]) == 2
    assert "choose which with algos=" in capsys.readouterr().err
    check_command(["reproduce", "table1", "algos=vdn,iql"])  # accepted: no "did you mean 'algo'"
    check_command(["reproduce", "compare", "algos=qplex"])


def test_report_prints_the_learned_tables_of_a_training_run(table1_dir, capsys):
    from qtran.cli import main

    run = table1_dir / "train_run"
    assert main(["report", "table1", str(run)]) == 0
    text = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    q_jt = np.asarray(summary["tables"]["q_jt"]).mean(0)
    assert "learned tables" in text and "Q_jt" in text and f"{q_jt[0, 0]:7.2f}" in text
    assert "IGM holds in" in text and "consistent" in text  # what IGM means, where it is printed
    assert f"compiled in {summary['startup_seconds']:.1f} s" in text  # as the run's status line said


def test_table1_report_time_agrees_with_the_compiled_in_line():
    summary = {"startup_seconds": 23.64, "compile_seconds": 11.91}
    assert table1.startup_text(summary) == "compiled in 23.6 s (the training program alone 11.9 s)"


def test_with_earlier_keeps_names_outside_the_order(tmp_path):
    from qtran.experiments.common import with_earlier, write_manifest

    assert with_earlier(tmp_path, "algos", ("qplex", "vdn"), ("qtran-base", "vdn")) == ["vdn", "qplex"]
    write_manifest(tmp_path, "table1", algos=["ow-qmix", "iql"])
    assert with_earlier(tmp_path, "algos", ("qplex",), ("iql", "vdn")) == ["iql", "ow-qmix", "qplex"]
