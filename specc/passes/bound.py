"""Sizes fixed after checking (the data's T = 6, `--bind T=6`) put to each op's rule again: a rule that accepts a
free size may refuse its number, and the lowering met that only as a crash (a learned positional table of
max_len 4 for sequences of 6: JAX's "Incompatible shapes for broadcasting", exit 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ..ir.dims import Dim
from ..ir.graph import Graph
from ..ir.types import TensorType
from ..ops._registry import OpCall, OpError, get_op


def check_bound_sizes(g: Graph, env: Mapping[str, int], where: str) -> None:
    """Raise a SpecError at the first node whose op refuses its inputs with `env`'s sizes put in; `where` says
    where the sizes came from ("the training data", "--bind"). The types flow from node to node as the rules give
    them, so a value whose size the numbers change (`x[:, 0:3]` of T = 2 has 2 rows, not 3) reaches the ops after
    it as it will be."""
    if not env:
        return
    bound: dict[int, tuple[TensorType, ...]] = {}
    for n in g.nodes:
        recorded = tuple(t.with_dims(tuple(d.subst(env) for d in t.dims)) for t in n.outputs)
        op = get_op(n.op)
        if (
            op is None or not n.inputs or op.reruns is not None
        ):  # a grad's path is its own nodes, checked as they are
            bound[n.id] = recorded
            continue
        types = tuple(bound[r.node][r.index] for r in n.inputs)
        attrs = {k: _subst(v, env) for k, v in n.attrs}
        used = sorted(
            {s for t in (g.type_of(r) for r in n.inputs) for d in t.dims for s in d.symbols() if s in env}
            | {s for _, v in n.attrs for s in _symbols(v) if s in env}
        )
        try:
            bound[n.id] = tuple(op.infer(OpCall(op, attrs, types, None)).outputs)
        except OpError as e:
            sizes = ", ".join(f"{s} = {env[s]}" for s in used) or ", ".join(
                f"{k} = {v}" for k, v in env.items()
            )
            raise SpecError.one(
                e.kind, f"{e.message} ({sizes} from {where})", n.span, e.hint or f"`specc ops {op.name}`"
            ) from None


def _subst(v: Any, env: Mapping[str, int]) -> Any:
    if isinstance(v, Dim):
        return v.subst(env)
    if isinstance(v, tuple):
        return tuple(_subst(x, env) for x in v)
    if isinstance(v, list):
        return [_subst(x, env) for x in v]
    return v


def _symbols(v: Any) -> set[str]:
    if isinstance(v, Dim):
        return set(v.symbols())
    if isinstance(v, tuple | list):
        return set().union(*(_symbols(x) for x in v)) if v else set()
    return set()
