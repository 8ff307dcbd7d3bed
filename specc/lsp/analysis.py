"""What the language server knows of one document: the checker's diagnostics and typed graphs, and the answers to
an editor's questions about a position (hover, completion, definition). No pygls and no JAX here.

Positions are 0-based lines and code points (the server converts the client's units); answers carry specc Spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Diagnostic, SpecError
from ..frontend import ast
from ..frontend.load import Program
from ..ir.graph import Graph, Node, Scope
from ..ir.types import TensorType
from ..source import Source, Span

_WORD = re.compile(r"[A-Za-z_]\w*")
_MAX_SHOWN = 6  # call sites listed in a hover before "and k more"


@dataclass(frozen=True)
class Completion:
    """One completion candidate: `kind` is op, block, keyword, key, value, constant, function or type."""

    label: str
    kind: str
    detail: str = ""
    doc: str = ""


@dataclass(frozen=True)
class Hover:
    """Markdown for the word under the cursor, and where that word is."""

    markdown: str
    span: Span


@dataclass
class Analysis:
    """One version of a document, checked as `specc check` checks a file.

    Args:
        path: the file (imports are resolved from its folder); it need not exist on disk.
        text: the document's text.
        program: the parsed file with its imports, or None when it does not parse.
        graphs: the typed graph of every model that checks, by model name.
        diagnostics: every problem the checker found, in its order.
    """

    path: Path
    text: str
    program: Program | None = None
    graphs: dict[str, Graph] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def name(self) -> str:
        """The file name specc's spans use for this document."""
        return Source.display_name(self.path)

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def file_of(self, span: Span) -> Path:
        """The file a span points into (this document or an imported one)."""
        if span.file == self.name:
            return self.path
        return (Path.cwd() / span.file).resolve()

    def import_span(self, file: str) -> Span:
        """The `import` statement of this document that brings `file` in (its first import if none names it)."""
        imports = [i for i in self.program.module.items if isinstance(i, ast.Import)] if self.program else []
        target = (Path.cwd() / file).resolve()
        for item in imports:
            if (self.path.parent / item.path).resolve() == target:
                return item.span
        return imports[0].span if imports else Span.point(self.name, 1, 1)


def analyse(path: Path, text: str) -> Analysis:
    """Parse, build every model's graph and check the train sections; SpecErrors become diagnostics."""
    from ..spec import load
    from ..train.spec import check_spec

    out = Analysis(path, text)
    diags: list[Diagnostic] = []

    def collect(err: SpecError) -> None:
        diags.extend(d for d in err.diagnostics if d not in diags)

    try:
        spec = load(path, text=text, keep_going=True)
        out.program = spec.program
        try:
            # what `specc check` runs: every model, the default's train and objective sections
            summary = check_spec(spec)
        except SpecError as e:
            collect(e)
        else:
            warnings = summary.get("warnings")
            diags.extend(warnings.diagnostics if warnings else ())
        for model in spec.program.models:  # the editor shows every model's problems, not only the default's
            try:
                g = spec.graph(model)
            except SpecError as e:
                collect(e)
            else:
                out.graphs[g.model] = g
    except SpecError as e:
        collect(e)
    except RecursionError:  # the front ends bound nesting; as in the CLI, this is the last line of defence
        collect(SpecError.one("value error", "the spec is nested too deeply to process", None))
    out.diagnostics = tuple(diags)
    return out


# ---- positions ----------------------------------------------------------------------------------------------


def _contains(span: Span, line: int, col: int) -> bool:
    """Whether 1-based (line, col) lies in the span (end inclusive, so a cursor just past a word still hits)."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def word_at(text: str, line: int, char: int) -> tuple[str, int] | None:
    """The identifier at 0-based (line, char) and its first character's index, outside comments and strings."""
    from ..frontend.fmt import code_chars

    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    src = lines[line]
    code = dict(code_chars(src))  # index → character, for the characters outside strings
    end = next((i for i, ch in code.items() if ch == "#"), len(src))
    for m in _WORD.finditer(src, 0, end):
        if m.start() <= char <= m.end():
            before = src[m.start() - 1] if m.start() else ""
            if before.isdigit() or before == "." or m.start() not in code:  # `1e3`, `x.y`, `"a b"`
                return None
            return m.group(), m.start()
    return None


def _enclosing(program: Program, name: str, line: int, col: int) -> ast.Item | None:
    for item in program.module.items:
        if item.span.file == name and _contains(item.span, line, col):
            return item
    return None


@dataclass(frozen=True)
class _Section:
    """The top-level section a position is in: its kind (model, block, train, objective or top), its name, the
    line its `{` is on (0-based), and the text before the position on its line."""

    kind: str
    name: str
    start: int
    before: str


def _section_at(text: str, line: int, char: int) -> _Section:
    """The section at 0-based (line, char), read from the text: it works while the text does not parse."""
    from ..frontend.fmt import code_chars

    lines = text.split("\n")
    depth = 0
    section = _Section("top", "", 0, "")
    for n, src in enumerate(lines[: line + 1]):
        stop = min(char, len(src)) if n == line else len(src)
        for i, ch in code_chars(src[:stop]):
            if ch == "#":
                break
            if ch == "{":
                if depth == 0:
                    head = _WORD.findall(src[:i])
                    kind = head[0] if head and head[0] in ("model", "block", "train", "objective") else "top"
                    section = _Section(kind, head[1] if len(head) > 1 else "", n, "")
                depth += 1
            elif ch == "}":
                depth = max(0, depth - 1)
                if depth == 0:
                    section = _Section("top", "", n, "")
    before = lines[line][:char] if line < len(lines) else ""
    return _Section(section.kind if depth else "top", section.name, section.start, before)


# ---- hover --------------------------------------------------------------------------------------------------


def hover(a: Analysis, line: int, char: int) -> Hover | None:
    """What the word at 0-based (line, char) is: a value's type, an op call's signature and parameter count,
    a block's signature, a constant's value, a train-section function's signature."""
    found = word_at(a.text, line, char)
    if found is None:
        return None
    word, start = found
    L, C = line + 1, start + 1
    span = Span(a.name, L, C, L, C + len(word))
    text = _hover_text(a, word, L, C)
    return Hover(text, span) if text else None


def _hover_text(a: Analysis, word: str, L: int, C: int) -> str:
    from ..ops._registry import all_ops

    program = a.program
    ops = all_ops()
    at_call = [n for g in a.graphs.values() for n in g.nodes if _starts_at(n.span, a.name, L, C)]
    if word in ops and (at_call or _is_call(a.lines[L - 1], C - 1, C - 1 + len(word)) or not program):
        return _op_hover(a, word, [n for n in at_call if n.op == word])
    if program is None:
        return ""
    item = _enclosing(program, a.name, L, C)
    if word in program.blocks:
        return _block_hover(a, program.blocks[word], L, C)
    if isinstance(item, ast.ModelDef) and item.name == word:
        return _model_hover(a, word)
    if isinstance(item, ast.ModelDef | ast.BlockDef):
        text = _value_hover(a, item, word)
        if text:
            return text
    if isinstance(item, ast.TrainDef | ast.ObjectiveDef):
        text = _train_hover(a, word)
        if text:
            return text
    if word in program.lets:
        let = program.lets[word]
        from ..frontend.fmt import format_expr

        return (
            _code(f"let {word} = {format_expr(let.value)}") + f"\n\nconstant, defined at {_where(let.span)}"
        )
    if word in ops:
        return _op_hover(a, word, [])
    return ""


def _starts_at(span: Span, name: str, L: int, C: int) -> bool:
    return span.file == name and span.line == L and span.col == C


def _is_call(line: str, start: int, end: int) -> bool:
    """Whether the word at line[start:end] is called: `word(` or a bare pipeline stage `-> word`."""
    return line[end:].lstrip().startswith("(") or line[:start].rstrip().endswith("->")


def _code(text: str) -> str:
    return f"```specc\n{text}\n```"


def _where(span: Span) -> str:
    return f"{span.file}:{span.line}:{span.col}"


def _path(n: Node) -> str:
    return "/".join(s.instance for s in n.scope) or "model"


def param_formula(n: Node) -> str:
    """`100,480 = 784·128 + 128`: a node's trainable parameters, counted per tensor."""
    parts = ["·".join(str(d) for d in shape) or "1" for _, shape in n.params]
    total = f"{n.param_count:,}"
    return total if len(parts) == 1 and parts[0] == str(n.param_count) else f"{total} = {' + '.join(parts)}"


def _op_hover(a: Analysis, word: str, nodes: list[Node]) -> str:
    from ..ops._registry import all_ops
    from ..reference import signature

    op = all_ops()[word]
    out = [_code(signature(op)), op.doc]
    for n in nodes[:_MAX_SHOWN]:
        g = _graph_of(a, n)
        ins = ", ".join(str(g.type_of(r)) for r in n.inputs) if g else ""
        outs = ", ".join(map(str, n.outputs))
        where = f"in {_path(n)}: " if n.scope else ""
        line = f"- {where}`{ins}` → `{outs}`" if ins else f"- {where}→ `{outs}`"
        if n.shares is not None and g is not None:
            line += f"; shares the weights of `{g.nodes[n.shares].name}`"
        elif n.params:
            line += f"; params {param_formula(n)}"
        if n.state:
            line += f" (+{n.state_count:,} state)"
        out.append(line)
    if len(nodes) > _MAX_SHOWN:
        out.append(f"- and {len(nodes) - _MAX_SHOWN} more applications")
    return "\n\n".join(x for x in out[:2] if x) + ("\n\n" + "\n".join(out[2:]) if out[2:] else "")


def _graph_of(a: Analysis, n: Node) -> Graph | None:
    for g in a.graphs.values():
        if n.id < len(g.nodes) and g.nodes[n.id] is n:
            return g
    return None


def _type_text(t: ast.TensorTypeExpr | None) -> str:
    if t is None:
        return ""
    from ..frontend.fmt import format_expr

    return f"{t.dtype or ''}[{', '.join(format_expr(d) for d in t.dims)}]"


def block_signature(b: ast.BlockDef) -> str:
    """`block Basic(c, stride=1)` and its declared inputs and outputs, one per line."""
    from ..frontend.fmt import format_expr

    params = ", ".join(
        p.name if p.default is None else f"{p.name}={format_expr(p.default)}" for p in b.params
    )
    lines = [f"block {b.name}({params})"]
    for s in b.body:
        if isinstance(s, ast.InputDecl):
            lines.append(f"  input {s.name}: {_type_text(s.type)}".rstrip(": "))
        elif isinstance(s, ast.Output):
            lines.append(f"  output {', '.join(s.names)}")
    return "\n".join(lines)


def _block_hover(a: Analysis, b: ast.BlockDef, L: int, C: int) -> str:
    out = [_code(block_signature(b)), f"defined at {_where(b.span)}"]
    # the instances this call site made: those of `b` entered at (L, C)
    instances = {k: v for k, v in _instances(a, b.name).items() if _starts_at(v.scope.span, a.name, L, C)}
    lines = []
    for path, inst in list(instances.items())[:_MAX_SHOWN]:
        nodes = inst.nodes
        params = sum(n.param_count for n in nodes)
        state = sum(n.state_count for n in nodes)
        shared = any(n.shares is not None for n in nodes) and not params
        outs = ", ".join(map(str, nodes[-1].outputs))
        what = (
            "shares its weights"
            if shared
            else f"params {params:,}" + (f" (+{state:,} state)" if state else "")
        )
        # what the call passes in: the values from outside the instance its nodes read, in order (an op's hover
        # shows its input type before the arrow; a block's showed the arrow alone)
        g = _graph_of(a, nodes[0])
        inside = {n.id for n in nodes}
        passed = list(dict.fromkeys(r for n in nodes for r in n.inputs if r.node not in inside))
        ins = ", ".join(str(g.type_of(r)) for r in passed) if g is not None else ""
        lines.append(f"- `{path}`: `{ins}` → `{outs}`; {what}" if ins else f"- `{path}`: → `{outs}`; {what}")
    if len(instances) > _MAX_SHOWN:
        lines.append(f"- and {len(instances) - _MAX_SHOWN} more instances")
    return "\n\n".join(out) + ("\n\n" + "\n".join(lines) if lines else "")


def _model_hover(a: Analysis, name: str) -> str:
    g = a.graphs.get(name)
    if g is None:
        return _code(f"model {name}") + "\n\n(does not check yet)"
    ins = ", ".join(f"{k}: {g.nodes[v].type}" for k, v in g.inputs)
    outs = ", ".join(f"{k}: {g.type_of(r)}" for k, r in g.outputs)
    state = f" (+{g.total_state:,} state)" if g.total_state else ""
    return (
        _code(f"model {name}")
        + f"\n\n- inputs: `{ins}`\n- outputs: `{outs}`\n- params: {g.total_params:,}{state}"
    )


def _value_hover(a: Analysis, item: ast.ModelDef | ast.BlockDef, word: str) -> str:
    decl = _declaration(item, word)
    if decl is None:
        return ""
    if isinstance(item, ast.BlockDef):
        if isinstance(decl, ast.BlockParam):
            return _code(f"{word}") + f"\n\nparameter of block `{item.name}`"
        types: dict[str, list[str]] = {}
        for path, n in _block_values(a, item.name, word).items():
            types.setdefault(str(n.type), []).append(path)
        inputs = [st for st in item.body if isinstance(st, ast.InputDecl)]
        if isinstance(decl, ast.InputDecl) and len(inputs) == 1:  # one input: what each instance is fed
            types = {}
            for path, t in _block_input_types(a, item.name).items():
                types.setdefault(str(t), []).append(path)
        if isinstance(decl, ast.InputDecl) and not types:
            return _code(f"input {word}: {_type_text(decl.type)}") + f"\n\ninput of block `{item.name}`"
        if not types:
            return _code(word) + f"\n\nvalue of block `{item.name}` (no checked use of the block yet)"
        lines = [
            f"- `{t}` in {', '.join(ps[:_MAX_SHOWN])}" + (" …" if len(ps) > _MAX_SHOWN else "")
            for t, ps in list(types.items())[: 2 * _MAX_SHOWN]
        ]
        if len(types) > 2 * _MAX_SHOWN:
            lines.append(f"- and {len(types) - 2 * _MAX_SHOWN} more types")
        kind = "input" if isinstance(decl, ast.InputDecl) else "value"
        return _code(word) + f"\n\n{kind} of block `{item.name}`, per instance:\n" + "\n".join(lines)
    g = a.graphs.get(item.name)
    if g is None:
        return ""
    return _model_value(g, word)


@dataclass
class _Instance:
    """One instance of a block in a checked graph: where it was entered, and its nodes in order."""

    graph: Graph
    scope: Scope
    prefix: str  # the instance path, `i3.Inception1/b2`: its nodes' names start with it and a `/`
    nodes: list[Node] = field(default_factory=list)


def _instances(a: Analysis, block: str) -> dict[str, _Instance]:
    """Every instance of `block`, by instance path (prefixed by the model when the file has several)."""
    out: dict[str, _Instance] = {}
    for g in a.graphs.values():
        for n in g.nodes:
            for k, s in enumerate(n.scope):
                if s.block == block:
                    prefix = "/".join(x.instance for x in n.scope[: k + 1])
                    key = f"{g.model}/{prefix}" if len(a.graphs) > 1 else prefix
                    out.setdefault(key, _Instance(g, s, prefix)).nodes.append(n)
    return out


def _block_input_types(a: Analysis, block: str) -> dict[str, TensorType]:
    """For a one-input block: the type of the value each instance reads from outside itself, by instance path."""
    out: dict[str, TensorType] = {}
    for path, inst in _instances(a, block).items():
        ids = {n.id for n in inst.nodes}
        outside = {r for n in inst.nodes for r in n.inputs if r.node not in ids}
        if len(outside) == 1:
            out[path] = inst.graph.type_of(outside.pop())
    return out


def _block_values(a: Analysis, block: str, word: str) -> dict[str, Node]:
    """The node that holds value `word` of `block` in each instance of the block, by instance path.

    Inside an instance `P`, the value's own node is `P/word`; a value bound to a block call is the last node of
    the instance `P/word/...` (intermediate pipeline stages are `P/word.op` and are skipped)."""
    out: dict[str, Node] = {}
    for path, inst in _instances(a, block).items():
        for n in inst.nodes:
            rest = n.name[len(inst.prefix) + 1 :] if n.name.startswith(inst.prefix + "/") else ""
            if rest == word or rest.startswith(word + "/"):
                out[path] = n  # nodes are in order: the last one wins
    return out


def _model_value(g: Graph, word: str) -> str:
    ref = g.value_map.get(word)
    if ref is not None:
        n = g.nodes[ref.node]
        kind = "input" if n.op == "input" else "parameter" if n.op == "param" else f"value ({n.op})"
        return _code(f"{word}: {g.type_of(ref)}") + f"\n\n{kind} of model `{g.model}`"
    owned = [n for n in g.nodes if n.instance == word]
    if owned:
        params = sum(n.param_count for n in owned)
        uses = len({n.scope[0].instance if n.scope else n.name for n in owned})
        return _code(word) + f"\n\nlayer instance of model `{g.model}`: params {params:,}, applied {uses}×"
    return ""


def _declaration(item: ast.ModelDef | ast.BlockDef, word: str) -> Any:
    """The statement (or block parameter) of `item` that binds `word`, or None."""
    if isinstance(item, ast.BlockDef):
        for p in item.params:
            if p.name == word:
                return p
    for s in item.body:
        if isinstance(s, ast.InputDecl | ast.ParamDecl | ast.Let) and s.name == word:
            return s
        if isinstance(s, ast.Assign) and word in s.targets:
            return s
    return None


def _train_hover(a: Analysis, word: str) -> str:
    for what, table in _train_tables():
        if word in table:
            sig = table[word]
            return _code(sig.usage()) + f"\n\n{what}: {sig.doc}".rstrip(": ")
    data = _datasets()
    if word in data:
        info = data[word]
        return _code(info.signature()) + f"\n\ndata set: {info.doc}"
    g = _default_graph(a)
    return _model_value(g, word) if g is not None else ""


def _default_graph(a: Analysis) -> Graph | None:
    if a.program is None or not a.program.models:
        return None
    return a.graphs.get(list(a.program.models)[-1])


def _train_tables() -> tuple[tuple[str, Any], ...]:
    """The train checker's own tables, each with what it holds: losses, metrics, optimizers, schedules."""
    from ..train.spec import train_tables

    return tuple(zip(("loss", "metric", "optimizer", "schedule"), train_tables(), strict=True))


def _datasets() -> Any:
    from ..train.data import DATASETS

    return DATASETS


# ---- definition ---------------------------------------------------------------------------------------------


def definition(a: Analysis, line: int, char: int, fallback: Program | None = None) -> Span | None:
    """Where the word at 0-based (line, char) is defined: a block (also in an imported file), a `let` constant,
    a model value or input, a block's own value, an objective. `fallback`: the last program that parsed, used
    while the document does not."""
    found = word_at(a.text, line, char)
    program = a.program or fallback
    if found is None or program is None:
        return None
    word, start = found
    L, C = line + 1, start + 1
    item = _enclosing(program, a.name, L, C)
    if isinstance(item, ast.ModelDef | ast.BlockDef):
        decl = _declaration(item, word)
        if decl is not None:
            return _name_span(a, decl.span, word)
    if isinstance(item, ast.TrainDef | ast.ObjectiveDef) and program.models:
        if word in program.objectives:
            return _name_span(a, program.objectives[word].span, word)
        decl = _declaration(list(program.models.values())[-1], word)
        if decl is not None:
            return _name_span(a, decl.span, word)
    for table in (program.blocks, program.lets, program.models):
        if word in table:
            return _name_span(a, table[word].span, word)
    return None


def _name_span(a: Analysis, span: Span, word: str) -> Span:
    """The span of `word` on the first line of a definition (the name, not the whole statement)."""
    src = (a.program.sources if a.program else {}).get(span.file)
    text = src.line(span.line) if src else (a.lines[span.line - 1] if span.file == a.name else "")
    for m in _WORD.finditer(text, max(0, span.col - 1)):
        if m.group() == word:
            return Span(span.file, span.line, m.start() + 1, span.line, m.end() + 1)
    return Span(span.file, span.line, span.col, span.line, span.col + len(word))


# ---- signature help ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureHelp:
    """The signature of the call the cursor is in: its label, each parameter's text in it, and the active one."""

    label: str
    params: tuple[str, ...]
    active: int | None
    doc: str = ""


def signature_help(
    a: Analysis, line: int, char: int, fallback: Program | None = None
) -> SignatureHelp | None:
    """The call whose parentheses enclose 0-based (line, char): an op (its piped tensor skipped in a pipeline
    stage), a block, or a train-section function; the active parameter by position or by `name=`."""
    call = _open_call(a.lines, line, char)
    if call is None:
        return None
    func, piped, args = call
    label, doc, tensors = _callable(a, func, a.program or fallback)
    if not label:
        return None
    params = tuple(p.strip() for p in label[label.index("(") + 1 : label.rindex(")")].split(",") if p.strip())
    typed = args[-1].split("=", 1)[0].strip() if "=" in args[-1] else None
    names = [p.split("=", 1)[0] for p in params]
    if typed is not None:
        active = names.index(typed) if typed in names else None
    else:
        positional = len(args) - 1 + (tensors if piped else 0)  # `x -> conv(32, 3)`: x fills the first tensor
        active = positional if positional < len(params) else None
    return SignatureHelp(label, params, active, doc)


def _open_call(lines: list[str], line: int, char: int) -> tuple[str, bool, list[str]] | None:
    """The innermost call left open before the cursor: its name, whether it is a pipeline stage (`-> f(`),
    and its arguments so far (the last one being typed)."""
    from ..frontend.fmt import code_chars

    depth = 0
    args = [""]
    for n in range(line, max(-1, line - 20), -1):  # a call spans a few lines at most
        src = lines[n][:char] if n == line else lines[n]
        code = dict(code_chars(src))
        end = next((i for i, ch in code.items() if ch == "#"), len(src))
        chars = [(i, ch) for i, ch in code.items() if i < end]
        for k in range(len(chars) - 1, -1, -1):
            i, ch = chars[k]
            if ch in ")]}":
                depth += 1
            elif ch in "([{":
                if depth:
                    depth -= 1
                    continue
                if ch != "(":
                    return None  # inside a list or a section, not a call
                m = re.search(r"([A-Za-z_]\w*)\s*$", src[:i])
                if m is None:
                    return None
                return m.group(1), src[: m.start()].rstrip().endswith("->"), args[::-1]
            elif ch == "," and not depth:
                args.append("")
            elif not depth and ch != '"':
                args[-1] = ch + args[-1]
    return None


def _callable(a: Analysis, func: str, program: Program | None) -> tuple[str, str, int]:
    """A callable's signature, description and number of leading tensor parameters; ("", "", 0) if unknown."""
    from ..ops._registry import all_ops
    from ..reference import signature

    op = all_ops().get(func)
    if op is not None:
        return signature(op), op.doc, op.tensor_range[0]
    blocks = _block_signatures(a, program)
    if func in blocks:
        return blocks[func].split("\n", 1)[0].removeprefix("block "), "", 0
    for _, table in _train_tables():
        if func in table:
            return table[func].usage(), table[func].doc, 0
    info = _datasets().get(func)
    if info is not None:
        return info.signature(), info.doc, 0
    return "", "", 0


# ---- outline ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symbol:
    """One entry of the document's outline: `kind` is model, block, constant, train, objective, input or value;
    `span` covers the whole definition, `name_span` the name."""

    name: str
    kind: str
    span: Span
    name_span: Span
    detail: str = ""
    children: tuple[Symbol, ...] = ()


def symbols(a: Analysis, fallback: Program | None = None) -> list[Symbol]:
    """The outline: models (with their inputs and values), blocks, constants, the train and objective sections."""
    program = a.program or fallback
    if program is None:
        return []
    out = []
    for item in program.module.items:
        if isinstance(item, ast.ModelDef | ast.BlockDef):
            g = a.graphs.get(item.name) if isinstance(item, ast.ModelDef) else None
            kids = tuple(_body_symbols(a, item.body, g))
            detail = block_signature(item).split("\n", 1)[0] if isinstance(item, ast.BlockDef) else ""
            if g is not None:
                detail = f"{g.total_params:,} params"
            kind = "model" if isinstance(item, ast.ModelDef) else "block"
            out.append(Symbol(item.name, kind, item.span, _name_span(a, item.span, item.name), detail, kids))
        elif isinstance(item, ast.Let):
            out.append(Symbol(item.name, "constant", item.span, _name_span(a, item.span, item.name)))
        elif isinstance(item, ast.TrainDef):
            out.append(Symbol("train", "train", item.span, _name_span(a, item.span, "train")))
        elif isinstance(item, ast.ObjectiveDef):
            out.append(Symbol(item.name, "objective", item.span, _name_span(a, item.span, item.name)))
    return out


def _body_symbols(a: Analysis, body: tuple[ast.Stmt, ...], g: Graph | None) -> Iterator[Symbol]:
    """The names a model or block body binds, with their types from `g` (a named layer instance has none)."""
    instances = {n.instance for n in g.nodes} if g else set()
    for st in body:
        if isinstance(st, ast.InputDecl | ast.ParamDecl):
            names: tuple[str, ...] = (st.name,)
        elif isinstance(st, ast.Assign):
            names = st.targets
        else:
            continue
        for name in names:
            ref = g.value_map.get(name) if g else None
            detail = str(g.type_of(ref)) if g and ref else "layer instance" if name in instances else ""
            kind = "input" if isinstance(st, ast.InputDecl) else "value"
            yield Symbol(name, kind, st.span, _name_span(a, st.span, name), detail)


# ---- completion ---------------------------------------------------------------------------------------------

_TOP_KEYWORDS = ("model", "block", "let", "import", "train", "objective")
_BODY_KEYWORDS = ("input", "output", "param", "default", "let", "true", "false")


def completions(a: Analysis, line: int, char: int, fallback: Program | None = None) -> list[Completion]:
    """Candidates at 0-based (line, char): keywords and ops with their signatures, the file's blocks and
    constants, the enclosing model's values; inside `train { }` its keys, losses, optimizers, data sets."""
    section = _section_at(a.text, line, char)
    program = a.program or fallback
    if section.kind == "top":
        return [Completion(k, "keyword") for k in _TOP_KEYWORDS]
    if section.kind in ("train", "objective"):
        return list(_train_completions(a, program, section.kind, "=" in section.before))
    return [*_bound_names(a, section, line), *_model_completions(a, program)]


_BINDING = re.compile(
    r"^\s*(?:(?:input|param)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=(?!=))"
)


def _bound_names(a: Analysis, section: _Section, line: int) -> Iterator[Completion]:
    """The values bound in the section above the cursor (read from the text), with their types where checked."""
    g = a.graphs.get(section.name) if section.kind == "model" else None
    seen: set[str] = set()
    for src in a.lines[section.start + 1 : line]:
        m = _BINDING.match(src)
        if not m:
            continue
        for name in (m.group(1) or m.group(2)).replace(" ", "").split(","):
            if name in seen:
                continue
            seen.add(name)
            ref = g.value_map.get(name) if g else None
            detail = str(g.type_of(ref)) if g and ref else f"value of {section.kind} {section.name}"
            yield Completion(name, "value", detail)


def _train_completions(
    a: Analysis, program: Program | None, section: str, after_eq: bool
) -> Iterator[Completion]:
    from ..train.spec import OBJECTIVE_KEYS, TRAIN_KEYS

    if not after_eq:
        for k in TRAIN_KEYS if section == "train" else OBJECTIVE_KEYS:
            yield Completion(k, "key", f"{section} key")
        return
    for what, table in _train_tables():
        for name, sig in table.items():
            yield Completion(name, "function", sig.usage(), f"{what}: {sig.doc}")
    for name, info in _datasets().items():
        yield Completion(name, "function", info.signature(), f"data set: {info.doc}")
    if program is not None and program.models:  # the values of the model the section trains
        model = list(program.models.values())[-1]
        for sym in _body_symbols(a, model.body, a.graphs.get(model.name)):
            yield Completion(sym.name, "value", sym.detail or f"value of {model.name}")
    yield from (Completion(k, "keyword") for k in ("true", "false"))


def _model_completions(a: Analysis, program: Program | None) -> Iterator[Completion]:
    from ..ir.types import DTYPES
    from ..ops._registry import all_ops
    from ..reference import signature

    for name, op in sorted(all_ops().items()):
        yield Completion(name, "op", signature(op), op.doc)
    yield Completion("repeat", "function", "repeat(count, Block(...))", "chain a block `count` times")
    for name, sig in _block_signatures(a, program).items():
        yield Completion(name, "block", sig.split("\n", 1)[0], _code(sig))
    lets: set[str] = set(program.lets) if program is not None else set()
    lets.update(re.findall(r"^\s*let\s+([A-Za-z_]\w*)", a.text, re.M))
    for name in sorted(lets):
        yield Completion(name, "constant", "let")
    for k in _BODY_KEYWORDS:
        yield Completion(k, "keyword")
    for d in DTYPES:
        yield Completion(d, "type", "dtype")


def _block_signatures(a: Analysis, program: Program | None) -> dict[str, str]:
    """Every block's signature by name: the program's (with imports), then those typed but not yet parsed."""
    blocks: dict[str, str] = {}
    if program is not None:
        blocks.update((n, block_signature(b)) for n, b in program.blocks.items())
    for m in re.finditer(r"^\s*block\s+([A-Za-z_]\w*)\s*(\([^)\n]*\))?", a.text, re.M):
        blocks.setdefault(m.group(1), f"block {m.group(1)}{m.group(2) or '()'}")
    return blocks
