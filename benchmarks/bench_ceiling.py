"""The physical limit, printed: each experiment's FLOPs against this machine's matmul rate.

    python benchmarks/bench_ceiling.py                          # Table 1, Figure 3c, predator-prey
    python benchmarks/bench_ceiling.py --only table1,fig3 --out ceiling.md
    python benchmarks/bench_ceiling.py --set agent.hidden=32    # overrides for every trainer
    python benchmarks/bench_ceiling.py --compare compute_cuts=false   # every row without and with

One row per (workload, algorithm), each trained with the experiment's own settings (the
`reproduce` command's overrides), from the first step (no warm-up):

- FLOPs per gradient update per run: XLA's cost analysis of one compiled update (sample a
  batch, loss forward and backward, Adam, target select), vmapped over the runs, divided by
  the runs (with a recurrent agent, plus what it misses of the GRU's matmuls in their loop
  over the episode: `flops.loop_corrected_flops`). A run is one seed; Figure 4's job trains
  5 seeds x 3 penalties = 15 runs at once.
- The measured rate: FLOPs of a compiled chunk of training iterations over its wall time
  (compile excluded, after one warm-up chunk; median of --repeats chunks). XLA counts a loop
  body once, so the chunk's FLOPs are rebuilt from its parts: per iteration, updates_per_iter
  updates plus episode_limit steps of acting, where one step of acting is XLA's count of the
  chunk (one iteration, one update, one acting step) less that of one update. The chunk is
  compiled with its states donated, so a short chunk does not time a copy of the replay
  buffer that a real run makes once per evaluation interval (bench_table1.warm_trainer).
- "matmul share": the chunk's matrix-product FLOPs counted from its optimised HLO with every
  loop multiplied by its trip count (`flops.dot_flops`), over the FLOPs above. It checks the
  scaling independently (it must stay below 1) and says how much of the work is matmuls.
- The ceiling: one jitted 2048 x 2048 @ 2048 x 2048 float32 matmul, best of 10 calls, at the
  start and at the end. "cores": this process's CPU time over wall time (about 2 when XLA
  keeps both cores busy on an idle machine; on a loaded one, the share it got), and how many
  threads did a real part of the work (usage.py).
- The experiment's time at the ceiling (its total FLOPs / ceiling) and at the measured rate:
  total FLOPs = runs x (iterations x acting + gradient updates x FLOPs per update), from the
  experiment's schedule; evaluation episodes are left out (greedy acting: at most about 1%,
  VDN at predator-prey's paper budget, which evaluates as many steps as it trains).
  Figure 3's three panels have the same shapes (10 agents, the same observations, actions
  and networks): panel 3c is timed and stands for all three. "at measured rate" runs the
  algorithms one after another; `reproduce` runs two jobs at a time in threads (`workers`).

With --compare, each row is built twice in one process, without and with the override(s),
and the timed chunks alternate between the two (A, B, A, B, ...) so load drifts hit both.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jax

sys.path.insert(0, str(Path(__file__).parent))
from bench_table1 import matmul_rates, timed_chunk, warm_trainer  # noqa: E402
from flops import dot_flops, loop_corrected_flops, xla_flops  # noqa: E402
from usage import Usage, combine  # noqa: E402

from qtran.config import make_config  # noqa: E402
from qtran.envs import make_env  # noqa: E402
from qtran.errors import UserError  # noqa: E402
from qtran.experiments import fig3, fig4, table1  # noqa: E402
from qtran.train import Schedule  # noqa: E402


@dataclass(frozen=True)
class Workload:
    key: str  # what --only selects
    name: str  # the row's label
    iters: int  # training iterations per timed chunk (before --scale)
    algos: tuple[str, ...]
    measured: Callable[[str], list[str]]  # algo -> overrides of the setting that is timed
    experiment: str  # what the time columns cover
    jobs: Callable[[str], list[list[str]]]  # algo -> overrides of each of its experiment's jobs


def _table1(algo: str) -> list[str]:
    return table1.SETTINGS + [f"algo={algo}"]


def _fig3(panel: str, algo: str) -> list[str]:
    return fig3.jobs([], panels=(panel,), algos=(algo,))[f"{panel}/{algo}"]


def _fig4(setting: str, budget: str, algo: str) -> list[str]:
    return fig4.jobs([], budget, settings=(setting,), algos=(algo,))[f"{setting}/{algo}"]


def workloads() -> list[Workload]:
    """Table 1 (1 step, 1 update per iteration), Figure 3c (the same), predator-prey's two
    settings at both long budgets (100 steps and 100 or 25 updates per iteration)."""
    out = [Workload("table1", "Table 1", 200, table1.ALGOS, _table1, "reproduce table1",
                    lambda a: [_table1(a)]),
           Workload("fig3", "Fig. 3c MGS", 50, fig3.ALGOS, lambda a: _fig3("fig3c", a),
                    "reproduce fig3 (3 panels)", lambda a: [_fig3(p, a) for p in fig3.PANELS])]
    for setting, label in (("n2", "N=2"), ("n4", "N=4")):
        for budget in ("medium", "paper"):
            job = lambda a, s=setting, b=budget: _fig4(s, b, a)  # noqa: E731
            out.append(Workload("pp", f"PP {label} {budget}", 1, fig4.ALGOS, job,
                                f"fig4 budget={budget}, {label} half", lambda a, job=job: [job(a)]))
    return out


# ---- one side of a row: a warm trainer and what its chunk costs ------------------------------
@dataclass
class Side:
    overrides: list[str]
    trainer: object
    states: object
    runs: int
    update_flops: float  # one gradient update, one run
    act_flops: float  # one iteration's acting (episode_limit steps of n_envs episodes), one run
    iter_flops: float  # one iteration, all runs
    dot_share: float  # loop-aware matmul FLOPs of the chunk over iters x iter_flops
    chunk_iters: int
    usages: list[Usage] = field(default_factory=list)  # one per timed chunk
    next_start: int = 0

    @property
    def wall(self) -> float:  # median chunk
        return statistics.median(u.wall for u in self.usages)

    @property
    def iter_seconds(self) -> float:
        return self.wall / self.chunk_iters

    @property
    def rate(self) -> float:  # FLOP/s
        return self.iter_flops / self.iter_seconds

    @property
    def usage(self) -> Usage:
        return combine(self.usages)


# Settings that change how often updates happen or how much replay is kept, not what one
# update computes (a batch is gathered from the buffer whatever its size): the two
# predator-prey budgets of one setting share their count of one update (saves a compile).
SCHEDULE_KEYS = ("steps", "buffer_size", "updates_per_step", "target_update_interval", "warmup_steps",
                 "eval.interval", "eval.episodes")
_update_flops_cache: dict[tuple, tuple[float, float]] = {}


def update_flops(trainer, states, runs: int, overrides: list[str]) -> tuple[float, float]:
    """FLOPs of one gradient update of every run (vmapped), per run: XLA's count, and the same
    with matmuls inside loops counted per trip (they differ with a recurrent agent only)."""
    key = (runs, *(o for o in overrides if o.split("=", 1)[0] not in SCHEDULE_KEYS))
    if key not in _update_flops_cache:
        update = jax.jit(jax.vmap(lambda s, k: trainer._update(s, k, False)[0]))
        keys = jax.random.split(jax.random.PRNGKey(0), runs)
        compiled = update.lower(states, keys).compile()
        _update_flops_cache[key] = (xla_flops(compiled) / runs, loop_corrected_flops(compiled) / runs)
    return _update_flops_cache[key]


def prepare(algo: str, overrides: list[str], iters: int) -> Side:
    """Compile the chunk and one update, run the warm-up chunk, count the FLOPs."""
    seeds = make_config(overrides).seeds
    trainer, states = warm_trainer(algo, seeds, iters, tuple(overrides), donate=True)
    runs = jax.tree.leaves(states)[0].shape[0]
    sched = trainer.schedule
    upd_xla, upd = update_flops(trainer, states, runs, overrides)
    # The chunk's count holds one iteration with one update and one acting step (all runs).
    act_step = max(0.0, xla_flops(trainer.chunk) - upd_xla * runs)
    act = trainer.env.episode_limit * act_step / runs
    iter_flops = runs * (sched.updates_per_iter * upd + act)
    dots, _ = dot_flops(trainer.chunk.as_text())
    return Side(overrides, trainer, states, runs, upd, act, iter_flops,
                dots / (iter_flops * sched.chunk_iters), sched.chunk_iters, next_start=sched.chunk_iters)


def time_once(side: Side) -> None:
    side.states, usage = timed_chunk(side.trainer, side.states, side.next_start)
    side.usages.append(usage)
    side.next_start += side.chunk_iters


def experiment_flops(side: Side, jobs: list[list[str]], extra: list[str]) -> float:
    """Total FLOPs of the experiment's jobs for this algorithm, from their schedules."""
    total = 0.0
    for job in jobs:
        cfg = make_config(job + extra)
        sched = Schedule.from_config(cfg, make_env(cfg.env))
        runs = cfg.seeds * len(cfg.env_values or [None])
        total += runs * (sched.total_iters * side.act_flops + sched.total_updates * side.update_flops)
    return total


@dataclass
class Row:
    workload: Workload
    algo: str
    sides: list[Side]
    totals: list[float]  # experiment FLOPs per side


def measure_row(w: Workload, algo: str, sets: list[str], compare: list[str], scale: float,
                repeats: int) -> Row:
    iters = max(1, round(w.iters * scale))
    extras = [sets] + ([sets + compare] if compare else [])
    sides = [prepare(algo, w.measured(algo) + extra, iters) for extra in extras]
    for _ in range(repeats):  # alternate, so a change in load hits every side alike
        for side in sides:
            time_once(side)
    totals = [experiment_flops(s, w.jobs(algo), extra) for s, extra in zip(sides, extras)]
    for side in sides:  # the states can hold gigabytes of replay (predator-prey, paper budget)
        side.trainer = side.states = None
    gc.collect()
    return Row(w, algo, sides, totals)


# ---- printing ---------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1e3:.0f} ms"


def table(rows: list[Row], ceiling: float, compare: list[str]) -> str:
    if compare:
        return compare_table(rows, ceiling, " ".join(compare))
    head = ("| workload | algorithm | runs | MFLOP / update / run | GFLOP/s | cores (threads) | of ceiling | "
            "matmul share | experiment | TFLOP | at ceiling | at measured rate |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for group in _groups(rows):
        for r in group:
            s, total = r.sides[0], r.totals[0]
            lines.append(f"| {r.workload.name} | {r.algo} | {s.runs} | {s.update_flops / 1e6:.2f} | "
                         f"{s.rate / 1e9:.1f} | {s.usage.cores:.1f} ({s.usage.threads}) | {s.rate / ceiling:.0%} | "
                         f"{s.dot_share:.0%} | "
                         f"{r.workload.experiment} | {total / 1e12:.2f} | {duration(total / ceiling)} | "
                         f"{duration(total / s.rate)} |")
        total = sum(r.totals[0] for r in group)
        measured = sum(r.totals[0] / r.sides[0].rate for r in group)
        lines.append(f"| **{group[0].workload.name}** | **all** | | | | | | | {group[0].workload.experiment} | "
                     f"{total / 1e12:.2f} | **{duration(total / ceiling)}** | **{duration(measured)}** |")
    return "\n".join(lines)


def compare_table(rows: list[Row], ceiling: float, label: str) -> str:
    head = (f"| workload | algorithm | MFLOP / update / run: base, {label} | GFLOP/s base | GFLOP/s {label} | "
            f"rate ratio ({label} / base) | ms / iteration base | ms / iteration {label} | "
            f"time ratio ({label} / base) | experiment at ceiling: base, {label} | "
            f"experiment at measured rate: base, {label} |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        a, b = r.sides
        ta, tb = a.iter_seconds, b.iter_seconds
        lines.append(f"| {r.workload.name} | {r.algo} | {a.update_flops / 1e6:.2f}, {b.update_flops / 1e6:.2f} | "
                     f"{a.rate / 1e9:.1f} | {b.rate / 1e9:.1f} | {b.rate / a.rate:.2f} | "
                     f"{ta * 1e3:.2f} | {tb * 1e3:.2f} | {tb / ta:.2f} | "
                     f"{duration(r.totals[0] / ceiling)}, {duration(r.totals[1] / ceiling)} | "
                     f"{duration(r.totals[0] / a.rate)}, {duration(r.totals[1] / b.rate)} |")
    for group in _groups(rows):
        ceil_a, ceil_b = (sum(r.totals[i] for r in group) / ceiling for i in (0, 1))
        meas_a, meas_b = (sum(r.totals[i] / r.sides[i].rate for r in group) for i in (0, 1))
        lines.append(f"| **{group[0].workload.name}** | **all** | | | | | | | {meas_b / meas_a:.2f} | "
                     f"{duration(ceil_a)}, {duration(ceil_b)} | **{duration(meas_a)}, {duration(meas_b)}** |")
    return "\n".join(lines)


def _groups(rows: list[Row]) -> list[list[Row]]:
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.workload.name, []).append(r)
    return list(groups.values())


def matmul_words(r: dict) -> str:
    return (f"best {r['best']:.0f}, median {r['median']:.0f} GFLOP/s, {r['cores']:.1f} cores, "
            f"{r['threads']} threads worked")


def machine_line(start: dict, end: dict, ceiling: float) -> str:
    load = os.getloadavg()
    return (f"Machine: {os.cpu_count()} CPUs, {jax.device_count()} JAX device(s) "
            f"({jax.devices()[0].platform}), jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
            f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min). "
            f"Ceiling {ceiling / 1e9:.0f} GFLOP/s: the best call of one jitted 2048x2048 @ 2048x2048 "
            f"float32 matmul (at the start: {matmul_words(start)}; at the end: {matmul_words(end)}).")


# ---- main -------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="table1,fig3,pp", help="workloads, comma-separated: table1,fig3,pp")
    parser.add_argument("--algos", default=None, help="only these algorithms, comma-separated")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every trainer (repeatable)")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                        help="run every row without and with this override (repeatable: all at once)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every chunk's iterations")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks per side (median)")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    keys = {w.key for w in workloads()}
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in args.only if k not in keys]
    if unknown:
        parser.error(f"--only: unknown workload {unknown[0]!r}; choose from {', '.join(sorted(keys))}")
    args.algos = None if args.algos is None else [a.strip() for a in args.algos.split(",")]
    known = {a for w in workloads() for a in w.algos}
    if args.algos is not None and not set(args.algos) <= known:
        parser.error(f"--algos: choose from {', '.join(sorted(known))}")
    for item in args.sets + args.compare:
        make_config([item])  # a misspelt or unknown key fails now, not after minutes of timing
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    start = matmul_rates()
    print(f"matmul ceiling at the start: {matmul_words(start)}", flush=True)
    rows = []
    for w in workloads():
        if w.key not in args.only:
            continue
        for algo in w.algos:
            if args.algos is None or algo in args.algos:
                t0 = time.perf_counter()
                rows.append(measure_row(w, algo, args.sets, args.compare, args.scale, args.repeats))
                rates = ", ".join(f"{s.rate / 1e9:.1f}" for s in rows[-1].sides)
                print(f"  {w.name} {algo}: {rates} GFLOP/s ({time.perf_counter() - t0:.0f} s)", flush=True)
    end = matmul_rates()
    ceiling = 1e9 * max(start["best"], end["best"])
    text = machine_line(start, end, ceiling)
    if args.sets:
        text += f" Overrides for every trainer: {' '.join(args.sets)}."
    text += "\n\n" + table(rows, ceiling, args.compare) + "\n"
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    try:
        main()
    except UserError as err:
        sys.exit(f"bench_ceiling: {err}")
