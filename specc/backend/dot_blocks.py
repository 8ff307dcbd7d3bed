"""What a collapsed block keeps in a drawing: its parallel branches, its call arguments; and one block drawn alone.

A collapsed block is one box unless its inner graph has parallel paths from its input to its output. Then it keeps
the shape it is taught for — a residual block's main path and shortcut into the `+`, an inception module's branches
into the concat: read from the block's inner graph (the cut points every path passes through, the branches between
two of them), never from the block's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..frontend import ast
from ..ir.graph import Graph, Node, Scope, fmt_attr

# argument names read as a window (`3×3`) and as a stride (`/2`) in a block's label
KERNEL_ARGS = ("k", "kernel", "kernel_size", "ksize", "window", "size")
STRIDE_ARGS = ("stride", "strides", "s")
# `k` and `size` name other things too (DenseNet's growth rate k = 32 read as a 32×32 window on a slide): as a
# window, they are at most AlexNet's 11
AMBIGUOUS_KERNEL_ARGS = ("k", "size")
LARGEST_WINDOW = 11


def _is_window(name: str, v: object) -> bool:
    if name not in KERNEL_ARGS or not isinstance(v, int | tuple):
        return False
    if name not in AMBIGUOUS_KERNEL_ARGS:
        return True
    sizes = v if isinstance(v, tuple) else (v,)
    return all(isinstance(x, int) and 1 <= x <= LARGEST_WINDOW for x in sizes)


def block_label(s: Scope, copies: int = 1) -> str:
    """`Basic 128 /2`, `ConvBN 3×3, 192`, `Conv3 ×2, 64`: the block's name, repeat count and call arguments."""
    kernel: list[str] = []
    others: list[str] = []
    stride = ""
    for k, v in s.args:
        if _is_window(k, v):
            kernel.append("×".join(map(str, v)) if isinstance(v, tuple) else f"{v}×{v}")
        elif k in STRIDE_ARGS:
            stride = (
                "" if v in (1, (1, 1)) else "/" + ("×".join(map(str, v)) if isinstance(v, tuple) else str(v))
            )
        else:
            others.append(fmt_attr(v))
    args = ", ".join(kernel + others)
    head = s.block + (f" ×{copies}" if copies > 1 else "")
    if args:
        head += (", " if copies > 1 else " ") + args
    return head + (f" {stride}" if stride else "")


def user_name(s: Scope) -> str:
    """The user's name for an instance (`c2`, `b1`, `D`), or "" for a pipeline's internal stage (`f.ConvStage1`)."""
    inst = s.instance
    if s.repeat is not None:
        inst = inst.rsplit(".", 1)[0]
        if inst.endswith(".repeat"):
            return ""
    if "." in inst or "/" in inst or re.fullmatch(rf"{re.escape(s.block)}(_\d+)?", inst):
        return ""  # a pipeline's stage, or a name specc made up
    return inst


def scope_key(s: Scope) -> tuple[Any, ...]:
    # instance names need not be unique when one block calls another (every ConvStage's inner copy is
    # `y.repeat.0`), so the call site is part of the identity
    sp = s.span
    return (s.block, s.instance, sp.file, sp.line, sp.col, s.repeat)


def group_key(scope: tuple[Scope, ...], upto: int) -> tuple[Any, ...]:
    """The identity of the box that scope[:upto+1] collapses into; the copies of one `repeat` share a box."""
    key = tuple(scope_key(s) for s in scope[:upto])
    s = scope[upto]
    if s.repeat is not None:
        sp = s.span
        return (*key, ("repeat", s.block, sp.file, sp.line, sp.col, s.repeat[1]))
    return (*key, scope_key(s))


@dataclass(frozen=True)
class SubBlock:
    """A block nested one level inside a collapsed block (all copies of one `repeat` together)."""

    scope: Scope
    copies: int


@dataclass
class Part:
    """One box inside a collapsed block: ops in series ("chain"), one parallel branch, or the join of branches."""

    kind: str
    units: list[Any] = field(default_factory=list)  # Node or SubBlock once built


@dataclass
class Structure:
    """A collapsed block's parts, and which part each of its nodes (of every `repeat` copy) is drawn in."""

    parts: list[Part]
    part_of: dict[int, int]
    copy_of: dict[int, int]


def _copy(n: Node, level: int) -> int:
    r = n.scope[level].repeat
    return r[0] if r else 0


def block_structure(nodes: Sequence[Node], level: int) -> Structure | None:
    """The parts of a collapsed block whose scope is `nodes[0].scope[level]`; None when it has no parallel branches."""
    first = [n for n in nodes if _copy(n, level) == 0]
    keys: dict[int, Any] = {}
    members: dict[Any, list[Node]] = {}
    for n in first:
        k = group_key(n.scope, level + 1) if len(n.scope) > level + 1 else ("node", n.id)
        keys[n.id] = k
        members.setdefault(k, []).append(n)
    # params and constants inside the block have no input: drawn in the part of the op that reads them
    floating = {k for k, ms in members.items() if all(not m.inputs for m in ms)}
    seq = [k for k in members if k not in floating]
    pos = {k: i for i, k in enumerate(seq)}
    preds: dict[Any, set[int]] = {k: set() for k in seq}
    for n in first:
        k = keys[n.id]
        if k in floating:
            continue
        for r in n.inputs:
            src = keys.get(r.node)
            if src is None:
                preds[k].add(-1)  # the block's input
            elif src != k and src not in floating:
                preds[k].add(pos[src])
    # unit i is a cut point when every edge leaving the units before it ends at it
    cuts = [
        i for i in range(len(seq)) if all(p >= i or j == i for j in range(i, len(seq)) for p in preds[seq[j]])
    ]
    if not cuts or cuts[-1] != len(seq) - 1:
        return None
    parts: list[Part] = []
    chain: list[Any] = []
    prev = -1
    branched = False
    for c in cuts:
        interior = list(range(prev + 1, c))
        if interior:
            branched = True
            if chain:
                parts.append(Part("chain", chain))
                chain = []
            for comp in _components(interior, preds):
                parts.append(Part("branch", [seq[i] for i in comp]))
            parts.append(Part("join", [seq[c]]))
        else:
            chain.append(seq[c])
        prev = c
    if not branched:
        return None
    if chain:
        parts.append(Part("chain", chain))
    part_by_key = {k: i for i, p in enumerate(parts) for k in p.units}
    for k in floating:  # beside the first op that reads it
        reader = next((keys[n.id] for n in first if any(keys.get(r.node) == k for r in n.inputs)), None)
        part_by_key[k] = part_by_key.get(reader, 0)
    part_of = {n.id: part_by_key[keys[n.id]] for n in first}
    copy_of = {n.id: _copy(n, level) for n in nodes}
    # the other copies of a `repeat` are drawn as the first: node i of copy c in the part of node i of copy 0
    by_copy: dict[int, list[Node]] = {}
    for n in nodes:
        by_copy.setdefault(copy_of[n.id], []).append(n)
    for c, ns in by_copy.items():
        if c and len(ns) == len(first):
            part_of.update({n.id: part_of[f.id] for n, f in zip(ns, first, strict=True)})
        elif c:
            return None
    for p in parts:
        p.units = [_unit(members[k], level) for k in p.units]
    return Structure(parts, part_of, copy_of)


def _unit(ms: list[Node], level: int) -> Node | SubBlock:
    n = ms[0]
    if len(n.scope) <= level + 1:
        return n
    s = n.scope[level + 1]
    return SubBlock(s, s.repeat[1] if s.repeat else 1)


def _components(interior: list[int], preds: dict[Any, set[int]] | Any) -> list[list[int]]:
    """The weakly connected pieces of the units between a fork and its join: one parallel branch each."""
    parent = {i: i for i in interior}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys = list(preds)
    for i in interior:
        for p in preds[keys[i]]:
            if p in parent:
                parent[root(i)] = root(p)
    comps: dict[int, list[int]] = {}
    for i in interior:
        comps.setdefault(root(i), []).append(i)
    return list(comps.values())


# ---- one block alone ----------------------------------------------------------------------------------------------


def block_graph(spec: Any, name: str, model: str | None = None) -> Graph:
    """Block `name` drawn alone: applied to symbolic inputs (its input patterns, `[N, H, W, C]`), with the
    arguments of its first call in the model (or its defaults). Only axes that an op needs as numbers (a conv's
    channels) take the first call's sizes."""
    from ..errors import SpecError, did_you_mean
    from ..frontend.fmt import format_expr
    from ..frontend.load import parse_any
    from ..ir.build import build_graph
    from ..source import Source
    from .dot import DotError

    program = spec.program
    block = program.blocks.get(name)
    if block is None:
        known = sorted(program.blocks)
        dym = did_you_mean(name, known)
        raise DotError(
            f"--block {name}: {program.path.name} has no block of that name"
            + (f"; {dym}" if dym else "")
            + (f" (its blocks: {', '.join(known)})" if known else " (it defines no blocks)")
        )
    call: Scope | None = None
    actual: list[Any] = []
    if program.models:
        g = spec.graph(model)
        for n in g.nodes:
            hit = next((i for i, s in enumerate(n.scope) if s.block == name), None)
            if hit is not None:
                call = n.scope[hit]
                inside = {
                    m.id for m in g.nodes if len(m.scope) > hit and m.scope[: hit + 1] == n.scope[: hit + 1]
                }
                for m in g.nodes:
                    if m.id in inside:
                        actual.extend(g.type_of(r) for r in m.inputs if r.node not in inside)
                break
    args = call.args if call is not None else ()
    missing = [p.name for p in block.params if p.default is None and p.name not in dict(args)]
    if missing:
        raise DotError(
            f"--block {name}: the model does not call {name}, and its argument(s) {', '.join(missing)} have no "
            "default; draw it from a spec whose model calls it"
        )
    decls = [st for st in block.body if isinstance(st, ast.InputDecl)]
    patterns = [[format_expr(d) for d in (st.type.dims if st.type else ())] for st in decls]
    call_text = ", ".join([*(st.name for st in decls), *(f"{k}={_source(v)}" for k, v in args)])
    last_error: SpecError | None = None
    rank = max((len(p) for p in patterns), default=0)
    for concrete in range(rank + 1):  # the last axes (channels) first: the fewest numbers an op needs
        lines = []
        for st, pat, i in zip(decls, patterns, range(len(decls)), strict=True):
            t = actual[i] if i < len(actual) else None
            dims = [
                str(t.dims[j]) if t is not None and j >= len(pat) - concrete and j < len(t.dims) else d
                for j, d in enumerate(pat)
            ]
            dtype = t.dtype if t is not None else "f32"
            lines.append(f"  input {st.name}: {dtype}[{', '.join(dims)}]")
        text = "model {m} {{\n{ins}\n  out = {b}({a})\n  output out\n}}\n".format(
            m=f"__block_{name}", ins="\n".join(lines), b=name, a=call_text
        )
        module = parse_any(Source(f"<block {name}>", text))
        models = {m.name: m for m in module.items if isinstance(m, ast.ModelDef)}
        trial = replace(program, models={**program.models, **models})
        try:
            g = build_graph(trial, f"__block_{name}")
        except SpecError as e:
            last_error = e
            continue
        # the call is named by the block, which its label says already
        nodes = tuple(
            replace(n, scope=(replace(n.scope[0], instance=name), *n.scope[1:])) if n.scope else n
            for n in g.nodes
        )
        return replace(g, model=name, nodes=nodes)
    assert last_error is not None
    if call is None:
        shown = ", ".join(f"{st.name}: [{', '.join(p)}]" for st, p in zip(decls, patterns, strict=True))
        raise DotError(
            f"--block {name}: an op in {name} needs a size of its input ({shown}) as a number, and the model does "
            f"not call {name} to take it from; call it from the model, or write the size in its `input`"
        )
    raise last_error


def _source(v: Any) -> str:
    """An argument of the block's first call as .net text: a string escaped as the formatter writes it (a `"`
    in it ended the string, and `--block` failed on a valid spec)."""
    if isinstance(v, str):
        from ..frontend import ast
        from ..frontend.fmt import format_expr

        return format_expr(ast.Str(v))
    return fmt_attr(v)
