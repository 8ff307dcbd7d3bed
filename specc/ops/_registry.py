"""The op registry: each op defined once — signature, shape/dtype rule, parameter and FLOP counts, lowerings, DOT look.

Op modules (one per family) call `register(OpDef(...))` at import time. Nothing here imports JAX: lowerings are
plain functions that receive the JAX/Flax modules from the back end when it calls them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import counted, did_you_mean, takes_positional
from ..ir.dims import Dim, DimError, fmt_dims, integral, product
from ..ir.graph import Fn, Node, Ref
from ..ir.types import TensorType
from ._foreign import arg_hint, init_hint

REQUIRED: Any = object()  # marks an argument without a default


class OpError(Exception):
    """A shape/type/argument problem found by an op's rule; the caller attaches the span.

    Args:
        kind: "shape error", "type error", "argument error" or "value error".
        arg: the argument it is about (its span is used when the user wrote it), or None for the whole call.
    """

    def __init__(self, kind: str, message: str, hint: str = "", arg: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.arg = arg


@dataclass(frozen=True)
class Arg:
    """One non-tensor argument of an op.

    kind: int | float | number (int or float, kept as given) | bool | str | enum | window (int or tuple) | padding |
        axis | axes | init | bias_init (no fan-in initialisers) | dims | ints | parts (an int or a list of sizes) |
        index (subscript items) | dtype | any
    """

    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    min: int | float | None = None
    doc: str = ""


@dataclass(frozen=True)
class Inferred:
    """What an op's rule computes for one call."""

    outputs: tuple[TensorType, ...]
    params: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    state: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    flops: Dim = field(default_factory=lambda: Dim.const(0))
    # valid, but almost surely not what its author meant (`conv(3, 64, 3)`: PyTorch's argument order): reported
    # as located warnings, each an OpError of kind "warning" whose `arg` says where
    warnings: tuple[OpError, ...] = ()


@dataclass(frozen=True)
class Lowering:
    """One way to run an op under JAX. The first lowering of an op is the reference one.

    Args:
        name: e.g. "reference", "im2col".
        build: (attrs, input types, ctx) → the nnx.Module holding the op's parameters/state/RNG (or None: owns
            nothing). `ctx` (backend.flax.BuildContext) gives ctx.nnx / ctx.jax / ctx.jnp, ctx.rngs and
            ctx.init(fn, default) for `init=` attributes. None here: the reference lowering's build is used.
        apply: (module_or_None, attrs, inputs, ctx) → output array or tuple of arrays; `ctx`
            (backend.flax.ApplyContext) gives the libraries, the node, and ctx.shape(type) with free sizes bound.
        when: optional precondition (attrs, input types, platform) → bool. The first later lowering whose `when`
            holds is used, else the reference (which must have no `when`).
        applies: (attrs, input types) → bool: the lowering computes the op for these on any platform, whatever
            the rule (`when`) would choose; `--lowering measure` times the reference against every alternative
            that applies (backend/tuning.py). None: never measured (export-only forms).
        forward: the precondition in a program that runs the model forward only (validation, `specc evaluate`,
            `predict`), like `when`; None: `when`'s. A form chosen for its gradients (im2col, whose patches its
            weight gradient reuses) can lose to the reference there, and costs its compilation in that program too.
    """

    name: str
    apply: Callable[..., Any]
    build: Callable[..., Any] | None = None
    when: Callable[..., bool] | None = None
    applies: Callable[..., bool] | None = None
    forward: Callable[..., bool] | None = None


def never(a: dict[str, Any], types: tuple[Any, ...], platform: str) -> bool:
    """A precondition that holds nowhere: e.g. `Lowering.forward` for a form chosen only for its gradients."""
    return False


@dataclass(frozen=True)
class OpDef:
    """One op.

    Args:
        name: what users write.
        family: the registry module it lives in (linear, conv, ...).
        tensors: how many tensor inputs: an int, or (min, max) with max None for "any number".
        tensor_names: what the tensor inputs are, for the reference's signature (`attention(x, [memory], ...)`);
            empty: x, y, z.
        args: the other arguments, positional order = declaration order.
        infer: (OpCall) → Inferred: the shape/dtype rule, parameter shapes and FLOPs.
        lowerings: JAX/Flax implementations, reference first.
        label: (attrs) → the short text a DOT node shows (`conv 32@5×5 /2`); default: the op name.
        doc: one line for `specc ops` and the docs.
        reruns: for an op whose lowering runs part of the graph again (`grad(y, x)` differentiates the path from
            x to y): its inputs → (x, y), the ends of that path. Its rule reads the graph (it gets OpCall.graph,
            and two calls on the same types are not assumed alike); the path is never rolled into a scan.
    """

    name: str
    family: str
    tensors: int | tuple[int, int | None]
    args: tuple[Arg, ...]
    infer: Callable[[OpCall], Inferred]
    tensor_names: tuple[str, ...] = ()
    lowerings: tuple[Lowering, ...] = ()
    label: Callable[[Mapping[str, Any]], str] | None = None
    doc: str = ""
    reruns: Callable[[Sequence[Ref]], tuple[Ref, Ref]] | None = None

    @property
    def tensor_range(self) -> tuple[int, int | None]:
        return (self.tensors, self.tensors) if isinstance(self.tensors, int) else self.tensors

    @functools.cached_property
    def _args_by_name(self) -> dict[str, Arg]:
        return {a.name: a for a in self.args}

    def arg(self, name: str) -> Arg | None:
        return self._args_by_name.get(name)

    def dot_label(self, attrs: Mapping[str, Any], tensors: int = 1) -> str:
        """The op's text in a drawing; the optional tensors a call gives are named after it (`attention ×4
        (memory)`, `lstm 128 (h0, c0)`), so a cross-attention reads apart from a self-attention."""
        text = self.label(attrs) if self.label else self.name
        extra = self.tensor_names[self.tensor_range[0] : tensors]
        return f"{text} ({', '.join(extra)})" if extra else text


@dataclass(frozen=True)
class GraphView:
    """Where a call's inputs come from, for the rules of ops that read the graph (OpDef.reruns).

    Args:
        nodes: the graph's nodes before the call, in topological order (node i at index i).
        refs: the call's tensor inputs, one Ref each, in the order of OpCall.inputs.
    """

    nodes: Sequence[Node]
    refs: tuple[Ref, ...]


@dataclass
class OpCall:
    """The view an op's rule gets of one call: its attributes and input types, and ways to fail.

    graph: where the inputs come from, given to ops that read the graph; None where there is no graph (the
    reference's examples), and the rule then checks types only.
    """

    op: OpDef
    attrs: dict[str, Any]
    inputs: tuple[TensorType, ...]
    graph: GraphView | None = None

    def __getitem__(self, name: str) -> Any:
        return self.attrs[name]

    @property
    def x(self) -> TensorType:
        return self.inputs[0]

    def fail(
        self, message: str, hint: str = "", arg: str | None = None, kind: str = "shape error"
    ) -> OpError:
        return OpError(kind, message, hint, arg)

    def need_rank(self, lo: int, hi: int | None = None, what: str = "", hint: str = "") -> None:
        hi = lo if hi is None else hi
        r = self.x.rank
        if not lo <= r <= hi:
            want = f"rank {lo}" if lo == hi else f"rank {lo} to {hi}"
            raise self.fail(f"{self.op.name} expects a {want} input{what}, got {self.x}", hint)

    def need_float(self, i: int = 0) -> None:
        t = self.inputs[i]
        if not t.is_float:
            hint = (
                "integer labels are not features; convert with `-> cast(f32)` or embed them with `embed(...)`"
                if t.is_int
                else "convert with `-> cast(f32)`"
            )
            raise self.fail(f"{self.op.name} expects a float input, got {t}", hint, kind="type error")

    def known(self, d: Dim, what: str) -> int:
        """A dim that parameters depend on must be a number, not a symbol."""
        v = d.as_int()
        if v is None:
            raise self.fail(
                f"{self.op.name} needs {what} to be a known number to size its parameters, got {d} in {self.x}",
                "declare that axis with a number in the input's type",
            )
        if v == 0:  # parameters over an empty axis: the initialisers divide by the fan-in
            raise self.fail(
                f"{self.op.name} needs {what} to hold at least one element, got size 0 in {self.x}",
                "an axis of size 0 holds no values to compute with",
            )
        return v

    def axis(self, name: str = "axis", rank: int | None = None) -> int:
        r = self.x.rank if rank is None else rank
        a = self.attrs[name]
        if not -r <= a < r:
            raise self.fail(
                f"axis {a} is out of range for {self.x} (rank {r}: axes {-r}..{r - 1})",
                "axes count from 0 (the batch) up, or from -1 (the last axis) down",
                arg=name,
            )
        return a % r

    def dim_or_fail(self, f: Callable[[], Dim], hint: str = "") -> Dim:
        try:
            return f()
        except DimError as e:
            raise self.fail(str(e), hint) from None


REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise RuntimeError(f"op {op.name!r} is defined twice ({REGISTRY[op.name].family} and {op.family})")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> OpDef | None:
    _load_all()
    return REGISTRY.get(name)


def all_ops() -> Mapping[str, OpDef]:
    _load_all()
    return REGISTRY


_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import _families  # noqa: F401  (registers every op)


# ---- argument binding ------------------------------------------------------------------------------

INITIALIZERS: dict[str, tuple[str, ...]] = {
    "glorot_uniform": (),
    "glorot_normal": (),
    "xavier_uniform": (),
    "xavier_normal": (),
    "he_normal": (),
    "he_uniform": (),
    "lecun_normal": (),
    "lecun_uniform": (),
    "normal": ("std",),
    "truncated_normal": ("std",),
    "uniform": ("scale",),
    "zeros": (),
    "ones": (),
    "constant": ("value",),
    "orthogonal": (),
}


# these scale by the fan-in and fan-out of a weight matrix: they cannot initialise a bias vector
FAN_INITIALIZERS = frozenset(
    {
        "glorot_uniform",
        "glorot_normal",
        "xavier_uniform",
        "xavier_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "orthogonal",
    }
)


def bind_args(
    op: OpDef, positional: Sequence[Any], keyword: Mapping[str, Any]
) -> tuple[dict[str, Any], list[OpError]]:
    """Match values to the op's arguments, fill defaults and convert each to its kind; errors name the argument."""
    errors: list[OpError] = []
    attrs: dict[str, Any] = {}
    meant: set[str] = set()  # the arguments that misspelt keywords stand for
    if len(positional) > len(op.args):
        lo, hi = op.tensor_range
        inputs = "its input" if lo == hi == 1 else "its tensor inputs"
        if op.args:
            hint = ""  # the op's signature (the builder's hint for an error that brings none)
        elif lo == hi == 1:
            hint = f"write {op.name}: `x -> {op.name}` or `{op.name}(x)`"
        else:
            hint = f"give only the tensors: `{op.name}(a, b)`"
        errors.append(
            OpError(
                "argument error",
                takes_positional(op.name, [a.name for a in op.args], len(positional), besides=inputs),
                hint,
                None,
            )
        )
    for a, v in zip(op.args, positional, strict=False):
        attrs[a.name] = v
    for k, v in keyword.items():
        if op.arg(k) is None:
            valid = ", ".join(x.name for x in op.args) or "none"
            ours, advice = arg_hint(op, k)
            dym = f"did you mean '{ours}'?" if ours else did_you_mean(k, [x.name for x in op.args])
            if m := re.search(r"'(\w+)'", dym):
                meant.add(m.group(1))  # `kernal_size=3` is the kernel: not missing as well
            errors.append(
                OpError(
                    "argument error",
                    f"{op.name} has no parameter '{k}'" + (f"; {dym}" if dym else ""),
                    (f"{advice}; " if advice else "") + f"{op.name}'s parameters are: {valid}",
                    k,
                )
            )
            continue
        if k in attrs:
            errors.append(
                OpError(
                    "argument error",
                    f"{op.name} got '{k}' twice (by position and by name)",
                    "give it once, by position or by name",
                    k,
                )
            )
        attrs[k] = v
    out: dict[str, Any] = {}
    for a in op.args:
        if a.name not in attrs:
            if a.default is REQUIRED and a.name not in meant:
                sig = ", ".join(x.name if x.default is REQUIRED else f"{x.name}=..." for x in op.args)
                errors.append(
                    OpError(
                        "argument error",
                        f"{op.name} is missing its argument '{a.name}'",
                        f"call it as {op.name}({sig})",
                        None,
                    )
                )
                continue
            if a.default is not REQUIRED:
                out[a.name] = a.default
            continue
        try:
            out[a.name] = convert_arg(a, attrs[a.name], op.name)
        except OpError as e:
            errors.append(e)
    if out.get("bias") is False and out.get("bias_init") is not None and "bias_init" in attrs:
        errors.append(  # one of the two is a slip, and specc cannot tell which: say so rather than drop one
            OpError(
                "argument error",
                f"{op.name} has bias=false, so there is no bias for bias_init to initialise",
                "drop bias_init, or bias=false",
                "bias_init",
            )
        )
    return out, errors


def _is_activation(v: Any) -> bool:
    w = _is_word(v)
    op = REGISTRY.get(w) if w else None
    return op is not None and op.family == "activation"


def _is_word(v: Any) -> str | None:
    """A bare name the evaluator could not bind is a one-symbol Dim; enum arguments read it as a word."""
    if isinstance(v, str):
        return v
    if isinstance(v, Dim):
        return v.as_symbol()
    return None


def _intlike(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _known_sizes(v: Any) -> Any:
    """A size known at check time (a block input's C bound to 32, `4 * C`) is an ordinary integer argument."""
    if isinstance(v, Dim) and v.is_const:
        return v.value
    if isinstance(v, tuple | list) and any(isinstance(x, Dim) and x.is_const for x in v):
        return type(v)(_known_sizes(x) for x in v)
    return v


def convert_arg(a: Arg, v: Any, opname: str) -> Any:
    def bad(want: str, hint: str = "") -> OpError:
        if not hint and isinstance(v, str) and a.kind not in ("str", "enum", "padding", "init", "dtype"):
            hint = (
                f"write the value without quotes, like {a.name}={v}"
                if v.strip()
                else f"give {a.name} a value"
            )
        elif not hint and _is_activation(v) and a.kind not in ("str", "enum"):
            # Keras's Dense(10, "relu") or Conv2D(32, 3, activation="relu") written as dense(10, relu)
            hint = f"an activation is a stage of its own: write {opname}(...) -> {_is_word(v)}"
        elif not hint and a.kind == "bool":
            hint = f"write {a.name}=true or {a.name}=false"
        return OpError(
            "argument error",
            f"{opname}'s '{a.name}' must be {want}, got {describe(v)}",
            hint or example_hint(a, opname),
            a.name,
        )

    k = a.kind
    v = _known_sizes(v)
    if k == "any":
        return v
    if k == "int":
        v = integral(v)
        if not _intlike(v):
            raise bad("an integer")
        if a.min is not None and v < a.min:
            raise bad(f"at least {a.min}")
        return v
    if k == "float":
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad("a number")
        if a.min is not None and v < a.min:
            raise bad(f"at least {a.min}")
        return float(v)
    if k == "bool":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if k == "str":
        w = _is_word(v)
        if w is None:
            raise bad("a string")
        return w
    if k == "enum":
        w = _is_word(v)
        if w is None or w not in a.choices:
            dym = did_you_mean(w, a.choices) if w else ""
            raise bad("one of " + ", ".join(a.choices), dym)
        return w
    if k == "window":
        if _intlike(v) and v >= 1:
            return v
        if isinstance(v, tuple | list) and v and all(_intlike(x) and x >= 1 for x in v):
            return tuple(v)
        raise bad("a positive integer or a tuple of them, like 3 or (3, 3)")
    if k == "padding":
        w = _is_word(v)
        if w is not None:
            if w.lower() in ("valid", "same", "full", "causal"):
                return w.lower()
            raise bad("valid, same, an integer or [(lo, hi), ...]", did_you_mean(w, ["valid", "same"]))
        if _intlike(v) and v >= 0:
            return v
        if isinstance(v, tuple | list) and all(_intlike(x) and x >= 0 for x in v):
            return tuple(v)
        if isinstance(v, tuple | list) and all(
            isinstance(p, tuple | list) and len(p) == 2 and all(_intlike(x) and x >= 0 for x in p) for p in v
        ):
            return tuple(tuple(p) for p in v)
        raise bad("valid, same, an integer or [(lo, hi), ...]")
    if k == "axis":
        if not _intlike(v):
            raise bad("an integer axis")
        return v
    if k == "axes":
        if v is None or _intlike(v):
            return v
        if isinstance(v, tuple | list) and all(_intlike(x) for x in v):
            return tuple(v)
        raise bad("an axis or a list of axes")
    if k == "ints":
        if _intlike(v):
            return (v,)
        if isinstance(v, tuple | list) and all(_intlike(x) for x in v):
            return tuple(v)
        raise bad("a list of integers")
    if k == "number":
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad("a number", "a tensor combines with another tensor or with one number: x * 2")
        return v
    if k == "parts":
        if _intlike(v) and v >= 1:
            return v
        if isinstance(v, tuple | list) and v and all(_intlike(x) and x >= 1 for x in v):
            return tuple(v)
        raise bad(
            "a number of equal parts or a list of positive sizes",
            "split(2) cuts the axis into 2 equal parts; split([4, 12]) into parts of sizes 4 and 12",
        )
    if k == "index":
        if isinstance(v, tuple) and all(_index_item(x) for x in v):
            return v
        raise bad("a subscript", "write the subscript after the tensor: x[0, 1:3]")
    if k == "dims":
        if isinstance(v, tuple | list) and all(_intlike(x) or isinstance(x, Dim) for x in v):
            return tuple(x if isinstance(x, Dim) or x == -1 else Dim.const(x) for x in v)
        raise bad("a list of sizes like [N, 7*7*64]")
    if k == "init":
        return convert_init(v, lambda want, hint="": bad(want, hint))
    if k == "bias_init":
        fn = convert_init(v, lambda want, hint="": bad(want, hint))
        if fn.name in FAN_INITIALIZERS:
            vector = ", ".join(x for x in INITIALIZERS if x not in FAN_INITIALIZERS)
            raise bad(
                f"an initializer for a vector ({vector})", f"{fn.name} scales by a weight matrix's fan-in"
            )
        return fn
    if k == "dtype":
        from ..ir.types import DTYPES

        w = _is_word(v)
        if w not in DTYPES:
            raise bad("a dtype: " + ", ".join(DTYPES), did_you_mean(w or "", DTYPES))
        return w
    raise AssertionError(f"unknown argument kind {k}")


def example_hint(a: Arg, opname: str) -> str:
    """The hint of an argument error that has none of its own: a valid value of the argument's kind, written out
    (`dropout(rate=true)`: `for example rate=0.5`), and where the op's arguments are described."""
    d = a.default
    low = a.min if a.min is not None else 0
    samples = {
        "int": str(d if _intlike(d) else max(low, 16) if a.min is not None and a.min >= 1 else max(low, 1)),
        "float": str(d if isinstance(d, float) and d > 0 else 0.5 if low <= 0.5 else low),
        "window": f"2 or {a.name}=(2, 2), one size per spatial axis",
        "padding": f"1 (on both sides of every spatial axis) or {a.name}=[(1, 0), (1, 0)] (low and high, per "
        "spatial axis)",
        "axis": "-1 (the last axis; axes count from 0, the batch, or from -1 down)",
        "axes": "1 or axis=(1, 2)",
        "ints": "[0, 2, 1]",
        "init": "he_normal or init=normal(0.02)",
        "bias_init": "zeros or bias_init=constant(0.1)",
        "dtype": "f32",
        "str": "a_name",
        "dims": "[N, 7*7*64] (the batch axis included)",
    }
    if a.kind == "enum" and a.choices:
        sample = str(d) if d in a.choices else a.choices[0]
    else:
        sample = samples.get(a.kind, "")
    where = f"`specc ops {opname}` describes its arguments"
    return f"for example {a.name}={sample}; {where}" if sample else where


def _index_item(it: Any) -> bool:
    """One item of `index`'s items, as the builder makes them from a subscript: ("i", k), ("s", lo, hi, step), ("e",)
    for `...`, ("n",) for `None` (a new axis)."""
    if not isinstance(it, tuple) or not it:
        return False
    if it[0] == "i":
        return len(it) == 2 and _intlike(it[1])
    if it[0] == "s":
        return len(it) == 4 and all(x is None or _intlike(x) for x in it[1:])
    return it in (("e",), ("n",))


def convert_init(v: Any, bad: Callable[..., OpError]) -> Fn:
    w = _is_word(v)
    fn = Fn(w) if w is not None else v
    if not isinstance(fn, Fn) or fn.name not in INITIALIZERS:
        name = fn.name if isinstance(fn, Fn) else ""
        raise bad(
            "an initializer: " + ", ".join(INITIALIZERS), init_hint(name) or did_you_mean(name, INITIALIZERS)
        )
    want = INITIALIZERS[fn.name]
    if len(fn.args) + len(fn.kwargs) > len(want) or any(k not in want for k, _ in fn.kwargs):
        raise bad(f"{fn.name}({', '.join(want)})")
    if any(
        not isinstance(x, int | float) or isinstance(x, bool) for x in (*fn.args, *(v for _, v in fn.kwargs))
    ):
        raise bad(f"{fn.name}({', '.join(want)}) with numbers")
    # a spread below 0 is a slip (JAX would draw std·N(0, 1) with the sign flipped, or an upside-down range)
    given = {**dict(zip(want, fn.args, strict=False)), **dict(fn.kwargs)}
    for k in ("std", "scale"):
        if k in given and given[k] < 0:
            raise bad(
                f"{fn.name}({k}) with {k} ≥ 0",
                f"{fn.name}'s {k} is a spread, never negative: write {fn.name}({-given[k]:g})",
            )
    return fn


def describe(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Dim):
        return f"'{v}'" if _is_word(v) is None else f"the name '{v}'"
    if isinstance(v, tuple):
        return "(" + ", ".join(describe(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(describe(x) for x in v) + "]"
    if isinstance(v, TensorType):
        return f"a tensor {v}"
    # the elaborator's tensor values (a name bound to a tensor)
    if isinstance(getattr(v, "type", None), TensorType):
        return f"a tensor {v.type}"
    return str(v)


# ---- helpers shared by op rules --------------------------------------------------------------------


def call_layer(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """The `apply` of an op whose built Flax layer does the whole op: call it on the one input."""
    return m(xs[0])


def half_dtype(t: TensorType, ctx: Any) -> dict[str, Any]:
    """`dtype=` for a Flax layer fed f16/bf16 (empty otherwise): Flax's default promotes such an input with its f32
    parameters to f32, while the shape rules (like PyTorch's layers) keep the input's dtype."""
    from ..ir.types import JNP_NAMES

    return {"dtype": ctx.jnp.dtype(JNP_NAMES[t.dtype])} if t.dtype in ("f16", "bf16") else {}


def per_axis(v: int | tuple[int, ...], n: int, what: str, call: OpCall, arg: str) -> tuple[int, ...]:
    """Broadcast a window/stride/dilation given as one int to n spatial axes."""
    if isinstance(v, int):
        return (v,) * n
    if len(v) != n:
        raise call.fail(
            f"{call.op.name}'s '{arg}' has {counted(len(v), 'value')} but the input has "
            f"{counted(n, 'spatial axis', 'spatial axes')} ({call.x})",
            per_axis_hint(arg, v, n),
            arg=arg,
        )
    return v


def per_axis_hint(arg: str, values: Sequence[Any], n: int) -> str:
    """How to give `arg` for n spatial axes; a padding of 2n values reads as (lo, hi) per axis, written as pairs."""
    if arg == "padding" and len(values) == 2 * n and all(isinstance(v, int) for v in values):
        pairs = ", ".join(f"({values[2 * i]}, {values[2 * i + 1]})" for i in range(n))
        return f"to pad the two sides of an axis differently, give a (lo, hi) pair per axis: {arg}=[{pairs}]"
    if n == 1:
        return f"give one value: {arg}={values[0]}"
    return f"give {n} values, one per spatial axis, or one value to use for every axis"


def numel(dims: Sequence[Dim]) -> Dim:
    return product(dims)


def shape_str(dims: Sequence[Dim]) -> str:
    return fmt_dims(dims)
