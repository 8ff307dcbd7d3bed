"""Activations and elementwise math: shape-preserving ops on one tensor, defined as rows of one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ir.dims import product
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register


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
        if c.op.arg("axis") is not None:
            c.axis("axis")
        return Inferred((c.x,), flops=product(c.x.dims) * cost)

    return rule


# name, extra arguments, input dtypes accepted (float | number: not bool | any), rough FLOPs per element, doc
_TABLE: tuple[tuple[str, tuple[Arg, ...], str, int, str], ...] = (
    ("relu", (), "float", 1, "max(x, 0)"),
    ("relu6", (), "float", 2, "min(max(x, 0), 6) (MobileNetV2)"),
    ("sigmoid", (), "float", 4, "1 / (1 + e^-x)"),
    ("hard_sigmoid", (), "float", 3, "relu6(x + 3) / 6, PyTorch's Hardsigmoid"),
    ("tanh", (), "float", 4, "hyperbolic tangent"),
    ("softmax", (Arg("axis", "axis", -1),), "float", 5, "exp(x) / sum(exp(x)) along an axis"),
    ("log_softmax", (Arg("axis", "axis", -1),), "float", 5, "x - logsumexp(x) along an axis"),
    ("gelu", (Arg("approximate", "bool", False),), "float", 8, "Gaussian error linear unit"),
    ("elu", (Arg("alpha", "float", 1.0),), "float", 4, "x if x > 0 else alpha*(e^x - 1)"),
    ("leaky_relu", (Arg("slope", "float", 0.01),), "float", 2, "x if x > 0 else slope*x"),
    ("selu", (), "float", 4, "scaled ELU"),
    ("silu", (), "float", 5, "x * sigmoid(x) (swish)"),
    ("hard_swish", (), "float", 4, "x * relu6(x + 3) / 6, PyTorch's Hardswish (MobileNetV3)"),
    ("softplus", (), "float", 4, "log(1 + e^x)"),
    ("step", (), "any", 1, "1 if x > 0 else 0 (the perceptron's threshold)"),
    ("sign", (), "number", 1, "-1, 0 or 1"),
    ("identity", (), "any", 0, "x"),
    ("sin", (), "float", 4, "sine"),
    ("cos", (), "float", 4, "cosine"),
    ("exp", (), "float", 4, "e^x"),
    ("log", (), "float", 4, "natural logarithm"),
    ("sqrt", (), "float", 4, "square root"),
    ("abs", (), "any", 1, "absolute value"),
    ("square", (), "number", 1, "x * x"),
    ("neg", (), "number", 1, "-x"),
)

ACTIVATIONS = tuple(row[0] for row in _TABLE)

# The JAX function of each row and its keyword arguments (JAX's name, the row's argument): one definition, which
# the lowering calls and `specc compile --emit flax` writes out (`activation_source`).
CALLS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "relu": ("jax.nn.relu", ()),
    "relu6": ("jax.nn.relu6", ()),
    "sigmoid": ("jax.nn.sigmoid", ()),
    # jax.nn.hard_sigmoid is relu6(x + 3) / 6 and hard_swish x * hard_sigmoid(x): PyTorch's Hardsigmoid and
    # Hardswish exactly (not Keras's 0.2x + 0.5 hard sigmoid)
    "hard_sigmoid": ("jax.nn.hard_sigmoid", ()),
    "tanh": ("jnp.tanh", ()),
    "softmax": ("jax.nn.softmax", (("axis", "axis"),)),
    "log_softmax": ("jax.nn.log_softmax", (("axis", "axis"),)),
    "gelu": ("jax.nn.gelu", (("approximate", "approximate"),)),
    "elu": ("jax.nn.elu", (("alpha", "alpha"),)),
    "leaky_relu": ("jax.nn.leaky_relu", (("negative_slope", "slope"),)),
    "selu": ("jax.nn.selu", ()),
    "silu": ("jax.nn.silu", ()),
    "hard_swish": ("jax.nn.hard_swish", ()),
    "softplus": ("jax.nn.softplus", ()),
    "sign": ("jnp.sign", ()),
    "sin": ("jnp.sin", ()),
    "cos": ("jnp.cos", ()),
    "exp": ("jnp.exp", ()),
    "log": ("jnp.log", ()),
    "sqrt": ("jnp.sqrt", ()),
    "abs": ("jnp.abs", ()),
    "square": ("jnp.square", ()),
    "neg": ("jnp.negative", ()),
}
# The rows no JAX function computes as specc defines them: (ctx, x, attrs) → array, and the same as source text.
SPECIAL: dict[str, tuple[Callable[[Any, Any, Any], Any], str]] = {
    "step": (lambda c, x, a: (x > 0).astype(x.dtype), "({x} > 0).astype({x}.dtype)"),
    "identity": (lambda c, x, a: x, "{x}"),
}


def activation_source(name: str, x: str, attrs: dict[str, Any], lit: Callable[[Any], str]) -> str:
    """Row `name` applied to the expression `x`, as Python source (`jax.nn.leaky_relu(h, negative_slope=0.2)`);
    `lit` writes an argument's value."""
    if name in SPECIAL:
        return SPECIAL[name][1].format(x=x)
    path, kwargs = CALLS[name]
    return f"{path}({x}" + "".join(f", {jax_name}={lit(attrs[arg])}" for jax_name, arg in kwargs) + ")"


def _lowering(name: str) -> Lowering:
    if name in SPECIAL:
        f = SPECIAL[name][0]
        return Lowering("reference", apply=lambda m, a, xs, ctx: f(ctx, xs[0], a))
    path, kwargs = CALLS[name]

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


for _name, _args, _accepts, _cost, _doc in _TABLE:
    register(
        OpDef(
            name=_name,
            family="activation",
            tensors=1,
            args=_args,
            infer=_same(_accepts, _cost),
            lowerings=(_lowering(_name),),
            label=_label(_name, _args),
            doc=_doc,
        )
    )
