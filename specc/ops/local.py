"""Locally connected layers: a convolution whose weights are not shared — one filter bank per output position."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ..ir.types import TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, per_axis, register
from .conv import _window_label, spatial

DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


def _locally_connected(c: OpCall) -> Inferred:
    c.need_rank(
        3,
        4,
        " [N, spatial..., channels] (1D or 2D, channels last)",
        "images are [N, H, W, C]; add a channel axis with reshape([N, 28, 28, 1])",
    )
    c.need_float()
    cin = c.known(c.x.dims[-1], "the channel axis (last)")
    for i in range(1, c.x.rank - 1):
        c.known(c.x.dims[i], f"spatial axis {i} (one filter bank per output position)")
    dims, k, _, _, _ = spatial(c, c["kernel"], c["stride"], None, "valid")
    out = tuple(d.value for d in dims)
    f = c["features"]
    patch = product(Dim.const(x) for x in k).value * cin
    params: dict[str, tuple[int, ...]] = {"kernel": (*out, patch, f)}
    if c["bias"]:
        params["bias"] = (*out, f)
    y = (c.x.dims[0], *dims, Dim.const(f))
    return Inferred((c.x.with_dims(y),), params, flops=product(y) * (2 * patch))


def _build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
    """Keras's LocallyConnected layout: kernel [out..., k·k·C, F] (its initialiser's fans count the positions, as
    Keras's do), bias [out..., F]."""
    x = types[0]
    n = x.rank - 2
    k = per_axis(a["kernel"], n, "kernel", None, "kernel")  # type: ignore[arg-type]
    s = per_axis(a["stride"], n, "stride", None, "stride")  # type: ignore[arg-type]
    out = tuple((d.value - kk) // ss + 1 for d, kk, ss in zip(x.dims[1:-1], k, s, strict=True))
    patch = x.dims[-1].value
    for kk in k:
        patch *= kk
    f32 = ctx.jnp.float32
    params = {
        "kernel": ctx.nnx.Param(ctx.init(a["init"])(ctx.rngs.params(), (*out, patch, a["features"]), f32))
    }
    if a["bias"]:
        params["bias"] = ctx.nnx.Param(
            ctx.init(a["bias_init"], "zeros")(ctx.rngs.params(), (*out, a["features"]), f32)
        )
    return ctx.nnx.Dict(**params)


def locally_connected_apply(x: Any, kernel: Any, bias: Any, window: Any, stride: Any, jax: Any) -> Any:
    """Patches [N, out..., C·k·k] (lax's own order, the same in every lowering) against one kernel per position."""
    n = x.ndim - 2
    k = (window,) * n if isinstance(window, int) else tuple(window)
    s = (stride,) * n if isinstance(stride, int) else tuple(stride)
    patches = jax.lax.conv_general_dilated_patches(x, k, s, "VALID", dimension_numbers=DIMENSION_NUMBERS[n])
    pos = "hw"[:n]
    y = jax.numpy.einsum(f"n{pos}k,{pos}kf->n{pos}f", patches, kernel.astype(x.dtype))
    return y if bias is None else y + bias.astype(x.dtype)


def _apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    bias = m["bias"][...] if a["bias"] else None
    return locally_connected_apply(xs[0], m["kernel"][...], bias, a["kernel"], a["stride"], ctx.jax)


register(
    OpDef(
        name="locally_connected",
        family="local",
        tensors=1,
        args=(
            Arg("features", "int", min=1),
            Arg("kernel", "window"),
            Arg("stride", "window", 1),
            Arg("bias", "bool", True),
            Arg("init", "init", None),
            Arg("bias_init", "bias_init", None),
        ),
        infer=_locally_connected,
        lowerings=(Lowering("reference", apply=_apply, build=_build),),
        label=lambda a: (
            f"local {a['features']}@{_window_label(a['kernel'])}"
            + (f" /{a['stride']}" if a["stride"] != 1 else "")
        ),
        doc="a convolution without weight sharing (Keras LocallyConnected1D/2D), valid padding",
    )
)
