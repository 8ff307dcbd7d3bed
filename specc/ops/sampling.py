"""Sampling ops: the reparameterisation trick of variational auto-encoders."""

from __future__ import annotations

from typing import Any

from ..ir.dims import product
from ._registry import Inferred, Lowering, OpCall, OpDef, register

# exp(0.5 * logvar) is two, times eps and plus mu two more
SAMPLE_NORMAL_FLOPS_PER_ELEMENT = 4


def _sample_normal(c: OpCall) -> Inferred:
    mu, logvar = c.inputs
    c.need_float(0)
    c.need_float(1)
    if mu.dims != logvar.dims:
        raise c.fail(
            f"sample_normal needs mu and logvar of the same shape, got mu {mu} and logvar {logvar}",
            "both usually come from two dense layers of the same width; they are not broadcast",
        )
    if mu.dtype != logvar.dtype:
        raise c.fail(
            f"sample_normal needs mu and logvar of one dtype, got mu {mu} and logvar {logvar}",
            "convert one with `cast`",
            kind="type error",
        )
    return Inferred((mu,), flops=product(mu.dims) * SAMPLE_NORMAL_FLOPS_PER_ELEMENT)


def _sample_build(a: dict[str, Any], types: tuple[Any, ...], ctx: Any) -> Any:
    # its own fork of the "sample" stream (falls back to the default stream), as nnx.Dropout does for "dropout"
    return ctx.rngs["sample"].fork()


def _sample_apply(stream: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    mu, logvar = xs
    eps = ctx.draws.normal(stream(), mu.shape, mu.dtype)
    return mu + ctx.jnp.exp(logvar / 2) * eps


register(
    OpDef(
        name="sample_normal",
        family="sampling",
        tensors=2,
        args=(),
        infer=_sample_normal,
        lowerings=(Lowering("reference", apply=_sample_apply, build=_sample_build),),
        label=lambda a: "sample N(μ, σ²)",
        doc="mu + exp(logvar / 2) * eps with eps ~ N(0, 1) drawn from the step's RNG",
    )
)
