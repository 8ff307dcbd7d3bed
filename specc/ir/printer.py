"""A stable text dump of the IR (`specc compile --emit ir`), for golden tests and for reading."""

from __future__ import annotations

from .graph import Graph, Node, Ref, fmt_attr


def _ref(g: Graph, r: Ref) -> str:
    n = g.nodes[r.node]
    return f"%{n.name}" + (f"#{r.index}" if len(n.outputs) > 1 else "")


def format_node(g: Graph, n: Node) -> str:
    types = ", ".join(str(t) for t in n.outputs)
    args = [_ref(g, r) for r in n.inputs] + [f"{k}={fmt_attr(v)}" for k, v in n.attrs]
    line = f"  %{n.name}: {types} = {n.op}({', '.join(args)})"
    extra = []
    if n.params:
        extra.append("params " + " ".join(f"{k}{list(s)}" for k, s in n.params))
    if n.state:
        extra.append("state " + " ".join(f"{k}{list(s)}" for k, s in n.state))
    if n.shares is not None:
        extra.append(f"shares %{g.nodes[n.shares].name}")
    if n.instance:
        extra.append(f"instance {n.instance}")
    if n.scope:
        extra.append(
            "in "
            + "/".join(s.instance + (f"[{s.repeat[0]}/{s.repeat[1]}]" if s.repeat else "") for s in n.scope)
        )
    return line + (f"  # {'; '.join(extra)}" if extra else "")


def format_graph(g: Graph) -> str:
    lines = [f"model {g.model} {{"]
    lines += [format_node(g, n) for n in g.nodes]
    lines.append("  output " + ", ".join(f"{k}={_ref(g, r)}" for k, r in g.outputs))
    lines.append(f"}}  # {len(g.nodes)} nodes, {g.total_params:,} params, {g.total_state:,} state")
    return "\n".join(lines) + "\n"
