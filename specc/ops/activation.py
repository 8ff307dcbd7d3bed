"""Activations and elementwise math: shape-preserving ops on one tensor, defined as rows of one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ir.dims import product
from ._registry import Arg, Inferred, OpCall, OpDef, register


def _same(float_only: bool, cost: int) -> Callable[[OpCall], Inferred]:
    def rule(c: OpCall) -> Inferred:
        if float_only:
            c.need_float()
        if c.op.arg("axis") is not None:
            c.axis("axis")
        return Inferred((c.x,), flops=product(c.x.dims) * cost)
    return rule


# name, extra arguments, float-only, rough FLOPs per element, doc
_TABLE: tuple[tuple[str, tuple[Arg, ...], bool, int, str], ...] = (
    ("relu", (), True, 1, "max(x, 0)"),
    ("sigmoid", (), True, 4, "1 / (1 + e^-x)"),
    ("tanh", (), True, 4, "hyperbolic tangent"),
    ("softmax", (Arg("axis", "axis", -1),), True, 5, "exp(x) / sum(exp(x)) along an axis"),
    ("log_softmax", (Arg("axis", "axis", -1),), True, 5, "x - logsumexp(x) along an axis"),
    ("gelu", (Arg("approximate", "bool", False),), True, 8, "Gaussian error linear unit"),
    ("elu", (Arg("alpha", "float", 1.0),), True, 4, "x if x > 0 else alpha*(e^x - 1)"),
    ("leaky_relu", (Arg("slope", "float", 0.01),), True, 2, "x if x > 0 else slope*x"),
    ("selu", (), True, 4, "scaled ELU"),
    ("silu", (), True, 5, "x * sigmoid(x) (swish)"),
    ("softplus", (), True, 4, "log(1 + e^x)"),
    ("step", (), False, 1, "1 if x > 0 else 0 (the perceptron's threshold)"),
    ("sign", (), False, 1, "-1, 0 or 1"),
    ("identity", (), False, 0, "x"),
    ("sin", (), True, 4, "sine"),
    ("cos", (), True, 4, "cosine"),
    ("exp", (), True, 4, "e^x"),
    ("log", (), True, 4, "natural logarithm"),
    ("sqrt", (), True, 4, "square root"),
    ("abs", (), False, 1, "absolute value"),
    ("square", (), False, 1, "x * x"),
    ("neg", (), False, 1, "-x"),
)

ACTIVATIONS = tuple(row[0] for row in _TABLE)


def _label(name: str, args: tuple[Arg, ...]) -> Callable[[Any], str]:
    return lambda a: name if all(a[x.name] == x.default for x in args) else \
        f"{name}({', '.join(f'{x.name}={a[x.name]}' for x in args if a[x.name] != x.default)})"


for _name, _args, _float, _cost, _doc in _TABLE:
    register(OpDef(name=_name, family="activation", tensors=1, args=_args, infer=_same(_float, _cost),
                   label=_label(_name, _args), doc=_doc))
