"""Reductions over axes: mean, sum, max, min, norm and argmax; shape rules for axis lists and keepdims."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..ir.dims import Dim, product
from ..ir.types import TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register

ONE = Dim.const(1)
ZERO = Dim.const(0)


def reduced_axes(c: OpCall) -> tuple[int, ...]:
    """The `axis` argument (None, an int or a list) as sorted non-negative axes; range and duplicates checked."""
    r = c.x.rank
    a = c["axis"]
    if a is None:
        return tuple(range(r))
    given = (a,) if isinstance(a, int) else tuple(a)
    seen: dict[int, int] = {}
    for ax in given:
        if not -r <= ax < r:
            span = f"axes {-r}..{r - 1}" if r else "no axes"
            raise c.fail(
                f"axis {ax} is out of range for {c.x} (rank {r}: {span})",
                "axes count from 0 (the batch) up, or from -1 (the last axis) down",
                arg="axis",
            )
        k = ax % r
        if k in seen:
            twice = f"{ax}" if seen[k] == ax else f"{seen[k]} and {ax}"
            raise c.fail(
                f"{c.op.name} reduces axis {k} twice (as {twice}) in {c.x}", "list each axis once", arg="axis"
            )
        seen[k] = ax
    return tuple(sorted(seen))


def reduced_dims(dims: tuple[Dim, ...], axes: tuple[int, ...], keepdims: bool) -> tuple[Dim, ...]:
    if keepdims:
        return tuple(ONE if i in axes else d for i, d in enumerate(dims))
    return tuple(d for i, d in enumerate(dims) if i not in axes)


def need_elements(c: OpCall, axes: tuple[int, ...]) -> None:
    """max, min and argmax have no value for an empty axis (XLA refuses them; a sum is 0, a mean NaN)."""
    for ax in axes:
        if c.x.dims[ax] == ZERO:
            raise c.fail(
                f"{c.op.name} over axis {ax} of {c.x}: that axis is empty, so there is no {c.op.name}",
                "reduce over axes that hold at least one element",
                arg="axis",
            )


def _reduction(
    out_dtype: Callable[[str], str], flops_per_element: int, nonempty: bool = False
) -> Callable[[OpCall], Inferred]:
    def rule(c: OpCall) -> Inferred:
        axes = reduced_axes(c)
        if nonempty:
            need_elements(c, axes)
        dims = reduced_dims(c.x.dims, axes, c["keepdims"])
        return Inferred(
            (TensorType(out_dtype(c.x.dtype), dims),), flops=product(c.x.dims) * flops_per_element
        )

    return rule


def _same(dtype: str) -> str:
    return dtype


def _float(dtype: str) -> str:
    # jnp.mean / jnp.linalg.norm of integers give float32
    return dtype if dtype in ("f32", "f16", "bf16", "f64") else "f32"


def _summable(dtype: str) -> str:
    # jnp.sum of booleans counts them; bytes are summed in i32 too (JAX would give u32, not a spec dtype)
    return "i32" if dtype in ("bool", "u8") else dtype


def _axes_label(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda a: name if a["axis"] is None else f"{name} axis={a['axis']}"


_AXES_ARGS = (
    Arg("axis", "axes", None, doc="an axis, a list of axes, or none for all"),
    Arg("keepdims", "bool", False),
)


def _reduce_lowering(name: str) -> Lowering:
    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        if name == "sum" and x.dtype in (ctx.jnp.bool_, ctx.jnp.uint8):
            x = x.astype(ctx.jnp.int32)
        return getattr(ctx.jnp, name)(x, axis=a["axis"], keepdims=a["keepdims"])

    return Lowering("reference", apply=apply)


for _name, _dtype, _nonempty, _doc in (
    ("mean", _float, False, "average over the given axes (all by default)"),
    ("sum", _summable, False, "sum over the given axes (all by default)"),
    ("max", _same, True, "largest value over the given axes (all by default)"),
    ("min", _same, True, "smallest value over the given axes (all by default)"),
):
    register(
        OpDef(
            name=_name,
            family="reduction",
            tensors=1,
            args=_AXES_ARGS,
            infer=_reduction(_dtype, 1, _nonempty),
            lowerings=(_reduce_lowering(_name),),
            label=_axes_label(_name),
            doc=_doc,
        )
    )


_reduce_norm = _reduction(_float, 2)  # |x|**ord and an add per element


def _norm(c: OpCall) -> Inferred:
    if c["ord"] <= 0:
        raise c.fail(
            f"norm's 'ord' must be positive, got {c['ord']:g}",
            "ord=2 is the Euclidean length",
            arg="ord",
            kind="argument error",
        )
    return _reduce_norm(c)


def _norm_apply(a: dict[str, Any], x: Any, ctx: Any) -> Any:
    jnp = ctx.jnp
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    p = a["ord"]
    ax, keep = a["axis"], a["keepdims"]
    if p == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=ax, keepdims=keep))
    if p == 1:
        return jnp.sum(jnp.abs(x), axis=ax, keepdims=keep)
    return jnp.sum(jnp.abs(x) ** p, axis=ax, keepdims=keep) ** (1.0 / p)


register(
    OpDef(
        name="norm",
        family="reduction",
        tensors=1,
        args=(_AXES_ARGS[0], Arg("ord", "float", 2.0), _AXES_ARGS[1]),
        infer=_norm,
        lowerings=(Lowering("reference", apply=lambda m, a, xs, ctx: _norm_apply(a, xs[0], ctx)),),
        label=lambda a: f"norm{a['ord']:g}" + ("" if a["axis"] is None else f" axis={a['axis']}"),
        doc="vector p-norm (sum |x|**ord)**(1/ord) over the given axes (all by default)",
    )
)


def _argmax(c: OpCall) -> Inferred:
    if c.x.rank == 0:
        raise c.fail(f"argmax needs an input with at least one axis, got {c.x}")
    axis = c.axis("axis")
    need_elements(c, (axis,))
    dims = reduced_dims(c.x.dims, (axis,), c["keepdims"])
    return Inferred((TensorType("i32", dims),), flops=product(c.x.dims))


register(
    OpDef(
        name="argmax",
        family="reduction",
        tensors=1,
        args=(Arg("axis", "axis", -1), Arg("keepdims", "bool", False)),
        infer=_argmax,
        lowerings=(
            Lowering(
                "reference",
                apply=lambda m, a, xs, ctx: ctx.jnp.argmax(
                    xs[0], axis=a["axis"], keepdims=a["keepdims"]
                ).astype(ctx.jnp.int32),
            ),
        ),
        label=lambda a: f"argmax axis={a['axis']}",
        doc="index (i32) of the largest value along one axis",
    )
)
