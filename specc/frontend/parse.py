"""The .net front end: text → lark parse tree → AST (frozen dataclasses with spans), with readable syntax errors."""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import SpecError
from ..ir.types import DTYPES
from ..source import NO_SPAN, Source, Span
from . import ast

MAX_NESTING = 200  # brackets deeper than this are surely a mistake, and would exhaust Python's stack later
MAX_DEPTH = 200  # the same for operator chains (`x + x + ...`, `- - x`): the tree walks below recurse
MAX_BYTES = 1_000_000
# Every number ends up in an int64 or a float64 on the device (sizes, seeds, batch, epochs, rates); a literal
# outside that range is surely a slip, and Python would refuse to even read one of 4,300 digits.
MAX_INT = 2**63 - 1

_OPENERS = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
_CLOSERS = {"RPAR": "LPAR", "RSQB": "LSQB", "RBRACE": "LBRACE"}


def _grammar_text() -> str:
    # Installed, grammar/ ships as the package specc.grammar; in a source checkout it sits at the top.
    # (Plain paths rather than importlib.resources: that import alone costs 20 ms of `specc check`.)
    here = Path(__file__).resolve()
    for path in (here.parents[1] / "grammar" / "specc.lark", here.parents[2] / "grammar" / "specc.lark"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError("grammar/specc.lark is missing from the specc installation")


class _Opener:
    __slots__ = ("after", "outer", "token")

    def __init__(self, token: Token, after: Token | None, outer: Token | None = None):
        self.token = token
        self.after = after
        self.outer = outer  # the token before `after`: `block` in `block B(`


class _Layout:
    """Lexer post-processor: newlines inside ( ) and [ ] and before a `->` line are not statement ends.

    It also folds runs of separators into one, and remembers the open brackets so a syntax error can say
    which one was left unclosed.
    """

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.stack: list[_Opener] = []
        self.too_deep: Token | None = None
        self.before: Token | None = None  # the token before the one the parser is given

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.stack = []
        self.too_deep = None
        self.before = None
        pending: Token | None = None  # a newline we hold until we see what follows it
        prev: Token | None = None
        for tok in stream:
            if tok.type == "_NL":
                if self.stack and self.stack[-1].token.type != "LBRACE":
                    continue
                if pending is None:
                    pending = tok
                continue
            if pending is not None:
                if tok.type != "_ARROW":
                    yield pending
                pending = None
            if tok.type in _OPENERS:
                self.stack.append(_Opener(tok, prev, self.before))
                if len(self.stack) > MAX_NESTING:
                    self.too_deep = tok
                    raise _TooDeep(tok)
            self.before = prev
            prev = tok
            yield tok
            # pop only once the parser took the closer, so an error on it still sees its opener
            if tok.type in _CLOSERS and self.stack and self.stack[-1].token.type == _CLOSERS[tok.type]:
                self.stack.pop()
        if pending is not None:
            yield pending


class _TooDeep(Exception):
    def __init__(self, token: Token):
        self.token = token


_CACHE = Path(__file__).with_name("_grammar.cache")  # LALR tables built from grammar/specc.lark, committed


def _cache_key(grammar: str) -> bytes:
    import hashlib

    import lark

    return hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest().encode()


def _build(grammar: str) -> Lark:
    return Lark(
        grammar,
        parser="lalr",
        start=["start", "value_text"],
        lexer="basic",  # keywords are reserved; a held-back newline would confuse the contextual lexer
        postlex=_Layout(),
        propagate_positions=True,
        maybe_placeholders=True,
    )


@functools.cache
def _parser() -> tuple[Lark, _Layout]:
    # Building the LALR tables takes ~0.2 s, most of `specc check`'s budget; the committed cache loads in
    # a few ms. A stale cache (grammar edited, other lark version) is ignored, never rewritten at run time:
    # `python -m specc.frontend.parse` refreshes it and a test fails while it is stale.
    grammar = _grammar_text()
    lark: Lark | None = None
    try:
        with _CACHE.open("rb") as f:
            if f.readline().strip() == _cache_key(grammar):
                lark = Lark.load(f)
    except (OSError, EOFError, ValueError, AttributeError, ImportError):
        lark = None
    if lark is None:
        lark = _build(grammar)
    layout = lark.options.postlex
    assert isinstance(layout, _Layout)
    return lark, layout


def write_cache() -> Path:
    grammar = _grammar_text()
    with _CACHE.open("wb") as f:
        f.write(_cache_key(grammar) + b"\n")
        _build(grammar).save(f)
    return _CACHE


# ---- parse tree → AST ----------------------------------------------------------------------------


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line or 0, tok.column or 0, tok.end_line or tok.line or 0, tok.end_column or 0)


def _bin(op: str) -> Any:
    """A _ToAst rule building the binary operation `op`."""

    @v_args(meta=True)
    def rule(self: _ToAst, meta: Any, c: list[Any]) -> ast.BinOp:
        return ast.BinOp(op, c[0], c[1], self._span(meta))

    return rule


class _ToAst(Transformer[Any, Any]):
    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _t(self, tok: Token) -> Span:
        return _tok_span(self.file, tok)

    # top level
    @v_args(meta=True)
    def start(self, meta: Any, items: list[Any]) -> ast.Module:
        return ast.Module(tuple(i for i in items if i is not None), self.file)

    def value_text(self, c: list[Any]) -> ast.Expr:
        return _unpipe(c[0])  # type: ignore[no-any-return]

    @v_args(meta=True)
    def model(self, meta: Any, c: list[Any]) -> ast.ModelDef:
        return ast.ModelDef(str(c[0]), c[1], self._span(meta))

    @v_args(meta=True)
    def block(self, meta: Any, c: list[Any]) -> ast.BlockDef:
        return ast.BlockDef(str(c[0]), c[1] or (), c[2], self._span(meta), self._t(c[0]))

    def block_params(self, c: list[Any]) -> tuple[ast.BlockParam, ...]:
        return tuple(c)

    @v_args(meta=True)
    def block_param(self, meta: Any, c: list[Any]) -> ast.BlockParam:
        return ast.BlockParam(str(c[0]), c[1], self._span(meta))

    @v_args(meta=True)
    def let(self, meta: Any, c: list[Any]) -> ast.Let:
        return ast.Let(str(c[0]), _unpipe(c[1]), self._span(meta))

    @v_args(meta=True)
    def import_(self, meta: Any, c: list[Any]) -> ast.Import:
        return ast.Import(_unquote(c[0]), self._span(meta))

    @v_args(meta=True)
    def train(self, meta: Any, c: list[Any]) -> ast.TrainDef:
        return ast.TrainDef(c[0], self._span(meta))

    @v_args(meta=True)
    def objective(self, meta: Any, c: list[Any]) -> ast.ObjectiveDef:
        return ast.ObjectiveDef(str(c[0]), c[1], self._span(meta))

    def body(self, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    def entries(self, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    @v_args(meta=True)
    def entry(self, meta: Any, c: list[Any]) -> ast.Entry:
        return ast.Entry(str(c[0]), _unpipe(c[1]), c[2], self._span(meta), self._t(c[0]))

    @v_args(meta=True)
    def call_entry(self, meta: Any, c: list[Any]) -> ast.Entry:
        args, kwargs = c[1] or ((), ())
        span = self._span(meta)
        call = ast.Call(str(c[0]), args, kwargs, False, span, self._t(c[0]))
        return ast.Entry(str(c[0]), call, None, span, self._t(c[0]))

    def rename(self, c: list[Any]) -> tuple[tuple[str, str], ...]:
        return tuple(x for x in c if x is not None)

    def rename_item(self, c: list[Any]) -> tuple[str, str]:
        return (str(c[0]), str(c[1]))

    # statements
    @v_args(meta=True)
    def input(self, meta: Any, c: list[Any]) -> ast.InputDecl:
        draw = _unpipe(c[2]) if len(c) > 2 and c[2] is not None else None
        return ast.InputDecl(str(c[0]), c[1], self._span(meta), draw)

    @v_args(meta=True)
    def param(self, meta: Any, c: list[Any]) -> ast.ParamDecl:
        return ast.ParamDecl(str(c[0]), c[1], _unpipe(c[2]) if c[2] is not None else None, self._span(meta))

    @v_args(meta=True)
    def tensor_type(self, meta: Any, c: list[Any]) -> ast.TensorTypeExpr:
        dt = c[0]
        dspan = self._t(dt) if dt is not None else self._span(meta)
        return ast.TensorTypeExpr(str(dt) if dt is not None else None, c[1] or (), self._span(meta), dspan)

    @v_args(meta=True)
    def assign(self, meta: Any, c: list[Any]) -> ast.Assign:
        targets, pipe, source = c
        pipe, check = ast.split_trailing_assert(pipe)
        dims, aspan = (check.dims, check.span) if check is not None else (None, self._span(meta))
        run, rspan = source if source is not None else (None, NO_SPAN)
        return ast.Assign(targets, pipe, dims, self._span(meta), aspan, run, rspan)

    @v_args(meta=True)
    def from_run(self, meta: Any, c: list[Token]) -> tuple[str, Span]:
        return (_unquote(str(c[0])), self._t(c[0]))

    def targets(self, c: list[Token]) -> tuple[str, ...]:
        return tuple(str(t) for t in c)

    @v_args(meta=True)
    def shape_assert(self, meta: Any, c: list[Any]) -> ast.ShapeAssert:
        return ast.ShapeAssert(c[0] or (), self._span(meta))

    @v_args(meta=True)
    def output(self, meta: Any, c: list[Token]) -> ast.Output:
        return ast.Output(tuple(str(t) for t in c), self._span(meta), tuple(self._t(t) for t in c))

    @v_args(meta=True)
    def default(self, meta: Any, c: list[Any]) -> ast.Default:
        return ast.Default(str(c[0]), _unpipe(c[1]), self._span(meta))

    # pipelines and expressions
    @v_args(meta=True)
    def pipeline(self, meta: Any, c: list[Any]) -> ast.Pipeline:
        return ast.Pipeline(c[0], tuple(c[1:]), self._span(meta))

    @v_args(meta=True)
    def bare_stage(self, meta: Any, c: list[Token]) -> ast.Call:
        s = self._t(c[0])
        return ast.Call(str(c[0]), (), (), True, s, s)

    @v_args(meta=True)
    def call(self, meta: Any, c: list[Any]) -> ast.Call:
        args, kwargs = c[1] or ((), ())
        return ast.Call(str(c[0]), args, kwargs, False, self._span(meta), self._t(c[0]))

    def args(self, c: list[Any]) -> tuple[tuple[Any, ...], tuple[ast.Kwarg, ...]]:
        return (
            tuple(a for a in c if not isinstance(a, ast.Kwarg)),
            tuple(a for a in c if isinstance(a, ast.Kwarg)),
        )

    @v_args(meta=True)
    def kwarg(self, meta: Any, c: list[Any]) -> ast.Kwarg:
        return ast.Kwarg(str(c[0]), c[1], self._span(meta))

    def exprs(self, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")
    matmul = _bin("@")
    pow = _bin("**")

    @v_args(meta=True)
    def neg(self, meta: Any, c: list[Any]) -> Any:
        # fold literal negatives so `-1` is the number -1 (axis=-1, padding=-1 checks)
        if isinstance(c[0], ast.Num):
            t = c[0].text
            return ast.Num(
                -c[0].value, self._span(meta), (t[1:] if t.startswith("-") else "-" + t) if t else ""
            )
        return ast.Neg(c[0], self._span(meta))

    @v_args(meta=True)
    def index(self, meta: Any, c: list[Any]) -> ast.Index:
        return ast.Index(c[0], c[1], self._span(meta))

    def subscripts(self, c: list[Any]) -> tuple[Any, ...]:
        return tuple(c)

    @v_args(meta=True)
    def slice(self, meta: Any, c: list[Any]) -> ast.Slice:
        return ast.Slice(c[0], c[1], c[2], self._span(meta))

    @v_args(meta=True)
    def ellipsis(self, meta: Any, c: list[Any]) -> ast.EllipsisLit:
        return ast.EllipsisLit(self._span(meta))

    @v_args(meta=True)
    def name(self, meta: Any, c: list[Token]) -> ast.Name:
        return ast.Name(str(c[0]), self._t(c[0]))

    @v_args(meta=True)
    def number(self, meta: Any, c: list[Token]) -> ast.Num:
        span = self._t(c[0])
        return ast.Num(number_value(str(c[0]), span), span, str(c[0]))

    @v_args(meta=True)
    def string(self, meta: Any, c: list[Token]) -> ast.Str:
        return ast.Str(_unquote(c[0]), self._t(c[0]))

    @v_args(meta=True)
    def true(self, meta: Any, c: list[Any]) -> ast.Bool:
        return ast.Bool(True, self._span(meta))

    @v_args(meta=True)
    def false(self, meta: Any, c: list[Any]) -> ast.Bool:
        return ast.Bool(False, self._span(meta))

    @v_args(meta=True)
    def tuple(self, meta: Any, c: list[Any]) -> ast.TupleLit:
        return ast.TupleLit((c[0], *(c[1] or ())), self._span(meta))

    @v_args(meta=True)
    def list(self, meta: Any, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(c[0] or (), self._span(meta))


def number_value(text: str, span: Span) -> int | float:
    """A number literal's value (ASCII digits, as NUMBER lexes them); a located error outside int64/float64."""
    if text.isdigit():
        digits = text.lstrip("0")
        if len(digits) <= len(str(MAX_INT)) and int(digits or "0") <= MAX_INT:
            return int(digits or "0")
    else:
        value = float(text)
        if math.isfinite(value):
            return value
    raise number_range_error(text, span)


def in_number_range(v: object) -> bool:
    """Whether a computed number fits specc's int64/float64 (a complex one, from `(-8.0)**0.5`, does not)."""
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -MAX_INT - 1 <= v <= MAX_INT
    return isinstance(v, float) and math.isfinite(v)


def power(a: int | float, b: int | float) -> int | float | complex:
    """`a ** b`, refusing (OverflowError) before computing an integer that cannot fit: `2**10**10` would take
    minutes and gigabytes only to be refused afterwards. A float that overflows is inf (as `1e308 * 10` is),
    which `in_number_range` refuses; a negative base to a fractional power is complex."""
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > 64:
        raise OverflowError(f"the value of {a} ** {b} is out of range")
    try:
        return a**b  # type: ignore[no-any-return]
    except OverflowError:  # float ** float: (34, 'Numerical result out of range')
        return math.inf


def value_range_error(shown: str, span: Span, value: object = None) -> SpecError:
    """The error for arithmetic on numbers whose result `value` is no specc number: a complex one (`(-8) ** 0.5`),
    a float beyond float64 (`1e308 ** 10`), or (value None or an int) an integer beyond int64 (`2 ** 64`)."""
    if isinstance(value, complex):
        return SpecError.one(
            "value error",
            f"the value of {shown} is not a real number",
            span,
            "a negative number to a fractional power is complex, and specc's numbers are real; "
            "check the sign of the base",
        )
    if isinstance(value, float):
        return SpecError.one(
            "value error",
            f"the value of {shown} overflows the float range",
            span,
            "specc's numbers are finite 64-bit floats, at most about 1.8e308; check the exponent",
        )
    return number_range_error(shown, span, "the value of")


def number_range_error(text: str, span: Span, what: str = "the number") -> SpecError:
    """The error for a number outside int64/float64 (both front ends and the train checker word it alike)."""
    shown = text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"
    return SpecError.one(
        "value error",
        f"{what} {shown} is out of range",
        span,
        f"specc's integers lie between -2**63 and 2**63 - 1 ({MAX_INT}); other numbers must be finite 64-bit "
        "floats (below about 1.8e308)",
    )


def _unquote(tok: Token | str) -> str:
    s = str(tok)[1:-1]
    return s.replace('\\"', '"').replace("\\\\", "\\").replace("\\n", "\n")


def _unpipe(p: Any) -> Any:
    """A pipeline with no stages is just its expression (keeps let/kwarg values simple)."""
    return p.head if isinstance(p, ast.Pipeline) and not p.stages else p


# ---- errors --------------------------------------------------------------------------------------

_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "_NL": "the end of the statement",
    "$END": "the end of the file",
    "_ARROW": "'->'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "AT": "'@'",
}
_OPS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "__ANON_0", "_ARROW", "LSQB", "LPAR"}
_DTYPE_WORDS = frozenset(DTYPES)
# characters that word processors and slides substitute for specc's ASCII punctuation
_LOOKALIKES = {
    "'": "strings use double quotes",
    "\u2192": "write the pipeline arrow as '->'",
    "\u00d7": "write multiplication as '*'",
    "\u2212": "write minus as '-'",
    "\u201c": 'strings use plain double quotes "..."',
    "\u201d": 'strings use plain double quotes "..."',
    "\u2018": 'strings use plain double quotes "..."',
    "\u2019": 'strings use plain double quotes "..."',
}
# letters of other scripts that look like ASCII ones (a name typed on a Greek or Russian keyboard, or pasted)
_HOMOGLYPHS = dict(
    zip(
        "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιντυκАВЕКМНОРСТХУаеорсухіјѕԁһ",
        "ABEZHIKMNOPTYXaoivtukABEKMHOPCTXYaeopcyxijsdh",
        strict=True,
    )
)
_SECTION = re.compile(r"\b(model|block|objective)\s+([A-Za-z_]\w*)|\b(train)\b")


def _word(term: str, lark: Lark) -> str:
    if term in _WORDS:
        return _WORDS[term]
    try:
        pat = lark.get_terminal(term).pattern
        return f"'{pat.value}'" if pat.type == "str" else term.lower()
    except KeyError:
        return term.lower()


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "_NL":
        return "the end of the line" if str(tok) != ";" else "';'"
    if tok.type == "NAME":
        return f"the name '{tok}'"
    if tok.type == "NUMBER":
        return f"the number {tok}"
    if str(tok).isidentifier():
        return f"the keyword '{tok}'"
    return f"'{tok}'"


_TOP_LEVEL = {
    "MODEL": "a model",
    "BLOCK": "a block",
    "TRAIN": "the train section",
    "OBJECTIVE": "an objective",
    "IMPORT": "an import",
}


def _describe_opener(op: _Opener) -> str:
    tok, after = op.token, op.after
    if tok.type == "LPAR" and after is not None and after.type == "NAME":
        if op.outer is not None and str(op.outer) == "block":
            return f"the parameters of block {after}"
        return f"the call to {after}"
    if tok.type == "LSQB" and after is not None and (after.type == "COLON" or str(after) in _DTYPE_WORDS):
        return "the shape"
    if tok.type == "LSQB" and after is not None and after.type in ("NAME", "RPAR", "RSQB"):
        return "the subscript"
    return {"LPAR": "the parenthesis", "LSQB": "the list", "LBRACE": "the block"}[tok.type]


KEYWORDS = (  # the grammar's reserved words (also highlighted by specc/pygments_lexer.py)
    "model",
    "block",
    "let",
    "import",
    "train",
    "objective",
    "input",
    "output",
    "param",
    "default",
    "as",
    "from",
    "true",
    "false",
)


def _ascii_letter(c: str) -> str:
    """The ASCII letter that `c` looks like or is an accented form of ('Μ' Greek Mu → 'M', 'ĥ' → 'h'), else c."""
    if c in _HOMOGLYPHS:
        return _HOMOGLYPHS[c]
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return plain if len(plain) == 1 else c


def _syntax_error(e: UnexpectedInput, src: Source, lark: Lark, layout: _Layout) -> SpecError:
    file = src.name
    if isinstance(e, UnexpectedCharacters):
        # lark declares pos_in_stream as None on the base class; UnexpectedCharacters always sets it
        pos = cast(int, e.pos_in_stream)
        ch = src.text[pos] if pos < len(src.text) else "?"
        span = Span.point(file, e.line, e.column)
        if ch == '"':
            width = len(src.line(e.line)) - e.column + 1
            return SpecError.one(
                "syntax error",
                "unterminated string: no closing '\"' on this line",
                Span.point(file, e.line, e.column, width),
                'a string ends on the line it starts: "like this"',
            )
        hint = _LOOKALIKES.get(ch, "remove it, or put it in a comment with '#'")
        if ch.isdecimal():  # a digit of another script (１０, ١٠) that Python would happily read as 10
            run = re.match(r"\d+", src.text[pos:])
            ascii_digits = "".join(str(unicodedata.decimal(d, 0)) for d in (run.group() if run else ch))
            hint = f"write numbers with the ASCII digits 0-9: {ascii_digits}"
        elif ch.isdigit():  # a superscript: `10⁹`
            base = re.search(r"[0-9A-Za-z_.]*$", src.text[:pos])
            hint = f"write a power with '**': {base.group() if base else ''}**{unicodedata.digit(ch, 0)}"
        elif ch.isalpha() and ch not in _LOOKALIKES:  # `Μodel` with a Greek Mu, `ĥ`: names are ASCII
            word = re.match(r"\w+", src.text[pos:])
            start = re.search(r"\w*$", src.text[:pos])
            whole = (start.group() if start else "") + (word.group() if word else ch)
            spelled = "".join(_ascii_letter(c) for c in whole)
            hint = "names are ASCII letters, digits and '_'" + (
                f": write {spelled}" if spelled.isascii() and spelled != whole else ""
            )
        shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
        if ch.isalpha() and not ch.isascii():
            shown += f" (U+{ord(ch):04X} {unicodedata.name(ch, 'a letter').lower()})"
        return SpecError.one("syntax error", f"unexpected character {shown}", span, hint)
    tok: Token | None = e.token if isinstance(e, UnexpectedToken | UnexpectedEOF) else None
    if tok is None or tok.type == "$END" or tok.line is None or tok.column is None:
        last = len(src.lines)
        col = len(src.line(last)) + 1
        tok = Token("$END", "", line=last, column=col, end_line=last, end_column=col + 1)
    # lark types a token's position as optional; every token here has one (the stand-in above included)
    tline, tcol = cast(int, tok.line), cast(int, tok.column)
    expected = sorted(getattr(e, "expected", set()) or set())
    span = _tok_span(file, tok) if tok.type != "$END" else Span.point(file, tline, tcol)
    if tok.type == "_NL" and str(tok) != ";":
        # point just past the last character of the line rather than at the invisible newline
        span = Span.point(file, tline, tcol)
    if tok.type in ("NAME", "NUMBER"):
        malformed = _malformed_number(src, tline, tcol)
        if malformed is not None:
            return malformed

    # `input = x`: a keyword used as a value's name
    kw = layout.before
    if (
        tok.type in ("EQUAL", "COMMA", "_ARROW")
        and kw is not None
        and kw.type != "NAME"
        and str(kw).isidentifier()
    ):
        return SpecError.one(
            "syntax error",
            f"'{kw}' is a keyword and cannot name a value",
            _tok_span(file, kw),
            f"pick another name, e.g. `{kw}_` or `x_{kw}`; keywords: {', '.join(KEYWORDS)}",
        )
    # An opener left open when the line (or the file, or the block) ends is the most common slip.
    stack = [o for o in layout.stack if o.token.type != "LBRACE"]
    if stack:
        op = stack[-1]
        closer = _OPENERS[op.token.type]
        misplaced = _pipeline_in_brackets(src, tok, op) if tok.type == "_ARROW" else None
        if misplaced is not None:
            return misplaced
        closes_elsewhere = tok.type in ("RBRACE", "$END") or tline > (op.token.line or 0)
        closer_expected = f"'{closer}'" in {_word(x, lark) for x in expected}
        # '->', ':' and '{' cannot stand inside brackets: the bracket before them was left open
        if closes_elsewhere or (closer_expected and tok.type in {*_CLOSERS, "_ARROW", "COLON", "LBRACE"}):
            where = f"{op.token.line}:{op.token.column}"
            same_line = tok.type != "$END" and tline == op.token.line
            return SpecError.one(
                "syntax error",
                f"missing '{closer}' to close {_describe_opener(op)} opened at {where}",
                _tok_span(file, op.token),
                f"add '{closer}' before {_found(tok)}"
                if same_line
                else f"add '{closer}' at the end of line {_last_code_line(src, tok, op.token.line or 1)}",
            )
    # A '}' left out shows up at the end of the file, or at the next top-level section.
    braces = [o for o in layout.stack if o.token.type == "LBRACE"]
    at_line_start = tok.type == "$END" or not src.line(tline)[: tcol - 1].strip()
    if braces and at_line_start and tok.type in ("$END", "MODEL", "BLOCK", "TRAIN", "OBJECTIVE", "IMPORT"):
        op = braces[-1]
        head = src.line(op.token.line or 1)[: (op.token.column or 1) - 1]
        m = [*_SECTION.finditer(head)]
        what = (
            (f"{m[-1].group(1)} {m[-1].group(2)}" if m[-1].group(1) else "the train section")
            if m
            else "the block"
        )
        opener_line = src.line(op.token.line or 1)
        if tok.type != "$END" and tcol - 1 > len(opener_line) - len(opener_line.lstrip()):
            # indented under the body, the item was written inside it on purpose: a '}' added before it would
            # leave one '}' too many
            return SpecError.one(
                "syntax error",
                f"{_TOP_LEVEL[tok.type]} cannot stand inside {what}; it belongs at the top level of the file",
                span,
                f"move it out of {what}: above line {op.token.line}, or after the '}}' that closes it",
            )
        return SpecError.one(
            "syntax error",
            f"missing '}}' to close {what} opened at {op.token.line}:{op.token.column}",
            _tok_span(file, op.token),
            f"add '}}' at the end of line {_last_code_line(src, tok, op.token.line or 1)}",
        )
    if tok.type in _CLOSERS and not any(o.token.type == _CLOSERS[tok.type] for o in layout.stack):
        return SpecError.one(
            "syntax error",
            f"unmatched '{tok}'",
            span,
            f"remove it, or add the '{ {'RPAR': '(', 'RSQB': '[', 'RBRACE': '{'}[tok.type] }' it closes",
        )

    before = src.line(tline)[: tcol - 1] if tok.type != "$END" else ""
    code_before = before.split("#")[0].rstrip()
    if tok.type == "_NL" and code_before.endswith("->"):
        return SpecError.one(
            "syntax error",
            f"'->' must be followed by a stage (an op or block call), found {_found(tok)}",
            span,
            "finish the pipeline, e.g. `-> relu`, or remove the trailing '->'; "
            "to continue on the next line, start that line with '->'",
        )
    if tok.type == "_ARROW" and not code_before.strip():
        return SpecError.one(
            "syntax error",
            "this line starts with '->', but the statement above is not an open pipeline",
            span,
            "a line starting with '->' continues the pipeline of the statement above it "
            "(`h = x -> conv(8, 3) : [N, 26, 26, 8]`, then `-> relu`)",
        )
    if tok.type == "COLON" and not code_before.strip() and tline > 1:
        # a shape assertion on a line of its own, as a slide might set it under its stage: only `->` continues
        above = _code(src.line(_last_code_line(src, tok, 1))).strip()
        rest = _code(src.line(tline)).strip()
        return SpecError.one(
            "syntax error",
            "a shape assertion cannot start a line",
            span,
            f"end the line above with it: `{_one_line(above)} {_one_line(rest)}`; "
            "a line starting with '->' may follow",
        )
    if tok.type == "NAME" and str(tok) in _DTYPE_WORDS and code_before.endswith(":") and "LSQB" in expected:
        # `h = x -> dense(10) : f32[N, 10]`: written like an input's type
        rest = _code(src.line(tline))[tcol - 1 + len(tok) :]
        close = _closer_after(rest, 1, "]") if rest.startswith("[") else None
        dims = rest[: close + 1] if close is not None else "[N, 10]"
        return SpecError.one(
            "syntax error",
            f"a shape assertion gives the dimensions only, found the dtype '{tok}'",
            span,
            f"drop the dtype: `: {dims}`; an assertion checks the shape, not the dtype",
        )
    if (
        tok.type not in ("EQUAL", "_NL", "$END")
        and "EQUAL" in expected
        and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", before)
    ):
        target = before.strip()
        rest = src.line(tline)[tcol - 1 :].split("#")[0].strip()
        rest = rest if len(rest) <= 40 else rest[:37] + "..."
        return SpecError.one(
            "syntax error",
            f"expected '=' after '{target}', found {_found(tok)}",
            span,
            f"bind a value with `{target} = {rest}`",
        )
    # a value on its own (value_text) may end at the end of the text where a statement ends at a newline;
    # the LALR states they share expect both, but "the end of the statement" says it for both
    if "_NL" in expected:
        expected = [x for x in expected if x != "$END"]
    words = sorted({_word(x, lark) for x in expected if not x.startswith("__")} - {"'as'"})
    if len(words) > 6:
        words = [
            w
            for w in words
            if w in ("a name", "a number", "'='", "')'", "']'", "'}'", "the end of the statement")
        ] or words[:6]
    exp = " or ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " or " + words[-1]
    hint = _hint_for(tok, expected)
    return SpecError.one("syntax error", f"expected {exp}, found {_found(tok)}", span, hint)


# the text before a token that ends in a number touching it: `1` of `1e-`, `0` of `0x10`, `1.2` of `1.2.3`
_NUMBER_BEFORE = re.compile(r"(?<![\w.])(?:\d[\w.]*|\.\d[\w.]*)$")
# a number's text as the user meant it, run on past what the lexer took: `1e-`, `1e−3` (U+2212), `1__0`
_NUMBER_RUN = re.compile(r"[\w.]*(?:(?<=[eE])[+\-\u2212][\w.]*)?")
_DECIMAL = re.compile(r"([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


def _malformed_number(src: Source, line: int, col: int) -> SpecError | None:
    """The error for a name or number that touches the number before it (`1e-`, `1e`, `1__0`, `0x10`, `1e−3`):
    the lexer read a number and then a name, which the parser refuses; said of the number as written. None when
    no number touches the token."""
    text = src.line(line)
    before = _NUMBER_BEFORE.search(text[: col - 1])
    if before is None:
        return None
    start = before.start()
    run = _NUMBER_RUN.match(text, start)
    written = run.group() if run else text[start : col - 1]
    span = Span(src.name, line, start + 1, line, start + 1 + len(written))
    if "\u2212" in written:  # a word processor's minus: point at it, as at any other
        at = start + written.index("\u2212") + 1
        return SpecError.one(
            "syntax error",
            f"unexpected character '\u2212' in the number {written}",
            Span.point(src.name, line, at),
            f"{_LOOKALIKES[chr(0x2212)]}: {written.replace(chr(0x2212), '-')}",
        )
    if re.match(r"0[xXoObB]", written):
        try:
            hint = f"write {int(written, 0)}"
        except ValueError:
            hint = "write it with the decimal digits 0-9"
        return SpecError.one(
            "syntax error", f"malformed number '{written}': specc reads decimal numbers only", span, hint
        )
    if "_" in written and _DECIMAL.fullmatch(written.replace("_", "")):
        return SpecError.one(
            "syntax error",
            f"malformed number '{written}': a number cannot contain '_'",
            span,
            f"write {written.replace('_', '')}",
        )
    exponent = re.fullmatch(r"([0-9]+\.?[0-9]*|\.[0-9]+)[eE]([+-]?)", written)
    if exponent:
        mantissa, sign = exponent.groups()
        return SpecError.one(
            "syntax error",
            f"malformed number '{written}': the exponent after 'e' has no digits",
            span,
            f"write the power of ten after the 'e', e.g. {mantissa}e{sign or '-'}3, or drop the 'e': {mantissa}",
        )
    if written.count(".") > 1 and re.fullmatch(r"[0-9.]+", written):
        return SpecError.one(
            "syntax error",
            f"malformed number '{written}': a number has at most one '.'",
            span,
            f"write a decimal number like {written[: written.index('.', written.index('.') + 1)]}",
        )
    digits = _DECIMAL.match(written)
    if digits and written[digits.end() :][:1].isalpha():
        rest = written[digits.end() :]
        return SpecError.one(
            "syntax error",
            f"malformed number '{written}': a name cannot follow a number directly",
            span,
            f"names start with a letter or '_'; for a product write `{digits.group()} * {rest}`",
        )
    return None


# a string, a comment, or one character: a line's code read without seeing brackets in strings and comments
_CODE_PARTS = re.compile(r'"(?:\\.|[^"\\\n])*"|#.*|.', re.S)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _code(line: str) -> str:
    """A line without its comment."""
    return "".join(m.group() for m in _CODE_PARTS.finditer(line) if not m.group().startswith("#"))


def _closer_after(code: str, start: int, closer: str) -> int | None:
    """Where the bracket that `closer` closes, open before `start`, closes in `code`; None when the code ends first
    or another bracket's closer comes first."""
    want = [closer]
    for m in _CODE_PARTS.finditer(code, start):
        ch = m.group()
        if ch in _PAIRS:
            want.append(_PAIRS[ch])
        elif ch in _PAIRS.values():
            if ch != want.pop():
                return None
            if not want:
                return m.start()
    return None


def _depths(code: str, start: int, end: int) -> Iterator[tuple[int, str, int]]:
    """(offset, character, bracket depth before it) for each character of code[start:end] outside strings."""
    depth = 0
    for m in _CODE_PARTS.finditer(code, start, end):
        ch = m.group()
        yield m.start(), ch, depth
        depth += (ch in _PAIRS) - (ch in _PAIRS.values())


def _balanced(code: str) -> bool:
    """Every bracket in `code` (outside strings) closed, and none closed that was not opened in it."""
    depth = 0
    for m in _CODE_PARTS.finditer(code):
        depth += (m.group() in _PAIRS) - (m.group() in _PAIRS.values())
        if depth < 0:
            return False
    return depth == 0


def _one_line(code: str) -> str:
    return re.sub(r"([(\[]) | ([)\]])", r"\1\2", " ".join(code.split()))


def _pipeline_in_brackets(src: Source, tok: Token, op: _Opener) -> SpecError | None:
    """`y = x + (x -> relu)`: a '->' inside a bracket that its line closes. A pipeline is only ever a statement's
    whole value, so the bracket is not missing, the pipeline is misplaced. None for any other '->'."""
    first, tline, tcol = op.token.line or 1, tok.line or 1, tok.column or 1
    if op.token.type not in ("LPAR", "LSQB") or _describe_opener(op) == "the shape":
        return None
    # the code from the opener's line to the '->''s, comments dropped, as one text
    lines = [_code(src.line(n)) for n in range(first, tline + 1)]
    text = "\n".join(lines)
    arrow = len(text) - len(lines[-1]) + tcol - 1
    close = _closer_after(text, arrow, _OPENERS[op.token.type])
    if close is None:
        return None
    # the pipeline: the argument (or item) around the '->', between top-level commas, less a `name=` before it
    opener = (op.token.column or 1) - 1
    commas = [i for i, ch, depth in _depths(text, opener + 1, close) if ch == "," and depth == 0]
    start = max((i + 1 for i in commas if i < arrow), default=opener + 1)
    end = min((i for i in commas if i > arrow), default=close)
    keyword = re.match(r"\s*[A-Za-z_]\w*\s*=(?!=)", text[start:end])
    start += keyword.end() if keyword else 0
    start += len(text[start:end]) - len(text[start:end].lstrip())
    end -= len(text[start:end]) - len(text[start:end].rstrip())
    pipeline = _one_line(text[start:end])
    names = itertools.chain(["h"], (f"h{i}" for i in itertools.count(1)))
    name = next(n for n in names if not re.search(rf"\b{n}\b", src.text))
    bind = f"bind it to a name first: `{name} = {pipeline}`"
    if _describe_opener(op) == "the parenthesis" and not commas:  # `(x -> relu)`: its parentheses go too
        start, end = opener, close + 1
    # the statement with `name` in the pipeline's place, shown when it lies whole on the lines read (starting at the
    # opener's line, after any `;`, and closing every bracket it opens)
    stmt = text.rfind(";", 0, opener) + 1
    rewritten = text[stmt:start] + name + text[end:]
    if not re.match(r"\s*[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s*=(?!=)", rewritten) or not _balanced(rewritten):
        hint = f"{bind}, then use `{name}` in its place"
    elif re.fullmatch(rf"\s*([A-Za-z_]\w*)\s*=\s*{name}\s*", rewritten):  # `y = (x -> relu)`
        hint = f"drop the parentheses: `{rewritten.split('=')[0].strip()} = {pipeline}`"
    else:
        hint = f"{bind}, then `{_one_line(rewritten)}`"
    return SpecError.one(
        "syntax error", "a pipeline ('->') cannot stand inside an expression", _tok_span(src.name, tok), hint
    )


def _last_code_line(src: Source, tok: Token, first: int) -> int:
    """The last line before `tok` holding code (not blank, not only a comment): where a missing closer goes."""
    line = (tok.line or 1) if tok.type == "$END" else (tok.line or 1) - 1
    while line > first and not src.line(line).split("#")[0].strip():
        line -= 1
    return max(line, first)


def _hint_for(tok: Token, expected: list[str]) -> str:
    if str(tok).isidentifier() and tok.type != "NAME" and "NAME" in expected:
        return f"'{tok}' is a reserved word; choose another name"
    if tok.type == "EQUAL" and "EQUAL" not in expected:
        return "'=' binds a name at the start of a statement; compare shapes with ': [dims]'"
    if tok.type == "NAME" and "_NL" in expected:
        return "put each statement on its own line, or separate statements with ';'"
    if tok.type == "_ARROW":
        return "a pipeline stage follows a value: `h = x -> relu`"
    if tok.type == "_NL" and "NAME" in expected:
        return "the statement is incomplete; finish it on this line (or start the next line with '->')"
    if tok.type == "RBRACE":
        return "the statement before '}' is incomplete"
    if tok.type == "NUMBER" and "NAME" in expected:
        return "names start with a letter or '_'"
    return "see docs/language.md for the syntax"


# ---- entry point ---------------------------------------------------------------------------------


def decode(data: bytes, name: str) -> Source:
    """Bytes of a spec file → Source, with located errors for non-UTF-8 bytes, NULs and oversized files."""
    if len(data) > MAX_BYTES:
        raise SpecError.one(
            "file error",
            f"the file is {len(data) / 1e6:.1f} MB; specc reads spec files of at most {MAX_BYTES // 1_000_000} MB",
            Span.point(name, 1, 1),
            "a spec is a few hundred lines; generate repeated layers with `repeat(n, Block(...))`",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise SpecError.one(
            "file error",
            f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
            Span.point(name, line, col),
            "spec files are UTF-8 text; is this the right file?",
        ) from None
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        # shown as U+2400 (a visible NUL sign, one column as the NUL is) so the line and its caret print
        raise SpecError.one(
            "file error",
            "the file contains a NUL byte; it looks binary",
            Span.point(name, line, col),
            "spec files are UTF-8 text; is this the right file? (or remove the NUL, shown as \u2400)",
        ).with_sources({name: Source(name, text.replace("\x00", "\u2400"))})
    body = text.rstrip("\r\n")
    if (
        "\r" in body and "\n" not in body and not name.endswith((".yaml", ".yml"))
    ):  # YAML reads \r as a line end
        # classic Mac OS line ends: the file read as one line, and a first comment swallowed the rest of it
        # ("defines no model"), or statements ran together
        raise SpecError.one(
            "file error",
            "the file's lines end in a carriage return alone (\\r, classic Mac OS), which specc does not read "
            "as a line end",
            Span.point(name, 1, 1),
            "save it with \\n (or \\r\\n) line ends, e.g. tr '\\r' '\\n' < old.net > new.net",
        )
    return Source(name, text.lstrip("\ufeff"))


def parse_tree(src: Source, start: str = "start") -> Tree[Token]:
    lark, layout = _parser()
    try:
        tree = lark.parse(src.text, start=start)
        _check_depth(tree, src)
        return tree
    except _TooDeep as e:
        raise SpecError.one(
            "syntax error",
            f"brackets nested more than {MAX_NESTING} deep",
            _tok_span(src.name, e.token),
            "split the expression into named steps",
        ).with_sources({src.name: src}) from None
    except UnexpectedInput as e:
        raise _syntax_error(e, src, lark, layout).with_sources({src.name: src}) from None


_CHAIN_RULES = frozenset({"add", "sub", "mul", "div", "matmul", "pow"})


def _check_depth(tree: Tree[Token], src: Source) -> None:
    # (node, depth, its statement, how many binary operators in a row lead to it: `x + x + ... + x` nests only
    # because each '+' holds the ones before it)
    stack: list[tuple[Tree[Token], int, Tree[Token], int]] = [(tree, 1, tree, 0)]
    while stack:
        node, depth, stmt, chain = stack.pop()
        if depth > MAX_DEPTH:
            meta = stmt.meta  # point at the statement: the deepest node is only one of its many operands
            span = (
                Span.point(src.name, 1, 1)
                if getattr(meta, "empty", True)
                else Span(src.name, meta.line, meta.column, meta.end_line, meta.end_column)
            )
            flat = chain > MAX_DEPTH // 2
            # each operator of a chain is one level: count them all, as the user wrote them
            ops = sum(1 for t in stmt.iter_subtrees() if t.data in _CHAIN_RULES) if flat else 0
            raise SpecError.one(
                "syntax error",
                f"an expression of {ops:,} operators in a row; specc reads expressions at most {MAX_DEPTH} levels "
                "deep, each operator one level"
                if flat
                else f"an expression nested more than {MAX_DEPTH} levels deep",
                span,
                "split it into named steps of fewer terms: `a = x + x + ...`, then `b = a + ...`"
                if flat
                else "split it into named steps: `a = ...`, then `b = a + ...`",
            ).with_sources({src.name: src})
        for c in node.children:
            if isinstance(c, Tree):
                # an operand of a chain (the `x` of `... + x`) lies as deep as the chain: it counts the chain
                run = chain + 1 if c.data in _CHAIN_RULES else chain if node.data in _CHAIN_RULES else 0
                stack.append((c, depth + 1, c if depth < 4 or stmt is tree else stmt, run))


def parse_source(src: Source) -> ast.Module:
    """Parse one .net file to its AST; raises SpecError with a located, worded syntax error."""
    return _transform(parse_tree(src), src)  # type: ignore[no-any-return]


def _transform(tree: Tree[Token], src: Source) -> Any:
    try:
        return _ToAst(src.name).transform(tree)
    except VisitError as e:  # lark wraps what a rule raises; a rule raises only located SpecErrors
        if isinstance(e.orig_exc, SpecError):
            raise e.orig_exc.with_sources({src.name: src}) from None
        raise


def parse_text(text: str, name: str = "<string>") -> ast.Module:
    return parse_source(Source(name, text))


def parse_expr(text: str, name: str = "<string>", line: int = 1, col: int = 1) -> ast.Expr:
    """Parse one expression or pipeline (YAML `expr:` layers, `--set` values); spans start at line:col.

    The text is parsed where it stood in its file (blank lines and spaces before it), so spans need no
    shifting. A SpecError carries no source: the caller attaches the file the text came from, so a message
    shows the user's line, not the padded one.
    """
    src = Source(name, "\n" * (line - 1) + " " * (col - 1) + text)
    try:
        return _transform(parse_tree(src, start="value_text"), src)  # type: ignore[no-any-return]
    except SpecError as e:
        raise SpecError(e.diagnostics) from None


if __name__ == "__main__":
    # import by package name so the pickled tables refer to specc.frontend.parse._Layout, not __main__
    import sys

    from specc.frontend import parse as _self

    if "--check-cache" in sys.argv:
        with _self._CACHE.open("rb") as f:
            fresh = f.readline().strip() == _self._cache_key(_self._grammar_text())
        print(
            "grammar cache is current"
            if fresh
            else "grammar cache is stale: run python -m specc.frontend.parse"
        )
        sys.exit(0 if fresh else 1)
    print(f"wrote {_self.write_cache()}")
