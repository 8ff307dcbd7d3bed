"""NumPy broadcasting over symbolic dims, shared by every elementwise and batched op."""

from __future__ import annotations

from ..ir.dims import Dim, fmt_dims
from ._registry import OpCall

ONE = Dim.const(1)


def broadcast_dims(
    a: tuple[Dim, ...], b: tuple[Dim, ...], call: OpCall, whole: bool = True
) -> tuple[Dim, ...]:
    """Right-aligned; a 1 stretches; equal dims stay; two different symbols are an error, never assumed equal.
    whole: a and b are the operands' whole shapes (not a matmul's batch axes), so a hint may show them reshaped."""
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
            hint = (whole and _missing_axes(a, b)) or (
                "different names are different sizes; use one name for both, or assert the shape"
                if both_symbolic
                else "the sizes must be equal, or one of them 1"
            )
            raise call.fail(
                f"cannot broadcast {fmt_dims(a)} with {fmt_dims(b)}: axis {axis} is {x} on one side and {y} on the other",
                hint,
            )
    return tuple(out)


def _missing_axes(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> str:
    """The hint for a lower-rank value that matches the other's first and last axes, such as a squeeze-and-excitation
    scale [N, C] against its map [N, H, W, C]: NumPy aligns from the right, so its middle axes must be written."""
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if not short or len(short) == len(long):
        return ""
    for lead in range(1, len(short) + 1):
        if short[:lead] == long[:lead] and short[lead:] == long[len(long) - len(short) + lead :]:
            gap = len(long) - len(short)
            index = ", ".join([":"] * lead + ["None"] * gap + [":"] * (len(short) - lead))
            shape = fmt_dims(short[:lead] + (ONE,) * gap + short[lead:])
            return (
                f"broadcasting lines axes up from the right: give the {fmt_dims(short)} value the missing "
                f"axes as size 1, `[{index}]` after its name or `-> reshape({shape})`"
            )
    return ""
