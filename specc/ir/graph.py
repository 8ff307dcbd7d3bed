"""The IR: a typed dataflow graph of op nodes, in topological order, each with its span and block path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic
from ..source import NO_SPAN, Span
from .dims import Dim
from .types import TensorType


@dataclass(frozen=True)
class Fn:
    """A call-shaped attribute value that is not a tensor op: `normal(0.1)`, `step(0.1, 0.5, 10)`."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        parts = [_fmt_attr(a) for a in self.args] + [f"{k}={_fmt_attr(v)}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class Scope:
    """One block instance on the path from the model to a node.

    Args:
        block: the block's name (`ResUnit`).
        instance: unique within the model (`ResUnit_2`, or `stage1.0` inside a repeat).
        span: the call site.
        repeat: (index, count) when the instance is one copy of `repeat(count, ...)`.
        args: the arguments the call gave, evaluated, by parameter name (drawings label a block with them).
    """

    block: str
    instance: str
    span: Span = field(default=NO_SPAN, compare=False)
    repeat: tuple[int, int] | None = None
    args: tuple[tuple[str, Any], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Ref:
    """One output of one node."""

    node: int
    index: int = 0


@dataclass(frozen=True)
class Node:
    """One op application.

    Args:
        id: the node's index in Graph.nodes.
        name: the value's name (the user's where they bound one, else `<op>_<id>`), unique in the graph.
        op: the registry name (`conv`), or `input` / `param` / `const`.
        attrs: the op's arguments after defaults, in signature order.
        inputs: the tensors it reads.
        outputs: one type per output (most ops have one).
        params: trainable tensors it owns, name → concrete shape.
        state: non-trainable tensors it owns (batch-norm statistics), name → shape.
        flops: per example (the batch symbol left free), multiply-add = 2.
        scope: the block instances it sits in, outermost first.
        instance: the named layer instance (`D = Discriminator()`, `enc = dense(64)`) it belongs to, or "".
        shares: the node whose parameters and state this one uses (a second application of a named instance);
            such a node owns none itself, so counts see each shared weight once.
    """

    id: int
    name: str
    op: str
    attrs: tuple[tuple[str, Any], ...]
    inputs: tuple[Ref, ...]
    outputs: tuple[TensorType, ...]
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    state: tuple[tuple[str, tuple[int, ...]], ...] = ()
    flops: Dim = field(default_factory=lambda: Dim.const(0))
    scope: tuple[Scope, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)
    instance: str = ""
    shares: int | None = None

    @property
    def type(self) -> TensorType:
        return self.outputs[0]

    @property
    def attr(self) -> dict[str, Any]:
        return dict(self.attrs)

    @property
    def param_count(self) -> int:
        return sum(_numel(s) for _, s in self.params)

    @property
    def state_count(self) -> int:
        return sum(_numel(s) for _, s in self.state)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Graph:
    """A checked model.

    Args:
        model: its name.
        nodes: in topological order; nodes[i].id == i.
        inputs: input name → node id (op `input`), in declaration order.
        outputs: output name → Ref, in declaration order.
        values: every named value at model level → Ref (losses and metrics may use any of them).
        pretrained: named instances that start from an earlier run's weights: (instance, run path as written,
            where it is written).
        warnings: what the ops' rules found valid but almost surely not meant (`conv(3, 64, 3)`), located.
    """

    model: str
    nodes: tuple[Node, ...]
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, Ref], ...]
    values: tuple[tuple[str, Ref], ...]
    span: Span = field(default=NO_SPAN, compare=False)
    pretrained: tuple[tuple[str, str, Span], ...] = field(default=(), compare=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def type_of(self, ref: Ref) -> TensorType:
        return self.nodes[ref.node].outputs[ref.index]

    @property
    def input_map(self) -> Mapping[str, int]:
        return dict(self.inputs)

    @property
    def output_map(self) -> Mapping[str, Ref]:
        return dict(self.outputs)

    @property
    def value_map(self) -> Mapping[str, Ref]:
        return dict(self.values)

    @property
    def total_params(self) -> int:
        return sum(n.param_count for n in self.nodes)

    @property
    def total_state(self) -> int:
        return sum(n.state_count for n in self.nodes)

    @property
    def total_flops(self) -> Dim:
        out = Dim.const(0)
        for n in self.nodes:
            out = out + n.flops
        return out


def path_between(nodes: Sequence[Node], src: Ref, dst: Ref) -> tuple[int, ...] | None:
    """The nodes on some path from value `src` to value `dst`, in order (src's node first, dst's last), or None
    when dst is not computed from src. `nodes` is a graph's nodes in topological order, or a prefix of them (the
    builder's, while it builds). What `grad(y, x)` re-evaluates as a function of x."""
    if dst == src:
        return (src.node,)
    if dst.node <= src.node:
        return None
    reach = [False] * (dst.node + 1)
    reach[src.node] = True
    for n in nodes[src.node + 1 : dst.node + 1]:
        # from src's own node only its output src.index leads on (another output of a `split` is a constant)
        reach[n.id] = any(r == src if r.node == src.node else reach[r.node] for r in n.inputs)
    if not reach[dst.node]:
        return None
    back = {dst.node}
    for n in reversed(nodes[src.node + 1 : dst.node + 1]):
        if n.id in back:
            back.update(r.node for r in n.inputs if reach[r.node])
    return tuple(i for i in range(src.node, dst.node + 1) if i in back)


def _fmt_attr(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt_attr(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_attr(x) for x in v) + "]"
    if v is None:
        return "none"
    return str(v)


fmt_attr = _fmt_attr
