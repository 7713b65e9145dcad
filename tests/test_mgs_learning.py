"""The paper's Figure 3c claim on multi-domain Gaussian squeeze (all s_i equal, given a priori):
QTRAN escapes the pitfall that VDN and QMIX settle in.

Budget: the released code's 10,000 steps (one update each), 5 seeds (0-4), as in
`qtran reproduce fig3`'s panel 3c. This is the configuration the claim was first checked
with; the seeds were not chosen to make it pass (see NOTES.md for every seed's result).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

from qtran.experiments import fig3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mgs")
    return fig3.run(["seeds=5", "progress=false", "tensorboard=false"], out=str(out), panels=("fig3c",),
                    algos=("qtran-alt", "qtran-base", "vdn", "qmix"))


def _mean(runs, algo):
    return float(np.mean(runs[f"fig3c/{algo}"]["final_eval_return"]))


def test_qtran_alt_beats_vdn_and_qmix_and_the_pitfall(runs):
    pitfall = runs["fig3c/vdn"]["env_reference"]["pitfall"]
    assert pitfall == pytest.approx(5.05, abs=0.05)
    alt = _mean(runs, "qtran-alt")
    assert alt > _mean(runs, "vdn") and alt > _mean(runs, "qmix")
    assert alt > pitfall


def test_qtran_base_finds_the_global_optimum_region(runs):
    assert _mean(runs, "qtran-base") > runs["fig3c/vdn"]["env_reference"]["pitfall"] + 1.0


def test_vdn_and_qmix_settle_near_the_pitfall(runs):
    pitfall = runs["fig3c/vdn"]["env_reference"]["pitfall"]
    for algo in ("vdn", "qmix"):
        assert abs(_mean(runs, algo) - pitfall) < 0.5
