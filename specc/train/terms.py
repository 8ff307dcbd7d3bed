"""Losses and metrics as typed functions of tensors: a signature, a shape rule over TensorTypes, a JAX definition.

The train checker (`spec.py`) binds a call's tensor arguments to the types of the model's values and runs the rule,
so `specc check` proves a loss as it proves an op; the loop evaluates the JAX definition. The registries live in
`losses.py` and `metrics.py`, one `Term` per function. JAX is imported only inside the definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..ir.dims import Dim, fmt_dims
from ..ir.types import TensorType
from .spec import Arg, CallSpec, Signature


@dataclass(frozen=True)
class Number:
    """A number written where a tensor goes (`binary_cross_entropy(d_fake, 1)`): a constant of the other's shape."""

    value: int | float

    def __str__(self) -> str:
        return f"the number {self.value}"


ArgType = TensorType | Number


class TypeIssue(Exception):
    """A rule's verdict: the argument at fault (the error is located there), what is wrong, and the fix."""

    def __init__(self, arg: str, message: str, hint: str = "", kind: str = "type error"):
        super().__init__(message)
        self.arg, self.message, self.hint, self.kind = arg, message, hint, kind


class Bound:
    """A call's arguments as a rule sees them: tensor arguments by their types, the others by value."""

    def __init__(self, sig: Signature, types: Mapping[str, ArgType], names: Mapping[str, str], opts: Any):
        self.sig, self.types, self.names, self.opts = sig, types, names, opts

    def tensor(self, arg: str) -> TensorType:
        t = self.types[arg]
        assert isinstance(t, TensorType)
        return t

    def show(self, arg: str) -> str:
        """`logits 'z' (f32[N, 1])` — the argument, the value the user passed, and its type."""
        t = self.types[arg]
        if isinstance(t, Number):
            return f"{arg} {t.value}"
        return f"{arg} '{self.names[arg]}' ({t})"

    def fail(self, arg: str, message: str, hint: str = "", kind: str = "type error") -> TypeIssue:
        return TypeIssue(arg, f"{self.sig.name}: {message}", hint, kind)


Rule = Callable[[Bound], None]


@dataclass(frozen=True)
class Term:
    """A loss or metric: its signature, its type rule, and `fn(*tensors, **options) -> elementwise array`.

    Penalties (`l1`, `l2`) have no tensor arguments: `fn(params, **options) -> scalar`.
    """

    sig: Signature
    rule: Rule
    fn: Callable[..., Any]
    penalty: bool = False
    target: str = ""  # the tensor argument the loss pulls its prediction toward (labels, targets), if any

    @property
    def tensor_args(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.sig.args if a.kind == "value")

    def check(self, types: Mapping[str, ArgType], names: Mapping[str, str], opts: Any) -> TypeIssue | None:
        """None if the call is well typed, else what is wrong with which argument."""
        try:
            self.rule(Bound(self.sig, types, names, opts))
        except TypeIssue as issue:
            return issue
        return None

    def elementwise(self, call: CallSpec, values: Mapping[str, Any]) -> Any:
        """The unreduced value of `call` on the model's values; numbers become constants of the first shape."""
        import jax.numpy as jnp

        kw = call.kw
        tensors: list[Any] = []
        for a in self.tensor_args:
            v = kw[a.name]
            if isinstance(v, str):
                tensors.append(jnp.asarray(values[v]))
            else:  # a number: broadcast explicitly to the first argument's shape (the rule allowed it)
                first = tensors[0]
                tensors.append(jnp.full(first.shape, v, first.dtype))
        opts = {a.name: kw[a.name] for a in self.sig.args if a.kind != "value" and a.name != "reduction"}
        return self.fn(*tensors, **opts)


# ---- rules ------------------------------------------------------------------------------------------------


def _broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """NumPy's broadcast of two shapes, symbolically; None when they do not broadcast."""
    one = Dim.const(1)
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else one
        y = b[-i] if i <= len(b) else one
        if x == y or y == one:
            out.append(x)
        elif x == one:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def _need_float(b: Bound, arg: str, other: str | None, what: str) -> None:
    t = b.tensor(arg)
    if t.is_float:
        return
    o = b.types.get(other) if other else None
    if other is not None and isinstance(o, TensorType) and o.is_float:
        raise b.fail(
            arg,
            f"arguments swapped? {b.show(arg)} is not float, and {other} come second",
            f"write {b.sig.name}({b.names[other]}, {b.names[arg]}): {what} first, then {other}",
        )
    raise b.fail(
        arg,
        f"{arg} must be float {what}, got {b.show(arg)}",
        f"pass the model's {what} (a float value, e.g. the output of dense)",
    )


def _mismatch_hint(b: Bound, first: str, second: str) -> str:
    """The fix for two shapes that are not equal: squeeze a trailing size-1 axis, or reshape."""
    one = Dim.const(1)
    for big, small in ((first, second), (second, first)):
        tb, ts = b.tensor(big), b.tensor(small)
        if tb.rank == ts.rank + 1 and tb.dims[-1] == one and tb.dims[:-1] == ts.dims:
            name = b.names[big]
            idx = ", ".join([":"] * (tb.rank - 1) + ["0"])
            return (
                f"squeeze the size-1 axis: `{name}[{idx}]` or `{name} -> reshape({fmt_dims(ts.dims)})`, "
                f"or give '{b.names[small]}' the shape {fmt_dims(tb.dims)}"
            )
    return f"reshape one of them (`-> reshape([...])`) so that {first} and {second} have one shape"


def same_shape(first: str, second: str, what: str = "predictions", second_float: bool = False) -> Rule:
    """`first` float; `second` a tensor of exactly its shape (any numeric dtype) or a number."""

    def rule(b: Bound) -> None:
        _need_float(b, first, second, what)
        t = b.types[second]
        if isinstance(t, Number):
            return
        if second_float and not t.is_float:
            raise b.fail(
                second, f"{second} must be float, got {b.show(second)}", "cast it or pass a float value"
            )
        a = b.tensor(first)
        if a.dims != t.dims:
            both = _broadcast(a.dims, t.dims)
            would = (
                f"; elementwise they would broadcast to {fmt_dims(both)}, not pair up example by example"
                if both is not None and both != a.dims
                else ""
            )
            raise b.fail(
                second,
                f"{b.show(first)} and {b.show(second)} must have the same shape{would}",
                _mismatch_hint(b, first, second),
                kind="shape error",
            )

    return rule


def class_scores(
    scores: str,
    labels: str,
    *,
    index: bool = True,
    same: bool = True,
    number: bool = False,
    k_arg: str | None = None,
    binary: bool = False,
) -> Rule:
    """`scores [.., C]` float with a class axis; `labels` int class indices `[..]` (if `index`) or a tensor of the
    scores' shape (if `same`: one-hot or probabilities; with `binary`, also one logit per example against 0/1
    targets); `number`: a number as labels for one logit per example. `k_arg` must not exceed C."""

    def rule(b: Bound) -> None:
        s, lab = b.types[scores], b.types[labels]
        assert isinstance(s, TensorType)
        if isinstance(lab, TensorType):
            swapped = (not s.is_float and lab.is_float) or (
                lab.rank == s.rank + 1 and lab.dims[:-1] == s.dims and lab.is_float and index
            )
            if swapped:
                raise b.fail(
                    scores,
                    f"arguments swapped? {labels} come second: got {b.show(scores)}, {b.show(labels)}",
                    f"write {b.sig.name}({b.names[labels]}, {b.names[scores]}): the scores [.., C], then the "
                    f"{labels}",
                )
        _need_float(b, scores, None, "scores (logits)")
        if s.rank == 0:
            raise b.fail(
                scores,
                f"{scores} need a class axis, got {b.show(scores)}",
                "give the scores one entry per class as their last axis, e.g. `-> dense(10)`",
            )
        c = s.dims[-1]
        one = Dim.const(1)
        if isinstance(lab, Number):
            if number and c == one:
                return
            raise b.fail(
                labels,
                f"{labels} may be a number only for one logit per example ([.., 1]); {b.show(scores)} has "
                f"{c} classes",
                f"pass the {labels} as a model value (an input), e.g. `input y: i32[N]`",
            )
        by_index = index and lab.is_int and lab.rank == s.rank - 1
        if by_index:
            if lab.dims != s.dims[:-1]:
                raise b.fail(
                    labels,
                    f"int {labels} (class indices) must have the {scores}' shape without the class axis, "
                    f"{fmt_dims(s.dims[:-1])}; got {b.show(labels)} for {b.show(scores)}",
                    "reduce or flatten the extra axes of the scores first (e.g. `-> global_avgpool`), or give "
                    f"the {labels} the shape {fmt_dims(s.dims[:-1])}",
                    kind="shape error",
                )
            if c == one:
                raise b.fail(
                    scores,
                    f"{b.show(scores)} has a class axis of size 1: there is one class, so every prediction is class 0",
                    f"for one logit per example use binary targets of the same shape, {fmt_dims(s.dims)} "
                    f"(binary_cross_entropy, or accuracy against 0/1), or squeeze: `{b.names[scores]}"
                    f"[{', '.join([':'] * (s.rank - 1) + ['0'])}]`",
                    kind="shape error",
                )
        elif same and lab.dims == s.dims:
            if c == one and not binary:
                raise b.fail(
                    scores,
                    f"{b.show(scores)} has a class axis of size 1: the softmax over one class is constant",
                    "for one logit per example use binary_cross_entropy(z, t)",
                    kind="shape error",
                )
        elif index and not lab.is_int and lab.rank == s.rank - 1 and lab.dims == s.dims[:-1] and c != one:
            # the shape of class indices, but not ints: a student's `input y: f32[N]` (reshaping cannot help)
            name = b.names[labels]
            raise b.fail(
                labels,
                f"{labels} of the shape {fmt_dims(lab.dims)} are class indices, which must be integers; got "
                f"{b.show(labels)}",
                f"declare them as integers, `input {name}: i32{fmt_dims(lab.dims)}`, or convert: "
                f"`{name} -> cast(i32)`",
                kind="type error",
            )
        else:
            want = []
            if index:
                want.append(f"int class indices of shape {fmt_dims(s.dims[:-1])}")
            if same:
                want.append(f"a tensor of the {scores}' shape {fmt_dims(s.dims)}")
            is_int = lab.is_int and index
            raise b.fail(
                labels,
                f"{labels} must be {' or '.join(want)}; got {b.show(labels)} for {b.show(scores)}",
                _mismatch_hint(b, scores, labels)
                if same and not is_int and lab.rank == s.rank - 1
                else "reduce or flatten the extra axes (e.g. `-> global_avgpool` or `-> flatten`), or reshape "
                "so that the scores end in the class axis and the labels match the rest",
                kind="shape error",
            )
        if k_arg is not None:
            k = b.opts[k_arg]
            if k < 1 or (c.is_const and k > c.value):
                raise b.fail(
                    k_arg,
                    f"{k_arg}={k} must be between 1 and the number of classes, {c}",
                    f"choose {k_arg} ≤ {c}",
                    kind="value error",
                )

    return rule


def positive(arg: str, rule: Rule, *, upto: float | None = None, zero: bool = False) -> Rule:
    """`rule`, and the option `arg` > 0 (≥ 0 with `zero`; ≤ `upto` when given)."""

    def checked(b: Bound) -> None:
        rule(b)
        v = b.opts[arg]
        if v < 0 or (v == 0 and not zero) or (upto is not None and v > upto):
            low = "≥ 0" if zero else "> 0"
            raise b.fail(
                arg,
                f"{arg} must be {low}{f' and ≤ {upto}' if upto is not None else ''}, got {v}",
                f"e.g. {arg}={0.1 if upto is not None else 1.0}",
                kind="value error",
            )

    return checked


def no_tensors(b: Bound) -> None:
    """Penalties read parameters, not values: nothing to check."""


def float_value(b: Bound) -> None:
    """A bare model value as a loss term: its mean, so it must be float."""
    t = b.types["value"]
    if isinstance(t, TensorType) and not t.is_float:
        raise b.fail(
            "value", f"a loss term must be float, got '{b.names['value']}' ({t})", "use a float value"
        )
