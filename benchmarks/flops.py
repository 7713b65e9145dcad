"""Counting the floating-point work of a compiled XLA program, two ways.

`xla_flops` is XLA's own cost analysis (`compiled.cost_analysis()["flops"]`): every
operation's FLOPs (a matrix product's 2*M*N*K, one per element for element-wise work), but
the body of a while loop (`lax.scan`, `fori_loop`) counted ONCE whatever its trip count, and
of a conditional only the costlier branch. A caller that knows the trip counts must scale.

`dot_flops` reads the optimised HLO text instead and counts only the matrix products
(`dot`, 2 x output elements x contracted size), but multiplies each while body by the trip
count XLA itself proved (`known_trip_count` in the loop's backend config). It is the check on
the scaling: it needs no knowledge of how the program was written. The difference between
it and the same count with every body taken once is what XLA's count misses in loops'
matrix products (`loop_corrected_flops`).
"""

from __future__ import annotations

import functools
import math
import re

_SHAPE = re.compile(r"^[a-z0-9]+\[([0-9,]*)\]")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_CALLEE = re.compile(r"\b(calls|to_apply|body)=%?([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}|(?:true|false)_computation=%?([\w.\-]+)")


def xla_flops(compiled) -> float:
    """XLA's FLOP count of a compiled program (0 when the backend gives none)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # older JAX: one dict per device
    return float((cost or {}).get("flops", 0.0))


def _dims(shape: str) -> list[int] | None:
    m = _SHAPE.match(shape)
    return [int(d) for d in m.group(1).split(",") if d] if m else None


def _split_instruction(line: str) -> tuple[str, str, str, str] | None:
    """'%name = shape op(args), attrs' -> (name, shape, op, rest); None for other lines."""
    if " = " not in line:
        return None
    name, rhs = line.strip().removeprefix("ROOT ").split(" = ", 1)
    if rhs.startswith("("):  # a tuple shape has spaces in it: skip to its closing parenthesis
        depth = 0
        for i, ch in enumerate(rhs):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                break
        shape, rest = rhs[: i + 1], rhs[i + 1:].lstrip()
    else:
        shape, _, rest = rhs.partition(" ")
    op = rest.split("(", 1)[0]
    return name.lstrip("%"), shape, op, rest


def _computations(hlo: str) -> tuple[dict[str, list[str]], str]:
    """{computation name: its instruction lines}, and the entry computation's name."""
    comps, entry, current = {}, None, None
    for line in hlo.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            head = line.split("(", 1)[0].split()
            current = head[-1].lstrip("%")
            comps[current] = []
            if head[0] == "ENTRY":
                entry = current
        elif current is not None and line.strip() not in ("", "}"):
            comps[current].append(re.sub(r"metadata=\{[^}]*\}", "", line))
    return comps, entry


def _dot(rest: str, out_shape: str, shapes: dict[str, str]) -> float:
    """2 x output elements x contracted size of one `dot` instruction."""
    operands = rest.split("(", 1)[1].split(")", 1)[0].split(",")
    lhs = shapes.get(operands[0].split()[-1].lstrip("%"), "")
    contracting = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", rest)
    lhs_dims, out_dims = _dims(lhs), _dims(out_shape)
    if lhs_dims is None or out_dims is None or contracting is None:
        raise ValueError(f"cannot read the dot {rest[:120]!r}")
    k = math.prod(lhs_dims[int(d)] for d in contracting.group(1).split(",") if d)
    return 2.0 * math.prod(out_dims) * k


def dot_flops(hlo: str, loops: bool = True) -> tuple[float, bool]:
    """(matrix-product FLOPs of the whole program, each loop body times its trip count;
    whether every while loop's trip count was known). Conditionals count their costlier branch.
    With loops=False every loop body counts once, as XLA's cost analysis counts it."""
    comps, entry = _computations(hlo)
    all_known = True

    @functools.lru_cache(maxsize=None)
    def total(comp: str) -> float:
        nonlocal all_known
        parsed = [p for p in map(_split_instruction, comps.get(comp, [])) if p]
        shapes = {name: shape for name, shape, _, _ in parsed}
        flops = 0.0
        for _, shape, op, rest in parsed:
            if op == "dot":
                flops += _dot(rest, shape, shapes)
            trips = 1
            if op == "while":
                m = _TRIP.search(rest)
                all_known &= m is not None
                trips = int(m.group(1)) if m and loops else 1
            for _, callee in _CALLEE.findall(rest):
                flops += trips * total(callee)
            branches = [b.strip().lstrip("%") for g in _BRANCHES.findall(rest) for part in g
                        for b in part.split(",") if b.strip()]
            if branches:
                flops += max(total(b) for b in branches)
        return flops

    return total(entry), all_known


def loop_corrected_flops(compiled) -> float:
    """XLA's count with the matrix products inside loops counted once per trip (a recurrent
    agent's GRU over an episode); element-wise work inside loops still counts once."""
    text = compiled.as_text()
    return xla_flops(compiled) + dot_flops(text)[0] - dot_flops(text, loops=False)[0]
