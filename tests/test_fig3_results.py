"""The Figure 3 results that ship in docs/results/fig3/<design>/: every run file the design's
experiment.json lists is there and readable, the claims table regenerated from them is the
committed claims.md (and the one docs/figure3.md shows), and `qtran plot` redraws the panels
from them. Seconds, no training."""

import json
import shutil
from pathlib import Path

import pytest

from qtran.cli import main
from qtran.experiments import fig3, fig3_claims

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "fig3"
DOCS = ROOT / "docs" / "figure3.md"
DESIGNS = tuple(fig3.DESIGNS)  # every design ships, trained in full or in part


def manifest(design: str) -> dict:
    path = RESULTS / design / "experiment.json"
    assert path.is_file(), f"missing {path}"
    data = json.loads(path.read_text())
    assert data["experiment"] == "fig3" and data["design"] == design
    return data


@pytest.mark.parametrize("design", DESIGNS)
def test_every_listed_run_file_is_there(design):
    data = manifest(design)
    assert data["panels"] and data["algos"]
    for panel in data["panels"]:
        for algo in data["algos"]:
            run = RESULTS / design / panel / algo
            for name in ("summary.json", "metrics.csv", "config.yaml"):
                assert (run / name).is_file(), f"missing {run / name}"
            assert not (run / "checkpoints").exists(), f"{run}: checkpoints do not ship"
        assert (RESULTS / design / f"{panel}.png").is_file()
    for name in ("claims.md", "final_rewards.md"):
        assert (RESULTS / design / name).is_file()


@pytest.mark.parametrize("design", DESIGNS)
def test_claims_regenerate_from_the_run_files(design):
    committed = (RESULTS / design / "claims.md").read_text()
    assert fig3_claims.report(RESULTS / design) == committed
    table = [line for line in committed.splitlines() if line.startswith("| 3")]
    assert len(table) == len(fig3_claims.CLAIMS)
    shown = DOCS.read_text()
    missing = [line for line in table if line not in shown]
    assert not missing, f"docs/figure3.md does not show {design}'s current claims table: {missing[:1]}"


@pytest.mark.parametrize("design", DESIGNS)
def test_plot_redraws_the_committed_panels(design, tmp_path):
    copy = tmp_path / design
    shutil.copytree(RESULTS / design, copy, ignore=shutil.ignore_patterns("*.png"))
    assert main(["plot", str(copy)]) == 0
    for panel in manifest(design)["panels"]:
        assert (copy / f"{panel}.png").stat().st_size > 10_000
    assert (copy / "claims.md").read_text() == (RESULTS / design / "claims.md").read_text()


def test_a_spoiled_copy_fails_loudly(tmp_path, capsys):
    """What the tests above rely on: a missing or malformed run file is an error, not a blank."""
    design = DESIGNS[0]
    copy = tmp_path / design
    shutil.copytree(RESULTS / design, copy, ignore=shutil.ignore_patterns("*.png"))
    panel, algo = manifest(design)["panels"][0], manifest(design)["algos"][0]
    (copy / panel / algo / "summary.json").write_text("{\"algo\": 1}")
    assert main(["claims", str(copy)]) == 2
    assert "not a qtran summary" in capsys.readouterr().err
    (copy / panel / algo / "summary.json").unlink()
    assert "missing: " in fig3_claims.report(copy)
