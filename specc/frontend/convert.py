"""`specc fmt` and `specc convert`: canonical .net text that keeps the user's comments, and .net ⇄ YAML.

The AST holds no comments, so fmt formats the AST (fmt.format_module), then puts each comment back beside the
statement it was written next to: a comment on its own line before the statement that follows it, a comment at
the end of a line after the statement on that line. Statements are matched between the old and the new text by
their order in the tree, which formatting does not change; inside a statement whose brackets fmt kept broken over
lines, so are its nodes, and a comment goes with the node it follows (or, on its own line, the one it precedes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Literal

from ..errors import SpecError
from ..source import Source, Span
from . import ast
from .fmt import Layout, align_columns, code_chars, format_module
from .load import YAML_SUFFIXES, parse_any, read_source, read_source_and_bytes
from .parse import parse_source

# ---- comments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    """One `#` comment: its line, its text (from '#'), whether it has the line to itself, and blank lines around it."""

    line: int
    text: str
    own_line: bool
    blank_before: bool
    blank_after: bool


def find_comments(text: str) -> list[Comment]:
    """Every comment of a .net text. Strings never span lines, so a per-line scan that skips them is exact."""
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    out: list[Comment] = []
    for i, line in enumerate(lines):
        j = next((k for k, ch in code_chars(line) if ch == "#"), -1)
        if j >= 0:
            own = not line[:j].strip()
            blank_before = i > 0 and not lines[i - 1].strip()
            blank_after = i + 1 < len(lines) and not lines[i + 1].strip()
            out.append(Comment(i + 1, line[j:].rstrip(), own, blank_before, blank_after))
    return out


@dataclass(frozen=True)
class _Anchor:
    """A statement, entry or top-level item, by its lines; `parent` is the index of its item (None for items);
    `parts` are its nodes outside any statement (a block's parameters, a statement itself)."""

    start: int
    end: int
    parent: int | None
    parts: tuple[object, ...] = field(default=(), compare=False)


def _anchors(m: ast.Module) -> list[_Anchor]:
    out: list[_Anchor] = []
    for item in m.items:
        children: tuple[ast.Stmt | ast.Entry, ...] = ()
        parts: tuple[object, ...] = (item,)
        if isinstance(item, ast.ModelDef | ast.BlockDef):
            children = item.body
            parts = item.params if isinstance(item, ast.BlockDef) else ()
        elif isinstance(item, ast.TrainDef | ast.ObjectiveDef):
            children = item.entries
            parts = ()
        out.append(_Anchor(item.span.line, item.span.end_line, None, parts))
        parent = len(out) - 1
        for c in children:
            out.append(_Anchor(c.span.line, c.span.end_line, parent, (c,)))
    return out


_SPANNED = (ast.Let, ast.BlockParam)


def _span_pairs(old: object, new: object) -> Iterator[tuple[Span, Span]]:
    """The spans of the same nodes in two trees of one shape: the source's and its formatted text's."""
    if isinstance(old, Span) and isinstance(new, Span):
        if old.line > 0 and new.line > 0:
            yield old, new
    elif isinstance(old, tuple) and isinstance(new, tuple):
        for o, n in zip(old, new, strict=True):
            yield from _span_pairs(o, n)
    elif is_dataclass(old) and not isinstance(old, type):
        for f in fields(old):
            yield from _span_pairs(getattr(old, f.name), getattr(new, f.name))


def _moved_line(c: Comment, old: _Anchor, new: _Anchor, lines: list[str]) -> int | None:
    """The new line a comment inside a statement goes with: a comment after code, the line where the last node
    before it on its line ended; a comment on its own line, the line that the next node begins, if it begins it
    (None: no such node)."""
    pairs = list(_span_pairs(old.parts, new.parts))
    if not c.own_line:
        ends = [(o.end_col, n.end_line) for o, n in pairs if o.end_line == c.line]
        return max(ends)[1] if ends else None
    later = [((o.line, o.col), n) for o, n in pairs if o.line > c.line]
    if not later:
        return None
    n = min(later, key=lambda p: p[0])[1]
    return n.line if lines[n.line - 1][: n.col - 1].strip() in ("", "->") else None


Place = Literal["before", "after", "before_end", "eof"]


def _place(c: Comment, anchors: list[_Anchor]) -> tuple[Place, int]:
    """Where a comment belongs: before/after anchor i, before the closing line of item i, or at the end of the file."""
    items = [i for i, a in enumerate(anchors) if a.parent is None]
    inside = next((i for i in items if anchors[i].start <= c.line <= anchors[i].end), None)
    kids = [i for i, a in enumerate(anchors) if a.parent is not None and a.parent == inside]
    if not c.own_line:
        on_line = [i for i in kids if anchors[i].start <= c.line <= anchors[i].end]
        if on_line:
            return "after", on_line[-1]
        if inside is None:
            return "eof", -1
        return "after", inside
    if inside is not None and anchors[inside].start < c.line:
        within = [i for i in kids if anchors[i].start < c.line <= anchors[i].end]
        if within:  # a comment between the continuation lines of a statement goes before that statement
            return "before", within[-1]
        parts = [p.span for p in anchors[inside].parts if isinstance(p, _SPANNED)]
        if any(c.line < sp.end_line for sp in parts):  # so does one inside a `let` or a block's parameters
            return "before", inside
        nxt = next((i for i in kids if anchors[i].start > c.line), None)
        return ("before", nxt) if nxt is not None else ("before_end", inside)
    nxt = next((i for i in items if anchors[i].start >= c.line), None)
    return ("before", nxt) if nxt is not None else ("eof", -1)


def attach_comments(old: Source, new_text: str) -> str:
    """`new_text` (the canonical text of `old`'s AST) with `old`'s comments put back in place."""
    comments = find_comments(old.text)
    if not comments:
        return new_text
    old_anchors = _anchors(parse_source(old))
    new_anchors = _anchors(parse_source(Source(old.name, new_text)))
    assert len(old_anchors) == len(new_anchors)
    # a file of comments only has no lines of its own: "".split gave [""], a blank line put before its comments
    # on every run of fmt
    lines = new_text.rstrip("\n").split("\n") if new_text.strip() else []
    before: dict[int, list[str]] = {}  # new line number → lines to insert before it
    gap: set[int] = set()  # new line numbers whose comment group had a blank line before it
    after: dict[int, list[str]] = {}  # new line number → comments to append to it
    tail: list[str] = []
    tail_gap = False  # the comments at the end of the file had a blank line before them
    for c in comments:
        where, i = _place(c, old_anchors)
        if where == "eof":
            tail_gap = tail_gap or (not tail and c.blank_before)
            if c.blank_before and tail:
                tail.append("")
            tail.append(c.text)
            continue
        a, o = new_anchors[i], old_anchors[i]
        if where == "after":
            line = a.end if o.parent is not None or c.line != o.start else a.start
            if o.parent is not None and o.end - o.start == a.end - a.start:
                line = a.start + c.line - o.start  # the statement kept its lines: the comment keeps its line
            after.setdefault(_moved_line(c, o, a, lines) or line, []).append(c.text)
            continue
        line = a.end if where == "before_end" else a.start
        if where == "before" and o.start < c.line:  # within a statement: before the line its next node begins
            line = _moved_line(c, o, a, lines) or line
        indent = "  " if where == "before_end" else _indent(lines[line - 1])
        group = before.setdefault(line, [])
        if c.blank_before:
            if group and group[-1] != "":
                group.append("")
            elif not group:
                gap.add(line)
        group.append(indent + c.text)
        if c.blank_after and where == "before":
            group.append("")
    out: list[str] = []
    for n, text in enumerate(lines, start=1):
        group = before.get(n, [])
        while group and group[-1] == "" and text.strip() == "}":
            group = group[:-1]
        # keep a blank line the user put before a comment group, unless one is there or a block just opened
        if group and n in gap and out and out[-1].strip() and not out[-1].rstrip().endswith("{"):
            out.append("")
        out.extend(group)
        if n in after:
            text = text + "  " + "  ".join(after[n])
        out.append(text)
    if tail:
        if tail_gap and out:
            out.append("")
        out.extend(tail)
    return "\n".join(out) + "\n"


def _line_map(old: ast.Module, new: ast.Module) -> dict[int, int]:
    """Each line of the new text that belongs to a statement written on as many lines as before → its old line."""
    out: dict[int, int] = {}
    for o, n in zip(_anchors(old), _anchors(new), strict=True):
        if o.end - o.start == n.end - n.start:
            for k in range(o.end - o.start + 1):
                out[n.start + k] = o.start + k
    return out


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


# ---- fmt and convert ----------------------------------------------------------------------------------------


def format_source(src: Source, force: bool = False) -> str:
    """The canonical text of a .net source, comments kept."""
    module = parse_source(src)
    text = format_module(module, Layout.of(src.text))
    kept = attach_comments(src, text)
    try:
        same = parse_source(Source(src.name, kept)) == module
    except SpecError:
        same = False
    if same:
        return align_columns(kept, src.text, _line_map(module, parse_source(Source(src.name, kept))))
    if force:
        return text
    n = len(find_comments(src.text))
    raise SpecError.one(
        "value error",
        f"fmt could not keep the {n} comment(s) of this file in place",
        Span.point(src.name, 1, 1),
        "pass --force to format it without its comments",
    ).with_sources({src.name: src})


def format_file(path: Path | str, check_only: bool = False, force: bool = False) -> bool:
    """Rewrite a .net file in canonical form (atomically, only when it changes); True when it was not canonical."""
    path = Path(path)
    src, raw = read_source_and_bytes(path)
    if path.suffix in YAML_SUFFIXES:
        raise SpecError.one(
            "file error",
            f"specc fmt formats .net files; {src.name} is YAML",
            None,
            f"to get canonical .net text, run `specc convert {src.name} --to net`",
        )
    new = as_written(format_source(src, force), raw)
    changed = new != raw
    if changed and not check_only:
        import stat

        from ..errors import UsageError
        from ..train.io import write_output

        target = path.resolve()  # through a symbolic link: the link stays, the file it names is rewritten
        if not target.is_file():  # /dev/stdin from a pipe: there is no file to put the text back into
            raise UsageError.of(
                f"{src.name} is not a file (a pipe or a device): specc fmt cannot rewrite it",
                f"check it with specc fmt --check {src.name}, see the change with --diff, or give it to `specc fmt -`"
                " on standard input, which prints the formatted text",
            )
        mode = stat.S_IMODE(target.stat().st_mode)
        if not mode & stat.S_IWUSR:
            # the atomic rename replaced a read-only file, which an editor, gofmt -w or black would not
            raise UsageError.of(
                f"{src.name} is read-only (mode {mode:o}): specc fmt does not rewrite it",
                f"make it writable (chmod u+w {src.name}) to format it, or see the change with specc fmt --diff",
            )
        write_output(target, new, mode=mode)
    return changed


_BOM = b"\xef\xbb\xbf"


def as_written(text: str, raw: bytes) -> bytes:
    """Formatted text as bytes in the file's own conventions: its line breaks (CRLF where its first line ends so:
    a Windows checkout, whose every line would otherwise show as changed and fail `fmt --check`) and its UTF-8
    byte-order mark, if it has one."""
    first = raw.find(b"\n")
    if first > 0 and raw[first - 1 : first] == b"\r":
        text = text.replace("\n", "\r\n")
    return (_BOM if raw.startswith(_BOM) else b"") + text.encode()


def relocations(module: ast.Module, here: Path, there: Path) -> list[tuple[Span, str]]:
    """The relative paths of a spec read from folder `here` that change when it is written to folder `there`:
    (the span of each string, its path from `there`). Imports and data files are read relative to the spec's
    folder; a `from "runs/X"` run is too where it lies beside the spec (else specc looks in the working folder,
    which a move does not change), so only such a one moves."""
    import os

    from ..train.data import DATASETS

    def moved(text: str) -> str | None:
        if not text or Path(text).is_absolute() or text.startswith("~"):
            return None
        new = Path(os.path.relpath(here / text, there)).as_posix()
        return new if new != text else None

    out: list[tuple[Span, str]] = []
    for item in module.items:
        if isinstance(item, ast.Import):
            new = moved(item.path)
            if new is not None:
                out.append((item.span, new))
        elif isinstance(item, ast.ModelDef | ast.BlockDef):
            for st in item.body:
                if isinstance(st, ast.Assign) and st.run and (here / st.run).exists():
                    new = moved(st.run)
                    if new is not None:
                        out.append((st.run_span, new))
        elif isinstance(item, ast.TrainDef):
            for e in item.entries:
                v = e.value
                call = v.head if isinstance(v, ast.Pipeline) and not v.stages else v
                if e.key != "data" or not isinstance(call, ast.Call):
                    continue
                info = DATASETS.get(call.func)
                if info is None or info.kind != "file":
                    continue
                positional = [p.name for p in info.params if p.positional]
                given = [*zip(positional, call.args, strict=False), *((k.name, k.value) for k in call.kwargs)]
                paths = {p.name for p in info.params if p.kind == "path"}
                for name, value in given:
                    if name in paths and isinstance(value, ast.Str):
                        new = moved(value.value)
                        if new is not None:
                            out.append((value.span, new))
    return out


def _replace_spans(text: str, moves: list[tuple[Span, str]]) -> str:
    """`text` with the first string literal inside each span replaced by the new path, quoted as .net quotes."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    edits = []
    for span, new in moves:
        a = starts[span.line - 1] + span.col - 1
        b = starts[span.end_line - 1] + span.end_col - 1
        m = re.compile(r'"(?:[^"\\\n]|\\.)*"').search(text, a, b)
        if m is not None:
            edits.append((m.start(), m.end(), '"' + new.replace("\\", "\\\\").replace('"', '\\"') + '"'))
    for a, b, quoted in sorted(edits, reverse=True):
        text = text[:a] + quoted + text[b:]
    return text


def _relocated(module: ast.Module, moves: list[tuple[Span, str]]) -> ast.Module:
    """The module with the strings at the moves' spans replaced (a YAML spec, whose text is not edited)."""
    from dataclasses import replace

    new_at = {(s.line, s.col): p for s, p in moves}

    def at(span: Span) -> str | None:
        return new_at.get((span.line, span.col))

    def expr(e: ast.Expr) -> ast.Expr:
        if isinstance(e, ast.Str) and (path := at(e.span)) is not None:
            return replace(e, value=path)
        if isinstance(e, ast.Call):
            return replace(
                e,
                args=tuple(expr(a) for a in e.args),
                kwargs=tuple(replace(k, value=expr(k.value)) for k in e.kwargs),
            )
        if isinstance(e, ast.Pipeline):
            return replace(e, head=expr(e.head))
        return e

    items: list[ast.Item] = []
    for item in module.items:
        if isinstance(item, ast.Import) and (path := at(item.span)) is not None:
            item = replace(item, path=path)
        elif isinstance(item, ast.ModelDef | ast.BlockDef):
            body = tuple(
                replace(st, run=at(st.run_span) or st.run) if isinstance(st, ast.Assign) and st.run else st
                for st in item.body
            )
            item = replace(item, body=body)
        elif isinstance(item, ast.TrainDef):
            item = replace(item, entries=tuple(replace(e, value=expr(e.value)) for e in item.entries))
        items.append(item)
    return replace(module, items=tuple(items))


def format_diff(path: Path | str, force: bool = False) -> str:
    """What `format_file` would change in a .net file, as a unified diff ("" when it is formatted)."""
    path = Path(path)
    src, raw = read_source_and_bytes(path)
    return unified_diff(raw, as_written(format_source(src, force), raw), str(path))


def format_bytes(raw: bytes, name: str, force: bool = False) -> bytes:
    """The canonical bytes of .net text that is not in a file (`specc fmt -` reads standard input); `name` is what
    its errors are located in."""
    from .parse import decode

    return as_written(format_source(decode(raw, name), force), raw)


def unified_diff(raw: bytes, new: bytes, name: str) -> str:
    """A unified diff from `raw` to `new` ("" when they are the same)."""
    import difflib

    old = raw.decode("utf-8", errors="replace")
    return "".join(
        difflib.unified_diff(
            old.splitlines(True),
            new.decode("utf-8").splitlines(True),
            f"{name} (before)",
            f"{name} (formatted)",
        )
    )


# YAML ends a comment at any of its line breaks and refuses control characters; a .net comment holds both
_YAML_BREAK = re.compile("\r\n?|[\x85\u2028\u2029]")
_YAML_NON_PRINTABLE = re.compile("[^\x09\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _yaml_comment(text: str) -> list[str]:
    """A .net comment (from '#') as YAML comment lines: one per line break in it, control characters escaped."""
    parts = _YAML_BREAK.split(text)
    return [
        ("" if i == 0 else "# ") + _YAML_NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", part)
        for i, part in enumerate(parts)
    ]


def convert_file(path: Path | str, target: str, output: Path | str | None = None) -> str:
    """The spec at `path` (.net or YAML) as text for the other front end: target "yaml" or "net". With `output`
    (where the text will be written) in another folder, its relative paths are rewritten to be read from there."""
    from .yaml_frontend import to_yaml

    path = Path(path)
    src = read_source(path)
    is_yaml = path.suffix in YAML_SUFFIXES
    moves: list[tuple[Span, str]] = []
    if output is not None:
        here, there = path.resolve().parent, Path(output).resolve().parent
        if here != there:
            moves = relocations(parse_any(src), here, there)
    if moves and not is_yaml:  # edit the literals in the text, so that fmt keeps the file's comments
        src = Source(src.name, _replace_spans(src.text, moves))
    if target == "net":
        if not is_yaml:
            return format_source(src)
        return format_module(_relocated(parse_any(src), moves) if moves else parse_any(src))
    if target != "yaml":
        raise ValueError(f"unknown conversion target {target!r}")
    module = parse_any(src)
    if moves and is_yaml:
        module = _relocated(module, moves)
    try:
        text = to_yaml(module)
    except SpecError as e:
        raise e.with_sources({src.name: src}) from None
    # the file's opening comments (its title and references) travel with it
    header: list[str] = []
    if not is_yaml:
        first = min((item.span.line for item in module.items), default=len(src.lines) + 1)
        for c in find_comments(src.text):
            if c.own_line and c.line < first:
                header += [""] if c.blank_before and header else []
                header += _yaml_comment(c.text)
    return "\n".join(header) + ("\n\n" if header else "") + text
