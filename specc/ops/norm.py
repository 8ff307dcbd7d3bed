"""Normalisation and regularisation ops: batchnorm, layernorm, groupnorm, dropout (shape-preserving, float only)."""

from __future__ import annotations

from typing import Any

from ..ir.dims import product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, OpError, call_layer, half_dtype, register

# Per-element FLOP estimates, inference mode. Batch norm folds into one multiply-add per element; layer/group
# norm compute their statistics on the fly (mean, variance, normalise, scale, shift).
BATCHNORM_FLOPS_PER_ELEMENT = 2
STATS_NORM_FLOPS_PER_ELEMENT = 5


def _layer(build: Any) -> tuple[Lowering, ...]:
    """A Flax layer that does the whole op: `build(attrs, input type, ctx)` makes it, calling it applies it."""
    return (Lowering("reference", apply=call_layer, build=lambda a, types, ctx: build(a, types[0], ctx)),)


def need_min_rank(c: OpCall, lo: int, layout: str) -> None:
    """Most of these ops accept any rank from `lo` up; `need_rank` is for a closed range."""
    if c.x.rank < lo:
        raise c.fail(
            f"{c.op.name} expects an input of rank {lo} or more {layout}, got {c.x}",
            "the batch axis comes first: one feature vector per example is [N, C]",
        )


def _norm_checks(c: OpCall, lo: int, layout: str) -> None:
    """What every normalisation needs: rank `lo` or more, a float input and a small positive eps."""
    need_min_rank(c, lo, layout)
    c.need_float()
    eps = c["eps"]
    if eps <= 0:
        raise c.fail(
            f"{c.op.name}'s 'eps' must be positive, got {eps}",
            "it keeps the division by the standard deviation finite; 1e-5 is usual",
            arg="eps",
            kind="argument error",
        )
    if eps >= 1:
        # added to a variance near 1, it would flatten the normalisation: surely PyTorch's sizes given by position,
        # `layernorm(64)` for LayerNorm(64) and `groupnorm(8, 64)` for GroupNorm(8, 64), which read 64 as eps
        g = c.attrs.get("groups")
        torch = {"layernorm": f"LayerNorm({eps:g})", "groupnorm": f"GroupNorm({g}, {eps:g})"}.get(c.op.name)
        ours = f"groupnorm({g})" if c.op.name == "groupnorm" else c.op.name
        raise c.fail(
            f"{c.op.name}'s 'eps' must be below 1, got {eps:g}: it is added to the variance, 1e-5 is usual",
            f"PyTorch's {torch} is `{ours}` here: the {'channels' if g else 'features'} come from the input"
            if torch is not None and float(eps).is_integer()
            else "give a small number, e.g. eps=1e-5",
            arg="eps",
            kind="argument error",
        )


def _batchnorm(c: OpCall) -> Inferred:
    _norm_checks(c, 2, "[N, ..., C]")
    if not 0.0 <= c["momentum"] <= 1.0:
        raise c.fail(
            f"batchnorm's 'momentum' must be between 0 and 1, got {c['momentum']}",
            "it weights the old running statistics: 0.9 or 0.99 are usual"
            + (
                f"; PyTorch's BatchNorm2d({c['momentum']:g}) is `batchnorm`: the channels come from the input"
                if c["momentum"] > 1 and float(c["momentum"]).is_integer()
                else ""
            ),
            arg="momentum",
            kind="argument error",
        )
    axis = c.axis("axis")
    ch = c.known(c.x.dims[axis], f"the feature axis (axis {c['axis']})")
    return Inferred(
        (c.x,),
        params={"scale": (ch,), "bias": (ch,)},
        state={"mean": (ch,), "var": (ch,)},
        flops=product(c.x.dims) * BATCHNORM_FLOPS_PER_ELEMENT,
        warnings=_torch_momentum(c["momentum"]),
    )


def _torch_momentum(m: float) -> tuple[OpError, ...]:
    """`batchnorm(momentum=0.1)` copied from PyTorch's BatchNorm2d(C, momentum=0.1), whose momentum weights the
    new batch: here (Flax's, Keras's) it weights the old statistics, so the running mean would be little more than
    the last batch's and evaluation noisy. Valid, so a warning; no lecture network keeps less than half."""
    if m >= 0.5:
        return ()
    return (
        OpError(
            "warning",
            f"batchnorm(momentum={m:g}) keeps {m:.0%} of the running statistics at each step and takes "
            f"{1 - m:.0%} from the batch: PyTorch's momentum={m:g}?",
            f"momentum here weights the old running statistics (Flax, Keras: 0.9, 0.99); PyTorch's momentum "
            f"weights the new batch, so its momentum={m:g} is momentum={1 - m:g} here",
            arg="momentum",
        ),
    )


def _batchnorm_export(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """For export, in eval mode: the running-statistics formula as plain arithmetic. jax2onnx's BatchNormalization
    conversion assumes channels-first and loses a transpose in ResNet-18; arithmetic exports as written."""
    if not m.use_running_average:
        return m(xs[0])
    x = xs[0]
    shape = [1] * x.ndim
    shape[a["axis"]] = -1
    mean, var = m.mean[...].reshape(shape), m.var[...].reshape(shape)
    y = (x - mean) * ctx.lax.rsqrt(var + a["eps"])
    if m.scale is not None:
        y = y * m.scale[...].reshape(shape)
    if m.bias is not None:
        y = y + m.bias[...].reshape(shape)
    return y.astype(x.dtype)


def fusable(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    """An f32 batch norm over the last axis: the form the fused lowering rewrites."""
    x = types[0]
    return x.dtype == "f32" and a["axis"] in (-1, x.rank - 1)


def _fused_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """On XLA:CPU the fused form's forward + backward takes 0.77-0.96 of the reference's (bench/lowering_rules.py)."""
    return platform == "cpu" and fusable(a, types)


def _batchnorm_fused(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """Training-mode batch norm as one pass for the statistics (E[x], E[x²], as Flax), y = x·a + b with the scale
    and shift folded per channel, and the closed-form gradient (a custom VJP): dx = a·(dy - mean(dy) - x̂·mean(dy·x̂)),
    two reductions and one elementwise pass where autodiff through Flax's formula makes more. Eval mode (running
    statistics) is the reference's."""
    if m.use_running_average:
        return m(xs[0])
    x = xs[0]
    jax, jnp = ctx.jax, ctx.jnp
    axes = tuple(range(x.ndim - 1))
    eps = a["eps"]

    def stats(x: Any) -> tuple[Any, Any, Any]:
        mean = x.mean(axes)
        var = jnp.maximum(0.0, (x * x).mean(axes) - mean * mean)
        return mean, var, jax.lax.rsqrt(var + eps)

    @jax.custom_vjp
    def norm(x: Any, scale: Any, bias: Any) -> Any:
        mean, _, inv = stats(x)
        mul = scale * inv
        return x * mul + (bias - mean * mul)

    def forward(x: Any, scale: Any, bias: Any) -> Any:
        mean, _, inv = stats(x)
        mul = scale * inv
        return x * mul + (bias - mean * mul), (x, mean, inv, scale)

    def backward(res: Any, dy: Any) -> Any:
        x, mean, inv, scale = res
        xhat = (x - mean) * inv
        dbias, dscale = dy.sum(axes), (dy * xhat).sum(axes)
        count = x.size // x.shape[-1]
        dx = (scale * inv) * (dy - dbias / count - xhat * (dscale / count))
        return dx, dscale, dbias

    norm.defvjp(forward, backward)
    mean, var, _ = stats(jax.lax.stop_gradient(x))
    momentum = a["momentum"]
    _store(m.mean, momentum * m.mean[...] + (1 - momentum) * mean)
    _store(m.var, momentum * m.var[...] + (1 - momentum) * var)
    return norm(x, m.scale[...], m.bias[...])


def _store(variable: Any, value: Any) -> None:
    """`variable[...] = value` without Flax's check that a traced value keeps the variable's sharding: asking a
    tracer for its sharding renders the tracer's origin, a walk over everything traced so far, so a model's batch
    norms made tracing it quadratic (18 % of tests/test_lower.py's CPU). The same value is stored."""
    if hasattr(variable, "set_value"):
        variable.set_value(value)
    else:  # a Flax before 0.12
        variable[...] = value


register(
    OpDef(
        name="batchnorm",
        family="norm",
        tensors=1,
        args=(Arg("momentum", "float", 0.9, min=0), Arg("eps", "float", 1e-5), Arg("axis", "axis", -1)),
        infer=_batchnorm,
        lowerings=(
            *_layer(
                lambda a, t, ctx: ctx.nnx.BatchNorm(
                    t.dims[a["axis"]].value,
                    axis=a["axis"],
                    momentum=a["momentum"],
                    epsilon=a["eps"],
                    **half_dtype(t, ctx),
                    rngs=ctx.rngs,
                )
            ),
            Lowering("arithmetic", apply=_batchnorm_export, when=lambda a, t, platform: platform == "export"),
            Lowering("fused", apply=_batchnorm_fused, when=_fused_wins, applies=fusable),
        ),
        label=lambda a: "batchnorm",
        doc="batch normalisation over the feature axis; running mean and variance are state",
    )
)


def _layernorm_fusable(a: dict[str, Any], types: tuple[Any, ...]) -> bool:
    return bool(types[0].dtype == "f32")


def _layernorm_fused_wins(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """On XLA:CPU the closed-form gradient takes less than autodiff through Flax's formula (docs/benchmarks.md)."""
    return platform == "cpu" and _layernorm_fusable(a, types)


def _layernorm_fused(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """Layer norm with Flax's statistics (one pass: E[x], E[x²]) and the closed-form gradient as a custom VJP:
    with g = dy·scale, dx = (g - mean(g) - x̂·mean(g·x̂)) / std over the last axis, two reductions and one
    elementwise pass, where autodiff through Flax's formula differentiates the mean and the variance apart."""
    jax, jnp = ctx.jax, ctx.jnp
    eps = a["eps"]

    def normalized(x: Any) -> tuple[Any, Any]:
        mean = x.mean(-1, keepdims=True)
        var = jnp.maximum(0.0, (x * x).mean(-1, keepdims=True) - mean * mean)
        inv = jax.lax.rsqrt(var + eps)
        return (x - mean) * inv, inv

    @jax.custom_vjp
    def norm(x: Any, scale: Any, bias: Any) -> Any:
        return normalized(x)[0] * scale + bias

    def forward(x: Any, scale: Any, bias: Any) -> Any:
        xhat, inv = normalized(x)
        return xhat * scale + bias, (xhat, inv, scale)

    def backward(res: Any, dy: Any) -> Any:
        xhat, inv, scale = res
        lead = tuple(range(dy.ndim - 1))
        g = dy * scale
        dx = inv * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
        return dx, (dy * xhat).sum(lead), dy.sum(lead)

    norm.defvjp(forward, backward)
    return norm(xs[0], m.scale[...], m.bias[...])


def _last_axis_norm(c: OpCall, ch: int) -> Inferred:
    """Layer and group norm: a learned scale and bias per channel of the last axis, statistics on the fly."""
    return Inferred(
        (c.x,), params={"scale": (ch,), "bias": (ch,)}, flops=product(c.x.dims) * STATS_NORM_FLOPS_PER_ELEMENT
    )


def _layernorm(c: OpCall) -> Inferred:
    _norm_checks(c, 1, "[..., C]")
    return _last_axis_norm(c, c.known(c.x.dims[-1], "the feature axis (the last)"))


register(
    OpDef(
        name="layernorm",
        family="norm",
        tensors=1,
        args=(Arg("eps", "float", 1e-5),),
        infer=_layernorm,
        lowerings=(
            *_layer(
                lambda a, t, ctx: ctx.nnx.LayerNorm(
                    t.dims[-1].value, epsilon=a["eps"], **half_dtype(t, ctx), rngs=ctx.rngs
                )
            ),
            Lowering("fused", apply=_layernorm_fused, when=_layernorm_fused_wins, applies=_layernorm_fusable),
        ),
        label=lambda a: "layernorm",
        doc="layer normalisation over the last axis, with a learned scale and bias per feature",
    )
)


def _groupnorm(c: OpCall) -> Inferred:
    _norm_checks(c, 2, "[N, ..., C]")
    ch = c.known(c.x.dims[-1], "the channel axis (the last)")
    g = c["groups"]
    if ch % g:
        divisors = [d for d in range(1, ch + 1) if ch % d == 0]
        raise c.fail(
            f"groupnorm splits {ch} channels into {g} groups, but {ch} is not divisible by {g} (input {c.x})",
            f"use a number of groups that divides {ch}: " + ", ".join(map(str, divisors)),
            arg="groups",
            kind="argument error",
        )
    return _last_axis_norm(c, ch)


register(
    OpDef(
        name="groupnorm",
        family="norm",
        tensors=1,
        args=(Arg("groups", "int", min=1), Arg("eps", "float", 1e-5)),
        infer=_groupnorm,
        lowerings=_layer(
            lambda a, t, ctx: ctx.nnx.GroupNorm(
                t.dims[-1].value,
                num_groups=a["groups"],
                epsilon=a["eps"],
                **half_dtype(t, ctx),
                rngs=ctx.rngs,
            )
        ),
        label=lambda a: f"groupnorm /{a['groups']}",
        doc="group normalisation: channels split into groups, each normalised over space and its channels",
    )
)


def _dropout(c: OpCall) -> Inferred:
    c.need_float()
    rate = c["rate"]
    if not 0.0 <= rate < 1.0:
        raise c.fail(
            f"dropout's 'rate' is the fraction of values dropped and must be in [0, 1), got {rate}",
            "rate=1 would drop everything; 0.1 to 0.5 are usual",
            arg="rate",
            kind="argument error",
        )
    if c["per"] == "channel" and c.x.rank < 3:
        raise c.fail(
            f"dropout per=channel drops whole feature maps of [N, spatial..., C]; {c.x} has no spatial axes",
            "use per=element (the default) on a feature vector",
            arg="per",
            kind="argument error",
        )
    if c["per"] == "example" and c.x.rank < 2:
        raise c.fail(
            f"dropout per=example drops an example's whole value; {c.x} has no axis besides the batch",
            "apply it to a residual branch [N, ...] before the addition",
            arg="per",
            kind="argument error",
        )
    # identity at inference, where FLOPs are counted
    return Inferred((c.x,))


def shared_axes(per: str, rank: int) -> tuple[int, ...]:
    """The axes one random draw covers (Flax's broadcast_dims): none per element, the spatial axes per channel
    (PyTorch's Dropout2d, Keras's SpatialDropout2D), every axis but the batch per example (stochastic depth)."""
    return {"element": (), "channel": tuple(range(1, rank - 1)), "example": tuple(range(1, rank))}[per]


register(
    OpDef(
        name="dropout",
        family="norm",
        tensors=1,
        args=(
            Arg("rate", "float"),
            Arg(
                "per",
                "enum",
                "element",
                ("element", "channel", "example"),
                doc="what one draw keeps or drops: a value, a feature map (Dropout2d) or a whole example's "
                "value (stochastic depth on a residual branch)",
            ),
        ),
        infer=_dropout,
        lowerings=_layer(
            lambda a, t, ctx: ctx.draws.Dropout(
                a["rate"], **_broadcast_dims(shared_axes(a["per"], t.rank)), rngs=ctx.rngs
            )
        ),
        label=lambda a: f"dropout {a['rate']:g}" + ("" if a["per"] == "element" else f" per {a['per']}"),
        doc="zeroes a fraction `rate` of values while training and rescales the rest; identity otherwise",
    )
)


def _broadcast_dims(axes: tuple[int, ...]) -> dict[str, Any]:
    """Only a shared mask is passed, so the emitted Flax of a plain dropout stays `nnx.Dropout(rate, rngs=...)`."""
    return {"broadcast_dims": axes} if axes else {}
