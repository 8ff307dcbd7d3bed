"""DOT back end: the checked IR drawn as a Graphviz graph for slides, and its computational-graph (autodiff) view.

The DOT text is written here, by hand, so the plain mode needs neither pydot nor JAX; SVG/PNG/PDF come from the
graphviz `dot` binary. Colours follow the lectures' computational graphs: inputs white, trainable parameters red,
operations blue. Values mode (`--values x1=2,x2=3 --grad z`) runs the graph under JAX and annotates every node with
its forward value and the reverse-mode gradient of one value.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from ..ir.graph import Graph, Node, Ref, Scope
from ..ir.types import TensorType
from ..ops._registry import get_op

# The lecture colours: fill and border of each kind of box.
INPUT_FILL, INPUT_LINE = "#FFFFFF", "#212121"
PARAM_FILL, PARAM_LINE = "#FFCDD2", "#C62828"
OP_FILL, OP_LINE = "#BBDEFB", "#1565C0"
VALUE_COLOR, GRAD_COLOR = "#1B5E20", "#C62828"
DETAIL_COLOR = "#546E7A"
FONT = "Helvetica"

FORMATS = {".dot": None, ".gv": None, ".svg": "svg", ".png": "png", ".pdf": "pdf"}
INSTALL_HINT = (
    "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install graphviz`; or write DOT text with `-o out.dot`"
)

# Drawn in full, graphs with more boxes than this do not fit a slide (ResNet-18 has 69, VGG-16 40: page-high
# strips of small print); with no --depth/--collapse given, blocks are collapsed from the innermost level outwards until
# the drawing fits (ResNet-18: its 8 residual blocks as 7 boxes; VGG-16: each stage's convs as one `Conv3 ×3`),
# or every block is one box.
AUTO_COLLAPSE_NODES = 30


class DotError(Exception):
    """A problem with how the drawing was asked for (unknown --collapse name, bad --values) or with Graphviz."""


@dataclass(frozen=True)
class DotOptions:
    """How to draw a graph.

    Args:
        rankdir: TB (top to bottom), LR, BT or RL.
        shapes: tensor shapes on the edges.
        params: parameters (red rows with shapes and counts) on the nodes.
        legend: the colour legend, with the model's name and parameter count.
        collapse: block names, instance names or "all": drawn as one box each.
        depth: blocks nested deeper than this are collapsed (0: every block is one box); None: automatic.
        values: values mode: a number for each input (`{"x1": 2, "x2": 3}` or "x1=2,x2=3"); imports JAX.
        grad: with values: annotate the gradient of this value.
    """

    rankdir: str = "TB"
    shapes: bool = True
    params: bool = True
    legend: bool = True
    collapse: tuple[str, ...] = ()
    depth: int | None = None
    values: Mapping[str, float] | str | None = None
    grad: str | None = None

    def __post_init__(self) -> None:
        if self.rankdir not in ("TB", "LR", "BT", "RL"):
            raise DotError(f"rankdir must be TB, LR, BT or RL, got {self.rankdir!r}")
        if isinstance(self.collapse, str):
            object.__setattr__(self, "collapse", (self.collapse,))
        if self.grad is not None and self.values is None:
            raise DotError("--grad needs --values: the gradient is taken at the given input values")


# ---- what is drawn: nodes, collapsed groups and clusters ---------------------------------------------------------


def _scope_key(s: Scope) -> tuple[Any, ...]:
    # instance names need not be unique when one block calls another (every ConvStage's inner copy is
    # `y.repeat.0`), so the call site is part of the identity
    sp = s.span
    return (s.block, s.instance, sp.file, sp.line, sp.col, s.repeat)


def _group_key(scope: tuple[Scope, ...], upto: int) -> tuple[Any, ...]:
    """The identity of the box that scope[:upto+1] collapses into; the copies of one `repeat` share a box."""
    key = tuple(_scope_key(s) for s in scope[:upto])
    s = scope[upto]
    if s.repeat is not None:
        sp = s.span
        return (*key, ("repeat", s.block, sp.file, sp.line, sp.col, s.repeat[1]))
    return (*key, _scope_key(s))


@dataclass
class _Group:
    """One collapsed block instance (or all copies of one `repeat`), drawn as one box."""

    id: str
    scope: tuple[Scope, ...]
    nodes: list[Node] = field(default_factory=list)

    @property
    def last(self) -> Scope:
        return self.scope[-1]

    @property
    def copies(self) -> int:
        return self.last.repeat[1] if self.last.repeat else 1

    @property
    def param_count(self) -> int:
        return sum(n.param_count for n in self.nodes)


@dataclass
class _Cluster:
    """One expanded block instance: a labelled box around its nodes and inner clusters."""

    id: str
    scope: Scope | None
    items: list[Node | _Group | _Cluster] = field(default_factory=list)
    children: dict[tuple[Any, ...], _Cluster] = field(default_factory=dict)


@dataclass
class _Layout:
    units: dict[int, Node | _Group]  # node id → what it is drawn as
    root: _Cluster


def _collapse_level(node: Node, names: Sequence[str], depth: int | None) -> int | None:
    """The outermost scope index at which this node's block path is collapsed, or None when drawn in full."""
    for i, s in enumerate(node.scope):
        if (depth is not None and i >= depth) or "all" in names or s.block in names or s.instance in names:
            return i
    return None


def _layout(g: Graph, names: Sequence[str], depth: int | None) -> _Layout:
    units: dict[int, Node | _Group] = {}
    groups: dict[tuple[Any, ...], _Group] = {}
    root = _Cluster("root", None)
    n_clusters = 0
    for n in g.nodes:
        level = _collapse_level(n, names, depth)
        expanded = n.scope if level is None else n.scope[:level]
        parent = root
        for i, s in enumerate(expanded):
            key = tuple(_scope_key(x) for x in expanded[: i + 1])
            child = parent.children.get(key)
            if child is None:
                n_clusters += 1
                child = parent.children[key] = _Cluster(f"cluster_{n_clusters}", s)
                parent.items.append(child)
            parent = child
        if level is None:
            units[n.id] = n
            parent.items.append(n)
            continue
        gkey = _group_key(n.scope, level)
        grp = groups.get(gkey)
        if grp is None:
            grp = groups[gkey] = _Group(f"g{n.id}", n.scope[: level + 1])
            parent.items.append(grp)
        grp.nodes.append(n)
        units[n.id] = grp
    return _Layout(units, root)


def _max_depth(g: Graph) -> int:
    return max((len(n.scope) for n in g.nodes), default=0)


def _auto_depth(g: Graph, used: Callable[[Node], bool]) -> int | None:
    """The deepest block level at which the drawing has at most AUTO_COLLAPSE_NODES boxes (None: draw all)."""
    for depth in range(_max_depth(g), -1, -1):
        lay = _layout(g, (), depth)
        boxes = {id(lay.units[n.id]) for n in g.nodes if used(n)}
        if len(boxes) <= AUTO_COLLAPSE_NODES:
            return None if depth == _max_depth(g) else depth
    return 0


# ---- labels ----------------------------------------------------------------------------------------------------


def _esc(s: str) -> str:
    return html.escape(s, quote=False)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shape_text(t: TensorType) -> str:
    """`N×24×24×32`; the dtype is shown only when it is not f32; a scalar is `scalar`."""
    dims = "×".join(str(d) for d in t.dims) if t.dims else "scalar"
    return dims if t.dtype == "f32" else f"{t.dtype} {dims}"


def _count(n: int) -> str:
    return f"{n:,} param" + ("" if n == 1 else "s")


def display_name(n: Node) -> str | None:
    """The user's name for a node's value (`c1`, `h`), or None for the stages of a pipeline and unnamed results."""
    local = n.name.rsplit("/", 1)[-1]
    if n.op in ("input", "param"):
        return local
    if "." in local:
        return None
    base = re.sub(r"_\d+$", "", local)
    return None if base == n.op or get_op(base) is not None else local


def op_text(n: Node) -> str:
    op = get_op(n.op)
    return op.dot_label(n.attr) if op is not None else n.op


def _param_text(n: Node) -> str:
    # a few plain names read well (`kernel 5×5×1×32 · bias 32`); recurrent cells' nested names only as a count
    if len(n.params) <= 3 and all("." not in k for k, _ in n.params):
        return " · ".join(f"{k} {'×'.join(map(str, s))}" for k, s in n.params)
    return ""


def _rows(line: str, *rows: tuple[str, str]) -> str:
    """An HTML-like table with a `line`-coloured border: one cell per row, (fill colour, inner HTML)."""
    cells = "".join(f'<tr><td bgcolor="{fill}" cellpadding="5">{body}</td></tr>' for fill, body in rows)
    return f'<table border="1" cellborder="0" cellspacing="0" color="{line}">{cells}</table>'


def _small(text: str, color: str = DETAIL_COLOR) -> str:
    return f'<font point-size="11" color="{color}">{_esc(text)}</font>'


def _fmt_value(v: Any) -> str:
    import numpy as np

    a = np.asarray(v)
    if a.ndim == 0:
        return f"{float(a):.4g}"
    flat = a.reshape(-1)
    body = ", ".join(f"{float(x):.3g}" for x in flat[:4]) + (", …" if flat.size > 4 else "")
    return f"[{body}]"


@dataclass(frozen=True)
class Annotations:
    """Values mode: node id → forward value, node id → ∂target/∂node, and the target's name."""

    values: Mapping[int, Any]
    grads: Mapping[int, Any]
    target: str | None = None


def _node_html(n: Node, opts: DotOptions, ann: Annotations | None, is_output: bool) -> str:
    """The HTML-like label of one node."""
    name = display_name(n)
    if n.op == "input":
        # with shapes on the edges the input's own shape would be said twice
        head = f"<b>{_esc(n.name)}</b>" + ("" if opts.shapes else f"<br/>{_small(shape_text(n.type))}")
        return _rows(INPUT_LINE, (INPUT_FILL, head + _annotation(n, ann)))
    if n.op == "param":
        body = f"<b>{_esc(name or n.name)}</b><br/>{_small(shape_text(n.type))}"
        if opts.params:
            body += "<br/>" + _small(_count(n.param_count))
        return _rows(PARAM_LINE, (PARAM_FILL, body + _annotation(n, ann)))
    head = f"<b>{_esc(op_text(n))}</b>"
    if name is not None:
        head += "<br/>" + _small(name + (" (output)" if is_output else ""))
    rows = [(OP_FILL, head + _annotation(n, ann))]
    if opts.params and n.params:
        detail = _param_text(n)
        text = (_small(detail, "#000000") + "<br/>" if detail else "") + _small(
            _count(n.param_count), "#000000"
        )
        rows.append((PARAM_FILL, text))
    return _rows(OP_LINE, *rows)


def _annotation(n: Node, ann: Annotations | None) -> str:
    if ann is None or n.id not in ann.values:
        return ""
    out = f'<br/><font color="{VALUE_COLOR}">= {_esc(_fmt_value(ann.values[n.id]))}</font>'
    if n.id in ann.grads:
        wrt = display_name(n) or n.name
        out += f'<br/><font color="{GRAD_COLOR}">∂{_esc(ann.target or "")}/∂{_esc(wrt)} = {_esc(_fmt_value(ann.grads[n.id]))}</font>'
    return out


def _group_html(grp: _Group, opts: DotOptions) -> str:
    """A collapsed block: a heavier border, the block's name, a dark ×n badge for `repeat` copies, its parameters."""
    where = _instance_text(grp.last, collapsed=True)
    head = f"<b>{_esc(grp.last.block)}</b>" + (f"<br/>{_small(where)}" if where else "")
    badge = (
        f'<td bgcolor="{OP_LINE}" cellpadding="5"><font color="#FFFFFF"><b>×{grp.copies}</b></font></td>'
        if grp.copies > 1
        else ""
    )
    cells = f'<tr><td bgcolor="{OP_FILL}" cellpadding="5">{head}</td>{badge}</tr>'
    if opts.params and grp.param_count:
        span = ' colspan="2"' if badge else ""
        cells += f'<tr><td bgcolor="{PARAM_FILL}" cellpadding="5"{span}>{_small(_count(grp.param_count), "#000000")}</td></tr>'
    return f'<table border="2" cellborder="0" cellspacing="0" color="{OP_LINE}">{cells}</table>'


def _instance_text(s: Scope, collapsed: bool = False) -> str:
    """What a cluster or collapsed box says beside the block's name: the user's name for the instance, the copy."""
    inst = s.instance
    if s.repeat is not None:
        i, n = s.repeat
        base = inst.rsplit(".", 2)[0] if ".repeat." in inst else inst.rsplit(".", 1)[0]
        base = "" if base.endswith(".repeat") else base
        return base if collapsed else (f"{base} · " if base else "") + f"copy {i + 1} of {n}"
    last = inst.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return "" if re.fullmatch(rf"{re.escape(s.block)}(_\d+)?", last) else inst


# ---- DOT text --------------------------------------------------------------------------------------------------


def to_dot(graph: Graph, options: DotOptions | None = None, annotations: Annotations | None = None) -> str:
    """The graph as DOT text. Deterministic: the same graph and options give the same bytes."""
    opts = options or DotOptions()
    if annotations is None and opts.values is not None:
        annotations = evaluate(graph, opts.values, opts.grad)
    _check_collapse(graph, opts.collapse)
    consumers: dict[int, int] = {}
    for n in graph.nodes:
        for r in n.inputs:
            consumers[r.node] = consumers.get(r.node, 0) + 1
    outputs = {r.node for _, r in graph.outputs}

    def used(n: Node) -> bool:
        # an input read only by the loss (labels `y`) would float unconnected beside the drawing
        return n.op != "input" or n.id in consumers or n.id in outputs

    depth = opts.depth
    if depth is None and not opts.collapse:
        depth = _auto_depth(graph, used)
    lay = _layout(graph, opts.collapse, depth)

    lines = [
        f"digraph {_quote(graph.model)} {{",
        f'  graph [rankdir={opts.rankdir}, fontname="{FONT}", fontsize=14, nodesep=0.3, ranksep=0.35, '
        "newrank=true, outputorder=edgesfirst];",
        f'  node [shape=plain, fontname="{FONT}", fontsize=14];',
        f'  edge [fontname="{FONT}", fontsize=11, fontcolor="{DETAIL_COLOR}", color="#455A64", arrowsize=0.7];',
    ]
    if opts.legend:
        lines.append(_legend(graph))

    def unit_id(u: Node | _Group) -> str:
        return f"n{u.id}" if isinstance(u, Node) else u.id

    # named instances applied more than once: their clusters say so, and a dotted edge ties the uses together
    shared = {n.instance for n in graph.nodes if n.shares is not None}

    def emit(c: _Cluster, indent: str) -> Iterator[str]:
        for item in c.items:
            if isinstance(item, _Cluster):
                assert item.scope is not None
                where = _instance_text(item.scope)
                base, _, use = item.scope.instance.partition(".")
                if base in shared:
                    where = f"{base} · use {use or 1} · shared weights"
                label = f"<b>{_esc(item.scope.block)}</b>" + (f"  {_small(where)}" if where else "")
                yield f"{indent}subgraph {item.id} {{"
                yield (
                    f'{indent}  graph [label=<{label}>, labeljust=l, style="rounded,dashed", color="#78909C", '
                    "fontsize=13, margin=10];"
                )
                yield from emit(item, indent + "  ")
                yield f"{indent}}}"
            elif isinstance(item, _Group):
                yield f"{indent}{item.id} [label=<{_group_html(item, opts)}>];"
            elif used(item):
                yield f"{indent}n{item.id} [label=<{_node_html(item, opts, annotations, item.id in outputs)}>];"

    lines.extend(emit(lay.root, "  "))

    seen: set[tuple[str, str, Ref]] = set()
    labelled: set[Ref] = set()  # a value that fans out has its shape written on its first edge only
    for n in graph.nodes:
        dst = lay.units[n.id]
        for r in n.inputs:
            src = lay.units[r.node]
            if src is dst:
                continue
            key = (unit_id(src), unit_id(dst), r)
            if key in seen:
                continue
            seen.add(key)
            t = graph.type_of(r)
            attrs = (
                [f"label={_quote(' ' + shape_text(t) + ' ')}"]
                if opts.shapes and t.dims and r not in labelled
                else []
            )
            labelled.add(r)
            lines.append(f"  {key[0]} -> {key[1]}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    tied: set[tuple[str, str]] = set()
    for n in graph.nodes:
        if n.shares is None:
            continue
        a, b = unit_id(lay.units[n.shares]), unit_id(lay.units[n.id])
        if a != b and (a, b) not in tied:
            tied.add((a, b))
            lines.append(
                f'  {a} -> {b} [style=dotted, dir=none, constraint=false, color="{PARAM_LINE}", '
                'label=" same weights ", fontcolor="#B71C1C"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend(g: Graph) -> str:
    swatch = "".join(
        f'<td bgcolor="{fill}" border="1" color="{line}">{text}</td>'
        for fill, line, text in (
            (INPUT_FILL, INPUT_LINE, "input"),
            (PARAM_FILL, PARAM_LINE, "trainable parameters"),
            (OP_FILL, OP_LINE, "operation"),
        )
    )
    title = f"<b>{_esc(g.model)}</b>  {_esc(_count(g.total_params))}"
    return (
        '  legend [label=<<table border="0" cellborder="0" cellspacing="4" cellpadding="4">'
        f'<tr><td colspan="3">{title}</td></tr><tr>{swatch}</tr></table>>];'
    )


def _check_collapse(g: Graph, names: Sequence[str]) -> None:
    known = {s.block for n in g.nodes for s in n.scope} | {s.instance for n in g.nodes for s in n.scope}
    for name in names:
        if name != "all" and name not in known:
            blocks = sorted({s.block for n in g.nodes for s in n.scope})
            dym = did_you_mean(name, known)
            raise DotError(
                f"--collapse {name}: model {g.model} has no block or instance of that name"
                + (f"; {dym}" if dym else "")
                + (f" (its blocks: {', '.join(blocks)}, or 'all')" if blocks else " (it uses no blocks)")
            )


# ---- values mode ---------------------------------------------------------------------------------------------


def parse_values(text: str) -> dict[str, float]:
    """`x1=2,x2=3` → {"x1": 2.0, "x2": 3.0}."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, eq, num = item.partition("=")
        try:
            if not eq:
                raise ValueError
            out[name.strip()] = float(num)
        except ValueError:
            raise DotError(f"--values: cannot read {item!r}; write NAME=NUMBER pairs: x1=2,x2=3") from None
    return out


def evaluate(g: Graph, values: Mapping[str, float] | str, grad: str | None = None) -> Annotations:
    """Run the graph on scalar input values; with `grad`, ∂grad/∂node for every float node by reverse mode (JAX)."""
    import jax
    import jax.numpy as jnp

    given = parse_values(values) if isinstance(values, str) else dict(values)
    names = [k for k, _ in g.inputs]
    listed = ", ".join(f"{k}: {g.nodes[i].type}" for k, i in g.inputs)
    missing = [k for k in names if k not in given]
    extra = [k for k in given if k not in names]
    if missing or extra:
        what = (
            (f"no value for {', '.join(missing)}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"{', '.join(extra)} is not an input" if extra else "")
        )
        raise DotError(f"--values: {what}; model {g.model} takes {listed}")
    inputs = {}
    for k, i in g.inputs:
        t = g.nodes[i].type
        if t.rank != 0:
            raise DotError(f"--values gives scalars, but input {k} is {t}; declare it `input {k}: f32[]`")
        inputs[k] = jnp.asarray(given[k], dtype=jnp.float32 if t.is_float else jnp.int32)

    trace = _tracer(g)
    forward = trace(inputs, None)
    vals = {n.id: forward[n.name] for n in g.nodes if n.name in forward}
    if grad is None:
        return Annotations(vals, {})
    target = _grad_target(g, grad)
    if jnp.ndim(forward[target.name]) != 0:
        raise DotError(f"--grad {grad}: the gradient is taken of a scalar, but {grad} is {target.type}")
    zeros = {
        n.name: jnp.zeros_like(forward[n.name])
        for n in g.nodes
        if len(n.outputs) == 1 and n.type.is_float and n.name in forward
    }
    grads = jax.grad(lambda p: trace(inputs, p)[target.name])(zeros)
    return Annotations(vals, {n.id: grads[n.name] for n in g.nodes if n.name in grads}, grad)


def _grad_target(g: Graph, name: str) -> Node:
    ref = g.value_map.get(name)
    if ref is None:
        by_name = {n.name: n for n in g.nodes}
        if name in by_name:
            return by_name[name]
        dym = did_you_mean(name, list(g.value_map))
        raise DotError(
            f"--grad {name}: model {g.model} has no value of that name"
            + (f"; {dym}" if dym else "")
            + f" (its values: {', '.join(g.value_map)})"
        )
    return g.nodes[ref.node]


def _tracer(g: Graph) -> Callable[[Mapping[str, Any], Mapping[str, Any] | None], dict[str, Any]]:
    """Every node's output as a function of the inputs and additive perturbations (∂z/∂node = ∂z/∂perturbation),
    run by the Flax back end: values mode draws exactly what `specc train` computes."""
    from .flax import build_module

    return build_module(g).trace  # type: ignore[no-any-return]


# ---- files and the command -----------------------------------------------------------------------------------


def render(dot_text: str, fmt: str) -> bytes:
    """SVG/PNG/PDF bytes from the graphviz `dot` binary; DotError with the install hint when it is missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotError(
            f"the Graphviz `dot` program is not installed (needed for .{fmt} output)\nhint: {INSTALL_HINT}"
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise DotError(
            f"dot -T{fmt} failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout


def write(dot_text: str, output: Path) -> None:
    """Write DOT text or, by the suffix, its rendering (.svg, .png, .pdf), atomically."""
    from ..train.io import write_atomic

    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise DotError(
            f"-o {output}: cannot tell the format from {suffix or 'no suffix'}; "
            f"use one of {', '.join(FORMATS)}"
        )
    fmt = FORMATS[suffix]
    write_atomic(output, dot_text.encode() if fmt is None else render(dot_text, fmt))


def dot_command(
    file: Path,
    *,
    model: str | None = None,
    output: Path | None = None,
    rankdir: str = "TB",
    shapes: bool = True,
    params: bool = True,
    legend: bool = True,
    collapse: Sequence[str] = (),
    depth: int | None = None,
    values: str | None = None,
    grad: str | None = None,
) -> None:
    """`specc dot`: the spec's graph as DOT on stdout, or written to -o. Problems with the request, or a missing
    Graphviz, exit 2 (as click's usage errors do); mistakes in the spec raise SpecError (exit 1)."""
    import sys

    import click

    from ..spec import load

    spec = load(file, model)
    try:
        opts = DotOptions(
            rankdir=rankdir,
            shapes=shapes,
            params=params,
            legend=legend,
            collapse=tuple(collapse),
            depth=depth,
            values=values,
            grad=grad,
        )
        text = to_dot(spec.graph(), opts)
        if output is None:
            click.echo(text, nl=False)
        else:
            write(text, output)
            click.echo(f"wrote {output}", err=True)
    except DotError as e:
        click.echo(f"specc: error: {e}", err=True)
        sys.exit(2)
