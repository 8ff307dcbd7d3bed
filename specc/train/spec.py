"""The train section → a frozen TrainConfig, checked against the model graph without importing JAX.

Every mistake becomes a located Diagnostic: unknown keys, optimizers, losses, metrics, schedules and data sets (with
did-you-mean), wrong argument names or kinds, and losses or metrics over names that are not model values.
`--set key=value` overrides are parsed as expressions and located on the command line (`--set:1:14`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import (
    WARNING,
    Diagnostic,
    Diagnostics,
    SpecError,
    Warnings,
    did_you_mean,
    dym_suffix,
    takes_positional,
)
from ..frontend import ast
from ..frontend.parse import in_number_range, power
from ..ir.dims import integral
from ..source import NO_SPAN, Source, Span

# ---- signatures: the one description of every callable the train section names ----------------------------


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Argument kinds: "value" a model value name, "float", "int", "bool", "str" (with choices), "lr" a number or a
# schedule call, "numbers" a list of numbers, "any" a literal.
_KIND_WORDS = {
    "value": "the name of a model value",
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "str": "a name",
    "lr": "a number or a schedule like step(0.1, 0.5, 10)",
    "numbers": "a list of numbers",
    "any": "a literal",
}


# The ranges a number argument may be limited to (Arg.domain): the test, how the message says it, and why. As
# PyTorch's optimizers check theirs (a negative learning rate, a beta of 1 or more), so a typo is an error at its
# place, not a run that climbs the loss or averages with a growing weight until it overflows.
DOMAINS: Mapping[str, tuple[Any, str, str]] = {
    "rate": (
        lambda v: v >= 0,
        "at least 0",
        "a negative learning rate climbs the loss instead of descending it",
    ),
    "nonneg": (lambda v: v >= 0, "at least 0", ""),
    "positive": (lambda v: v > 0, "greater than 0", ""),
    "decay": (
        lambda v: 0 <= v < 1,
        "in [0, 1)",
        "it is the weight of the running average's past: 0.9 and 0.999 are usual, 1 or more never forgets",
    ),
    "fraction": (lambda v: 0 <= v <= 1, "in [0, 1]", "it is the weight of the running average's past"),
    "delta": (
        lambda v: v >= 0,
        "at least 0",
        "it is how much better an epoch must be to count as better: a negative one counts a worse epoch as "
        "better, so the run would never stop",
    ),
}


@dataclass(frozen=True)
class Arg:
    """One argument of a loss, metric, optimizer or schedule: name, kind, default (REQUIRED if none).

    `number`: a "value" argument that may also be a number (`binary_cross_entropy(d_fake, 1)`).
    `domain`: a key of DOMAINS limiting a number's range ("" for any number).
    `keyword`: given by name only (every optimizer's `clip=`): a value in its place by position is an error.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    number: bool = False
    domain: str = ""
    keyword: bool = False

    def show(self) -> str:
        if self.default is REQUIRED:
            return self.name
        d = self.default
        shown = "none" if d is None else "true" if d is True else "false" if d is False else str(d)
        return f"{self.name}={shown}"


@dataclass(frozen=True)
class Signature:
    """A callable of the train section: `name(args...)` and a one-line description."""

    name: str
    args: tuple[Arg, ...]
    doc: str = ""

    @property
    def positional(self) -> tuple[Arg, ...]:
        """The arguments a call may give by position, in order (the keyword-only ones left out)."""
        return tuple(a for a in self.args if not a.keyword)

    def usage(self) -> str:
        """`adam(lr=0.001, b1=0.9, ...)`: the positional arguments in their order, then the keyword-only ones."""
        shown = [*self.positional, *(a for a in self.args if a.keyword)]
        return f"{self.name}({', '.join(a.show() for a in shown)})"


# ---- the checked configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSpec:
    """A bound call: `adam(lr=0.001)` → name "adam", args (("lr", 0.001), ("b1", 0.9), ...) with defaults filled.

    Values are Python literals, model value names (str) or nested CallSpecs (a schedule as a learning rate).
    """

    name: str
    args: tuple[tuple[str, Any], ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.args)

    def __getitem__(self, key: str) -> Any:
        return self.kw[key]


@dataclass(frozen=True)
class Objective:
    """One loss minimised by one optimizer over a set of parameters (a spec may hold several).

    Args:
        name: "main" for the train section's own loss, else the `objective NAME` section's name.
        terms: the loss as a weighted sum: (coefficient, term) pairs; a term is a loss call or a bare value.
        optimizer: the optimizer call; its `lr` a number or a schedule CallSpec.
        params: the instances or values whose parameters it updates (None: the whole trained model).
        steps: steps of this objective per turn when objectives alternate (`steps = 5`, a WGAN critic).
        after: the objective that runs (as a stage) before this one, or None.
        epochs: how many epochs this objective runs as a stage (None: the train section's epochs).
        spans: where `params` is written: ("params", its value) and (NAME, each name in it).
    """

    name: str
    terms: tuple[tuple[float, CallSpec], ...]
    optimizer: CallSpec
    params: tuple[str, ...] | None = None
    span: Span = field(default=NO_SPAN, compare=False)
    steps: int = 1
    after: str | None = None
    epochs: int | None = None
    spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False)

    def span_of(self, key: str) -> Span:
        """Where `params` (key "params") or a name in it is written; the section's header where not known."""
        return dict(self.spans).get(key, self.span)


@dataclass(frozen=True)
class Metric:
    """A named metric: reported as `<name>` on training batches and `val_<name>` on validation data."""

    name: str
    call: CallSpec


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train_and_evaluate` needs, checked; frozen so a run is a function of it.

    Args:
        spec_path: the spec file (data paths are relative to its folder).
        model: the model trained.
        inputs: the model's inputs: (name, dtype, dims) with None for free dims.
        data: the data set call; rename: model input → data field pairs.
        objectives: at least one: the train section's loss ("main"), or one per `objective` section.
        metrics, batch, epochs, seed: as the keys say.
        early_stop: early_stop(metric, patience, min_delta, mode) or None.
        checkpoint_every: epochs between checkpoints (0: only at the end and on interrupt).
        checkpoint_dir: relative to the run directory.
        freeze: layer instances or values whose parameters no objective updates (`freeze = [enc]`).
        shard: "replicate" (every device holds all parameters) or "fsdp" (parameters and optimizer state split
            over the devices along their largest divisible axis, gathered by XLA where used).
        data_base: the folder relative data paths start from (default: the spec's folder).
        lets: the `let` constants replaced by `--set NAME=VALUE`, (name, value as typed): the model was built with
            them, so a resumed run and `load_run` rebuild it with them.
        spans: where each key was written (or `--set`), for located errors at train time.
        sources: extra sources for rendering errors (the `--set` lines).
        warnings: what is valid but almost surely a mistake (a loss given a value it normalises again).
    """

    spec_path: Path
    model: str
    inputs: tuple[tuple[str, str, tuple[int | None, ...]], ...]
    data: CallSpec
    rename: tuple[tuple[str, str], ...]
    objectives: tuple[Objective, ...]
    metrics: tuple[Metric, ...] = ()
    batch: int = 32
    epochs: int = 10
    seed: int = 0
    early_stop: CallSpec | None = None
    checkpoint_every: int = 0
    checkpoint_dir: str = "checkpoints"
    freeze: tuple[str, ...] = ()
    shard: str = "replicate"
    data_base: Path | None = None
    lets: tuple[tuple[str, str], ...] = ()
    spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False)
    sources: tuple[tuple[str, Source], ...] = field(default=(), compare=False, repr=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    def span(self, key: str) -> Span | None:
        return dict(self.spans).get(key)

    def report_warnings(self) -> Warnings:
        return Warnings(self.warnings, dict(self.sources))

    def with_overrides(self, **kw: Any) -> TrainConfig:
        return replace(self, **kw)

    @property
    def value_names(self) -> tuple[str, ...]:
        """Every model value a loss or metric reads, in first-use order."""
        out: list[str] = []
        calls = [t for o in self.objectives for _, t in o.terms] + [m.call for m in self.metrics]
        for c in calls:
            for name in value_args(c):
                if name not in out:
                    out.append(name)
        return tuple(out)


TRAIN_KEYS = (
    "data",
    "loss",
    "optimizer",
    "schedule",
    "batch",
    "epochs",
    "seed",
    "metrics",
    "early_stop",
    "checkpoint",
    "freeze",
    "shard",
)
SHARDINGS = ("replicate", "fsdp")

EARLY_STOP = Signature(
    "early_stop",
    (
        Arg("metric", "str", "val_loss"),
        Arg("patience", "int", 5, domain="nonneg"),
        Arg("min_delta", "float", 0.0, domain="delta"),
        Arg("mode", "str", "auto", ("auto", "min", "max")),
    ),
    "stop when `metric` has not improved for `patience` epochs",
)
CHECKPOINT = Signature(
    "checkpoint",
    (Arg("every", "int", 1, domain="nonneg"), Arg("dir", "str", "checkpoints")),
    "save every `every` epochs (and at the end; every=0: at the end only) under OUT/dir",
)


def train_tables() -> tuple[
    Mapping[str, Signature], Mapping[str, Signature], Mapping[str, Signature], Mapping[str, Signature]
]:
    from .losses import LOSSES
    from .metrics import METRICS
    from .optim import OPTIMIZERS, SCHEDULES

    return (
        {k: v.sig for k, v in LOSSES.items()},
        {k: v.sig for k, v in METRICS.items()},
        {k: v.sig for k, v in OPTIMIZERS.items()},
        {k: v.sig for k, v in SCHEDULES.items()},
    )


def value_args(call: CallSpec) -> list[str]:
    """The model values a call reads (numbers given in place of a tensor are not values)."""
    if call.name == "value":
        return [call["name"]]
    losses, metrics, _, _ = train_tables()
    sig = losses.get(call.name) or metrics.get(call.name)
    if sig is None:
        return []
    kw = call.kw
    return [kw[a.name] for a in sig.args if a.kind == "value" and isinstance(kw.get(a.name), str)]


# The losses and metrics whose first argument scores one entry a class and whose second holds class labels.
CLASS_SCORING = frozenset({"cross_entropy", "nll", "hinge", "accuracy", "top_k_accuracy"})


def class_score_pairs(config: TrainConfig) -> list[tuple[str, str | None]]:
    """(scores, labels) of each class-scoring loss and metric of the train section (CLASS_SCORING), by model value
    name; labels None where a number stands for them (`accuracy(d_real, 1)`)."""
    return [(scores, labels) for scores, labels, _ in _class_scoring(config.objectives, config.metrics)]


def _class_scoring(
    objectives: Sequence[Objective], metrics: Sequence[Metric]
) -> list[tuple[str, str | None, CallSpec]]:
    """class_score_pairs' (scores, labels), each with its call."""
    losses, metrics_t, _, _ = train_tables()
    calls = [t for o in objectives for _, t in o.terms] + [m.call for m in metrics]
    found = []
    for c in calls:
        if isinstance(c, CallSpec) and c.name in CLASS_SCORING:
            sig = losses.get(c.name) or metrics_t[c.name]
            scores, labels = [c.kw.get(a.name) for a in sig.args if a.kind == "value"][:2]
            if isinstance(scores, str):
                found.append((scores, labels if isinstance(labels, str) else None, c))
    return found


def _one_class_for_a_classifier(
    data: CallSpec,
    written: ast.Call,
    renamed: Mapping[str, str],
    graph: Any,
    objectives: Sequence[Objective],
    metrics: Sequence[Metric],
    diags: Diagnostics,
) -> None:
    """`digits(classes=[3])` under `cross_entropy(logits, y)`: the error loading the data gives (loop.py's
    `_check_two_classes`), found by `specc check` where the list is written in the spec. An autoencoder of the 3s
    (no class-scoring loss or metric on the data's labels y) is fine."""
    # the literal as written (a `let` read): a list of classes, or spirals' and blobs' number of them
    kept = data.kw.get("classes")
    arg = next((k for k in written.kwargs if k.name == "classes"), None)
    if arg is None or not isinstance(kept, list | tuple) or len(kept) != 1:
        return
    values = graph.value_map
    for scores, labels, call in _class_scoring(objectives, metrics):
        if labels is None or scores not in values or renamed.get(labels, labels) != "y":
            continue
        width = graph.type_of(values[scores]).dims[-1].as_int()
        if width is None or width < 2:  # one score: a binary head, which check_label_range leaves alone too
            continue
        diags.add(
            "data error",
            f"the training labels '{labels}' would hold one class only (classes=[{kept[0]}] keeps one class), so "
            f"'{scores}' would learn to name it whatever the input: loss 0, accuracy 1",
            arg.span,
            f"{call.name}({scores}, {labels}) scores classes, and needs at least two: keep at least two classes, "
            "e.g. classes=[3, 8]",
        )
        return


def _field_extremes(splits: Any, name: str, kinds: str, cast: Any) -> Iterator[tuple[str, Any, Any]]:
    """("training" or "validation", min, max) of the data field `name` in each split that holds it non-empty with
    a dtype kind among `kinds`, its extremes as `cast` makes them."""
    for part, ds in (("training", splits.train), ("validation", splits.val)):
        values = ds.fields.get(name) if ds is not None else None
        if values is not None and values.size and values.dtype.kind in kinds:
            yield part, cast(values.min()), cast(values.max())


def check_embedding_ids(config: TrainConfig, graph: Any, splits: Any) -> None:
    """An input that an `embed` looks up must hold ids 0 … vocab − 1: an id outside the table made the lookup NaN,
    and the run stopped as "diverged at step 0", naming the embed but not the data's ids."""
    from .data import DataError

    names = {nid: name for name, nid in graph.inputs}
    for n in graph.nodes:
        if n.op != "embed" or not n.inputs or n.inputs[0].node not in names:
            continue
        name, vocab = names[n.inputs[0].node], int(n.attr["vocab"])
        for part, low, high in _field_extremes(splits, name, "iu", int):
            if low >= 0 and high < vocab:
                continue
            raise data_error(
                config,
                DataError(
                    f"the {part} data's '{name}' holds the id {high if high >= vocab else low}, but the embed at "
                    f"{n.span.line}:{n.span.col} has a table of {vocab} (ids 0 to {vocab - 1})",
                    f"give the embed a vocab of at least {high + 1}" if high >= vocab else "ids count from 0",
                    field=name,
                ),
            )


def check_target_range(config: TrainConfig, splits: Any) -> None:
    """binary_cross_entropy's targets are probabilities: a data field given as its targets must lie in [0, 1].
    Outside it the loss has no minimum and trains silently on nonsense: an autoencoder on `normalize=true` data
    (the inputs it reconstructs standardised to mean 0, std 1), or pixels of 0-255 from an npz."""
    from .data import DataError

    losses, metrics, _, _ = train_tables()
    calls = [t for o in config.objectives for _, t in o.terms] + [m.call for m in config.metrics]
    for c in calls:
        if c.name != "binary_cross_entropy":
            continue
        sig = losses.get(c.name) or metrics[c.name]
        targets = [c.kw.get(a.name) for a in sig.args if a.kind == "value"][1:2]
        if not targets or not isinstance(targets[0], str):
            continue
        name = targets[0]
        for part, low, high in _field_extremes(splits, name, "fiub", float):
            if low >= 0.0 and high <= 1.0:
                continue
            hint = (
                f"normalize=true standardised '{name}' (an input the model reads, so not kept as a target): drop "
                "normalize=true, or use mse for a standardised reconstruction"
                if name in (splits.stats or {})
                else f"scale '{name}' to [0, 1] (pixels / 255), or use mse"
            )
            raise data_error(
                config,
                DataError(
                    f"binary_cross_entropy's targets are probabilities in [0, 1], but the {part} data's '{name}' "
                    f"lie in [{low:.4g}, {high:.4g}]",
                    hint,
                    field=name,
                ),
            )


def _terms() -> Mapping[str, Any]:
    """Every loss and metric by name: its Term (signature, type rule, JAX definition)."""
    from .losses import LOSSES
    from .metrics import METRICS

    return {**LOSSES, **METRICS}


# ---- literals ----------------------------------------------------------------------------------------------


def _f32(v: float) -> float:
    """v as float32 holds it (a rate of 1e-300 is 0 there); beyond float32's range, v itself."""
    try:
        return float(struct.unpack("f", struct.pack("f", v))[0])
    except OverflowError:
        return float(v)


class _NotLiteral(Exception):
    def __init__(self, span: Span):
        self.span = span


class _OutOfRange(_NotLiteral):
    """Literal arithmetic whose result leaves int64/float64 (`lr = 10**400`): reported as such, not as 'not a
    number'."""

    def __init__(self, expr: ast.Expr, value: object = None):
        from ..frontend.fmt import format_expr
        from ..frontend.parse import value_range_error

        super().__init__(expr.span)
        self.error = value_range_error(format_expr(expr), expr.span, value)


def _report_literal(err: _NotLiteral, diags: Diagnostics) -> bool:
    """Add an out-of-range literal's own error to `diags`; False for any other non-literal (the caller words it)."""
    if isinstance(err, _OutOfRange):
        diags.extend(err.error)
        return True
    return False


def literal(expr: ast.Expr, lets: Mapping[str, ast.Let], _depth: int = 0) -> Any:
    """A literal expression's value: numbers (with + - * / ** over them), strings, booleans, lists, let names."""
    if _depth > 50:
        raise _NotLiteral(expr.span)
    if isinstance(expr, ast.Pipeline) and not expr.stages:
        return literal(expr.head, lets, _depth + 1)
    if isinstance(expr, ast.Num | ast.Str | ast.Bool):
        return expr.value
    if isinstance(expr, ast.Neg):
        v = literal(expr.operand, lets, _depth + 1)
        if isinstance(v, int | float) and not isinstance(v, bool):
            if not in_number_range(-v):  # -(-2**63)
                raise _OutOfRange(expr)
            return -v
        raise _NotLiteral(expr.span)
    if isinstance(expr, ast.ListLit | ast.TupleLit):
        return [literal(i, lets, _depth + 1) for i in expr.items]
    if isinstance(expr, ast.Name):
        if expr.id in lets:
            return literal(lets[expr.id].value, lets, _depth + 1)
        if expr.id in ("none", "None"):
            return None
        raise _NotLiteral(expr.span)
    if isinstance(expr, ast.BinOp) and expr.op in "+-*/**":
        a, b = literal(expr.left, lets, _depth + 1), literal(expr.right, lets, _depth + 1)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            raise _NotLiteral(expr.span)
        try:
            v = {
                "+": lambda: a + b,
                "-": lambda: a - b,
                "*": lambda: a * b,
                "/": lambda: a / b,
                "**": lambda: power(a, b),
            }[expr.op]()
        except ZeroDivisionError:
            raise _NotLiteral(expr.span) from None
        except OverflowError:
            raise _OutOfRange(expr) from None
        if not in_number_range(v):  # 2**63, 1e308 * 10, (-8.0)**0.5
            raise _OutOfRange(expr, v)
        return v
    raise _NotLiteral(expr.span)


def _unpipe(expr: ast.Expr) -> ast.Expr:
    while isinstance(expr, ast.Pipeline) and not expr.stages:
        expr = expr.head
    return expr


def _describe(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


# ---- binding calls against signatures ---------------------------------------------------------------------


class _Checker:
    """Binds train-section calls to their signatures and types losses and metrics against the model's values.

    Args:
        values: the model's named values; None when the model did not parse far enough to know them (then
            names are not checked).
        types: the checked type of each value; values missing here (the model has errors) are not typed.
        producers: the op and place that computes each value (`probs = z -> softmax`: softmax), for the warnings
            about a loss given what it computes itself.
    """

    def __init__(
        self,
        lets: Mapping[str, ast.Let],
        values: Sequence[str] | None,
        diags: Diagnostics,
        types: Mapping[str, Any] | None = None,
        producers: Mapping[str, tuple[str, Span]] | None = None,
    ):
        self.lets = lets
        self.known = values is not None
        self.values = list(values or ())
        self.diags = diags
        self.types = dict(types or {})
        self.producers = dict(producers or {})
        self.warnings: list[Diagnostic] = []

    def has_value(self, name: str) -> bool:
        return not self.known or name in self.values

    def call_of(
        self, expr: ast.Expr, what: str, table: Mapping[str, Signature], span: Span
    ) -> CallSpec | None:
        expr = _unpipe(expr)
        if isinstance(expr, ast.Name) and expr.id not in self.lets:
            expr = ast.Call(expr.id, (), (), True, expr.span, expr.span)
        if not isinstance(expr, ast.Call):
            self.diags.add(
                "value error",
                f"expected a {what} call like {next(iter(table.values())).usage()}",
                getattr(expr, "span", span),
                f"valid {_plural(what)}: {', '.join(table)}",
            )
            return None
        sig = table.get(expr.func)
        if sig is None:
            self.diags.add(
                "name error",
                f"unknown {what} '{expr.func}'" + dym_suffix(expr.func, table),
                expr.func_span,
                f"valid {_plural(what)}: {', '.join(table)}",
            )
            return None
        return self.bind(sig, expr, what)

    def bind(self, sig: Signature, call: ast.Call, what: str) -> CallSpec | None:
        if _decimal_comma(call, self.diags):
            return None
        ok = True
        given: dict[str, tuple[ast.Expr, Span]] = {}
        positional = sig.positional
        if len(call.args) > len(positional):
            named = [a.name for a in sig.args if a.keyword]
            self.diags.add(
                "argument error",
                takes_positional(sig.name, [a.name for a in positional], len(call.args)),
                call.args[len(positional)].span,
                (f"give {', '.join(named)} by name, e.g. {sig.name}(..., {named[0]}=...); " if named else "")
                + f"usage: {sig.usage()}",
            )
            ok = False
        for a, e in zip(positional, call.args, strict=False):
            given[a.name] = (e, e.span)
        names = [a.name for a in sig.args]
        for kw in call.kwargs:
            if kw.name not in names:
                self.diags.add(
                    "argument error",
                    f"{sig.name} has no argument '{kw.name}'" + dym_suffix(kw.name, names),
                    kw.span,
                    f"usage: {sig.usage()}",
                )
                ok = False
            elif kw.name in given:
                self.diags.add(
                    "argument error",
                    f"{sig.name}: argument '{kw.name}' given twice",
                    kw.span,
                    f"usage: {sig.usage()}",
                )
                ok = False
            else:
                given[kw.name] = (kw.value, kw.span)
        missing = [a.name for a in sig.args if a.name not in given and a.default is REQUIRED]
        if missing:  # one error for the call: `metrics = [accuracy]` lacks both its tensors, one slip
            listed = " and ".join(", ".join(f"'{m}'" for m in missing).rsplit(", ", 1))
            self.diags.add(
                "argument error",
                f"{sig.name} needs argument{'s' if len(missing) > 1 else ''} {listed}",
                call.span,
                f"usage: {sig.usage()}",
            )
            ok = False
        out: list[tuple[str, Any]] = []
        for a in sig.args:
            if a.name not in given:
                out.append((a.name, a.default))
                continue
            expr, span = given[a.name]
            v = self.arg_value(sig, a, expr, span)
            if v is _BAD:
                ok = False
            out.append((a.name, v))
        if not ok:
            return None
        bound = CallSpec(sig.name, tuple(out), call.span)
        if what in ("loss", "metric"):
            spans = {k: _unpipe(e).span for k, (e, _) in given.items()}
            if not self.typecheck(bound, spans):
                return None
        return bound

    def typecheck(self, call: CallSpec, spans: Mapping[str, Span]) -> bool:
        """Run the loss's or metric's type rule on the types of its arguments; False (and a diagnostic) if wrong.

        Calls over values whose types are unknown (the model has errors) are not typed.
        """
        from .terms import Number

        term = _terms().get(call.name)
        if term is None:
            return True
        types: dict[str, Any] = {}
        names: dict[str, str] = {}
        kw = call.kw
        for a in term.tensor_args:
            v = kw[a.name]
            if isinstance(v, str):
                if v not in self.types:
                    return True
                types[a.name], names[a.name] = self.types[v], v
            else:
                types[a.name], names[a.name] = Number(v), str(v)
        issue = term.check(types, names, kw)
        if issue is None:
            self._warn_normalised_twice(call, spans)
            return True
        self.diags.add(
            issue.kind,
            issue.message,
            spans.get(issue.arg, call.span),
            issue.hint or f"usage: {term.sig.usage()}",
        )
        return False

    def _warn_normalised_twice(self, call: CallSpec, spans: Mapping[str, Span]) -> None:
        """A loss that takes scores and normalises them itself, given a value the model already normalised
        (`binary_cross_entropy(p, t)` with `p = z -> sigmoid`): valid, so a warning, but training stalls or
        crawls (the sigmoid's output squashed again lies in (0.5, 0.73): the loss stays near ln 2)."""
        rule = NORMALISED_TWICE.get(call.name)
        if rule is None:
            return
        arg, ops, does, instead = rule
        value = call.kw.get(arg)
        producer = self.producers.get(value) if isinstance(value, str) else None
        if producer is None or producer[0] not in ops:
            return
        op, where = producer
        self.warnings.append(
            Diagnostic(
                WARNING,
                f"{call.name} {does}, but '{value}' has already been through {op} (line {where.line}): "
                f"{instead}",
                spans.get(arg, call.span),
                f"give {call.name} the value before the {op} (e.g. `logits = ...` without `-> {op}`), and keep "
                f"`{value} = logits -> {op}` as an output for predictions",
            )
        )

    def arg_value(self, sig: Signature, a: Arg, expr: ast.Expr, span: Span) -> Any:
        expr = _unpipe(expr)
        if a.kind == "value":
            if a.number and not (isinstance(expr, ast.Name) and expr.id not in self.lets):
                try:
                    n = literal(expr, self.lets)
                except _NotLiteral as e:
                    if _report_literal(e, self.diags):
                        return _BAD
                    n = None
                if isinstance(n, int | float) and not isinstance(n, bool):
                    return n
            if not isinstance(expr, ast.Name):
                self.diags.add(
                    "argument error",
                    f"{sig.name}: argument '{a.name}' must be {_KIND_WORDS['value']}"
                    + (" or a number" if a.number else ""),
                    expr.span,
                    "losses and metrics read named values of the model, like `logits`",
                )
                return _BAD
            if not self.has_value(expr.id):
                self.diags.add(
                    "name error",
                    f"{sig.name}: '{expr.id}' is not a value of the model" + dym_suffix(expr.id, self.values),
                    expr.span,
                    "named values: " + ", ".join(self.values),
                )
                return _BAD
            return expr.id
        if (
            a.kind == "lr"
            and isinstance(expr, ast.Call | ast.Name)
            and not (isinstance(expr, ast.Name) and expr.id in self.lets)
        ):
            sched = self.call_of(expr, "schedule", train_tables()[3], span)
            return _BAD if sched is None else sched
        if a.kind == "str" and isinstance(expr, ast.Name) and expr.id not in self.lets:
            v: Any = expr.id  # `reduction=sum`, `mode=max`, `per=epoch`: bare words are names
        else:
            try:
                v = literal(expr, self.lets)
            except _NotLiteral as e:
                if _report_literal(e, self.diags):
                    return _BAD
                self.diags.add(
                    "argument error",
                    f"{sig.name}: argument '{a.name}' must be {_KIND_WORDS[a.kind]}",
                    e.span,
                    f"usage: {sig.usage()}",
                )
                return _BAD
        return self.coerce(sig, a, v, expr.span)

    def in_domain(self, sig: Signature, a: Arg, v: float, span: Span) -> bool:
        """Whether the number v lies in the argument's domain (any without one); an argument error if not."""
        if not a.domain:
            return True
        ok, words, why = DOMAINS[a.domain]
        if ok(v):
            return True
        self.diags.add(
            "argument error",
            f"{sig.name}: argument '{a.name}' must be {words}, got {_describe(v)}",
            span,
            (f"{why}; " if why else "") + f"usage: {sig.usage()}",
        )
        return False

    def coerce(self, sig: Signature, a: Arg, v: Any, span: Span) -> Any:
        bad = f"{sig.name}: argument '{a.name}' must be {_KIND_WORDS[a.kind]}, got {_describe(v)}"
        if v is None and a.default is None:
            return None
        num = isinstance(v, int | float) and not isinstance(v, bool)
        if a.kind in ("float", "lr") and num:
            if not self.in_domain(sig, a, v, span):
                return _BAD
            if a.kind == "lr" and _f32(v) == 0:  # valid (PyTorch takes it too), but almost surely a slip
                is_zero = "lr = 0" if v == 0 else f"lr = {v:g} is 0 in float32, the weights' precision, so it"
                self.warnings.append(
                    Diagnostic(
                        WARNING,
                        f"{sig.name}: {is_zero} changes no weight, so the run would train nothing",
                        span,
                        "give a positive learning rate, e.g. lr=1e-3; to keep some layers fixed, list them in "
                        "freeze = [...]",
                    )
                )
            return float(v)
        if a.kind == "int" and num and isinstance(integral(v), int):
            if not self.in_domain(sig, a, v, span):  # `patience=-1` stopped after the first epoch
                return _BAD
            return int(v)
        if a.kind == "bool" and isinstance(v, bool):
            return v
        if a.kind == "str" and isinstance(v, str):
            if a.choices and v not in a.choices:
                self.diags.add(
                    "argument error",
                    f"{sig.name}: argument '{a.name}' must be one of "
                    f"{', '.join(a.choices)}, got {_describe(v)}",
                    span,
                    did_you_mean(v, a.choices)
                    or f"for example {a.name}={a.choices[0]}; usage: {sig.usage()}",
                )
                return _BAD
            return v
        if (
            a.kind == "numbers"
            and isinstance(v, list)
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        ):
            return tuple(v)
        if a.kind == "any":
            return tuple(v) if isinstance(v, list) else v
        self.diags.add("argument error", bad, span, f"usage: {sig.usage()}")
        return _BAD


_BAD: Any = object()


def unused_inputs(graph: Any, objectives: Sequence[Objective], metrics: Sequence[Metric]) -> list[Diagnostic]:
    """Model inputs that nothing reads: no layer takes them and no loss or metric names them. Almost surely a slip
    (`input noisy` declared, then `code = x -> ...` where `noisy` was meant), and training still asks the data for
    each. Said only with a train section: without one, labels the model does not read are declared for later."""
    read = {r.node for n in graph.nodes for r in n.inputs}
    named = {v for o in objectives for _, t in o.terms for v in value_args(t)}
    named |= {v for m in metrics for v in value_args(m.call)}
    out = []
    for name, nid in graph.inputs:
        if nid in read or name in named:
            continue
        drawn = any(k == "draw" for k, _ in graph.nodes[nid].attrs)
        out.append(
            Diagnostic(
                WARNING,
                f"input {name} is read by nothing: no layer takes it and no loss or metric names it"
                + ("" if drawn else ", yet training asks the data for it"),
                graph.nodes[nid].span,
                f"use {name} where it was meant (is another name in its place?), or remove the input",
            )
        )
    return out


def _batch_of_one(graph: Any, span: Span) -> list[Diagnostic]:
    """`batch = 1` with a batchnorm over [N, F]: each feature's mean over one example is the example itself, so
    x − mean is 0 and the layer outputs its bias whatever it is given (a conv's batchnorm, over N, H and W, is
    fine: it still has H·W values a channel)."""
    flat = [
        n
        for n in graph.nodes
        if n.op == "batchnorm" and n.inputs and len(graph.type_of(n.inputs[0]).dims) == 2 and n.shares is None
    ]
    if not flat:
        return []
    at = sorted({n.span.line for n in flat})  # a block's batchnorm, applied several times, is one line
    lines = (
        ("line " if len(at) == 1 else "lines ")
        + ", ".join(map(str, at[:3]))
        + (", ..." if len(at) > 3 else "")
    )
    return [
        Diagnostic(
            WARNING,
            f"batch = 1, but batchnorm ({lines}) normalises each feature over the batch: over one example "
            "x − mean is 0, so in training it outputs its bias whatever its input, and learns nothing before it",
            span,
            "use a batch of 16 or more, or layernorm, which normalises each example over its own features",
        )
    ]


# loss → (its score argument, the ops whose output it must not be given, what the loss does, what goes wrong)
# Ops that keep what their input's values mean (dropout scales them in training, flatten and reshape move them):
# a value computed through them from a softmax is still that softmax's output for NORMALISED_TWICE.
KEEPS_VALUES = frozenset({"dropout", "flatten", "reshape"})


def _producer(graph: Any, node: int) -> tuple[str, Span]:
    """The op (and its place) that computed node's value, looking through KEEPS_VALUES ops."""
    n = graph.nodes[node]
    while n.op in KEEPS_VALUES and n.inputs:
        n = graph.nodes[n.inputs[0].node]
    return n.op, n.span


NORMALISED_TWICE: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "cross_entropy": (
        "logits",
        ("softmax",),
        "takes logits and applies the softmax itself",
        "the softmax is applied twice, its gradients shrink and training crawls",
    ),
    "kl_div": (
        "logits",
        ("softmax",),
        "takes logits and applies the softmax itself",
        "the softmax is applied twice, its gradients shrink and training crawls",
    ),
    "binary_cross_entropy": (
        "logits",
        ("sigmoid", "hard_sigmoid"),
        "takes logits and applies the sigmoid itself",
        "the sigmoid is applied twice, so every prediction lies in (0.5, 0.73) and the loss stalls near 0.69",
    ),
    "nll": (
        "log_probs",
        ("softmax", "sigmoid", "hard_sigmoid"),
        "takes log-probabilities",
        "these are probabilities, not their logarithms; use `-> log_softmax` instead",
    ),
}


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


# ---- the loss expression -------------------------------------------------------------------------------------


def _loss_terms(
    expr: ast.Expr, ck: _Checker, losses: Mapping[str, Signature]
) -> list[tuple[float, CallSpec]]:
    """A loss as a weighted sum: `a + 0.3 * aux - l2(1e-4)`; products of two terms are not linear and refused."""
    expr = _unpipe(expr)
    if isinstance(expr, ast.BinOp) and expr.op in "+-":
        left, right = _loss_terms(expr.left, ck, losses), _loss_terms(expr.right, ck, losses)
        sign = 1.0 if expr.op == "+" else -1.0
        return left + [(sign * c, t) for c, t in right]
    if isinstance(expr, ast.Neg):
        return [(-c, t) for c, t in _loss_terms(expr.operand, ck, losses)]
    if isinstance(expr, ast.BinOp) and expr.op in ("*", "/"):
        for const_side, term_side in ((expr.left, expr.right), (expr.right, expr.left)):
            if expr.op == "/" and const_side is expr.left:
                continue
            try:
                k = literal(const_side, ck.lets)
            except _NotLiteral as err:
                if _report_literal(err, ck.diags):
                    return []
                continue
            if isinstance(k, int | float) and not isinstance(k, bool):
                if expr.op == "/" and k == 0:
                    ck.diags.add("value error", "the loss is divided by zero", const_side.span)
                    return []
                scale = float(k) if expr.op == "*" else 1.0 / float(k)
                return [(scale * c, t) for c, t in _loss_terms(term_side, ck, losses)]
        ck.diags.add(
            "value error",
            "a loss is a weighted sum of terms; this product is not",
            expr.span,
            "write e.g. `cross_entropy(logits, y) + 0.3 * cross_entropy(aux, y)`",
        )
        return []
    if isinstance(expr, ast.Name) and expr.id not in ck.lets:
        if not ck.has_value(expr.id):
            ck.diags.add(
                "name error",
                f"'{expr.id}' is neither a loss nor a value of the model"
                + dym_suffix(expr.id, [*ck.values, *losses]),
                expr.span,
                f"losses: {', '.join(losses)}; model values: {', '.join(ck.values)}",
            )
            return []
        t = ck.types.get(expr.id)
        if t is not None and not t.is_float:
            ck.diags.add(
                "type error",
                f"a model value as a loss term is averaged, so it must be float; '{expr.id}' is {t}",
                expr.span,
                f"use a float value, or a loss like mse({expr.id}, 0)",
            )
            return []
        return [(1.0, CallSpec("value", (("name", expr.id),), expr.span))]
    if isinstance(expr, ast.Call):
        c = ck.call_of(expr, "loss", losses, expr.span)
        return [] if c is None else [(1.0, c)]
    ck.diags.add(
        "value error",
        "expected a loss like cross_entropy(logits, y)",
        getattr(expr, "span", None),
        f"losses: {', '.join(losses)}",
    )
    return []


# ---- overrides ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """`--set key=value` parsed: key path (`optimizer.lr`) and the value's AST (spans on the `--set` line)."""

    path: tuple[str, ...]
    value: ast.Expr
    source: Source
    key_span: Span


def parse_override(text: str, index: int = 0, name: str | None = None) -> Override:
    """Parse one `--set key=value` (the index-th); located errors point into the option text."""
    name = name or ("--set" if index == 0 else f"--set[{index + 1}]")
    src = Source(name, text)
    key, eq, value = text.partition("=")
    if not eq or not key.strip() or not value.strip():
        raise SpecError.one(
            "argument error",
            f"--set wants KEY=VALUE, got '{text}'",
            Span.point(name, 1, 1, len(text)),
            "e.g. --set optimizer.lr=0.01 or --set epochs=3",
        ).with_sources({name: src})
    if not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\s*", key):
        # `--set early_stop(metric=loss)`: the '=' split a call, and the parser's complaint about the rest misled
        head = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", key)
        raise SpecError.one(
            "argument error",
            f"--set wants KEY=VALUE with KEY a train key, a constant or KEY.ARGUMENT; got the key '{key}'",
            Span.point(name, 1, 1, len(key)),
            f"to set a call, name its key: --set {head.group(1)}={text.strip()}"
            if head and "(" in key
            else "e.g. --set optimizer.lr=0.01 or --set epochs=3",
        ).with_sources({name: src})
    path = tuple(key.strip().split("."))
    return _override(src, path, Span.point(name, 1, 1, len(key)), len(key) + 1)


def parse_flag(key: str, value: object) -> Override:
    """`--seed 7` (likewise --epochs, --batch, --data) as an override of `key`; errors show the option as typed:
    `--seed:1:8`, under ` 1 | --seed 4294967296`."""
    name = f"--{key}"
    src, key_span = Source(name, f"{name} {value}"), Span.point(name, 1, 1, len(name))
    # click read an int: the key's own range applies, even beyond int64 (`--seed 2**70`)
    if isinstance(value, int):
        num = ast.Num(value, Span.point(name, 1, len(name) + 2, len(str(value))))
        return Override((key,), num, src, key_span)
    if not str(value).strip():
        raise SpecError.one(
            "argument error",
            f"{name} wants a value, got none",
            Span.point(name, 1, len(name) + 2),
            f"""e.g. {name} 'mnist("data/")'""" if key == "data" else f"e.g. {name} 3",
        ).with_sources({name: src})
    return _override(src, (key,), key_span, len(name) + 1)


def check_distinct(overrides: Sequence[Override], lets: Iterable[str] = ()) -> None:
    """Refuse a key the command line sets twice (`--set optimizer.lr=0.1 --set optimizer.lr=0.2`, `--set
    epochs=3 --epochs 1`) or a call replaced after one of its arguments was set (`--set optimizer.lr=0.1 --set
    optimizer=sgd(0.5)`): the last one won and the other was dropped without a word. `lets`: the spec's top-level
    constants, which `--set NAME=` replaces instead of the train key of that name (`--epochs` is always the key)."""
    names = set(lets)
    seen: list[tuple[tuple[str, ...], Override]] = []
    for ov in overrides:
        flag = not ov.source.name.startswith("--set")
        if not flag and len(ov.path) == 1 and ov.path[0] in names:
            key: tuple[str, ...] = ("let", ov.path[0])
        else:
            key = ("train", *(ov.path[1:] if ov.path[0] == "train" and len(ov.path) > 1 else ov.path))
        for earlier_key, earlier in seen:
            if earlier_key[: len(key)] == key:
                what = ".".join(key[1:])
                said = earlier.source.text.strip()
                message = (
                    f"{what} is set twice: by `{said}` and here; only the last would count"
                    if earlier_key == key
                    else f"this replaces {what} whole, so `{said}` before it would count for nothing"
                )
                raise SpecError.one(
                    "argument error",
                    message,
                    ov.key_span,
                    "give each key once"
                    if earlier_key == key
                    else f"set {what} first, then its arguments: --set {what}=... --set {'.'.join(earlier_key[1:])}=...",
                ).with_sources({ov.source.name: ov.source})
        seen.append((key, ov))


def _override(src: Source, path: tuple[str, ...], key_span: Span, start: int) -> Override:
    """The Override whose value is `src.text[start:]`, parsed where it stands in the option's text."""
    from ..frontend.parse import parse_expr

    name, text, value = src.name, src.text, src.text[start:]
    second = _statement_break(value)
    if second is not None:  # the parser would take `epochs=1;batch=0` as one value: refuse, not drop
        pos = start + second
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        raise SpecError.one(
            "argument error",
            ("one KEY=VALUE per --set" if name.startswith("--set") else f"one value per {name}")
            + "; this one holds a second statement",
            Span.point(name, line, col),
            "give each key its own option: --set epochs=1 --set batch=0",
        ).with_sources({name: src})
    try:
        expr = parse_expr(value, name, 1, start + 1)
    except SpecError as e:
        raise e.with_sources({name: src}) from None
    return Override(path, expr, src, key_span)


def _statement_break(value: str) -> int | None:
    """The index of the first newline or `;` outside a string that more text follows in a --set value, or None."""
    in_str = False
    i = 0
    while i < len(value):
        ch = value[i]
        if in_str and ch == "\\":
            i += 1
        elif ch == '"':
            in_str = not in_str
        elif not in_str and ch in "\n\r;" and value[i + 1 :].strip():
            return i
        i += 1
    return None


def sets_let(ov: Override, lets: Mapping[str, ast.Let]) -> bool:
    """Whether `--set NAME=VALUE` replaces the `let` constant NAME: a bare name the spec defines with a top-level
    (or imported) `let`. A constant wins over a train key of the same name; `--set train.KEY=...` is the key."""
    return len(ov.path) == 1 and ov.path[0] in lets


def value_text(ov: Override) -> str:
    """The override's value as typed (`16`, `adam(1e-3, b1=0.9)`), cut from the option by the value's span."""
    sp, lines = ov.value.span, ov.source.lines
    if sp.line == sp.end_line:
        return lines[sp.line - 1][sp.col - 1 : sp.end_col - 1]
    return "\n".join(
        [
            lines[sp.line - 1][sp.col - 1 :],
            *lines[sp.line : sp.end_line - 1],
            lines[sp.end_line - 1][: sp.end_col - 1],
        ]
    )


def apply_lets(spec: Any, overrides: Sequence[str | Override], *, only_lets: bool = False) -> Any:
    """`spec` with every `--set NAME=VALUE` whose NAME is a `let` constant replacing that constant, so the graph
    is built from the new value (`let width = 64` ... `dense(width)`); errors in the value point into the option.
    The other overrides are the train section's (`build_config`); with `only_lets` (check, compile, draw the model
    alone) they are located errors."""
    from ..spec import Spec

    program = spec.program
    ovs = [o if isinstance(o, Override) else parse_override(o, i) for i, o in enumerate(overrides)]
    if all(
        isinstance(o, str) for o in overrides
    ):  # the command line's own (a resume adds the run's lets first)
        check_distinct(ovs, program.lets)
    lets, sources = dict(program.lets), dict(program.sources)
    diags = Diagnostics()
    for ov in ovs:
        if sets_let(ov, program.lets):
            lets[ov.path[0]] = ast.Let(ov.path[0], ov.value, ov.value.span)
            sources[ov.source.name] = ov.source
        elif only_lets:
            sources[ov.source.name] = ov.source
            top = ov.path[0]
            known = top in TRAIN_KEYS or top == "train"
            diags.add(
                "name error",
                (
                    f"'{'.'.join(ov.path)}' is a train setting; only `let` constants change the model"
                    if known
                    else f"'{top}' is not a `let` constant of the spec" + dym_suffix(top, list(program.lets))
                ),
                ov.key_span,
                f"constants: {', '.join(program.lets)}"
                if program.lets
                else "the spec defines no `let` constant",
            )
    for ov in ovs:
        if sets_let(ov, program.lets):
            _check_let_kind(ov, program.lets[ov.path[0]], lets, diags)
    diags.raise_if_any(sources)
    if lets == program.lets:
        return spec
    return Spec(replace(program, lets=lets, sources=sources), spec.model)


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list"}.get(type(v), "")


def _check_let_kind(ov: Override, old: ast.Let, lets: Mapping[str, ast.Let], diags: Diagnostics) -> None:
    """A constant the spec gives as a literal takes a literal of the same kind (a float also takes an integer),
    so `--set width=abc` is reported at `abc`, not where the model reads `width`."""
    try:
        was = literal(old.value, {**lets, old.name: old})
    except _NotLiteral:
        return  # a size expression over free symbols: the graph checker judges the new one
    kind = _kind(was)
    if not kind:
        return
    try:
        now = literal(ov.value, lets)
    except _NotLiteral as err:
        if not _report_literal(err, diags):
            diags.add(
                "value error",
                f"constant '{old.name}' is {kind} (`let {old.name} = {_describe(was)}`); "
                f"`{value_text(ov)}` is not a literal",
                ov.value.span,
                f"e.g. --set {old.name}={_describe(was)}",
            )
        return
    if _kind(now) != kind and not (kind == "a number" and _kind(now) == "an integer"):
        diags.add(
            "value error",
            f"constant '{old.name}' is {kind} (`let {old.name} = {_describe(was)}`), got {_describe(now)}",
            ov.value.span,
            f"e.g. --set {old.name}={_describe(was)}",
        )


def let_overrides(lets: Sequence[tuple[str, str]], where: str) -> list[Override]:
    """A run's recorded `let` overrides (TrainConfig.lets) parsed again; errors are reported under `where`."""
    return [parse_override(f"{name}={text}", name=f"{where}[{name}]") for name, text in lets]


def _apply_overrides(
    entries: tuple[ast.Entry, ...],
    overrides: Sequence[Override],
    diags: Diagnostics,
    lets: Mapping[str, ast.Let],
    objectives: Sequence[str] = (),
    section: str = "",
) -> tuple[ast.Entry, ...]:
    """`entries` (the train section's; an objective's where `section` names it, with the override's first key
    already its own) with the overrides applied; each override that fits nothing is a located error."""
    from .losses import LOSSES
    from .optim import OPTIMIZERS

    keys = OBJECTIVE_KEYS if section else TRAIN_KEYS
    out = list(entries)
    for ov in overrides:
        if sets_let(ov, lets):
            continue  # the program's constant (apply_lets)
        if ov.path[0] == "train" and len(ov.path) > 1 and not section:
            ov = replace(ov, path=ov.path[1:])
        top = ov.path[0]
        if top not in keys:
            if top in lets:
                message = f"'{'.'.join(ov.path)}': '{top}' is a `let` constant; set it whole"
                hint = f"e.g. --set {top}=..."
            elif section:
                message = f"unknown key '{top}' of {section}" + dym_suffix(top, keys)
                hint = f"an objective's keys: {', '.join(keys)}"
            else:
                message = f"unknown train key or constant '{top}'" + dym_suffix(
                    top, [*keys, *lets, *objectives]
                )
                hint = (
                    f"train keys: {', '.join(keys)}"
                    + (f"; constants: {', '.join(lets)}" if lets else "")
                    + (
                        f"; an objective's keys as {objectives[0]}.KEY (e.g. {objectives[0]}.epochs)"
                        if objectives
                        else ""
                    )
                )
            diags.add("name error", message, ov.key_span, hint)
            continue
        idx = next((i for i, e in enumerate(out) if e.key == top), None)
        if len(ov.path) == 1:
            entry = ast.Entry(top, ov.value, None, ov.value.span, ov.key_span)
            if idx is None:
                out.append(entry)
            else:
                rename = out[idx].rename if top == "data" else None
                out[idx] = replace(entry, rename=rename)
            continue
        if len(ov.path) != 2 or idx is None or not isinstance(_unpipe(out[idx].value), ast.Call | ast.Name):
            diags.add(
                "argument error",
                f"cannot set '{'.'.join(ov.path)}': {section or 'the train section'}'s `{top}` is not a call "
                "with arguments",
                ov.key_span,
                f"set the whole key, e.g. --set {section.partition(' ')[2] + '.' if section else ''}{top}=...",
            )
            continue
        call = _unpipe(out[idx].value)
        if isinstance(call, ast.Name):
            call = ast.Call(call.id, (), (), False, call.span, call.span)
        assert isinstance(call, ast.Call)
        arg = ov.path[1]
        sigs = {
            **{k: v.sig for k, v in OPTIMIZERS.items()},
            **{k: v.sig for k, v in LOSSES.items()},
            "early_stop": EARLY_STOP,
            "checkpoint": CHECKPOINT,
        }
        sig = sigs.get(call.func)
        pos = [a.name for a in sig.positional] if sig else []
        args = list(call.args)
        if arg in pos and pos.index(arg) < len(args):
            args[pos.index(arg)] = ov.value
            kwargs = call.kwargs
        else:
            kwargs = (
                *tuple(k for k in call.kwargs if k.name != arg),
                ast.Kwarg(arg, ov.value, ov.value.span),
            )
        new = replace(call, args=tuple(args), kwargs=kwargs)
        out[idx] = replace(out[idx], value=new)
    return tuple(out)


# ---- the section --------------------------------------------------------------------------------------------


def _set_objective(
    od: ast.ObjectiveDef, overrides: Sequence[Override], diags: Diagnostics
) -> ast.ObjectiveDef:
    """The objective section with the overrides aimed at it (`--set teacher.epochs=2`) applied."""
    mine = [o for o in overrides if o.path[0] == od.name]
    for o in mine:
        if len(o.path) == 1:
            diags.add(
                "argument error",
                f"'{od.name}' is an objective section; set one of its keys",
                o.key_span,
                f"e.g. --set {od.name}.epochs=2 or --set {od.name}.optimizer.lr=0.01",
            )
    mine = [replace(o, path=o.path[1:]) for o in mine if len(o.path) > 1]
    if not mine:
        return od
    return replace(od, entries=_apply_overrides(od.entries, mine, diags, {}, section=f"objective {od.name}"))


def _graph_inputs(graph: Any) -> tuple[tuple[str, str, tuple[int | None, ...]], ...]:
    out = []
    for name, nid in graph.inputs:
        t = graph.nodes[nid].type
        dims = tuple(d.as_int() for d in t.dims)
        out.append((name, t.dtype, dims))
    return tuple(out)


OBJECTIVE_KEYS = ("loss", "optimizer", "schedule", "params", "steps", "after", "epochs")
MINIMAL_TRAIN = (
    "train { data = digits(split=0.8); loss = cross_entropy(logits, y); optimizer = adam(lr=1e-3) }"
)


def _model_def(program: Any, graph: Any, model: str | None) -> ast.ModelDef | None:
    name = graph.model if graph is not None else model
    if name is None:
        return list(program.models.values())[-1] if program.models else None
    return program.models.get(name)


def _bound_names(mdef: ast.ModelDef | None) -> list[str]:
    """The names a model binds at its top level (inputs, params, assignments), read from its AST."""
    out: list[str] = []
    for st in mdef.body if mdef is not None else ():
        if isinstance(st, ast.InputDecl | ast.ParamDecl):
            out.append(st.name)
        elif isinstance(st, ast.Assign):
            out.extend(st.targets)
    return out


@dataclass(frozen=True)
class _Nameable:
    """What `params` and `freeze` may name (the model, its values, block instances and blocks; None: unknown, not
    checked), and which of those cover a layer with weights (None: the model has errors, not checked)."""

    names: tuple[str, ...] | None
    weighted: frozenset[str] | None = None


def _instances(program: Any, graph: Any, mdef: ast.ModelDef | None) -> _Nameable:
    """What `params = ...` and `freeze = ...` may name."""
    if mdef is None:
        return _Nameable(None)
    out = [mdef.name, *_bound_names(mdef)]
    if graph is None:
        return _Nameable((*out, *program.blocks))  # the model has errors: be lenient
    out += [k for k, _ in graph.values]
    for n in graph.nodes:
        if n.instance:
            out.append(n.instance)
        # a named instance's later uses (`D.2`) are the same layers as its first: not offered separately
        out += [sc.instance for sc in n.scope if "." not in sc.instance] + [sc.block for sc in n.scope]
    from .objectives import weighted_names  # it reads this module's Objective

    return _Nameable(tuple(dict.fromkeys(out)), frozenset(weighted_names(graph)))


def _instance_list(
    e: ast.Entry, what: str, nameable: _Nameable, diags: Diagnostics
) -> tuple[tuple[str, Span], ...]:
    """`params = D`, `freeze = [enc, dec]`: names of layer instances or model values, each checked (known, and
    covering a layer with weights: naming a relu trains or freezes nothing), with where each is written."""
    instances = nameable.names
    v = _unpipe(e.value)
    items = v.items if isinstance(v, ast.ListLit | ast.TupleLit) else (v,)
    got: list[tuple[str, Span]] = []
    for it in items:
        it = _unpipe(it)
        if isinstance(it, ast.Str):
            it = ast.Name(it.value, it.span)
        if not isinstance(it, ast.Name):
            diags.add(
                "value error",
                f"{what} names layer instances or model values",
                getattr(it, "span", e.span),
                f"e.g. {e.key} = D or {e.key} = [enc, dec]",
            )
            continue
        if instances is not None and it.id not in instances:
            shown = ", ".join(instances[:12]) + (", ..." if len(instances) > 12 else "")
            diags.add(
                "name error",
                f"{what}: '{it.id}' is no instance or value of the model" + dym_suffix(it.id, instances),
                it.span,
                f"{e.key} names layers of the model: {shown}",
            )
            continue
        if nameable.weighted is not None and it.id not in nameable.weighted:
            assert instances is not None  # weights are known only with the names
            model = instances[0]
            have = [n for n in instances if n in nameable.weighted and n != model]
            shown = ", ".join(have[:12]) + (", ..." if len(have) > 12 else "")
            diags.add(
                "value error",
                f"{what} names {it.id}, which owns no trainable parameters"
                + (" (no layer of the model has any)" if not have else ""),
                it.span,
                f"{it.id} has no weights to {'hold still' if e.key == 'freeze' else 'train'} (an input, an "
                "activation or a pooling, or a block of only those); "
                + (f"names with weights: {shown}" if have else f"drop {e.key}"),
            )
            continue
        got.append((it.id, it.span))
    return tuple(got)


def _keyed(
    entries: Sequence[ast.Entry], keys: Sequence[str], what: str, diags: Diagnostics
) -> dict[str, ast.Entry]:
    """A section's entries by key; unknown and repeated keys are located errors."""
    seen: dict[str, ast.Entry] = {}
    for e in entries:
        if e.key not in keys:
            diags.add(
                "name error",
                f"unknown {what} key '{e.key}'" + dym_suffix(e.key, keys),
                e.key_span,
                f"{what} keys: {', '.join(keys)}",
            )
            continue
        if e.key in seen:
            first = seen[e.key].key_span
            diags.add(
                "name error", f"{what} key '{e.key}' given twice (first at {first})", e.key_span, "keep one"
            )
            continue
        if e.rename is not None and e.key != "data":
            diags.add(
                "value error", f"`as {{...}}` renames data fields; it does not apply to '{e.key}'", e.span
            )
        seen[e.key] = e
    return seen


# Upper bounds of the loop's integers, each with why (a number past it is surely a slip, or would silently wrap)
MAX_BATCH = 2**31 - 1  # XLA's largest axis
MAX_EPOCHS = 1_000_000
MAX_SEED = 2**32 - 1  # JAX keys hold 32 bits of the seed: key(2**32 + 5) is key(5)
_BOUNDS = {  # key: (low, high, high as written in messages, why high)
    "batch": (
        1,
        MAX_BATCH,
        "2**31 - 1",
        "a batch is one axis, and XLA's axes hold at most 2**31 - 1 entries",
    ),
    "epochs": (
        0,
        MAX_EPOCHS,
        "1,000,000",
        "a run of more epochs is surely a slip; stop early with early_stop(...)",
    ),
    "steps": (1, MAX_EPOCHS, "1,000,000", "that many updates of one objective in a row is surely a slip"),
    "seed": (
        0,
        MAX_SEED,
        "2**32 - 1",
        "JAX's random keys hold 32 bits: a larger seed would repeat a smaller one",
    ),
}


def _integer(
    seen: Mapping[str, ast.Entry], key: str, default: int, lets: Mapping[str, ast.Let], diags: Diagnostics
) -> int:
    """The loop integer `key` (batch, epochs, seed) from the section, within its _BOUNDS; located errors."""
    low, high, shown, why = _BOUNDS[key]
    e = seen.get(key)
    if e is None:
        return default
    try:
        v = literal(e.value, lets)
    except _OutOfRange as err:  # seed = 2**70: say the key's own range, not int64's
        from ..frontend.fmt import format_expr

        v = format_expr(_unpipe(e.value))
        diags.add("value error", f"{key} must be an integer from {low} to {shown}, got {v}", err.span, why)
        return default
    except _NotLiteral as err:
        diags.add("value error", f"{key} must be an integer", err.span, f"e.g. {key} = {max(low, 1)}")
        return default
    number = isinstance(v, int | float) and not isinstance(v, bool)
    if not number or not float(v).is_integer() or not low <= v <= high:
        diags.add(
            "value error",
            f"{key} must be an integer "
            + (f"from {low} to {shown}" if number and v > high else f"of at least {low}")
            + f", got {_describe(v)}",
            _unpipe(e.value).span,
            why if number and v > high else f"e.g. {key} = {max(low, 1)}",
        )
        return default
    return int(v)


def _optimizer(
    seen: Mapping[str, ast.Entry], ck: _Checker, where: Span, default: CallSpec | None
) -> CallSpec | None:
    """The section's optimizer (with its `schedule` as the lr), else `default`, else adam(lr=0.001)."""
    _, _, optimizers, schedules = train_tables()
    if "optimizer" in seen:
        e = seen["optimizer"]
        opt = ck.call_of(e.value, "optimizer", optimizers, e.span)
    elif default is not None:
        opt = default
    else:
        opt = ck.call_of(
            ast.Call("adam", (), (ast.Kwarg("lr", ast.Num(1e-3)),)), "optimizer", optimizers, where
        )
    if "schedule" in seen and opt is not None:
        e = seen["schedule"]
        sched = ck.call_of(e.value, "schedule", schedules, e.span)
        opt_call = _unpipe(seen["optimizer"].value) if "optimizer" in seen else None
        if isinstance(opt_call, ast.Call) and (any(k.name == "lr" for k in opt_call.kwargs) or opt_call.args):
            ck.diags.add(
                "value error",
                "the learning rate is given twice: by `schedule` and by the optimizer's lr",
                e.span,
                "drop one; a schedule may also be written as lr=step(0.1, 0.5, 10)",
            )
        elif sched is not None:
            opt = replace(opt, args=tuple((k, sched if k == "lr" else v) for k, v in opt.args))
    if (
        opt is not None
        and opt.name == "sgd"
        and opt.kw.get("nesterov") is True
        and not opt.kw.get("momentum")
    ):
        # optax.sgd(lr, None, nesterov=True) is plain SGD: the option was dropped without a word (PyTorch refuses)
        call = _unpipe(seen["optimizer"].value) if "optimizer" in seen else None
        at = next(
            (k.value.span for k in getattr(call, "kwargs", ()) if k.name == "nesterov"),
            getattr(call, "span", None) or opt.span,
        )
        ck.diags.add(
            "argument error",
            "sgd: nesterov=true needs a momentum; with momentum 0 it would be plain SGD",
            at,
            "give the momentum it accelerates, e.g. sgd(lr=0.1, momentum=0.9, nesterov=true)",
        )
    lr = opt.kw.get("lr") if opt is not None else None
    if isinstance(lr, CallSpec):
        from .optim import check_schedule_args

        problem = check_schedule_args(lr)
        if problem:
            ck.diags.add("value error", problem, lr.span, f"usage: {schedules[lr.name].usage()}")
    return opt


def _objective(
    od: ast.ObjectiveDef,
    ck: _Checker,
    default_opt: CallSpec | None,
    instances: _Nameable,
    names: Sequence[str],
) -> Objective | None:
    """One `objective NAME { loss = ...; optimizer = ...; params = ... }` section, checked."""
    diags = ck.diags
    seen = _keyed(od.entries, OBJECTIVE_KEYS, "objective", diags)
    terms: list[tuple[float, CallSpec]] = []
    if "loss" not in seen:
        diags.add(
            "value error",
            f"objective '{od.name}' needs `loss = ...`",
            od.span,
            "e.g. loss = binary_cross_entropy(d_fake, 1)",
        )
    else:
        terms = _loss_terms(seen["loss"].value, ck, train_tables()[0])
    opt = _optimizer(seen, ck, od.span, default_opt)
    params: tuple[str, ...] | None = None
    spans: tuple[tuple[str, Span], ...] = ()
    if "params" in seen:
        named = _instance_list(seen["params"], f"objective '{od.name}': params", instances, diags)
        params = tuple(n for n, _ in named)
        spans = (("params", getattr(_unpipe(seen["params"].value), "span", seen["params"].span)), *named)
    after: str | None = None
    if "after" in seen:
        e = seen["after"]
        v = _unpipe(e.value)
        others = [n for n in names if n != od.name]
        if (
            not isinstance(v, ast.Name | ast.Str)
            or (v.id if isinstance(v, ast.Name) else v.value) not in others
        ):
            word = v.id if isinstance(v, ast.Name) else v.value if isinstance(v, ast.Str) else ""
            diags.add(
                "name error",
                f"objective '{od.name}': after = {word or '...'} names no other objective"
                + dym_suffix(word, others),
                getattr(v, "span", e.span),
                f"objectives: {', '.join(others)}" if others else "`after` names another objective section",
            )
        else:
            after = v.id if isinstance(v, ast.Name) else v.value
    steps = _integer(seen, "steps", 1, ck.lets, diags)
    epochs = _integer(seen, "epochs", 0, ck.lets, diags) if "epochs" in seen else None
    if opt is None:
        return None
    return Objective(od.name, tuple(terms), opt, params, od.span, steps, after, epochs, spans)


def _check_stage_order(
    objs: Sequence[Objective], defs: Mapping[str, ast.ObjectiveDef], diags: Diagnostics
) -> None:
    """`after` chains must end: `a after b` and `b after a` would never start."""
    after = {o.name: o.after for o in objs if o.after is not None}
    for name in after:
        chain: list[str] = [name]
        cur: str | None = after[name]
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = after.get(cur)
        if cur == name:
            e = next((e for e in defs[name].entries if e.key == "after"), None)
            diags.add(
                "value error",
                f"objective '{name}' runs after itself: {' after '.join([*chain, name])}",
                _unpipe(e.value).span if e is not None else defs[name].span,
                "let one objective of the chain start first (drop its `after`)",
            )


def _check_section(
    spec: Any, graph: Any, overrides: Sequence[str | Override], diags: Diagnostics
) -> tuple[TrainConfig | None, dict[str, Source]]:
    """Check the train and objective sections into `diags`; the config when there is a graph and no problem.

    With `graph` None (the model has errors), what can be checked without types still is: keys, names of
    losses, optimizers, data sets, and of the values the losses read.
    """
    own = Diagnostics()
    try:
        return _check_into(spec, graph, overrides, own)
    finally:  # in the order of the file, after what was found before (the model's problems)
        main = str(spec.program.module.file or spec.program.path)

        def place(d: Any) -> tuple[int, str, int, int]:
            sp = d.span
            if sp is None:
                return (2, "", 0, 0)
            return (0 if sp.file == main else 1, sp.file, sp.line, sp.col)

        for d in sorted(own.items, key=place):
            if d not in diags.items:
                diags.items.append(d)


def _check_into(
    spec: Any, graph: Any, overrides: Sequence[str | Override], diags: Diagnostics
) -> tuple[TrainConfig | None, dict[str, Source]]:
    ovs = [o if isinstance(o, Override) else parse_override(o, i) for i, o in enumerate(overrides)]
    lets_set = [o for o in ovs if sets_let(o, spec.program.lets)]
    program = apply_lets(spec, lets_set).program  # the train section reads the constants too
    sources = dict(program.sources)
    for o in ovs:
        sources[o.source.name] = o.source
    mdef = _model_def(program, graph, getattr(spec, "model", None))
    train = program.trains[0] if program.trains else None
    # `--set teacher.epochs=2`: a key of the objective section of that name (a train key of the name that the
    # train section writes wins: `objective optimizer {...}` beside a train section without an optimizer)
    names = list(program.objectives)
    written = {e.key for e in train.entries} if train else set()
    aimed = [
        o for o in ovs if o.path[0] in names and o.path[0] not in written and not sets_let(o, program.lets)
    ]
    ovs = [o for o in ovs if all(o is not a for a in aimed)]
    entries = _apply_overrides(train.entries if train else (), ovs, diags, program.lets, names)
    objectives = [_set_objective(od, aimed, diags) for od in program.objectives.values()]
    header = mdef.span if mdef is not None else None
    where = train.span if train else objectives[0].span if objectives else header
    set_keys = {
        o.path[-1] if o.path[0] == "train" else o.path[0] for o in ovs if not sets_let(o, spec.program.lets)
    }
    if train is None and not objectives and not {"data", "loss"} <= set_keys:
        diags.add(
            "value error",
            f"{program.module.file or program.path} has no `train` section, so there is nothing to train",
            header,
            f"add one after the model, e.g. `{MINIMAL_TRAIN}`, or give the keys with --set data=... --set loss=...",
        )
        return None, sources
    losses, metrics_t, _, _ = train_tables()
    if graph is not None:
        values: list[str] | None = [k for k, _ in graph.values]
        types = {k: graph.type_of(r) for k, r in graph.values}
        producers = {k: _producer(graph, r.node) for k, r in graph.values}
    else:
        values = _bound_names(mdef) if mdef is not None else None
        types, producers = {}, {}
    ck = _Checker(program.lets, values, diags, types, producers)
    if graph is not None:  # the model's own (`conv(3, 64, 3)`), said with the train section's
        ck.warnings.extend(graph.warnings)
    seen = _keyed(entries, TRAIN_KEYS, "train", diags)
    spans = tuple((k, e.span) for k, e in seen.items())
    batch = _integer(seen, "batch", 32, program.lets, diags)
    epochs = _integer(seen, "epochs", 10, program.lets, diags)
    seed = _integer(seen, "seed", 0, program.lets, diags)
    if batch == 1 and graph is not None and "batch" in seen:
        ck.warnings.extend(_batch_of_one(graph, seen["batch"].span))

    # data
    data = CallSpec("?", (), where or NO_SPAN)
    rename: tuple[tuple[str, str], ...] = ()
    renamed: dict[str, str] = {}
    if "data" not in seen:
        diags.add(
            "value error",
            "the train section needs `data = ...`",
            where,
            "e.g. data = digits(split=0.8); data sets: " + ", ".join(_datasets()),
        )
    else:
        e = seen["data"]
        d = _data_call(e, ck)
        if d is not None:
            data = d
        rename = e.rename or ()
        inputs = [k for k, _ in graph.inputs] if graph is not None else None
        for model_input, field_name in rename:
            if model_input in renamed:  # `as {v: x, v: y}`: the last one won, silently
                diags.add(
                    "name error",
                    f"`as {{...}}` gives input {model_input} two fields: {renamed[model_input]} and {field_name}",
                    e.span,
                    "give each model input one field; is another input meant?",
                )
            renamed.setdefault(model_input, field_name)
            if inputs is not None and model_input not in inputs:
                swapped = field_name in inputs and field_name not in dict(rename)
                diags.add(
                    "name error",
                    f"`as {{{model_input}: ...}}` names no input of the model"
                    + ("" if swapped else dym_suffix(model_input, inputs)),
                    e.span,
                    f"`as {{...}}` maps INPUT: FIELD, the model's input first: write `{field_name}: {model_input}`"
                    if swapped
                    else f"inputs: {', '.join(inputs)}",
                )
        if d is not None and graph is not None:
            _check_data_fields(d.name, graph, renamed, e.span, diags)

    # what to minimise: the train section's loss, or one objective per `objective` section
    objs: list[Objective] = []
    terms = _loss_terms(seen["loss"].value, ck, losses) if "loss" in seen and not objectives else []
    opt = _optimizer(seen, ck, where or NO_SPAN, None)
    if objectives:
        if "loss" in seen:
            diags.add(
                "value error",
                "the train section has a `loss`, and `objective` sections say what to minimise too",
                seen["loss"].key_span,
                f"move the loss into an objective section ({', '.join(o.name for o in objectives)}), or drop it",
            )
        instances = _instances(program, graph, mdef)
        names = [o.name for o in objectives]
        for od in objectives:
            ob = _objective(od, ck, opt if "optimizer" in seen else None, instances, names)
            if ob is not None:
                objs.append(ob)
        _check_stage_order(objs, {od.name: od for od in objectives}, diags)  # as --set left them
    elif "loss" not in seen:
        diags.add(
            "value error",
            "the train section needs `loss = ...`",
            where,
            "e.g. loss = cross_entropy(logits, y)",
        )
    else:
        if opt is not None:
            objs.append(Objective("main", tuple(terms), opt, None, seen["loss"].span))

    epochs_set = next((o for o in reversed(ovs) if o.path in (("epochs",), ("train", "epochs"))), None)
    if epochs_set is not None and objs and all(o.epochs is not None for o in objs):
        own = ", ".join(f"{o.name} {o.epochs}" for o in objs)
        ck.warnings.append(
            Diagnostic(
                WARNING,
                f"this sets the train section's epochs, which no objective runs for: each sets its own ({own})",
                epochs_set.key_span,
                f"set an objective's with --set {objs[0].name}.epochs=N",
            )
        )

    # metrics
    metrics: list[Metric] = []
    if "metrics" in seen:
        e = seen["metrics"]
        items = _unpipe(e.value)
        items_t = items.items if isinstance(items, ast.ListLit | ast.TupleLit) else (items,)
        table = {**metrics_t, **{k: v for k, v in losses.items() if k not in ("l1", "l2")}}
        calls: list[CallSpec] = []
        for it in items_t:
            c = _metric_call(it, ck, table, e.span)
            first = next((d for d in calls if d == c), None)
            if c is not None and first is not None:
                kinds = {a.name: a.kind for a in table[c.name].args} if c.name in table else {"name": "value"}
                read = ", ".join(str(v) for k, v in c.args if kinds[k] == "value")
                options = ", with the same options" if set(kinds.values()) != {"value"} else ""
                diags.add(
                    "value error",
                    f"metrics: {c.name}({read}) is already listed at line {first.span.line}, column "
                    f"{first.span.col}{options}: it would be computed and logged twice",
                    c.span,
                    "drop this one; the same metric of other values or with other options is one of its own, "
                    "named after what differs (accuracy_logits, accuracy_aux; top_k_accuracy_k1, top_k_accuracy_k5)",
                )
            elif c is not None:
                calls.append(c)
        metrics = [Metric(n, c) for n, c in zip(_metric_names(calls, table), calls, strict=True)]

    early = None
    if "early_stop" in seen:
        e = seen["early_stop"]
        early = ck.call_of(e.value, "early_stop", {"early_stop": EARLY_STOP}, e.span)
        if early is not None:
            losses_logged = ["loss"] if len(objs) <= 1 else [f"loss_{o.name}" for o in objs]
            known = [p + k for k in [*losses_logged, *(m.name for m in metrics)] for p in ("", "val_")]
            if early["metric"] not in known:
                diags.add(
                    "name error",
                    f"early_stop: no metric '{early['metric']}'" + dym_suffix(early["metric"], known),
                    _arg_span(e.value, EARLY_STOP, "metric", e.span),
                    f"metrics logged: {', '.join(known)}",
                )
    every, cdir = 0, "checkpoints"
    if "checkpoint" in seen:
        e = seen["checkpoint"]
        c = ck.call_of(e.value, "checkpoint", {"checkpoint": CHECKPOINT}, e.span)
        if c is not None:
            every, cdir = c["every"], c["dir"]
            from .rundir import checkpoint_dir_problem

            problem = checkpoint_dir_problem(cdir)
            if problem:
                diags.add(
                    "value error",
                    f'checkpoint: dir "{cdir}" {problem}; it must be a plain subfolder of the run directory',
                    _arg_span(e.value, CHECKPOINT, "dir", e.span),
                    f'pick a name of your own, e.g. dir="checkpoints" (the run itself writes {problem.split()[-1]})'
                    if problem.startswith("collides")
                    else "give a relative path without '..', e.g. dir=\"checkpoints\"",
                )
    shard = "replicate"
    if "shard" in seen:
        e = seen["shard"]
        v = _unpipe(e.value)
        word = v.id if isinstance(v, ast.Name) else v.value if isinstance(v, ast.Str) else None
        if word not in SHARDINGS:
            shown = word if isinstance(word, str) else "this"
            diags.add(
                "value error",
                f"shard must be one of {', '.join(SHARDINGS)}, got {shown}"
                + (dym_suffix(word, SHARDINGS) if isinstance(word, str) else ""),
                getattr(v, "span", e.span),
                "shard = fsdp splits parameters over the devices; replicate (the default) copies them",
            )
        else:
            shard = word
    freeze: tuple[str, ...] = ()
    if "freeze" in seen:
        freeze = tuple(
            n for n, _ in _instance_list(seen["freeze"], "freeze", _instances(program, graph, mdef), diags)
        )
    if graph is not None and data.name != "?" and isinstance(call := _unpipe(seen["data"].value), ast.Call):
        _one_class_for_a_classifier(data, call, renamed, graph, objs, metrics, diags)
    if diags or graph is None or not objs:
        return None, sources
    if graph.pretrained:
        from .objectives import trained_teachers  # it reads this module's Objective

        ck.warnings.extend(trained_teachers(graph, objs, freeze))
    ck.warnings.extend(unused_inputs(graph, objs, metrics))
    config = TrainConfig(
        spec_path=Path(program.path),
        model=graph.model,
        inputs=_graph_inputs(graph),
        data=data,
        rename=rename,
        objectives=tuple(objs),
        metrics=tuple(metrics),
        batch=batch,
        epochs=epochs,
        seed=seed,
        early_stop=early,
        checkpoint_every=every,
        checkpoint_dir=cdir,
        freeze=freeze,
        shard=shard,
        lets=tuple({o.path[0]: value_text(o) for o in lets_set}.items()),  # the last --set of a name wins
        spans=spans,
        sources=tuple(sources.items()),
        warnings=tuple(ck.warnings),
    )
    # what each objective trains (`params = []`, two objectives training one layer, a `freeze` that leaves one
    # nothing): `specc check` said ok where `specc train` stopped at once
    from ..backend.reroll import layer_keys
    from .objectives import plan_objectives

    try:
        plan_objectives(config, graph, freeze, layer_keys(graph))
    except SpecError as e:
        diags.extend(e)
        return None, sources
    return config, sources


def build_config(spec: Any, graph: Any, overrides: Sequence[str | Override] = ()) -> TrainConfig:
    """Check the spec's train section (with `--set` overrides applied) and return its TrainConfig.

    An override of a `let` constant changes the model: give the spec from `apply_lets` and its graph (else the
    graph is rebuilt here, and the caller's is not the one configured).
    Raises SpecError with every problem found, each located in the spec or on the `--set` line.
    """
    ovs = [o if isinstance(o, Override) else parse_override(o, i) for i, o in enumerate(overrides)]
    with_lets = apply_lets(spec, ovs)
    if with_lets is not spec:  # `let` overrides the caller did not apply: the model is the one they give
        spec, graph = with_lets, with_lets.graph()
    diags = Diagnostics()
    cfg, sources = _check_section(spec, graph, ovs, diags)
    diags.raise_if_any(sources)
    assert cfg is not None  # no problem found, so a config was built
    return cfg


def _metric_names(calls: Sequence[CallSpec], table: Mapping[str, Signature]) -> list[str]:
    """Each metric's name in the logs: its call's name, and where several metrics share it, what tells them apart:
    the values they read that differ (`accuracy(d_real, 1)`, `accuracy(d_fake, 0)`: accuracy_d_real,
    accuracy_d_fake), and where those do not, the other arguments that differ (`top_k_accuracy(z, y, k=1)`,
    `top_k_accuracy(z, y, k=5)`: top_k_accuracy_k1, top_k_accuracy_k5; `mse(a, b, reduction=sum)`: mse_sum)."""
    names: list[str] = []
    for c in calls:
        if c.name == "value":  # a model value's mean: logged under the value's name
            names.append(c["name"])
            continue
        group = [d for d in calls if d.name == c.name]
        kinds = {a.name: a.kind for a in table[c.name].args}
        parts = _differing(c, group, kinds, reads=True)
        if (
            sum(_differing(d, group, kinds, reads=True) == parts for d in group) > 1
        ):  # values alone do not tell
            parts += _differing(c, group, kinds, reads=False)
        base = name = "_".join([c.name, *parts])
        k = 2
        while name in names:  # two that join alike (mse(a_b, c), mse(a, b_c)): numbered
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


# Keys of a metrics.jsonl record that a metric named after a model value must not take.
_RECORD_KEYS = frozenset({"epoch", "loss", "stage", "time", "lr", "step"})


def _metric_call(expr: ast.Expr, ck: _Checker, table: Mapping[str, Signature], span: Span) -> CallSpec | None:
    """One item of `metrics = [...]`: a metric call, or a model value named alone (`metrics = [w_dist]`), whose
    mean over the examples is logged under the value's name (a WGAN's distance estimate, a VAE's KL term)."""
    expr = _unpipe(expr)
    if not isinstance(expr, ast.Name) or expr.id in table or expr.id in ck.lets:
        return ck.call_of(expr, "metric", table, span)
    name = expr.id
    if not ck.has_value(name):
        ck.diags.add(
            "name error",
            f"'{name}' is neither a metric nor a value of the model" + dym_suffix(name, [*table, *ck.values]),
            expr.span,
            f"metrics: {', '.join(table)}; or a model value, logged as its mean",
        )
        return None
    if name in _RECORD_KEYS or name.startswith(("val_", "loss_", "lr_")):
        ck.diags.add(
            "value error",
            f"metrics: the value '{name}' would be logged as '{name}', which metrics.jsonl already uses for "
            + ("the validation figures" if name.startswith("val_") else f"the run's own '{name}'"),
            expr.span,
            f"bind it to another name in the model (e.g. `{name}_value = {name}`) and list that",
        )
    return CallSpec("value", (("name", name),), expr.span)


def _differing(c: CallSpec, group: Sequence[CallSpec], kinds: Mapping[str, str], *, reads: bool) -> list[str]:
    """c's arguments that another call of the group gives otherwise: the values it reads (`logits`), or the rest
    (`k5`, `sum`)."""
    return [
        v if isinstance(v, str) else f"{k}{v}"
        for i, (k, v) in enumerate(c.args)
        if (kinds[k] == "value" and isinstance(v, str)) == reads and any(d.args[i][1] != v for d in group)
    ]


def _datasets() -> list[str]:
    from .data import DATASETS

    return list(DATASETS)


def _check_data_fields(
    name: str, graph: Any, renamed: Mapping[str, str], span: Span, diags: Diagnostics
) -> None:
    """A model input that a data set of fixed fields does not yield (`input t` with `blobs`, which yields x and y)
    is the error loading the data would give, found by `specc check`: it passed check and stopped train. csv and
    npz are left to loading (their fields depend on the file and on `dtype=`)."""
    from .data import DATASETS

    info = DATASETS.get(name)
    if info is None or name in ("csv", "npz") or not info.fields:
        return
    inputs = {k for k, _ in graph.inputs}
    for model_input, nid in graph.inputs:
        node = graph.nodes[nid]
        field = renamed.get(model_input, model_input)
        if "draw" in node.attr:
            if field in info.fields:  # `input x: ... = normal()` copied from a GAN's z: the images never read
                diags.add(
                    "data error",
                    f"input {model_input} is drawn by the trainer, but {name} yields a field '{field}', which "
                    "would never be read",
                    node.span,
                    f"drop the draw to train on the data's {field}, or give the drawn input a name of its own",
                )
            continue
        if field in info.fields or any(v == model_input and k not in inputs for k, v in renamed.items()):
            continue  # present, or `as {x: image}` written FIELD: INPUT, said at the `as` (names no input)
        diags.add(
            "data error",
            f"the data has no field '{field}' for input {model_input}: {node.type}",
            span,
            _rename_hint(name, model_input, field, renamed, info.fields),
        )


def _rename_hint(
    data: str, model_input: str, field: str, renamed: Mapping[str, str], fields: Sequence[str]
) -> str:
    """`as {...}` maps a model input to a field, {INPUT: FIELD}. The sketch's `mnist(path) as {x: image, y: label}`
    names fields that mnist (yielding x, y) does not have: where the input's own name is a field, say so."""
    from .data import _available_hint

    if model_input in renamed and model_input in fields:
        return (
            f"{data} yields '{model_input}' itself, which input {model_input} reads without renaming: drop "
            f"`{model_input}: {field}` from `as {{...}}`, which maps INPUT: FIELD ({data} yields {', '.join(fields)})"
        )
    return f"{_available_hint(field, dict.fromkeys(fields))}; rename with `data = ... as {{...}}`"


def _data_call(e: ast.Entry, ck: _Checker) -> CallSpec | None:
    from .data import DATASETS, DataError, _bind

    expr = _unpipe(e.value)
    if isinstance(expr, ast.Name):
        expr = ast.Call(expr.id, (), (), True, expr.span, expr.span)
    if not isinstance(expr, ast.Call):
        ck.diags.add(
            "value error",
            "data must name a data set, like digits(split=0.8)",
            e.span,
            "data sets: " + ", ".join(DATASETS),
        )
        return None
    info = DATASETS.get(expr.func)
    if info is None:
        ck.diags.add(
            "name error",
            f"unknown data set '{expr.func}'" + dym_suffix(expr.func, DATASETS),
            expr.func_span,
            "data sets: " + ", ".join(DATASETS),
        )
        return None
    names = [k.name for k in expr.kwargs]
    twice = next((k for i, k in enumerate(expr.kwargs) if k.name in names[:i]), None)
    if twice is not None:  # `xor(n=10, n=20)`: the last one won, silently
        ck.diags.add(
            "argument error",
            f"{expr.func}: option '{twice.name}' given twice",
            twice.span,
            f"give it once; usage: {info.signature()}",
        )
        return None
    try:
        args = [_data_literal(a, ck.lets) for a in expr.args]
        kwargs = {k.name: _data_literal(k.value, ck.lets) for k in expr.kwargs}
    except _NotLiteral as err:
        if _report_literal(err, ck.diags):
            return None
        ck.diags.add(
            "argument error",
            f"{expr.func}: arguments must be literals",
            err.span,
            f"usage: {info.signature()}",
        )
        return None
    if _decimal_comma(expr, ck.diags):
        return None
    try:
        _bind(info, args, kwargs)
    except DataError as err:
        n_positional = sum(p.positional for p in info.params)
        extra = expr.args[n_positional].span if len(expr.args) > n_positional else expr.span
        span = next((k.span for k in expr.kwargs if k.name == err.field), extra)
        ck.diags.add("argument error", err.message, span, err.hint)
        return None
    return CallSpec(expr.func, (("*", tuple(args)), *kwargs.items()), expr.span)


def _arg_span(value: ast.Expr, sig: Signature, name: str, default: Span) -> Span:
    """Where the call `value` gives the argument `name` (by keyword or by place); `default` when it does not."""
    call = _unpipe(value)
    if isinstance(call, ast.Call):
        for kw in call.kwargs:
            if kw.name == name:
                return kw.span
        places = [a.name for a in sig.positional]
        if name in places and places.index(name) < len(call.args):
            return call.args[places.index(name)].span
    return default


def _decimal_comma(call: ast.Call, diags: Diagnostics) -> bool:
    """Report `split=0,8` (a decimal written with a comma, read as two arguments); whether there was one."""
    found = ast.decimal_comma(call)
    if found is None:
        return False
    kw, whole, frac = found
    diags.add(
        "argument error",
        f"{call.func}: `{kw.name}={whole.text},{frac.text}` reads as {kw.name}={whole.text} and a second "
        f"argument {frac.text}",
        Span(whole.span.file, whole.span.line, whole.span.col, frac.span.end_line, frac.span.end_col),
        f"write a decimal with a '.': {kw.name}={whole.text}.{frac.text}",
    )
    return True


def _data_literal(expr: ast.Expr, lets: Mapping[str, ast.Let]) -> Any:
    """A data-set argument: a literal, or a bare word as its name (`labels=shuffled`, `dtype=f32`), or a call as
    its text (`augment=[random_crop(pad=4), flip_lr]`); data.py's `_bind` checks what each option accepts."""
    expr = _unpipe(expr)
    if isinstance(expr, ast.Name) and expr.id not in lets and expr.id not in ("none", "None"):
        return expr.id
    if isinstance(expr, ast.ListLit | ast.TupleLit):
        return [_data_literal(i, lets) for i in expr.items]
    if isinstance(expr, ast.Call):
        parts = [repr(literal(a, lets)) for a in expr.args]
        parts += [f"{k.name}={literal(k.value, lets)!r}" for k in expr.kwargs]
        return f"{expr.func}({', '.join(parts)})"
    return literal(expr, lets)


def data_error(config: TrainConfig, err: Exception) -> SpecError:
    """A DataError (from loading or check_fields) located at the `data =` line; one without a hint of its own
    points to the data set's reference (`specc data csv`: its arguments, fields and an example)."""
    from .data import DATASETS

    kind = getattr(err, "kind", "data error")
    name = config.data.name
    hint = getattr(err, "hint", "") or (
        f"`specc data {name}` describes what {name} reads"
        if name in DATASETS
        else "`specc data` lists the data sets"
    )
    return SpecError.one(
        kind, getattr(err, "message", str(err)), config.span("data") or config.data.span, hint
    ).with_sources(dict(config.sources))


def check_train(spec: Any, graph: Any) -> dict[str, Any]:
    """Validate the train section (no JAX); the summary `specc check` shows. Raises SpecError."""
    cfg = build_config(spec, graph)
    return _summary(cfg)


def _summary(cfg: TrainConfig) -> dict[str, Any]:
    return {
        "data": cfg.data.name,
        "loss": [(c, t.name) for c, t in cfg.objectives[0].terms],
        "optimizer": cfg.objectives[0].optimizer.name,
        "objectives": [
            {
                "name": o.name,
                "loss": [(c, t.name) for c, t in o.terms],
                "optimizer": o.optimizer.name,
                "params": list(o.params) if o.params is not None else None,
            }
            for o in cfg.objectives
        ],
        "batch": cfg.batch,
        "epochs": cfg.epochs,
        "metrics": [m.name for m in cfg.metrics],
    }


def _check_other_models(spec: Any, diags: Diagnostics, sources: dict[str, Any]) -> list[dict[str, Any]]:
    """A file checked whole (no `--model`): every model but the default, in file order, as the editor shows them.
    Their summaries are returned, their problems added to `diags` (the train section is not checked against them:
    it trains the default model)."""
    if spec.model is not None:
        return []
    names = list(spec.program.models)[:-1]
    out = []
    for name in names:
        try:
            out.append(spec.check(name))
        except SpecError as e:
            diags.extend(e)
            sources.update(e.sources)
    return out


def _note_other_model(spec: Any, diags: Diagnostics, first: int) -> None:
    """The train section's problems (from `first` on) when `--model` picked a model other than the one it trains
    by default: they may be that choice's, not the section's (a file of a paper-sized model and a small one to
    train)."""
    models = list(spec.program.models)
    if spec.model is None or not models or spec.model == models[-1]:
        return
    note = f"the train section is checked against model {spec.model} (--model); without --model it trains {models[-1]}"
    for i in range(first, len(diags.items)):
        d = diags.items[i]
        if d.kind != WARNING and not d.note:
            diags.items[i] = replace(d, note=note)


def check_spec(spec: Any, overrides: Sequence[str | Override] = ()) -> dict[str, Any]:
    """`specc check`: the model and its train and objective sections in one pass (no JAX).

    Returns the model's summary (with "train" when the spec has a train section, and "other_models" when the spec
    was loaded without a model and its file holds several: each is checked too); raises one SpecError with the
    model's problems and the train section's, in that order (after names defined twice, where the spec was loaded
    with `keep_going`: the first definition of each is checked). With model errors, the train section is still
    checked for what needs no types (keys, names of losses, optimizers, data sets and model values).
    """
    ovs = [o if isinstance(o, Override) else parse_override(o, i) for i, o in enumerate(overrides)]
    check_distinct(ovs, spec.program.lets)
    spec = apply_lets(spec, ovs)
    diags = Diagnostics()
    diags.items.extend(spec.program.problems)  # names defined twice (`load(keep_going=True)`) come first
    sources = dict(spec.program.sources)
    summary: dict[str, Any] | None = None
    graph = None
    others = _check_other_models(spec, diags, sources)
    try:
        summary = spec.check()
        graph = spec.graph()
    except SpecError as e:
        diags.extend(e)
        sources.update(e.sources)
    if summary is not None and others:
        summary["other_models"] = others
    if spec.program.trains or spec.program.objectives or any(not sets_let(o, spec.program.lets) for o in ovs):
        before = len(diags.items)
        cfg, train_sources = _check_section(spec, graph, ovs, diags)
        sources.update(train_sources)
        _note_other_model(spec, diags, before)
        if summary is not None and cfg is not None:
            summary["train"] = _summary(cfg)
            summary["warnings"] = cfg.report_warnings()
    elif summary is not None and graph is not None and graph.warnings:  # no train section: the ops' warnings
        summary["warnings"] = Warnings(graph.warnings, sources)
    diags.raise_if_any(sources)
    assert summary is not None
    # the other models' own warnings (`softmax(axis=0)` in a file's first model), before the default's
    theirs = tuple(w for o in others for w in spec.graph(o["model"]).warnings)
    if theirs:
        mine = summary.get("warnings") or Warnings()
        summary["warnings"] = Warnings(theirs + mine.diagnostics, {**sources, **(mine.sources or {})})
    return summary
