"""AST → canonical .net text: `specc fmt` and the `--to net` half of `specc convert`.

Canonical means: two-space indentation, one statement per line, single spaces around `=` and binary operators,
`->` stages on one line, minimal parentheses by precedence. Given the source's Layout, the line breaks its author put
before `->` stages, between the items of brackets (arguments, list items, dimensions) and between the operands of an
expression (after the operator; inside parentheses, kept where precedence would drop them) are kept. Comments are not
kept here (the AST has none): convert.attach_comments puts them back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..source import Span
from . import ast

MAX_LINE = 100  # pipelines longer than this break before `->`

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}


# Where formatted text starts: its column and the indentation of its line (both 0-based), and whether it stands
# inside a bracket (where a line break does not end the statement), given when the author's line breaks inside
# brackets are kept; None writes every bracket on one line.
Pos = tuple[int, int, bool] | None


def _after(pos: Pos, text: str) -> Pos:
    """Where the text after `text`, written from `pos`, starts."""
    if pos is None:
        return None
    _, nl, last = text.rpartition("\n")
    return (len(last), len(last) - len(last.lstrip()), pos[2]) if nl else (pos[0] + len(text), pos[1], pos[2])


def _inside(pos: Pos) -> Pos:
    """`pos`, inside a bracket just opened."""
    return None if pos is None else (pos[0], pos[1], True)


def format_expr(e: ast.Expr | ast.Slice | ast.EllipsisLit, prec: int = 0, pos: Pos = None) -> str:
    """`e` as .net text; from `pos` on, a bracket the source broke over lines keeps its breaks (see `_items`)."""
    if isinstance(e, ast.Num):
        # a negative literal is one token to the parser, but written bare before `**` or `[` it would read as a
        # negation of the power or subscript: (-2) ** 2 is 4, -2 ** 2 is -4
        # the spelling the author chose (`1e-3`, `0.5`) is kept; a number made by a tool is written by repr
        text = e.text or _num(e.value)
        return f"({text})" if e.value < 0 and prec > 4 else text
    if isinstance(e, ast.Str):
        return '"' + e.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Call):
        return _call(e, pos)
    if isinstance(e, ast.BinOp):
        p = _PREC[e.op]
        # the author broke the line between the operands (inside grouping parentheses or a bracket): keep the
        # break, after the operator, so that a comment there stays; outside any bracket, parentheses make it legal
        broken = pos is not None and 0 < e.left.span.end_line < e.right.span.line
        opener = "(" if p < prec or (broken and pos is not None and not pos[2]) else ""
        # left-associative: the right operand of a same-precedence op needs parentheses; ** is right-assoc
        lp, rp = (p + 1, p) if e.op == "**" else (p, p + 1)
        base = _inside(pos) if opener else pos
        left = _after(base, opener)
        text = opener + format_expr(e.left, lp, left) + f" {e.op}"
        # the right operand's line aligned under the left operand
        text += "\n" + " " * left[0] if broken and left is not None else " "
        text += format_expr(e.right, rp, _after(base, text))
        return text + (")" if opener else "")
    if isinstance(e, ast.Neg):
        opener = "(" if prec > 3 else ""
        text = opener + "-" + format_expr(e.operand, 3, _after(_inside(pos) if opener else pos, opener + "-"))
        return text + (")" if opener else "")
    if isinstance(e, ast.Index):
        value = format_expr(e.value, 5, pos)
        items = [(i.span, _writer(i)) for i in e.items]
        return value + _items("[", items, "]", e.value.span.end_line, e.span, _after(pos, value))
    if isinstance(e, ast.Slice):
        s = _opt(e.lo, pos) + ":"
        s += _opt(e.hi, _after(pos, s))
        return s + (":" + format_expr(e.step, 0, _after(pos, s + ":")) if e.step is not None else "")
    if isinstance(e, ast.EllipsisLit):
        return "..."
    if isinstance(e, ast.ListLit):
        return _items("[", [(x.span, _writer(x)) for x in e.items], "]", e.span.line, e.span, pos)
    if isinstance(e, ast.TupleLit):
        items = [(x.span, _writer(x)) for x in e.items]
        return _items("(", items, ",)" if len(e.items) == 1 else ")", e.span.line, e.span, pos)
    if isinstance(e, ast.Pipeline):
        opener = "(" if e.stages and prec > 0 else ""
        base = _inside(pos) if opener else pos
        text = opener + format_expr(e.head, 1 if e.stages else prec, _after(base, opener))
        for st in e.stages:
            text += _step(st, _after(base, text))
        return text + (")" if opener else "")
    raise TypeError(f"cannot format {e!r}")


def _writer(e: ast.Expr | ast.Slice | ast.EllipsisLit) -> Callable[[Pos], str]:
    return lambda pos: format_expr(e, 0, pos)


def _items(
    opener: str,
    items: Sequence[tuple[Span, Callable[[Pos], str]]],
    closer: str,
    open_line: int,
    span: Span,
    pos: Pos,
) -> str:
    """A bracketed, comma-separated list of items (each its span and how to write it from a position), from `pos`.

    With a position, the breaks the author made are kept, so that a comment after an argument stays after it: an
    item the source began on a later line than the one before (or than the opener) starts a new line, aligned
    under the first item or, when the first item itself is on a new line, indented two spaces past the opener's
    line; a closer the source put on its own line goes on its own line, at that line's indentation, after a comma."""
    text = opener
    prev_line = open_line
    hanging = False
    for k, (sp, write) in enumerate(items):
        if k:
            text += ","
        if pos is not None and prev_line > 0 and sp.line > prev_line:
            hanging = hanging or k == 0
            text += "\n" + " " * (pos[1] + 2 if hanging else pos[0] + len(opener))
        elif k:
            text += " "
        text += write(_inside(_after(pos, text)))
        prev_line = sp.end_line
    if pos is not None and items and prev_line > 0 and span.end_line > prev_line:
        return text + ",\n" + " " * pos[1] + closer.lstrip(",")
    return text + closer


def _opt(e: ast.Expr | None, pos: Pos = None) -> str:
    return "" if e is None else format_expr(e, 0, pos)


def _num(v: int | float) -> str:
    if isinstance(v, int):
        return str(v)
    text = repr(v)
    return text if ("e" in text or "." in text or "inf" in text or "nan" in text) else text + ".0"


def _call(c: ast.Call, pos: Pos = None) -> str:
    items = [(a.span, _writer(a)) for a in c.args] + [(k.span, _kwarg_writer(k)) for k in c.kwargs]
    return _items(f"{c.func}(", items, ")", c.func_span.line, c.span, pos)


def _kwarg_writer(k: ast.Kwarg) -> Callable[[Pos], str]:
    return lambda pos: f"{k.name}=" + format_expr(k.value, 0, _after(pos, f"{k.name}="))


def _stage(c: ast.Call, pos: Pos = None) -> str:
    return c.func if c.bare and not c.args and not c.kwargs else _call(c, pos)


def _shape_assert(dims: tuple[ast.Expr, ...], span: Span, pos: Pos = None) -> str:
    """` : [N, 10]`, written after the value it checks (a statement's last or one inside its pipeline)."""
    return " : " + _items("[", [(d.span, _writer(d)) for d in dims], "]", span.line, span, _after(pos, " : "))


def _step(st: ast.Call | ast.ShapeAssert, pos: Pos = None) -> str:
    """One step of a pipeline after its head, written on the line it continues from `pos`."""
    if isinstance(st, ast.ShapeAssert):
        return _shape_assert(st.dims, st.span, pos)
    return " -> " + _stage(st, _after(pos, " -> "))


def _type(t: ast.TensorTypeExpr, pos: Pos = None) -> str:
    dtype = t.dtype or ""
    dims = [(d.span, _writer(d)) for d in t.dims]
    return dtype + _items("[", dims, "]", t.span.line, t.span, _after(pos, dtype))


def _source_breaks(p: ast.Pipeline) -> list[bool]:
    """For each stage of a parsed pipeline, whether the source started it on a new line."""
    out: list[bool] = []
    prev_end = getattr(p.head, "span", ast.NO_SPAN).end_line
    for st in p.stages:
        # an assertion never starts a line (only `->` continues a statement), so it keeps none
        out.append(isinstance(st, ast.Call) and prev_end > 0 and st.span.line > prev_end)
        prev_end = st.span.end_line
    return out


def format_stmt(s: ast.Stmt, keep_breaks: bool = False, indent: int = 2) -> str:
    """One statement, written at `indent`; with `keep_breaks`, the line breaks its source has before `->` stages
    and inside brackets are kept."""
    pos: Pos = (indent, indent, False) if keep_breaks else None
    if isinstance(s, ast.InputDecl):
        text = f"input {s.name}"
        if s.type is not None:
            text += ": "
            text += _type(s.type, _after(pos, text))
        if s.draw is not None:
            text += " = "
            text += format_expr(s.draw, 0, _after(pos, text))
        return text
    if isinstance(s, ast.ParamDecl):
        text = f"param {s.name}: "
        text += _type(s.type, _after(pos, text))
        if s.init is not None:
            text += " = "
            text += format_expr(s.init, 0, _after(pos, text))
        return text
    if isinstance(s, ast.Assign):
        return _assign(s, pos)
    if isinstance(s, ast.Output):
        return "output " + ", ".join(s.names)
    if isinstance(s, ast.Default):
        text = f"default {s.key} = "
        return text + format_expr(s.value, 0, _after(pos, text))
    if isinstance(s, ast.Let):
        text = f"let {s.name} = "
        return text + format_expr(s.value, 0, _after(pos, text))
    raise TypeError(f"cannot format {s!r}")


def _assign(s: ast.Assign, pos: Pos) -> str:
    lhs = f"{', '.join(s.targets)} = "
    p = s.value
    breaks = _source_breaks(p) if pos is not None else []
    if any(breaks):
        # the author broke the pipeline before these stages: keep their lines (as gofmt keeps line breaks)
        text = lhs + format_expr(p.head, 1, _after(pos, lhs))
        for st, brk in zip(p.stages, breaks, strict=True):
            if brk and isinstance(st, ast.Call):
                # the author's indentation of the line (its `->` stands 3 columns before the stage), if deeper
                # than the statement's
                indent = max(st.span.col - 4, 4) if st.span.col > 0 else 2 + len(lhs)
                text += "\n" + " " * indent + "-> "
                text += _stage(st, _after(pos, text))
            else:
                text += _step(st, _after(pos, text))
    else:
        text = lhs + format_expr(p, 0, _after(pos, lhs))
        if len(text) + 2 > MAX_LINE and p.calls and "\n" not in text:
            # a long pipeline breaks before `->`, continuation lines aligned under the value; an assertion stays
            # on the line of the stage it checks
            pad = "\n  " + " " * len(lhs)
            parts = [format_expr(p.head, 1)]
            for st in p.stages:
                if isinstance(st, ast.ShapeAssert):
                    parts[-1] += _step(st)
                else:
                    parts.append(_step(st).lstrip())
            lines: list[str] = []
            current = parts[0]
            for part in parts[1:]:
                if 2 + len(lhs) + len(current) + 1 + len(part) <= MAX_LINE:
                    current += " " + part
                else:
                    lines.append(current)
                    current = part
            lines.append(current)
            text = lhs + pad.join(lines)
    if s.assert_dims is not None:
        text += _shape_assert(s.assert_dims, s.assert_span, _after(pos, text))
    if s.run is not None:
        text += " from " + format_expr(ast.Str(s.run))
    return text


@dataclass(frozen=True)
class Layout:
    """What fmt keeps of the source's layout: its blank lines (1-based line numbers). Without a Layout (text made
    from YAML), blank lines and line breaks are fmt's own."""

    blank: frozenset[int]

    @staticmethod
    def of(text: str) -> Layout:
        return Layout(frozenset(i for i, ln in enumerate(text.split("\n"), start=1) if not ln.strip()))

    def blank_between(self, prev: Span, cur: Span) -> bool:
        """A blank line and nothing else between two statements (comments bring their own blank lines back)."""
        gap = range(prev.end_line + 1, cur.line)
        return len(gap) > 0 and all(i in self.blank for i in gap)


def _body(stmts: tuple[ast.Stmt, ...], layout: Layout | None = None) -> list[str]:
    lines: list[str] = []
    prev: ast.Stmt | None = None
    for s in stmts:
        kind = type(s)
        if layout is not None:
            if prev is not None and layout.blank_between(prev.span, s.span):
                lines.append("")
        # a blank line between groups of different statements (inputs | computation | outputs)
        elif (
            prev is not None
            and kind is not type(prev)
            and (ast.InputDecl in (kind, type(prev)) or kind is ast.Output)
        ):
            lines.append("")
        lines.append("  " + format_stmt(s, keep_breaks=layout is not None))
        prev = s
    return lines


def _entries(entries: tuple[ast.Entry, ...], layout: Layout | None = None) -> list[str]:
    out = []
    pos: Pos = (2, 2, False) if layout is not None else None
    for i, e in enumerate(entries):
        if layout is not None and i > 0 and layout.blank_between(entries[i - 1].span, e.span):
            out.append("")
        if (
            isinstance(e.value, ast.Call)
            and e.value.func == e.key
            and e.rename is None
            and _is_bare_call_entry(e)
        ):
            out.append("  " + format_expr(e.value, 0, pos))
            continue
        text = f"{e.key} = "
        text += format_expr(e.value, 0, _after(pos, text))
        if e.rename is not None:
            text += " as {" + ", ".join(f"{a}: {b}" for a, b in e.rename) + "}"
        out.append("  " + text)
    return out


def _param_writer(p: ast.BlockParam) -> Callable[[Pos], str]:
    if p.default is None:
        return lambda pos: p.name
    default = p.default
    return lambda pos: f"{p.name}=" + format_expr(default, 0, _after(pos, f"{p.name}="))


def _is_bare_call_entry(e: ast.Entry) -> bool:
    return e.key in ("early_stop", "checkpoint")


def format_item(item: ast.Item, layout: Layout | None = None) -> str:
    if isinstance(item, ast.ModelDef):
        return "\n".join([f"model {item.name} {{", *_body(item.body, layout), "}"])
    if isinstance(item, ast.BlockDef):
        params = [(p.span, _param_writer(p)) for p in item.params]
        pos: Pos = (0, 0, False) if layout is not None else None
        # where the parameters' `)` stands is not in the tree: it stays on the last parameter's line
        close = item.params[-1].span if item.params else item.span
        header = _items(f"block {item.name}(", params, ")", item.span.line, close, pos)
        return "\n".join([header + " {", *_body(item.body, layout), "}"])
    if isinstance(item, ast.Let):
        return format_stmt(item, keep_breaks=layout is not None, indent=0)
    if isinstance(item, ast.Import):
        return f'import "{item.path}"'
    if isinstance(item, ast.TrainDef):
        return "\n".join(["train {", *_entries(item.entries, layout), "}"])
    if isinstance(item, ast.ObjectiveDef):
        return "\n".join([f"objective {item.name} {{", *_entries(item.entries, layout), "}"])
    raise TypeError(f"cannot format {item!r}")


def format_module(m: ast.Module, layout: Layout | None = None) -> str:
    """The canonical text of a module; idempotent: format(parse(format(m))) == format(m).

    With the source's `layout`, its blank lines and the line breaks of its pipelines are kept."""
    out: list[str] = []
    prev: ast.Item | None = None
    for item in m.items:
        small = isinstance(item, ast.Let | ast.Import)
        if layout is not None:
            if prev is not None and layout.blank_between(prev.span, item.span):
                out.append("")
        elif out and not (small and isinstance(prev, type(item))):
            out.append("")
        out.append(format_item(item, layout))
        prev = item
    return "\n".join(out) + "\n" if out else ""


# ---- aligned columns ------------------------------------------------------------------------------------------

# the columns authors align over a group of lines, each with the spaces fmt puts before it
_COLUMNS = (("=", 1), (":", 1), ("#", 2))


def code_chars(line: str) -> Iterator[tuple[int, str]]:
    """(index, character) of a line's characters outside string literals (quotes included, escapes skipped);
    strings never span lines, so a per-line scan is exact."""
    in_str = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        else:
            if ch == '"':
                in_str = True
            yield i, ch
        i += 1


def _column(line: str, mark: str) -> int:
    """Where `mark` stands in a line, outside strings and brackets (-1: nowhere): the first `=` of a statement, the
    ` :` of a shape assertion, the `#` of a comment after code."""
    depth = 0
    for i, ch in code_chars(line):
        if ch == "#":
            return i if mark == "#" and line[:i].strip() else -1
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch == mark and line[:i].strip():
            if mark == "=" and line[i + 1 : i + 2] != "=":
                return i
            if mark == ":" and line[i - 1] == " ":
                return i
    return -1


def _squeeze(line: str) -> str:
    return " ".join(line.split())


def _aligned(line: str, col: int) -> bool:
    """Whether spaces before `col` may be the author's alignment: they stand before one of the marks authors line up
    over a group of lines (`=`, `->`, a shape assertion's `:`, a comment's `#`)."""
    return line[col] in "=:#" or line.startswith("->", col)


def _respace(old: list[str], n: int) -> str:
    """Old line n with every run of spaces that aligns nothing put back to fmt's spacing (one; two before `#`)."""
    line = old[n].rstrip()
    indent = len(line) - len(line.lstrip())
    out = line[:indent]
    i = indent
    in_str = False
    while i < len(line):
        ch = line[i]
        if ch == " " and not in_str:
            j = i
            while line[j] == " ":
                j += 1
            if line[j] == "#" and j - i < 2:
                out += "  "
            elif j - i > 1 and not _aligned(line, j):
                out += "  " if line[j] == "#" else " "
            else:
                out += line[i:j]
            i = j
            continue
        if ch == "#" and not in_str:
            return out + line[i:]
        if in_str and ch == "\\":
            out += line[i : i + 2]
            i += 2
            continue
        if ch == '"':
            in_str = not in_str
        out += ch
        i += 1
    return out


def align_columns(new_text: str, old_text: str, line_map: dict[int, int]) -> str:
    """Keep the spaces the author used to align columns. `line_map` maps a line of
    `new_text` to the line of `old_text` it was formatted from (both 1-based). A line that differs from its source
    only in spacing keeps the spaces before `=`, `->`, `:` and `#`; in a line that changed otherwise, a mark (`=`,
    ` :`, `#`) the author moved right keeps its column."""
    lines = new_text.split("\n")
    old = [ln.rstrip("\r") for ln in old_text.split("\n")]
    for i, line in enumerate(lines):
        n = line_map.get(i + 1)
        if n is None:
            continue
        n -= 1
        indent = len(line) - len(line.lstrip())
        if old[n][:indent] == line[:indent] and _squeeze(old[n]) == _squeeze(line):
            lines[i] = _respace(old, n)
            continue
        for mark, gap in _COLUMNS:
            col, oc = _column(lines[i], mark), _column(old[n], mark)
            if col < 0 or oc < 0:
                continue
            head = lines[i][:col].rstrip()
            if oc - len(old[n][:oc].rstrip()) > gap and oc > len(head) + gap:
                lines[i] = head + " " * (oc - len(head)) + lines[i][col:]
    return "\n".join(lines)
