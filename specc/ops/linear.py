"""Linear ops: dense (a matmul over the last axis plus bias) and `@`."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ..ir.types import TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, call_layer, half_dtype, register
from .broadcast import broadcast_dims

DEFAULT_INIT = "glorot_uniform"


def _dense(c: OpCall) -> Inferred:
    c.need_float()  # first: an i32[N] label fed to dense is a dtype mistake, not a missing feature axis
    if c.x.rank < 2:
        raise c.fail(
            f"dense expects a rank-2 input [N, features], got {c.x}", "a scalar per example has shape [N, 1]"
        )
    if c.x.rank > 3:
        # [N, T, F] (a sequence, position-wise) is fine; [N, H, W, C] is almost always a missing flatten
        raise c.fail(
            f"dense expects a rank-2 input [N, features] (or [N, T, features] for sequences), got {c.x}",
            "insert `-> flatten` before dense",
        )
    fin = c.known(c.x.dims[-1], "the input's last axis")
    fout = c["features"]
    params: dict[str, tuple[int, ...]] = {"kernel": (fin, fout)}
    if c["bias"]:
        params["bias"] = (fout,)
    out = (*c.x.dims[:-1], Dim.const(fout))
    return Inferred((c.x.with_dims(out),), params, flops=product(c.x.dims[:-1]) * (2 * fin * fout))


def _dense_build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
    return ctx.nnx.Linear(
        types[0].dims[-1].value,
        a["features"],
        use_bias=a["bias"],
        **half_dtype(types[0], ctx),
        kernel_init=ctx.init(a["init"]),
        bias_init=ctx.init(a["bias_init"], "zeros"),
        rngs=ctx.rngs,
    )


DENSE_LOWERING = Lowering("reference", apply=call_layer, build=_dense_build)

register(
    OpDef(
        name="dense",
        family="linear",
        tensors=1,
        args=(
            Arg("features", "int", min=1),
            Arg("bias", "bool", True),
            Arg("init", "init", None),
            Arg("bias_init", "bias_init", None),
        ),
        infer=_dense,
        lowerings=(DENSE_LOWERING,),
        label=lambda a: f"dense {a['features']}",
        doc="fully connected layer on the last axis: x @ W + b",
    )
)


def _matmul(c: OpCall) -> Inferred:
    a, b = c.inputs
    if a.rank < 1 or b.rank < 1:
        raise c.fail(f"@ needs tensors of rank 1 or more, got {a} @ {b}")
    if a.dtype != b.dtype:
        raise c.fail(
            f"@ needs both sides of one dtype, got {a} @ {b}",
            "convert one side with `cast`",
            kind="type error",
        )
    ad = (Dim.const(1), *a.dims) if a.rank == 1 else a.dims
    bd = (*b.dims, Dim.const(1)) if b.rank == 1 else b.dims
    if ad[-1] != bd[-2]:
        raise c.fail(
            f"@ contracts {a.dims[-1]} with {bd[-2]}: the inner sizes differ in {a} @ {b}",
            "the last axis of the left side must equal the second-to-last of the right side",
        )
    batch = broadcast_dims(ad[:-2], bd[:-2], c, whole=False)
    out = (*batch, ad[-2], bd[-1])
    if a.rank == 1:
        out = out[:-2] + out[-1:]
    if b.rank == 1:
        out = out[:-1]
    return Inferred((TensorType(a.dtype, tuple(out)),), flops=product(out) * ad[-1] * 2)


register(
    OpDef(
        name="matmul",
        family="linear",
        tensors=2,
        args=(),
        infer=_matmul,
        label=lambda a: "@",
        lowerings=(Lowering("reference", apply=lambda m, a, xs, ctx: ctx.jnp.matmul(xs[0], xs[1])),),
        doc="matrix product with NumPy's rules (`a @ b`)",
    )
)
