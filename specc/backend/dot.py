"""DOT back end: the checked IR drawn as a Graphviz graph for slides, and its computational-graph (autodiff) view.

The DOT text is written here, by hand, so the plain mode needs neither pydot nor JAX; SVG/PNG/PDF come from the
graphviz `dot` binary. Colours follow the lectures' computational graphs: inputs white, trainable parameters red,
operations blue. Values mode (`--values x1=2,x2=3 --grad z`) runs the graph under JAX and annotates every node with
its forward value and the reverse-mode gradient of one value.
"""

from __future__ import annotations

import html
import itertools
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from ..ir.dims import Dim
from ..ir.graph import Graph, Node, Ref, Scope
from ..ir.types import TensorType
from ..ops._registry import get_op
from .dot_blocks import (
    Part,
    Structure,
    SubBlock,
    block_graph,
    block_label,
    block_structure,
    group_key,
    scope_key,
    user_name,
)

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
        rankdir: TB (top to bottom), LR, BT or RL; None: chosen to fit a 16:9 slide (TB, or LR rows).
        shapes: tensor shapes on the edges.
        params: parameters (red rows with shapes and counts) on the nodes.
        legend: the compact legend, with the model's name and parameter count.
        collapse: block names, instance names or "all": drawn as one box each.
        depth: blocks nested deeper than this are collapsed (0: every block is one box); None: automatic.
        wrap: long chains wrap into rows (LR) or columns (TB); None: when the drawing would not fit a slide.
        values: values mode: a number for each input (`{"x1": 2, "x2": 3}` or "x1=2,x2=3"); imports JAX.
        grad: with values: annotate the gradient of this value.
    """

    rankdir: str | None = None
    shapes: bool = True
    params: bool = True
    legend: bool = True
    collapse: tuple[str, ...] = ()
    depth: int | None = None
    wrap: bool | None = None
    values: Mapping[str, float] | str | None = None
    grad: str | None = None

    def __post_init__(self) -> None:
        if self.rankdir not in (None, "TB", "LR", "BT", "RL"):
            raise DotError(f"rankdir must be TB, LR, BT or RL, got {self.rankdir!r}")
        if isinstance(self.collapse, str):
            object.__setattr__(self, "collapse", (self.collapse,))
        if self.grad is not None and self.values is None:
            raise DotError("--grad needs --values: the gradient is taken at the given input values")


# ---- what is drawn: nodes, collapsed groups and clusters ---------------------------------------------------------


@dataclass
class _Group:
    """One collapsed block instance (or all copies of one `repeat`): one box, or a cluster of its branches."""

    id: str
    scope: tuple[Scope, ...]
    nodes: list[Node] = field(default_factory=list)
    structure: Structure | None = None

    @property
    def last(self) -> Scope:
        return self.scope[-1]

    @property
    def copies(self) -> int:
        return self.last.repeat[1] if self.last.repeat else 1

    @property
    def param_count(self) -> int:
        return sum(n.param_count for n in self.nodes)

    def endpoint(self, node: int) -> str:
        """The DOT id an edge into or out of this node attaches to."""
        return self.id if self.structure is None else f"{self.id}p{self.structure.part_of[node]}"


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


def _layout(g: Graph, names: Sequence[str], depth: int | None, structure: bool = True) -> _Layout:
    units: dict[int, Node | _Group] = {}
    groups: dict[tuple[Any, ...], _Group] = {}
    root = _Cluster("root", None)
    n_clusters = 0
    for n in g.nodes:
        level = _collapse_level(n, names, depth)
        expanded = n.scope if level is None else n.scope[:level]
        parent = root
        for i, s in enumerate(expanded):
            key = tuple(scope_key(x) for x in expanded[: i + 1])
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
        gkey = group_key(n.scope, level)
        grp = groups.get(gkey)
        if grp is None:
            grp = groups[gkey] = _Group(f"g{n.id}", n.scope[: level + 1])
            parent.items.append(grp)
        grp.nodes.append(n)
        units[n.id] = grp
    if structure:
        for grp in groups.values():
            grp.structure = block_structure(grp.nodes, len(grp.scope) - 1)
    return _Layout(units, root)


def _max_depth(g: Graph) -> int:
    return max((len(n.scope) for n in g.nodes), default=0)


def _auto_depth(g: Graph, used: Callable[[Node], bool]) -> int | None:
    """The deepest block level at which the drawing has at most AUTO_COLLAPSE_NODES boxes (None: draw all); a
    collapsed block counts as one box, its branches included."""
    for depth in range(_max_depth(g), -1, -1):
        lay = _layout(g, (), depth, structure=False)
        boxes = {id(lay.units[n.id]) for n in g.nodes if used(n)}
        if len(boxes) <= AUTO_COLLAPSE_NODES:
            return None if depth == _max_depth(g) else depth
    return 0


# ---- labels ----------------------------------------------------------------------------------------------------


def _esc(s: str) -> str:
    return html.escape(s, quote=False)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dim_text(d: Dim) -> str:
    """One axis among others: a number, a size or a floor division (`(H + 1)/2` carries its own parentheses) bare;
    any other expression parenthesised, so that `×` cannot be read into it: `N×(H - 2)×(2*W)`, not `N×H - 2×2*W`."""
    single_atom = len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1
    return str(d) if d.is_const or single_atom else f"({d})"


def shape_text(t: TensorType) -> str:
    """`N×24×24×32`, `N×(H - 2)×(W - 2)×8`; the dtype is shown only when it is not f32; a scalar is `scalar`."""
    dims = "×".join(map(_dim_text, t.dims)) if len(t.dims) > 1 else str(t.dims[0]) if t.dims else "scalar"
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
    return op.dot_label(n.attr, len(n.inputs)) if op is not None else n.op


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


def _node_lines(n: Node, opts: DotOptions, is_output: bool) -> list[tuple[str, int]]:
    """The text of a node's box, line by line with its point size: what its label says and what sizes it."""
    name = display_name(n)
    if n.op == "input":
        return [(n.name, 14)] + ([] if opts.shapes else [(shape_text(n.type), 11)])
    if n.op == "param":
        return [(name or n.name, 14), (shape_text(n.type), 11)] + (
            [(_count(n.param_count), 11)] if opts.params else []
        )
    lines = [(op_text(n), 14)]
    if name is not None:
        lines.append((name + (" (output)" if is_output else ""), 11))
    if opts.params and n.params:
        detail = _param_text(n)
        lines += ([(detail, 11)] if detail else []) + [(_count(n.param_count), 11)]
    return lines


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


def _group_lines(grp: _Group, opts: DotOptions) -> list[tuple[str, int]]:
    lines = [(block_label(grp.last, grp.copies), 14)]
    where = user_name(grp.last)
    if where:
        lines.append((where, 11))
    if opts.params and grp.param_count:
        lines.append((_count(grp.param_count), 11))
    return lines


def _group_html(grp: _Group, opts: DotOptions) -> str:
    """A collapsed block as one box: a heavier border, the block with its arguments, the user's name, its
    parameters."""
    head = f"<b>{_esc(block_label(grp.last, grp.copies))}</b>"
    where = user_name(grp.last)
    if where:
        head += f"<br/>{_small(where)}"
    cells = f'<tr><td bgcolor="{OP_FILL}" cellpadding="5">{head}</td></tr>'
    if opts.params and grp.param_count:
        cells += f'<tr><td bgcolor="{PARAM_FILL}" cellpadding="5">{_small(_count(grp.param_count), "#000000")}</td></tr>'
    return f'<table border="2" cellborder="0" cellspacing="0" color="{OP_LINE}">{cells}</table>'


# a branch box lists what shapes the tensor; its activations and normalisations are left out unless that is all
_QUIET_FAMILIES = ("activation", "norm")
_JOIN_SYMBOLS = {"add": "+", "mul": "×", "sub": "−", "maximum": "max"}


def _part_lines(part: Part) -> list[str]:
    def text(u: Node | SubBlock) -> str:
        return block_label(u.scope, u.copies) if isinstance(u, SubBlock) else op_text(u)

    def quiet(u: Node | SubBlock) -> bool:
        op = get_op(u.op) if isinstance(u, Node) else None
        return op is not None and op.family in _QUIET_FAMILIES

    loud = [u for u in part.units if not quiet(u)]
    return [text(u) for u in (loud or part.units)]


def _part_node(pid: str, part: Part) -> str:
    """One box inside a collapsed block's cluster: a branch or a chain of ops, or the join of the branches."""
    if part.kind == "join" and isinstance(part.units[0], Node) and part.units[0].op in _JOIN_SYMBOLS:
        sym = _JOIN_SYMBOLS[part.units[0].op]
        return (
            f'{pid} [shape=circle, label="{sym}", width=0.32, height=0.32, fixedsize=true, style=filled, '
            f'fillcolor="{OP_FILL}", color="{OP_LINE}", fontsize=16];'
        )
    lines = "<br/>".join(_esc(t) for t in _part_lines(part))
    return f"{pid} [label=<{_rows(OP_LINE, (OP_FILL, lines))}>];"


def _structured_label(grp: _Group, opts: DotOptions) -> str:
    label = f"<b>{_esc(block_label(grp.last, grp.copies))}</b>"
    where = user_name(grp.last)
    if where:
        label += f"  {_small(where)}"
    if opts.params and grp.param_count:
        label += f"  {_small(_count(grp.param_count), PARAM_LINE)}"
    return label


def _cluster_label(c: _Cluster, shared: set[str]) -> str:
    """An expanded block's title: the block with its arguments, the user's name, which copy or use it is."""
    s = c.scope
    assert s is not None
    base, _, use = s.instance.partition(".")
    if base in shared:
        where = f"{base} · use {use or 1} · shared weights"
    else:
        name = user_name(s)
        copy = f"copy {s.repeat[0] + 1} of {s.repeat[1]}" if s.repeat else ""
        where = " · ".join(x for x in (name, copy) if x)
    return f"<b>{_esc(block_label(s))}</b>" + (f"  {_small(where)}" if where else "")


# ---- fitting a slide: sizes, direction, rows ---------------------------------------------------------------------

# points per character of Helvetica (an average over digits and lower case), and the gaps Graphviz leaves
_CHAR = 0.6
SLIDE = 16 / 9


def _box(lines: Sequence[tuple[str, int]]) -> tuple[float, float]:
    w = max((len(t) * size * _CHAR for t, size in lines), default=0.0) + 14
    return w, sum(size * 1.2 for _, size in lines) + 10


def fits_slide(width: float, height: float) -> bool:
    """The size rule: width:height within 16:9 ± 50 %, or the long side under 2,000 px (at 96 dpi)."""
    return max(width, height) < 2000 or SLIDE * 0.5 <= width / max(height, 1.0) <= SLIDE * 1.5


@dataclass
class _Extent:
    """An item's size in points: the length along the edges of each rank it takes (with the gap after it), and
    its breadth across them."""

    ranks: list[float]
    across: float


def _extent(item: Node | _Group | _Cluster, opts: DotOptions, outputs: set[int], lr: bool) -> _Extent:
    # Graphviz puts an edge's label in a rank of its own: after each item, one as long as a shape (LR) or as
    # high as a line (TB)
    label = [105.0 if lr else 12.0] if opts.shapes else []

    def plain(w: float, h: float) -> _Extent:
        return (
            _Extent([w + 25, *label], h) if lr else _Extent([h + 25, *label], w + (70 if opts.shapes else 0))
        )

    if isinstance(item, Node):
        return plain(*_box(_node_lines(item, opts, item.id in outputs)))
    if isinstance(item, _Group):
        if item.structure is None:
            return plain(*_box(_group_lines(item, opts)))
        # sections in order: a chain or a join one box, the branches between them side by side
        sections: list[list[tuple[float, float]]] = []
        branching = False
        for p in item.structure.parts:
            size = (24.0, 24.0) if p.kind == "join" else _box([(t, 14) for t in _part_lines(p)])
            if p.kind == "branch" and branching:
                sections[-1].append(size)
            else:
                sections.append([size])
            branching = p.kind == "branch"
        title = _box([(t, 14) for t, _ in _group_lines(item, opts)])[0] + 20
        if lr:
            ranks = [max(w for w, _ in sec) + 30 for sec in sections]
            ranks[-1] += max(0.0, title - sum(ranks))
            return _Extent([*ranks, *label], max(sum(h + 10 for _, h in sec) for sec in sections) + 30)
        ranks = [max(h for _, h in sec) + 30 for sec in sections]
        ranks[0] += 25
        return _Extent(
            [*ranks, *label], max(title, max(sum(w + 15 for w, _ in sec) for sec in sections)) + 20
        )
    kids = [_extent(i, opts, outputs, lr) for i in item.items if not isinstance(i, Node) or i.op != "input"]
    ranks = [r for k in kids for r in k.ranks] or [0.0]
    ranks[0] += 0 if lr else 25  # the cluster's title
    return _Extent(ranks, max((k.across for k in kids), default=0) + (40 if lr else 30))


def _layout_size(
    pos: Sequence[int], ext: Sequence[_Extent], lr: bool, rows: int
) -> tuple[tuple[float, float], list[int]]:
    """(width, height) in pixels at 96 dpi of the top-level items at their positions wrapped into `rows` rows, and
    the row of each item. Rows share Graphviz's ranks: a rank is as long as its longest row makes it."""
    n_pos = max(pos, default=0) + 1
    ranks: list[list[float]] = [[] for _ in range(n_pos)]
    across = [0.0] * n_pos
    for p, e in zip(pos, ext, strict=True):
        ranks[p] = [max(a, b) for a, b in itertools.zip_longest(ranks[p], e.ranks, fillvalue=0.0)]
        across[p] += e.across + 20
    lengths = [sum(r) for r in ranks]
    total = sum(lengths)
    row_of_pos, acc, row = [], 0.0, 0
    for p in range(n_pos):
        if row < rows - 1 and acc > 0 and acc + lengths[p] / 2 > total * (row + 1) / rows:
            row += 1
        row_of_pos.append(row)
        acc += lengths[p]
    row_ranks: list[list[float]] = [[40.0] if r else [] for r in range(rows)]  # a row's connector
    depth = [0.0] * rows
    for p in range(n_pos):
        row_ranks[row_of_pos[p]] += ranks[p]
        depth[row_of_pos[p]] = max(depth[row_of_pos[p]], across[p])
    along = sum(
        max(rr[c] if c < len(rr) else 0.0 for rr in row_ranks) for c in range(max(map(len, row_ranks)))
    )
    breadth = sum(depth) + 30 * (rows - 1)
    w, h = (along, breadth) if lr else (breadth, along)
    return (w * 96 / 72 + 10, h * 96 / 72 + 10), [row_of_pos[p] for p in pos]


def _arrange(
    pos: Sequence[int], extent: Callable[[bool], list[_Extent]], opts: DotOptions
) -> tuple[str, list[int]]:
    """The direction and the row of each top-level item: the user's choice, else TB when it fits the size rule
    with room to spare, else LR in the number of rows that comes closest to 16:9."""
    n_pos = max(pos, default=0) + 1
    if opts.wrap is False or (opts.rankdir is not None and opts.wrap is None):
        return opts.rankdir or "TB", [0] * len(pos)
    if opts.wrap is None:
        (w, h), rows = _layout_size(pos, extent(False), False, 1)
        if max(w, h) < 1700:
            return "TB", rows
    rankdir = opts.rankdir or "LR"
    lr = rankdir in ("LR", "RL")
    ext = extent(lr)
    best: tuple[float, str, list[int]] | None = None
    for k in range(1, max(1, min(n_pos // 2, 8)) + 1):  # rows of at least two items
        (w, h), rows = _layout_size(pos, ext, lr, k)
        # measured on the specs: Graphviz's LR rows come out about 15 % wider for their height than estimated
        score = abs(math.log((w / h) * (1.15 if lr else 1.0) / SLIDE))
        if best is None or score < best[0] - 0.05:
            best = (score, rankdir, rows)
    assert best is not None
    return best[1], best[2]


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

    def endpoint(node: int) -> str:
        u = lay.units[node]
        return f"n{u.id}" if isinstance(u, Node) else u.endpoint(node)

    # the top-level items, their positions along the edges (longest path) and sizes: direction and rows
    items = [i for i in lay.root.items if not isinstance(i, Node) or used(i)]
    top: dict[int, int] = {}

    def claim(item: Node | _Group | _Cluster, k: int) -> None:
        if isinstance(item, Node):
            top[item.id] = k
        elif isinstance(item, _Group):
            top.update((n.id, k) for n in item.nodes)
        else:
            for x in item.items:
                claim(x, k)

    for k, item in enumerate(items):
        claim(item, k)
    pos = [0] * len(items)
    for n in graph.nodes:
        if n.id in top:
            for r in n.inputs:
                before, after = top.get(r.node), top[n.id]
                if before is not None and before != after:
                    pos[after] = max(pos[after], pos[before] + 1)

    def extents(lr: bool) -> list[_Extent]:
        return [_extent(i, opts, outputs, lr) for i in items]

    rankdir, rows = _arrange(pos, extents, opts)
    row_of = {node: rows[k] for node, k in top.items()}

    lines = [
        f"digraph {_quote(graph.model)} {{",
        f'  graph [rankdir={rankdir}, fontname="{FONT}", fontsize=14, nodesep=0.3, ranksep=0.35, '
        "newrank=true, outputorder=edgesfirst];",
        f'  node [shape=plain, fontname="{FONT}", fontsize=14];',
        f'  edge [fontname="{FONT}", fontsize=11, fontcolor="{DETAIL_COLOR}", color="#455A64", arrowsize=0.7];',
    ]
    # named instances applied more than once: their clusters say so, and a dotted edge ties the uses together
    shared = {n.instance for n in graph.nodes if n.shares is not None}

    def emit(
        c: _Cluster, indent: str, only: Sequence[Node | _Group | _Cluster] | None = None
    ) -> Iterator[str]:
        for item in c.items if only is None else only:
            if isinstance(item, _Cluster):
                yield f"{indent}subgraph {item.id} {{"
                yield (
                    f"{indent}  graph [label=<{_cluster_label(item, shared)}>, labeljust=l, "
                    'style="rounded,dashed", color="#78909C", fontsize=13, margin=10, peripheries=1];'
                )
                yield from emit(item, indent + "  ")
                yield f"{indent}}}"
            elif isinstance(item, _Group) and item.structure is not None:
                yield f"{indent}subgraph cluster_{item.id} {{"
                yield (
                    f"{indent}  graph [label=<{_structured_label(item, opts)}>, labeljust=l, "
                    f'style="rounded,filled", color="{OP_LINE}", fillcolor="#E3F2FD", penwidth=2, margin=8, peripheries=1];'
                )
                for i, part in enumerate(item.structure.parts):
                    yield f"{indent}  {_part_node(f'{item.id}p{i}', part)}"
                    if f"{item.id}s{i}" in skips:
                        yield f'{indent}  {item.id}s{i} [shape=point, width=0.03, color="#455A64"];'
                yield f"{indent}}}"
            elif isinstance(item, _Group):
                yield f"{indent}{item.id} [label=<{_group_html(item, opts)}>];"
            elif used(item):
                yield f"{indent}n{item.id} [label=<{_node_html(item, opts, annotations, item.id in outputs)}>];"

    # edges first: an edge from one row to the next goes through a pair of connectors, `A` at the end of a row
    # and `A` at the start of the next, instead of a curve back across the picture
    edge_lines: list[str] = []
    connectors: dict[tuple[Ref, int], str] = {}
    row_extra: dict[int, list[str]] = {}

    def connector(r: Ref, row: int) -> str:
        key = (r, row)
        if key not in connectors:
            cid = f"w{len(connectors)}"
            connectors[key] = cid
            # its letter once all pairs are known (`marks` below): @cid@ until then
            style = (
                f'shape=circle, label="@{cid}@", width=0.3, height=0.3, fixedsize=true, fontsize=11, '
                f'color="{DETAIL_COLOR}", fontcolor="{DETAIL_COLOR}"'
            )
            row_extra.setdefault(row_of[r.node], []).append(f"{cid}o [{style}];")
            row_extra.setdefault(row, []).append(f"{cid}i [{style}];")
            attrs = _edge_attrs(r, graph, opts, labelled)
            edge_lines.append(
                f"  {endpoint(r.node)} -> {cid}o" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"
            )
        return connectors[key]

    seen: set[tuple[str, str, Ref]] = set()
    labelled: set[Ref] = set()  # a value that fans out has its shape written on its first edge only
    skips: set[str] = set()
    for n in graph.nodes:
        dst = lay.units[n.id]
        for r in n.inputs:
            src = lay.units[r.node]
            inside = src is dst
            if inside and (
                not isinstance(dst, _Group)
                or dst.structure is None
                or dst.structure.copy_of[r.node] != dst.structure.copy_of[n.id]
            ):
                continue
            # inside a collapsed block, one edge between two of its parts (the copies of a repeat share them)
            a = (
                f"{connector(r, row_of[n.id])}i"
                if row_of.get(r.node, 0) != row_of.get(n.id, 0)
                else endpoint(r.node)
            )
            b = endpoint(n.id)
            if isinstance(dst, _Group) and _is_shortcut(dst, src, r.node, n.id):
                # an identity shortcut: through a point inside the block, so that it runs beside the main path
                point = b.replace("p", "s")
                if point not in skips:
                    skips.add(point)
                    edge_lines.append(f"  {point} -> {b};")
                b = point
            key = (a, b, Ref(-1) if inside else r)
            if key[0] == key[1] or key in seen:
                continue
            seen.add(key)
            if a != endpoint(r.node):
                attrs = ["weight=10"]  # short: the row starts right after its connector
            else:
                attrs = [] if inside else _edge_attrs(r, graph, opts, labelled)
            if b in skips:
                attrs.append("arrowhead=none")
            edge_lines.append(f"  {key[0]} -> {key[1]}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    tied: set[tuple[str, str]] = set()
    for n in graph.nodes:
        if n.shares is None:
            continue
        a, b = endpoint(n.shares), endpoint(n.id)
        if a != b and (a, b) not in tied:
            tied.add((a, b))
            edge_lines.append(
                f'  {a} -> {b} [style=dotted, dir=none, constraint=false, color="{PARAM_LINE}", '
                'label=" same weights ", fontcolor="#B71C1C"];'
            )

    # One letter a pair of connectors, in reading order (by the row it leaves, then the row it enters): values
    # that leave a row for the same one (a U-Net's skips) must not share a letter.
    order = sorted(
        connectors.items(), key=lambda kv: (row_of.get(kv[0][0].node, 0), kv[0][1], int(kv[1][1:]))
    )
    marks = {f"@{cid}@": _mark(i) for i, (_, cid) in enumerate(order)}
    for row, extra in row_extra.items():
        row_extra[row] = [re.sub(r"@w\d+@", lambda m: marks[m.group(0)], x) for x in extra]
    if max(rows, default=0) == 0:
        lines.extend(emit(lay.root, "  "))
    else:
        # each row in an invisible cluster, so that rows keep to their own bands of the picture, and their
        # first items share a rank; Graphviz stacks LR clusters from the bottom up, in the order written
        for row in range(max(rows), -1, -1) if rankdir in ("LR", "RL") else range(max(rows) + 1):
            lines.append(f"  subgraph cluster_row{row} {{")
            lines.append('    graph [label="", peripheries=0, margin=4];')
            lines.extend(f"    {x}" for x in row_extra.get(row, []))
            lines.extend(emit(lay.root, "    ", [items[k] for k in range(len(items)) if rows[k] == row]))
            lines.append("  }")
        firsts = []
        for row in range(max(rows) + 1):
            k = min((k for k in range(len(items)) if rows[k] == row), key=lambda k: (pos[k], k))
            ins = [f"{cid}i" for (_, at), cid in connectors.items() if at == row]
            firsts.append(ins[0] if ins else _first_id(items[k], endpoint, used))
        lines.append(f"  {{rank=same; {'; '.join(firsts)};}}")
    lines.extend(edge_lines)
    if opts.legend:  # last: clusters would inherit the graph's label and its font size
        lines.append(_legend(graph))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mark(i: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the name of the i-th pair of connectors."""
    return chr(65 + i) if i < 26 else _mark(i // 26 - 1) + chr(65 + i % 26)


def _edge_attrs(r: Ref, graph: Graph, opts: DotOptions, labelled: set[Ref]) -> list[str]:
    t = graph.type_of(r)
    if not (opts.shapes and t.dims and r not in labelled):
        return []
    labelled.add(r)
    return [f"label={_quote(' ' + shape_text(t) + ' ')}"]


def _is_shortcut(grp: _Group, src: Node | _Group, src_node: int, dst_node: int) -> bool:
    """Whether an edge into a collapsed block's join comes straight from the fork (an identity shortcut), not
    from one of its branches."""
    if grp.structure is None:
        return False
    parts, part_of = grp.structure.parts, grp.structure.part_of
    if parts[part_of[dst_node]].kind != "join":
        return False
    return src is not grp or parts[part_of[src_node]].kind != "branch"


def _first_id(
    item: Node | _Group | _Cluster, endpoint: Callable[[int], str], used: Callable[[Node], bool]
) -> str:
    if isinstance(item, Node):
        return f"n{item.id}"
    if isinstance(item, _Group):
        return endpoint(item.nodes[0].id)
    return _first_id(next(i for i in item.items if not isinstance(i, Node) or used(i)), endpoint, used)


def _legend(g: Graph) -> str:
    """A one-line legend in small print above the drawing (the graph's label: it takes no rank): the model, its
    parameters, the three colours."""
    swatch = "".join(
        f'<td bgcolor="{fill}" border="1" color="{line}">{text}</td>'
        for fill, line, text in (
            (INPUT_FILL, INPUT_LINE, "input"),
            (PARAM_FILL, PARAM_LINE, "parameters"),
            (OP_FILL, OP_LINE, "operation"),
        )
    )
    title = f"<td><b>{_esc(g.model)}</b>  {_esc(_count(g.total_params))}</td>"
    return (
        '  graph [label=<<table border="0" cellborder="0" cellspacing="3" cellpadding="2">'
        f"<tr>{title}{swatch}</tr></table>>, labelloc=t, labeljust=l, fontsize=10];  // legend"
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
    """`x1=2,x2=3` → {"x1": 2.0, "x2": 3.0}. Each name once, each number finite: Python's float() also reads
    `nan`, `inf` and `1e999` (inf), which drew a graph of NaNs; a name given twice kept the last silently."""
    import math

    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, eq, num = item.partition("=")
        try:
            if not eq:
                raise ValueError
            value = float(num)
        except ValueError:
            raise DotError(f"--values: cannot read {item!r}; write NAME=NUMBER pairs: x1=2,x2=3") from None
        if not math.isfinite(value):
            raise DotError(
                f"--values: {item!r} is not a finite number; give each input a number such as 2 or -0.5"
            )
        if name.strip() in out:
            raise DotError(f"--values: {name.strip()} is given twice; give each input one value")
        out[name.strip()] = value
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


def render(dot_text: str, fmt: str, dpi: int | None = None) -> bytes:
    """SVG/PNG/PDF bytes from the graphviz `dot` binary (a PNG at `dpi`, default 96); DotError with the install
    hint when it is missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotError(
            f"the Graphviz `dot` program is not installed (needed for .{fmt} output)\nhint: {INSTALL_HINT}"
        )
    args = [exe, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if dpi and fmt == "png" else [])
    proc = subprocess.run(args, input=dot_text.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise DotError(
            f"dot -T{fmt} failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout


def write(dot_text: str, output: Path, dpi: int | None = None) -> None:
    """Write DOT text or, by the suffix, its rendering (.svg, .png, .pdf), atomically."""
    from ..train.io import write_output

    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise DotError(
            f"-o {output}: cannot tell the format from {suffix or 'no suffix'}; "
            f"use one of {', '.join(FORMATS)}"
        )
    fmt = FORMATS[suffix]
    if dpi is not None and fmt != "png":
        raise DotError(f"--dpi sets the resolution of a PNG; -o {output} is not one")
    write_output(output, dot_text.encode() if fmt is None else render(dot_text, fmt, dpi))


def dot_command(
    file: Path,
    *,
    model: str | None = None,
    output: Path | None = None,
    rankdir: str | None = None,
    wrap: bool | None = None,
    block: str | None = None,
    dpi: int | None = None,
    shapes: bool = True,
    params: bool = True,
    legend: bool = True,
    collapse: Sequence[str] = (),
    depth: int | None = None,
    values: str | None = None,
    grad: str | None = None,
    overrides: Sequence[str] = (),
) -> None:
    """`specc dot`: the spec's graph as DOT on stdout, or written to -o. Problems with the request, or a missing
    Graphviz, exit 2 (as click's usage errors do); mistakes in the spec raise SpecError (exit 1)."""
    import sys

    import click

    from ..spec import load
    from ..train.spec import apply_lets

    spec = apply_lets(load(file, model), overrides, only_lets=True)  # `--set width=256`: the model with it
    try:
        opts = DotOptions(
            rankdir=rankdir,
            wrap=wrap,
            shapes=shapes,
            params=params,
            legend=legend,
            collapse=tuple(collapse),
            depth=depth,
            values=values,
            grad=grad,
        )
        graph = spec.graph() if block is None else block_graph(spec, block, model)
        text = to_dot(graph, opts)
        if output is None:
            if dpi is not None:
                raise DotError("--dpi sets the resolution of a PNG; add -o FILE.png")
            click.echo(text, nl=False)
        else:
            write(text, output, dpi)
            click.echo(f"wrote {output}", err=True)
    except DotError as e:
        click.echo(f"specc: error: {e}", err=True)
        sys.exit(2)
