"""The IR verifier: every value defined once and before use, no cycles, every type known and re-derivable.

Run after every pass in tests (as bril and tinygrad do): it re-runs each op's rule on the recorded inputs and
checks the recorded outputs, parameters and state against it.
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ops._registry import GraphView, OpCall, OpError, get_op

SOURCE_OPS = ("input", "param")


def verify(g: Graph) -> list[str]:
    """Problems found, as sentences; an empty list means the graph is well formed."""
    problems: list[str] = []
    names: set[str] = set()
    for i, n in enumerate(g.nodes):
        if n.id != i:
            problems.append(f"node {n.name} has id {n.id} at position {i}")
        if n.name in names:
            problems.append(f"name {n.name} is defined twice")
        names.add(n.name)
        for r in n.inputs:
            if not 0 <= r.node < i:
                problems.append(
                    f"{n.name} reads node {r.node}, which is not defined before it (cycle or forward use)"
                )
            elif r.index >= len(g.nodes[r.node].outputs):
                problems.append(f"{n.name} reads output {r.index} of {g.nodes[r.node].name}, which has fewer")
        if n.op in SOURCE_OPS:
            if n.inputs:
                problems.append(f"{n.op} node {n.name} has inputs")
            continue
        op = get_op(n.op)
        if op is None:
            problems.append(f"{n.name} uses unknown op {n.op}")
            continue
        attrs = dict(n.attrs)
        if set(attrs) != {a.name for a in op.args}:
            problems.append(
                f"{n.name}: recorded attributes {sorted(attrs)} are not {op.name}'s "
                f"{sorted(a.name for a in op.args)}"
            )
            continue
        if any(r.node >= i for r in n.inputs):
            continue
        view = GraphView(g.nodes, n.inputs) if op.reruns is not None else None
        try:
            inf = op.infer(OpCall(op, attrs, tuple(g.type_of(r) for r in n.inputs), view))
        except OpError as e:
            problems.append(f"{n.name}: the rule of {op.name} refuses the recorded inputs: {e.message}")
            continue
        if inf.outputs != n.outputs:
            problems.append(f"{n.name}: recorded type {n.outputs} but the rule gives {inf.outputs}")
        # a second application of a named instance owns nothing: its rule's weights are those of the node it shares
        owner = n
        if n.shares is not None:
            if not 0 <= n.shares < i or g.nodes[n.shares].shares is not None:
                problems.append(
                    f"{n.name} shares the weights of node {n.shares}, which is not an earlier owner"
                )
                continue
            if n.params or n.state:
                problems.append(f"{n.name} shares another node's weights but records its own")
            owner = g.nodes[n.shares]
        if tuple(inf.params.items()) != owner.params:
            problems.append(f"{n.name}: recorded params {owner.params} but the rule gives {dict(inf.params)}")
        if tuple(inf.state.items()) != owner.state:
            problems.append(f"{n.name}: recorded state {owner.state} but the rule gives {dict(inf.state)}")
    for name, r in (*g.outputs, *g.values):
        if not 0 <= r.node < len(g.nodes):
            problems.append(f"value {name} points at missing node {r.node}")
    return problems
