"""Memory of a paper-budget Figure 4 piece at N = 4: peak resident memory and checkpoint size.

    python benchmarks/bench_fig4_memory.py                       # this tree, VDN, 12,000 steps
    python benchmarks/bench_fig4_memory.py --tree OLD --algo qtran-base --steps 6000

Trains one piece as `qtran reproduce fig4 budget=paper n=4` would (5 seeds x 3 penalties in
one program, `buffer_size=10000`, the paper's settings) for a short run with `qtran train` in
a fresh process whose PYTHONPATH is the tree's `src`, checkpointing every evaluation. Prints
the child's peak resident memory (getrusage), the newest checkpoint's size with the episodes
stored so far, and that size projected to a full buffer (10,000 episodes per run): the
buffer's part grows linearly with the episodes stored, the rest is fixed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--algo", default="vdn")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--buffer", type=int, default=10000)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.tree.resolve() / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        setup = ("from qtran.experiments.fig4 import BUDGETS, COMMON, SETTINGS; import json; "
                 "print(json.dumps(COMMON + SETTINGS['n4'] + BUDGETS['paper']['n4']))")
        overrides = json.loads(subprocess.run([sys.executable, "-c", setup], env=env, capture_output=True,
                                              text=True, check=True, cwd="/").stdout)
        cmd = [sys.executable, "-m", "qtran", "train", f"algo={args.algo}", *overrides,
               f"buffer_size={args.buffer}", f"steps={args.steps}", f"eval.interval={args.steps // 2}",
               "warmup_steps=1000", "progress=false", f"out={out}"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # kB on Linux
        ckpts = sorted((out / "checkpoints").glob("ckpt-*.npz"))
        summary = json.loads((out / "summary.json").read_text())
        runs = len(summary["seeds"])
        episodes = args.steps // 100
        import numpy as np

        with np.load(ckpts[-1], allow_pickle=False) as data:
            buffer_bytes = sum(data[k].nbytes for k in data.files if k.startswith("state/buffer/data/"))
        size = ckpts[-1].stat().st_size
        full = size - buffer_bytes + buffer_bytes * args.buffer / episodes
    print(f"tree: {args.tree.resolve()}\n{args.algo}, N = 4, {runs} runs, buffer_size={args.buffer}, "
          f"{args.steps} steps ({episodes} episodes stored per run)")
    print(f"peak resident memory: {peak_gb:.2f} GB")
    print(f"newest checkpoint: {size / 1e6:.1f} MB ({buffer_bytes / 1e6:.1f} MB of it replay); "
          f"with a full buffer: {full / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
