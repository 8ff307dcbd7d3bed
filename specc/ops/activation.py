"""Activations and elementwise math: shape-preserving ops on one tensor, defined as rows of one table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ir.dims import product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, OpError, register


def _same(accepts: str, cost: int) -> Callable[[OpCall], Inferred]:
    def rule(c: OpCall) -> Inferred:
        if accepts == "float":
            c.need_float()
        elif (
            accepts == "number" and c.x.dtype == "bool"
        ):  # jnp.negative, sign refuse booleans; square gives i32
            raise c.fail(
                f"{c.op.name} expects a number input, got {c.x}",
                "convert the booleans with `-> cast(f32)` or `-> cast(i32)`",
                kind="type error",
            )
        warnings: tuple[OpError, ...] = ()
        if c.op.arg("axis") is not None:
            axis = c.axis("axis")
            first = c.x.dims[0]
            if axis == 0 and c.x.rank >= 2 and not first.is_const:
                # `softmax(axis=0)` (or `softmax(0)`) on [N, C]: each class's scores normalised across the batch
                warnings = (
                    OpError(
                        "warning",
                        f"{c.op.name}(axis={c['axis']}) normalises over axis 0, the batch ({first}) of {c.x}: each "
                        "example's values would depend on the others in its batch",
                        f"the classes are the last axis: write {c.op.name} (axis=-1, the default)",
                        arg="axis",
                    ),
                )
        return Inferred((c.x,), flops=product(c.x.dims) * cost, warnings=warnings)

    return rule


@dataclass(frozen=True)
class _Act:
    """One activation: its name, extra arguments, the input dtypes it accepts (float | number: not bool | any),
    rough FLOPs per element and doc; and how it computes, defined once, which the lowering calls and `specc compile
    --emit flax` writes out (`activation_source`): `call` a JAX function and its keyword arguments (JAX's name,
    the row's argument), or `special` for what no JAX function computes as specc defines it, as (ctx, x, attrs) →
    array and as source text over `{x}`."""

    name: str
    args: tuple[Arg, ...]
    accepts: str
    cost: int
    doc: str
    call: str = ""
    kwargs: tuple[tuple[str, str], ...] = ()
    special: tuple[Callable[[Any, Any, Any], Any], str] | None = None


_AXIS = (Arg("axis", "axis", -1),)

_TABLE: tuple[_Act, ...] = (
    _Act("relu", (), "float", 1, "max(x, 0)", "jax.nn.relu"),
    _Act("relu6", (), "float", 2, "min(max(x, 0), 6) (MobileNetV2)", "jax.nn.relu6"),
    _Act("sigmoid", (), "float", 4, "1 / (1 + e^-x)", "jax.nn.sigmoid"),
    # jax.nn.hard_sigmoid is relu6(x + 3) / 6 and hard_swish x * hard_sigmoid(x): PyTorch's Hardsigmoid and
    # Hardswish exactly (not Keras's 0.2x + 0.5 hard sigmoid)
    _Act("hard_sigmoid", (), "float", 3, "relu6(x + 3) / 6, PyTorch's Hardsigmoid", "jax.nn.hard_sigmoid"),
    _Act("tanh", (), "float", 4, "hyperbolic tangent", "jnp.tanh"),
    _Act(
        "softmax",
        _AXIS,
        "float",
        5,
        "exp(x) / sum(exp(x)) along an axis",
        "jax.nn.softmax",
        (("axis", "axis"),),
    ),
    _Act(
        "log_softmax",
        _AXIS,
        "float",
        5,
        "x - logsumexp(x) along an axis",
        "jax.nn.log_softmax",
        (("axis", "axis"),),
    ),
    _Act(
        "gelu",
        (Arg("approximate", "bool", False),),
        "float",
        8,
        "Gaussian error linear unit",
        "jax.nn.gelu",
        (("approximate", "approximate"),),
    ),
    _Act(
        "elu",
        (Arg("alpha", "float", 1.0),),
        "float",
        4,
        "x if x > 0 else alpha*(e^x - 1)",
        "jax.nn.elu",
        (("alpha", "alpha"),),
    ),
    _Act(
        "leaky_relu",
        (Arg("slope", "float", 0.01),),
        "float",
        2,
        "x if x > 0 else slope*x",
        "jax.nn.leaky_relu",
        (("negative_slope", "slope"),),
    ),
    _Act("selu", (), "float", 4, "scaled ELU", "jax.nn.selu"),
    _Act("silu", (), "float", 5, "x * sigmoid(x) (swish)", "jax.nn.silu"),
    _Act(
        "hard_swish",
        (),
        "float",
        4,
        "x * relu6(x + 3) / 6, PyTorch's Hardswish (MobileNetV3)",
        "jax.nn.hard_swish",
    ),
    _Act("softplus", (), "float", 4, "log(1 + e^x)", "jax.nn.softplus"),
    _Act(
        "step",
        (),
        "any",
        1,
        "1 if x > 0 else 0 (the perceptron's threshold)",
        special=(lambda c, x, a: (x > 0).astype(x.dtype), "({x} > 0).astype({x}.dtype)"),
    ),
    _Act("sign", (), "number", 1, "-1, 0 or 1", "jnp.sign"),
    _Act("identity", (), "any", 0, "x", special=(lambda c, x, a: x, "{x}")),
    _Act("sin", (), "float", 4, "sine", "jnp.sin"),
    _Act("cos", (), "float", 4, "cosine", "jnp.cos"),
    _Act("exp", (), "float", 4, "e^x", "jnp.exp"),
    _Act("log", (), "float", 4, "natural logarithm", "jnp.log"),
    _Act("sqrt", (), "float", 4, "square root", "jnp.sqrt"),
    _Act("abs", (), "any", 1, "absolute value", "jnp.abs"),
    _Act("square", (), "number", 1, "x * x", "jnp.square"),
    _Act("neg", (), "number", 1, "-x", "jnp.negative"),
)

_ROWS = {row.name: row for row in _TABLE}
ACTIVATIONS = tuple(_ROWS)


def activation_source(name: str, x: str, attrs: dict[str, Any], lit: Callable[[Any], str]) -> str:
    """Row `name` applied to the expression `x`, as Python source (`jax.nn.leaky_relu(h, negative_slope=0.2)`);
    `lit` writes an argument's value."""
    row = _ROWS[name]
    if row.special is not None:
        return row.special[1].format(x=x)
    return (
        f"{row.call}({x}" + "".join(f", {jax_name}={lit(attrs[arg])}" for jax_name, arg in row.kwargs) + ")"
    )


def _lowering(row: _Act) -> Lowering:
    if row.special is not None:
        f = row.special[0]
        return Lowering("reference", apply=lambda m, a, xs, ctx: f(ctx, xs[0], a))
    path, kwargs = row.call, row.kwargs

    def apply(m: Any, a: Any, xs: list[Any], ctx: Any) -> Any:
        fn = ctx
        for part in path.split("."):  # jax.nn.relu: the lowering context's jax, then .nn, then .relu
            fn = getattr(fn, part)
        return fn(xs[0], **{jax_name: a[arg] for jax_name, arg in kwargs})

    return Lowering("reference", apply=apply)


def _label(name: str, args: tuple[Arg, ...]) -> Callable[[Any], str]:
    return lambda a: (
        name
        if all(a[x.name] == x.default for x in args)
        else f"{name}({', '.join(f'{x.name}={a[x.name]}' for x in args if a[x.name] != x.default)})"
    )


for _row in _TABLE:
    if bool(_row.call) == (_row.special is not None):
        raise TypeError(f"activation {_row.name}: give it a JAX call or a special form, not both or neither")
    register(
        OpDef(
            name=_row.name,
            family="activation",
            tensors=1,
            args=_row.args,
            infer=_same(_row.accepts, _row.cost),
            lowerings=(_lowering(_row),),
            label=_label(_row.name, _row.args),
            doc=_row.doc,
        )
    )
