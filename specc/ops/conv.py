"""Convolutions (1D/2D/3D by input rank, channels last) and the output-size arithmetic pooling shares."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, call_layer, half_dtype, per_axis, register


def pads(
    padding: Any, n: int, k: tuple[int, ...], stride: tuple[int, ...], dil: tuple[int, ...], call: OpCall
) -> tuple[tuple[int, int], ...] | str:
    """Explicit (lo, hi) per spatial axis, or "same" (depends on the input size; resolved in `out_size`)."""
    if padding == "same":
        return "same"
    if padding == "valid":
        return ((0, 0),) * n
    if padding in ("full", "causal"):
        eff = [(kk - 1) * d for kk, d in zip(k, dil, strict=True)]
        return tuple((e, e) if padding == "full" else (e, 0) for e in eff)
    if isinstance(padding, int):
        return ((padding, padding),) * n
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in per_axis(tuple(padding), n, "padding", call, "padding"))
    if len(padding) != n:
        raise call.fail(
            f"{call.op.name}'s padding has {len(padding)} (lo, hi) pairs but the input has {n} spatial axes ({call.x})",
            f"give {n} pairs",
            arg="padding",
        )
    return tuple(padding)


def out_size(size: Dim, k: int, stride: int, dil: int, pad: tuple[int, int] | str) -> Dim:
    """floor((in + lo + hi - dilation*(k-1) - 1)/stride) + 1; `same` gives ceil(in/stride) as in XLA/Flax."""
    if isinstance(pad, str):  # "same", the only string pads() gives
        return (size + (stride - 1)).floordiv(stride)
    lo, hi = pad
    return (size + lo + hi - dil * (k - 1) - 1).floordiv(stride) + 1


def spatial(
    c: OpCall, window: Any, stride: Any, dilation: Any, padding: Any
) -> tuple[tuple[Dim, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
    """Output spatial dims for a sliding window over axes 1..rank-2, with the size checks users need."""
    n = c.x.rank - 2
    k = per_axis(window, n, "window", c, "kernel" if c.op.arg("kernel") else "window")
    s = per_axis(stride, n, "stride", c, "stride")
    d = per_axis(dilation, n, "dilation", c, "dilation") if dilation is not None else (1,) * n
    p = pads(padding, n, k, s, d, c)
    out = []
    for i in range(n):
        size = c.x.dims[1 + i]
        pi = p if isinstance(p, str) else p[i]
        o = out_size(size, k[i], s[i], d[i], pi)
        if o.known_nonpositive():
            eff = d[i] * (k[i] - 1) + 1
            raise c.fail(
                f"{c.op.name} window {eff} (kernel {k[i]}, dilation {d[i]}) does not fit axis {1 + i} of size {size}"
                f" in {c.x} with padding {padding}: the output would have size {o}",
                "use a smaller kernel or stride, padding=same, or remove a pooling step before it",
            )
        out.append(o)
    return tuple(out), k, s, d, p


def _conv(c: OpCall) -> Inferred:
    c.need_rank(
        3,
        5,
        " [N, spatial..., channels] (1D, 2D or 3D, channels last)",
        "images are [N, H, W, C]; add a channel axis with reshape([N, 28, 28, 1])",
    )
    c.need_float()
    cin = c.known(c.x.dims[-1], "the channel axis (last)")
    g = c["groups"]
    cout = c["features"]
    if cin % g or cout % g:
        raise c.fail(
            f"conv groups={g} must divide both the input channels ({cin}) and the features ({cout})",
            arg="groups",
        )
    dims, k, _, _, _ = spatial(c, c["kernel"], c["stride"], c["dilation"], c["padding"])
    params = {"kernel": (*k, cin // g, cout)}
    if c["bias"]:
        params["bias"] = (cout,)
    out = (c.x.dims[0], *dims, Dim.const(cout))
    macs = product(out) * (product(Dim.const(x) for x in k) * (cin // g))
    return Inferred((c.x.with_dims(out),), params, flops=macs * 2)


def _window_label(k: Any) -> str:
    return "×".join(str(x) for x in k) if isinstance(k, tuple) else f"{k}×{k}"


def _conv_label(a: Any) -> str:
    s = a["stride"]
    return f"conv {a['features']}@{_window_label(a['kernel'])}" + (f" /{s}" if s != 1 else "")


CONV_ARGS = (
    Arg("features", "int", min=1),
    Arg("kernel", "window"),
    Arg("stride", "window", 1),
    Arg("padding", "padding", "valid"),
    Arg("dilation", "window", 1),
    Arg("groups", "int", 1, min=1),
    Arg("bias", "bool", True),
    Arg("init", "init", None),
    Arg("bias_init", "bias_init", None),
)


def lax_padding(a: Any, n: int, window: Any, stride: Any, dilation: Any) -> str | list[tuple[int, int]]:
    """The padding as XLA takes it: "SAME", or explicit (lo, hi) pairs per spatial axis (attrs already checked)."""
    k = per_axis(window, n, "window", None, "window")  # type: ignore[arg-type]
    s = per_axis(stride, n, "stride", None, "stride")  # type: ignore[arg-type]
    d = per_axis(dilation, n, "dilation", None, "dilation")  # type: ignore[arg-type]
    p = pads(a, n, k, s, d, None)  # type: ignore[arg-type]
    return "SAME" if p == "same" else [tuple(x) for x in p]  # type: ignore[misc]


def _conv_build(a: dict[str, Any], types: tuple[Any, ...], ctx: Any) -> Any:
    n = types[0].rank - 2
    return ctx.nnx.Conv(
        types[0].dims[-1].value,
        a["features"],
        kernel_size=per_axis(a["kernel"], n, "kernel", None, "kernel"),  # type: ignore[arg-type]
        strides=a["stride"],
        padding=lax_padding(a["padding"], n, a["kernel"], a["stride"], a["dilation"]),
        kernel_dilation=a["dilation"],
        feature_group_count=a["groups"],
        use_bias=a["bias"],
        **half_dtype(types[0], ctx),
        kernel_init=ctx.init(a["init"]),
        bias_init=ctx.init(a["bias_init"], "zeros"),
        rngs=ctx.rngs,
    )


register(
    OpDef(
        name="conv",
        family="conv",
        tensors=1,
        args=CONV_ARGS,
        infer=_conv,
        label=_conv_label,
        lowerings=(Lowering("reference", apply=call_layer, build=_conv_build),),
        doc="convolution over the spatial axes of [N, ..., C] (1D/2D/3D by rank)",
    )
)


def _conv_transpose(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]")
    c.need_float()
    cin = c.known(c.x.dims[-1], "the channel axis (last)")
    cout = c["features"]
    n = c.x.rank - 2
    k = per_axis(c["kernel"], n, "kernel", c, "kernel")
    s = per_axis(c["stride"], n, "stride", c, "stride")
    dims = []
    for i in range(n):
        size = c.x.dims[1 + i]
        if size == Dim.const(0):
            raise c.fail(
                f"conv_transpose over axis {1 + i} of {c.x}: that axis is empty",
                "its output would have a negative size; give it spatial axes of at least one element",
            )
        # Flax's ConvTranspose: VALID → in*s + max(k - s, 0) (that is (in-1)*s + k when k ≥ s), SAME → in*s
        dims.append(size * s[i] if c["padding"] == "same" else size * s[i] + max(k[i] - s[i], 0))
    params = {"kernel": (*k, cin, cout)}
    if c["bias"]:
        params["bias"] = (cout,)
    out = (c.x.dims[0], *dims, Dim.const(cout))
    macs = product(c.x.dims[:-1]) * (product(Dim.const(x) for x in k) * cin * cout)
    return Inferred((c.x.with_dims(out),), params, flops=macs * 2)


register(
    OpDef(
        name="conv_transpose",
        family="conv",
        tensors=1,
        args=(
            Arg("features", "int", min=1),
            Arg("kernel", "window"),
            Arg("stride", "window", 1),
            Arg("padding", "enum", "valid", choices=("valid", "same")),
            Arg("bias", "bool", True),
            Arg("init", "init", None),
            Arg("bias_init", "bias_init", None),
        ),
        infer=_conv_transpose,
        lowerings=(
            Lowering(
                "reference",
                apply=call_layer,
                build=lambda a, types, ctx: ctx.nnx.ConvTranspose(
                    types[0].dims[-1].value,
                    a["features"],
                    kernel_size=per_axis(a["kernel"], types[0].rank - 2, "kernel", None, "kernel"),  # type: ignore[arg-type]
                    strides=a["stride"],
                    padding=a["padding"].upper(),
                    use_bias=a["bias"],
                    **half_dtype(types[0], ctx),
                    kernel_init=ctx.init(a["init"]),
                    bias_init=ctx.init(a["bias_init"], "zeros"),
                    rngs=ctx.rngs,
                ),
            ),
        ),
        label=lambda a: (
            f"deconv {a['features']}@{_window_label(a['kernel'])}"
            + (f" ×{a['stride']}" if a["stride"] != 1 else "")
        ),
        doc="transposed convolution (upsampling by its stride)",
    )
)
