"""The Figure 4 pieces that ship under docs/results/ (every directory whose experiment.json names
fig4: the paper's form in fig4/, the released code's in fig4_code/, ...): each piece
experiment.json records has its small files and no checkpoints and says its form, budget and
penalties, the claims and final-reward tables regenerated from them are the committed ones,
the README quotes the current claims verdicts, and `qtran plot` redraws all six panels from a
copy. Seconds, no training."""

import json
import shutil
from pathlib import Path

import pytest

from qtran.cli import main
from qtran.experiments import fig4, fig4_claims

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "fig4"
SMALL_FILES = ("summary.json", "metrics.csv", "config.yaml", "eval_episodes.npz", "params.npz")
SHIPPED = sorted(d for d in (ROOT / "docs" / "results").iterdir() if (d / "experiment.json").is_file()
                 and json.loads((d / "experiment.json").read_text()).get("experiment") == "fig4")


def pieces(results: Path = RESULTS) -> dict:
    data = json.loads((results / "experiment.json").read_text())
    assert data["experiment"] == "fig4" and data["pieces"], f"{results} records no piece"
    return data["pieces"]


@pytest.mark.parametrize("results,piece", [(d, p) for d in SHIPPED for p in sorted(pieces(d))],
                         ids=lambda x: x.name if isinstance(x, Path) else x)
def test_every_recorded_piece_ships_small_files_only(results, piece):
    run = results / piece
    for name in SMALL_FILES:
        assert (run / name).is_file(), f"missing {run / name}"
    assert not (run / "checkpoints").exists() and not (run / "tb").exists(), f"{run}: only small files ship"
    summary = json.loads((run / "summary.json").read_text())
    record = pieces(results)[piece]
    assert summary["steps"] == record["steps"]
    assert sorted(set(summary["env_values"])) == list(fig4.piece_penalties(piece))
    form = json.loads((results / "experiment.json").read_text()).get("form", "paper")
    if "fig4" in summary:  # pieces trained since form= existed say what they are themselves
        assert summary["fig4"]["form"] == form and summary["fig4"]["budget"] == record["budget"]
        assert summary["fig4"]["penalties"] == list(fig4.piece_penalties(piece))


@pytest.mark.parametrize("results", SHIPPED, ids=lambda d: d.name)
def test_no_unrecorded_piece_lies_beside_them(results):
    assert set(fig4.piece_dirs(results)) == set(pieces(results))


@pytest.mark.parametrize("results", SHIPPED, ids=lambda d: d.name)
def test_tables_regenerate_from_the_run_files(results, tmp_path):
    assert fig4_claims.report(results) == (results / "claims.md").read_text()
    copy = tmp_path / "fig4"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("*.png", "*.svg", "*.txt", "*.md"))
    assert main(["plot", str(copy)]) == 0
    for n in fig4.SETTINGS:
        for p in fig4.PENALTIES:
            assert (copy / f"fig4_{n}_p{p}.png").stat().st_size > 10_000
    for name in ("claims.md", "final_rewards.md"):
        assert (copy / name).read_text() == (results / name).read_text(), name


def test_the_readme_quotes_the_current_verdicts():
    """Each claim row the README's Figure 4 table names carries the verdict claims.md gives it."""
    readme = (ROOT / "README.md").read_text()
    verdicts = {}
    for line in (RESULTS / "claims.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1][:1].isdigit():
            verdicts[cells[1]] = cells[-2].strip("*")
    quoted = [line for line in readme.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in verdicts]
    assert quoted, "the README shows no Figure 4 claim row"
    for line in quoted:
        number, verdict = line.split("|")[1].strip(), line.split("|")[3].strip()
        assert verdict.startswith(verdicts[number]), (number, verdict, verdicts[number])


EVIDENCE = ["docs/results/fig4", "docs/results/fig4_code", "docs/results/fig4_move", "docs/results/fig4_budget_paper"]


def test_the_evidence_across_forms_regenerates(monkeypatch):
    """docs/results/fig4_evidence.md is `qtran fig4-claims` over the shipped directories, as
    committed (the paths in it are relative to the repository's root)."""
    monkeypatch.chdir(ROOT)
    assert fig4_claims.evidence(EVIDENCE) == (ROOT / "docs" / "results" / "fig4_evidence.md").read_text()
    text = (ROOT / "docs" / "results" / "fig4_evidence.md").read_text()
    assert "2. form=code, budget=medium" in text and "env.move_rule=follow" in text
