"""`qtran sweep`: the grid, run names, checks before training, the summary table, skipping
finished runs on a rerun, and a Ray sweep giving the local sweep's results bit for bit."""

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import qtran.config
import qtran.run
from qtran import checkpoint
from qtran import sweep as sw
from qtran.cli import main
from qtran.errors import UserError
from helpers import count_calls

BASE = ["env=matrix", "steps=200", "eval.interval=100", "eps.start=1", "eps.end=1", "progress=false",
        "tensorboard=false"]
TINY = BASE + ["seeds=2"]
ALGOS = ("vdn", "qtran-alt")


def _sweep_cli(args, capsys):
    code = main(["sweep", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- the grid and names (no training) -------------------------------------------------------

def test_split_values_keeps_brackets_and_quotes_whole():
    assert sw.split_values("a,b,c") == ["a", "b", "c"]
    assert sw.split_values("[0.5,1.0],[1.5]") == ["[0.5,1.0]", "[1.5]"]
    assert sw.split_values("'x,y',z") == ["'x,y'", "z"]
    assert sw.split_values("") == [""]
    assert sw.split_values("a,") == ["a", ""]


def test_grid_is_the_cartesian_product_first_key_slowest():
    opts, runs = sw.parse_grid(["algo=qtran-base,vdn", "env=predator_prey", "env.penalty=0.5,1.0,1.5",
                                "seeds=5", "backend=local", "out=somewhere", "max_retries=2"])
    assert (opts.backend, opts.out, opts.max_retries, opts.address) == ("local", "somewhere", 2, None)
    assert len(runs) == 6
    assert [r.varied for r in runs][:4] == [
        (("algo", "qtran-base"), ("env.penalty", "0.5")), (("algo", "qtran-base"), ("env.penalty", "1.0")),
        (("algo", "qtran-base"), ("env.penalty", "1.5")), (("algo", "vdn"), ("env.penalty", "0.5"))]
    assert runs[4].overrides == ("algo=vdn", "env=predator_prey", "env.penalty=1.0", "seeds=5")
    assert runs[0].name == "algo=qtran-base,env.penalty=0.5"
    assert len({r.name for r in runs}) == 6
    # sweep keys never reach the runs' configs
    assert not any(o.split("=")[0] in sw.SWEEP_KEYS for r in runs for o in r.overrides)


def test_a_grid_without_lists_is_one_run_and_list_values_stay_whole():
    _, runs = sw.parse_grid(["algo=vdn", "env_values=[0.5,1.0]"])
    assert [r.name for r in runs] == ["run"] and runs[0].overrides == ("algo=vdn", "env_values=[0.5,1.0]")
    _, runs = sw.parse_grid(["env_values=[0.5,1.0],[1.5]"])
    assert [r.overrides for r in runs] == [("env_values=[0.5,1.0]",), ("env_values=[1.5]",)]


@pytest.mark.parametrize("value", ["/tmp/a b/game.json", "../../etc", "ünï/cödé", "x" * 400, ".hidden,x", "a\\b:c*?"])
def test_run_names_are_safe_directory_names(value):
    _, runs = sw.parse_grid([f"env.payoff={value},table1"])
    name = runs[0].name
    assert "/" not in name and "\\" not in name and not name.startswith(".") and len(name) <= 140
    assert all(c.isascii() and (c.isalnum() or c in "._=,+-") for c in name)
    assert runs[0].name != runs[1].name


def test_names_that_only_differ_in_unsafe_characters_stay_apart():
    _, runs = sw.parse_grid(["env.payoff=a/b.json,a_b.json,a:b.json"])
    assert len({r.name for r in runs}) == 3


@pytest.mark.parametrize("args,fragment", [
    (["algo=vdn", "algo=qmix"], "given twice"),
    (["env=matrix", "env.name=matrix"], "given twice"),
    (["backend=local,ray"], "takes one value"),
    (["backend=slurm"], "backend='slurm' is unknown"),
    (["address=auto"], "needs backend=ray"),
    (["max_retries=-1"], "max_retries"),
    (["workers=0"], "workers"),
    (["workers=two"], "workers"),
    (["out="], "out must not be empty"),
    (["steps"], "expected key=value"),
    (["=3"], "expected key=value"),
    (["algo=vdn,vdn"], "share the directory"),
    (["lr=" + ",".join(["0.1"] * 101), "gamma=" + ",".join(["0.5"] * 100)], "at most"),
])
def test_bad_sweep_options_are_refused(args, fragment):
    with pytest.raises(UserError, match=None) as err:
        sw.parse_grid(args)
    assert fragment in str(err.value)


# ---- checks before anything trains -----------------------------------------------------------

@pytest.mark.parametrize("bad,fragment", [
    ("algo=vdn,dqn", "run algo=dqn: unknown algorithm 'dqn'"),
    ("env.payoff=table1,missing.json", "payoff file not found"),
    ("lr=0.001,-1", "run lr=-1: lr must be positive"),
    ("bogus=1,2", "unknown setting 'bogus'"),
])
def test_every_run_is_checked_before_any_trains(bad, fragment, tmp_path, monkeypatch, capsys):
    calls = count_calls(monkeypatch, "train", fail=True)
    out = tmp_path / "sweep"
    code, _, err = _sweep_cli([*TINY, bad, f"out={out}"], capsys)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert calls == [] and not out.exists()


def test_missing_ray_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    calls = count_calls(monkeypatch, "train", fail=True)
    code, _, err = _sweep_cli([*TINY, "algo=vdn,qmix", "backend=ray", f"out={tmp_path / 's'}"], capsys)
    assert code == 2 and "qtran[ray]" in err and calls == []


# ---- retries and failures (training stubbed) -------------------------------------------------

def _fake_train(returns):
    """A stand-in for qtran.run.train: writes the files a finished run leaves, no training."""
    def train(cfg, **_):
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(qtran.config.to_yaml(cfg))
        summary = {"algo": cfg.algo, "env": "matrix", "seeds": list(range(cfg.seeds)), "steps": cfg.steps,
                   "final_eval_return": returns[cfg.algo], "compile_seconds": 1.0, "train_seconds": 2.5,
                   "eval_curve": {"steps": [cfg.steps], "returns": [returns[cfg.algo]]}}
        (out / "summary.json").write_text(json.dumps(summary))
        return summary
    return train


def test_failed_runs_are_retried_then_reported(tmp_path, monkeypatch, capsys):
    returns = {"vdn": [1.0, 2.0, 4.0], "qmix": [-1.0, 0.5, 3.0]}
    fake = _fake_train(returns)
    attempts = []

    def flaky(cfg, **kw):  # vdn fails on its first try; qmix always
        attempts.append(cfg.algo)
        if cfg.algo == "qmix" or attempts.count("vdn") == 1:
            raise RuntimeError("worker lost")
        return fake(cfg, **kw)

    monkeypatch.setattr(qtran.run, "train", flaky)
    out = tmp_path / "s"
    code, _, err = _sweep_cli([*BASE, "seeds=3", "algo=vdn,qmix", "max_retries=1", f"out={out}"], capsys)
    assert code == 1 and "qmix" in err and "RuntimeError: worker lost" in err
    assert attempts.count("vdn") == 2 and attempts.count("qmix") == 2
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["done", "failed"]
    mean, (_, hi) = np.mean(returns["vdn"]), stats.t.interval(0.95, 2, loc=0, scale=stats.sem(returns["vdn"]))
    assert float(rows[0]["final_return_mean"]) == pytest.approx(mean, abs=1e-6)
    assert float(rows[0]["final_return_ci95"]) == pytest.approx(hi, abs=1e-6)
    assert rows[0]["seeds"] == "3" and rows[0]["steps"] == "200" and rows[0]["seconds"] == "3.5"
    assert "failed (RuntimeError: worker lost)" in (out / "summary.md").read_text()


# ---- real tiny sweeps ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "sweep"
    code = main(["sweep", *TINY, f"algo={','.join(ALGOS)}", f"out={out}"])
    assert code == 0
    return out


def _summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_local_sweep_writes_a_run_directory_per_run_and_the_table(local_sweep):
    names = [f"algo={a}" for a in ALGOS]
    assert sorted(p.name for p in local_sweep.iterdir() if p.is_dir()) == sorted(names)
    rows = list(csv.DictReader((local_sweep / "summary.csv").open()))
    assert [r["run"] for r in rows] == names and [r["algo"] for r in rows] == list(ALGOS)
    md = (local_sweep / "summary.md").read_text()
    for name, algo, row in zip(names, ALGOS, rows):
        s = _summary(local_sweep / name)
        assert s["algo"] == algo and s["seeds"] == [0, 1] and s["steps"] == 200
        returns = np.asarray(s["final_eval_return"])
        half = stats.t.ppf(0.975, 1) * returns.std(ddof=1) / np.sqrt(2)
        assert float(row["final_return_mean"]) == pytest.approx(returns.mean(), abs=1e-6)
        assert float(row["final_return_ci95"]) == pytest.approx(half, abs=1e-6)
        assert row["status"] == "done" and row["seeds"] == "2" and row["steps"] == "200"
        assert float(row["seconds"]) > 0
        assert f"| {name} | {algo} | {returns.mean():.3f} +- " in md
        assert (local_sweep / name / "params.npz").is_file()


def test_rerun_skips_finished_runs(local_sweep, monkeypatch, capsys):
    calls = count_calls(monkeypatch, "train", fail=True)
    stamps = {p: p.stat().st_mtime_ns for p in local_sweep.glob("*/summary.json")}
    code, stdout, _ = _sweep_cli([*TINY, f"algo={','.join(ALGOS)}", f"out={local_sweep}"], capsys)
    assert code == 0 and calls == []
    assert "0 trained, 2 already finished" in stdout
    assert {p: p.stat().st_mtime_ns for p in local_sweep.glob("*/summary.json")} == stamps


def test_rerun_with_other_settings_in_the_same_out_is_refused(local_sweep, monkeypatch, capsys):
    calls = count_calls(monkeypatch, "train", fail=True)
    code, _, err = _sweep_cli([*TINY, "eval.episodes=16", f"algo={','.join(ALGOS)}", f"out={local_sweep}"], capsys)
    assert code == 2 and "other settings" in err and calls == []


def test_rerun_finishes_an_interrupted_run_only(local_sweep, tmp_path, monkeypatch, capsys):
    """A run killed after its first checkpoint (chunk 0 of 2) is resumed from that checkpoint:
    only the second chunk trains, and the run ends bit for bit as the uninterrupted one did.
    The finished run is left alone."""
    out = tmp_path / "copy"
    shutil.copytree(local_sweep, out)
    run_dir = out / "algo=vdn"
    before = _summary(run_dir)
    before_metrics = (run_dir / "metrics.csv").read_text()
    with np.load(run_dir / "params.npz") as p:
        before_params = {k: p[k].tobytes() for k in p.files}
    saved = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert [chunk for chunk, _ in saved] == [0, 1]
    # what a kill during chunk 1 leaves: chunk 0's checkpoint and the files written while
    # training (config, metrics so far), none of the files written at the end
    saved[-1][1].unlink()
    for name in ("summary.json", "params.npz", "eval_episodes.npz", "tables.npz"):
        (run_dir / name).unlink(missing_ok=True)
    trains = count_calls(monkeypatch, "train", fail=True)  # neither run may start over
    resumes = count_calls(monkeypatch, "resume")
    code, stdout, _ = _sweep_cli([*TINY, f"algo={','.join(ALGOS)}", f"out={out}"], capsys)
    assert code == 0 and "1 trained, 1 already finished" in stdout
    assert trains == [] and resumes == [run_dir]
    after = _summary(run_dir)
    assert after["resumed_from_chunk"] == 1  # training went on after chunk 0's checkpoint
    assert after["final_eval_return"] == before["final_eval_return"]
    assert after["eval_curve"] == before["eval_curve"]
    assert (run_dir / "metrics.csv").read_text() == before_metrics
    with np.load(run_dir / "params.npz") as p:
        assert {k: p[k].tobytes() for k in p.files} == before_params


def test_ray_sweep_gives_the_local_results_bit_for_bit(local_sweep, tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    code, stdout, err = _sweep_cli([*TINY, f"algo={','.join(ALGOS)}", "backend=ray", "workers=2", f"out={out}"],
                                   capsys)
    assert code == 0, err
    assert "2 trained" in stdout
    for a in ALGOS:
        name = f"algo={a}"
        local, remote = _summary(local_sweep / name), _summary(out / name)
        assert remote["final_eval_return"] == local["final_eval_return"]
        assert remote["eval_curve"] == local["eval_curve"]
        assert remote["run_dir"] == str(out / name)  # this machine's path, not the worker's
        with np.load(local_sweep / name / "params.npz") as p, np.load(out / name / "params.npz") as q:
            assert sorted(p.files) == sorted(q.files)
            for k in p.files:
                assert p[k].tobytes() == q[k].tobytes(), k
        assert (out / name / "config.yaml").read_text().replace(str(out), "X") == \
            (local_sweep / name / "config.yaml").read_text().replace(str(local_sweep), "X")
    assert (out / "summary.md").is_file() and len((out / "summary.csv").read_text().splitlines()) == 3
    import ray

    assert not ray.is_initialized()  # the instance the sweep started is shut down again
