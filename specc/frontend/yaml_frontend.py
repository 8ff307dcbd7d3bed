"""The YAML front end: a YAML document → the same AST the .net parser builds, and the AST → YAML (`specc convert`).

The document is composed with PyYAML's safe composer only (nodes, never constructed objects), walked with
line/column kept, so every mistake is reported where it is. docs/yaml.md describes the schema.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import SpecError, did_you_mean, dym_suffix
from ..source import NO_SPAN, Source, Span
from . import ast
from .fmt import format_expr

MAX_NODES = 200_000  # aliases can make a small file expand enormously ("billion laughs")
MAX_DEPTH = 100  # a spec nests a few levels; PyYAML's composer (and the walks below) recurse per level

# ---- the composed document, with spans ----------------------------------------------------------------

_SAFE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}


@dataclass
class YScalar:
    value: str | int | float | bool | None
    span: Span
    text_at: tuple[int, int] = (0, 0)  # line, col where the characters of a string start (inside quotes)


@dataclass
class YSeq:
    items: list[YNode]
    span: Span


@dataclass
class YMap:
    items: list[tuple[YScalar, YNode]]
    span: Span
    keys: dict[str, YScalar] = field(default_factory=dict)

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if k.value == key:
                return v
        return None


YNode = YScalar | YSeq | YMap


def _fail(kind: str, message: str, span: Span, hint: str = "") -> SpecError:
    return SpecError.one(kind, message, span, hint)


def _mark_span(name: str, mark: yaml.Mark | None) -> Span:
    return Span.point(name, mark.line + 1, mark.column + 1) if mark is not None else Span.point(name, 1, 1)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses, where they start, what would only fail later and slowly.

    It tracks each node's expanded size (an alias counts the whole node it names) as the document is
    composed, so an alias bomb stops at the alias that crosses MAX_NODES without being expanded; it stops a
    recursive alias (`&a [*a]`, a cycle every walk would follow forever) and nesting deeper than MAX_DEPTH.
    """

    def __init__(self, src: Source):
        super().__init__(src.text)
        self.name = src.name
        self.sizes: dict[int, int] = {}  # id(node) → nodes it stands for once aliases are expanded
        self.open_anchors: set[str] = set()  # anchors of the nodes being composed: an alias to one is a cycle
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open_anchors:
                raise _fail(
                    "value error",
                    f"the alias *{event.anchor} refers to the node that contains it (a recursive alias)",
                    _mark_span(self.name, event.start_mark),
                    f"an alias repeats a finished node; move *{event.anchor} out of &{event.anchor}",
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(
                "value error",
                f"the document is nested more than {MAX_DEPTH} levels deep",
                _mark_span(self.name, event.start_mark),
                "a spec nests a few levels (models, a model, its layers, a layer); is this the right file?",
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.open_anchors.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self.open_anchors.discard(anchor)
        self.depth -= 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for kv in node.value for n in kv]
        size = 1 + sum(self.sizes[id(c)] for c in children)
        self.sizes[id(node)] = size
        if size > MAX_NODES:
            raise _fail(
                "value error",
                f"the document expands to more than {MAX_NODES:,} YAML nodes",
                _mark_span(self.name, node.start_mark),
                "anchors and aliases (&a, *a) are expanded where they are used; use fewer of them",
            )
        return node  # type: ignore[no-any-return]


class _Composer:
    """yaml nodes → YNodes: checks tags, duplicate keys and scalars; never constructs Python objects from tags.

    The nodes come from _BoundedLoader, so the walk (which expands aliases) visits at most MAX_NODES of them.
    """

    def __init__(self, src: Source):
        self.src = src
        self.loader = yaml.SafeLoader("")

    def span(self, node: yaml.Node) -> Span:
        s, e = node.start_mark, node.end_mark
        return Span(self.src.name, s.line + 1, s.column + 1, e.line + 1, e.column + 1)

    def walk(self, node: yaml.Node) -> YNode:
        span = self.span(node)
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        if node.tag not in _SAFE_TAGS:
            raise _fail(
                "value error",
                f"YAML tag '{tag}' is not allowed",
                span,
                "specc reads plain YAML: mappings, lists, strings, numbers, booleans and null",
            )
        kind = {"!!map": yaml.MappingNode, "!!seq": yaml.SequenceNode}.get(tag, yaml.ScalarNode)
        if not isinstance(node, kind):
            found = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "a scalar")
            raise _fail("value error", f"YAML tag '{tag}' does not fit {found}", span, "remove the tag")
        if isinstance(node, yaml.MappingNode):
            out = YMap([], span)
            for k, v in node.value:
                key = self.walk(k)
                if not isinstance(key, YScalar) or not isinstance(k, yaml.ScalarNode) or k.value == "":
                    raise _fail(
                        "type error",
                        "a mapping key must be a plain name",
                        key.span,
                        "write the name alone before the ':' (`x: ...`), not a list, a mapping or `? `",
                    )
                # keys are names: take the text, so `on:` or `1:` do not become a boolean or a number
                key = YScalar(k.value, key.span, key.text_at)
                if k.value in out.keys:
                    first = out.keys[k.value].span
                    raise _fail(
                        "value error",
                        f"duplicate key '{k.value}' (first at {first.line}:{first.col})",
                        key.span,
                        "a key appears once per mapping; remove or rename one of them",
                    )
                out.keys[k.value] = key
                out.items.append((key, self.walk(v)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return YSeq([self.walk(x) for x in node.value], span)
        assert isinstance(node, yaml.ScalarNode)
        return YScalar(self.scalar(node, tag, span), span, self._text_at(node))

    def scalar(self, node: yaml.ScalarNode, tag: str, span: Span) -> str | int | float | bool | None:
        from .parse import MAX_INT, number_range_error

        text = node.value
        # int() refuses 4,300 decimal digits; no int64 needs more than 66 characters (0b, 64 bits, a sign)
        if tag == "!!int" and len(text.replace("_", "")) > 66:
            raise number_range_error(text, span)
        try:
            value = self.loader.construct_object(node)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):  # `!!int y`, `!!bool abc`
            raise _fail(
                "value error",
                f"'{text}' is not a valid {tag}",
                span,
                "remove the tag, or give a value of its type (!!int 3, !!float 0.5, !!bool true)",
            ) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value  # type: ignore[no-any-return]
        if isinstance(value, int) and not -MAX_INT - 1 <= value <= MAX_INT:
            raise number_range_error(text, span)
        if isinstance(value, float) and not math.isfinite(value):
            raise number_range_error(text, span)
        return value

    def _text_at(self, node: yaml.ScalarNode) -> tuple[int, int]:
        """Where a string's characters stand in the file, so an expression's spans point into the YAML."""
        m = node.start_mark
        text = self.src.text
        skip = 1 if node.style in ('"', "'") else 0
        if text[m.index + skip : m.index + skip + len(node.value)] == node.value:
            return m.line + 1, m.column + 1 + skip
        return m.line + 1, m.column + 1


_INDENT_HINT = "check the indentation: keys of one mapping start in the same column"
_QUOTE_HINT = "quote a value that contains ': ', ' #', '{' or '[' (e.g. expr: \"x -> dense(10)\")"


def _yaml_problem(problem: str) -> tuple[str, str]:
    """PyYAML's parser wording → a sentence and a hint a spec author can act on."""
    if "found another document" in problem:
        return (
            "a second YAML document ('---'); a spec is one document",
            "merge the two into one mapping (each key once), or put the second in a file of its own and list it "
            "under `imports:`",
        )
    if problem.startswith("expected <block end>") or "expected <block mapping start>" in problem:
        return "this line's indentation does not fit the lines above it", _INDENT_HINT
    if problem.startswith("mapping values are not allowed"):
        return "a ':' where a value was expected (a key inside a plain value?)", _QUOTE_HINT
    if problem.startswith("found character '\\t'"):
        return "a tab; YAML indents with spaces only", "replace the tab with spaces"
    if "found duplicate anchor" in problem or "found undefined alias" in problem:
        return f"YAML: {problem}", "define an anchor (&name) once, before its aliases (*name)"
    return f"YAML: {problem}", _QUOTE_HINT if "flow" in problem else _INDENT_HINT


def compose(src: Source) -> YNode | None:
    try:
        loader = _BoundedLoader(src)  # reading the text checks its characters
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as e:  # not a MarkedYAMLError: it has an offset, not a line and column
        pos = min(e.position, len(src.text))
        line = src.text.count("\n", 0, pos) + 1
        col = pos - (src.text.rfind("\n", 0, pos) + 1) + 1
        raise _fail(
            "syntax error",
            f"YAML does not allow the character U+{e.character:04X}"
            if isinstance(e.character, int)
            else str(e),
            Span.point(src.name, line, col),
            "remove it; YAML text holds printable characters, tabs and line breaks only",
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = e.problem or e.context or "malformed YAML"
        message, hint = _yaml_problem(problem)
        closer = next((c for c in ("}", "]") if problem.startswith(f"expected ',' or '{c}'")), None)
        if (
            closer is not None and e.context_mark is not None
        ):  # an unclosed flow collection: point at its opener
            cm = e.context_mark
            message = (
                f"missing '{closer}' to close the {'mapping' if closer == '}' else 'list'} opened at "
                f"{cm.line + 1}:{cm.column + 1}"
            )
            hint = (
                f"add '{closer}' before {'the end of the file' if 'stream end' in problem else 'this point'}"
            )
        raise _fail("syntax error", message, Span.point(src.name, line, col), hint) from None
    except yaml.YAMLError as e:
        raise _fail("syntax error", f"YAML: {e}", Span.point(src.name, 1, 1), _INDENT_HINT) from None
    return None if node is None else _Composer(src).walk(node)


# ---- YNode → AST ----------------------------------------------------------------------------------------

_TOP_KEYS = ("imports", "let", "blocks", "models", "train", "objectives")
_BODY_KEYS = ("inputs", "params", "default", "let", "layers", "outputs")
_LAYER_KEYS = ("name", "op", "expr", "input", "repeat", "assert")
_STMT_ENTRY_KEYS = ("param", "let", "default", "output")
_TYPE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\[\s*\]\s*$")


def _check_keys(m: YMap, valid: tuple[str, ...] | list[str], where: str) -> None:
    for k, _ in m.items:
        if k.value not in valid:
            from ..ops._foreign import ARG_ADVICE, ARG_NAMES

            word = str(k.value)
            ours = next((t for t in ARG_NAMES.get(word, ()) if t in valid), "")
            dym = f"did you mean '{ours}'?" if ours else did_you_mean(word, valid)
            # a layer written from a PyTorch or Keras listing (`activation: relu`, `kernel_size: 3`), as in .net
            advice = f"{word} (PyTorch/Keras) is `{ours}` in specc" if ours else ARG_ADVICE.get(word, "")
            if advice and word == "activation":
                advice = "write the activation as a layer of its own after this one: `{op: relu}`"
            raise _fail(
                "name error",
                f"unknown key '{k.value}' in {where}" + (f"; {dym}" if dym else ""),
                k.span,
                (f"{advice}; " if advice else "") + "valid keys: " + ", ".join(valid),
            )


def _want(node: YNode, kind: type, what: str) -> Any:
    if not isinstance(node, kind):
        found = {YMap: "a mapping", YSeq: "a list"}.get(type(node)) or _describe_scalar(node)
        example = _EXAMPLES.get(what) or _EXAMPLES.get(what.split()[0], "")
        raise _fail(
            "type error",
            f"{what} must be {_KIND_WORDS[kind]}, got {found}",
            node.span,
            (f"write it like `{example}`; " if example else "") + "docs/yaml.md describes the schema",
        )
    return node


_KIND_WORDS = {YMap: "a mapping", YSeq: "a list", YScalar: "a single value"}
# what each part of a document looks like, for the hint of a part of the wrong kind (keyed by `_want`'s `what`,
# or its first word: `model MLP`)
_EXAMPLES = {
    "the models": 'models: {MLP: {inputs: {x: "f32[N, 64]"}, layers: [...], outputs: logits}}',
    "the blocks": "blocks: {Unit: {args: [c], inputs: [x], layers: [...], outputs: h}}",
    "the objectives": 'objectives: {G: {loss: "mse(fake, x)", optimizer: adam}}',
    "model": 'MLP: {inputs: {x: "f32[N, 64]"}, layers: [...], outputs: logits}',
    "block": "Unit: {args: [c], inputs: [x], layers: [...], outputs: h}",
    "objective": 'G: {loss: "mse(fake, x)", optimizer: adam}',
    "train": 'train: {data: digits, loss: "cross_entropy(logits, y)", optimizer: adam}',
    "let": "let: {width: 64}",
    "as": "data: {value: digits, as: {x: image}}",
    "args": "args: {c: null, stride: 1}",
    "inputs": 'inputs: {x: "f32[N, 64]", y: "i32[N]"}',
    "params": 'params: {w: "[2, 3]"}',
    "default": "default: {init: he_normal}",
    "layers": "layers: [{name: h, op: dense, features: 100}]",
    "a layer": "- {name: h, op: dense, features: 100}",
}


def _describe_scalar(node: YNode) -> str:
    v = node.value if isinstance(node, YScalar) else None
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {v}"
    return f"the string '{v}'"


def _name(node: YNode, what: str) -> str:
    if (
        not isinstance(node, YScalar)
        or not isinstance(node.value, str)
        or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node.value)  # .net's NAME: ASCII only
    ):
        raise _fail(
            "type error",
            f"{what} must be a name, got "
            + (
                _describe_scalar(node)
                if isinstance(node, YScalar)
                else _KIND_WORDS[type(node)].replace("a single", "a")
            ),
            node.span,
            "names start with an ASCII letter or '_' and hold ASCII letters, digits and '_', as in .net",
        )
    return node.value


def _names(node: YNode, what: str) -> list[tuple[str, Span]]:
    if isinstance(node, YSeq):
        return [(_name(x, what), x.span) for x in node.items]
    return [(_name(node, what), node.span)]


class _Reader:
    def __init__(self, src: Source, blocks: dict[str, YMap]):
        self.src = src
        self.blocks = blocks  # block name → its mapping (for the names of its parameters)

    # values

    def parse_text(self, node: YScalar, allow_pipeline: bool) -> ast.Expr:
        from .parse import parse_expr

        assert isinstance(node.value, str)
        line, col = node.text_at if node.text_at[0] else (1, 1)
        try:
            e = parse_expr(node.value, self.src.name, line, col)
        except SpecError as err:  # drop the scaffold text parse_expr parsed; show the YAML line instead
            diags = err.diagnostics
            v = node.value
            if v.count("(") != v.count(")") or v.count("[") != v.count("]"):
                # `[accuracy(logits, y)]` is, to YAML, the two strings "accuracy(logits" and "y)"
                d = diags[0]
                hint = (
                    "YAML splits a [list] or {mapping} at ', '; quote the expression: ['accuracy(logits, y)']"
                )
                diags = (type(d)(d.kind, d.message, d.span, hint), *diags[1:])
            raise SpecError(diags) from None
        if isinstance(e, ast.Pipeline) and not allow_pipeline:
            raise _fail(
                "type error",
                "a pipeline ('->') is not a value here",
                node.span,
                "write the pipeline as a layer and pass its name",
            )
        return e

    def value(self, node: YNode, allow_pipeline: bool = False) -> ast.Expr:
        if isinstance(node, YSeq):
            return ast.ListLit(tuple(self.value(x) for x in node.items), node.span)
        if isinstance(node, YMap):
            raise _fail(
                "type error",
                "a value must be a number, boolean, string or list, got a mapping",
                node.span,
                'write calls in .net syntax as a string: "normal(0.1)"',
            )
        v = node.value
        if isinstance(v, bool):
            return ast.Bool(v, node.span)
        if isinstance(v, int | float):
            return ast.Num(v, node.span)
        if v is None:
            raise _fail(
                "type error",
                "a value is missing here (null)",
                node.span,
                "give a number, a name or an expression",
            )
        return self.parse_text(node, allow_pipeline)

    def type_expr(self, node: YNode, what: str) -> ast.TensorTypeExpr:
        if not isinstance(node, YScalar) or not isinstance(node.value, str):
            param = what.startswith("param")
            example = "[2, 3]" if param else "f32[N, 64]"
            items = (
                [i.value for i in node.items if isinstance(i, YScalar)] if isinstance(node, YSeq) else None
            )
            if isinstance(node, YSeq) and items is not None and len(items) == len(node.items):
                # `x: [N, 64]`: YAML read a list; a type is one string, and an input's names its dtype
                dims = "[" + ", ".join(str(v) for v in items) + "]"
                example = dims if param else f"f32{dims}"
                why = "a type is one quoted string" + ("" if param else ", its dtype first (f32, i32, ...)")
            else:
                why = "a type is one quoted string"
            raise _fail(
                "type error",
                f'{what} must be a tensor type like "{example}"',
                node.span,
                f'{why}: "{example}"',
            )
        m = _TYPE_RE.match(node.value)
        if m:  # `f32[]` (a scalar) is a type but not an expression
            return ast.TensorTypeExpr(m.group(1), (), node.span, node.span)
        e = self.parse_text(node, allow_pipeline=False)
        if (
            isinstance(e, ast.Index)
            and isinstance(e.value, ast.Name)
            and not any(isinstance(i, ast.Slice | ast.EllipsisLit) for i in e.items)
        ):
            return ast.TensorTypeExpr(e.value.id, tuple(e.items), e.span, e.value.span)  # type: ignore[arg-type]
        if isinstance(e, ast.ListLit):
            return ast.TensorTypeExpr(None, e.items, e.span, e.span)
        raise _fail(
            "type error",
            f'{what} must be a tensor type like "f32[N, 64]" or "[2, 3]"',
            node.span,
            "a type is a dtype (f32, i32, ...) then its dimensions in brackets; a param's may leave the dtype out",
        )

    def dims(self, node: YNode) -> tuple[ast.Expr, ...]:
        e = self.value(node)
        if not isinstance(e, ast.ListLit):
            raise _fail(
                "type error",
                'assert must be a shape like "[N, 10]"',
                node.span,
                'give the dimensions in brackets, without a dtype: assert: "[N, 10]"',
            )
        return e.items

    # module

    def module(self, root: YNode | None) -> ast.Module:
        if root is None:
            return ast.Module((), self.src.name)
        if not isinstance(root, YMap):
            raise _fail(
                "type error",
                "a YAML spec is a mapping with keys " + ", ".join(_TOP_KEYS),
                root.span,
                "start the file with `models:`",
            )
        _check_keys(root, _TOP_KEYS, "the spec")
        from ..train.spec import OBJECTIVE_KEYS, TRAIN_KEYS  # names only; the train checker owns them

        items: list[ast.Item] = []
        for key, node in root.items:
            if key.value == "imports":
                for n in node.items if isinstance(node, YSeq) else [node]:
                    if not isinstance(n, YScalar) or not isinstance(n.value, str):
                        raise _fail(
                            "type error",
                            "an import is a file path like blocks.net",
                            n.span,
                            "imports: blocks.net, or a list: imports: [blocks.net, layers.yaml]",
                        )
                    items.append(ast.Import(n.value, n.span))
            elif key.value == "let":
                items.extend(self.lets(node))
            elif key.value in ("blocks", "models"):
                for name, body in self.named(node, key.value[:-1]):
                    items.append(self.definition(key.value[:-1], name, body))
            elif key.value == "train":
                items.append(ast.TrainDef(self.entries(node, "train", TRAIN_KEYS), key.span.to(node.span)))
            else:
                for name, body in self.named(node, "objective"):
                    items.append(
                        ast.ObjectiveDef(
                            str(name.value),
                            self.entries(body, f"objective {name.value}", OBJECTIVE_KEYS),
                            name.span.to(body.span),
                        )
                    )
        return ast.Module(tuple(items), self.src.name)

    def named(self, node: YNode, what: str) -> list[tuple[YScalar, YNode]]:
        m = _want(node, YMap, f"the {what}s")
        for k, _ in m.items:
            _name(k, f"a {what} name")
        return m.items

    def lets(self, node: YNode) -> list[ast.Let]:
        m = _want(node, YMap, "let")
        return [ast.Let(_name(k, "a constant's name"), self.value(v), k.span.to(v.span)) for k, v in m.items]

    def entries(self, node: YNode, where: str, keys: tuple[str, ...]) -> tuple[ast.Entry, ...]:
        if isinstance(node, YScalar) and node.value is None:
            return ()
        m = _want(node, YMap, where)
        out = []
        for k, v in m.items:
            key = _name(k, f"a {where} key")
            rename = None
            if isinstance(v, YMap):
                _check_keys(v, ("value", "as"), f"{where} key '{key}'")
                val, ren = v.get("value"), v.get("as")
                if val is None:
                    raise _fail(
                        "name error",
                        f"{where} key '{key}' needs a `value`",
                        v.span,
                        f'write it as {key}: {{value: "...", as: {{...}}}}, e.g. data: {{value: digits, as: {{x: image}}}}',
                    )
                if ren is not None:
                    rm = _want(ren, YMap, "as")
                    rename = tuple((_name(a, "a data field"), _name(b, "a model input")) for a, b in rm.items)
                v = val
            try:
                value = self.value(v, allow_pipeline=True)
            except SpecError:
                # `bogus: some text` would be reported as a syntax error in its value; the key is the slip
                if key not in keys:
                    raise _fail(
                        "name error",
                        f"unknown {where} key '{key}'" + dym_suffix(key, keys),
                        k.span,
                        f"{where} keys: {', '.join(keys)}",
                    ) from None
                raise
            out.append(ast.Entry(key, value, rename, k.span.to(v.span), k.span))
        return tuple(out)

    def definition(self, what: str, name: YScalar, node: YNode) -> ast.ModelDef | ast.BlockDef:
        m = _want(node, YMap, f"{what} {name.value}")
        keys = ("args", *_BODY_KEYS) if what == "block" else _BODY_KEYS
        _check_keys(m, keys, f"{what} {name.value}")
        params: list[ast.BlockParam] = []
        body: list[ast.Stmt] = []
        first_input = next(iter(_names_of(m.get("inputs"))), None)
        prev: list[str | None] = [first_input]  # the layer an `input`-less layer reads
        n_layer = [0]
        for key, v in m.items:
            k = key.value
            if k == "args":
                if isinstance(v, YSeq):
                    params += [ast.BlockParam(n, None, s) for n, s in _names(v, "a block argument")]
                else:
                    for pk, pv in _want(v, YMap, "args").items:
                        default = None if isinstance(pv, YScalar) and pv.value is None else self.value(pv)
                        params.append(
                            ast.BlockParam(_name(pk, "a block argument"), default, pk.span.to(pv.span))
                        )
            elif k == "inputs":
                if isinstance(v, YSeq) or (isinstance(v, YScalar) and v.value is not None):
                    body += [ast.InputDecl(n, None, s) for n, s in _names(v, "an input")]
                else:
                    for ik, iv in _want(v, YMap, "inputs").items:
                        body.append(self.input_decl(_name(ik, "an input"), ik.span, iv))
            elif k == "params":
                for pk, pv in _want(v, YMap, "params").items:
                    body.append(self.param(_name(pk, "a param"), pk.span, pv))
            elif k == "default":
                for dk, dv in _want(v, YMap, "default").items:
                    body.append(ast.Default(_name(dk, "a default"), self.value(dv), dk.span.to(dv.span)))
            elif k == "let":
                body.extend(self.lets(v))
            elif k == "outputs":
                names = _names(v, "an output")
                body.append(ast.Output(tuple(n for n, _ in names), v.span, tuple(s for _, s in names)))
            else:
                for entry in _want(v, YSeq, "layers").items:
                    body.append(self.layer_or_stmt(entry, prev, n_layer))
        if what == "block":
            return ast.BlockDef(
                str(name.value), tuple(params), tuple(body), name.span.to(node.span), name.span
            )
        return ast.ModelDef(str(name.value), tuple(body), name.span.to(node.span))

    def input_decl(self, name: str, key_span: Span, v: YNode) -> ast.InputDecl:
        """`x: "f32[N, 64]"`, or a drawn input `z: {type: "f32[N, 16]", draw: "normal()"}`."""
        if isinstance(v, YMap):
            _check_keys(v, ("type", "draw"), f"input {name}")
            t, draw = v.get("type"), v.get("draw")
            if t is None:
                raise _fail(
                    "name error",
                    f'input {name} needs a `type`, like type: "f32[N, 16]"',
                    v.span,
                    f'{name}: {{type: "f32[N, 16]", draw: "normal()"}}, or just {name}: "f32[N, 16]"',
                )
            return ast.InputDecl(
                name,
                self.type_expr(t, f"input {name}'s type"),
                key_span.to(v.span),
                self.value(draw) if draw is not None else None,
            )
        typ = (
            None if isinstance(v, YScalar) and v.value is None else self.type_expr(v, f"input {name}'s type")
        )
        return ast.InputDecl(name, typ, key_span.to(v.span))

    def param(self, name: str, key_span: Span, v: YNode) -> ast.ParamDecl:
        if isinstance(v, YMap):
            _check_keys(v, ("type", "init"), f"param {name}")
            t, init = v.get("type"), v.get("init")
            if t is None:
                raise _fail(
                    "name error",
                    f'param {name} needs a `type`, like type: "[2, 3]"',
                    v.span,
                    f'{name}: {{type: "[2, 3]", init: zeros}}, or just {name}: "[2, 3]"',
                )
            return ast.ParamDecl(
                name,
                self.type_expr(t, f"param {name}'s type"),
                self.value(init) if init is not None else None,
                key_span.to(v.span),
            )
        return ast.ParamDecl(name, self.type_expr(v, f"param {name}'s type"), None, key_span.to(v.span))

    def layer_or_stmt(self, node: YNode, prev: list[str | None], n_layer: list[int]) -> ast.Stmt:
        m = _want(node, YMap, "a layer")
        if m.get("op") is None and m.get("expr") is None:
            kind = next((k.value for k, _ in m.items if k.value in _STMT_ENTRY_KEYS), None)
            if kind is None:
                raise _fail(
                    "name error",
                    "a layer needs `op` (an op or block) or `expr` (an expression)",
                    m.span,
                    "e.g. {name: h, op: dense, features: 100}",
                )
            return self.stmt_entry(m, str(kind))
        n_layer[0] += 1
        st = self.layer(m, prev[0], n_layer[0])
        prev[0] = st.targets[0] if len(st.targets) == 1 else None
        return st

    def stmt_entry(self, m: YMap, kind: str) -> ast.Stmt:
        head = m.get(kind)
        assert head is not None
        if kind == "output":
            _check_keys(m, ("output",), "an output entry")
            names = _names(head, "an output")
            return ast.Output(tuple(n for n, _ in names), m.span, tuple(s for _, s in names))
        if kind == "param":
            _check_keys(m, ("param", "type", "init"), "a param entry")
            name = _name(head, "a param")
            rest = YMap([(k, v) for k, v in m.items if k.value != "param"], m.span)
            return self.param(name, head.span, rest)
        _check_keys(m, (kind, "value"), f"a {kind} entry")
        val = m.get("value")
        if val is None:
            raise _fail(
                "name error",
                f"a {kind} entry needs a `value`",
                m.span,
                f"e.g. {{{kind}: k, value: 3}}"
                if kind == "let"
                else f"e.g. {{{kind}: init, value: he_normal}}",
            )
        key = _name(head, f"a {kind} name")
        return (ast.Let if kind == "let" else ast.Default)(key, self.value(val), m.span)

    def callee_params(self, func: str) -> tuple[list[str], list[str], int | None] | None:
        """(parameter names, the required ones in order, most tensor inputs) of an op or a block of this file."""
        from ..ops._registry import REQUIRED, get_op

        op = get_op(func)
        if op is not None:
            names = [a.name for a in op.args]
            return names, [a.name for a in op.args if a.default is REQUIRED], op.tensor_range[1]
        block = self.blocks.get(func)
        if block is not None:
            args = block.get("args")
            params: list[tuple[str, bool]] = []
            if isinstance(args, YSeq):
                params = [(str(x.value), True) for x in args.items if isinstance(x, YScalar)]
            elif isinstance(args, YMap):
                params = [(str(k.value), isinstance(v, YScalar) and v.value is None) for k, v in args.items]
            n_in = len(_names_of(block.get("inputs")))
            return [p for p, _ in params], [p for p, req in params if req], n_in
        return None

    def layer(self, m: YMap, prev: str | None, index: int) -> ast.Assign:
        name_node = m.get("name")
        op_node, expr_node, input_node = m.get("op"), m.get("expr"), m.get("input")
        assert_node, repeat_node = m.get("assert"), m.get("repeat")
        if name_node is not None:
            targets = tuple(n for n, _ in _names(name_node, "a layer name"))
        else:
            targets = (f"{op_node.value}_{index}" if isinstance(op_node, YScalar) else f"layer_{index}",)
        dims = self.dims(assert_node) if assert_node is not None else None
        aspan = assert_node.span if assert_node is not None else m.span
        if expr_node is not None:
            _check_keys(m, ("name", "expr", "assert", "from"), "an `expr` layer")
            e = self.value(expr_node, allow_pipeline=True)
            pipe = e if isinstance(e, ast.Pipeline) else ast.Pipeline(e, (), e.span)
            if dims is None:  # `expr: x -> relu : [N, 8]` is `{expr: x -> relu, assert: [N, 8]}`, as in .net
                pipe, check = ast.split_trailing_assert(pipe)
                if check is not None:
                    dims, aspan = check.dims, check.span
            run_node = m.get(
                "from"
            )  # `T = Teacher() from "runs/T"`: {name: T, expr: Teacher(), from: runs/T}
            if run_node is None:
                return ast.Assign(targets, pipe, dims, m.span, aspan)
            if not isinstance(run_node, YScalar) or not isinstance(run_node.value, str):
                raise _fail(
                    "type error",
                    "`from` names a run folder, like from: runs/Teacher",
                    run_node.span,
                    "give the folder of an earlier `specc train` run as one string",
                )
            return ast.Assign(targets, pipe, dims, m.span, aspan, run_node.value, run_node.span)
        assert op_node is not None
        func = _name(op_node, "op")
        if func == "repeat":
            raise _fail(
                "name error",
                "write `repeat: n` beside `op: Block`, not `op: repeat`",
                op_node.span,
                "e.g. {name: c2, op: Unit, repeat: 2, c: 64}, which is c2 = c1 -> repeat(2, Unit(64))",
            )
        sig = self.callee_params(func)
        if sig is not None:
            _check_keys(m, [*_LAYER_KEYS, *sig[0]], f"layer '{targets[0]}' ({func})")
        # the leading run of required parameters given by name is positional, as in `conv(32, 3, stride=2)`
        args: list[ast.Expr] = []
        kwargs: list[ast.Kwarg] = []
        positional: set[str] = set()
        if sig is not None:
            for p in sig[1]:
                node = m.get(p)
                if node is None:
                    break
                args.append(self.value(node))
                positional.add(p)
        for k, v in m.items:
            if k.value in _LAYER_KEYS or k.value in positional:
                continue
            kwargs.append(ast.Kwarg(str(k.value), self.value(v), k.span.to(v.span)))
        span = m.span
        if isinstance(input_node, YSeq):  # call form: op(a, b, options...)
            if repeat_node is not None:
                raise _fail(
                    "argument error",
                    "repeat takes one input: give `input` a single name",
                    input_node.span,
                    "input: h, not input: [h] (a list is the call form, which repeat has not)",
                )
            ins = tuple(ast.Name(n, s) for n, s in _names(input_node, "an input"))
            call = ast.Call(func, (*ins, *args), tuple(kwargs), False, span, op_node.span)
            return ast.Assign(targets, ast.Pipeline(call, (), span), dims, span, aspan)
        if input_node is not None:
            head = ast.Name(_name(input_node, "input"), input_node.span)
        elif prev is not None:
            head = ast.Name(prev, op_node.span)
        else:
            raise _fail(
                "name error",
                f"layer '{targets[0]}' needs an `input`: there is no previous layer to read",
                m.span,
                "add `input: NAME`, or declare the model's inputs first",
            )
        if repeat_node is not None:
            inner = ast.Call(func, tuple(args), tuple(kwargs), False, span, op_node.span)
            stage = ast.Call("repeat", (self.value(repeat_node), inner), (), False, span, repeat_node.span)
        else:
            stage = ast.Call(func, tuple(args), tuple(kwargs), not args and not kwargs, span, op_node.span)
        return ast.Assign(targets, ast.Pipeline(head, (stage,), span), dims, span, aspan)


def _names_of(node: YNode | None) -> list[str]:
    if isinstance(node, YMap):
        return [str(k.value) for k, _ in node.items]
    if isinstance(node, YSeq):
        return [str(x.value) for x in node.items if isinstance(x, YScalar)]
    if isinstance(node, YScalar) and isinstance(node.value, str):
        return [node.value]
    return []


def _blocks_of(root: YNode | None) -> dict[str, YMap]:
    blocks = root.get("blocks") if isinstance(root, YMap) else None
    if not isinstance(blocks, YMap):
        return {}
    return {str(k.value): v for k, v in blocks.items if isinstance(v, YMap)}


def parse_yaml(src: Source) -> ast.Module:
    """Parse one YAML spec to its AST; raises SpecError with located messages."""
    try:
        root = compose(src)
        return _Reader(src, _blocks_of(root)).module(root)
    except SpecError as e:
        raise e.with_sources({src.name: src}) from None


# ---- AST → YAML -----------------------------------------------------------------------------------------


class _NotStructured(Exception):
    pass


def _out(e: ast.Expr) -> Any:
    """An expression as a YAML value: numbers, booleans and lists natively, anything else as .net text."""
    if isinstance(e, ast.Bool):
        return e.value
    if isinstance(e, ast.Num):
        # a spelling YAML does not read as this number (`1e-3`: PyYAML's floats need a dot and a signed
        # exponent) stays .net text, so fmt's spelling survives the trip; YAML reads the string back as .net
        return e.text if e.text and yaml.safe_load(e.text) != e.value else e.value
    if isinstance(e, ast.ListLit):
        return _FlowList(_out(x) for x in e.items)
    return format_expr(e)


def _ynode(v: Any) -> YNode:
    """A Python value as the composer would have produced it (for checking a conversion both ways)."""
    if isinstance(v, dict):
        return _ymap(v)
    if isinstance(v, list):
        return YSeq([_ynode(x) for x in v], NO_SPAN)
    return YScalar(v, NO_SPAN)


def _ymap(v: dict[str, Any]) -> YMap:
    m = YMap([], NO_SPAN)
    for k, x in v.items():
        key = YScalar(k, NO_SPAN)
        m.keys[k] = key
        m.items.append((key, _ynode(x)))
    return m


def _named_args(
    c: ast.Call, skip: int, sig: tuple[list[str], list[str], int | None] | None
) -> dict[str, Any]:
    d: dict[str, Any] = {}
    pos = c.args[skip:]
    if pos:
        if sig is None or len(pos) > len(sig[0]):
            raise _NotStructured
        for name, a in zip(sig[0], pos, strict=False):
            d[name] = _out(a)
    for k in c.kwargs:
        if k.name in _LAYER_KEYS or k.name in d:
            raise _NotStructured
        d[k.name] = _out(k.value)
    return d


class _Writer:
    def __init__(self, module: ast.Module):
        self.mod = module
        self.first: dict[
            tuple[int, str], Span
        ] = {}  # (id of a mapping being written, key) → where it was set
        blocks_doc = {b.name: self.signature(b) for b in module.items if isinstance(b, ast.BlockDef)}
        self.reader = _Reader(
            Source(module.file or "<yaml>", ""), {k: _ymap(v) for k, v in blocks_doc.items()}
        )

    @staticmethod
    def signature(b: ast.BlockDef) -> dict[str, Any]:
        inputs = [s.name for s in b.body if isinstance(s, ast.InputDecl)]
        return {"args": {p.name: None if p.default is None else 0 for p in b.params}, "inputs": inputs}

    def module(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        last: str | None = None
        for item in self.mod.items:
            key = {
                ast.Import: "imports",
                ast.Let: "let",
                ast.BlockDef: "blocks",
                ast.ModelDef: "models",
                ast.TrainDef: "train",
                ast.ObjectiveDef: "objectives",
            }[type(item)]
            if key in doc and key != last:
                raise _fail(
                    "value error",
                    f"cannot convert to YAML: the {key} are not together at the top level of the "
                    "file, and a YAML spec lists each kind of item once",
                    item.span,
                    "move the definitions of one kind next to each other, then convert",
                )
            if key == "train" and key in doc:
                raise _fail(
                    "value error",
                    "cannot convert to YAML: a second `train` section",
                    item.span,
                    "a spec has one train section; merge the two, or make the second an `objective`",
                )
            last = key
            if isinstance(item, ast.Import):
                doc.setdefault(key, _FlowList()).append(item.path)
            elif isinstance(item, ast.Let):
                self.put(doc.setdefault(key, {}), item.name, _out(item.value), item.span, "constant")
            elif isinstance(item, ast.BlockDef | ast.ModelDef):
                what = "model" if isinstance(item, ast.ModelDef) else "block"
                self.put(doc.setdefault(key, {}), item.name, self.definition(item), item.span, what)
            elif isinstance(item, ast.TrainDef):
                doc[key] = self.entries(item.entries)
            else:
                self.put(
                    doc.setdefault(key, {}), item.name, self.entries(item.entries), item.span, "objective"
                )
        return doc

    def put(self, section: dict[str, Any], name: str, value: Any, span: Span, what: str) -> None:
        """section[name] = value, refusing a second definition: a YAML mapping holds each key once."""
        first = self.first.setdefault((id(section), name), span)
        if name in section:
            raise _fail(
                "value error",
                f"cannot convert to YAML: {what} '{name}' is defined twice (first at {first.line}:{first.col})",
                span,
                "a YAML mapping holds each key once; remove or rename one of them, then convert",
            )
        section[name] = value

    def entries(self, entries: tuple[ast.Entry, ...]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for e in entries:
            if e.key in d:
                raise _fail(
                    "value error",
                    f"cannot convert to YAML: '{e.key}' is set twice",
                    e.span,
                    "a YAML mapping holds each key once; remove one of them",
                )
            v = _out(e.value)
            if e.rename is None:
                d[e.key] = v
                continue
            renames: dict[str, Any] = _Flow()
            for field_name, input_name in e.rename:
                self.put(renames, field_name, input_name, e.span, "renamed data field")
            d[e.key] = _Flow(value=v, **{"as": renames})
        return d

    def definition(self, item: ast.ModelDef | ast.BlockDef) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if isinstance(item, ast.BlockDef) and item.params:
            args: dict[str, Any] = _Flow()
            for p in item.params:
                self.put(
                    args, p.name, None if p.default is None else _out(p.default), p.span, "block argument"
                )
            d["args"] = args
        first_input = next((s.name for s in item.body if isinstance(s, ast.InputDecl)), None)
        prev: str | None = first_input
        layers: list[dict[str, Any]] | None = None
        section_of = {
            ast.InputDecl: "inputs",
            ast.ParamDecl: "params",
            ast.Default: "default",
            ast.Let: "let",
            ast.Assign: "layers",
            ast.Output: "outputs",
        }
        last: str | None = None
        body = item.body
        for i, s in enumerate(body):
            sec = section_of[type(s)]
            is_last_output = isinstance(s, ast.Output) and i == len(body) - 1 and "outputs" not in d
            if layers is not None and not is_last_output:
                # once layers began, later statements are entries of the layers list
                if isinstance(s, ast.InputDecl):
                    raise _fail(
                        "value error",
                        f"cannot convert to YAML: input {s.name} is declared after layers",
                        s.span,
                        "declare the inputs first, then convert",
                    )
                layers.append(self.layer(s, prev) if isinstance(s, ast.Assign) else self.stmt_entry(s))
                if isinstance(s, ast.Assign):
                    prev = s.targets[0] if len(s.targets) == 1 else None
                continue
            if sec in d and sec != last:
                if sec == "inputs":
                    raise _fail(
                        "value error",
                        f"cannot convert to YAML: input {s.name} is not declared with the others",  # type: ignore[union-attr]
                        s.span,
                        "declare the inputs together, then convert",
                    )
                layers = d.setdefault("layers", [])  # fall back to the layers list from here on
                layers.append(self.stmt_entry(s))
                continue
            last = sec
            if isinstance(s, ast.InputDecl):
                t_in: Any = None if s.type is None else _type(s.type)
                if s.draw is not None:
                    t_in = _Flow(type=t_in, draw=_out(s.draw))
                self.put(d.setdefault(sec, _Flow()), s.name, t_in, s.span, "input")
            elif isinstance(s, ast.ParamDecl):
                t = _type(s.type) if s.init is None else _Flow(type=_type(s.type), init=_out(s.init))
                self.put(d.setdefault(sec, {}), s.name, t, s.span, "param")
            elif isinstance(s, ast.Default | ast.Let):
                name, what = (s.name, "constant") if isinstance(s, ast.Let) else (s.key, "default")
                self.put(d.setdefault(sec, {}), name, _out(s.value), s.span, what)
            elif isinstance(s, ast.Output):
                if sec in d:
                    layers = d.setdefault("layers", [])
                    layers.append(self.stmt_entry(s))
                else:
                    d[sec] = _FlowList(s.names)
            else:
                layers = d.setdefault("layers", [])
                layers.append(self.layer(s, prev))
                prev = s.targets[0] if len(s.targets) == 1 else None
        if "inputs" in d and all(v is None for v in d["inputs"].values()):
            d["inputs"] = _FlowList(d["inputs"])
        return d

    def stmt_entry(self, s: ast.Stmt) -> dict[str, Any]:
        if isinstance(s, ast.ParamDecl):
            d: dict[str, Any] = _Flow(param=s.name, type=_type(s.type))
            if s.init is not None:
                d["init"] = _out(s.init)
            return d
        if isinstance(s, ast.Let):
            return _Flow(let=s.name, value=_out(s.value))
        if isinstance(s, ast.Default):
            return _Flow(default=s.key, value=_out(s.value))
        if isinstance(s, ast.Output):
            return _Flow(output=_FlowList(s.names))
        raise AssertionError(s)

    def layer(self, s: ast.Assign, prev: str | None) -> dict[str, Any]:
        if s.run is not None:
            return _Flow(name=_target(s.targets), expr=format_expr(s.value), **{"from": s.run})
        try:
            d = self.structured(s, prev)
            back = self.reader.layer(_ynode(d), prev, 0)  # type: ignore[arg-type]
            if back == s:
                return _Flow(d)
        except (_NotStructured, SpecError):
            pass
        d = _Flow(name=_target(s.targets), expr=format_expr(s.value))
        if s.assert_dims is not None:
            d["assert"] = format_expr(ast.ListLit(s.assert_dims))
        return d

    def structured(self, s: ast.Assign, prev: str | None) -> dict[str, Any]:
        v = s.value
        d: dict[str, Any] = {"name": _target(s.targets)}
        if len(v.stages) == 1 and isinstance(v.head, ast.Name) and isinstance(v.stages[0], ast.Call):
            c = v.stages[0]
            if c.func == "repeat":
                if len(c.args) != 2 or c.kwargs or not isinstance(c.args[1], ast.Call):
                    raise _NotStructured
                inner = c.args[1]
                d["op"] = inner.func
                if v.head.id != prev:
                    d["input"] = v.head.id
                d["repeat"] = _out(c.args[0])
                d.update(_named_args(inner, 0, self.reader.callee_params(inner.func)))
            else:
                d["op"] = c.func
                if v.head.id != prev:
                    d["input"] = v.head.id
                d.update(_named_args(c, 0, self.reader.callee_params(c.func)))
        elif not v.stages and isinstance(v.head, ast.Call) and v.head.func != "repeat":
            c = v.head
            sig = self.reader.callee_params(c.func)
            most = sig[2] if sig is not None else None
            n = 0
            while n < len(c.args) and isinstance(c.args[n], ast.Name) and (most is None or n < most):
                n += 1
            d["op"] = c.func
            d["input"] = _FlowList(a.id for a in c.args[:n])  # type: ignore[union-attr]
            d.update(_named_args(c, n, sig))
        else:
            raise _NotStructured
        if s.assert_dims is not None:
            d["assert"] = format_expr(ast.ListLit(s.assert_dims))
        return d


def _target(targets: tuple[str, ...]) -> str | list[str]:
    return targets[0] if len(targets) == 1 else _FlowList(targets)


def _type(t: ast.TensorTypeExpr) -> str:
    return f"{t.dtype or ''}[{', '.join(format_expr(d) for d in t.dims)}]"


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written on one line: a layer, a model's inputs, a block's args."""


class _FlowList(list):  # type: ignore[type-arg]
    """A list written on one line: outputs, a layer's inputs, list values."""


class _Dumper(yaml.SafeDumper):
    """Block style for the outline, flow style for layers and other small leaves; list items indented."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, v: str) -> yaml.ScalarNode:
    # PyYAML writes NEL and U+2028/9 raw inside plain and single-quoted scalars, where reading folds them
    # into a space; double quotes escape them (\N, \L, \P)
    style = '"' if any(c in v for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", v, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True)
)
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def to_yaml(module: ast.Module) -> str:
    """The module as a YAML spec; parse_yaml(to_yaml(m)) == m. Raises SpecError for the few layouts YAML cannot hold."""
    doc = _Writer(module).module()
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=10**6
    )
