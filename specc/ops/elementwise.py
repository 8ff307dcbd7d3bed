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
        # a Python number stays weakly typed, so the tensor's dtype wins (the checker's rule)
        return f(a["scalar"], xs[0]) if a["reverse"] else f(xs[0], a["scalar"])

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
