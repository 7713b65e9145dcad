"""Figures are drawn from run files alone, and `qtran plot` redraws them without training."""

import json

import numpy as np
import pytest

from qtran.cli import main
from qtran.experiments import fig2, fig3
from qtran.plots import mean_ci

TINY = ["steps=300", "seeds=2", "eval.interval=100", "progress=false", "tensorboard=false", "warmup_steps=32"]


def test_mean_ci_by_hand():
    mean, half = mean_ci(np.array([1.0, 2.0, 3.0]))
    # sd = 1, sem = 1/sqrt(3), t(0.975, 2 dof) = 4.302653
    assert float(mean) == pytest.approx(2.0)
    assert float(half) == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    _, half_one = mean_ci(np.array([5.0]))
    assert np.isnan(half_one)


def _pngs(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.png"))}


def test_fig2_then_plot_redraws_the_same_files(tmp_path):
    out = tmp_path / "fig2"
    fig2.run(TINY, out=str(out))
    first = _pngs(out)
    assert list(first) == ["fig2.png"] and (out / "fig2.svg").is_file() and (out / "fig2.txt").is_file()
    for p in out.glob("fig2.*"):
        p.unlink()
    assert main(["plot", str(out)]) == 0
    assert _pngs(out) == first  # byte for byte, from the run files only


def test_fig3_panel_then_plot_and_exports(tmp_path):
    out = tmp_path / "fig3"
    fig3.run(TINY, out=str(out), panels=("fig3c",), algos=("qtran-alt", "vdn"))
    first = _pngs(out)
    assert list(first) == ["fig3c.png"]
    assert "interval" in (out / "fig3c.txt").read_text()
    table = (out / "final_rewards.md").read_text()
    assert "QTRAN-alt" in table and "n=2" in table
    data = json.loads((out / "marl_eval.json").read_text())
    runs = data["gaussian_squeeze"]["fig3c"]["qtran-alt"]
    assert set(runs) == {"run_0", "run_1"}
    assert runs["run_0"]["step_0"]["step_count"] == 0 and len(runs["run_0"]["step_0"]["return"]) == 32
    assert "absolute_metrics" in runs["run_1"]
    (out / "fig3c.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert _pngs(out) == first


def test_plot_of_plain_run_directories(tmp_path, capsys):
    dirs = []
    for algo in ("vdn", "qtran-base"):
        d = tmp_path / algo
        assert main(["train", f"algo={algo}", "env=gaussian_squeeze", "env.agents=3", f"out={d}"] + TINY) == 0
        dirs.append(str(d))
    assert main(["plot", *dirs, "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "curves.png").is_file()


def test_plot_refuses_a_missing_directory(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_fig4_panels_split_the_batched_penalties_and_redraw(tmp_path):
    from qtran.experiments import fig4

    out = tmp_path / "fig4"
    fig4.run(["steps=40", "warmup_steps=20", "eval.interval=20", "eval.episodes=2", "env.episode_limit=10",
              "agent.hidden=8", "qtran.hidden=8", "seeds=2", "progress=false", "tensorboard=false"],
             out=str(out), settings=("n2",), algos=("qtran-alt", "vdn"))
    first = _pngs(out)
    # every panel is drawn; N = 4 was not trained and says so
    assert list(first) == [f"fig4_n{n}_p{p}.png" for n in (2, 4) for p in (0.5, 1.0, 1.5)]
    assert "Not run: QTRAN-base, QMIX." in (out / "fig4_n2_p1.0.txt").read_text()
    assert "Not run: QTRAN-base, QTRAN-alt, VDN, QMIX." in (out / "fig4_n4_p1.0.txt").read_text()
    summary = json.loads((out / "n2" / "vdn" / "summary.json").read_text())
    split = fig4.split_by_value(summary)
    assert sorted(split) == [0.5, 1.0, 1.5] and np.asarray(split[1.0]["returns"]).shape == (3, 2)
    assert "N=2, P=1.5" in (out / "final_rewards.md").read_text()
    assert "| 2.2 |" in (out / "claims.md").read_text()
    for p in out.glob("fig4_*.png"):
        p.unlink()
    assert main(["plot", str(out)]) == 0
    assert _pngs(out) == first


@pytest.mark.parametrize("budget", ["quick", "medium", "paper"])
def test_fig4_budgets_are_valid_configs(budget):
    from qtran.config import make_config
    from qtran.experiments import fig4

    jobs = fig4.jobs([], budget)
    assert sorted(jobs) == sorted(f"{n}/{a}" for n in fig4.SETTINGS for a in fig4.ALGOS)
    for overrides in jobs.values():
        cfg = make_config(overrides)
        assert cfg.seeds == 5 and list(cfg.env_values) == [0.5, 1.0, 1.5]


def test_fig4_medium_n2_runs_the_learning_tests_setting():
    # fig4.py's docstring quotes tests/test_pp_learning.py's result for `medium`; keep them one setting.
    from qtran.config import make_config
    from qtran.experiments import fig4

    from test_pp_learning import SETTING

    medium = make_config(fig4.jobs([], "medium", settings=("n2",), algos=("qtran-alt",))["n2/qtran-alt"])
    test = make_config([*SETTING, "algo=qtran-alt"])
    for key in ("steps", "updates_per_step", "buffer_size", "target_update_interval", "warmup_steps", "lr",
                "adam_eps", "batch_size", "gamma", "n_envs"):
        assert medium[key] == test[key], key
    assert medium.env == test.env.copy() | {"penalty": medium.env.penalty}
    assert 1.5 in medium.env_values
