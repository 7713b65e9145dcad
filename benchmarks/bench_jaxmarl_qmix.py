"""Our QMIX next to JaxMARL's own QMIX baseline on MPE simple_spread: env steps/s and return.

    python benchmarks/bench_jaxmarl_qmix.py --jaxmarl-baselines /path/to/JaxMARL \\
        [--python /path/to/python-with-flashbax] [--updates 200 1500] [--seeds 1]

What is compared. JaxMARL's QMIX baseline is not in the `jaxmarl` package on PyPI: it is the
script `baselines/QLearning/qmix_rnn.py` of the JaxMARL repository, configured by Hydra from
`baselines/QLearning/config/` (the recurrent Q-learning settings for MPE are in
`config/alg/ql_rnn_mpe.yaml`). This benchmark runs that script, unmodified, as a subprocess
with Hydra command-line overrides only, and our QMIX (`qtran.run.train`, `algo=qmix
env=jaxmarl`) with its settings mapped from that YAML file as far as ours has the options; it
prints the mapping, including what could not be matched. Both train the same number of
iterations (one iteration: 8 parallel episodes collected, then one gradient step on 32 replayed
episodes, with the settings of the YAML file), with the seeds vmapped in one process each.

- Speed. Each side is run as a fresh process at two budgets, U1 and U2 iterations, and timed by
  the wall clock. The difference (work(U2) - work(U1)) / (t(U2) - t(U1)) is the training rate
  with start-up, compilation and the fixed evaluations taken out; the intercept is that fixed
  cost. The two sides count env steps differently (theirs 26 per episode: it steps each
  environment once more after the 25-step episode ends; ours 25), so episodes/s is printed too
  and the ratio ours/theirs is given for both. For these runs their in-training test is turned
  off (TEST_DURING_TRAINING=False): under their vmap over seeds its `lax.cond` becomes a
  select, so the 512-episode greedy test would be computed at every iteration. Ours evaluates
  only before and after training (512 greedy episodes each), a cost the differencing removes.
- Return. Ours: the mean greedy return of 512 episodes per seed at the end of the U2 run. Theirs:
  the script prints no result and logs only to Weights & Biases, so it is run once more per
  seed at U2 iterations with its test on and WANDB_MODE=offline, and the last logged
  `test_returned_episode_returns` (512 greedy episodes) is read from the offline run file
  with the baseline's own `wandb` installation, one process per seed (NUM_SEEDS=1). Their
  metric is the MPE log wrapper's per-agent return times the number of agents, averaged over
  agents; for simple_spread that equals the sum over agents, which is our team reward
  (`env.team_reward=sum`), so the two returns are on the same scale.

Seeds. One per process by default. With NUM_SEEDS=2 their script hung on the 2-core machine
(JAX 0.10.2, CPU, no output, next to no CPU use): in every run with its test on (3 of 3) and in
1 of 9 with it off. Their whole training, the networks' orthogonal initialisation included, is
vmapped over seeds; a batched QR decomposition of a vmapped orthogonal init is where XLA's CPU
runtime deadlocked for our own recurrent agents (NOTES.md), which is our guess at the cause.
So every process here has a timeout, and a run of theirs that hangs is started once more.

Getting the baseline: `git clone https://github.com/FLAIROx/JaxMARL` and pass the clone (or its
`baselines/QLearning` folder, or the script itself) as --jaxmarl-baselines. It needs `jaxmarl`,
`flashbax`, `hydra-core`, `wandb` (and `six`, which gymnax imports); install them into a
separate virtual environment with the same jax version as ours and pass its interpreter as
--python. Without --jaxmarl-baselines only our side runs, with the settings that mapping gave
for the files described below.

Sources (read for this benchmark; nothing of them is included here): in FLAIROx/JaxMARL,
`baselines/QLearning/qmix_rnn.py` at commit 014b4f0af877856dc0a90437596a23a31153e303 and
`baselines/QLearning/config/alg/ql_rnn_mpe.yaml` at 94746944369513ba2bc3be8fd98aed5debd9eb69.
What the table of settings says about their code (RAdam with a linearly decaying learning
rate, double Q-learning, hard target copies counted in iterations from the start, an agent of
one dense layer, a GRU and a linear head with orthogonal initialisation, a time limit treated
as terminal, a team reward summed over agents by `CTRolloutManager`) is our reading of that
commit; a different checkout may differ. Only the YAML values are read at run time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import yaml

TASK = "MPE_simple_spread_v3"
SCRIPT = "qmix_rnn.py"
ALG_CONFIG = "ql_rnn_mpe"
EPISODE = 25  # our episode length on MPE (JaxMARL's max_steps; our env.episode_limit)
CLONE_HINT = (
    "JaxMARL's QMIX baseline is a script in its repository, not in the jaxmarl package: "
    "git clone https://github.com/FLAIROx/JaxMARL and pass --jaxmarl-baselines JaxMARL "
    "(with --python, an interpreter that has jaxmarl, flashbax, hydra-core, wandb and six)"
)

# Our side, in a fresh process: train with the overrides in argv, print the summary as JSON.
OUR_RUN = """
import json, sys
from qtran.run import train
s = train(sys.argv[1:], write=False)
print("QTRAN_SUMMARY " + json.dumps({"compile_seconds": s["compile_seconds"],
      "train_seconds": s["train_seconds"], "steps": s["steps"],
      "untrained": s["eval_curve"]["returns"][0], "final": s["final_eval_return"]}))
"""

# Run with the baseline's interpreter (it has wandb): the history rows of an offline W&B run.
# The .wandb file is a LevelDB-style log (32 KiB blocks of records with a 7-byte header: CRC,
# length, type; types full / first / middle / last) after a 7-byte file header, each record a
# protobuf `Record` of wandb's own schema.
WANDB_ROWS = """
import glob, json, struct, sys
from wandb.proto import wandb_internal_pb2 as pb
rows = []
for path in sorted(glob.glob(sys.argv[1] + "/**/*.wandb", recursive=True)):
    data, pos, buf = open(path, "rb").read(), 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            if rec.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in rec.history.item})
print(json.dumps(rows))
"""

RETURN_KEY = "test_returned_episode_returns"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def find_script(path: str) -> Path:
    """The baseline script from a JaxMARL checkout, its baselines/QLearning, or the script."""
    p = Path(path).expanduser()
    for candidate in (p, p / SCRIPT, p / "baselines" / "QLearning" / SCRIPT):
        if candidate.is_file() and candidate.name == SCRIPT:
            return candidate.resolve()
    fail(
        f"no {SCRIPT} at {path} (give a JaxMARL checkout, its baselines/QLearning, or the "
        f"script; git clone https://github.com/FLAIROx/JaxMARL)"
    )


def read_their_config(script: Path) -> tuple[dict, bool]:
    """(the alg YAML's values, whether config.yaml already selects an `alg` default)."""
    alg = script.parent / "config" / "alg" / f"{ALG_CONFIG}.yaml"
    main = script.parent / "config" / "config.yaml"
    if not alg.is_file() or not main.is_file():
        fail(f"{script.parent}/config lacks config.yaml or alg/{ALG_CONFIG}.yaml")
    values = yaml.safe_load(alg.read_text()) or {}
    needed = (
        "NUM_ENVS",
        "NUM_STEPS",
        "BUFFER_SIZE",
        "BUFFER_BATCH_SIZE",
        "HIDDEN_SIZE",
        "MIXER_EMBEDDING_DIM",
        "MIXER_HYPERNET_HIDDEN_DIM",
        "EPS_START",
        "EPS_FINISH",
        "EPS_DECAY",
        "MAX_GRAD_NORM",
        "TARGET_UPDATE_INTERVAL",
        "LR",
        "LEARNING_STARTS",
        "GAMMA",
    )
    missing = [k for k in needed if k not in values]
    if missing:
        fail(f"{alg} lacks {', '.join(missing)} (a different version of the baseline?)")
    defaults = (yaml.safe_load(main.read_text()) or {}).get("defaults") or []
    has_alg = any(
        (
            isinstance(d, dict)
            and any(str(k).split("@")[0].split()[-1] == "alg" for k in d)
        )
        for d in defaults
    )
    return values, has_alg


def probe_python(python: str) -> str:
    """Versions from the baseline's interpreter, or a one-line error (exit 2)."""
    code = (
        "import jax, jaxmarl, flashbax, hydra, wandb, six; from importlib.metadata import version; "
        "print(', '.join(f'{p} {version(p)}' for p in "
        "('jax', 'jaxmarl', 'flashbax', 'hydra-core', 'wandb')))"
    )
    try:
        out = subprocess.run(
            [python, "-c", code],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except OSError as err:
        fail(f"cannot run --python {python}: {err.strerror}")
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        fail(
            f"--python {python} cannot import the baseline's packages ({last}); "
            "pip install jaxmarl flashbax hydra-core wandb six into it"
        )
    return out.stdout.strip().splitlines()[-1]


# ---- the mapping of their settings to ours -------------------------------------------------
# Our side's settings when no checkout is given: what `spec_from` gave for the YAML file at the
# commit named in the docstring, in our own terms.
SPEC_WITHOUT_CHECKOUT = {
    "n_envs": 8,
    "rollout_steps": 26,
    "buffer_size": 5000,
    "batch_size": 32,
    "hidden": 64,
    "embed": 32,
    "hypernet_hidden": 128,
    "eps_start": 1.0,
    "eps_end": 0.05,
    "eps_fraction": 0.1,
    "grad_clip": 25.0,
    "target_update_interval": 200,
    "updates_per_iteration": 1,
    "lr": 0.005,
    "lr_schedule": "linear",
    "mixer_init_scale": 0.001,
    "first_learning_iteration": 48,
    "gamma": 0.9,
    "eval_episodes": 512,
    "env_kwargs": {},
}


def spec_from(theirs: dict) -> tuple[dict, list[tuple]]:
    """Their YAML values -> our settings (in our terms), and rows (their key, value, ours, note)."""
    n_envs, n_steps = int(theirs["NUM_ENVS"]), int(theirs["NUM_STEPS"])
    epochs = int(theirs.get("NUM_EPOCHS", 1))
    # Their first learning iteration k: (k + 1) * NUM_STEPS * NUM_ENVS > LEARNING_STARTS and
    # the buffer holds BUFFER_BATCH_SIZE trajectories per environment.
    first = max(
        int(theirs["LEARNING_STARTS"]) // (n_steps * n_envs),
        int(theirs["BUFFER_BATCH_SIZE"]) - 1,
    )
    spec = {
        "n_envs": n_envs,
        "rollout_steps": n_steps,
        "buffer_size": int(theirs["BUFFER_SIZE"]),
        "batch_size": int(theirs["BUFFER_BATCH_SIZE"]),
        "hidden": int(theirs["HIDDEN_SIZE"]),
        "embed": int(theirs["MIXER_EMBEDDING_DIM"]),
        "hypernet_hidden": int(theirs["MIXER_HYPERNET_HIDDEN_DIM"]),
        "eps_start": float(theirs["EPS_START"]),
        "eps_end": float(theirs["EPS_FINISH"]),
        "eps_fraction": float(theirs["EPS_DECAY"]),
        "grad_clip": float(theirs["MAX_GRAD_NORM"]),
        "target_update_interval": int(theirs["TARGET_UPDATE_INTERVAL"]) * epochs,
        "updates_per_iteration": epochs,
        "lr": float(theirs["LR"]),
        "lr_schedule": "linear" if theirs.get("LR_LINEAR_DECAY", False) else "constant",
        "mixer_init_scale": float(theirs.get("MIXER_INIT_SCALE", 1.0)),
        "first_learning_iteration": first,
        "gamma": float(theirs["GAMMA"]),
        "eval_episodes": int(theirs.get("TEST_NUM_ENVS", 512)),
        "env_kwargs": dict(theirs.get("ENV_KWARGS") or {}),
    }
    per_iter = n_envs * EPISODE
    tau = float(theirs.get("TAU", 1.0))
    decay = bool(theirs.get("LR_LINEAR_DECAY", False))
    rows = [
        ("NUM_SEEDS", "S", "seeds=S", "vmapped in one process on both sides"),
        ("NUM_ENVS", n_envs, f"n_envs={n_envs}", ""),
        (
            "NUM_STEPS",
            n_steps,
            f"(episode {EPISODE})",
            (
                f"theirs steps each environment {n_steps} times per iteration (its episode and one "
                f"step of the next); ours collects whole {EPISODE}-step episodes"
            ),
        ),
        (
            "TOTAL_TIMESTEPS",
            f"U*{n_steps * n_envs}",
            f"steps=U*{per_iter}",
            "the same U iterations",
        ),
        (
            "BUFFER_SIZE",
            theirs["BUFFER_SIZE"],
            f"buffer_size={spec['buffer_size']}",
            "episodes on both sides",
        ),
        (
            "BUFFER_BATCH_SIZE",
            theirs["BUFFER_BATCH_SIZE"],
            f"batch_size={spec['batch_size']}",
            "whole episodes, the GRU unrolled from their start",
        ),
        (
            "HIDDEN_SIZE",
            theirs["HIDDEN_SIZE"],
            f"agent.hidden={spec['hidden']} agent.recurrent=true agent.head=linear",
            "dense-ReLU, GRU, linear Q head on both sides",
        ),
        (
            "(parameter sharing)",
            "yes, agent id",
            "agent.shared=true",
            "one-hot agent id appended on both sides",
        ),
        (
            "MIXER_EMBEDDING_DIM",
            theirs["MIXER_EMBEDDING_DIM"],
            f"qmix.embed={spec['embed']}",
            "",
        ),
        (
            "MIXER_HYPERNET_HIDDEN_DIM",
            theirs["MIXER_HYPERNET_HIDDEN_DIM"],
            f"qmix.hypernet_hidden={spec['hypernet_hidden']} qmix.hypernet_layers=2",
            "",
        ),
        (
            "MIXER_INIT_SCALE",
            theirs.get("MIXER_INIT_SCALE"),
            f"qmix.init_scale={spec['mixer_init_scale']:g} agent.init=orthogonal",
            "orthogonal kernels: gain 1 in the agent, this gain in the mixer; GRU cell Flax's default",
        ),
        (
            "EPS_START / EPS_FINISH",
            f"{theirs['EPS_START']} / {theirs['EPS_FINISH']}",
            f"eps.start={spec['eps_start']} eps.end={spec['eps_end']}",
            "",
        ),
        (
            "EPS_DECAY",
            theirs["EPS_DECAY"],
            f"eps.anneal_steps={spec['eps_fraction']:g}*steps",
            (
                "same fraction of the budget; in the warm-up ours acts uniformly at random, theirs "
                "already follows the annealed epsilon"
            ),
        ),
        (
            "LEARNING_STARTS",
            theirs["LEARNING_STARTS"],
            f"warmup_steps={first * per_iter}",
            f"both learn from iteration {first}",
        ),
        (
            "NUM_EPOCHS",
            epochs,
            f"updates_per_step={epochs / per_iter:g}",
            "gradient steps per iteration",
        ),
        (
            "TARGET_UPDATE_INTERVAL",
            theirs["TARGET_UPDATE_INTERVAL"],
            f"target_update_interval={spec['target_update_interval']}",
            "same period; theirs counts iterations from the first, ours gradient steps",
        ),
        (
            "TAU",
            theirs.get("TAU"),
            "(hard copy)",
            "" if tau == 1.0 else "NOT MATCHED: ours copies hard",
        ),
        ("LR", theirs["LR"], f"lr={spec['lr']}", ""),
        (
            "LR_LINEAR_DECAY",
            decay,
            f"lr_schedule={spec['lr_schedule']}",
            "to 0 over the gradient updates (theirs over all iterations, warm-up included)" if decay else "",
        ),
        ("(optimizer, in code)", "RAdam", "optimizer=radam", ""),
        (
            "MAX_GRAD_NORM",
            theirs["MAX_GRAD_NORM"],
            f"grad_clip={spec['grad_clip']}",
            "",
        ),
        ("GAMMA", theirs["GAMMA"], f"gamma={spec['gamma']}", ""),
        ("(double Q, in code)", "yes", "double_q=true", ""),
        (
            "(time limit, in code)",
            "terminal",
            "time_limit=terminal",
            f"no bootstrapping from the state after the {EPISODE}-step limit on either side",
        ),
        (
            "(team reward, in code)",
            "sum",
            "env.team_reward=sum",
            "CTRolloutManager's sum over agents",
        ),
        (
            "TEST_NUM_ENVS",
            theirs.get("TEST_NUM_ENVS"),
            f"eval.episodes={spec['eval_episodes']}",
            "greedy episodes per seed for the return",
        ),
        (
            "TEST_INTERVAL",
            theirs.get("TEST_INTERVAL"),
            "eval.interval=steps",
            "theirs off in the speed runs; ours evaluates before and after training only",
        ),
    ]
    return spec, rows


def our_overrides(spec: dict, updates: int, seeds: int) -> list[str]:
    """Our `key=value` overrides for `updates` iterations of the settings in `spec`."""
    per_iter = spec["n_envs"] * EPISODE
    steps = updates * per_iter
    ours = {
        "algo": "qmix",
        "env": "jaxmarl",
        "env.name": TASK,
        "env.team_reward": "sum",
        "seeds": seeds,
        "seed": 0,
        "steps": steps,
        "n_envs": spec["n_envs"],
        "buffer_size": spec["buffer_size"],
        "batch_size": spec["batch_size"],
        "agent.recurrent": "true",
        "agent.shared": "true",
        "agent.hidden": spec["hidden"],
        "qmix.embed": spec["embed"],
        "qmix.hypernet_layers": 2,
        "qmix.hypernet_hidden": spec["hypernet_hidden"],
        "eps.start": spec["eps_start"],
        "eps.end": spec["eps_end"],
        "eps.anneal_steps": int(spec["eps_fraction"] * steps),
        "grad_clip": spec["grad_clip"],
        "target_update_interval": spec["target_update_interval"],
        "updates_per_step": spec["updates_per_iteration"] / per_iter,
        "lr": spec["lr"],
        "lr_schedule": spec["lr_schedule"],
        "optimizer": "radam",
        "agent.head": "linear",
        "agent.init": "orthogonal",
        "qmix.init_scale": spec["mixer_init_scale"],
        "time_limit": "terminal",
        "warmup_steps": spec["first_learning_iteration"] * per_iter,
        "gamma": spec["gamma"],
        "double_q": "true",
        "eval.episodes": spec["eval_episodes"],
        "eval.interval": steps,
        "progress": "false",
        "tensorboard": "false",
        "checkpoint.every": 0,
    }
    ours.update({f"env.kwargs.{k}": v for k, v in spec["env_kwargs"].items()})
    return [f"{k}={v}" for k, v in ours.items()]


# ---- running both sides ---------------------------------------------------------------------
def their_overrides(
    has_alg: bool,
    spec: dict,
    updates: int,
    seeds: int,
    seed: int,
    test: bool,
    wandb_mode: str,
) -> list[str]:
    """Hydra overrides for their script: `updates` iterations, nothing saved, W&B as given."""
    total = updates * spec["rollout_steps"] * spec["n_envs"]
    return [
        f"{'' if has_alg else '+'}alg={ALG_CONFIG}",
        "++HYP_TUNE=False",
        "++SAVE_PATH=null",
        f"++NUM_SEEDS={seeds}",
        f"++SEED={seed}",
        f"++WANDB_MODE={wandb_mode}",
        f"alg.TOTAL_TIMESTEPS={total}",
        f"++alg.TEST_DURING_TRAINING={test}",
        "hydra.run.dir=.",
        "hydra.output_subdir=null",
    ]


class Hung(Exception):
    """A process gave no result within its timeout."""


def run_process(cmd: list[str], cwd: str, env: dict, timeout: float, label: str):
    """(wall seconds, stdout) of one process; exits with its output's tail if it fails,
    raises Hung past the timeout."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            cmd,
            check=False,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise Hung(f"{label}: no result within {timeout:.0f} s (killed)") from None
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        print(f"{label} failed (exit {out.returncode}):\n{tail}", file=sys.stderr)
        sys.exit(1)
    return wall, out.stdout


def run_theirs(
    python: str,
    script: Path,
    overrides: list[str],
    timeout: float,
    label: str,
    wandb_mode: str = "disabled",
):
    """(wall seconds, its working directory) of their script in a fresh process. A run that
    hangs (see the docstring) is killed at the timeout and started once more."""
    for attempt in (1, 2):
        work = tempfile.mkdtemp(prefix="jaxmarl_qmix_")
        env = dict(
            os.environ,
            WANDB_MODE=wandb_mode,
            WANDB_DIR=work,
            WANDB_SILENT="true",
            HYDRA_FULL_ERROR="1",
        )
        try:
            wall, _ = run_process(
                [python, str(script), *overrides], work, env, timeout, label
            )
            return wall, work
        except Hung as err:
            shutil.rmtree(work, ignore_errors=True)
            again = "starting it once more" if attempt == 1 else "giving up"
            print(f"  {err}; {again}", file=sys.stderr, flush=True)
        except SystemExit:
            shutil.rmtree(work, ignore_errors=True)
            raise
    print(
        "their script hung twice; with NUM_SEEDS > 1 it hung here intermittently "
        "(try --seeds 1)",
        file=sys.stderr,
    )
    sys.exit(1)


def run_ours(overrides: list[str], timeout: float, label: str):
    work = tempfile.mkdtemp(prefix="qtran_qmix_")
    try:
        wall, out = run_process(
            [sys.executable, "-c", OUR_RUN, *overrides],
            work,
            dict(os.environ),
            timeout,
            label,
        )
    except Hung as err:
        print(err, file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line = [x for x in out.splitlines() if x.startswith("QTRAN_SUMMARY ")][-1]
    return wall, json.loads(line.split(" ", 1)[1])


def their_return(python: str, work: str) -> tuple[float, float, int]:
    """(first logged test return, last one, the iteration of the last) of one offline run."""
    out = subprocess.run(
        [python, "-c", WANDB_ROWS, work],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = (
        [r for r in json.loads(out.stdout or "[]") if RETURN_KEY in r]
        if out.returncode == 0
        else []
    )
    if not rows:
        print(
            f"  (could not read {RETURN_KEY} from the offline W&B run in {work})",
            file=sys.stderr,
        )
        return math.nan, math.nan, 0
    return (
        float(rows[0][RETURN_KEY]),
        float(rows[-1][RETURN_KEY]),
        int(rows[-1].get("update_steps", 0)),
    )


# ---- reporting -------------------------------------------------------------------------------
def rate(work1: float, work2: float, t1: float, t2: float) -> tuple[float, float]:
    """(work per second between the budgets, intercept in seconds), NaN when t2 <= t1."""
    if t2 <= t1:
        return math.nan, math.nan
    r = (work2 - work1) / (t2 - t1)
    return r, t1 - work1 / r


def fmt(x: float, spec: str = ",.0f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def print_rows(rows: list[tuple]) -> None:
    width = [max(len(str(r[i])) for r in rows) for i in range(3)]
    for r in rows:
        cells = [str(r[i]).ljust(width[i]) for i in range(3)] + [r[3]]
        print(("  " + "  ".join(cells)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--jaxmarl-baselines",
        help="a JaxMARL checkout, its baselines/QLearning, or qmix_rnn.py",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter with jaxmarl, flashbax, hydra-core, wandb, six (default: this one)",
    )
    parser.add_argument(
        "--updates",
        type=int,
        nargs=2,
        default=[200, 1500],
        metavar=("U1", "U2"),
        help="iterations of the two timed budgets (multiples of 20)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="seeds vmapped in each process (their script hung here at times with 2)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed runs per side and budget (median)"
    )
    parser.add_argument(
        "--no-return", action="store_true", help="skip their return runs"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds per process; their runs are started once more after a hang",
    )
    args = parser.parse_args()
    u1, u2 = args.updates
    if not 20 <= u1 < u2 or u1 % 20 or u2 % 20:
        fail(
            "--updates needs 20 <= U1 < U2, both multiples of 20 (their test runs every 5%)"
        )
    if args.seeds < 1 or args.repeats < 1:
        fail("--seeds and --repeats must be at least 1")

    script, has_alg = None, False
    if args.jaxmarl_baselines is None:
        print(CLONE_HINT + "; running our side only")
        spec = dict(SPEC_WITHOUT_CHECKOUT)
        rows = None
    else:
        script = find_script(args.jaxmarl_baselines)
        theirs, has_alg = read_their_config(script)
        spec, rows = spec_from(theirs)
        versions = probe_python(args.python)
        print(f"baseline: {script} (config/alg/{ALG_CONFIG}.yaml)")
        print(f"  with {args.python}: {versions}")
    print(
        f"ours: {sys.executable}, jax {metadata.version('jax')}, jaxmarl {metadata.version('jaxmarl')}; "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f} at start"
    )

    s = args.seeds
    episodes_per_iter = spec["n_envs"]
    per_iter = {
        "theirs": spec["rollout_steps"] * spec["n_envs"],
        "ours": EPISODE * spec["n_envs"],
    }
    ours_by_u = {u: our_overrides(spec, u, s) for u in (u1, u2)}
    if rows is not None:
        print(
            f"\nsettings: their config/alg/{ALG_CONFIG}.yaml -> ours (U iterations, S seeds)"
        )
        print_rows([("theirs", "value", "ours", "")] + rows)
    print(f"our overrides at U={u2}: {' '.join(ours_by_u[u2])}\n")

    walls = {(side, u): [] for side in ("theirs", "ours") for u in (u1, u2)}
    summaries = {}
    for r in range(args.repeats):
        for u in (u1, u2):  # interleaved, so drifting load falls on both sides alike
            if script is not None:
                wall, work = run_theirs(
                    args.python,
                    script,
                    their_overrides(has_alg, spec, u, s, 0, False, "disabled"),
                    args.timeout,
                    f"their qmix_rnn.py, U={u}",
                )
                shutil.rmtree(work, ignore_errors=True)
                walls[("theirs", u)].append(wall)
                print(f"  run {r + 1}: theirs U={u}: {wall:6.1f} s", flush=True)
            wall, summary = run_ours(ours_by_u[u], args.timeout, f"our qmix, U={u}")
            walls[("ours", u)].append(wall)
            summaries[u] = summary
            print(
                f"  run {r + 1}: ours   U={u}: {wall:6.1f} s (compile {summary['compile_seconds']:.1f} s, "
                f"training loop {summary['train_seconds']:.1f} s)",
                flush=True,
            )

    t = {k: statistics.median(v) for k, v in walls.items() if v}
    result = {}
    for side in ("theirs", "ours"):
        if (side, u1) in t:
            steps_rate, fixed = rate(
                u1 * per_iter[side] * s,
                u2 * per_iter[side] * s,
                t[(side, u1)],
                t[(side, u2)],
            )
            result[side] = {
                "steps": steps_rate,
                "episodes": steps_rate / per_iter[side] * episodes_per_iter,
                "fixed": fixed,
            }

    their_final = []
    if script is not None and not args.no_return:
        print(
            f"\ntheir return: U={u2}, test on, W&B offline, one process per seed",
            flush=True,
        )
        for seed in range(s):
            wall, work = run_theirs(
                args.python,
                script,
                their_overrides(has_alg, spec, u2, 1, seed, True, "offline"),
                args.timeout,
                f"their qmix_rnn.py return run, SEED={seed}",
                "offline",
            )
            first, last, at = their_return(args.python, work)
            shutil.rmtree(work, ignore_errors=True)
            their_final.append((first, last))
            print(
                f"  SEED={seed}: untrained {fmt(first, '.1f')}, after iteration {at}: {fmt(last, '.1f')} "
                f"({wall:.1f} s as shipped: its test computed every iteration, W&B logging)",
                flush=True,
            )

    print(
        f"\n{TASK}, {s} seed{'s' if s > 1 else ''} vmapped, U1={u1} and U2={u2} iterations, "
        "wall clock of fresh processes "
        f"(load average {os.getloadavg()[0]:.2f} at end; other jobs shared the cores):"
    )

    def line(name: str, a: str, b: str) -> None:
        print(f"  {name:40}{a:>24}{b:>18}")

    th, ou = result.get("theirs", {}), result["ours"]
    line("", "JaxMARL qmix_rnn.py", "qtran qmix")
    line(
        "env steps per seed at U1 / U2",
        f"{u1 * per_iter['theirs']:,} / {u2 * per_iter['theirs']:,}",
        f"{u1 * per_iter['ours']:,} / {u2 * per_iter['ours']:,}",
    )
    line(
        "wall clock at U1 / U2 (s)",
        f"{fmt(t.get(('theirs', u1)), '.1f')} / {fmt(t.get(('theirs', u2)), '.1f')}",
        f"{t[('ours', u1)]:.1f} / {t[('ours', u2)]:.1f}",
    )
    line("env steps/s, all seeds (differenced)", fmt(th.get("steps")), fmt(ou["steps"]))
    line(
        "episodes/s, all seeds (differenced)",
        fmt(th.get("episodes")),
        fmt(ou["episodes"]),
    )
    line(
        "fixed cost: start-up, compile, evals (s)",
        fmt(th.get("fixed"), ".1f"),
        fmt(ou["fixed"], ".1f"),
    )
    line(
        "  our compile, as reported (s)", "-", f"{summaries[u2]['compile_seconds']:.1f}"
    )
    untrained, final = summaries[u2]["untrained"], summaries[u2]["final"]

    def mean(values) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return statistics.mean(finite) if finite else math.nan

    line(
        "untrained greedy return (mean of seeds)",
        fmt(mean([x[0] for x in their_final]), ".1f") if their_final else "-",
        f"{mean(untrained):.1f}",
    )
    line(
        "greedy return after U2 (mean of seeds)",
        fmt(mean([x[1] for x in their_final]), ".1f") if their_final else "-",
        f"{mean(final):.1f}",
    )
    theirs_seeds = (
        f"theirs {', '.join(fmt(x[1], '.1f') for x in their_final)}; "
        if their_final
        else ""
    )
    print(
        f"    per seed, {spec['eval_episodes']} greedy episodes each: {theirs_seeds}"
        f"ours {', '.join(f'{x:.1f}' for x in final)}"
    )
    if th and math.isfinite(th["steps"]) and math.isfinite(ou["steps"]):
        print(
            f"  ours / theirs: episodes/s {ou['episodes'] / th['episodes']:.2f}x, env steps/s "
            f"{ou['steps'] / th['steps']:.2f}x (each side counting its own env steps)"
        )
    close = [
        side
        for side in ("theirs", "ours")
        if (side, u1) in t and t[(side, u2)] - t[(side, u1)] < 0.5 * t[(side, u1)]
    ]
    if close:
        print(
            f"  note: for {' and '.join(close)} t(U2) - t(U1) is under half of t(U1), so the "
            "differenced rates are at the mercy of timing noise; raise U2 (or --repeats)"
        )


if __name__ == "__main__":
    main()
