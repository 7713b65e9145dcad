"""`qtran reproduce fig4` in pieces: any N and algorithms, finished pieces skipped, unfinished
ones resumed from their checkpoints, a directory of another budget or other overrides refused,
and only small files kept once a piece has finished."""

import json

import pytest

from qtran.cli import main
from qtran.experiments import fig4
from helpers import count_calls

TINY = ["steps=40", "warmup_steps=20", "eval.interval=20", "eval.episodes=2", "env.episode_limit=10",
        "agent.hidden=8", "qtran.hidden=8", "seeds=2", "progress=false"]
SMALL_FILES = {"config.yaml", "metrics.csv", "eval_episodes.npz", "params.npz", "summary.json"}


def _cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_pieces_train_resume_skip_and_refuse(tmp_path, monkeypatch, capsys):
    out = tmp_path / "f4"
    run_dir = out / "n2" / "vdn"
    # 1. One piece, with TensorBoard on and checkpoints kept (trim off) to have something to resume.
    monkeypatch.setattr(fig4, "BULKY", ())
    code, stdout, err = _cli(["reproduce", "fig4", "n=2", "algos=vdn", "tensorboard=true", *TINY, f"out={out}"],
                             capsys)
    assert code == 0, err
    assert "| 2.2 |" in stdout and "not run" in stdout  # the claims table is printed
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["n2"]
    assert [p.name for p in (out / "n2").iterdir()] == ["vdn"]
    first = json.loads((run_dir / "summary.json").read_text())
    checkpoints = sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))
    assert len(checkpoints) == 2 and (run_dir / "tb").is_dir()

    # 2. Interrupted after its next-to-last checkpoint: the same command resumes it, exactly.
    (run_dir / "summary.json").unlink()
    checkpoints[-1].unlink()
    monkeypatch.setattr(fig4, "BULKY", ("checkpoints", "tb"))
    trains, resumes = count_calls(monkeypatch, "train", fail=True), count_calls(monkeypatch, "resume")
    code, _, err = _cli(["reproduce", "fig4", "n=2", "algos=vdn", *TINY, f"out={out}"], capsys)
    assert code == 0, err
    assert trains == [] and len(resumes) == 1
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["resumed_from_chunk"] == 1 and again["eval_curve"] == first["eval_curve"]
    assert {p.name for p in run_dir.iterdir()} == SMALL_FILES  # checkpoints and events gone
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["budget"] == "quick" and manifest["pieces"] == {
        "n2/vdn": {"budget": "quick", "form": "paper", "penalties": [0.5, 1.0, 1.5], "steps": 40,
                   "updates_per_step": 1.0}}

    # 3. Finished: skipped, and the panels and claims are drawn again.
    resumes_before = len(resumes)
    (out / "claims.md").unlink()
    code, _, err = _cli(["reproduce", "fig4", "n=2", "algos=vdn", *TINY, f"out={out}"], capsys)
    assert code == 0 and trains == [] and len(resumes) == resumes_before and (out / "claims.md").is_file()

    # 4. Another budget or other overrides in the same out: refused before anything trains.
    for args, fragment in ((["budget=medium", *TINY], "holds budget=quick runs, not budget=medium"),
                           ([*TINY[:-1], "seeds=3"], "seeds=2, this command gives seeds=3"),
                           (TINY[1:], "steps unset (the default)")):
        code, _, err = _cli(["reproduce", "fig4", "n=2", "algos=vdn", *args, f"out={out}"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert trains == [] and len(resumes) == resumes_before


@pytest.mark.parametrize("args,fragment", [
    (["n=3"], "n='3': '3' is not one of 2, 4"),
    (["n="], "is not one of 2, 4"),
    (["algos=vdn,dqn"], "'dqn' is not one of qtran-base, qtran-alt, vdn, qmix"),
    (["algos=vdn,vdn"], "names a value twice"),
    (["algos="], "is not one of"),
    (["budget=huge"], "budget='huge' is unknown"),
])
def test_bad_pieces_are_one_line_before_anything_trains(args, fragment, tmp_path, monkeypatch, capsys):
    trains = count_calls(monkeypatch, "train", fail=True)
    out = tmp_path / "f4"
    code, _, err = _cli(["reproduce", "fig4", *args, f"out={out}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert trains == [] and not out.exists()


def test_another_experiments_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "f3"
    out.mkdir()
    (out / "experiment.json").write_text(json.dumps({"experiment": "fig3"}))
    code, _, err = _cli(["reproduce", "fig4", "n=2", "algos=vdn", f"out={out}"], capsys)
    assert code == 2 and "not fig4" in err and len(err.strip().splitlines()) == 1


def test_pieces_parse_in_the_file_layouts_order():
    assert fig4.parse_pieces(["algos=vdn,qtran-alt", "n=4,2", "budget=medium", "seeds=3"]) == (
        "medium", ("n2", "n4"), ("qtran-alt", "vdn"), ["seeds=3"], "paper", fig4.PENALTIES)
    assert fig4.parse_pieces([]) == ("quick", ("n2", "n4"), fig4.ALGOS, [], "paper", fig4.PENALTIES)
    assert fig4.parse_pieces(["p=1.5,1.0", "form=code"]) == (
        "quick", ("n2", "n4"), fig4.ALGOS, [], "code", (1.0, 1.5))


def test_reproduce_help_lists_fig4_and_its_options(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for fragment in ("fig4", "budget=quick|medium|paper", "n=2|4", "algos=", "fig4-claims"):
        assert fragment in text, fragment
