"""Sizes fixed after checking (the data's T = 6, `--bind T=6`) put to each op's rule again: a rule that accepts a
free size may refuse its number, and the lowering met that only as a crash (a learned positional table of
max_len 4 for sequences of 6: JAX's "Incompatible shapes for broadcasting", exit 3)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import SpecError
from ..ir.graph import Graph
from ..ops._registry import OpCall, OpError, get_op


def check_bound_sizes(g: Graph, env: Mapping[str, int], where: str) -> None:
    """Raise a SpecError at the first node whose op refuses its inputs with `env`'s sizes put in; `where` says
    where the sizes came from ("the training data", "--bind")."""
    if not env:
        return
    for n in g.nodes:
        op = get_op(n.op)
        if op is None or not n.inputs or op.reruns is not None:  # a grad's path is its own nodes, checked as they are
            continue
        types = tuple(g.type_of(r) for r in n.inputs)
        used = sorted({s for t in types for d in t.dims for s in d.symbols() if s in env})
        if not used:
            continue
        bound = tuple(t.with_dims(tuple(d.subst(env) for d in t.dims)) for t in types)
        try:
            op.infer(OpCall(op, dict(n.attrs), bound, None))
        except OpError as e:
            sizes = ", ".join(f"{s} = {env[s]}" for s in used)
            raise SpecError.one(
                e.kind, f"{e.message} ({sizes} from {where})", n.span, e.hint or f"`specc ops {op.name}`"
            ) from None
