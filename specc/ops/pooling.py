"""Pooling and resampling: max/avg over windows, global and adaptive pools, upsampling."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, per_axis, register
from .conv import _window_label, lax_padding, spatial


def _pool(c: OpCall) -> Inferred:
    c.need_rank(
        3, 5, " [N, spatial..., channels]", "pooling needs spatial axes; after flatten there are none"
    )
    _pool_dtype(c)
    stride = c["stride"] if c["stride"] is not None else c["window"]
    dims, k, _, _, _ = spatial(c, c["window"], stride, None, c["padding"])
    out = (c.x.dims[0], *dims, c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(out) * product(Dim.const(x) for x in k))


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
        return f"{kind} {_window_label(a['window'])}" + (
            f" /{s}" if s is not None and s != a["window"] else ""
        )

    return label


POOL_ARGS = (Arg("window", "window"), Arg("stride", "window", None), Arg("padding", "padding", "valid"))


def _pool_reference(kind: str) -> Lowering:
    """lax.reduce_window; avgpool divides by the full window (padding counted, as torch and Flax by default)."""

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        n = x.ndim - 2
        stride = a["stride"] if a["stride"] is not None else a["window"]
        k = per_axis(a["window"], n, "window", None, "window")  # type: ignore[arg-type]
        s = per_axis(stride, n, "stride", None, "stride")  # type: ignore[arg-type]
        pad = lax_padding(a["padding"], n, k, s, 1)
        padding = pad if isinstance(pad, str) else [(0, 0), *pad, (0, 0)]
        dims, strides = (1, *k, 1), (1, *s, 1)
        jnp, lax = ctx.jnp, ctx.lax
        # the initial values stay Python numbers: only a concrete identity lets lax pick its differentiable
        # reduce_window_max / _sum (a traced one gives a generic reduce_window that has no gradient)
        if kind == "max":
            # an integer identity in the input's own dtype: a Python int would be int32 against a u8 input
            init = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else x.dtype.type(jnp.iinfo(x.dtype).min)
            return lax.reduce_window(x, init, lax.max, dims, strides, padding)
        total = lax.reduce_window(
            x, 0.0 if jnp.issubdtype(x.dtype, jnp.floating) else 0, lax.add, dims, strides, padding
        )
        size = 1
        for w in k:
            size *= w
        return total / size

    return Lowering("reference", apply=apply)


def _tiles(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """Non-overlapping windows that tile the input exactly: a pool is then a reshape and a reduction."""
    x = types[0]
    n = x.rank - 2
    if platform != "cpu" or (a["stride"] is not None and a["stride"] != a["window"]):
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
        y = x.reshape(shape)
        return y.max(axis=axes) if kind == "max" else y.mean(axis=axes)

    return Lowering("tiled", apply=apply, when=_tiles)


for _kind, _what in (("max", "max"), ("avg", "mean")):
    register(
        OpDef(
            name=f"{_kind}pool",
            family="pooling",
            tensors=1,
            args=POOL_ARGS,
            infer=_pool,
            label=_pool_label(f"{_kind}pool"),
            lowerings=(_pool_reference(_kind), _pool_tiled(_kind)),
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
    out = (c.x.dims[0], c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(c.x.dims))


def _global_apply(kind: str) -> Lowering:
    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        axes = tuple(range(1, x.ndim - 1))
        return x.mean(axis=axes) if kind == "avg" else x.max(axis=axes)

    return Lowering("reference", apply=apply)


for _kind, _what in (("avg", "mean"), ("max", "max")):
    register(
        OpDef(
            name=f"global_{_kind}pool",
            family="pooling",
            tensors=1,
            args=(),
            infer=_global,
            lowerings=(_global_apply(_kind),),
            doc=f"{_what} over all spatial axes: [N, ..., C] → [N, C]",
        )
    )


def _per_spatial_axis(c: OpCall, arg: str) -> tuple[int, ...]:
    """Check a [N, spatial..., C] input and broadcast `arg` (one int, or one per spatial axis) to its axes."""
    c.need_rank(3, 5, " [N, spatial..., channels]")
    n = c.x.rank - 2
    v = c[arg]
    values = (v,) * n if isinstance(v, int) else v
    if len(values) != n:
        raise c.fail(f"{c.op.name} {arg} has {len(values)} values but {c.x} has {n} spatial axes", arg=arg)
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
