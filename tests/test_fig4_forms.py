"""Figure 4's forms (`form=paper|code`) and penalty pieces (`p=`): what the code form turns on,
that one directory never mixes forms or trains a penalty twice, and that pieces of some
penalties come together in the panels and the claims."""

import json

import pytest

from qtran.cli import main
from qtran.config import make_config
from qtran.errors import UserError
from qtran.experiments import fig4, fig4_claims

TINY = ["steps=40", "warmup_steps=20", "eval.interval=20", "eval.episodes=2", "env.episode_limit=10",
        "agent.hidden=8", "qtran.hidden=8", "seeds=2", "progress=false", "buffer_size=8"]


def _value(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("algo", fig4.ALGOS)
def test_code_form_turns_on_every_released_code_switch(algo):
    paper = make_config(fig4.jobs([], "medium", ("n2",), (algo,), "paper")[f"n2/{algo}"])
    code = make_config(fig4.jobs([], "medium", ("n2",), (algo,), "code")[f"n2/{algo}"])
    for item in fig4.CODE_FORM:
        key, _, value = item.partition("=")
        assert str(_value(code, key)).lower() == value, item
        assert _value(paper, key) != _value(code, key), f"{item} is already the paper form's default"
    # Nothing else differs: the budget and the task are the same.
    changed = {k for k in fig4.CODE_FORM}
    assert paper.steps == code.steps and paper.env_values == code.env_values and len(changed) == len(fig4.CODE_FORM)


def test_penalty_pieces_are_named_and_batched():
    jobs = fig4.jobs([], "medium", ("n2",), ("qtran-base",), "paper", (1.0, 1.5))
    assert list(jobs) == ["n2/qtran-base-p1.0-1.5"]
    assert make_config(jobs["n2/qtran-base-p1.0-1.5"]).env_values == [1.0, 1.5]
    assert fig4.piece_penalties("n2/qtran-base-p1.0-1.5") == (1.0, 1.5)
    assert fig4.split_piece("n4/qtran-alt-p0.5") == ("n4", "qtran-alt")
    assert fig4.piece_penalties("n2/vdn") == fig4.PENALTIES
    with pytest.raises(UserError, match="p='0.7'"):
        fig4.parse_pieces(["p=0.7"])
    with pytest.raises(UserError, match="form='tf'"):
        fig4.parse_pieces(["form=tf"])


def test_a_directory_never_mixes_forms(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps(
        {"experiment": "fig4", "budget": "medium", "overrides": [], "pieces": {}}))  # made before form= existed
    assert fig4.check_out(tmp_path, "medium", [], "paper") is not None
    with pytest.raises(UserError, match="form=paper runs, not form=code"):
        fig4.check_out(tmp_path, "medium", [], "code")


def test_pieces_of_some_penalties_train_record_and_come_together(tmp_path, capsys):
    out = tmp_path / "f4"
    for p in ("1.0", "0.5,1.5"):
        assert main(["reproduce", "fig4", "n=2", "algos=qtran-base", "form=code", f"p={p}", *TINY, f"out={out}"]) == 0
    capsys.readouterr()
    assert sorted(d.name for d in (out / "n2").iterdir()) == ["qtran-base-p0.5-1.5", "qtran-base-p1.0"]
    summary = json.loads((out / "n2" / "qtran-base-p0.5-1.5" / "summary.json").read_text())
    assert summary["fig4"] == {"budget": "quick", "form": "code", "penalties": [0.5, 1.5], "steps": 40,
                               "updates_per_step": 1.0}
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["form"] == "code" and set(manifest["pieces"]) == {"n2/qtran-base-p1.0", "n2/qtran-base-p0.5-1.5"}
    curves, _ = fig4_claims.load(out)
    assert sorted(p for (n, p, a) in curves if a == "qtran-base") == [0.5, 1.0, 1.5]
    # A penalty another piece already holds is refused before anything trains.
    assert main(["reproduce", "fig4", "n=2", "algos=qtran-base", "form=code", "p=1.0,1.5", *TINY, f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert "already holds" in err and "P = 1.0" in err and len(err.strip().splitlines()) == 1
    # And the whole-figure piece of the same algorithm overlaps both.
    assert main(["reproduce", "fig4", "n=2", "algos=qtran-base", "form=code", *TINY, f"out={out}"]) == 2


def test_evidence_has_one_verdict_column_per_directory(tmp_path, capsys):
    code, paper = tmp_path / "code", tmp_path / "paper"
    assert main(["reproduce", "fig4", "n=2", "algos=vdn", "form=code", "p=0.5", *TINY, f"out={code}"]) == 0
    assert main(["reproduce", "fig4", "n=2", "algos=vdn,qmix", "p=0.5", *TINY, "env.move_rule=follow",
                 f"out={paper}"]) == 0
    capsys.readouterr()
    assert main(["fig4-claims", str(code), str(paper)]) == 0
    text = capsys.readouterr().out
    assert f"1. form=code, budget=quick, {' '.join(t for t in TINY if not t.startswith('progress'))}: `{code}`" in text
    assert "2. form=paper, budget=quick" in text and "env.move_rule=follow" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| 1.")]
    assert [r[0] for r in rows] == ["| 1.1", "| 1.2", "| 1.3", "| 1.4"]
    # Each column's verdict is that directory's own: here every claim misses runs in both.
    assert all(r[2] == "**not run**" and r[3] == "**not run**" and r[4] == "not run anywhere |" for r in rows)
    assert "| (1) | (2) |" in text


def test_evidence_in_words():
    words = fig4_claims._in_words
    assert words(["shows", "does not show", "not run"]) == "shows in (1); does not show in (2)"
    assert words(["does not show", "not run", "does not show"]) == "does not show anywhere it was run: (1), (3)"
    assert words(["not run", "shows"]) == "shows everywhere it was run: (2)"
    assert words(["not run"]) == "not run anywhere"


def test_an_idle_core_is_announced():
    assert "1 piece at a time on 2 cores" in fig4.idle_core_note(1, 2, 2)
    assert "1 will be mostly idle" in fig4.idle_core_note(1, 2, 2)
    assert fig4.idle_core_note(2, 2, 2) is None and fig4.idle_core_note(4, 2, 2) is None
    assert "2 pieces at a time on 4 cores" in fig4.idle_core_note(3, 2, 4)
    assert fig4.idle_core_note(1, 1, 1) is None and fig4.idle_core_note(0, 2, 2) is None
    assert "shard=true" in fig4.idle_core_note(1, 2, 2)
    assert fig4.idle_core_note(1, 2, 2, sharded=True) is None  # the piece spreads over the cores itself
