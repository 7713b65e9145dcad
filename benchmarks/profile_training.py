"""Where one training iteration's time goes: a measured profile, not an estimate.

    python benchmarks/profile_training.py                       # QTRAN-base, predator-prey N = 2
    python benchmarks/profile_training.py --algo vdn --seeds 5 env.agents=4 env.prey=2 env.grid=7

Two views of the same compiled training chunk (5 iterations of 100 environment steps and 100
gradient updates each, the runs vmapped):

1. By component. The trainer's own pieces, each jitted alone at the shapes the chunk uses and
   timed over the same number of calls: collecting the episodes (environment plus acting),
   drawing replay batches, the loss's forward pass, the forward and backward pass, and the
   whole update (forward, backward, Adam, target copy). Each is a separate program, so the
   parts need not add up exactly to the chunk.
2. By XLA operation. `jax.profiler` records the chunk with a Perfetto trace; every event's
   exclusive time (its duration less its children's) is summed by the kind of operation:
   matrix products (XLA `dot` and the XNNPACK fusions that wrap them), copies, gathers and
   scatters, other fused element-wise work, and the runtime's own bookkeeping between them
   (time inside the thunk executor that no operation claims).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from bench_table1 import warm_trainer  # noqa: E402

from qtran.train import Trainer  # noqa: E402

PREDATOR_PREY_N2 = ("env=predator_prey", "env.agents=2", "env.prey=1", "env.grid=5")


def best_time(fn, *args, repeats: int = 3) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def component_times(trainer: Trainer, states, iters: int) -> dict[str, float]:
    """Seconds per iteration of each piece, every run of the batch at once."""
    k = trainer.schedule.updates_per_iter
    algo = trainer.algo

    def repeat(body, n):  # n calls of body(state, key) inside one program, as the chunk does
        def run(states):
            def one(s, i):
                return jax.vmap(lambda st: body(st, jax.random.fold_in(st.key, i)))(s), None
            return jax.lax.scan(one, states, jnp.arange(n))[0]
        return jax.jit(run)

    def collect(st, key):
        return trainer._collect(st, key, 1.0)[0]

    def sample(st, key):  # keep the batch alive through the carry so XLA cannot drop it
        batch = trainer._sample(st.buffer, key)
        return st._replace(env_value=st.env_value + 0.0 * batch.reward.sum())

    def forward(st, key):
        loss, _ = algo.loss(st.params, st.target_params, trainer._sample(st.buffer, key))
        return st._replace(env_value=st.env_value + 0.0 * loss)

    def forward_backward(st, key):
        grads = jax.grad(lambda p: algo.loss(p, st.target_params, trainer._sample(st.buffer, key))[0])(st.params)
        return st._replace(env_value=st.env_value + 0.0 * sum(g.sum() for g in jax.tree.leaves(grads)))

    def update(st, key):
        return trainer._update(st, key, False)[0]

    pieces = {"collect (env + acting)": (collect, 1), "sample batches": (sample, k),
              "loss forward": (forward, k), "forward + backward": (forward_backward, k),
              "whole update (+ Adam)": (update, k)}
    times = {name: best_time(repeat(fn, n * iters), states) / iters for name, (fn, n) in pieces.items()}
    times["chunk (collect + updates)"] = best_time(lambda s: trainer.chunk(s, jnp.int32(iters))[0], states) / iters
    return times


KINDS = (("matrix products", re.compile(r"^(dot|ynn_fusion|.*convolution)")),
         ("copies", re.compile(r"copy")),
         ("gathers and scatters", re.compile(r"gather|scatter|dynamic-slice|dynamic-update-slice|slice")),
         ("loops and branches", re.compile(r"^(while|cond|conditional|call)")),
         ("runtime between operations", re.compile(r"^ThunkExecutor::Execute$")))


def kind_of(name: str) -> str | None:
    name = name.removeprefix("end: ")
    if name.startswith("$") or "wait for completion" in name:
        return None  # Python frames and the host waiting: not work
    for kind, pattern in KINDS:
        if pattern.search(name):
            return kind
    return "other fused element-wise work"


def exclusive_times(events: list[dict]) -> collections.Counter:
    """Each complete event's duration less that of the events nested in it, per thread."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    exclusive = collections.Counter()
    for thread in by_thread.values():
        thread.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        stack: list[dict] = []
        for e in thread:
            while stack and stack[-1]["ts"] + stack[-1].get("dur", 0) <= e["ts"]:
                stack.pop()
            if stack:
                exclusive[stack[-1]["name"]] -= e.get("dur", 0)
            exclusive[e["name"]] += e.get("dur", 0)
            stack.append(e)
    return exclusive


def trace_by_kind(trainer: Trainer, states, iters: int, top: int = 0) -> dict[str, float]:
    """Microseconds per iteration in each kind of XLA operation, from a Perfetto trace; with
    `top`, also prints the `top` operations that took longest."""
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(trainer.chunk(states, jnp.int32(2 * iters)))
        with gzip.open(next(Path(tmp).rglob("*.json.gz"))) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    kinds, exclusive = collections.Counter(), exclusive_times(events)
    for name, us in exclusive.most_common(top):
        print(f"    {name[:60]:<60} {us / iters / 1e3:8.3f} ms  ({kind_of(name) or 'not an op'})")
    for name, us in exclusive.items():
        kind = kind_of(name)
        if kind is not None:
            kinds[kind] += us
    return {kind: us / iters for kind, us in kinds.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="qtran-base")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--top", type=int, default=0, help="also list the N longest XLA operations")
    parser.add_argument("overrides", nargs="*", help="config overrides (default: predator-prey N = 2)")
    args = parser.parse_args()
    extra = tuple(args.overrides) if args.overrides else PREDATOR_PREY_N2
    trainer, states = warm_trainer(args.algo, args.seeds, args.iters, extra)
    k = trainer.schedule.updates_per_iter
    print(f"{args.algo}, {args.seeds} runs vmapped, {' '.join(extra)}: one iteration = "
          f"{trainer.schedule.steps_per_iter} env steps per run + {k} updates (batch {trainer.cfg.batch_size})")
    print("\nby component (separately compiled; ms per iteration, all runs):")
    times = component_times(trainer, states, args.iters)
    chunk = times["chunk (collect + updates)"]
    for name, t in times.items():
        print(f"  {name:<28} {t * 1e3:9.2f} ms  {t / chunk:6.0%}")
    print(f"  -> {trainer.schedule.steps_per_iter / chunk:,.0f} env steps/s per run, "
          f"{args.seeds * k / chunk:,.0f} updates/s over all runs")
    print("\nby XLA operation (exclusive time in a Perfetto trace of the chunk; profiling slows it):")
    kinds = trace_by_kind(trainer, states, args.iters, args.top)
    total = sum(kinds.values())
    for kind, us in kinds.items():
        print(f"  {kind:<28} {us / 1e3:9.2f} ms  {us / total:6.0%}")


if __name__ == "__main__":
    main()
