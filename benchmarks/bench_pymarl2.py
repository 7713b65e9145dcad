"""PyMARL2's QPLEX, OW-QMIX and CW-QMIX beside ours on the Table 1 game, same budget.

PyMARL2 (github.com/hijkzzz/pymarl2, PyTorch) is run unmodified except for its one-step matrix
game file, which this script overwrites in the copy it is given with a Table 1 game of our
own writing, and stand-ins for the StarCraft/pygame packages its imports name but a matrix game
never uses (written beside it, put on PYTHONPATH). Nothing of PyMARL2 is in this repository:
bring its source into a scratch folder and give PyMARL2 a Python with torch, sacred and pyyaml:

    git clone <pymarl2> /tmp/pymarl2       (or any copy of its tree)
    python3 -m venv /tmp/pymarl2-venv && /tmp/pymarl2-venv/bin/pip install torch sacred pyyaml numpy
    PYTHONPATH=src python3 benchmarks/bench_pymarl2.py --pymarl2 /tmp/pymarl2 --python /tmp/pymarl2-venv/bin/python

Same budget on both sides: 20,000 environment steps, full exploration (epsilon 1 while
training), batch 32, replay 5,000 episodes, one update per episode after 32 episodes, target
copy every 200 updates, Adam lr 5e-4, the algorithms' own settings otherwise (PyMARL2's
qplex / ow_qmix / cw_qmix configs; ours the `qplex.*` / `wqmix.*` defaults). PyMARL2 runs one
seed per process, one after the other; ours trains all seeds in one vmapped program. Printed:
wall time each, environment steps per second, and the greedy joint action per seed (PyMARL2's:
its last greedy test episode, logged by the game file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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
    """Index of the last greedy test episode in the game's log, by PyMARL2's schedule (episode
    runner, one env, one test episode): after each training episode (t_env += 1), a test
    episode runs when t_env - last_test >= interval, last_test starting at -interval - 1."""
    index, t_env, last_test, last = 0, 0, -interval - 1, None
    while t_env <= steps:
        index += 1  # the training episode
        t_env += 1
        if t_env - last_test >= interval:
            last_test = t_env
            last = index
            index += 1  # the test episode
    if index != n_logged:
        raise RuntimeError(f"PyMARL2 logged {n_logged} episodes, its schedule gives {index}")
    return last


def run_pymarl2(pymarl2: Path, python: str, stubs: Path, algo: str, seed: int, scratch: Path) -> dict:
    log = scratch / f"{algo}_{seed}.jsonl"
    log.unlink(missing_ok=True)
    overrides = [f"t_max={STEPS}", f"seed={seed}", "use_cuda=False", "runner=episode", "batch_size_run=1",
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
    greedy = episodes[last_greedy_episode(len(episodes), STEPS, TEST_INTERVAL) - 1]
    return {"seconds": seconds, "greedy": greedy}


def run_ours(algo: str, seeds: int) -> dict:
    from qtran.run import fit

    t0 = time.perf_counter()
    _, summary = fit([f"algo={algo}", "env=matrix", "env.payoff=table1", f"seeds={seeds}", f"steps={STEPS}",
                      "eps.start=1", "eps.end=1", "shard=false", "progress=false"], write=False)
    return {"seconds": time.perf_counter() - t0, "greedy": summary["greedy_joint_actions"],
            "compile_seconds": summary["compile_seconds"]}


def names(joint_actions) -> str:
    return " ".join("(" + ", ".join("ABC"[a] for a in u) + ")" for u in joint_actions)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pymarl2", required=True, type=Path,
                        help="a copy of PyMARL2's source tree (its matrix game file is overwritten)")
    parser.add_argument("--python", required=True, help="a Python with torch, sacred and pyyaml for PyMARL2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--algos", default="qplex,ow-qmix,cw-qmix")
    args = parser.parse_args(argv)
    algos = args.algos.split(",")
    unknown = [a for a in algos if a not in PYMARL2_CONFIGS]
    if unknown or not (args.pymarl2 / "src/main.py").is_file():
        print(f"error: unknown algorithm {unknown[0]!r}" if unknown else f"error: no src/main.py under {args.pymarl2}",
              file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="bench_pymarl2_"))
    stubs = prepare(args.pymarl2, scratch)
    rows = []
    for algo in algos:
        theirs = [run_pymarl2(args.pymarl2, args.python, stubs, algo, s, scratch) for s in range(args.seeds)]
        ours = run_ours(algo, args.seeds)
        their_seconds = sum(r["seconds"] for r in theirs)
        rows.append((algo, their_seconds, [r["greedy"] for r in theirs], ours))
        print(f"{algo}: PyMARL2 {their_seconds:.0f} s for {args.seeds} seeds ({args.seeds * STEPS / their_seconds:.0f} "
              f"steps/s), greedy {names(r['greedy'] for r in theirs)}", flush=True)
        print(f"{algo}: qtran   {ours['seconds']:.0f} s for {args.seeds} seeds "
              f"(compile {ours['compile_seconds']:.0f} s; {args.seeds * STEPS / ours['seconds']:.0f} steps/s), "
              f"greedy {names(ours['greedy'])}", flush=True)
    print("\n| algorithm | PyMARL2 s | qtran s | throughput ratio | PyMARL2 seeds at (A, A) | qtran seeds at (A, A) |")
    print("|---|---|---|---|---|---|")
    for algo, their_seconds, their_greedy, ours in rows:
        hits = lambda g: sum(tuple(u) == (0, 0) for u in g)  # noqa: E731
        print(f"| {algo} | {their_seconds:.0f} | {ours['seconds']:.0f} | {their_seconds / ours['seconds']:.1f}x | "
              f"{hits(their_greedy)}/{args.seeds} | {hits(ours['greedy'])}/{args.seeds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
