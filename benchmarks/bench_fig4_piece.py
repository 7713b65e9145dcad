"""Figure 4's piece shape, old code against new: training time per step, timed in alternation.

    python benchmarks/bench_fig4_piece.py --old-tree /path/to/old/checkout --new-tree .
    python benchmarks/bench_fig4_piece.py --old-tree OLD --new-tree NEW --cases qtran-alt:4 --rounds 3
    python benchmarks/bench_fig4_piece.py --old-tree OLD --new-tree NEW --shard

A piece is one program training 5 seeds x 3 penalties (15 runs, `env_values`) with an update
per environment step, at the paper budget's settings for N = 2 or N = 4 (`qtran.experiments.
fig4`), except the replay capacity (`--buffer`, default 1,000 episodes, so that the old code's
float buffer fits beside everything else on a small machine) and the chunk length (`--iters`
iterations of 100 steps). Each measurement is a fresh process with PYTHONPATH pointing at one
tree's `src`; old and new alternate within every round, so a load that comes and goes hits
both sides alike. A process compiles its chunk (not timed; each tree has its own persistent
compilation cache, so later rounds mostly load), runs one chunk to warm up, then times
`--chunks` chunks: wall and CPU seconds, reported per environment step of one run.

With `--shard` each side lays the runs out over the CPU devices as its own `qtran train` does
(shard=true): code before the padding rule keeps 15 runs on one device (no divisor), code with
it pads them to 16 over two. Without it both sides train on one device (what the experiments'
jobs do, shard=false).

Printed per case: best and median steps/s per run of each side over all its timed chunks, and
new / old of both (a ratio > 1 means the new code is faster); then the geometric mean of the
median ratios over the cases.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = tuple(f"{algo}:{n}" for n in (2, 4) for algo in ("qtran-base", "qtran-alt", "vdn", "qmix"))


def lay_out(states):
    """The runs placed as this tree's `qtran train` places them: (states, devices used)."""
    import jax

    try:
        from qtran.devices import pad_runs, place, run_layout
    except ImportError:  # a tree from before the padding rule: divisors only
        from qtran.devices import place, run_sharding

        sharding = run_sharding(jax.tree.leaves(states)[0].shape[0])
        return place(states, sharding), 1 if sharding is None else len(sharding.mesh.devices.flat)
    layout = run_layout(jax.tree.leaves(states)[0].shape[0])
    return place(pad_runs(states, layout.padding), layout.sharding), layout.devices


def worker(algo: str, n: int, iters: int, chunks: int, buffer: int, shard: bool = False) -> dict:
    """Runs inside the measured tree's code: compile, warm up, then time `chunks` chunks."""
    import resource

    import jax
    import jax.numpy as jnp

    from qtran.algorithms import make_algorithm
    from qtran.config import make_config
    from qtran.envs import make_env
    from qtran.experiments.fig4 import BUDGETS, COMMON, SETTINGS
    from qtran.runtime import setup
    from qtran.train import Trainer

    setup(compile_cache=True)  # as `qtran` does: one CPU device per core, the persistent cache
    key = f"n{n}"
    # The three penalties named here: later code adds them per piece (`p=`), not in COMMON.
    cfg = make_config([f"algo={algo}", *COMMON, "env_values=[0.5,1.0,1.5]", *SETTINGS[key], *BUDGETS["paper"][key],
                       f"buffer_size={buffer}", "steps=100000000", "warmup_steps=0"])
    env = make_env(cfg.env)
    cfg.eval.interval = iters * cfg.n_envs * env.episode_limit
    trainer = Trainer(cfg, env, make_algorithm(cfg, env))
    states = trainer.init_runs(range(cfg.seed, cfg.seed + cfg.seeds))
    runs = jax.tree.leaves(states)[0].shape[0]
    devices = 1
    if shard:
        states, devices = lay_out(states)
    trainer.compile(states)
    states, _ = trainer.chunk(states, jnp.int32(0))
    jax.block_until_ready(states)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    steps = iters * trainer.schedule.steps_per_iter  # per run, per chunk
    walls, cpus = [], []
    for c in range(1, chunks + 1):
        t0, c0 = time.perf_counter(), cpu()
        states, _ = trainer.chunk(states, jnp.int32(c * iters))
        jax.block_until_ready(states)
        walls.append((time.perf_counter() - t0) / steps)
        cpus.append((cpu() - c0) / steps)
    return {"runs": runs, "devices": devices, "wall_per_step": walls, "cpu_per_step": cpus,
            "compile_seconds": trainer.compile_seconds}


def measure(tree: Path, case: str, args, cache_root: Path, side: str) -> dict:
    algo, n = case.split(":")
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), XDG_CACHE_HOME=str(cache_root / side))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cmd = [sys.executable, __file__, "--worker", algo, n, str(args.iters), str(args.chunks), str(args.buffer),
           str(int(args.shard))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise SystemExit(f"{side} {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(per_step: list[float]) -> tuple[float, float]:
    """(best, median) steps/s per run from seconds per step."""
    rates = [1.0 / s for s in per_step]
    return max(rates), statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", type=Path)
    parser.add_argument("--new-tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--cases", default=",".join(CASES), help="algo:N,... (default: all eight)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5, help="iterations (100 steps each) per chunk")
    parser.add_argument("--chunks", type=int, default=2, help="timed chunks per process")
    parser.add_argument("--buffer", type=int, default=1000, help="replay capacity in episodes")
    parser.add_argument("--cache-root", type=Path, default=Path("/tmp/bench_fig4_piece_cache"))
    parser.add_argument("--shard", action="store_true",
                        help="lay the runs out over the CPU devices as each side's `qtran train` does")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        algo, n, iters, chunks, buffer, shard = args.worker
        print(json.dumps(worker(algo, int(n), int(iters), int(chunks), int(buffer), shard == "1")))
        return
    if args.old_tree is None:
        parser.error("--old-tree is required")
    cases = args.cases.split(",")
    sides = {"old": args.old_tree.resolve(), "new": args.new_tree.resolve()}
    print(f"old: {sides['old']}\nnew: {sides['new']}\n{args.rounds} rounds, chunks of {args.iters} "
          f"iterations ({args.iters * 100} steps per run), {args.chunks} timed per process, "
          f"buffer_size={args.buffer}, {'each side sharded as its qtran train does' if args.shard else 'one device'}; load at start: {os.getloadavg()[0]:.1f}", flush=True)
    results = {(case, side): {"wall": [], "cpu": []} for case in cases for side in sides}
    for r in range(args.rounds):
        for case in cases:
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for side in order:
                out = measure(sides[side], case, args, args.cache_root, side)
                results[(case, side)]["wall"] += out["wall_per_step"]
                results[(case, side)]["cpu"] += out["cpu_per_step"]
                best, med = summarise(out["wall_per_step"])
                print(f"  round {r + 1} {case:<13} {side}: {med:7.1f} steps/s per run (wall), "
                      f"{out['runs']} runs on {out.get('devices', 1)} device(s), compile {out['compile_seconds']:.1f} s, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n{'case':<13} {'old best/median':>16} {'new best/median':>16} {'new/old best':>12} "
          f"{'median':>7} {'cpu-time ratio':>14}   (steps/s per run, wall)")
    ratios = []
    for case in cases:
        ob, om = summarise(results[(case, "old")]["wall"])
        nb, nm = summarise(results[(case, "new")]["wall"])
        cpu_ratio = statistics.median(results[(case, "old")]["cpu"]) / statistics.median(results[(case, "new")]["cpu"])
        ratios.append(nm / om)
        print(f"{case:<13} {ob:7.1f} /{om:7.1f} {nb:7.1f} /{nm:7.1f} {nb / ob:12.2f} {nm / om:7.2f} {cpu_ratio:14.2f}")
    print(f"geometric mean of the median ratios: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f} "
          f"(lowest {min(ratios):.2f}); load at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
