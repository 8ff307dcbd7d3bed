"""Counting: parameters, state and FLOPs per node and in total, with the batch bound to a number."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.dims import Dim
from ..ir.graph import Graph


@dataclass(frozen=True)
class NodeCount:
    name: str
    op: str
    shape: str
    params: int
    state: int
    flops: int | None  # None where it depends on a size that is still symbolic


@dataclass(frozen=True)
class Counts:
    nodes: tuple[NodeCount, ...]
    total_params: int
    total_state: int
    total_flops: int | None


def batch_symbols(g: Graph) -> set[str]:
    """The names used as the leading axis of the inputs: the batch."""
    out: set[str] = set()
    for _, nid in g.inputs:
        t = g.nodes[nid].type
        if t.dims and not t.dims[0].is_const:
            out |= t.dims[0].symbols()
    return out


def total_flops(g: Graph, batch: int = 1) -> int | None:
    """FLOPs of the whole graph for `batch` examples; None while another size is still symbolic."""
    return g.total_flops.subst({s: batch for s in batch_symbols(g)}).as_int()


def count(g: Graph, batch: int = 1, bind: dict[str, int] | None = None) -> Counts:
    """FLOPs for `batch` examples (1 = per example, the convention of published figures)."""
    env: dict[str, Dim | int] = {s: batch for s in batch_symbols(g)}
    env.update(bind or {})
    rows = []
    total: int | None = 0
    for n in g.nodes:
        f = n.flops.subst(env)
        fv = f.as_int()
        total = None if (total is None or fv is None) else total + fv
        shape = (
            ", ".join(str(t.with_dims(tuple(d.subst(env) for d in t.dims))) for t in n.outputs)
            if bind
            else ", ".join(str(t) for t in n.outputs)
        )
        rows.append(NodeCount(n.name, n.op, shape, n.param_count, n.state_count, fv))
    return Counts(tuple(rows), g.total_params, g.total_state, total)
