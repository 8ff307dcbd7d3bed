"""NumPy broadcasting over symbolic dims, shared by every elementwise and batched op."""

from __future__ import annotations

from ..ir.dims import Dim, fmt_dims
from ._registry import OpCall

ONE = Dim.const(1)


def broadcast_dims(a: tuple[Dim, ...], b: tuple[Dim, ...], call: OpCall) -> tuple[Dim, ...]:
    """Right-aligned; a 1 stretches; equal dims stay; two different symbols are an error, never assumed equal."""
    n = max(len(a), len(b))
    pa = (ONE,) * (n - len(a)) + a
    pb = (ONE,) * (n - len(b)) + b
    out = []
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        if x == y or y == ONE:
            out.append(x)
        elif x == ONE:
            out.append(y)
        else:
            axis = i - n
            both_symbolic = not x.is_const and not y.is_const
            hint = (
                "different names are different sizes; use one name for both, or assert the shape"
                if both_symbolic
                else "the sizes must be equal, or one of them 1"
            )
            raise call.fail(
                f"cannot broadcast {fmt_dims(a)} with {fmt_dims(b)}: axis {axis} is {x} on one side and {y} on the other",
                hint,
            )
    return tuple(out)
