"""Differentiation inside the model: `grad(y, x)`, the gradient of one value with respect to another (the autodiff
lecture's derivative, WGAN-GP's gradient penalty)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ir.dims import Dim
from ..ir.graph import Node, Ref, path_between
from ._registry import Inferred, Lowering, OpCall, OpDef, OpError, register

# The backward pass of an op costs about twice its forward (a dense layer's two matmuls, for the input's and the
# weights' gradients, against one): grad counts twice the forward FLOPs of the path it differentiates.
BACKWARD_FLOPS_FACTOR = 2


def _grad(c: OpCall) -> Inferred:
    y, x = c.inputs
    yname, xname = _names(c)
    if not x.is_float:
        raise c.fail(
            f"grad differentiates with respect to a float tensor, but {xname} is {x}",
            "integers (labels, indices) have no gradient; differentiate with respect to the float values "
            "computed from them (an embedding's output, `cast(f32)` of them)",
            arg="x",
            kind="type error",
        )
    if not y.is_float:
        raise c.fail(
            f"grad differentiates a float tensor, but {yname} is {y}",
            "an integer result (an argmax, a count) is piecewise constant: its gradient is zero or undefined; "
            "differentiate the float scores it is computed from",
            arg="y",
            kind="type error",
        )
    if c.graph is None:  # no graph (the reference's example): the types only
        return Inferred((x,))
    yref, xref = c.graph.refs
    path = path_between(c.graph.nodes, xref, yref)
    if path is None:
        sources = _sources(c.graph.nodes, yref.node)
        raise c.fail(
            f"grad({yname}, {xname}): expected x to be a value that {yname} is computed from, but {yname} does "
            f"not depend on {xname} (the gradient would be zero everywhere)",
            f"{yname} is computed from {', '.join(sources)}: take x among those, or a value on the way from them "
            f"to {yname}"
            if sources
            else f"{yname} is computed from no input or param: it is a constant",
            kind="value error",
        )
    nodes = [c.graph.nodes[i] for i in path[1:]]
    forward = sum((n.flops for n in nodes), Dim.const(0))
    warnings: tuple[OpError, ...] = ()
    norms = [n.name for n in nodes if n.op == "batchnorm"]
    if norms and x.dims and not x.dims[0].is_const:  # x has examples (a batch axis N), not a weight's shape
        warnings = (
            OpError(
                "warning",
                f"grad({yname}, {xname}) differentiates through batchnorm ({', '.join(norms)}), which in "
                "training normalises over the batch: each example's gradient then depends on the other examples",
                "leave batch normalisation out of the path (WGAN-GP's critic has none), or use `layernorm`, "
                "which normalises each example on its own",
            ),
        )
    return Inferred((x,), flops=forward * BACKWARD_FLOPS_FACTOR, warnings=warnings)


def _sources(nodes: Sequence[Node], node: int, most: int = 4) -> list[str]:
    """The inputs and params a node is computed from, in order (at most `most`, then `...`)."""
    seen = {node}
    for n in reversed(nodes[: node + 1]):
        if n.id in seen:
            seen.update(r.node for r in n.inputs)
    found = [f"`{nodes[i].name}`" for i in sorted(seen) if nodes[i].op in ("input", "param")]
    return found if len(found) <= most else [*found[:most], "..."]


def _names(c: OpCall) -> tuple[str, str]:
    """The two values' names as the spec writes them (a block's `h`, not `Critic_1/h`; `b` of `a, b = split(x)`),
    else y and x."""
    if c.graph is None:
        return "y", "x"
    names = []
    for r in c.graph.refs:
        node = c.graph.nodes[r.node]
        local = node.name.rsplit("/", 1)[-1].split(",")
        names.append(local[r.index] if len(local) == len(node.outputs) else f"{local[0]}[{r.index}]")
    return names[0], names[1]


def _grad_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    yref, xref = ctx.node.inputs
    y_of = ctx.function_of(xref, yref)
    # the path from x to y run again as a function of x: jax.grad of it is itself differentiable, so a loss
    # holding the gradient (a gradient penalty) trains the weights on the path (double backpropagation)
    return ctx.jax.grad(lambda v: ctx.jnp.sum(y_of(v)))(xs[1])


def _grad_ends(inputs: Sequence[Ref]) -> tuple[Ref, Ref]:
    y, x = inputs
    return x, y


register(
    OpDef(
        name="grad",
        family="autodiff",
        tensors=2,
        tensor_names=("y", "x"),
        args=(),
        infer=_grad,
        lowerings=(Lowering("reference", apply=_grad_apply),),
        label=lambda a: "grad",
        doc="d(sum of y)/dx, the shape and dtype of x: the gradient of a value with respect to one it is "
        "computed from, itself differentiable (a gradient penalty); FLOPs: twice the path's forward",
        reruns=_grad_ends,
    )
)
