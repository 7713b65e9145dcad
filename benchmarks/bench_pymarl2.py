"""PyMARL2's QPLEX, OW-QMIX and CW-QMIX beside ours on the Table 1 game, same budget.

PyMARL2 (github.com/hijkzzz/pymarl2, PyTorch) is run unmodified except for its one-step matrix
game file, which this script overwrites in the copy it is given with a Table 1 game of our
own writing, and stand-ins for the StarCraft/pygame packages its imports name but a matrix game
never uses (written beside it, put on PYTHONPATH). Nothing of PyMARL2 is in this repository:
bring its source into a scratch folder and give PyMARL2 a Python with torch, sacred and pyyaml:

    git clone <pymarl2> /tmp/pymarl2       (or any copy of its tree)
    python3 -m venv /tmp/pymarl2-venv && /tmp/pymarl2-venv/bin/pip install torch sacred pyyaml numpy
    PYTHONPATH=src python3 benchmarks/bench_pymarl2.py --pymarl2 /tmp/pymarl2 --python /tmp/pymarl2-venv/bin/python

Same budget on both sides: 20,000 environment steps per seed, full exploration (epsilon 1
while training), batch 32, replay 5,000 episodes, one update per episode after 32 episodes,
target copy every 200 updates, Adam lr 5e-4, the algorithms' own settings otherwise
(PyMARL2's qplex / ow_qmix / cw_qmix configs; ours the `qplex.*` / `wqmix.*` defaults).

Both sides are timed the same way: the wall time of whole processes, start-up and imports
included, on the same machine, one after the other.

- PyMARL2 runs one seed per process (single-threaded, OMP_NUM_THREADS=1), `--parallel` of
  them at a time (default: one per core), so it has the whole machine as we do.
- Ours is `python -m qtran train ... seeds=S`: every seed in one program, spread over one CPU
  device per core (the default, `shard=true`). It runs twice with a compilation cache of its
  own, empty the first time ("cold": what a first run costs) and filled the second ("warm":
  every later run of the same shapes).
- One run alone: PyMARL2's mean seconds per process beside ours with `seeds=1` (warm).

QPLEX runs on our side in two forms, each timed as above: the paper's equations (our default)
and the form of the authors' code that PyMARL2 carries (`is_stop_gradient: True` in its
qplex.yaml, gradients clipped at norm 10 by its defaults): `qplex.stop_gradient=true
grad_clip=10`. The second is the like-for-like row for the verdicts. For QPLEX the script also
prints how well each run fits its targets at the end: PyMARL2's last logged `td_error_abs`
(mean |TD error| of one batch, from its sacred info.json) and our root-mean-square TD error
over the last chunk (metrics.csv `loss_td`).

The throughput ratio is PyMARL2's wall time over ours for the same S seeds. Printed with it:
the greedy joint action per seed (PyMARL2's: its last greedy test episode, logged by the game
file; ours: the agents' greedy actions at the end).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Our Table 1 game in PyMARL2's environment interface (its MultiAgentEnv methods). It logs each
# episode's joint action to $MATRIX_LOG so the greedy test episodes can be read back.
GAME_FILE = '''
import json, os
import numpy as np
from envs.multiagentenv import MultiAgentEnv

PAYOFF = [[8.0, -12.0, -12.0], [-12.0, 0.0, 0.0], [-12.0, 0.0, 0.0]]  # Son et al. 2019, Table 1a


class OneStepMatrixGame(MultiAgentEnv):
    def __init__(self, **kwargs):
        self.n_agents, self.n_actions, self.episode_limit = 2, 3, 1
        self.t = 0
        self.log = os.environ.get("MATRIX_LOG")

    def reset(self):
        self.t = 0
        return self.get_obs(), self.get_state()

    def step(self, actions):
        joint = [int(a) for a in actions]
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps(joint) + "\\n")
        self.t = 1
        return PAYOFF[joint[0]][joint[1]], True, {}

    def get_obs(self):
        return [self.get_obs_agent(i) for i in range(self.n_agents)]

    def get_obs_agent(self, agent_id):
        return np.eye(2)[self.t]

    def get_obs_size(self):
        return 2

    def get_state(self):
        return np.eye(2)[self.t]

    def get_state_size(self):
        return 2

    def get_avail_actions(self):
        return [self.get_avail_agent_actions(i) for i in range(self.n_agents)]

    def get_avail_agent_actions(self, agent_id):
        return np.ones(self.n_actions)

    def get_total_actions(self):
        return self.n_actions

    def get_stats(self):
        return {}

    def close(self):
        pass

    def seed(self):
        pass

    def render(self):
        pass


def print_matrix_status(*args, **kwargs):
    pass
'''

# Modules PyMARL2 imports at start-up for StarCraft II and stag hunt, never used by a matrix
# game: any attribute read from one is a placeholder (module __getattr__, PEP 562).
ANY_NAME = "def __getattr__(name):\n    return 0\n"
STAND_INS = {
    "smac/__init__.py": "",
    "smac/env/__init__.py": "class StarCraft2Env:\n    pass\n",
    "smac/env/multiagentenv.py": "class MultiAgentEnv:\n    pass\n",
    "smac/env/starcraft2/__init__.py": "",
    "smac/env/starcraft2/maps/__init__.py": "",
    "smac/env/starcraft2/maps/smac_maps.py": ("map_param_registry = {}\nSMACMap = object\n\n\n"
                                             "def get_smac_map_registry():\n    return map_param_registry\n"),
    "pysc2/__init__.py": "", "pysc2/maps/__init__.py": "", "pysc2/maps/lib.py": ANY_NAME,
    "pysc2/run_configs.py": ANY_NAME, "pysc2/lib/__init__.py": "", "pysc2/lib/protocol.py": ANY_NAME,
    "s2clientprotocol/__init__.py": "",
    "s2clientprotocol/common_pb2.py": ANY_NAME, "s2clientprotocol/sc2api_pb2.py": ANY_NAME,
    "s2clientprotocol/raw_pb2.py": ANY_NAME, "s2clientprotocol/debug_pb2.py": ANY_NAME,
    "pygame/__init__.py": ANY_NAME,
    # PyMARL2 was written for Python < 3.10, which still had collections.Mapping & co., and its
    # QPLEX learner calls .cuda() unconditionally: on a CPU-only torch that stays on the CPU.
    "sitecustomize.py": ("import collections, collections.abc\n"
                         "for _name in ('Mapping', 'MutableMapping', 'Sequence', 'Iterable'):\n"
                         "    setattr(collections, _name, getattr(collections.abc, _name))\n"
                         "import torch\n"
                         "if not torch.cuda.is_available():\n"
                         "    torch.Tensor.cuda = lambda self, *args, **kwargs: self\n"),
}
PYMARL2_CONFIGS = {"qplex": "qplex", "ow-qmix": "ow_qmix", "cw-qmix": "cw_qmix"}
# Our forms of each algorithm: (label, extra overrides). The first is our default; QPLEX's
# second is the gradient path and clip of the authors' code, which PyMARL2 runs.
OUR_FORMS = {"qplex": [("paper", []), ("authors' code", ["qplex.stop_gradient=true", "grad_clip=10"])],
             "ow-qmix": [("paper", [])], "cw-qmix": [("paper", [])]}
FIT_REPORTED = {"qplex"}  # TD on Q_tot alone on both sides, so the two fits measure alike
STEPS, TEST_INTERVAL = 20000, 1000


def prepare(pymarl2: Path, scratch: Path) -> Path:
    """Write the game file into PyMARL2's tree and the stand-ins into scratch; returns their folder."""
    (pymarl2 / "src/envs/matrix_game/one_step_matrix_game.py").write_text(GAME_FILE)
    stubs = scratch / "stand_ins"
    for name, text in STAND_INS.items():
        (stubs / name).parent.mkdir(parents=True, exist_ok=True)
        (stubs / name).write_text(text)
    return stubs


def last_greedy_episode(n_logged: int, steps: int, interval: int) -> int:
    """1-based position of the last greedy test episode in the game's log, by PyMARL2's schedule
    (episode runner, one env, one test episode): after each training episode (t_env += 1), a
    test episode runs when t_env - last_test >= interval, last_test starting at -interval - 1.
    (Until commit 0eaa988 this returned the training episode just before it, whose actions are
    random under full exploration: see NOTES.md.)"""
    index, t_env, last_test, last = 0, 0, -interval - 1, None
    while t_env <= steps:
        index += 1  # the training episode
        t_env += 1
        if t_env - last_test >= interval:
            last_test = t_env
            index += 1  # the test episode
            last = index
    if index != n_logged:
        raise RuntimeError(f"PyMARL2 logged {n_logged} episodes, its schedule gives {index}")
    return last


def run_pymarl2(pymarl2: Path, python: str, stubs: Path, algo: str, seed: int, scratch: Path,
                steps: int = STEPS) -> dict:
    log = scratch / f"{algo}_{seed}.jsonl"  # one file per process: runs may go side by side
    log.unlink(missing_ok=True)
    overrides = [f"t_max={steps}", f"seed={seed}", "use_cuda=False", "runner=episode", "batch_size_run=1",
                 "batch_size=32", "buffer_size=5000", "epsilon_start=1.0", "epsilon_finish=1.0", "lr=0.0005",
                 "target_update_interval=200", f"test_interval={TEST_INTERVAL}", "test_nepisode=1",
                 "save_model=False", "use_tensorboard=False", f"local_results_path={scratch / 'results'}"]
    cmd = [python, "src/main.py", f"--config={PYMARL2_CONFIGS[algo]}", "--env-config=one_step_matrix_game",
           "with", *overrides]
    env = dict(os.environ, PYTHONPATH=str(stubs), MATRIX_LOG=str(log), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=pymarl2, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"PyMARL2 {algo} seed {seed} failed:\n{proc.stderr[-3000:]}")
    episodes = [json.loads(line) for line in log.read_text().splitlines()]
    return {"seconds": seconds, "greedy": final_greedy(episodes, steps, TEST_INTERVAL)}


def sacred_runs(pymarl2: Path) -> set:
    """PyMARL2's sacred run folders (its main.py keeps them under its own tree's results/)."""
    return set((pymarl2 / "results" / "sacred").glob("*/*/*/info.json"))


def last_logged(infos, seeds: int, key: str = "td_error_abs") -> list:
    """Per seed 0..seeds-1, the last value of `key` among the given sacred info.json files
    (matched to seeds by the config.json beside each); None where none has it."""
    found = {}
    for info in infos:
        seed = json.loads((info.parent / "config.json").read_text()).get("seed")
        values = json.loads(info.read_text()).get(key) or [None]
        if isinstance(values[-1], (int, float)):
            found[seed] = values[-1]
    return [found.get(s) for s in range(seeds)]


def final_greedy(episodes: list, steps: int, interval: int):
    """The joint action of PyMARL2's last greedy test episode, from every episode it logged."""
    return episodes[last_greedy_episode(len(episodes), steps, interval) - 1]


def run_pymarl2_seeds(pymarl2: Path, python: str, stubs: Path, algo: str, seeds: int, parallel: int,
                      scratch: Path, steps: int = STEPS) -> dict:
    """Every seed in its own PyMARL2 process, `parallel` at a time; wall time of the whole lot."""
    before = sacred_runs(pymarl2)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        runs = list(pool.map(lambda s: run_pymarl2(pymarl2, python, stubs, algo, s, scratch, steps), range(seeds)))
    return {"seconds": time.perf_counter() - t0, "greedy": [r["greedy"] for r in runs],
            "per_run": sum(r["seconds"] for r in runs) / seeds, "fit": last_logged(sacred_runs(pymarl2) - before, seeds)}


def run_ours(algo: str, seeds: int, cache: Path, out: Path, extra: list[str] = (), steps: int = STEPS) -> dict:
    """One `qtran train` process (its compilation cache in `cache`); its wall time, greedy
    actions and final fit (rms TD error per seed over the last chunk, where logged)."""
    cmd = [sys.executable, "-m", "qtran", "train", f"algo={algo}", "env=matrix", "env.payoff=table1",
           f"seeds={seeds}", f"steps={steps}", "eps.start=1", "eps.end=1", "progress=false", "tensorboard=false",
           f"out={out}", *extra]
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"qtran {algo} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seconds": seconds, "greedy": summary["greedy_joint_actions"],
            "compile_seconds": summary["compile_seconds"], "fit": final_rms_td(out / "metrics.csv", seeds)}


def final_rms_td(metrics: Path, seeds: int) -> list:
    """Per seed, the square root of metrics.csv's last `loss_td` (None where it is empty)."""
    with metrics.open() as f:
        rows = list(csv.DictReader(f))[-seeds:]
    return [float(r["loss_td"]) ** 0.5 if r.get("loss_td") else None for r in rows]


def fits(values) -> str:
    return " ".join("n/a" if v is None else f"{v:.2g}" for v in values)


def names(joint_actions) -> str:
    return " ".join("(" + ", ".join("ABC"[a] for a in u) + ")" for u in joint_actions)


def hits(greedy) -> int:
    """Seeds whose greedy joint action is Table 1's optimum (A, A)."""
    return sum(tuple(u) == (0, 0) for u in greedy)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pymarl2", required=True, type=Path,
                        help="a copy of PyMARL2's source tree (its matrix game file is overwritten)")
    parser.add_argument("--python", required=True, help="a Python with torch, sacred and pyyaml for PyMARL2")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per algorithm, on both sides")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                        help="PyMARL2 processes at a time (default: one per core)")
    parser.add_argument("--algos", default="qplex,ow-qmix,cw-qmix")
    parser.add_argument("--steps", type=int, default=STEPS,
                        help=f"environment steps per seed (default {STEPS}; fewer for a quick check only)")
    args = parser.parse_args(argv)
    algos = args.algos.split(",")
    unknown = [a for a in algos if a not in PYMARL2_CONFIGS]
    problem = (f"unknown algorithm {unknown[0]!r}" if unknown
               else f"no src/main.py under {args.pymarl2}" if not (args.pymarl2 / "src/main.py").is_file()
               else "--seeds, --parallel and --steps must be at least 1" if min(args.seeds, args.parallel, args.steps) < 1
               else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="bench_pymarl2_"))
    stubs = prepare(args.pymarl2, scratch)
    n = args.seeds
    print(f"{n} seeds x {args.steps} steps per algorithm; PyMARL2 {args.parallel} process(es) at a time; "
          f"{os.cpu_count()} cores", flush=True)
    rows = []
    for algo in algos:
        theirs = run_pymarl2_seeds(args.pymarl2, args.python, stubs, algo, n, args.parallel, scratch, args.steps)
        print(f"{algo}: PyMARL2 {theirs['seconds']:.0f} s ({theirs['per_run']:.0f} s per process), "
              f"greedy {names(theirs['greedy'])}", flush=True)
        if algo in FIT_REPORTED:
            print(f"{algo}: PyMARL2 final mean |TD error| per seed {fits(theirs['fit'])}", flush=True)
        for i, (form, extra) in enumerate(OUR_FORMS[algo]):
            name = algo if len(OUR_FORMS[algo]) == 1 else f"{algo} ({form})"
            tag = f"{algo}_{i}"  # the form's folders under scratch
            cache = scratch / f"cache_{tag}"  # empty: the first run compiles everything
            cold = run_ours(algo, n, cache, scratch / f"ours_{tag}_cold", extra, args.steps)
            warm = run_ours(algo, n, cache, scratch / f"ours_{tag}_warm", extra, args.steps)
            run_ours(algo, 1, cache, scratch / f"ours_{tag}_alone_cold", extra, args.steps)  # fills the cache for seeds=1
            alone = run_ours(algo, 1, cache, scratch / f"ours_{tag}_alone", extra, args.steps)
            rows.append((name, theirs, cold, warm, alone))
            print(f"{name}: qtran {cold['seconds']:.1f} s cold (compile {cold['compile_seconds']:.1f} s), "
                  f"{warm['seconds']:.1f} s warm, {alone['seconds']:.1f} s for seeds=1; greedy {names(warm['greedy'])}",
                  flush=True)
            if algo in FIT_REPORTED:
                print(f"{name}: qtran final rms TD error per seed {fits(warm['fit'])}", flush=True)
    print(f"\n| algorithm | PyMARL2, {n} seeds | qtran cold | qtran warm | throughput ratio (cold / warm) "
          f"| one run: PyMARL2 / qtran | PyMARL2 at (A, A) | qtran at (A, A) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, theirs, cold, warm, alone in rows:
        t = theirs["seconds"]
        print(f"| {name} | {t:.0f} s | {cold['seconds']:.1f} s | {warm['seconds']:.1f} s | "
              f"{t / cold['seconds']:.1f}x / {t / warm['seconds']:.1f}x | "
              f"{theirs['per_run']:.0f} s / {alone['seconds']:.1f} s = {theirs['per_run'] / alone['seconds']:.1f}x | "
              f"{hits(theirs['greedy'])}/{n} | {hits(warm['greedy'])}/{n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
