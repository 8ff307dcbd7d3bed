"""`convolve(x, k)`: a convolution with a kernel that is a tensor of the spec (a `const`, a `param`, a computed value),
as the convolution-arithmetic slides draw it — no parameters of its own."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register
from .conv import lax_padding, spatial

DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _convolve(c: OpCall) -> Inferred:
    c.need_rank(
        3,
        5,
        " [N, spatial..., channels] (1D, 2D or 3D, channels last)",
        "images are [N, H, W, C]; add a channel axis with reshape([N, 28, 28, 1])",
    )
    x, k = c.inputs
    c.need_float()
    if k.dtype != x.dtype:
        raise c.fail(
            f"convolve needs the input and the kernel of one dtype, got {x} and {k}",
            "convert one with `cast`",
            kind="type error",
        )
    n = x.rank - 2
    if k.rank not in (n, n + 2):
        raise c.fail(
            f"convolve's kernel for {n} spatial axes is [k{', k' * (n - 1)}] (the same filter on every channel) or"
            f" [k{', k' * (n - 1)}, C_in, C_out], got {k}",
            "write a 3×3 filter as const([[1, 0, -1], [1, 0, -1], [1, 0, -1]])",
        )
    sizes = []
    for i, d in enumerate(k.dims[:n]):
        v = d.as_int()
        if v is None or v < 1:
            raise c.fail(f"convolve needs the kernel's spatial axis {i} to be a positive number, got {k}")
        sizes.append(v)
    cin = x.dims[-1]
    if k.rank == n + 2 and k.dims[-2] != cin:
        raise c.fail(
            f"convolve's kernel {k} takes {k.dims[-2]} input channels but {x} has {cin}",
            "the kernel is [k..., C_in, C_out]",
        )
    cout = cin if k.rank == n else k.dims[-1]
    dims, _, _, _, _ = spatial(c, tuple(sizes), c["stride"], c["dilation"], c["padding"])
    out = (x.dims[0], *dims, cout)
    per_output = product(Dim.const(s) for s in sizes) * (cin if k.rank == n + 2 else 1)
    return Inferred((x.with_dims(out),), flops=product(out) * per_output * 2)


def _apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x, k = xs
    n = x.ndim - 2
    groups = 1
    if k.ndim == n:  # one filter for every channel: a depthwise convolution
        groups = x.shape[-1]
        k = ctx.jnp.broadcast_to(k[..., None, None], (*k.shape, 1, groups))
    stride = (a["stride"],) * n if isinstance(a["stride"], int) else a["stride"]
    dilation = (a["dilation"],) * n if isinstance(a["dilation"], int) else a["dilation"]
    return ctx.lax.conv_general_dilated(
        x,
        k,
        stride,
        lax_padding(a["padding"], n, k.shape[:n], stride, dilation),
        rhs_dilation=dilation,
        dimension_numbers=DIMENSION_NUMBERS[n],
        feature_group_count=groups,
    )


register(
    OpDef(
        name="convolve",
        family="convolve",
        tensors=2,
        args=(
            Arg("stride", "window", 1),
            Arg("padding", "padding", "valid"),
            Arg("dilation", "window", 1),
        ),
        infer=_convolve,
        lowerings=(Lowering("reference", apply=_apply),),
        label=lambda a: "convolve" + (f" /{a['stride']}" if a["stride"] != 1 else ""),
        doc="convolve x [N, ..., C] with a kernel tensor [k..., C_in, C_out], or [k...] for every channel",
    )
)
