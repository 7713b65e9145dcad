"""Fuzzed command lines: whatever is typed, `qtran` exits 0 or 2 (help and version: SystemExit 0),
never with a traceback, and nothing trains before every setting has been checked.

`config` is fuzzed fully (it resolves and checks but never trains). For `train` and `sweep`,
`qtran.run.train` is replaced by a stand-in that records that training would start, without
training: those tests show that every input gets status 0 or one clear line with status 2,
never a traceback; the stand-in repeats `check_runnable`, so by themselves they cannot find a
setting that passes the checks and then fails in training. `test_accepted_settings_train`
does: it trains every accepted configuration of a small sample for real, cut to a few steps.
`reproduce` gets only inputs that hold a mistake somewhere, and training there fails the
test. The `@example`s are inputs that once gave a traceback.
"""

import contextlib
import io
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import qtran.experiments.common
import qtran.run
from qtran.cli import main
from qtran.config import Config, make_config, to_yaml
from qtran.envs import FAMILIES, make_env
from qtran.errors import TrainingDiverged, UserError
from qtran.experiments.common import check_runnable
from qtran.sweep import split_values

# The same 150 examples per test on every run (CI stays deterministic); for a longer, random
# search: QTRAN_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_cli.py --hypothesis-show-statistics
DEEP = os.environ.get("QTRAN_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(DEEP or 150), deadline=None, derandomize=not DEEP,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _leaf_keys() -> list[str]:
    """Every dotted key of the real configuration tree, for every environment family."""
    keys = set()

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                keys.add(prefix + k)  # a group given a scalar is a mistake worth trying too
                walk(v, f"{prefix}{k}.")
            else:
                keys.add(prefix + k)

    for fam in FAMILIES.values():
        walk(OmegaConf.to_container(OmegaConf.structured(Config(env=fam.config()))), "")
    return sorted(keys)


KEYS = _leaf_keys()
# Files in the working directory of these tests, for env.payoff and for run directories.
PAYOFFS = {
    "ok.json": "[[1, 0], [0, 1]]",
    "ok3.json": json.dumps(np.arange(8.0).reshape(2, 2, 2).tolist()),
    "dict.json": '{"payoff": [[1, 2], [3, 4]]}',
    "dictbad.json": '{"payoff": "x"}',
    "rect.json": "[[1, 2, 3], [4, 5, 6]]",
    "ragged.json": "[[1, 2], [3]]",
    "nan.json": "[[1, NaN], [0, 0]]",
    "inf.json": "[[1e400, 0], [0, 0]]",
    "big.json": "[[1e300, 0], [0, 0]]",
    "strings.json": '[["a", "b"], ["c", "d"]]',
    "nulls.json": "[[null, 1], [1, 1]]",
    "bools.json": "[[true, false], [false, true]]",
    "one.json": "[[1]]",
    "scalar.json": "5",
    "empty.json": "",
    "emptylist.json": "[]",
    "broken.json": "[[1, 2], [3, 4]",
    "deep.json": "[" * 5000 + "]" * 5000,
    "binary.json": None,  # written as bytes below
}
EXAMPLES = ["", "nan", "NaN", "inf", "-inf", "+inf", ".inf", "1e999", "-1e999", "1e-999", "0", "-0", "-1", "1",
            "2", "0.5", "1.5", str(2**31), str(2**63), str(10**30), str(-10**30), "0x10", "1_000", "1e3", "true",
            "false", "null", "~", "None", "[]", "[1,2]", "[a]", "[nan]", "[1e999]", "[[1]]", "{}", "{a: 1}", "${seeds}",
            "${steps}", "${lr}", "${nope}", "${oc.env:HOME}", "${oc.env:NOPE_UNSET_VAR}", "${", "}", "'x'", "'", '"',
            "=", "==", ",", "[", "]", "{", ":", "a: b: c", "- 1", "#", "&a", "*a", "!!python/object:os.system",
            "!!binary 1", "%", "@", "`", "|", ">", "\t", "\n", "\x00", "\x01", "\x7f", "\udcff", "\ud800", "\ufffe",
            "é", "名前", "🤖", " " * 3, "table1", "climb21", "climbing", "paper", "code", "sum", "mean", "gs", "mgs",
            "own", "all", "full", "local", "matrix", "gaussian_squeeze", "predator_prey", "qtran-base", "qtran-alt",
            "vdn", "qmix", "iql", "missing.json", "x.npy", "dir.json", "../nope.json", "/dev/null", "/dev/null.json",
            *PAYOFFS, "object.npy", "complex.npy", "strings.npy", "scalar.npy", "truncated.npy", "ok.npy"]

values = st.one_of(
    st.sampled_from(EXAMPLES),
    st.integers(-10**40, 10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=10),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True)), max_size=3)
      .map(lambda xs: "[" + ",".join(map(str, xs)) + "]"),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(["env", "algo", "env.name", "seeds", "steps", "out"]),
                 st.sampled_from(["", " ", ".", "env.", "..", "a.b.c", "eps..start", "EPS.START", "env.payoff.x",
                                  "zz", "env_values.0", "qtran[0]", "-x", "--help"]),
                 st.text(max_size=8))
overrides = st.one_of(
    st.tuples(keys, values).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(keys, values, values).map(lambda kv: f"{kv[0]}={kv[1]},{kv[2]}"),  # sweep lists
    st.text(max_size=10),  # anything at all, with or without '='
    values.map(lambda v: "=" + v),
)
COMMANDS = ["train", "config", "sweep", "reproduce", "plot", "eval", "render", "report", "resume", "fig4-claims",
            "fig3-claims", "claims"]


def _typed_keys(family: str) -> dict[str, object]:
    """{dotted key: default} of one family's configuration."""
    flat = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[prefix + k] = v

    walk(OmegaConf.to_container(OmegaConf.structured(Config(env=FAMILIES[family].config()))), "")
    flat.pop("env.name")
    return flat


CHOICES = {
    "algo": ["qtran-base", "qtran-alt", "vdn", "qmix", "iql", "QMIX", "dqn"],
    "env.payoff": ["table1", "climbing", "penalty", "climb21", *PAYOFFS, "ok.npy", "object.npy", "complex.npy",
                   "strings.npy", "scalar.npy", "truncated.npy", "dir.json", "missing.json"],
    "env.domains": ["gs", "mgs", "xgs"], "env.setting": ["paper", "code", "other"],
    "env.obs": ["own", "all", "full", "local", "none"], "qtran.pooling": ["sum", "mean", "max"],
    "qtran.td_target": ["paper", "code", "x"], "out": ["typed-run", "", "ok.json/run"],
}
INT_EDGES = [0, -1, 1, 2, 3, 2**31 - 1, 2**31, 2**63, 10**20, -(2**31)]
FLOAT_EDGES = ["nan", "inf", "-inf", "0", "-0.0", "1e-300", "1e300", "3.5e38", "0.5", "1", "2"]


def _typed_value(key: str, default) -> st.SearchStrategy[str]:
    """Mostly values of the right type and near the usual range, sometimes edges or junk."""
    if key in CHOICES:
        good = st.sampled_from(CHOICES[key])
    elif isinstance(default, bool):
        good = st.sampled_from(["true", "false", "True", "off", "1", "maybe"])
    elif isinstance(default, int) or default is None and key != "env_values":
        good = st.one_of(st.integers(-2, 64).map(str), st.sampled_from(INT_EDGES).map(str),
                         st.sampled_from(["null"] if default is None else ["1.5"]))
    elif isinstance(default, float):
        good = st.one_of(st.floats(-2, 2).map(repr), st.sampled_from(FLOAT_EDGES))
    else:  # env_values
        good = st.lists(st.one_of(st.floats(-2, 2), st.sampled_from([math.nan, math.inf])), max_size=3).map(
            lambda xs: "[" + ",".join(map(repr, xs)) + "]")
    return st.one_of(good, good, good, values)


@st.composite
def typed_overrides(draw) -> list[str]:
    """`env=FAMILY` and a few of that family's settings: inputs that get past the first check."""
    family = draw(st.sampled_from(["matrix", "gaussian_squeeze", "predator_prey"]))
    table = _typed_keys(family)
    chosen = draw(st.lists(st.sampled_from(sorted(table)), max_size=5, unique=True))
    return [f"env={family}", *(f"{k}={draw(_typed_value(k, table[k]))}" for k in chosen)]


@pytest.fixture(scope="module", autouse=True)
def workdir(tmp_path_factory):
    """A scratch working directory holding the payoff files the fuzzer names."""
    path = tmp_path_factory.mktemp("fuzz")
    for name, text in PAYOFFS.items():
        (path / name).write_text(text) if text is not None else (path / name).write_bytes(b"\xff\xfe\x00[[")
    np.save(path / "ok.npy", np.eye(2))
    np.save(path / "object.npy", np.array([[1, None], [None, 1]], dtype=object), allow_pickle=True)
    np.save(path / "complex.npy", np.eye(2) * 1j)
    np.save(path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(path / "scalar.npy", np.float64(3))
    (path / "truncated.npy").write_bytes((path / "ok.npy").read_bytes()[:40])
    (path / "dir.json").mkdir()
    old = os.getcwd()
    os.chdir(path)
    yield path
    os.chdir(old)


def _call(argv) -> int:
    """main(argv): its exit status, with help and version's SystemExit(0) as 0.

    Output goes to streams encoded as a terminal's are (UTF-8; strict on stdout,
    backslashreplace on stderr), so text a terminal cannot take shows up here too."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err_stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err_stream):
            code = main(list(argv))
    except SystemExit as stop:  # only argparse's --help / --version may exit this way
        assert stop.code == 0 and any(a in ("-h", "--help", "--version") for a in argv), argv
        code = 0
    err_stream.flush()
    err = err_stream.buffer.getvalue().decode()
    event(f"exit status {code}")
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, err
    if code == 2:
        assert err.startswith("qtran: error: ") and len(err.strip().splitlines()) == 1, err
    return code


class _NoTraining:
    """Stands in for qtran.run.train: the checks (`check_runnable`), then no training. For
    `train` they repeat what cmd_train has just checked; for `sweep` they fail on a run the
    sweep started without checking it first."""

    def __init__(self, write: bool):
        self.started, self.write = [], write

    def __call__(self, cfg, **_):
        check_runnable(cfg)
        self.started.append(cfg)
        summary = {"algo": cfg.algo, "env": cfg.env.name, "seeds": [cfg.seed, cfg.seed + 1], "steps": cfg.steps,
                   "final_eval_return": [0.0, 1.0], "eval_curve": {"steps": [cfg.steps], "returns": [[0.0, 1.0]]},
                   "compile_seconds": 0.0, "train_seconds": 0.0, "run_dir": str(cfg.out)}
        if self.write:
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(to_yaml(cfg))
            (out / "summary.json").write_text(json.dumps(summary))
        return summary


def _refuse_training(*args, **kwargs):
    raise AssertionError("training started although the input holds a mistake")


@FUZZ
@given(args=st.lists(overrides, max_size=6))
@example(["env.payoff=\udcff"])  # undecodable bytes in argv: UnicodeEncodeError in the YAML reader
@example(["algo=\x00"])  # a control character: yaml ReaderError
@example(["seeds=${seeds}"])  # recursive interpolation: raised on first access, in validate
@example(["steps=${nope}"])
@example(["lr=a: b: c"])
@example(["env_values=[${nope}]"])
@example(["env_values.0="])  # TypeError from OmegaConf's merge: a list item given as a key
def test_config_command(args):
    _call(["config", *args])


@FUZZ
@given(args=st.lists(overrides, max_size=6))
@example(["updates_per_step=inf"])  # passed the checks, then round(inf) in the step schedule
@example(["updates_per_step=1e300"])
@example(["steps=100000000000000000000"])
@example(["seed=-0", "seeds=100000000000000000000"])
@example(["env.payoff=deep.json"])  # RecursionError from the JSON reader
@example(["env.payoff=big.json"])  # finite in float64, infinite as float32 rewards
@example(["env=gaussian_squeeze", "env.agents=100000000000"])
@example(["env=predator_prey", "env.grid=100000000"])
@example(["-x=", "\r0"])  # a line break inside the one-line error message
def test_train_answers_status_0_or_one_line_and_trains_only_on_0(args):
    stub = _NoTraining(write=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", stub)
        code = _call(["train", *args])
    assert (code == 0) == bool(stub.started) or "-h" in args or "--help" in args


@FUZZ
@given(args=typed_overrides())
@example(["env=gaussian_squeeze", "env.agents=2147483647"])
@example(["env=predator_prey", "env.grid=2147483647"])
@example(["env=predator_prey", "env.agents=64", "env.grid=2"])
def test_typed_settings_config_and_train(args):
    _call(["config", *args])
    stub = _NoTraining(write=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", stub)
        code = _call(["train", *args])
    assert (code == 0) == bool(stub.started)


# Real training of accepted settings: a handful of examples in the fast suite, more when slow.
TINY_FUZZ = settings(FUZZ, max_examples=int(DEEP or 3))
MORE_TINY_FUZZ = settings(FUZZ, max_examples=int(DEEP or 30))
REAL_TRAIN = qtran.run.train
# check_runnable bounds the training state's memory, not the batch's or the evaluation's
# (batch_size and eval.episodes up to 2**31 - 1 pass every check): beyond this, a real run
# would try to allocate gigabytes, so the sample below leaves such batch sizes out.
LARGEST_BATCH_TRIED = 4096
_run_numbers = itertools.count()


def tiny(cfg):
    """cfg cut to three iterations (the first a warm-up) of at most 4 updates, 2 seeds and 2
    evaluation episodes, no TensorBoard; the game, algorithm, networks, batch and buffer as given."""
    tiny_cfg = cfg.copy()
    steps_per_iter = cfg.n_envs * make_env(cfg.env).episode_limit
    tiny_cfg.steps = min(cfg.steps, 3 * steps_per_iter)
    tiny_cfg.warmup_steps = min(cfg.warmup_steps, steps_per_iter)
    tiny_cfg.updates_per_step = min(cfg.updates_per_step, 4 / steps_per_iter)
    tiny_cfg.seeds = min(cfg.seeds, 2)
    tiny_cfg.eval.episodes = min(cfg.eval.episodes, 2)
    tiny_cfg.tensorboard = tiny_cfg.progress = False
    return tiny_cfg


class _TinyTraining:
    """Stands in for qtran.run.train: the real training, of `tiny`(cfg)."""

    def __init__(self):
        self.entered = self.diverged = False

    def __call__(self, cfg, **kwargs):
        self.entered = True
        try:
            return REAL_TRAIN(tiny(cfg), **kwargs)
        except TrainingDiverged:  # accepted settings may still diverge (lr=1e300): one line, status 2
            self.diverged = True
            raise


def _train_accepted(args) -> None:
    """`qtran train ARGS`: where the checks accept the settings, training (cut short) finishes
    with status 0, or stops on a non-finite loss with its one-line message; any other error
    there is a check missing before training. Settings the checks refuse are not this test's
    sample."""
    try:
        batch = make_config(list(args)).batch_size
    except UserError:
        batch = None
    assume(batch is not None and batch <= LARGEST_BATCH_TRIED)
    stub = _TinyTraining()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", stub)
        code = _call(["train", *args, f"out=tiny-runs/{next(_run_numbers)}"])
    assume(stub.entered)  # refused before training: checked by the tests above
    assert code == 0 or stub.diverged, args


@TINY_FUZZ
@given(args=typed_overrides())
def test_accepted_settings_train(args):
    _train_accepted(args)


@pytest.mark.parametrize("setting", ["batch_size=2147483647", "eval.episodes=2147483647"])
def test_batch_and_evaluation_sizes_are_checked_before_training(setting):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", _refuse_training)
        assert main(["train", setting]) == 2


@pytest.mark.slow
@MORE_TINY_FUZZ
@given(args=typed_overrides())
def test_more_accepted_settings_train(args):
    _train_accepted(args)


@FUZZ
@given(args=st.lists(overrides, max_size=5))
@example(["algo=vdn,qmix", "out=a\x00b"])
@example(["backend=local", "workers=٣"])  # a non-ASCII digit
@example(["out=sweep-x", "algo=vdn,vdn,qmix"])
def test_sweep_checks_every_run_before_training(args):
    args = [a for a in args if not (a.partition("=")[0].strip() == "backend" and a.partition("=")[2] == "ray")]
    sizes = [len(split_values(a.partition("=")[2])) for a in args if "=" in a]
    assume(math.prod(sizes) <= 12)  # grids of at most a dozen runs, each checked in full
    stub = _NoTraining(write=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", stub)
        code = _call(["sweep", *args])
    if code == 2:
        assert not stub.started


MISTAKES = ["zz_not_a_setting=1", "workers=0", "workers=x", "algo=vdn", "env=matrix", "eps.start=7", "seeds=0",
            "lr=-1", "env.payoff=nan.json", "gamma=2", "eval.episodes=0"]


@FUZZ
@given(what=st.one_of(st.sampled_from(["table1", "fig2", "fig3", "fig4", "compare"]), st.text(max_size=6)),
       args=st.lists(overrides, max_size=4), mistake=st.sampled_from(MISTAKES), where=st.integers(0, 4))
@example(what="-\r0", args=[], mistake="zz_not_a_setting=1", where=0)
def test_reproduce_refuses_mistakes_before_training(what, args, mistake, where):
    args = [a for a in args if not a.startswith(("-h", "--h", "--v"))]
    args.insert(min(where, len(args)), mistake)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.experiments.common, "train", _refuse_training)
        mp.setattr(qtran.run, "train", _refuse_training)
        assert _call(["reproduce", what, *args]) == 2


SUMMARY = json.dumps({"algo": "vdn", "env": "matrix:table1", "seeds": [0, 1], "steps": 10, "final_eval_return": [0.5, 1.0],
                      "eval_curve": {"steps": [0, 10], "returns": [[0, 0], [0.5, 1.0]]}})
CONFIG = "algo: vdn\nenv:\n  name: matrix\n  payoff: table1\n"
run_files = st.fixed_dictionaries({}, optional={
    "config.yaml": st.one_of(st.text(max_size=40), st.sampled_from(
        [CONFIG, CONFIG, CONFIG.replace("vdn", "qmix"), "algo: vdn\n", "env: 3\n", "env:\n  name: nope\n", "env:\n  name: matrix\n  payoff: nan.json\n",
         "env:\n  name: matrix\n", "- a\n", "!!python/object/apply:os.system ['true']\n", "a: [\n"])),
    "summary.json": st.one_of(st.text(max_size=40), st.sampled_from(
        ["{}", "[]", '{"seeds": 3}', '{"seeds": [0], "algo": "vdn", "env": "matrix"}', "null", "{", SUMMARY,
         SUMMARY.replace('"seeds": [0, 1]', '"seeds": [0]'), SUMMARY.replace("[0.5, 1.0]", '["a", 1]')])),
    "experiment.json": st.one_of(st.text(max_size=20), st.sampled_from(
        ['{"experiment": "fig3"}', '{"experiment": "table1"}', '{"experiment": "compare", "games": 3}', '{"experiment": 5}', "[]", "{",
         '{"experiment": "fig4", "pieces": 5, "budget": [1]}'])),
    "params.npz": st.binary(max_size=30),
})


@FUZZ
@given(command=st.sampled_from(["plot", "eval", "render", "report", "resume", "fig4-claims", "fig3-claims", "claims"]),
       files=run_files,
       extra=st.lists(st.sampled_from(["--run", "--episodes", "--seed", "--out", "--gif", "-1", "0", "1e9", "x", "table1",
                                 "--no-text", "--episode-seed", "nowhere"]), max_size=3))
def test_commands_reading_run_directories(command, files, extra, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    for name, content in files.items():
        (run_dir / name).write_bytes(content if isinstance(content, bytes)
                                     else content.encode("utf-8", "surrogatepass"))
    argv = [command, *(["table1"] if command == "report" else []), str(run_dir), *extra]
    if command in ("eval",):
        argv = [a if a != "1e9" else "3" for a in argv]  # a readable run would really evaluate 1e9 episodes
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qtran.run, "train", _refuse_training)
        _call(argv)


@FUZZ
@given(argv=st.lists(st.one_of(st.sampled_from(COMMANDS + ["-h", "--help", "--version", "--", "-", "--x", "frobnicate"]),
                          overrides), max_size=4))
@example(["eval", "\x1e"])  # a control character echoed into the error message
@example(["config", "\x1b[2J"])  # a terminal escape sequence
def test_any_argument_list(argv):
    assume(not any(a in ("train", "sweep", "reproduce") for a in argv))  # those are fuzzed above, safely
    with pytest.MonkeyPatch.context() as mp:
        for module in (qtran.run, qtran.experiments.common):
            mp.setattr(module, "train", _refuse_training)
        _call(argv)


@pytest.mark.parametrize("argv,fragment", [
    (["config", "seeds=${seeds}"], "Recursive interpolation"),
    (["config", "env.payoff=\udcff"], "env.payoff: cannot set it to '\\udcff'"),
    (["config", "algo=\x00"], "algo: cannot set it to"),
    (["config", "lr=a: b: c"], "lr: cannot set it to"),
    (["config", "env_values.0="], "env_values.0: cannot set it to ''"),
    (["config", "steps=100000000000000000000"], "steps=100000000000000000000 is too large"),
    (["config", "updates_per_step=inf"], "updates_per_step must be a finite number"),
    (["config", "qtran.lambda_opt=inf"], "qtran.lambda_opt must be a finite number"),
    (["train", "updates_per_step=1e300"], "updates_per_iter"),
    (["train", "buffer_size=2000000000"], "GiB"),
    (["train", "env=gaussian_squeeze", "env.agents=2000000000"], "GiB"),
    (["train", "env.payoff=deep.json"], "cannot read payoff"),
    (["train", "env.payoff=big.json"], "payoff values must be at most"),
    (["eval", "\x1e"], "no config.yaml in \\x1e"),
])
def test_inputs_the_fuzzer_found(argv, fragment):
    """Each once gave a traceback, or went on towards training it could not do, or broke the
    one-line message; now one line naming the setting, status 2, and nothing trained."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(qtran.run, "train", _refuse_training)
        assert main(argv) == 2
    assert fragment in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()


def test_run_directory_files_the_fuzzer_found(tmp_path):
    """Malformed summary.json / experiment.json / params.npz: one line, status 2."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    for name, content, fragment in [("summary.json", "{", "cannot read it"),
                                    ("summary.json", "{}", "not a qtran summary"),
                                    ("summary.json", SUMMARY.replace("[0.5, 1.0]", '["a", 1]'), "must hold numbers"),
                                    ("params.npz", "junk", "cannot read saved parameters")]:
        (tmp_path / name).write_text(content)
        if name == "params.npz":
            (tmp_path / "summary.json").write_text(SUMMARY)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["eval", str(tmp_path)]) == 2
        assert fragment in err.getvalue(), (name, content, err.getvalue())
    (tmp_path / "experiment.json").write_text("[1]")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["plot", str(tmp_path)]) == 2
    assert "not a qtran experiment manifest" in err.getvalue()
