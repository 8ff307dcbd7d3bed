"""Padding: `pad` widens the spatial axes of [N, spatial..., C] with a constant, a mirror image or the edge values."""

from __future__ import annotations

from typing import Any

from ..errors import counted
from ..ir.dims import Dim
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register

MODES = ("constant", "reflect", "edge")
# the constant's range per integer dtype: jnp.pad would wrap a value that does not fit
INT_RANGE = {"u8": (0, 255), "i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1), "bool": (0, 1)}


def widths(pad: Any, n: int, c: OpCall | None = None) -> tuple[tuple[int, int], ...]:
    """(lo, hi) per spatial axis from an int, one int per axis, or [(lo, hi), ...]; `c` reports a wrong count."""
    if isinstance(pad, int):
        return ((pad, pad),) * n
    if len(pad) != n and c is not None:
        raise c.fail(
            f"pad has {counted(len(pad), 'value')} but {c.x} has {counted(n, 'spatial axis', 'spatial axes')}",
            f"give one value or (lo, hi) pair per spatial axis ({n}), or one int for all",
            arg="pad",
            kind="argument error",
        )
    return tuple((p, p) if isinstance(p, int) else (p[0], p[1]) for p in pad)


def _pad(c: OpCall) -> Inferred:
    c.need_rank(
        3,
        5,
        " [N, spatial..., channels] (1D, 2D or 3D, channels last)",
        "images are [N, H, W, C]; add a channel axis with reshape([N, 28, 28, 1])",
    )
    if isinstance(c["pad"], str):
        raise c.fail(
            f"pad's 'pad' must be a number of elements, got {c['pad']}",
            "pad(2) adds 2 on both sides of every spatial axis; pad([(1, 2), (1, 2)]) gives (lo, hi) per axis",
            arg="pad",
            kind="argument error",
        )
    p = widths(c["pad"], c.x.rank - 2, c)
    mode, value = c["mode"], c["value"]
    if mode != "constant" and value != 0:
        raise c.fail(
            f"pad's value={value} is only used with mode=constant, not mode={mode}",
            "drop value=..., or use mode=constant",
            arg="value",
            kind="argument error",
        )
    t = c.x
    if mode == "constant" and not t.is_float:
        lo, hi = INT_RANGE.get(t.dtype, (None, None))
        if isinstance(value, float) and not value.is_integer():
            raise c.fail(
                f"pad's value={value} is not a whole number, but the input {t} holds integers",
                "pad integers with a whole number, or `-> cast(f32)` first",
                arg="value",
                kind="argument error",
            )
        if lo is not None and not lo <= value <= hi:
            raise c.fail(
                f"pad's value={value} does not fit the input's dtype {t.dtype} ({lo}..{hi})",
                arg="value",
                kind="argument error",
            )
    out = []
    for i, (lo_, hi_) in enumerate(p):
        size = t.dims[1 + i]
        v = size.as_int()
        if mode == "reflect" and max(lo_, hi_) > 0 and (v is None or max(lo_, hi_) >= v):
            known = "of unknown size" if v is None else f"of size {v}"
            raise c.fail(
                f"pad mode=reflect by {max(lo_, hi_)} on axis {1 + i} {known} in {t}: a mirror image needs the"
                " padding to be smaller than the axis",
                "pad by less than the axis size, use mode=edge, or declare the axis with a number",
                arg="pad",
            )
        if mode == "edge" and max(lo_, hi_) > 0 and v == 0:
            raise c.fail(
                f"pad mode=edge on axis {1 + i} of {t}: that axis is empty, so it has no edge value",
                "use mode=constant",
                arg="pad",
            )
        out.append(size + lo_ + hi_)
    return Inferred((t.with_dims((t.dims[0], *out, t.dims[-1])),), flops=Dim.const(0))


def _pad_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x = xs[0]
    w = [(0, 0), *widths(a["pad"], x.ndim - 2), (0, 0)]
    if a["mode"] == "constant":
        return ctx.jnp.pad(x, w, mode="constant", constant_values=ctx.jnp.asarray(a["value"], dtype=x.dtype))
    return ctx.jnp.pad(x, w, mode=a["mode"])


def _label(a: Any) -> str:
    p = a["pad"]
    text = str(p) if isinstance(p, int) else "[" + ", ".join(str(x) for x in p) + "]"
    extra = (
        f" {a['mode']}" if a["mode"] != "constant" else (f" value={a['value']}" if a["value"] != 0 else "")
    )
    return f"pad {text}{extra}"


register(
    OpDef(
        name="pad",
        family="padding",
        tensors=1,
        args=(
            Arg("pad", "padding", doc="elements per side: an int, one per axis, or [(lo, hi), ...]"),
            Arg("mode", "enum", "constant", choices=MODES),
            Arg("value", "number", 0, doc="the constant, for mode=constant"),
        ),
        infer=_pad,
        lowerings=(Lowering("reference", apply=_pad_apply),),
        label=_label,
        doc="widen the spatial axes of [N, ..., C]: constant (value=0), reflect or edge (LeNet-5: 28×28 → 32×32)",
    )
)
