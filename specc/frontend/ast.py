"""The abstract syntax tree: frozen dataclasses, each carrying the Span it was parsed from.

Both front ends (.net via lark, YAML) produce this tree; everything after the front end reads only it.
Spans never take part in equality, so two trees parsed from different files compare by meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..source import NO_SPAN, Span

# ---- expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # as written (`1e-3`), for fmt; "" when made


@dataclass(frozen=True)
class Str:
    value: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Name:
    id: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """`f(a, b, k=v)`; `bare` marks a pipeline stage written without parentheses (`-> relu`)."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Kwarg, ...] = ()
    bare: bool = False
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    func_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / @ **
    left: Expr
    right: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Slice:
    lo: Expr | None
    hi: Expr | None
    step: Expr | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class EllipsisLit:
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Index:
    value: Expr
    items: tuple[Expr | Slice | EllipsisLit, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class TupleLit:
    items: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class ShapeAssert:
    """`: [N, 16, 16, 64]` after a pipeline's head or a stage: the value there must have this shape.

    The span is the bracketed dims'; a statement's last assertion is kept on its Assign instead (`assert_dims`).
    """

    dims: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Pipeline:
    """`head -> stage : [dims] -> stage`; a plain expression is a pipeline with no stages."""

    head: Expr
    stages: tuple[Call | ShapeAssert, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def calls(self) -> tuple[Call, ...]:
        """The stages that compute, without the shape assertions between them."""
        return tuple(st for st in self.stages if isinstance(st, Call))


def split_trailing_assert(p: Pipeline) -> tuple[Pipeline, ShapeAssert | None]:
    """`x -> relu : [N, 8]` → (`x -> relu`, `: [N, 8]`): a statement's last assertion belongs to the statement, so
    both front ends give `h = x -> relu : [N, 8]` the same Assign however it was written."""
    if not p.stages or not isinstance(p.stages[-1], ShapeAssert):
        return p, None
    rest = p.stages[:-1]
    last = (rest[-1] if rest else p.head).span
    return Pipeline(p.head, rest, p.span.to(last) if p.span.line else p.span), p.stages[-1]


Expr = Num | Str | Bool | Name | Call | BinOp | Neg | Index | ListLit | TupleLit | Pipeline

# ---- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorTypeExpr:
    """`f32[N, 64]`: a dtype name (None = the default f32) and dimension expressions."""

    dtype: str | None
    dims: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    dtype_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class InputDecl:
    """`input x: f32[N, 64]`; `draw` is the sampler of an input the trainer draws (`= normal()`), else None."""

    name: str
    type: TensorTypeExpr | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    draw: Expr | None = None


@dataclass(frozen=True)
class ParamDecl:
    name: str
    type: TensorTypeExpr
    init: Expr | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Assign:
    targets: tuple[str, ...]
    value: Pipeline
    assert_dims: tuple[Expr, ...] | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    assert_span: Span = field(default=NO_SPAN, compare=False, repr=False)
    run: str | None = None  # `T = Teacher() from "runs/Teacher"`: start from that run's trained weights
    run_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Output:
    names: tuple[str, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    name_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Default:
    key: str
    value: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Stmt = InputDecl | ParamDecl | Assign | Output | Default | Let

# ---- top-level items -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockParam:
    name: str
    default: Expr | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class ModelDef:
    name: str
    body: tuple[Stmt, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[BlockParam, ...]
    body: tuple[Stmt, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=NO_SPAN, compare=False, repr=False)  # the name in its header


@dataclass(frozen=True)
class Import:
    path: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Entry:
    """One line of a `train` or `objective` section: `key = value [as {field: name}]`, or a bare call."""

    key: str
    value: Expr
    rename: tuple[tuple[str, str], ...] | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    key_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class TrainDef:
    entries: tuple[Entry, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class ObjectiveDef:
    name: str
    entries: tuple[Entry, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Item = ModelDef | BlockDef | Let | Import | TrainDef | ObjectiveDef


@dataclass(frozen=True)
class Module:
    """One parsed file."""

    items: tuple[Item, ...]
    file: str = field(default="", compare=False)


def decimal_comma(call: Call) -> tuple[Kwarg, Num, Num] | None:
    """`split=0,8`: a keyword's whole number, then a comma with no space and a positional whole number: a
    decimal written with a comma (0,8 for 0.8), which reads as two arguments. The keyword and both numbers, or
    None."""
    for kw in call.kwargs:
        v = kw.value
        if not (isinstance(v, Num) and v.text.isdigit()):
            continue
        for a in call.args:
            if (
                isinstance(a, Num)
                and a.text.isdigit()
                and (a.span.line, a.span.col) == (v.span.end_line, v.span.end_col + 1)
            ):
                return kw, v, a
    return None
