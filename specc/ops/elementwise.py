"""Binary elementwise ops (`+ - * / **`, add/sub/mul/div/pow/maximum/minimum) with NumPy broadcasting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..ir.dims import product
from ..ir.types import TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register
from .broadcast import broadcast_dims

SYMBOLS = {"add": "+", "sub": "-", "mul": "×", "div": "÷", "pow": "^", "maximum": "max", "minimum": "min"}
OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}


def _binary(c: OpCall) -> Inferred:
    if len(c.inputs) == 1:
        # tensor with a number: the number takes the tensor's dtype (as JAX's weak types do), except that a
        # fractional number (or /) makes an integer or boolean tensor float, and a whole number a boolean one i32
        t = c.x
        s = c["scalar"]
        if s is None:
            raise c.fail(f"{c.op.name} needs two tensors, or a tensor and a number", kind="argument error")
        if c.op.name == "pow" and not c["reverse"] and not t.is_float and isinstance(s, int) and s < 0:
            raise c.fail(
                f"{t} ** {s}: integers to a negative power are not integers",
                "convert first: `cast(x, f32) ** -1`",
                kind="type error",
            )
        if not t.is_float and (isinstance(s, float) or c.op.name == "div"):
            dtype = "f32"
        else:
            dtype = "i32" if t.dtype == "bool" else t.dtype
        bounds = INT_BOUNDS.get(dtype)
        if bounds is not None and isinstance(s, int) and not bounds[0] <= s <= bounds[1]:
            raise c.fail(
                f"the number {s} does not fit in {dtype} ({bounds[0]} to {bounds[1]}), the dtype of {t}",
                "write it as a float (`1e18`), or convert the tensor first: `cast(x, f32)`",
                kind="value error",
            )
        return Inferred((TensorType(dtype, t.dims),), flops=product(t.dims))
    a, b = c.inputs
    if a.dtype != b.dtype:
        hint = (
            "convert one side with `-> cast(f32)`" if a.is_int or b.is_int else "convert one side with `cast`"
        )
        raise c.fail(
            f"{SYMBOLS[c.op.name]} needs both sides of one dtype, got {a} and {b}", hint, kind="type error"
        )
    dims = broadcast_dims(a.dims, b.dims, c)
    if a.dtype == "bool" and c.op.name == "sub":
        raise c.fail(
            f"- is not defined on booleans ({a} and {b})",
            "convert them with `cast(i32)`, or combine masks with * (and) and maximum (or)",
            kind="type error",
        )
    dtype = "f32" if c.op.name == "div" and not a.is_float else a.dtype
    if a.dtype == "bool" and c.op.name == "pow":
        dtype = "i32"
    return Inferred((TensorType(dtype, dims),), flops=product(dims))


# a whole number beside an integer tensor takes its dtype (weak typing), so it must fit in it
INT_BOUNDS = {"i32": (-(2**31), 2**31 - 1), "i64": (-(2**63), 2**63 - 1), "u8": (0, 255)}

JNP_FUNCS = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "true_divide",
    "pow": "power",
    "maximum": "maximum",
    "minimum": "minimum",
}


def _apply_binary(name: str) -> Lowering:
    fname = JNP_FUNCS[name]

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        f = getattr(ctx.jnp, fname)
        if len(xs) == 2:
            return f(xs[0], xs[1])
        # a Python number stays weakly typed, so the tensor's dtype wins (the checker's rule); a whole number
        # beside a float tensor is given as a float, which JAX takes at any size (an int over 2**31 it refuses)
        s = a["scalar"]
        if (
            isinstance(s, int)
            and not isinstance(s, bool)
            and ctx.jnp.issubdtype(xs[0].dtype, ctx.jnp.floating)
        ):
            s = float(s)
        return f(s, xs[0]) if a["reverse"] else f(xs[0], s)

    return Lowering("reference", apply=apply)


def _binary_label(name: str) -> Callable[[Mapping[str, Any]], str]:
    sym = SYMBOLS[name]

    def label(a: Mapping[str, Any]) -> str:
        if a["scalar"] is None:
            return sym
        return f"{a['scalar']:g} {sym} ·" if a["reverse"] else f"· {sym} {a['scalar']:g}"

    return label


for _name in SYMBOLS:
    register(
        OpDef(
            name=_name,
            family="elementwise",
            tensors=(1, 2),
            # scalar/reverse carry a literal operand: `2 * x` is mul(x, scalar=2, reverse=true)
            args=(Arg("scalar", "number", None), Arg("reverse", "bool", False)),
            infer=_binary,
            lowerings=(_apply_binary(_name),),
            label=_binary_label(_name),
            doc=f"elementwise {_name} with NumPy broadcasting",
        )
    )
