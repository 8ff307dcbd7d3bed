"""Pooling and resampling: max/avg over windows, global and adaptive pools, upsampling."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, product
from ._registry import Arg, Inferred, OpCall, OpDef, register
from .conv import _window_label, spatial


def _pool(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]", "pooling needs spatial axes; after flatten there are none")
    stride = c["stride"] if c["stride"] is not None else c["window"]
    dims, k, _, _, _ = spatial(c, c["window"], stride, None, c["padding"])
    out = (c.x.dims[0], *dims, c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(out) * product(Dim.const(x) for x in k))


def _pool_label(kind: str) -> Any:
    def label(a: Any) -> str:
        s = a["stride"]
        return f"{kind} {_window_label(a['window'])}" + (f" /{s}" if s is not None and s != a["window"] else "")
    return label


POOL_ARGS = (Arg("window", "window"), Arg("stride", "window", None), Arg("padding", "padding", "valid"))

register(OpDef(name="maxpool", family="pooling", tensors=1, args=POOL_ARGS, infer=_pool, label=_pool_label("maxpool"),
               doc="max over sliding windows (stride defaults to the window)"))
register(OpDef(name="avgpool", family="pooling", tensors=1, args=POOL_ARGS, infer=_pool, label=_pool_label("avgpool"),
               doc="mean over sliding windows (stride defaults to the window)"))


def _global(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]")
    out = (c.x.dims[0], c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(c.x.dims))


register(OpDef(name="global_avgpool", family="pooling", tensors=1, args=(), infer=_global,
               doc="mean over all spatial axes: [N, ..., C] → [N, C]"))
register(OpDef(name="global_maxpool", family="pooling", tensors=1, args=(), infer=_global,
               doc="max over all spatial axes: [N, ..., C] → [N, C]"))


def _adaptive(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]")
    n = c.x.rank - 2
    size = c["size"]
    sizes = (size,) * n if isinstance(size, int) else size
    if len(sizes) != n:
        raise c.fail(f"adaptive_avgpool size has {len(sizes)} values but {c.x} has {n} spatial axes", arg="size")
    for i, s in enumerate(sizes):
        c.known(c.x.dims[1 + i], f"spatial axis {1 + i}")
    out = (c.x.dims[0], *(Dim.const(s) for s in sizes), c.x.dims[-1])
    return Inferred((c.x.with_dims(out),), flops=product(c.x.dims))


register(OpDef(name="adaptive_avgpool", family="pooling", tensors=1, args=(Arg("size", "window"),),
               infer=_adaptive, label=lambda a: f"adaptive avgpool {_window_label(a['size'])}",
               doc="average into a fixed output grid, as torch's AdaptiveAvgPool"))


def _upsample(c: OpCall) -> Inferred:
    c.need_rank(3, 5, " [N, spatial..., channels]")
    n = c.x.rank - 2
    sc = c["scale"]
    scales = (sc,) * n if isinstance(sc, int) else sc
    if len(scales) != n:
        raise c.fail(f"upsample scale has {len(scales)} values but {c.x} has {n} spatial axes", arg="scale")
    out = (c.x.dims[0], *(d * s for d, s in zip(c.x.dims[1:-1], scales, strict=True)), c.x.dims[-1])
    return Inferred((c.x.with_dims(out),))


register(OpDef(name="upsample", family="pooling", tensors=1,
               args=(Arg("scale", "window"), Arg("method", "enum", "nearest", choices=("nearest", "linear"))),
               infer=_upsample, label=lambda a: f"upsample ×{a['scale']}",
               doc="repeat (nearest) or interpolate (linear) each spatial axis by an integer factor"))
