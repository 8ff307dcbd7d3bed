"""AST → canonical .net text: `specc fmt` and the `--to net` half of `specc convert`.

Canonical means: two-space indentation, one statement per line, single spaces around `=` and binary operators,
`->` stages on one line, minimal parentheses by precedence. Comments are not kept (the AST has none), so
`specc fmt` refuses to rewrite a file whose comments it would drop unless told to.
"""

from __future__ import annotations

from . import ast

MAX_LINE = 100  # pipelines longer than this break before `->`

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}


def format_expr(e: ast.Expr | ast.Slice | ast.EllipsisLit, prec: int = 0) -> str:
    if isinstance(e, ast.Num):
        # a negative literal is one token to the parser, but written bare before `**` or `[` it would read as a
        # negation of the power or subscript: (-2) ** 2 is 4, -2 ** 2 is -4
        return f"({_num(e.value)})" if e.value < 0 and prec > 4 else _num(e.value)
    if isinstance(e, ast.Str):
        return '"' + e.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Call):
        return _call(e)
    if isinstance(e, ast.BinOp):
        p = _PREC[e.op]
        # left-associative: the right operand of a same-precedence op needs parentheses; ** is right-assoc
        if e.op == "**":
            text = f"{format_expr(e.left, p + 1)} ** {format_expr(e.right, p)}"
        else:
            text = f"{format_expr(e.left, p)} {e.op} {format_expr(e.right, p + 1)}"
        return f"({text})" if p < prec else text
    if isinstance(e, ast.Neg):
        text = f"-{format_expr(e.operand, 3)}"
        return f"({text})" if prec > 3 else text
    if isinstance(e, ast.Index):
        return f"{format_expr(e.value, 5)}[{', '.join(format_expr(i) for i in e.items)}]"
    if isinstance(e, ast.Slice):
        s = f"{_opt(e.lo)}:{_opt(e.hi)}"
        return s + (f":{format_expr(e.step)}" if e.step is not None else "")
    if isinstance(e, ast.EllipsisLit):
        return "..."
    if isinstance(e, ast.ListLit):
        return "[" + ", ".join(format_expr(x) for x in e.items) + "]"
    if isinstance(e, ast.TupleLit):
        inner = ", ".join(format_expr(x) for x in e.items)
        return f"({inner},)" if len(e.items) == 1 else f"({inner})"
    if isinstance(e, ast.Pipeline):
        text = " -> ".join([format_expr(e.head, 1 if e.stages else prec), *(_stage(s) for s in e.stages)])
        return f"({text})" if e.stages and prec > 0 else text
    raise TypeError(f"cannot format {e!r}")


def _opt(e: ast.Expr | None) -> str:
    return "" if e is None else format_expr(e)


def _num(v: int | float) -> str:
    if isinstance(v, int):
        return str(v)
    text = repr(v)
    return text if ("e" in text or "." in text or "inf" in text or "nan" in text) else text + ".0"


def _call(c: ast.Call) -> str:
    parts = [format_expr(a) for a in c.args] + [f"{k.name}={format_expr(k.value)}" for k in c.kwargs]
    return f"{c.func}({', '.join(parts)})"


def _stage(c: ast.Call) -> str:
    return c.func if c.bare and not c.args and not c.kwargs else _call(c)


def _type(t: ast.TensorTypeExpr) -> str:
    return f"{t.dtype or ''}[{', '.join(format_expr(d) for d in t.dims)}]"


def format_stmt(s: ast.Stmt) -> str:
    if isinstance(s, ast.InputDecl):
        return (
            f"input {s.name}"
            + (f": {_type(s.type)}" if s.type is not None else "")
            + (f" = {format_expr(s.draw)}" if s.draw is not None else "")
        )
    if isinstance(s, ast.ParamDecl):
        return f"param {s.name}: {_type(s.type)}" + (
            f" = {format_expr(s.init)}" if s.init is not None else ""
        )
    if isinstance(s, ast.Assign):
        lhs = f"{', '.join(s.targets)} = "
        check = (
            f" : [{', '.join(format_expr(d) for d in s.assert_dims)}]" if s.assert_dims is not None else ""
        )
        if s.run is not None:
            check += " from " + format_expr(ast.Str(s.run))
        text = lhs + format_expr(s.value) + check
        p = s.value
        if len(text) + 2 > MAX_LINE and p.stages:
            # a long pipeline breaks before `->`, continuation lines aligned under the value
            pad = "\n  " + " " * len(lhs)
            parts = [format_expr(p.head, 1)] + [f"-> {_stage(st)}" for st in p.stages]
            lines: list[str] = []
            current = parts[0]
            for part in parts[1:]:
                if 2 + len(lhs) + len(current) + 1 + len(part) <= MAX_LINE:
                    current += " " + part
                else:
                    lines.append(current)
                    current = part
            lines.append(current)
            text = lhs + pad.join(lines) + check
        return text
    if isinstance(s, ast.Output):
        return "output " + ", ".join(s.names)
    if isinstance(s, ast.Default):
        return f"default {s.key} = {format_expr(s.value)}"
    if isinstance(s, ast.Let):
        return f"let {s.name} = {format_expr(s.value)}"
    raise TypeError(f"cannot format {s!r}")


def _body(stmts: tuple[ast.Stmt, ...]) -> list[str]:
    lines: list[str] = []
    prev_kind = None
    for s in stmts:
        kind = type(s)
        # a blank line between groups of different statements (inputs | computation | outputs)
        if (
            prev_kind is not None
            and kind is not prev_kind
            and (ast.InputDecl in (kind, prev_kind) or kind is ast.Output)
        ):
            lines.append("")
        lines.append("  " + format_stmt(s))
        prev_kind = kind
    return lines


def _entries(entries: tuple[ast.Entry, ...]) -> list[str]:
    out = []
    for e in entries:
        if (
            isinstance(e.value, ast.Call)
            and e.value.func == e.key
            and e.rename is None
            and _is_bare_call_entry(e)
        ):
            out.append("  " + format_expr(e.value))
            continue
        text = f"  {e.key} = {format_expr(e.value)}"
        if e.rename is not None:
            text += " as {" + ", ".join(f"{a}: {b}" for a, b in e.rename) + "}"
        out.append(text)
    return out


def _is_bare_call_entry(e: ast.Entry) -> bool:
    return e.key in ("early_stop", "checkpoint")


def format_item(item: ast.Item) -> str:
    if isinstance(item, ast.ModelDef):
        return "\n".join([f"model {item.name} {{", *_body(item.body), "}"])
    if isinstance(item, ast.BlockDef):
        params = ", ".join(
            p.name + (f"={format_expr(p.default)}" if p.default is not None else "") for p in item.params
        )
        return "\n".join([f"block {item.name}({params}) {{", *_body(item.body), "}"])
    if isinstance(item, ast.Let):
        return format_stmt(item)
    if isinstance(item, ast.Import):
        return f'import "{item.path}"'
    if isinstance(item, ast.TrainDef):
        return "\n".join(["train {", *_entries(item.entries), "}"])
    if isinstance(item, ast.ObjectiveDef):
        return "\n".join([f"objective {item.name} {{", *_entries(item.entries), "}"])
    raise TypeError(f"cannot format {item!r}")


def format_module(m: ast.Module) -> str:
    """The canonical text of a module; idempotent: format(parse(format(m))) == format(m)."""
    out: list[str] = []
    prev: type | None = None
    for item in m.items:
        small = isinstance(item, ast.Let | ast.Import)
        if out and not (small and prev is type(item)):
            out.append("")
        out.append(format_item(item))
        prev = type(item)
    return "\n".join(out) + "\n" if out else ""
