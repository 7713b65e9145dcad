"""The paper's Table 1 claim, at the paper's budget: 10 seeds, eps = 1, 20,000 steps.

QTRAN (both variants) recovers Q_jt and picks the optimum (A, A); VDN never does, QMIX rarely.
One reproduction run is shared by the slow assertions (it is what `qtran reproduce table1` runs);
the report's layout is also checked, fast, on made-up summaries.
"""

import re

import numpy as np
import pytest

from qtran.config import make_config
from qtran.envs import make_env
from qtran.experiments import table1
from qtran.run import single_state_summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("table1")
    return table1.run(["progress=false", "tensorboard=false"], out=str(out),
                      algos=("qtran-base", "qtran-alt", "vdn", "qmix"))


def _optimal(summary):
    return sum(tuple(g) == (0, 0) for g in summary["greedy_joint_actions"])


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["qtran-base", "qtran-alt"])
def test_qtran_picks_a_a_and_recovers_q_jt(runs, algo):
    s = runs[algo]
    assert len(s["seeds"]) == 10
    assert _optimal(s) >= 9
    q_jt = np.asarray(s["tables"]["q_jt"])  # [seeds, 3, 3]
    assert abs(q_jt[:, 0, 0].mean() - 8.0) <= 0.5
    # the whole payoff is learned, not just the optimum
    np.testing.assert_allclose(q_jt.mean(0), s["payoff"], atol=0.5)


@pytest.mark.slow
def test_vdn_never_picks_a_a(runs):
    assert _optimal(runs["vdn"]) == 0


@pytest.mark.slow
def test_qmix_rarely_picks_a_a(runs):
    assert _optimal(runs["qmix"]) <= 2


# ---- the report: every printed cell against the summaries and the paper's values -------------

# The report's table titles and the summary tables they print
TITLES = {"Q_jt": "q_jt", "Q'_jt = sum_i Q_i": "q_prime_jt", "Q'_jt - Q_jt": "q_prime_minus_q_jt"}
# The paper's column each algorithm is printed beside: the paper shows one QTRAN, and no IQL
PAPER_COLUMN = {"qtran-base": "qtran", "qtran-alt": "qtran", "vdn": "vdn", "qmix": "qmix"}
CELL = re.compile(r"(-?\d+\.\d\d)(?: \(\s*(-?\d+\.\d\d)\))?")  # ours, then (paper) if printed


def parse_report(text: str) -> dict[str, dict]:
    """{algo: {"greedy": its first line, "tables": {key: rows of (ours, paper or '') cells},
    "lines": its other lines}} from `table1.report`'s text."""
    blocks = {}
    for block in text.split("\n\n")[1:]:
        first, *lines = block.splitlines()
        algo = first.split(":")[0]
        tables, other, title = {}, [], None
        for line in lines:
            vector = re.match(r"  Q_(\d) ", line)
            if vector:
                tables[f"q{vector[1]}"] = [CELL.findall(line)]
            elif line.strip() in TITLES:
                title = TITLES[line.strip()]
                tables[title] = []
            elif title and line[:4] == "    " and line.split()[0] in ("A", "B", "C") and CELL.search(line):
                tables[title].append(CELL.findall(line))
            elif line.split() != ["A", "B", "C"]:  # not a column header
                other.append(line)
        blocks[algo] = {"greedy": first, "tables": tables, "lines": other}
    return blocks


def check_report(text: str, summaries: dict[str, dict]) -> None:
    """Every cell the report prints is the mean over seeds of the summary's table, to 2
    decimals, beside the paper's printed value for that algorithm, table and cell (none for
    IQL); every table an algorithm has is printed; the greedy counts and V are the summaries'."""
    ref = table1.paper_reference()
    blocks = parse_report(text)
    assert list(blocks) == list(summaries)
    for algo, summary in summaries.items():
        block, tables = blocks[algo], summary["tables"]
        paper = ref[PAPER_COLUMN[algo]] if algo in PAPER_COLUMN else {}
        want = {"q1": np.asarray(tables["q_i"])[:, :1], "q2": np.asarray(tables["q_i"])[:, 1:2]}
        want.update({k: tables[k] for k in ("q_jt",) if k in tables})
        if algo.startswith("qtran"):
            want.update({k: tables[k] for k in ("q_prime_jt", "q_prime_minus_q_jt")})
        assert sorted(block["tables"]) == sorted(want), algo
        for key, values in want.items():
            mean = np.mean(np.asarray(values, float), axis=0)
            printed = block["tables"][key]
            assert len(printed) == len(mean), (algo, key)
            for r, row in enumerate(printed):
                assert [ours for ours, _ in row] == [f"{x:.2f}" for x in mean[r]], (algo, key, r)
                paper_rows = paper.get(key)
                paper_row = None if paper_rows is None else (paper_rows if key in ("q1", "q2") else paper_rows[r])
                want_paper = [""] * len(row) if paper_row is None else [f"{x:.2f}" for x in paper_row]
                assert [p for _, p in row] == want_paper, (algo, key, r)
        optimal = sum(tuple(g) == (0, 0) for g in summary["greedy_joint_actions"])
        assert f" {optimal}/{len(summary['seeds'])} seeds" in block["greedy"], block["greedy"]
        letters = " ".join("".join("ABC"[a] for a in g) for g in summary["greedy_joint_actions"])
        assert block["greedy"].endswith(letters), block["greedy"]
        v_lines = [line for line in block["lines"] if line.strip().startswith("V_jt = ")]
        if "v" in tables:
            assert len(v_lines) == 1 and v_lines[0].split()[2] == f"{np.mean(tables['v']):.2f}", v_lines
        else:
            assert not v_lines


def _made_up_summaries() -> dict[str, dict]:
    """Summaries as training writes them (`single_state_summary` on the Table 1 game) from
    random tables: a different number of seeds per algorithm, every cell a different value."""
    env = make_env(make_config(table1.SETTINGS).env)
    rng = np.random.default_rng(0)
    out = {}
    for k, algo in enumerate(table1.ALGOS):
        seeds = 3 + k % 2
        q_i = rng.normal(0, 5, (seeds, 2, 3))
        tables = {"q_i": q_i, "q_prime_jt": q_i[:, 0, :, None] + q_i[:, 1, None, :]}
        if algo != "iql":
            tables["q_jt"] = rng.normal(0, 5, (seeds, 3, 3))
        if algo.startswith("qtran"):
            tables["v"] = rng.normal(0, 1, seeds)
        out[algo] = {"seeds": list(range(seeds)), "compile_seconds": 1.0, "train_seconds": 2.0,
                     **single_state_summary(env, tables)}
    return out


def test_report_prints_every_cell_beside_the_papers():
    summaries = _made_up_summaries()
    check_report(table1.report(summaries), summaries)


@pytest.mark.slow
def test_report_prints_paper_values_beside_ours(runs):
    """The same check on the reproduction's own summaries."""
    check_report(table1.report(runs), runs)
