"""Constant tensors written out in the spec: `k = const([[1, 0, -1], [1, 0, -1], [1, 0, -1]])`."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim
from ..ir.types import JNP_NAMES, TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, describe, register
from .padding import INT_RANGE

MAX_ELEMENTS = 65_536  # a literal bigger than this is surely generated; data belongs in the data section


def values_shape(v: Any, c: OpCall) -> tuple[tuple[int, ...], list[Any]]:
    """The shape of a nested list of numbers and its elements in order; ragged or non-numeric input fails."""
    if isinstance(v, Dim) and v.is_const:
        v = v.value
    if isinstance(v, bool | int | float):
        return (), [v]
    if not isinstance(v, list | tuple):
        raise c.fail(
            f"const's values must be a number or a nested list of numbers, got {describe(v)}",
            "write the values as a list: const([[1, 0, -1], [1, 0, -1]])",
            arg="values",
            kind="argument error",
        )
    shapes, flat = [], []
    for item in v:
        s, f = values_shape(item, c)
        shapes.append(s)
        flat.extend(f)
    if len(set(shapes)) > 1:
        raise c.fail(
            f"const's values are ragged: rows of shapes {', '.join(sorted({str(list(s)) for s in shapes}))}",
            "every row of a tensor has the same length",
            arg="values",
            kind="argument error",
        )
    return (len(v), *(shapes[0] if shapes else ())), flat


def _const(c: OpCall) -> Inferred:
    shape, flat = values_shape(c["values"], c)
    if len(flat) > MAX_ELEMENTS:
        raise c.fail(
            f"const holds {len(flat):,} values, more than the {MAX_ELEMENTS:,} a spec may write out",
            "read large tensors as data, or learn them with `param`",
            arg="values",
            kind="value error",
        )
    dtype = c["dtype"]
    if dtype in INT_RANGE:
        lo, hi = INT_RANGE[dtype]
        for x in flat:
            if (isinstance(x, float) and not x.is_integer()) or not lo <= x <= hi:
                raise c.fail(
                    f"const's value {describe(x)} is not a {dtype} ({'0 or 1' if dtype == 'bool' else f'{lo}..{hi}'})",
                    "give dtype=f32 for fractional values",
                    arg="values",
                    kind="value error",
                )
    return Inferred((TensorType(dtype, tuple(Dim.const(s) for s in shape)),))


def plain(v: Any) -> Any:
    """The values as nested lists of Python numbers (sizes bound by `let` included)."""
    if isinstance(v, Dim):
        return v.value
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


register(
    OpDef(
        name="const",
        family="constant",
        tensors=0,
        args=(
            Arg("values", "any", doc="a number or a nested list of numbers"),
            Arg("dtype", "dtype", "f32"),
        ),
        infer=_const,
        lowerings=(
            Lowering(
                "reference",
                apply=lambda m, a, xs, ctx: ctx.jnp.asarray(plain(a["values"]), dtype=JNP_NAMES[a["dtype"]]),
            ),
        ),
        label=lambda a: "const " + "×".join(str(s) for s in _shape(a["values"])),
        doc="a tensor with the given values: const([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) (f32; dtype=i32 ...)",
    )
)


def _shape(v: Any) -> tuple[int, ...]:
    return (len(v), *_shape(v[0])) if isinstance(v, list | tuple) and v else (0,) if v in ([], ()) else ()
