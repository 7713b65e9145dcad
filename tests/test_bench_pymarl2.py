"""benchmarks/bench_pymarl2.py without PyMARL2: how it reads PyMARL2's greedy episode back, its
summary helpers, and its refusals of bad arguments. Nothing here runs PyMARL2 or times anything."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_pymarl2 import (OUR_FORMS, PYMARL2_CONFIGS, final_greedy, final_rms_td, hits,  # noqa: E402
                           last_greedy_episode, last_logged, main, names, prepare)


def test_last_greedy_episode_follows_the_episode_runners_schedule():
    # steps=3, interval=1, by hand: every training episode (t_env 1, 2, 3, 4) is followed by a
    # test episode, since t_env - last_test >= 1 each time; the log reads
    # train, test, train, test, train, test, train, test: the last test episode is the 8th.
    assert last_greedy_episode(8, steps=3, interval=1) == 8
    # steps=4, interval=2: the first test follows the first training episode (t_env 1 against
    # last_test -3), then every second one (t_env 3, 5): T t T T t T T t -> the last test is 8th.
    assert last_greedy_episode(8, steps=4, interval=2) == 8


def test_the_greedy_action_read_back_is_a_test_episodes_not_the_exploring_one_before_it():
    # A log as PyMARL2 writes it at steps=4, interval=2: training episodes explore (here (2, 1)),
    # test episodes at positions 2, 5 and 8 act greedily; the last one picks (0, 0).
    log = [[2, 1]] * 8
    log[1], log[4], log[7] = [1, 1], [0, 1], [0, 0]
    assert final_greedy(log, steps=4, interval=2) == [0, 0]


def test_a_log_of_the_wrong_length_is_refused():
    with pytest.raises(RuntimeError, match="schedule gives 8"):
        last_greedy_episode(7, steps=3, interval=1)


def test_names_and_hits_read_joint_actions():
    assert names([[0, 0], [2, 1]]) == "(A, A) (C, B)"
    assert hits([[0, 0], [0, 1], (0, 0)]) == 2


def test_prepare_writes_the_game_and_the_stand_ins(tmp_path):
    tree = tmp_path / "pymarl2"
    (tree / "src/envs/matrix_game").mkdir(parents=True)
    stubs = prepare(tree, tmp_path / "scratch")
    game = (tree / "src/envs/matrix_game/one_step_matrix_game.py").read_text()
    assert "[8.0, -12.0, -12.0]" in game  # Table 1's payoff, row A
    compile(game, "one_step_matrix_game.py", "exec")
    for name in ("smac/env/__init__.py", "pysc2/lib/protocol.py", "sitecustomize.py"):
        compile((stubs / name).read_text(), name, "exec")


@pytest.mark.parametrize("extra, message", [
    (["--algos", "qmix"], "unknown algorithm 'qmix'"),
    (["--seeds", "0"], "at least 1"),
    (["--steps", "0"], "at least 1"),
    (["--parallel", "0"], "at least 1"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, message):
    tree = tmp_path / "pymarl2"
    (tree / "src").mkdir(parents=True)
    (tree / "src/main.py").write_text("")
    assert main(["--pymarl2", str(tree), "--python", sys.executable, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_tree_exits_2(tmp_path, capsys):
    assert main(["--pymarl2", str(tmp_path / "nowhere"), "--python", sys.executable]) == 2
    assert "no src/main.py" in capsys.readouterr().err


def test_pymarl2s_fit_is_read_per_seed_from_its_sacred_files(tmp_path):
    # Two sacred runs as PyMARL2's FileStorageObserver writes them (ids 3 and 4, seeds 1 and 0),
    # plus one that never logged the key; seed 2 has no run at all.
    infos = []
    for run_id, seed, logged in [(3, 1, [5.0, 0.25]), (4, 0, [7.5]), (5, 3, None)]:
        folder = tmp_path / str(run_id)
        folder.mkdir()
        (folder / "config.json").write_text(f'{{"seed": {seed}}}')
        info = {"td_error_abs": logged} if logged else {"loss": [1.0]}
        (folder / "info.json").write_text(json.dumps(info))
        infos.append(folder / "info.json")
    assert last_logged(infos, 4) == [7.5, 0.25, None, None]


def test_our_fit_is_the_root_of_each_seeds_last_td_loss(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,run,seed,loss,loss_td\n"
                       "1000,0,0,9,9\n1000,1,1,4,4\n"
                       "2000,0,0,0.25,0.25\n2000,1,1,,\n")
    assert final_rms_td(metrics, 2) == [0.5, None]


def test_every_algorithm_has_our_default_form_first_and_qplex_the_authors_form_too():
    assert set(OUR_FORMS) == set(PYMARL2_CONFIGS)
    assert all(forms[0] == ("paper", []) for forms in OUR_FORMS.values())
    assert ("authors' code", ["qplex.stop_gradient=true", "grad_clip=10"]) in OUR_FORMS["qplex"]
