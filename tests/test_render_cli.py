"""`qtran render` replays a saved predator-prey policy from its run directory."""

import pytest

from qtran.cli import main

PP = ["train", "algo=qtran-base", "env=predator_prey", "env.episode_limit=8", "steps=64", "warmup_steps=16",
      "eval.interval=32", "eval.episodes=2", "progress=false", "tensorboard=false", "agent.hidden=16",
      "qtran.hidden=16"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pp")
    assert main(PP + ["seeds=2", "env_values=[0.5,1.5]", f"out={out}"]) == 0
    return out


def test_render_writes_gif_and_text_frames(run_dir, tmp_path, capsys):
    capsys.readouterr()
    gif = tmp_path / "ep.gif"
    assert main(["render", str(run_dir), "--run", "3", "--gif", str(gif)]) == 0
    out = capsys.readouterr().out
    assert gif.stat().st_size > 0
    assert out.count("t=") == 9  # the initial frame and 8 steps
    assert "seed 1" in out


def test_render_refuses_bad_input(run_dir, tmp_path, capsys):
    assert main(["render", str(run_dir), "--run", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["render", str(tmp_path)]) == 2
    assert "not a qtran run directory" in capsys.readouterr().err
    matrix = tmp_path / "m"
    assert main(["train", "steps=10", "progress=false", "tensorboard=false", f"out={matrix}"]) == 0
    assert main(["render", str(matrix)]) == 2
    assert "predator-prey" in capsys.readouterr().err


def test_eval_reevaluates_every_saved_run(run_dir, capsys):
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--episodes", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("run ") == 4 and "penalty=1.5" in out
    assert "over the seeds of penalty=1.5" in out and "over runs" not in out  # values never averaged together
    assert main(["eval", str(run_dir), "--episodes", "0"]) == 2


def test_eval_of_a_matrix_game_gives_the_payoff_of_the_greedy_action(tmp_path, capsys):
    import json

    out = tmp_path / "m"
    assert main(["train", "steps=300", "seeds=2", "progress=false", "tensorboard=false", f"out={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "3"]) == 0
    text = capsys.readouterr().out
    for k, (a, b) in enumerate(summary["greedy_joint_actions"]):
        assert f"run {k} (seed {k}): {summary['payoff'][a][b]:.3f}" in text


@pytest.mark.parametrize("where", ["missing_dir/x.gif", "a_dir"])
def test_render_refuses_a_gif_path_it_cannot_write_before_drawing(run_dir, tmp_path, capsys, where):
    """One line, exit 2, and no text frame printed: the path is checked before any frame."""
    (tmp_path / "a_dir").mkdir()
    capsys.readouterr()
    assert main(["render", str(run_dir), "--gif", str(tmp_path / where)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured
    assert "--gif" in captured.err and ("does not exist" in captured.err or "is a directory" in captured.err)
