"""Pooling and resampling: max/avg over windows, global and adaptive pools, upsampling."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import counted
from ..ir.dims import Dim, product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, never, per_axis, per_axis_hint, register
from .conv import _window_label, lax_padding, pads, spatial


def _pool(c: OpCall) -> Inferred:
    c.need_rank(
        3, 5, " [N, spatial..., channels]", "pooling needs spatial axes; after flatten there are none"
    )
    _pool_dtype(c)
    stride = c["stride"] if c["stride"] is not None else c["window"]
    if c["ceil"]:
        dims, k = _ceil_spatial(c, stride)
    else:
        dims, k, _, _, _ = spatial(c, c["window"], stride, None, c["padding"])
    if not c.attrs.get("count_pad", True):
        p = pads(c["padding"], len(k), k, (1,) * len(k), (1,) * len(k), c)
        if not isinstance(p, str) and any(side >= w for pair, w in zip(p, k, strict=True) for side in pair):
            raise c.fail(
                f"avgpool with count_pad=false and padding {c['padding']} as wide as the window {c['window']}:"
                " a window inside the padding has no real element to average",
                "pad by less than the window",
                arg="padding",
                kind="argument error",
            )
    out = (c.x.dims[0], *dims, c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(out) * product(Dim.const(x) for x in k))


def ceil_out_size(size: int, k: int, s: int, lo: int, hi: int) -> int:
    """Caffe's (and torch's ceil_mode) output size: ceil((in + lo + hi - k)/s) + 1, less the last window when it
    would start in the right padding."""
    out = -(-(size + lo + hi - k) // s) + 1
    return out - 1 if (out - 1) * s >= size + lo else out


def _ceil_spatial(c: OpCall, stride: Any) -> tuple[tuple[Dim, ...], tuple[int, ...]]:
    n = c.x.rank - 2
    k = per_axis(c["window"], n, "window", c, "window")
    s = per_axis(stride, n, "stride", c, "stride")
    p = pads(c["padding"], n, k, s, (1,) * n, c)
    if isinstance(p, str):
        raise c.fail(
            "ceil=true with padding=same: same already sizes the output as ceil(in/stride)",
            "drop ceil=true, or give the padding as a number or [(lo, hi), ...]",
            arg="ceil",
            kind="argument error",
        )
    out = []
    for i in range(n):
        size, (lo, hi) = c.x.dims[1 + i], p[i]
        v = size.as_int()
        if v is not None:
            o = Dim.const(ceil_out_size(v, k[i], s[i], lo, hi))
        elif hi + s[i] <= k[i]:  # then the last window always starts inside: no clipping, for every size
            o = (size + lo + hi - k[i] + s[i] - 1).floordiv(s[i]) + 1
        else:
            raise c.fail(
                f"{c.op.name} with ceil=true over the symbolic axis {1 + i} of {c.x}: whether its last window"
                f" starts in the padding depends on the size",
                "declare that axis with a number, or use a window of at least stride + the right padding",
            )
        if o.known_nonpositive():
            raise c.fail(
                f"{c.op.name} window {k[i]} does not fit axis {1 + i} of size {size} in {c.x} with padding"
                f" {c['padding']}: the output would have size {o}",
                "use a smaller window, or remove a pooling step before it",
            )
        out.append(o)
    return tuple(out), k


def _pool_dtype(c: OpCall) -> None:
    """An average of integers is fractional and a max of booleans has no identity: XLA runs neither."""
    if c.op.name.startswith(("avg", "global_avg")):
        c.need_float()
    elif c.x.dtype == "bool":
        raise c.fail(
            f"{c.op.name} expects a number input, got {c.x}", "convert with `-> cast(f32)`", kind="type error"
        )


def _pool_label(kind: str) -> Any:
    def label(a: Any) -> str:
        s = a["stride"]
        return (
            f"{kind} {_window_label(a['window'])}"
            + (f" /{s}" if s is not None and s != a["window"] else "")
            + (" ceil" if a.get("ceil") else "")
            + (" (real only)" if a.get("count_pad") is False else "")
        )

    return label


POOL_ARGS = (
    Arg("window", "window"),
    Arg("stride", "window", None),
    Arg("padding", "padding", "valid"),
    Arg("ceil", "bool", False, doc="Caffe's output size: ceil((in + lo + hi - window)/stride) + 1"),
)
AVG_ARGS = (
    *POOL_ARGS,
    Arg("count_pad", "bool", True, doc="divide by the whole window (true) or by its real elements only"),
)


def window_stride(a: dict[str, Any], n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A pool's (checked) window and stride per spatial axis; the stride defaults to the window."""
    stride = a["stride"] if a["stride"] is not None else a["window"]
    k = per_axis(a["window"], n, "window", None, "window")  # type: ignore[arg-type]
    return k, per_axis(stride, n, "stride", None, "stride")  # type: ignore[arg-type]


def explicit_pads(a: dict[str, Any], shape: tuple[int, ...]) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
    """(lo, hi) per spatial axis of a concrete input (`same` resolved as XLA does, ceil mode's overhang added to hi)
    and the output size per axis. Ceil mode's clipping can leave fewer windows than the padded input holds: the
    caller keeps the first ones."""
    n = len(shape) - 2
    k, s = window_stride(a, n)
    pad = lax_padding(a["padding"], n, k, s, 1)
    pairs, outs = [], []
    for i in range(n):
        size = shape[1 + i]
        if isinstance(pad, str):  # SAME: ceil(in/s) outputs, the padding split low-first
            total = max((-(-size // s[i]) - 1) * s[i] + k[i] - size, 0)
            lo, hi = total // 2, total - total // 2
        else:
            lo, hi = pad[i]
        o = (size + lo + hi - k[i]) // s[i] + 1
        if a["ceil"]:
            o = ceil_out_size(size, k[i], s[i], lo, hi)
            hi += max((o - 1) * s[i] + k[i] - (size + lo + hi), 0)
        pairs.append((lo, hi))
        outs.append(o)
    return pairs, tuple(outs)


def avg_divisor(a: dict[str, Any], shape: tuple[int, ...], np: Any) -> Any:
    """How many elements each output window averages, as a NumPy array [1, out..., 1]: the whole window clipped to
    the padded input (count_pad=true; Caffe and torch clip ceil mode's overhang), or its real elements only."""
    n = len(shape) - 2
    k, s = window_stride(a, n)
    declared, _ = explicit_pads({**a, "ceil": False}, shape)
    pairs, outs = explicit_pads(a, shape)
    div = np.ones([1] * (n + 2))
    for i, ((lo, hi), o) in enumerate(zip(pairs, outs, strict=True)):
        size = shape[1 + i]
        mask = np.zeros(lo + size + hi)
        if a["count_pad"]:
            mask[: lo + size + declared[i][1]] = (
                1  # the declared padding counts; ceil mode's overhang does not
            )
        else:
            mask[lo : lo + size] = 1
        counts = np.array([mask[j * s[i] : j * s[i] + k[i]].sum() for j in range(o)])
        div = div * counts.reshape([1] * (1 + i) + [o] + [1] * (n - i))
    return div


def _pool_reference(kind: str) -> Lowering:
    """lax.reduce_window; avgpool divides by the full window (padding counted, as torch and Flax by default) or, with
    count_pad=false, by the real elements in it."""

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:

        x = xs[0]
        n = x.ndim - 2
        k, s = window_stride(a, n)
        pairs, outs = explicit_pads(a, x.shape)
        padding = [(0, 0), *pairs, (0, 0)]
        dims, strides = (1, *k, 1), (1, *s, 1)
        keep = (slice(None), *(slice(0, o) for o in outs), slice(None))
        jnp, lax = ctx.jnp, ctx.lax
        # the initial values stay Python numbers: only a concrete identity lets lax pick its differentiable
        # reduce_window_max / _sum (a traced one gives a generic reduce_window that has no gradient)
        if kind == "max":
            # an integer identity in the input's own dtype: a Python int would be int32 against a u8 input
            init = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else x.dtype.type(jnp.iinfo(x.dtype).min)
            return lax.reduce_window(x, init, lax.max, dims, strides, padding)[keep]
        total = lax.reduce_window(
            x, 0.0 if jnp.issubdtype(x.dtype, jnp.floating) else 0, lax.add, dims, strides, padding
        )[keep]
        return _average(total, a, x.shape, ctx)

    return Lowering("reference", apply=apply)


def _average(total: Any, a: dict[str, Any], shape: tuple[int, ...], ctx: Any) -> Any:
    """Window sums divided by the whole window, or by avg_divisor's counts in ceil mode or with count_pad=false."""
    import numpy as np

    if a["ceil"] or not a["count_pad"]:
        return total / ctx.jnp.asarray(avg_divisor(a, shape, np), dtype=total.dtype)
    k, _ = window_stride(a, len(shape) - 2)
    size = 1
    for w in k:
        size *= w
    return total / size


def _tiles(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    return platform == "cpu" and _tiling(a, types)


def _tiling(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """Non-overlapping windows that tile the input exactly: a pool is then a reshape and a reduction."""
    x = types[0]
    n = x.rank - 2
    if a["stride"] is not None and a["stride"] != a["window"]:  # ceil: no overhang then
        return False
    pad = a["padding"]
    flat = (
        [v for p in pad for v in (p if isinstance(p, tuple) else (p,))] if isinstance(pad, tuple) else [pad]
    )
    if pad != "valid" and flat != [0] * len(flat):
        return False
    k = (a["window"],) * n if isinstance(a["window"], int) else a["window"]
    sizes = [d.as_int() for d in x.dims[1:-1]]
    return len(k) == n and all(sz is not None and sz % w == 0 for sz, w in zip(sizes, k, strict=True))


def _slices_win(kind: str) -> Any:
    def when(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
        """XLA:CPU's rule (bench/lowering_rules.py; figures in docs/benchmarks.md), after the tiled form: the
        gradients of reduce_window (select_and_scatter for max, a padded reduce_window for avg) are slow on the CPU;
        the slices' are pads and adds. 2-D max-pools with stride ≥ 2 take 0.15-0.23 of the time; at stride 1 each
        of the k² slices is as large as the input and max loses (2×); avg wins at any stride (0.11-0.16)."""
        if platform == "export":
            return kind == "max"
        if platform != "cpu" or types[0].rank != 4:
            return False
        return kind == "avg" or min(window_stride(a, 2)[1]) >= 2

    return when


def _max_slices_forward(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """The max-pool's slices in a forward-only program where they win there too: overlapping windows (AlexNet's 3×3
    stride 2: 0.53 of reduce_window's forward), and for export. Where the windows tile, the lecture convnet's whole
    forward ran faster on reduce_window (bench/lowering_rules.py --forward; docs/benchmarks.md)."""
    return _slices_win("max")(a, types, platform) and (platform == "export" or not _tiling(a, types))


def _pool_tiled(kind: str) -> Lowering:
    """On XLA:CPU reduce_window is slow, its gradient more so. Measured (2-core CPU, jitted, median of 15):
    maxpool(2) on [32, 112, 112, 64]: forward 151 → 104 ms, gradient 701 → 277 ms; on [64, 28, 28, 32]: forward
    2.1 → 1.8 ms, gradient 39 → 8.6 ms; avgpool(2) on [32, 112, 112, 64]: forward 92 → 77 ms, gradient 158 → 80 ms."""

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        n = x.ndim - 2
        k = (a["window"],) * n if isinstance(a["window"], int) else a["window"]
        shape = [x.shape[0]]
        for size, w in zip(x.shape[1:-1], k, strict=True):
            shape += [size // w, w]
        shape.append(x.shape[-1])
        axes = tuple(2 + 2 * i for i in range(n))
        if kind == "avg":
            return x.reshape(shape).mean(axis=axes)
        if not ctx.jnp.issubdtype(x.dtype, ctx.jnp.floating):
            return x.reshape(shape).max(axis=axes)
        return _tiled_max(ctx.jax, ctx.jnp, tuple(shape), axes)(x)

    # forward only, a tiled max takes 1.2-1.3× reduce_window's time (2 devices; its gain is the gradient's)
    forward = _tiles if kind == "avg" else never
    return Lowering("tiled", apply=apply, when=_tiles, applies=_tiling, forward=forward)


def _tiled_max(jax: Any, jnp: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """max over the window axes of x reshaped to `shape`, differentiated as reduce_window max is: a tied window's
    whole gradient goes to its first maximum in row-major window order (XLA's select_and_scatter), where the
    gradient of a plain `max` would split it among the ties — and train a different model (38 % of the first
    pool's windows tie on MNIST: the blank background makes a conv output equal its bias). A NaN counts as the
    maximum, as in max.

    One variadic reduce over the window axes of the input as it lies gives the maximum and its window position;
    the gradient is `where(position == first, g, 0)` broadcast over the window, in the input's own layout, with no
    transpose, gather or scatter. XLA would fuse the incoming gradient's producer (the next conv's col2im: 25
    padded slices summed) into that broadcast and recompute it for every window element; dividing g by a 1 that
    XLA cannot fold (a 1 through an optimization barrier: g / 1 is exactly g) makes the producer expensive in
    XLA's eyes, so it is computed once; the same division on the result keeps XLA from computing the broadcast
    twice when two consumers read it (a conv's weight gradient and its bias's sum: convnet step 22.1-23.1 →
    20.1-21.2 ms). Measured (2-core CPU; jitted gradient of relu(pool(x)), tied inputs,
    gradients bitwise equal to the form before): [100, 24, 24, 32] maxpool(3) 10.0 → 3.7 ms, [100, 28, 28, 32]
    maxpool(2) 38 → 4.8 ms, [32, 112, 112, 64] maxpool(2) 404 → 149 ms; the lecture convnet's train step (split
    over 2 devices, interleaved in one process) 23.0-27.2 → 19.0-21.3 ms. The form before (window moved last,
    argmax, take_along_axis) gathered and scattered through a 6-D transpose. The 1 was once 1 + fmin(|g₀|, 0),
    whose read of g's first element made XLA all-reduce a scalar twice in every step of a split CPU; the barrier's
    1 is each device's own (the convnet's step 14.4 → 13.7 ms median, 150 interleaved calls, 2 devices). One
    CPU device takes this form too: an argmax and take_along_axis form (a gather, its gradient a scatter) once
    served it, and lost 4-20× on the pool's gradient alone at every shape measured (1 or 2 devices; [100, 24, 24,
    32] maxpool(3) 5.3 against 0.64 ms, [32, 112, 112, 64] maxpool(2) 287 against 75 ms) and 1.7× on the lecture
    convnet's step on one device (14.8-16.3 against 8.7-9.3 ms)."""
    lax = jax.lax
    size = [shape[0], *(shape[i] * shape[i + 1] for i in range(1, len(shape) - 1, 2)), shape[-1]]

    def positions() -> Any:
        """Each element's row-major position in its window, int32 over `shape`."""
        pos, stride = None, 1
        for ax in reversed(axes):
            step = lax.broadcasted_iota(jnp.int32, shape, ax) * stride
            pos = step if pos is None else pos + step
            stride *= shape[ax]
        return pos

    def first_max(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
        (va, ia), (vb, ib) = a, b
        a_nan, b_nan = va != va, vb != vb
        same = (vb == va) | (a_nan & b_nan)
        take_b = (vb > va) | (b_nan & ~a_nan) | (same & (ib < ia))
        return lax.select(take_b, vb, va), lax.select(take_b, ib, ia)

    def value_and_first(x: Any) -> tuple[Any, Any]:
        inits = (jnp.array(-jnp.inf, x.dtype), jnp.array(jnp.iinfo(jnp.int32).max, jnp.int32))
        out = lax.reduce((x.reshape(shape), positions()), inits, first_max, axes)
        return out[0], out[1]

    @jax.custom_vjp
    def pool(x: Any) -> Any:
        return value_and_first(x)[0]

    def backward(first: Any, g: Any) -> tuple[Any]:
        one = lax.optimization_barrier(jnp.ones((), g.dtype))
        picked = jnp.expand_dims(first, axes) == positions()
        dx = jnp.where(picked, jnp.expand_dims(g / one, axes), jnp.zeros((), g.dtype)).reshape(size)
        return (dx / one,)

    pool.defvjp(value_and_first, backward)
    return pool


def window_slices(x: Any, a: dict[str, Any], fill: Any, jnp: Any) -> Any:
    """Each window offset's strided slice of the input padded with `fill`, in row-major window order: slice i holds
    the i-th element of every output's window."""
    import itertools

    n = x.ndim - 2
    k, s = window_stride(a, n)
    pairs, outs = explicit_pads(a, x.shape)
    if any(p != (0, 0) for p in pairs):
        x = jnp.pad(x, [(0, 0), *pairs, (0, 0)], constant_values=fill)
    for offs in itertools.product(*(range(w) for w in k)):
        window = tuple(slice(o, o + (outs[i] - 1) * s[i] + 1, s[i]) for i, o in enumerate(offs))
        yield x[(slice(None), *window, slice(None))]


def _pool_slices(kind: str, when: Any, forward: Any = None) -> Lowering:
    """The window's strided slices of the padded input, folded. For max, in window order, an element replaces the
    running maximum only when strictly greater (or NaN): the gradient, through `where`, reaches the first maximum of
    a tied window only, as reduce_window's (select_and_scatter's) does. Also the export form: ONNX runtimes refuse
    the 4-D (N, H, W, C) MaxPool that jax2onnx makes of a channels-last reduce_window; slices, pads and selects
    export everywhere."""

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        jnp = ctx.jnp
        floating = jnp.issubdtype(x.dtype, jnp.floating)
        if kind == "avg":
            total = None
            for v in window_slices(x, a, 0, jnp):
                total = v if total is None else total + v
            return _average(total, a, x.shape, ctx)
        out = None
        for v in window_slices(x, a, -jnp.inf if floating else jnp.iinfo(x.dtype).min, jnp):
            out = v if out is None else jnp.where((v > out) | (v != v) if floating else v > out, v, out)
        return out

    return Lowering(
        "slices", apply=apply, when=when, applies=lambda a, types: types[0].rank == 4, forward=forward
    )


for _kind, _what in (("max", "max"), ("avg", "mean")):
    register(
        OpDef(
            name=f"{_kind}pool",
            family="pooling",
            tensors=1,
            args=POOL_ARGS if _kind == "max" else AVG_ARGS,
            infer=_pool,
            label=_pool_label(f"{_kind}pool"),
            lowerings=(
                _pool_reference(_kind),
                _pool_tiled(_kind),
                _pool_slices(_kind, _slices_win(_kind), _max_slices_forward if _kind == "max" else None),
            ),
            doc=f"{_what} over sliding windows (stride defaults to the window)",
        )
    )


def _global(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]")
    _pool_dtype(c)
    if c.op.name == "global_maxpool":
        for i, d in enumerate(c.x.dims[1:-1], 1):
            if d == Dim.const(0):
                raise c.fail(
                    f"global_maxpool over axis {i} of {c.x}: that axis is empty, so there is no max",
                    "pool over spatial axes that hold at least one element",
                )
    ones = (Dim.const(1),) * (c.x.rank - 2) if c["keepdims"] else ()
    out = (c.x.dims[0], *ones, c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(c.x.dims))


def _global_apply(kind: str) -> Lowering:
    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        axes = tuple(range(1, x.ndim - 1))
        keep = a["keepdims"]
        return x.mean(axis=axes, keepdims=keep) if kind == "avg" else x.max(axis=axes, keepdims=keep)

    return Lowering("reference", apply=apply)


def _global_label(kind: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda a: f"global_{kind}pool" + (" keepdims" if a["keepdims"] else "")


for _kind, _what in (("avg", "mean"), ("max", "max")):
    register(
        OpDef(
            name=f"global_{_kind}pool",
            family="pooling",
            tensors=1,
            args=(
                Arg(
                    "keepdims",
                    "bool",
                    False,
                    doc="keep the spatial axes as size 1, [N, 1, 1, C] (squeeze-and-excitation's scale, Keras's "
                    "keepdims=True, PyTorch's AdaptiveAvgPool2d(1))",
                ),
            ),
            infer=_global,
            lowerings=(_global_apply(_kind),),
            label=_global_label(_kind),
            doc=f"{_what} over all spatial axes: [N, ..., C] → [N, C] ([N, 1, ..., 1, C] with keepdims=true)",
        )
    )


def _per_spatial_axis(c: OpCall, arg: str) -> tuple[int, ...]:
    """Check a [N, spatial..., C] input and broadcast `arg` (one int, or one per spatial axis) to its axes."""
    c.need_rank(3, 5, " [N, spatial..., channels]")
    n = c.x.rank - 2
    v = c[arg]
    values = (v,) * n if isinstance(v, int) else v
    if len(values) != n:
        raise c.fail(
            f"{c.op.name}'s '{arg}' has {counted(len(values), 'value')} but the input has "
            f"{counted(n, 'spatial axis', 'spatial axes')} ({c.x})",
            per_axis_hint(arg, values, n),
            arg=arg,
        )
    return values


def _adaptive(c: OpCall) -> Inferred:
    sizes = _per_spatial_axis(c, "size")
    c.need_float()  # an average of integers is fractional
    for i in range(len(sizes)):
        c.known(c.x.dims[1 + i], f"spatial axis {1 + i}")
    out = (c.x.dims[0], *(Dim.const(s) for s in sizes), c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(c.x.dims))


def adaptive_bins(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """torch's AdaptiveAvgPool bins: [floor(i*in/out), ceil((i+1)*in/out)) for each output i."""
    return [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def _adaptive_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x = xs[0]
    jnp = ctx.jnp
    n = x.ndim - 2
    sizes = (a["size"],) * n if isinstance(a["size"], int) else a["size"]
    for i, out in enumerate(sizes):
        ax = 1 + i
        size_in = x.shape[ax]
        if size_in == out:
            continue
        if size_in % out == 0:  # equal bins: a reshape and a mean
            k = size_in // out
            x = x.reshape((*x.shape[:ax], out, k, *x.shape[ax + 1 :])).mean(axis=ax + 1)
            continue
        # overlapping or uneven bins: an averaging matrix [out, in] contracted with that axis
        rows = [
            [1.0 / (hi - lo) if lo <= j < hi else 0.0 for j in range(size_in)]
            for lo, hi in adaptive_bins(size_in, out)
        ]
        w = jnp.asarray(rows, dtype=x.dtype)
        x = jnp.moveaxis(jnp.tensordot(x, w, axes=([ax], [1])), -1, ax)
    return x


register(
    OpDef(
        name="adaptive_avgpool",
        family="pooling",
        tensors=1,
        args=(Arg("size", "window"),),
        infer=_adaptive,
        lowerings=(Lowering("reference", apply=_adaptive_apply),),
        label=lambda a: f"adaptive avgpool {_window_label(a['size'])}",
        doc="average into a fixed output grid, as torch's AdaptiveAvgPool",
    )
)


def _upsample_apply(a: dict[str, Any], x: Any, ctx: Any) -> Any:
    n = x.ndim - 2
    scales = (a["scale"],) * n if isinstance(a["scale"], int) else a["scale"]
    if a["method"] == "linear":
        shape = (x.shape[0], *(d * s for d, s in zip(x.shape[1:-1], scales, strict=True)), x.shape[-1])
        return ctx.jax.image.resize(x, shape, "linear")
    for i, sc in enumerate(scales):
        x = ctx.jnp.repeat(x, sc, axis=1 + i)
    return x


def _upsample(c: OpCall) -> Inferred:
    scales = _per_spatial_axis(c, "scale")
    if c["method"] == "linear":
        c.need_float()  # interpolated values are fractional (jax.image.resize returns floats)
    out = (c.x.dims[0], *(d * s for d, s in zip(c.x.dims[1:-1], scales, strict=True)), c.x.dims[-1])
    return Inferred((c.x.with_dims(out),))


register(
    OpDef(
        name="upsample",
        family="pooling",
        tensors=1,
        args=(Arg("scale", "window"), Arg("method", "enum", "nearest", choices=("nearest", "linear"))),
        infer=_upsample,
        lowerings=(Lowering("reference", apply=lambda m, a, xs, ctx: _upsample_apply(a, xs[0], ctx)),),
        label=lambda a: f"upsample ×{a['scale']}",
        doc="repeat (nearest) or interpolate (linear) each spatial axis by an integer factor",
    )
)
