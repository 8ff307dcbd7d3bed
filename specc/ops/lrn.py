"""Local response normalisation (AlexNet, 2012): each activation divided by the energy of its neighbouring channels."""

from __future__ import annotations

from typing import Any

from ..ir.dims import product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register


def _lrn(c: OpCall) -> Inferred:
    if c.x.rank < 2:
        raise c.fail(
            f"lrn normalises across the channel axis (last) of [N, ..., C], got {c.x}",
            "lrn follows a convolution: [N, H, W, C]",
        )
    c.need_float()
    # per element: a square, `size` adds over the window, a multiply-add, a power and a divide
    return Inferred((c.x,), flops=product(c.x.dims) * (c["size"] + 4))


def lrn_apply(x: Any, size: int, alpha: float, beta: float, k: float, jnp: Any, lax: Any) -> Any:
    """b_c = a_c / (k + alpha/size * sum of a_j² over the `size` channels j around c)^beta (Caffe ACROSS_CHANNELS;
    an even size has one more channel before c than after, as torch's LocalResponseNorm)."""
    dtype = x.dtype
    x = x.astype(jnp.float32) if dtype != jnp.float64 else x  # half-precision squares overflow
    window = (1,) * (x.ndim - 1) + (size,)
    pad = [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)]
    energy = lax.reduce_window(x * x, 0.0, lax.add, window, (1,) * x.ndim, pad)
    return (x / (k + (alpha / size) * energy) ** beta).astype(dtype)


register(
    OpDef(
        name="lrn",
        family="norm",
        tensors=1,
        args=(
            Arg("size", "int", 5, min=1, doc="channels in each window (Caffe's local_size)"),
            Arg("alpha", "float", 1e-4, min=0, doc="scale; divided by size, as Caffe and torch do"),
            Arg("beta", "float", 0.75, min=0),
            Arg(
                "k",
                "float",
                2.0,
                min=0,
                doc="the constant added before the power (AlexNet: 2; Caffe's default: 1)",
            ),
        ),
        infer=_lrn,
        lowerings=(
            Lowering(
                "reference",
                apply=lambda m, a, xs, ctx: lrn_apply(
                    xs[0], a["size"], a["alpha"], a["beta"], a["k"], ctx.jnp, ctx.lax
                ),
            ),
        ),
        label=lambda a: f"lrn {a['size']}",
        doc="local response normalisation across channels: x / (k + alpha/size·Σ x²)^beta (AlexNet)",
    )
)
