import json
import os
import subprocess
import sys

import pytest

from qtran.cli import main


def _run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("args,fragment", [
    (["train", "algo=dqn"], "unknown algorithm 'dqn'"),
    (["train", "env=starcraft"], "unknown environment 'starcraft'"),
    (["train", "seeds=0"], "seeds must be at least 1"),
    (["train", "seeds=-3"], "seeds must be at least 1"),
    (["train", "seeds=ten"], "seeds"),
    (["train", "bogus=1"], "unknown setting 'bogus'"),
    (["train", "env.bogus=1"], "unknown setting 'env.bogus'"),
    (["train", "steps"], "expected key=value"),
    (["train", "env.payoff=nope"], "neither a preset"),
    (["train", "eps.start=2"], "eps.start must be in [0, 1]"),
    (["train", "qtran.pooling=max"], "qtran.pooling"),
    (["reproduce", "table9"], "unknown experiment"),
    (["reproduce", "table1", "algo=vdn"], "choose which with algos="),
    (["reproduce", "table1", "env=predator_prey"], "cannot be changed"),
    (["frobnicate"], "invalid choice"),
    (["train", "env_values=[0.5]"], "no setting that can be batched"),
    (["train", "env=predator_prey", "env_values=[a]"], "env_values"),
    (["train", "env=gaussian_squeeze", "env.domains=xgs"], "env.domains"),
    (["train", "env=predator_prey", "env.grid=1"], "env.grid"),
])
def test_user_errors_are_one_line_and_exit_2(args, fragment, capsys):
    code, out, err = _run_cli(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_bad_payoff_files_are_refused_before_training(tmp_path, capsys):
    (tmp_path / "rect.json").write_text(json.dumps([[1, 2, 3], [4, 5, 6]]))
    (tmp_path / "nan.json").write_text("[[1, NaN], [0, 0]]")
    for name, fragment in (("rect.json", "not |U|^N"), ("nan.json", "NaN")):
        out_dir = tmp_path / f"out-{name}"
        code, _, err = _run_cli(["train", f"env.payoff={tmp_path / name}", f"out={out_dir}"], capsys)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
        assert not out_dir.exists()  # nothing written, nothing trained


def test_unwritable_out_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run_cli(["train", f"out={blocker}/run", "steps=10"], capsys)
    assert code == 2 and "cannot write to out=" in err and len(err.strip().splitlines()) == 1


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run_cli(["train", "algo=qtran-alt", "env=matrix", "env.payoff=table1", "seeds=3",
                                "steps=400", "eval.interval=200", "progress=false", f"out={out}"], capsys)
    assert code == 0 and "greedy joint actions" in stdout
    assert (out / "config.yaml").is_file()
    assert any((out / "tb").iterdir())
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,run,seed,env_value,eval_return") and len(rows) == 1 + 3 * 3  # 3 evals x 3 seeds
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "qtran-alt" and summary["env"] == "matrix:table1"
    assert summary["seeds"] == [0, 1, 2] and len(summary["final_eval_return"]) == 3
    assert len(summary["greedy_joint_actions"]) == 3 and all(len(g) == 2 for g in summary["greedy_joint_actions"])
    assert len(summary["tables"]["q_jt"]) == 3 and len(summary["tables"]["q_jt"][0]) == 3
    assert "q_prime_jt" in summary["tables"] and len(summary["igm"]) == 3
    # final greedy return is the payoff at the greedy joint action
    payoff = summary["payoff"]
    for ret, (a, b) in zip(summary["final_eval_return"], summary["greedy_joint_actions"]):
        assert ret == pytest.approx(payoff[a][b])


def test_three_agent_payoff_from_npy(tmp_path, capsys):
    import numpy as np

    payoff = np.random.default_rng(0).normal(size=(2, 2, 2))
    np.save(tmp_path / "g.npy", payoff)
    out = tmp_path / "run"
    code, _, _ = _run_cli(["train", "algo=qtran-base", f"env.payoff={tmp_path / 'g.npy'}", "steps=200",
                           "progress=false", "tensorboard=false", f"out={out}"], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert np.asarray(summary["tables"]["q_jt"]).shape == (1, 2, 2, 2)
    assert len(summary["greedy_joint_actions"][0]) == 3


def test_console_script_exit_status():
    """The installed entry point itself: status 2 and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "qtran.cli", "train", "algo=nope"],
                          capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown algorithm" in proc.stderr


def test_long_fig4_budgets_warn_on_cpu_before_they_start(tmp_path, capsys, monkeypatch):
    from qtran.experiments import fig4

    def fake_run(overrides, out, budget, workers, **_):  # records the call instead of training
        (tmp_path / "f4").mkdir()
        (tmp_path / "f4" / "final_rewards.md").write_text(f"budget {budget}\n")
        (tmp_path / "f4" / "claims.md").write_text("claims\n")

    monkeypatch.setattr(fig4, "run", fake_run)
    code, out, err = _run_cli(["reproduce", "fig4", "budget=medium", f"out={tmp_path / 'f4'}"], capsys)
    assert code == 0 and "budget medium" in out
    assert err.startswith("note: budget=medium on a CPU:") and len(err.strip().splitlines()) == 1
    # Bad input is one error line, without the note, and never reaches the run.
    for bad, fragment in ((["budget=medium", "steps=-1"], "steps"), (["budget=huge"], "budget='huge' is unknown")):
        code, _, err = _run_cli(["reproduce", "fig4", *bad, f"out={tmp_path / 'f4b'}"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err and "note:" not in err
