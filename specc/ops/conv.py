"""Convolutions (1D/2D/3D by input rank, channels last) and the output-size arithmetic pooling shares."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from ..errors import counted
from ..ir.dims import Dim, product
from ._registry import (
    Arg,
    Inferred,
    Lowering,
    OpCall,
    OpDef,
    OpError,
    call_layer,
    half_dtype,
    never,
    per_axis,
    register,
)


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
            f"{call.op.name}'s padding has {counted(len(padding), '(lo, hi) pair')} but the input has "
            f"{counted(n, 'spatial axis', 'spatial axes')} ({call.x})",
            f"give {counted(n, '(lo, hi) pair')}, one per spatial axis",
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
        common = math.gcd(cin, cout)
        fits = [d for d in range(1, common + 1) if common % d == 0]
        shown = ", ".join(map(str, fits)) if len(fits) <= 10 else f"the divisors of {common}"
        raise c.fail(
            f"conv groups={g} must divide both the input channels ({cin}) and the features ({cout})",
            f"groups that divide both {cin} and {cout}: {shown} (a depthwise conv: groups = features = channels)",
            arg="groups",
        )
    try:
        dims, k, _, _, _ = spatial(c, c["kernel"], c["stride"], c["dilation"], c["padding"])
    except OpError as e:
        if cout == cin and isinstance(c["kernel"], int):  # conv(3, 64, 3): PyTorch's Conv2d(in, out, k)
            e.hint = (
                f"conv's arguments are (features, kernel, stride) and it reads the input channels from the input: "
                f"PyTorch's Conv2d({cin}, {c['kernel']}, {c['stride']}) is conv({c['kernel']}, {c['stride']})"
            )
        raise
    params = {"kernel": (*k, cin // g, cout)}
    if c["bias"]:
        params["bias"] = (cout,)
    out = (c.x.dims[0], *dims, Dim.const(cout))
    macs = product(out) * (product(Dim.const(x) for x in k) * (cin // g))
    return Inferred((c.x.with_dims(out),), params, flops=macs * 2, warnings=_torch_order(c, cin, cout))


def _torch_order(c: OpCall, cin: int, cout: int) -> tuple[OpError, ...]:
    """`conv(3, 64, 3)` on an RGB image: PyTorch's Conv2d(in, out, kernel) read as 3 features, a 64×64 kernel
    and stride 3. Valid where the image is large enough, so a warning: features equal to the input channels with
    a kernel no lecture network uses (AlexNet's 11 is the largest; ≥ 16 here)."""
    k = c["kernel"]
    if cout != cin or not isinstance(k, int) or k < 16:
        return ()
    return (
        OpError(
            "warning",
            f"conv({cout}, {k}, {c['stride']}) is {cout} features from a {k}×{k} kernel with stride {c['stride']}; "
            f"PyTorch's Conv2d({cin}, {k}, {c['stride']}) order (in, out, kernel)?",
            f"conv's arguments are (features, kernel, stride) and the input channels come from the input: "
            f"PyTorch's Conv2d({cin}, {k}, {c['stride']}) is conv({k}, {c['stride']})",
            arg="kernel",
        ),
    )


def _window_label(k: Any) -> str:
    return "×".join(str(x) for x in k) if isinstance(k, tuple) else f"{k}×{k}"


def _conv_label(a: Any) -> str:
    """`conv 32@5×5 /2`, then the groups and the dilation when not 1: a depthwise conv (`conv 24@3×3 /2 g=24`) and
    an atrous one (`conv 64@3×3 d=2`) must not draw like a full conv."""
    s, g = a["stride"], a["groups"]
    d = a["dilation"] if isinstance(a["dilation"], tuple) else (a["dilation"],)
    return (
        f"conv {a['features']}@{_window_label(a['kernel'])}"
        + (f" /{s}" if s != 1 else "")
        + (f" g={g}" if g != 1 else "")
        + (f" d={'×'.join(map(str, d))}" if set(d) != {1} else "")
    )


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


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """XLA's SAME padding of one axis (dilation 1): ceil(in/s) outputs, the padding split low-first."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv_pads(a: dict[str, Any], shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """(lo, hi) per spatial axis of a concrete input to a conv with dilation 1 (`same` resolved as XLA does)."""
    n = len(shape) - 2
    k = per_axis(a["kernel"], n, "kernel", None, "kernel")  # type: ignore[arg-type]
    s = per_axis(a["stride"], n, "stride", None, "stride")  # type: ignore[arg-type]
    pad = lax_padding(a["padding"], n, k, s, 1)
    if isinstance(pad, str):
        return [same_pads(shape[1 + i], k[i], s[i]) for i in range(n)]
    return list(pad)


def plain_2d(a: dict[str, Any], types: tuple[Any, ...]) -> tuple[int, int, int, int, int] | None:
    """(kernel h, kernel w, map h, map w, channels in) of a 2-D f32 conv with groups=1 and dilation 1 over a
    known map, else None: the forms the CPU lowerings below rewrite."""
    x = types[0]
    if x.rank != 4 or x.dtype != "f32" or a["groups"] != 1 or a["dilation"] not in (1, (1, 1)):
        return None
    sizes = [d.as_int() for d in x.dims[1:]]
    if any(v is None for v in sizes):
        return None
    k = per_axis(a["kernel"], 2, "kernel", None, "kernel")  # type: ignore[arg-type]
    return k[0], k[1], sizes[0], sizes[1], sizes[2]  # type: ignore[return-value]


def _no_padding(a: dict[str, Any], kh: int, kw: int, h: int, w: int) -> bool:
    if a["padding"] == "same":  # pads nothing only for a 1×1 kernel
        return kh == kw == 1
    pad = a["padding"]
    if pad == "valid":
        return True
    flat = (
        [v for p in pad for v in (p if isinstance(p, tuple) else (p,))] if isinstance(pad, tuple) else [pad]
    )
    return all(v == 0 for v in flat)


def _is_dense(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A kernel as large as its unpadded map has one output position: the conv is a dense layer."""
    f = plain_2d(a, types)
    return f is not None and f[:2] == f[2:4] and _no_padding(a, *f[:4])


def _covers_map(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    return platform == "cpu" and _is_dense(a, types)


def _is_plain_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    return plain_2d(a, types) is not None


def _im2col_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """XLA:CPU's rule (bench/lowering_rules.py; figures in docs/benchmarks.md): XLA runs a conv's gradients as odd-
    shaped convolutions that its Eigen path does slowly when there are few input channels or few output positions;
    there slices + one matmul take 0.2-0.6 of the time. Over larger maps with more channels (LeNet's C3, a ResNet's
    3×3 blocks, 5×5 `same` convs) im2col moves more memory than it saves arithmetic and takes 1.1-2.5×. The few-
    channel case takes the kernel-major form (`_few_channels`), which comes first."""
    f = plain_2d(a, types) if platform == "cpu" else None
    if f is None or min(f[0], f[1]) < 3:
        return False
    kh, kw, h, w, cin = f
    s = per_axis(a["stride"], 2, "stride", None, "stride")  # type: ignore[arg-type]
    (t, b), (left, right) = conv_pads(a, (1, h, w, cin))
    positions = ((h + t + b - kh) // s[0] + 1) * ((w + left + right - kw) // s[1] + 1)
    return cin <= 4 or positions <= 16


def _few_channels(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """The kernel-major im2col (`_im2col_t_apply`) where im2col wins with ≤ 4 input channels: an image's first conv.
    Measured in the whole train step, split over 2 devices, interleaved in one process: lecture convnet 32.4 → 28.0
    ms, LeNet-5 19.1 → 18.1 ms, the train step's compilation 0.2-0.5 s shorter; with more channels (the
    convnet's C2) the transposed input costs what the layout saves (30.8 → 29.8 ms), so those keep im2col."""
    return _im2col_wins(a, types, platform) and types[0].dims[-1].as_int() <= 4


def _few_features(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """`_few_channels` in a forward-only program: where XLA's forward is slow for few output features too (LeNet-5's
    C1, 6 features: 0.65 of its time; a ResNet stem's 16: 0.55). With more (the lecture convnet's C1, 32: 0.95) the
    reference's forward is as fast and compiles in a quarter of the time (its 25 patch slices: 0.44 s against 0.11 s)
    (`bench/lowering_rules.py --forward`)."""
    return _few_channels(a, types, platform) and a["features"] <= 16


def _is_depthwise_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A 2-D f32 depthwise conv: groups = input channels = features (> 1: one filter per channel), dilation 1."""
    x = types[0]
    if x.rank != 4 or x.dtype != "f32" or a["dilation"] not in (1, (1, 1)):
        return False
    cin = x.dims[-1].as_int()
    return cin is not None and cin > 1 and a["groups"] == cin and a["features"] == cin


def _depthwise_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """XLA:CPU runs a grouped convolution's gradients as a slow generic loop: a MobileNetV2 3×3 depthwise conv at
    batch 8, forward and gradients, took 0.2-1.6 s where the shifted form takes 6-250 ms (docs/benchmarks.md)."""
    return platform == "cpu" and _is_depthwise_2d(a, types)


def _depthwise_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """A depthwise conv as kh·kw shifted multiply-adds: every kernel offset's strided slice of the (padded) input
    times that offset's per-channel weights, summed in row-major offset order. Element-wise, so XLA fuses the
    forward and both gradients (a weight gradient is one reduction per offset); values as the convolution's up to
    the order of the sum."""
    x, k, s = _padded(a, xs[0], ctx)
    outs = [(x.shape[1 + i] - k[i]) // s[i] + 1 for i in range(2)]
    kernel = m.kernel[...]  # [kh, kw, 1, C]
    y = None
    for i, j in itertools.product(range(k[0]), range(k[1])):
        piece = ctx.lax.slice(
            x,
            (0, i, j, 0),
            (x.shape[0], i + (outs[0] - 1) * s[0] + 1, j + (outs[1] - 1) * s[1] + 1, x.shape[-1]),
            (1, *s, 1),
        )
        term = piece * kernel[i, j, 0]
        y = term if y is None else y + term
    return y if m.bias is None else y + m.bias[...]


def _is_grouped(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """An f32 grouped conv (groups > 1) that the depthwise form does not take."""
    return a["groups"] > 1 and types[0].dtype == "f32" and not _is_depthwise_2d(a, types)


# groups beyond this stay one convolution: each group is its own convolution to compile
MAX_SPLIT_GROUPS = 64


def _grouped_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """XLA:CPU runs a grouped convolution as a slow generic loop: forward and both gradients at batch 16, 3×3
    (docs/benchmarks.md), ResNeXt's 128 channels in 32 groups on 28×28 6.0 s against 0.10 s as 32 convolutions,
    AlexNet's 2 groups 985 against 118 ms; the dense 128 → 128 conv, 32× the arithmetic, takes 0.2 s."""
    return platform == "cpu" and _is_grouped(a, types) and a["groups"] <= MAX_SPLIT_GROUPS


def _grouped_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """A grouped conv as `groups` ordinary convolutions, group i's input channels with its block of the kernel's
    output features, concatenated on channels: XLA's feature_group_count, written out."""
    x, kernel = xs[0], m.kernel[...]  # kernel [k..., cin / groups, cout]
    n, g = x.ndim - 2, a["groups"]
    cpg, opg = x.shape[-1] // g, kernel.shape[-1] // g
    letters = "DHW"[-n:]
    ys = [
        ctx.lax.conv_general_dilated(
            x[..., i * cpg : (i + 1) * cpg],
            kernel[..., i * opg : (i + 1) * opg],
            window_strides=per_axis(a["stride"], n, "stride", None, "stride"),  # type: ignore[arg-type]
            padding=lax_padding(a["padding"], n, a["kernel"], a["stride"], a["dilation"]),
            rhs_dilation=per_axis(a["dilation"], n, "dilation", None, "dilation"),  # type: ignore[arg-type]
            dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"),
        )
        for i in range(g)
    ]
    y = ctx.jnp.concatenate(ys, axis=-1)
    return y if m.bias is None else y + m.bias[...]


def _strides(a: dict[str, Any]) -> tuple[int, int]:
    return per_axis(a["stride"], 2, "stride", None, "stride")  # type: ignore[arg-type,return-value]


def _is_pointwise_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A plain 2-D conv (`plain_2d`) with a 1×1 kernel and no padding, at any stride: a matmul over channels."""
    f = plain_2d(a, types)
    return f is not None and f[:2] == (1, 1) and _no_padding(a, *f[:4])


def _pointwise_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """XLA:CPU runs a 1×1 conv's weight gradient as a convolution with the whole map as its window: 4-30× the
    matmul's time at every size measured (ResNet-50's 56×56×64 → 256 at batch 25: 916 against 29 ms)."""
    return platform == "cpu" and _is_pointwise_2d(a, types)


def _pointwise_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """A 1×1 conv as the matmul it is: the input (every s-th row and column for stride s) times the kernel
    [1, 1, cin, cout] as [cin, cout]; both gradients are matmuls too."""
    x, (sh, sw) = xs[0], _strides(a)
    return _matmul(m, x[:, ::sh, ::sw] if (sh, sw) != (1, 1) else x, ctx)


# XLA:CPU's weight gradient of a stride-1 conv falls off a cliff over a large input with many channels (3×3, batch
# 16, 56×56×64: 0.5-0.6 s against the forward's 0.05 s; docs/benchmarks.md): from these sizes on, one device's
# share of the input, the shifted form below takes 0.15-0.55 of it. Below them it ties or loses. A strided conv's
# (3×3, stride 2) took 0.3-0.7 of XLA's alone from 1.5M input values on, but tied or lost in the small ResNet's
# whole step at 0.3M a device: strided ones take the form from 1M values a device.
SHIFTED_WGRAD_MIN_VALUES = 1 << 21
SHIFTED_WGRAD_STRIDED_MIN_VALUES = 1 << 20
SHIFTED_WGRAD_MIN_CHANNELS = 32


def _is_shiftable_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A plain 2-D conv (`plain_2d`) with a kernel larger than 1×1 (a 1×1 conv's gradient is a matmul)."""
    f = plain_2d(a, types)
    return f is not None and f[0] * f[1] > 1


def _shifted_wgrad_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """A strided conv; a stride-1 one with many channels in and out. The input's size decides when traced
    (`_shifted_wgrad_apply`)."""
    if platform != "cpu" or not _is_shiftable_2d(a, types):
        return False
    if _strides(a) != (1, 1):
        return True
    return min(types[0].dims[-1].as_int(), a["features"]) >= SHIFTED_WGRAD_MIN_CHANNELS


def _shifted_wgrad_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """The reference convolution, its weight gradient computed as matmuls over shifted rows of the padded input
    (`_shifted_wgrad_conv`) once one device's share of the input has SHIFTED_WGRAD_MIN_VALUES values (stride 1)
    or SHIFTED_WGRAD_STRIDED_MIN_VALUES (strided); a smaller input (known only when traced: the batch) runs the
    reference as it is."""
    x, strides = xs[0], _strides(a)
    least = SHIFTED_WGRAD_MIN_VALUES if strides == (1, 1) else SHIFTED_WGRAD_STRIDED_MIN_VALUES
    if x.size // ctx.shards < least:
        ctx.reference_instead()
        return call_layer(m, a, xs, ctx)
    y = _shifted_wgrad_conv(ctx, tuple(conv_pads(a, x.shape)), strides)(x, m.kernel[...])
    return y if m.bias is None else y + m.bias[...]


def _shifted_wgrad_conv(ctx: Any, pairs: tuple[tuple[int, int], ...], strides: tuple[int, int]) -> Any:
    """(x [N, H, W, C], kernel [kh, kw, C, cout]) → XLA's convolution with padding `pairs` and `strides`, and its
    input gradient XLA's own; the weight gradient written out. Kernel row i = s·u + p reads phase p of the padded
    input's rows (every s-th from p) shifted by u, and alike for columns. Each phase [N, Hq, Wq, C] (Hq = out h +
    the largest u) and the output gradient padded with zeros to [N, Hq, Wq, cout], both flattened to rows, make
    offset (u, v) the row shift u·Wq + v: dW[i, j] = phaseᵀ[shift : shift + L] · G[:L], one [C, L] · [L, cout]
    matmul an offset over contiguous rows (a shift that wraps into the next row or image meets a zero of G). For
    stride 1 the one phase is the padded input. Sums in another order than XLA's."""
    jax, jnp, lax = ctx.jax, ctx.jnp, ctx.lax

    def grads(conv: Callable[[Any, Any], Any], x: Any, kernel: Any, g: Any) -> tuple[Any, Any]:
        (dx,) = jax.vjp(lambda x: conv(x, kernel), x)[1](g)
        kh, kw, cin, cout = kernel.shape
        (sh, sw), (n, oh, ow) = strides, g.shape[:3]
        uh, uw = (kh - 1) // sh, (kw - 1) // sw  # the largest shift a phase takes
        hq, wq = oh + uh, ow + uw
        # padded as the conv pads it, then cut or zero-filled at the end to exactly sh·hq × sw·wq (a negative pad cuts)
        (th, _), (tw, _) = pairs
        ends = [(th, sh * hq - x.shape[1] - th, 0), (tw, sw * wq - x.shape[2] - tw, 0)]
        xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *ends, (0, 0, 0)])
        gp = jnp.pad(g, [(0, 0), (0, uh), (0, uw), (0, 0)]).reshape(n * hq * wq, cout)
        span = n * hq * wq - uh * wq - uw
        parts = {}
        for p, q in itertools.product(range(min(sh, kh)), range(min(sw, kw))):
            rows = xp[:, p::sh, q::sw].reshape(n * hq * wq, cin)
            for u, v in itertools.product(range((kh - 1 - p) // sh + 1), range((kw - 1 - q) // sw + 1)):
                shift = u * wq + v
                parts[sh * u + p, sw * v + q] = lax.dot_general(
                    rows[shift : shift + span], gp[:span], (((0,), (0,)), ((), ()))
                )
        dk = jnp.stack([parts[i, j] for i, j in itertools.product(range(kh), range(kw))])
        return dx, dk.reshape(kh, kw, cin, cout).astype(kernel.dtype)

    return _conv_with_grads(ctx, pairs, strides, grads)


def _conv_with_grads(
    ctx: Any,
    pairs: tuple[tuple[int, int], ...],
    strides: tuple[int, int],
    grads: Callable[[Callable[[Any, Any], Any], Any, Any, Any], tuple[Any, Any]],
) -> Any:
    """(x [N, H, W, C], kernel [kh, kw, C, cout]) → XLA's convolution with padding `pairs` and `strides`, its
    gradients `grads(conv, x, kernel, output gradient)` → (dx, dkernel): one written out, the other XLA's own
    through `conv`."""
    jax, lax = ctx.jax, ctx.lax
    dims = ("NHWC", "HWIO", "NHWC")

    def conv(x: Any, kernel: Any) -> Any:
        return lax.conv_general_dilated(x, kernel, strides, pairs, dimension_numbers=dims)

    @jax.custom_vjp
    def written_out(x: Any, kernel: Any) -> Any:
        return conv(x, kernel)

    def forward(x: Any, kernel: Any) -> tuple[Any, tuple[Any, Any]]:
        return conv(x, kernel), (x, kernel)

    def backward(saved: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
        return grads(conv, *saved, g)

    written_out.defvjp(forward, backward)
    return written_out


# XLA:CPU runs a stride-1 conv's input gradient as a convolution of the output gradient with the flipped kernel,
# which its Eigen path does slowly when that convolution has few output features (the conv's input channels):
# LeNet-5's C3 (6 → 16, 5×5 on 14×14) 2.07 ms on one core, written out (`_col2im_igrad_conv`) 0.63 ms. Written out,
# the gradient is summed into place over the padded input once a kernel offset, which pays while that stays in a
# core's cache: over 512 KiB a device (a 3×3 8 → 16 conv on 28×28 at 50 a device, ≈ 1.3 MiB) or with 16 input channels
# it ties or loses (docs/benchmarks.md). With more than 16 features either side XLA uses YNNPACK.
COL2IM_MAX_CHANNELS = 12
COL2IM_MAX_FEATURES = 16
COL2IM_MAX_BYTES = 512 << 10


def _is_stride1_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A plain 2-D conv (`plain_2d`) of stride 1."""
    return plain_2d(a, types) is not None and _strides(a) == (1, 1)


def _col2im_igrad_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """A stride-1 conv with few input channels and features; the padded input's size a device decides when traced
    (`_col2im_igrad_apply`)."""
    if platform != "cpu" or not _is_stride1_2d(a, types):
        return False
    return types[0].dims[-1].as_int() <= COL2IM_MAX_CHANNELS and a["features"] <= COL2IM_MAX_FEATURES


def _col2im_igrad_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """The reference convolution with its input gradient written out (`_col2im_igrad_conv`) while one device's
    share of the padded input takes at most COL2IM_MAX_BYTES; a larger one (known only when traced: the batch) runs
    the reference as it is."""
    x = xs[0]
    pairs = tuple(conv_pads(a, x.shape))
    padded = (x.shape[0] // ctx.shards) * x.shape[-1] * x.dtype.itemsize
    for size, (lo, hi) in zip(x.shape[1:3], pairs, strict=True):
        padded *= size + lo + hi
    if padded > COL2IM_MAX_BYTES:
        ctx.reference_instead()
        return call_layer(m, a, xs, ctx)
    y = _col2im_igrad_conv(ctx, pairs)(x, m.kernel[...])
    return y if m.bias is None else y + m.bias[...]


def _col2im_igrad_conv(ctx: Any, pairs: tuple[tuple[int, int], ...]) -> Any:
    """(x [N, H, W, C], kernel [kh, kw, C, cout]) → XLA's stride-1 convolution with padding `pairs`, its weight
    gradient XLA's own; the input gradient written out: one matmul, the output gradient times the kernel's transpose
    (each output position's share [kh, kw, C] of the padded input's gradient), then each kernel offset's shares
    added into place (col2im) and the padding cut off. The adds update one buffer in place: as a sum of padded
    copies XLA fused them into the gradient's users, and a pooling's gradient there computed each sum four times."""
    jax, jnp, lax = ctx.jax, ctx.jnp, ctx.lax

    def grads(conv: Callable[[Any, Any], Any], x: Any, kernel: Any, g: Any) -> tuple[Any, Any]:
        (dk,) = jax.vjp(lambda k: conv(x, k), kernel)[1](g)
        kh, kw = kernel.shape[:2]
        shares = jnp.einsum("nhwo,ijco->nhwijc", g, kernel)
        n, oh, ow = g.shape[:3]
        dxp = jnp.zeros((n, oh + kh - 1, ow + kw - 1, kernel.shape[2]), g.dtype)
        # in place: a sum of padded copies would be fused into the gradient's users
        for i, j in itertools.product(range(kh), range(kw)):
            dxp = dxp.at[:, i : i + oh, j : j + ow].add(shares[:, :, :, i, j])
        # the padded input's gradient, cut (or zero-filled: negative pads) to x's
        (t, b), (left, right) = pairs
        dx = lax.pad(dxp, jnp.zeros((), g.dtype), [(0, 0, 0), (-t, -b, 0), (-left, -right, 0), (0, 0, 0)])
        return dx.astype(x.dtype), dk

    return _conv_with_grads(ctx, pairs, (1, 1), grads)


def _matmul(m: Any, x: Any, ctx: Any) -> Any:
    """x [..., k·k·cin] times the conv's kernel [k, k, cin, cout] flattened in the same (row, col, channel) order."""
    kernel = m.kernel[...]
    y = ctx.jnp.matmul(x, kernel.reshape(-1, kernel.shape[-1]))
    return y if m.bias is None else y + m.bias[...]


def im2col(x: Any, k: tuple[int, ...], s: tuple[int, ...], ctx: Any) -> Any:
    """Every kernel offset's strided slice of x [N, H, W, C] (already padded), concatenated on channels in (row,
    column, channel) order: [N, out h, out w, kh·kw·C]."""
    outs = [(x.shape[1 + i] - k[i]) // s[i] + 1 for i in range(2)]
    cols = [
        ctx.lax.slice(
            x,
            (0, *off, 0),
            (x.shape[0], *(o + (n - 1) * st + 1 for o, n, st in zip(off, outs, s, strict=True)), x.shape[-1]),
            (1, *s, 1),
        )
        for off in itertools.product(*(range(kk) for kk in k))
    ]
    return ctx.jnp.concatenate(cols, axis=-1) if len(cols) > 1 else cols[0]


def _padded(a: dict[str, Any], x: Any, ctx: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    """A 2-D conv's input padded as the conv pads it, its kernel size and its stride: what im2col slices."""
    k = per_axis(a["kernel"], 2, "kernel", None, "kernel")  # type: ignore[arg-type]
    s = per_axis(a["stride"], 2, "stride", None, "stride")  # type: ignore[arg-type]
    pairs = conv_pads(a, x.shape)
    if any(p != (0, 0) for p in pairs):
        x = ctx.jnp.pad(x, [(0, 0), *pairs, (0, 0)])
    return x, k, s


def _im2col_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """Every kernel offset's strided slice of the (padded) input, concatenated on channels, times the kernel."""
    x, k, s = _padded(a, xs[0], ctx)
    return _matmul(m, im2col(x, k, s, ctx), ctx)


def _im2col_t_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """im2col with the patch matrix kernel-major: every kernel offset's strided slice of the (padded) input, channels
    moved first, stacked into [kh·kw·cin, N·out h·out w], and the output computed as kernelᵀ · patches. XNNPACK
    wants the contracted axis innermost in both operands: with channels-last patches the weight gradient (patchesᵀ ·
    output gradient) makes XLA transpose the whole output gradient and the forward is a K = kh·kw·cin, N = cout
    sliver of a matmul; here the patches are built from whole rows of the image, the forward's contracted axis is
    the kernel's, and the weight gradient reads the output gradient as it lies. Values as im2col's."""
    jnp, lax = ctx.jnp, ctx.lax
    x, k, s = _padded(a, xs[0], ctx)
    n, cin = x.shape[0], x.shape[-1]
    outs = [(x.shape[1 + i] - k[i]) // s[i] + 1 for i in range(2)]
    xt = jnp.moveaxis(x, -1, 0)  # [cin, N, H, W]: a bitcast for one channel
    rows = [
        lax.slice(
            xt,
            (0, 0, *off),
            (cin, n, *(o + (q - 1) * st + 1 for o, q, st in zip(off, outs, s, strict=True))),
            (1, 1, *s),
        )
        for off in itertools.product(*(range(kk) for kk in k))
    ]
    patches = jnp.stack(rows).reshape(k[0] * k[1] * cin, -1)  # (row, column, channel): the kernel's own order
    kernel = m.kernel[...]
    y = _kernel_major_matmul(ctx)(kernel.reshape(-1, kernel.shape[-1]), patches)
    y = y.reshape(n, outs[0], outs[1], -1)
    return y if m.bias is None else y + m.bias[...]


def _kernel_major_matmul(ctx: Any) -> Any:
    """(flat kernel [K, cout], patches [K, P]) → [P, cout], with its gradients written out so that every matmul has
    its contracted axis innermost or its operand in [K, N] order: left to JAX's transpose rule, XLA folds the
    output's transpose into the weight gradient and runs it as its own (naive) dot over the outer axis (the
    convnet: 1.8 ms of a 20 ms step per device). Convnet step 19.9-25.4 → 18.7-22.7 ms, LeNet-5 19.3-19.8 →
    18.1-18.2 ms (interleaved A/B, split over 2 devices), compilation 0.3-0.9 s shorter."""
    jax, lax = ctx.jax, ctx.lax

    def contract(a: int, b: int) -> Any:
        return ((a,), (b,)), ((), ())

    @jax.custom_vjp
    def matmul(flat: Any, patches: Any) -> Any:
        return lax.dot_general(flat, patches, contract(0, 0)).T

    def forward(flat: Any, patches: Any) -> tuple[Any, tuple[Any, Any]]:
        return matmul(flat, patches), (flat, patches)

    def backward(saved: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
        flat, patches = saved
        return lax.dot_general(patches, g, contract(1, 0)), lax.dot_general(flat, g, contract(1, 1))

    matmul.defvjp(forward, backward)
    return matmul


def _dense_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x = xs[0]
    return _matmul(m, x.reshape(x.shape[0], 1, 1, -1), ctx)


def _channels_first_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """For export: the convolution written channels-first (NCHW/OIHW) between explicit transposes, which ONNX
    converters map to one Conv as it is; jax2onnx's own NHWC handling misplaces a transpose in ResNet-18."""
    x = xs[0]
    n = x.ndim - 2
    to_first = (0, n + 1, *range(1, n + 1))
    to_last = (0, *range(2, n + 2), 1)
    kernel = m.kernel[...]
    k_first = ctx.jnp.transpose(kernel, (n + 1, n, *range(n)))  # [k..., cin, cout] → [cout, cin, k...]
    letters = "DHW"[-n:] if n <= 3 else None
    assert letters is not None
    y = ctx.lax.conv_general_dilated(
        ctx.jnp.transpose(x, to_first),
        k_first,
        window_strides=per_axis(a["stride"], n, "stride", None, "stride"),  # type: ignore[arg-type]
        padding=lax_padding(a["padding"], n, a["kernel"], a["stride"], a["dilation"]),
        rhs_dilation=per_axis(a["dilation"], n, "dilation", None, "dilation"),  # type: ignore[arg-type]
        dimension_numbers=("NC" + letters, "OI" + letters, "NC" + letters),
        feature_group_count=a["groups"],
    )
    y = ctx.jnp.transpose(y, to_last)
    return y if m.bias is None else y + m.bias[...]


register(
    OpDef(
        name="conv",
        family="conv",
        tensors=1,
        args=CONV_ARGS,
        infer=_conv,
        label=_conv_label,
        lowerings=(
            Lowering("reference", apply=call_layer, build=_conv_build),
            Lowering("dense", apply=_dense_apply, when=_covers_map, applies=_is_dense),
            Lowering("depthwise", apply=_depthwise_apply, when=_depthwise_wins, applies=_is_depthwise_2d),
            Lowering("grouped", apply=_grouped_apply, when=_grouped_wins, applies=_is_grouped),
            Lowering(
                "im2col_t",
                apply=_im2col_t_apply,
                when=_few_channels,
                applies=_is_plain_2d,
                forward=_few_features,
            ),
            # its wins are in the gradients; forward only, the lecture convnet's C2 alone is 0.77 of the reference
            # but the whole forward ran faster without it (bench/lowering_rules.py --forward; docs/benchmarks.md)
            Lowering("im2col", apply=_im2col_apply, when=_im2col_wins, applies=_is_plain_2d, forward=never),
            Lowering("pointwise", apply=_pointwise_apply, when=_pointwise_wins, applies=_is_pointwise_2d),
            Lowering(
                "shifted_wgrad",
                apply=_shifted_wgrad_apply,
                when=_shifted_wgrad_wins,
                applies=_is_shiftable_2d,
                forward=never,  # its forward is the reference's
            ),
            Lowering(
                "col2im_igrad",
                apply=_col2im_igrad_apply,
                when=_col2im_igrad_wins,
                applies=_is_stride1_2d,
                forward=never,  # its forward is the reference's
            ),
            Lowering(
                "channels_first",
                apply=_channels_first_apply,
                when=lambda a, t, platform: platform == "export",
            ),
        ),
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
    crop = transpose_crop(c["padding"], k, c)
    extra = output_padding(c["output_padding"], s, crop, c)
    dims = []
    for i in range(n):
        size = c.x.dims[1 + i]
        if size == Dim.const(0):
            raise c.fail(
                f"conv_transpose over axis {1 + i} of {c.x}: that axis is empty",
                "its output would have a negative size; give it spatial axes of at least one element",
            )
        if crop is not None:  # PyTorch's ConvTranspose: (in - 1)·s + k - 2p + output_padding
            cropped = (size - 1) * s[i] + (k[i] - 2 * crop[i] + extra[i])
            if (n_out := cropped.as_int()) is not None and n_out < 1:
                raise c.fail(
                    f"conv_transpose over axis {1 + i} of {c.x}: padding {crop[i]} crops the whole output "
                    f"((in - 1)·stride + kernel - 2·padding = {n_out})",
                    "use a smaller padding, or a larger input",
                    arg="padding",
                )
            dims.append(cropped)
        else:  # Flax's ConvTranspose: VALID → in*s + max(k - s, 0) (that is (in-1)*s + k when k ≥ s), SAME → in*s
            dims.append(size * s[i] if c["padding"] == "same" else size * s[i] + max(k[i] - s[i], 0))
    params = {"kernel": (*k, cin, cout)}
    if c["bias"]:
        params["bias"] = (cout,)
    out = (c.x.dims[0], *dims, Dim.const(cout))
    macs = product(c.x.dims[:-1]) * (product(Dim.const(x) for x in k) * cin * cout)
    return Inferred((c.x.with_dims(out),), params, flops=macs * 2)


def output_padding(
    value: int | tuple[int, ...], s: tuple[int, ...], crop: tuple[int, ...] | None, c: OpCall | None = None
) -> tuple[int, ...]:
    """PyTorch's output_padding per spatial axis: rows added after the cropped output (0 ≤ op < stride, so a
    stride-2 layer can reach either size that a stride-2 conv maps to the same input: 14 as well as 13 from 7);
    only with an integer padding (checked when `c` is given)."""
    extra = (value,) if isinstance(value, int) else value
    extra = extra * len(s) if len(extra) == 1 else extra
    if c is None or not any(extra):
        return extra if any(extra) else (0,) * len(s)
    if crop is None:
        raise c.fail(
            f"conv_transpose's output_padding goes with an integer padding (PyTorch's), not padding={c['padding']}",
            "write the padding as PyTorch does: conv_transpose(16, 3, stride=2, padding=1, output_padding=1)"
            + (" (or drop output_padding: same already gives in·stride)" if c["padding"] == "same" else ""),
            arg="output_padding",
            kind="argument error",
        )
    extra = per_axis(extra, len(s), "output_padding", c, "output_padding")
    if any(not 0 <= e < st for e, st in zip(extra, s, strict=True)):
        raise c.fail(
            f"conv_transpose's output_padding {_window_label(c['output_padding'])} must be at least 0 and smaller "
            f"than the stride {_window_label(c['stride'])}",
            "output_padding picks one of the `stride` output sizes a strided conv maps back to the same input; "
            "a larger output needs a larger kernel or stride",
            arg="output_padding",
            kind="argument error",
        )
    return extra


def transpose_crop(padding: Any, k: tuple[int, ...], c: OpCall | None = None) -> tuple[int, ...] | None:
    """conv_transpose's integer padding p per spatial axis (PyTorch's ConvTranspose padding: the full output
    cropped by p on each side), None for `valid`/`same`; 0 ≤ p ≤ k - 1 (checked when `c` is given)."""
    if isinstance(padding, str):
        if padding in ("valid", "same"):
            return None
        assert c is not None
        raise c.fail(
            f"conv_transpose's 'padding' must be valid, same or an integer, got {padding}", arg="padding"
        )
    if not isinstance(padding, int) and not all(isinstance(v, int) for v in padding):
        assert c is not None
        raise c.fail(
            "conv_transpose's 'padding' takes one integer per spatial axis (PyTorch's), not (lo, hi) pairs",
            "write padding=1, or (1, 1)",
            arg="padding",
        )
    crop = (padding,) * len(k) if isinstance(padding, int) else tuple(padding)
    if c is not None:
        crop = per_axis(crop, len(k), "padding", c, "padding")
        if any(p > kk - 1 for p, kk in zip(crop, k, strict=True)):
            raise c.fail(
                f"conv_transpose's padding {padding} crops more than the kernel {_window_label(c['kernel'])} "
                "adds: at most kernel - 1",
                "as in PyTorch's ConvTranspose2d, the output is (in - 1)·stride + kernel - 2·padding",
                arg="padding",
            )
    return crop


# ---- conv_transpose's CPU lowerings ----------------------------------------------------------------


def transpose_geometry(a: dict[str, Any], shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Per spatial axis of a concrete 2-D input: (kernel, stride, low padding of the dilated input, output size),
    as lax.conv_transpose pads: the op is a stride-1 correlation of the input dilated by the stride, padded
    (k - 1, ...) for valid and about half that for same, with the kernel as it is (Flax's transpose_kernel=False)."""
    k = per_axis(a["kernel"], 2, "kernel", None, "kernel")  # type: ignore[arg-type]
    s = per_axis(a["stride"], 2, "stride", None, "stride")  # type: ignore[arg-type]
    out = []
    crop = transpose_crop(a["padding"], k)
    extra = output_padding(a["output_padding"], s, crop)
    for i in range(2):
        size = shape[1 + i]
        if crop is not None:  # the full correlation's padding k - 1, less the crop
            lo, o = k[i] - 1 - crop[i], (size - 1) * s[i] + k[i] - 2 * crop[i] + extra[i]
        elif a["padding"] == "same":
            lo = k[i] - 1 if s[i] > k[i] - 1 else -(-(k[i] + s[i] - 2) // 2)
            o = size * s[i]
        else:
            lo, o = k[i] - 1, size * s[i] + max(k[i] - s[i], 0)
        out.append((k[i], s[i], lo, o))
    return out


def plain_transpose_2d(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """A 2-D f32 conv_transpose over a known map: the form the sub-pixel lowering rewrites."""
    x = types[0]
    return x.rank == 4 and x.dtype == "f32" and all(d.as_int() is not None for d in x.dims[1:])


def _subpixel_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """XLA:CPU's rule (bench/lowering_rules.py; figures in docs/benchmarks.md): lax.conv_transpose is a convolution
    of the input dilated by the stride, whose gradients XLA:CPU runs slowly; at stride 2 the sub-pixel matmul takes
    0.13-0.33 of its time with 16-32 features, 0.67 with 8. With an image's 1 or 3 channels out the matmul's output
    is too thin (1.8-3×); at stride 1 nothing is saved (0.86-2.97×)."""
    s = per_axis(a["stride"], 2, "stride", None, "stride")  # type: ignore[arg-type]
    return platform == "cpu" and plain_transpose_2d(a, types) and min(s) >= 2 and a["features"] >= 8


def _transpose_subpixel_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """Sub-pixel form: output row q = h·s + j takes flipped-kernel row j = r + s·t from input row h, so the rows
    of one phase r = q mod s are a stride-1 correlation of the input with every s-th kernel row (⌈k/s⌉ of them).
    im2col of the input padded by ⌈k/s⌉ - 1 (⌈k/s⌉² slices, shared by all phases) times one kernel that holds every
    phase's rows side by side gives [N, M, M, s·s·cout]; interleaving the phases is a transpose and a reshape,
    and a crop gives the op's padding. No multiply by the stride's zeros (lax's dilated input has (s² - 1)/s² of
    them); with kernel = stride it is a matmul and a transpose."""
    x = xs[0]
    jnp, lax = ctx.jnp, ctx.lax
    n, h, w, cin = x.shape
    (kh, sh, loh, oh), (kw, sw, low, ow) = transpose_geometry(a, x.shape)
    th, tw = -(-kh // sh), -(-kw // sw)
    kernel = m.kernel[...][::-1, ::-1]  # output row h·s + j takes kernel row k - 1 - j (a correlation's flip)
    cout = kernel.shape[-1]
    # [k, k, cin, cout] → zero rows up to s·t, j = t·s + r split into (t, r), t reversed (slice u takes t = ⌈k/s⌉ - 1 - u)
    kernel = jnp.pad(kernel, [(0, sh * th - kh), (0, sw * tw - kw), (0, 0), (0, 0)])
    kernel = kernel.reshape(th, sh, tw, sw, cin, cout)[::-1, :, ::-1]
    kernel = kernel.transpose(0, 2, 4, 1, 3, 5).reshape(th * tw * cin, sh * sw * cout)
    if th > 1 or tw > 1:
        x = jnp.pad(x, [(0, 0), (th - 1, th - 1), (tw - 1, tw - 1), (0, 0)])
    mh, mw = h + th - 1, w + tw - 1
    y = jnp.matmul(im2col(x, (th, tw), (1, 1), ctx), kernel).reshape(n, mh, mw, sh, sw, cout)
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, mh * sh, mw * sw, cout)
    # the full output starts k - 1 - lo rows before the op's first one: crop (or zero-pad) to the op's size
    ch, cw = kh - 1 - loh, kw - 1 - low
    cfg = [(0, 0, 0), (-ch, oh - (mh * sh - ch), 0), (-cw, ow - (mw * sw - cw), 0), (0, 0, 0)]
    y = lax.pad(y, jnp.zeros((), y.dtype), cfg)
    return y if m.bias is None else y + m.bias[...]


def _transpose_padding(a: dict[str, Any], n: int) -> Any:
    """Flax's ConvTranspose padding: VALID or SAME, or for an integer p the dilated input's explicit padding
    k - 1 - p on each side, plus output_padding at the end (lax.conv_transpose pads that correlation: PyTorch's
    output size and values up to the kernel's flip, which Flax does not apply)."""
    k = per_axis(a["kernel"], n, "kernel", None, "kernel")  # type: ignore[arg-type]
    s = per_axis(a["stride"], n, "stride", None, "stride")  # type: ignore[arg-type]
    crop = transpose_crop(a["padding"], k)
    if crop is None:
        return a["padding"].upper()
    extra = output_padding(a["output_padding"], s, crop)
    return [(kk - 1 - p, kk - 1 - p + e) for kk, p, e in zip(k, crop, extra, strict=True)]


register(
    OpDef(
        name="conv_transpose",
        family="conv",
        tensors=1,
        args=(
            Arg("features", "int", min=1),
            Arg("kernel", "window"),
            Arg("stride", "window", 1),
            Arg("padding", "padding", "valid"),
            Arg(
                "output_padding",
                "ints",
                0,
                doc="PyTorch's: added to one side of the output, below the stride (7 → 14 with k=3, s=2, p=1)",
            ),
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
                    padding=_transpose_padding(a, types[0].rank - 2),
                    use_bias=a["bias"],
                    **half_dtype(types[0], ctx),
                    kernel_init=ctx.init(a["init"]),
                    bias_init=ctx.init(a["bias_init"], "zeros"),
                    rngs=ctx.rngs,
                ),
            ),
            Lowering(
                "subpixel",
                apply=_transpose_subpixel_apply,
                when=_subpixel_wins,
                applies=lambda a, types: plain_transpose_2d(a, types),
            ),
        ),
        label=lambda a: (
            f"deconv {a['features']}@{_window_label(a['kernel'])}"
            + (f" ×{a['stride']}" if a["stride"] != 1 else "")
        ),
        doc="transposed convolution (upsampling by its stride)",
    )
)
