"""AST → IR: expands blocks and `repeat`, evaluates constants, binds op arguments and types every node.

Shape and dtype rules come from the op registry; this module only walks the program, keeps names and
block scopes, and turns every problem into a located Diagnostic. After an error the value becomes POISON,
so one mistake is reported once and the rest of the model is still checked.
"""

from __future__ import annotations

import gc
import operator
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import WARNING, Diagnostic, Diagnostics, SpecError, did_you_mean, dym_suffix
from ..frontend import ast
from ..frontend.load import Program
from ..frontend.parse import in_number_range, power, value_range_error
from ..ops._foreign import op_hint
from ..ops._registry import (
    GraphView,
    Inferred,
    OpCall,
    OpDef,
    OpError,
    bind_args,
    convert_init,
    describe,
    get_op,
)
from ..ops.elementwise import OPERATORS
from ..source import Span
from .dims import MAX_DIM, Dim, DimError, fmt_dims
from .graph import Fn, Graph, Node, Ref, Scope
from .types import DTYPES, TensorType

# The largest graph specc builds (about half a minute of checking); a bigger one is surely a slip such as
# repeat(1000000000, ...) and is refused before it is expanded. docs/language.md states it.
MAX_NODES = 1_000_000
MAX_BLOCK_DEPTH = 64
# what a drawn input (`input z: f32[N, 64] = normal()`) may be sampled from, and the argument names in order
DRAWS = {"normal": ("mean", "std"), "uniform": ("low", "high")}
MAX_LET_DEPTH = 100


class _Poison:
    def __repr__(self) -> str:
        return "POISON"


POISON: Any = _Poison()  # the value of anything whose computation failed; never reported twice

# + - * act alike on numbers and on sizes (Dim); / and ** differ and are handled one by one
_RING_OPS: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@dataclass(frozen=True)
class TVal:
    """A tensor value during elaboration."""

    ref: Ref
    type: TensorType


@dataclass
class _Instance:
    """A named layer instance (`D = Discriminator()`, `enc = dense(64)`): one set of parameters, applied wherever
    its name stands as a stage. `owners` are the first application's nodes that own parameters or state."""

    name: str
    call: ast.Call
    env: _Env
    block: ast.BlockDef | None
    uses: int = 0
    owners: list[Node] | None = None
    first_input: str = ""

    def __repr__(self) -> str:  # how messages show it (`describe`): never the dataclass's fields
        from ..frontend.fmt import format_expr

        return f"the layer instance '{self.name}' (`{self.name} = {format_expr(self.call)}`)"


@dataclass
class _Env:
    """Names visible in one model or block instance; constants fall back to the file's `let`s."""

    values: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)
    symbols: dict[str, Dim] = field(default_factory=dict)  # block input patterns bind these per instance
    default_init: Fn | None = None
    prefix: str = ""
    scope: tuple[Scope, ...] = ()
    block: ast.BlockDef | None = None


class _Limit(Exception):
    pass


class GraphBuilder:
    """Builds the Graph of one model; collects every Diagnostic instead of stopping at the first."""

    def __init__(self, program: Program):
        self.program = program
        self.diags = Diagnostics()
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.instances: dict[str, int] = {}
        self.lets: dict[str, Any] = {}
        self.let_state: dict[str, str] = {}
        self.let_chain: list[str] = []  # the constants being evaluated, outermost first: a cycle's path
        self.block_stack: list[str] = []
        self.memo: dict[Any, tuple[tuple[tuple[str, Any], ...], Inferred]] = {}
        self.warnings: dict[tuple[Any, str], Diagnostic] = {}  # the ops' warnings, by (span, message)
        self.prefixes: set[str] = set()
        self.next_suffix: dict[str, int] = {}
        self.let_depth = 0
        self.pretrained: list[tuple[str, str, Span]] = []

    # ---- entry -----------------------------------------------------------------------------------

    def build(self, model: ast.ModelDef) -> Graph:
        env = _Env()
        inputs: list[tuple[str, int]] = []
        outputs: list[tuple[str, Ref]] = []
        try:
            self._body(model.body, env, inputs, outputs, actual_inputs=None, where=f"model {model.name}")
        except _Limit:
            self.diags.add(
                "value error",
                f"the model expands to more than {MAX_NODES:,} nodes, the most a model may have",
                model.span,
                "lower the repeat counts or the number of block calls",
            )
        if not outputs and not self.diags:
            self.diags.add(
                "name error",
                f"model {model.name} has no `output` statement",
                model.span,
                "add `output NAME` with the value(s) the model returns",
            )
        # the constants the model does not use too: `let a = a + 1` is an error anyway
        for name in self.program.lets:
            self._let(name)
        self.diags.raise_if_any(self.program.sources)
        values = [(k, v.ref) for k, v in env.values.items() if isinstance(v, TVal)]
        return Graph(
            model.name,
            tuple(self.nodes),
            tuple(inputs),
            tuple(outputs),
            tuple(values),
            model.span,
            tuple(self.pretrained),
            tuple(self.warnings.values()),
        )

    # ---- statements ------------------------------------------------------------------------------

    def _body(
        self,
        body: tuple[ast.Stmt, ...],
        env: _Env,
        inputs: list[tuple[str, int]],
        outputs: list[tuple[str, Ref]],
        actual_inputs: list[Any] | None,
        where: str,
    ) -> list[Any]:
        """Run the statements of a model (actual_inputs None) or of a block instance; returns its outputs."""
        in_decls = [s for s in body if isinstance(s, ast.InputDecl)]
        if actual_inputs is not None and len(in_decls) != len(actual_inputs):
            raise _CallError(
                f"{where} takes {len(in_decls)} tensor input(s), got {len(actual_inputs)}",
                "declare one `input NAME` per tensor the block receives",
            )
        n_in = 0
        result: list[Any] = []
        listed: dict[str, Span] = {}  # output name → where it was listed
        local_lets = {s.name: s for s in body if isinstance(s, ast.Let)}
        for st in body:
            try:
                if isinstance(st, ast.InputDecl):
                    actual = actual_inputs[n_in] if actual_inputs is not None else None
                    n_in += 1
                    self._input(st, env, inputs, actual)
                elif isinstance(st, ast.ParamDecl):
                    self._param(st, env)
                elif isinstance(st, ast.Assign):
                    self._assign(st, env)
                elif isinstance(st, ast.Output):
                    for name, sp in zip(st.names, st.name_spans or (st.span,) * len(st.names), strict=False):
                        again = name in listed
                        if again:  # `output a, a`: surely a slip for another value
                            self.diags.add(
                                "name error",
                                f"'{name}' is already an output (at {listed[name].line}:{listed[name].col})",
                                sp,
                                "list each output once; is another value meant here?",
                            )
                        listed.setdefault(name, sp)
                        v = self._lookup_tensor(name, sp, env)
                        result.append(v)  # a block still gives as many values as it lists: no errors after
                        if isinstance(v, TVal) and not again:
                            outputs.append((name, v.ref))
                elif isinstance(st, ast.Let):
                    problem = self._let_problem(st, env, local_lets)
                    if problem is not None:
                        self.diags.add("name error", problem[0], st.span, problem[1])
                        self._bind(st.name, POISON, st.span, env)
                        continue
                    self._bind(st.name, self._const(st.value, env), st.span, env)
                elif isinstance(st, ast.Default):
                    if st.key != "init":
                        self.diags.add(
                            "name error",
                            f"unknown default '{st.key}'",
                            st.span,
                            "the model-wide default is `default init = he_normal`",
                        )
                        continue
                    v = self._eval(st.value, env, attr=True)
                    try:
                        env.default_init = convert_init(
                            v,
                            lambda want, hint="", v=v: OpError(
                                "argument error", f"default init must be {want}, got {describe(v)}", hint
                            ),
                        )
                    except OpError as e:
                        self.diags.add(e.kind, e.message, st.value.span, e.hint)
            except _StmtError:
                continue
        return result

    def _input(self, st: ast.InputDecl, env: _Env, inputs: list[tuple[str, int]], actual: Any) -> None:
        declared = (
            self._tensor_type(st.type, env, pattern=actual is not None) if st.type is not None else None
        )
        if actual is None:  # a model input
            if declared is None:
                self.diags.add(
                    "type error",
                    f"input {st.name} needs a type, like `input {st.name}: f32[N, 64]`",
                    st.span,
                    "model inputs declare their dtype and shape; only block inputs may omit them",
                )
                self._bind(st.name, POISON, st.span, env)
                return
            if declared is POISON:
                self._bind(st.name, POISON, st.span, env)
                return
            attrs: tuple[tuple[str, Any], ...] = ()
            if st.draw is not None:
                draw = self._draw(st, declared, env)
                if draw is POISON:
                    self._bind(st.name, POISON, st.span, env)
                    return
                attrs = (("draw", draw),)
            if declared.dtype == "f64" and not _x64_enabled():  # (i64 labels or ids fit in i32: left alone)
                d = Diagnostic(
                    WARNING,
                    f"input {st.name} is declared f64, but JAX computes f64 as f32 unless its 64-bit mode is on: "
                    "the model would run in 32 bits",
                    st.type.span if st.type is not None else st.span,
                    "set JAX_ENABLE_X64=1 in the environment to compute in 64 bits (slower; the weights stay f32), "
                    "or declare f32",
                )
                self.warnings.setdefault((d.span, d.message), d)
            nid = self._node(st.name, "input", attrs, (), (declared,), {}, {}, Dim.const(0), st.span, env)
            inputs.append((st.name, nid))
            self._bind(st.name, TVal(Ref(nid), declared), st.span, env)
            return
        if st.draw is not None:
            self.diags.add(
                "value error",
                f"block input {st.name} cannot be drawn: only a model's inputs are sampled by the trainer",
                st.draw.span,
                f"declare `input {st.name}: ... = {getattr(st.draw, 'func', 'normal')}()` in the model and pass it in",
            )
        if actual is not POISON and st.type is not None and declared is not POISON:
            try:
                self._match_pattern(st, actual, env)
            except _StmtError:
                actual = POISON  # reported once here, not again at every use of the input
        self._bind(st.name, actual, st.span, env)

    def _draw(self, st: ast.InputDecl, declared: TensorType, env: _Env) -> Any:
        """The sampler of a drawn input (`= normal()`, `= uniform(-1, 1)`) as an Fn with every argument named."""
        e = st.draw
        assert e is not None
        if isinstance(e, ast.Name):
            e = ast.Call(e.id, (), (), True, e.span, e.span)
        if not isinstance(e, ast.Call) or e.func not in DRAWS:
            self.diags.add(
                "value error",
                "a drawn input is sampled by normal(mean=0, std=1) or uniform(low=0, high=1)",
                e.span,
                f"write `input {st.name}: {declared} = normal()`",
            )
            return POISON
        names = DRAWS[e.func]
        if len(e.args) > len(names):
            self.diags.add(
                "argument error",
                f"{e.func} takes at most {len(names)} arguments ({', '.join(names)}), got {len(e.args)}",
                e.span,
            )
            return POISON
        bound: dict[str, Any] = dict(
            zip(names, (self._eval(a, env, attr=True) for a in e.args), strict=False)
        )
        for k in e.kwargs:
            if k.name not in names or k.name in bound:
                self.diags.add(
                    "argument error",
                    f"{e.func} has no argument '{k.name}'" + dym_suffix(k.name, names)
                    if k.name not in names
                    else f"{e.func}: '{k.name}' is given twice",
                    k.span,
                    f"usage: {e.func}({', '.join(names)})",
                )
                return POISON
            bound[k.name] = self._eval(k.value, env, attr=True)
        for arg, v in bound.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                self.diags.add(
                    "argument error", f"{e.func}: {arg} must be a number, got {describe(v)}", e.span
                )
                return POISON
        if not declared.dtype.startswith(("f", "bf")):
            self.diags.add(
                "type error",
                f"a drawn input must be floating point; {st.name} is {declared.dtype}",
                st.type.dtype_span if st.type is not None else st.span,
                f"declare it as f32[...]: `input {st.name}: f32[...] = {e.func}()`",
            )
            return POISON
        defaults = {"mean": 0.0, "std": 1.0, "low": 0.0, "high": 1.0}
        return Fn(e.func, (), tuple((k, float(bound.get(k, defaults[k]))) for k in names))

    def _match_pattern(self, st: ast.InputDecl, actual: TVal, env: _Env) -> None:
        """Block inputs are patterns: a fresh name binds to the caller's size, anything else must equal it."""
        assert st.type is not None
        t = actual.type
        want_dtype = st.type.dtype or None
        where = f"block {env.block.name if env.block else ''} expects input {st.name}"
        if want_dtype is not None and want_dtype != t.dtype:
            self.diags.add(
                "type error",
                f"{where}: {want_dtype}{_fmt_exprs(st.type.dims)}, got {t}",
                st.type.span,
                f"the call passes {t}: convert it there (`-> cast({want_dtype})`), or "
                f"declare `input {st.name}: {_fmt_exprs(st.type.dims)}` to accept any dtype",
            )
            raise _StmtError
        if len(st.type.dims) != t.rank:
            self.diags.add(
                "shape error",
                f"{where} of rank {len(st.type.dims)} {_fmt_exprs(st.type.dims)}, got {t}",
                st.type.span,
                f"pass a tensor of rank {len(st.type.dims)}, or declare `input {st.name}` to accept any tensor",
            )
            raise _StmtError
        for i, (e, d) in enumerate(zip(st.type.dims, t.dims, strict=True)):
            if isinstance(e, ast.Name) and e.id not in env.symbols and self._lookup(e.id, env) is None:
                env.symbols[e.id] = d
                continue
            want = self._dim(e, env)
            if want is not POISON and want != d:
                self.diags.add(
                    "shape error",
                    f"{where} with axis {i} = {want}, got {t}",
                    e.span,
                    f"pass a tensor whose axis {i} is {want}, or write a fresh size name there to accept any size",
                )
                raise _StmtError

    def _param(self, st: ast.ParamDecl, env: _Env) -> None:
        t = self._tensor_type(st.type, env, pattern=False)
        if t is POISON:
            self._bind(st.name, POISON, st.span, env)
            return
        shape = t.concrete()
        if shape is None:
            self.diags.add(
                "shape error",
                f"param {st.name} needs a known shape, got {t}",
                st.type.span,
                "a free tensor's size cannot depend on the batch",
            )
            self._bind(st.name, POISON, st.span, env)
            return
        init: Any = env.default_init or Fn("glorot_uniform")
        if st.init is not None:
            v = self._eval(st.init, env, attr=True)
            try:
                init = convert_init(
                    v,
                    lambda want, hint="": OpError(
                        "argument error",
                        f"param {st.name}'s initializer must be {want}, got {describe(v)}",
                        hint or f"for example `param {st.name}: [...] = normal(0.1)` or `= zeros`",
                    ),
                )
            except OpError as e:
                self.diags.add(e.kind, e.message, st.init.span, e.hint)
        nid = self._node(
            st.name,
            "param",
            (("shape", shape), ("init", init)),
            (),
            (t,),
            {"value": shape},
            {},
            Dim.const(0),
            st.span,
            env,
        )
        self._bind(st.name, TVal(Ref(nid), t), st.span, env)

    def _assign(self, st: ast.Assign, env: _Env) -> None:
        target = st.targets[0] if len(st.targets) == 1 else ",".join(st.targets)
        inst = self._instance_def(st, env)
        if st.run is not None:
            if inst is None or env.scope:
                self.diags.add(
                    "value error",
                    f"only a named layer instance of the model can start from a run; {target} is not one",
                    st.run_span,
                    'write `T = Teacher() from "runs/Teacher"` at model level and apply T as a stage',
                )
            else:
                self.pretrained.append((target, st.run, st.run_span))
        if inst is not None:
            if st.assert_dims is not None:
                self.diags.add(
                    "type error",
                    f"{target} is a layer instance, not a tensor; it has no shape to assert",
                    st.assert_span,
                    f"assert the shape where it is applied: `h = x -> {target} : [...]`",
                )
            self._bind(target, inst, st.span, env)
            return
        v = self._pipeline(st.value, env, name=target)
        if st.assert_dims is not None and v is not POISON:
            v = self._assert_shape(st.assert_dims, st.assert_span, v, env)
        if len(st.targets) > 1:
            if v is POISON:
                vals: list[Any] = [POISON] * len(st.targets)
            elif isinstance(v, tuple) and len(v) == len(st.targets):
                vals = list(v)
            else:
                n = len(v) if isinstance(v, tuple) else 1
                self.diags.add(
                    "value error",
                    f"{len(st.targets)} names on the left but the right side gives {n} value(s)",
                    st.span,
                    "split(n) gives n values",
                )
                vals = [POISON] * len(st.targets)
            for name, val in zip(st.targets, vals, strict=True):
                self._bind(name, val, st.span, env)
            return
        if isinstance(v, tuple):
            self.diags.add(
                "value error", f"the right side gives {len(v)} values; name each: `a, b = ...`", st.span
            )
            v = POISON
        self._bind(st.targets[0], v, st.span, env)

    def _instance_def(self, st: ast.Assign, env: _Env) -> _Instance | None:
        """`NAME = Op(args)` or `NAME = Block(args)` with no tensor among the arguments: a named instance."""
        head = st.value.head
        if len(st.targets) != 1 or st.value.stages or not isinstance(head, ast.Call) or head.func == "repeat":
            return None
        block = self.program.blocks.get(head.func)
        op = get_op(head.func) if block is None else None
        if block is None and (op is None or op.tensor_range[0] < 1):
            return None
        if block is not None and not any(isinstance(s, ast.InputDecl) for s in block.body):
            return None
        if any(self._mentions_tensor(a, env) for a in head.args):
            return None
        if len({k.name for k in head.kwargs}) < len(head.kwargs):
            return None  # an argument given twice: reported where the call is evaluated
        return _Instance(st.targets[0], head, env, block)

    def _mentions_tensor(self, e: Any, env: _Env) -> bool:
        if isinstance(e, ast.Name):
            # a value whose computation failed is taken for the tensor it was meant to be: read as no tensor, it
            # made `z = sample_normal(mu, logvar)` a named instance and its uses errors of their own
            return isinstance(env.values.get(e.id), TVal | _Poison) or e.id in (
                s.name for s in (env.block.body if env.block else ()) if isinstance(s, ast.InputDecl)
            )
        if isinstance(e, ast.Pipeline | ast.BinOp | ast.Index | ast.Neg):
            return True
        if isinstance(e, ast.Call):
            return any(self._mentions_tensor(a, env) for a in e.args)
        if isinstance(
            e, ast.ListLit | ast.TupleLit
        ):  # `concat([a, b])`: tensors in a list, a call all the same
            return any(self._mentions_tensor(a, env) for a in e.items)
        return False

    def _apply_instance(self, inst: _Instance, c: ast.Call, env: _Env, piped: TVal | None, name: str) -> Any:
        """Apply a named instance: the first use creates its layers, later uses share them (same shapes)."""
        tensors: list[Any] = [piped] if piped is not None else []
        for a in c.args:
            v = self._eval(a, env, attr=False)
            if v is POISON:
                return POISON
            if not isinstance(v, TVal):
                self.diags.add(
                    "argument error",
                    f"{inst.name} is a layer instance: it takes tensors only, got {describe(v)}",
                    a.span,
                    f"its options were fixed where it was defined ({inst.call.span.line}:{inst.call.span.col})",
                )
                return POISON
            tensors.append(v)
        if c.kwargs:
            self.diags.add(
                "argument error",
                f"{inst.name} is a layer instance: its options were fixed where it was defined",
                c.kwargs[0].span,
                f"define another instance for other options, e.g. `{inst.name}2 = {inst.call.func}(...)`",
            )
            return POISON
        inst.uses += 1
        label = inst.name if inst.uses == 1 else f"{inst.name}.{inst.uses}"
        before = len(self.nodes)
        args = [self._eval(a, inst.env, attr=True) for a in inst.call.args]
        kwargs = {k.name: self._eval(k.value, inst.env, attr=True) for k in inst.call.kwargs}
        if any(v is POISON for v in [*args, *kwargs.values()]):
            return POISON
        if inst.block is not None:
            v = self._block_call(inst.block, inst.call, tensors, args, kwargs, env, label, repeat=None)
        else:
            arg_spans = [a.span for a in inst.call.args]
            kw_spans = {k.name: k.span for k in inst.call.kwargs}
            v = self._apply(
                inst.call.func, inst.call, tensors, args, kwargs, env, name or label, arg_spans, kw_spans
            )
        if v is POISON:
            return POISON
        created = range(before, len(self.nodes))
        owners = [self.nodes[i] for i in created if self.nodes[i].params or self.nodes[i].state]
        shown_in = ", ".join(str(t.type) for t in tensors)
        if inst.owners is None:
            inst.owners, inst.first_input = owners, shown_in
        else:
            first = [(n.params, n.state) for n in inst.owners]
            if first != [(n.params, n.state) for n in owners]:
                want = next(
                    (
                        f"{a.name}: {fmt_params(a)}"
                        for a, b in zip(inst.owners, owners, strict=False)
                        if (a.params, a.state) != (b.params, b.state)
                    ),
                    "",
                )
                self.diags.add(
                    "shape error",
                    f"{inst.name} shares one set of weights ({want}), built for input {inst.first_input}; "
                    f"here it gets {shown_in}, which needs other weights",
                    c.span,
                    f"apply {inst.name} to tensors shaped like its first input, or define a second instance",
                )
                return POISON
            for owner, n in zip(inst.owners, owners, strict=True):
                self.nodes[n.id] = replace(n, params=(), state=(), shares=owner.id)
        for i in created:
            self.nodes[i] = replace(self.nodes[i], instance=inst.name)
        return v

    def _assert_shape(self, dims: tuple[ast.Expr, ...], span: Span, v: Any, env: _Env) -> Any:
        """Check a shape assertion `: [dims]` (a statement's last, or one inside its pipeline) against the value
        before it; the value itself, to go on with, or POISON where it is no tensor."""
        if not isinstance(v, TVal):
            many = isinstance(v, tuple)
            self.diags.add(
                "type error",
                f"a shape assertion needs a tensor, got {f'{len(v)} values' if many else describe(v)}",
                span,
                "an assertion checks one tensor: assert each value where it is used, e.g. `h = a -> relu : [...]`"
                if many
                else "assert the shape of a tensor: an input, a param or a computed value",
            )
            return POISON
        want = [self._dim(e, env) for e in dims]
        if any(w is POISON for w in want):
            return v
        if tuple(want) != v.type.dims:
            diff = ""
            if len(want) != v.type.rank:
                diff = f" (rank {len(want)} vs {v.type.rank})"
            else:
                bad = [i for i, (a, b) in enumerate(zip(want, v.type.dims, strict=True)) if a != b]
                diff = f" (axis {bad[0]}: {want[bad[0]]} vs {v.type.dims[bad[0]]})"
            self.diags.add(
                "shape error",
                f"shape assertion failed: expected {fmt_dims(want)}, got {v.type}{diff}",
                span,
                f"the value computed here has shape {fmt_dims(v.type.dims)}; fix the model or the assertion",
            )
        return v

    # ---- names -----------------------------------------------------------------------------------

    def _bind(self, name: str, value: Any, span: Span, env: _Env) -> None:
        if name in env.values:
            first = env.spans[name]
            self.diags.add(
                "name error",
                f"'{name}' is already defined (at {first.line}:{first.col})",
                span,
                "each name is bound once; pick a new name for the new value",
            )
            return
        env.values[name] = value
        env.spans[name] = span

    def _lookup(self, name: str, env: _Env) -> Any:
        if name in env.values:
            return env.values[name]
        if name in self.program.lets:
            return self._let(name)
        return None

    def _let(self, name: str) -> Any:
        if name in self.lets:
            return self.lets[name]
        let = self.program.lets[name]
        if self.let_state.get(name) == "busy":
            cycle = [*self.let_chain[self.let_chain.index(name) :], name]
            if len(cycle) == 2:
                message = f"constant '{name}' is defined in terms of itself"
            else:
                message = f"constants defined in a cycle: {' → '.join(cycle)}"
            self.diags.add(
                "name error",
                message,
                let.span,
                "define a constant from numbers and other constants only",
            )
            return POISON
        self.let_state[name] = "busy"
        self.let_chain.append(name)
        if self.let_depth >= MAX_LET_DEPTH:  # a chain `let a = b`, `let b = c`, ... would exhaust the stack
            self.diags.add(
                "value error",
                f"constants defined through more than {MAX_LET_DEPTH} other constants",
                let.span,
                "define long chains of constants directly from numbers",
            )
            value: Any = POISON
        else:
            self.let_depth += 1
            try:
                value = self._const(let.value, _Env())
            finally:
                self.let_depth -= 1
        self.let_chain.pop()
        self.lets[name] = value
        self.let_state[name] = "done"
        return value

    def _let_problem(
        self, st: ast.Let, env: _Env, local_lets: Mapping[str, ast.Let]
    ) -> tuple[str, str] | None:
        """What is wrong with a body's `let` that reads a constant not yet defined (message, hint), else None:
        read as a free size symbol, `let a = a + 1` or a `let` above the one it reads would pass silently."""
        hint = "define a constant from numbers and other constants only"
        if st.name in _names_in(st.value) and self._lookup(st.name, env) is None:
            return f"constant '{st.name}' is defined in terms of itself", hint
        ahead = [
            n
            for n in sorted(_names_in(st.value))
            if n in local_lets
            and (local_lets[n].span.line, local_lets[n].span.col) > (st.span.line, st.span.col)
            and self._lookup(n, env) is None
        ]
        if not ahead:
            return None
        later = local_lets[ahead[0]]
        if st.name in _names_in(later.value):
            return f"constants defined in a cycle: {st.name} → {later.name} → {st.name}", hint
        where = f"{later.span.line}:{later.span.col}"
        return (
            f"'{later.name}' is read before its `let` (at {where})",
            f"move `let {later.name}` above this line: a body's constants are defined in order",
        )

    def _lookup_tensor(self, name: str, span: Span, env: _Env) -> Any:
        v = self._lookup(name, env)
        if v is None:
            self.diags.add(
                "name error",
                f"'{name}' is not defined" + dym_suffix(name, self._visible(env)),
                span,
                self._undefined_hint(name),
            )
            return POISON
        if isinstance(v, _Instance):  # `L = dense(64)`, then `output L`: weights to share, not a value
            from ..frontend.fmt import format_expr

            self.diags.add(
                "type error",
                f"'{name}' is a layer instance (`{name} = {format_expr(v.call)}` at line {env.spans[name].line}), "
                "not a value: it has no input",
                span,
                f"apply it to a value, `h = x -> {name}`, and use h; or give the call its input: "
                f"`{name} = x -> {format_expr(v.call)}`",
            )
            return POISON
        if v is not POISON and not isinstance(v, TVal):
            self.diags.add(
                "type error",
                f"'{name}' is the constant {describe(v)}, not a tensor",
                span,
                "a constant is an op's argument (`dense(width)`) or a number in an expression (`x * 2`); "
                "`const(...)` makes a tensor of numbers",
            )
            return POISON
        return v

    def _visible(self, env: _Env) -> list[str]:
        return [*env.values, *self.program.lets]

    def _undefined_hint(self, name: str) -> str:
        if get_op(name) is not None:
            return f"{name} is an op; apply it to a value: `x -> {name}` or `{name}(x)`"
        if name in self.program.blocks:
            return f"{name} is a block; apply it to a value: `x -> {name}(...)`"
        return "define it before this line, or declare it with `input`"

    # ---- expressions -----------------------------------------------------------------------------

    def _const(self, e: ast.Expr, env: _Env) -> Any:
        v = self._eval(e, env, attr=True)
        if isinstance(v, TVal):
            self.diags.add("type error", "a constant cannot depend on a tensor", e.span)
            return POISON
        return v

    def _dim(self, e: ast.Expr, env: _Env) -> Any:
        v = self._eval(e, env, attr=True)
        if v is POISON:
            return POISON
        if isinstance(v, bool) or not isinstance(v, int | Dim):
            self.diags.add(
                "shape error",
                f"a dimension must be a whole number or a size name, got {describe(v)}",
                e.span,
                "write sizes like 64, N, 2*C or H/2",
            )
            return POISON
        d = Dim.of(v).subst(env.symbols) if env.symbols else Dim.of(v)
        if d.is_const and d.value < 0:
            self.diags.add(
                "shape error",
                f"a dimension cannot be negative, got {d}",
                e.span,
                "check the arithmetic and the constants it uses",
            )
            return POISON
        if d.is_const and d.value > MAX_DIM:
            self.diags.add(
                "shape error",
                f"dimension {d.value} is larger than the largest supported size {MAX_DIM:,}",
                e.span,
                "XLA indexes each axis with 32-bit integers",
            )
            return POISON
        return d

    def _tensor_type(self, t: ast.TensorTypeExpr, env: _Env, pattern: bool) -> Any:
        dtype = t.dtype or "f32"
        if dtype not in DTYPES:
            self.diags.add(
                "type error",
                f"unknown dtype '{dtype}'" + dym_suffix(dtype, DTYPES),
                t.dtype_span,
                "dtypes: " + ", ".join(DTYPES),
            )
            return POISON
        dims = []
        for e in t.dims:
            if pattern and isinstance(e, ast.Name) and self._lookup(e.id, env) is None:
                dims.append(env.symbols.get(e.id, Dim.sym(e.id)))
                continue
            d = self._dim(e, env)
            if d is POISON:
                return POISON
            dims.append(d)
        return TensorType(dtype, tuple(dims))

    def _eval(self, e: Any, env: _Env, attr: bool, name: str = "") -> Any:
        """Evaluate an expression: a TVal, a constant (int, float, str, bool, Dim, tuple, list, Fn) or POISON.

        attr=True is argument position: an unbound name is a size symbol or a word (`N`, `same`).
        """
        if isinstance(e, ast.Num | ast.Str | ast.Bool):
            return e.value
        if isinstance(e, ast.Name):
            v = self._lookup(e.id, env)
            if v is not None:
                return v
            if e.id in env.symbols:
                return env.symbols[e.id]
            if attr:
                return Dim.sym(e.id)
            return self._lookup_tensor(e.id, e.span, env)
        if isinstance(e, ast.Pipeline):
            return self._pipeline(e, env, name)
        if isinstance(e, ast.ListLit):
            return [self._eval(x, env, attr=True) for x in e.items]
        if isinstance(e, ast.TupleLit):
            return tuple(self._eval(x, env, attr=True) for x in e.items)
        if isinstance(e, ast.Neg):
            v = self._eval(e.operand, env, attr)
            if isinstance(v, TVal):
                return self._apply("neg", e, [v], [], {}, env, name)
            return self._arith("-", 0, v, e)
        if isinstance(e, ast.BinOp):
            a = self._eval(e.left, env, attr)
            b = self._eval(e.right, env, attr)
            if a is POISON or b is POISON:
                return POISON
            if isinstance(a, TVal) or isinstance(b, TVal):
                return self._tensor_binop(e, a, b, env, name)
            return self._arith(e.op, a, b, e)
        if isinstance(e, ast.Call):
            return self._call(e, env, attr, piped=None, name=name)
        if isinstance(e, ast.Index):
            v = self._eval(e.value, env, attr=False)
            if v is POISON:
                return POISON
            if not isinstance(v, TVal):
                self.diags.add(
                    "type error",
                    f"only tensors can be indexed, got {describe(v)}",
                    e.span,
                    "index a value of the model (an input or a computed value): `h[:, 0]`",
                )
                return POISON
            items = self._index_items(e, env)
            if items is POISON:
                return POISON
            return self._apply("index", e, [v], [], {"items": items}, env, name)
        raise AssertionError(f"unexpected expression {e!r}")

    def _index_items(self, e: ast.Index, env: _Env) -> Any:
        items: list[tuple[Any, ...]] = []
        for it in e.items:
            if isinstance(it, ast.EllipsisLit):
                items.append(("e",))
                continue
            if isinstance(it, ast.Name) and it.id == "None" and self._lookup(it.id, env) is None:
                items.append(("n",))  # NumPy's new axis, spelled as NumPy spells it
                continue
            if isinstance(it, ast.Slice):
                parts: list[int | None] = []
                for p in (it.lo, it.hi, it.step):
                    if p is None:
                        parts.append(None)
                        continue
                    v = _known_int(self._const(p, env))
                    if v is POISON:
                        return POISON
                    if isinstance(v, bool) or not isinstance(v, int):
                        self.diags.add(
                            "value error",
                            f"slice bounds must be integers, got {describe(v)}",
                            p.span,
                            _FREE_SIZE_HINT if isinstance(v, Dim) else "",
                        )
                        return POISON
                    parts.append(v)
                items.append(("s", *parts))
                continue
            v = _known_int(self._const(it, env))
            if v is POISON:
                return POISON
            if isinstance(v, bool) or not isinstance(v, int):
                self.diags.add(
                    "value error",
                    f"an index must be an integer or a slice like 0:2, got {describe(v)}",
                    it.span,
                    _FREE_SIZE_HINT
                    if isinstance(v, Dim)
                    else "write a whole number (x[:, 0]) or a slice (x[:, 0:2], x[:, ::2])",
                )
                return POISON
            items.append(("i", v))
        return tuple(items)

    def _arith(self, op: str, a: Any, b: Any, e: ast.Neg | ast.BinOp) -> Any:
        from ..frontend.fmt import format_expr

        span = e.span
        if a is POISON or b is POISON:
            return POISON
        nums = (int, float, Dim)
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, nums) or not isinstance(b, nums):
            self.diags.add(
                "type error",
                f"cannot compute {describe(a)} {op} {describe(b)}",
                span,
                "arithmetic works on numbers, sizes and tensors",
            )
            return POISON
        try:
            if isinstance(a, Dim) or isinstance(b, Dim):
                if isinstance(a, float) or isinstance(b, float):
                    raise DimError("sizes are whole numbers; a size cannot be mixed with a fraction")
                da, db = Dim.of(a), Dim.of(b)
                if op in _RING_OPS:
                    return _RING_OPS[op](da, db)
                if op == "/":
                    return da.floordiv(db)  # sizes divide as the conv formula does: floor
                if op == "**" and db.is_const and 0 <= db.value <= 8:
                    out = Dim.const(1)
                    for _ in range(db.value):
                        out = out * da
                    return out
                raise DimError(f"'{op}' is not defined on sizes")
            if op == "@":
                raise DimError("'@' multiplies tensors, not numbers")
            if op in _RING_OPS:
                v = _RING_OPS[op](a, b)
            elif op == "/":
                if b == 0:
                    raise DimError(f"division by zero: {describe(a)} / 0")
                # integers divide exactly or become a fraction, as a user reading `64/2` expects
                v = a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b
            else:
                v = power(a, b)
            if in_number_range(v):
                return v
            # `x * 2**64` would reach JAX as an integer it cannot hold (exit 3 in compile); `(-8.0)**0.5` is complex
            self.diags.extend(value_range_error(format_expr(e), span, v))
            return POISON
        except OverflowError:  # an integer power that cannot fit, refused before it is computed
            self.diags.extend(value_range_error(format_expr(e), span))
            return POISON
        except ZeroDivisionError:  # `0 ** -1`
            self.diags.add(
                "value error",
                f"the value of {format_expr(e)} divides by zero",
                span,
                "0 to a negative power has no value; check the constants it uses",
            )
            return POISON
        except DimError as err:
            hint = (
                "the divisor is 0 here; check the constants it uses"
                if "division by zero" in str(err)
                else "sizes are built from integers and size names with + - * / **"
            )
            self.diags.add("value error", str(err), span, hint)
            return POISON
        raise AssertionError(op)

    def _tensor_binop(self, e: ast.BinOp, a: Any, b: Any, env: _Env, name: str) -> Any:
        if e.op == "@":
            if not (isinstance(a, TVal) and isinstance(b, TVal)):
                self.diags.add(
                    "type error", "'@' needs tensors on both sides", e.span, "use '*' to scale by a number"
                )
                return POISON
            return self._apply("matmul", e, [a, b], [], {}, env, name)
        opname = OPERATORS[e.op]
        if isinstance(a, TVal) and isinstance(b, TVal):
            return self._apply(opname, e, [a, b], [], {}, env, name)
        t, s, reverse = (a, b, False) if isinstance(a, TVal) else (b, a, True)
        if isinstance(s, bool) or not isinstance(s, int | float):
            self.diags.add(
                "type error",
                f"cannot compute {describe(a)} {e.op} {describe(b)}",
                e.span,
                "a tensor combines with another tensor or a number",
            )
            return POISON
        return self._apply(opname, e, [t], [], {"scalar": s, "reverse": reverse}, env, name)

    # ---- calls -----------------------------------------------------------------------------------

    def _pipeline(self, p: ast.Pipeline, env: _Env, name: str) -> Any:
        if not p.stages:
            return self._eval(p.head, env, attr=False, name=name)
        calls = p.calls
        v = self._eval(p.head, env, attr=False, name=f"{name}.in" if name and calls else name)
        # node names come from the calls alone: an assertion added or removed renames no layer (nor its weights)
        stage_names = iter(_stage_names(name, calls))
        before = p.head
        for stage in p.stages:
            if v is POISON:
                return POISON
            if isinstance(stage, ast.ShapeAssert):
                v = self._assert_shape(stage.dims, stage.span, v, env)
                continue
            if not isinstance(v, TVal):
                self.diags.add(
                    "type error",
                    f"a pipeline carries a tensor, but this is {describe(v)}",
                    before.span,
                    "pipelines start from an input or a computed value: `h = x -> relu`",
                )
                return POISON
            v = self._call(stage, env, attr=False, piped=v, name=next(stage_names))
            before = stage
        return v

    def _call(
        self,
        c: ast.Call,
        env: _Env,
        attr: bool,
        piped: TVal | None,
        name: str,
        repeat: tuple[int, int] | None = None,
    ) -> Any:
        seen: dict[str, ast.Kwarg] = {}
        for k in c.kwargs:
            if k.name in seen:  # `dense(3, bias=true, bias=false)`: the last one won, silently
                first = seen[k.name].span
                self.diags.add(
                    "argument error",
                    f"{c.func} got '{k.name}' twice (first at {first.line}:{first.col})",
                    k.span,
                    "give each argument once",
                )
                return POISON
            seen[k.name] = k
        if c.func == "repeat":
            return self._repeat(c, env, piped, name)
        if env.values.get(c.func) is POISON:  # an instance whose definition failed, reported there
            return POISON
        inst = env.values.get(c.func)
        if isinstance(inst, _Instance):
            return self._apply_instance(inst, c, env, piped, name)
        op = get_op(c.func)
        block = self.program.blocks.get(c.func)
        if op is None and block is None:
            if attr and piped is None:
                fn_args = tuple(self._eval(a, env, attr=True) for a in c.args)
                fn_kwargs = tuple((k.name, self._eval(k.value, env, attr=True)) for k in c.kwargs)
                return Fn(c.func, fn_args, fn_kwargs)
            self._unknown_callable(c)
            return POISON
        tensors: list[Any] = [piped] if piped is not None else []
        tensor_spans: list[Span] = [c.span] if piped is not None else []
        args: list[Any] = []
        arg_spans: list[Span] = []
        for a in c.args:
            v = self._eval(a, env, attr=True)
            if isinstance(v, TVal) or (v is POISON and not args):
                if args and self._undefined_first(c, len(tensors) - (piped is not None), args, env):
                    return POISON
                if args:
                    self.diags.add(
                        "argument error",
                        f"tensor inputs of {c.func} come before its other arguments",
                        a.span,
                        f"write {c.func}(tensors..., options...)",
                    )
                    return POISON
                tensors.append(v)
                tensor_spans.append(a.span)
                continue
            args.append(v)
            arg_spans.append(a.span)
        kwargs = {k.name: self._eval(k.value, env, attr=True) for k in c.kwargs}
        spans = {k.name: k.span for k in c.kwargs}
        if any(t is POISON for t in tensors) or any(v is POISON for v in [*args, *kwargs.values()]):
            return POISON
        if block is not None:
            return self._block_call(block, c, tensors, args, kwargs, env, name, repeat=repeat)
        assert op is not None
        lo, hi = op.tensor_range
        n_in = len(tensors)  # a piped tensor is the first of them
        if (n_in < lo or (n_in and (hi is None or n_in < hi))) and self._undefined_first(
            c, n_in - (piped is not None), args, env
        ):
            return POISON  # the op wanted (or could take) another tensor where an undefined name stands
        return self._apply(op.name, c, tensors, args, kwargs, env, name, arg_spans, spans, tensor_spans)

    def _undefined_first(self, c: ast.Call, written: int, args: list[Any], env: _Env) -> bool:
        """Whether the call's first argument after its tensors is a name defined nowhere (read as a size symbol,
        so it came out a Dim where a tensor was wanted: `sample_normal(mu2, logvar)`, `concat(x, h2)`); reported
        as the name error it is, not as a bad axis or a missing tensor."""
        first = c.args[written] if len(c.args) > written else None  # written: the tensors in its own ()
        if not args or not isinstance(first, ast.Name) or not isinstance(args[0], Dim):
            return False
        if self._lookup(first.id, env) is not None or first.id in env.symbols:
            return False
        self.diags.add(
            "name error",
            f"'{first.id}' is not defined" + dym_suffix(first.id, self._visible(env)),
            first.span,
            self._undefined_hint(first.id),
        )
        return True

    def _repeat(self, c: ast.Call, env: _Env, piped: TVal | None, name: str) -> Any:
        if len(c.args) == 2 and isinstance(c.args[1], ast.Name):
            # `repeat(4, Unit)` repeats a block or op that takes no arguments, like a bare pipeline stage
            b = c.args[1]
            if b.id not in self.program.blocks and get_op(b.id) is None:
                inst = env.values.get(b.id)
                if isinstance(
                    inst, _Instance
                ):  # `L = dense(8)`, `repeat(3, L)`: one set of weights, or three?
                    self.diags.add(
                        "type error",
                        f"repeat makes fresh copies, each with weights of its own; '{b.id}' is a named instance, "
                        "one set of weights",
                        b.span,
                        f"to apply {b.id} several times write `x -> {b.id} -> {b.id} -> ...`; for copies of its "
                        f"layer write repeat(n, {inst.call.func}(...))",
                    )
                    return POISON
                self.diags.add(
                    "name error",
                    f"repeat needs a block or op to repeat; '{b.id}' is neither"
                    + dym_suffix(b.id, [*self.program.blocks, *_op_names()]),
                    b.span,
                    "write `repeat(n, Block(args...))`",
                )
                return POISON
            c = ast.Call(
                c.func,
                (c.args[0], ast.Call(b.id, (), (), True, b.span, b.span)),
                c.kwargs,
                c.bare,
                c.span,
                c.func_span,
            )
        if piped is None or len(c.args) != 2 or c.kwargs or not isinstance(c.args[1], ast.Call):
            self._repeat_usage(c, piped is not None)
            return POISON
        n = self._const(c.args[0], env)
        if n is POISON:
            return POISON
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            self.diags.add(
                "argument error",
                f"repeat's count must be a whole number (0 or more), got {describe(n)}",
                c.args[0].span,
                "repeat(3, Block(...)) chains three copies; repeat(0, ...) passes its input through",
            )
            return POISON
        inner: ast.Call = c.args[1]
        if n == 0:
            # no copies: the value passes through, as PyTorch's empty nn.Sequential, so a block's
            # `repeat(n - 1, Unit(c))` serves a stage of one unit (MobileNetV2's table rows with n = 1);
            # the name is still checked, or a misspelt block would pass silently until n grows
            known = inner.func in self.program.blocks or get_op(inner.func) is not None
            if not known and not isinstance(env.values.get(inner.func), _Instance):
                self._unknown_callable(inner)
                return POISON
            return piped
        # The cap is checked before expanding: a count of 10⁹ must be an error, not an hour of building.
        if n > MAX_NODES - len(self.nodes):
            self._too_big(c, n, inner.func, None)
            return POISON
        block = self.program.blocks.get(inner.func)
        v: Any = piped
        base = name or inner.func
        before = len(self.nodes)
        for i in range(n):
            if v is POISON:
                return POISON
            if i == 1 and (len(self.nodes) - before) * (n - 1) > MAX_NODES - len(self.nodes):
                self._too_big(c, n, inner.func, len(self.nodes) - before)
                return POISON
            # a copy takes its tensors as a single call does: the piped value, then any written first
            # (`repeat(2, Decoder(mem, 64))`: each copy reads the same memory)
            v = self._call(
                inner, env, attr=False, piped=v, name=f"{base}.{i}", repeat=(i, n) if block else None
            )
            if v is POISON:
                return POISON  # the first copy's error is the only one worth reporting
            if not isinstance(v, TVal):
                n_out = len(v) if isinstance(v, tuple) else 0
                self.diags.add(
                    "value error",
                    f"{inner.func} returns {n_out} values, but repeat chains calls that return one tensor",
                    inner.span,
                    "give the block a single `output`",
                )
                return POISON
        return v

    def _unknown_callable(self, c: ast.Call) -> None:
        dym = dym_suffix(c.func, [*_op_names(), *self.program.blocks])
        what = "block" if dym and dym.split("'")[1] in self.program.blocks else "op"
        self.diags.add(
            "name error", f"unknown {what} '{c.func}'" + dym, c.func_span, _unknown_op_hint(c.func)
        )

    def _too_big(self, c: ast.Call, n: int, what: str, per_copy: int | None) -> None:
        size = f"{n:,} copies of {what}" + (f" of {per_copy:,} nodes each" if per_copy else "")
        self.diags.add(
            "value error",
            f"repeat makes {size}: more than the {MAX_NODES:,} nodes a model may have",
            c.args[0].span,
            f"specc refuses graphs over {MAX_NODES:,} nodes before building them; lower the repeat count",
        )

    def _block_call(
        self,
        block: ast.BlockDef,
        c: ast.Call,
        tensors: list[Any],
        args: list[Any],
        kwargs: dict[str, Any],
        env: _Env,
        name: str,
        repeat: tuple[int, int] | None,
    ) -> Any:
        if block.name in self.block_stack:
            self.diags.add(
                "name error",
                f"block {block.name} calls itself: {' → '.join([*self.block_stack[self.block_stack.index(block.name) :], block.name])}",
                c.span,
                "blocks cannot be recursive; use repeat(n, Block(...))",
            )
            return POISON
        if len(self.block_stack) >= MAX_BLOCK_DEPTH:
            self.diags.add(
                "value error",
                f"blocks nested more than {MAX_BLOCK_DEPTH} deep: {block.name} is called "
                f"from {' → '.join(self.block_stack[:3])} → ... → {self.block_stack[-1]}",
                c.span,
                "flatten the chain of blocks, or use repeat(n, Block(...)) for repeated layers",
            )
            return POISON
        inner = _Env(prefix="", block=block)
        inner.default_init = env.default_init
        params = [p.name for p in block.params]
        if len(args) > len(params):
            self.diags.add(
                "argument error",
                f"block {block.name} takes {len(params)} argument(s) ({', '.join(params)}), got {len(args)}",
                c.span,
                "tensor inputs come first, then the block's parameters",
            )
            return POISON
        bound: dict[str, Any] = dict(zip(params, args, strict=False))
        for k, v in kwargs.items():
            if k not in params:
                self.diags.add(
                    "argument error",
                    f"block {block.name} has no parameter '{k}'" + dym_suffix(k, params),
                    c.span,
                    f"{block.name}'s parameters are: {', '.join(params) or 'none'}",
                )
                return POISON
            if k in bound:  # `Unit(32, c=2)`: the keyword would replace the position silently
                self.diags.add(
                    "argument error",
                    f"block {block.name}: argument '{k}' given twice (by position and by name)",
                    next(kw.span for kw in c.kwargs if kw.name == k),
                    f"give it once, by position or by name: {block.name}({', '.join(params)})",
                )
                return POISON
            bound[k] = v
        first_error = len(self.diags.items)  # from here on, what goes wrong is this call's (see _note_call)
        for p in block.params:
            if p.name not in bound:
                if p.default is None:
                    self.diags.add(
                        "argument error",
                        f"block {block.name} is missing its argument '{p.name}'",
                        c.span,
                        f"call it as {block.name}({', '.join(params)})",
                    )
                    return POISON
                bound[p.name] = self._const(p.default, inner)
            inner.values[p.name] = bound[p.name]
            inner.spans[p.name] = p.span
        nth = self.instances.get(block.name, 0) + 1
        self.instances[block.name] = nth
        label = name or f"{block.name}_{nth}"
        while f"{env.prefix}{label}/" in self.prefixes:  # the same block twice under one name
            label = f"{label}_{nth}"
        self.prefixes.add(f"{env.prefix}{label}/")
        given = tuple((k, bound[k]) for k in (*params[: len(args)], *kwargs))
        inner.scope = (*env.scope, Scope(block.name, label, c.span, repeat, given))
        inner.prefix = f"{env.prefix}{label}/"
        self.block_stack.append(block.name)
        try:
            outs = self._body(block.body, inner, [], [], actual_inputs=tensors, where=f"block {block.name}")
        except _CallError as e:
            self.diags.add("argument error", e.message, c.span, e.hint)
            return POISON
        finally:
            self.block_stack.pop()
            self._note_call(first_error, block, c)
        if not outs:
            self.diags.add(
                "name error",
                f"block {block.name} has no `output` statement",
                block.span,
                "add `output NAME` with the value the block returns",
            )
            return POISON
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _repeat_usage(self, c: ast.Call, piped: bool) -> None:
        """Say what is wrong with a `repeat(...)` that is not `x -> repeat(n, Block(args...))`."""
        from ..frontend.fmt import format_expr

        usage = "`x -> repeat(n, Block(args...))`: the count, then the call to repeat"
        args = c.args
        if not piped:
            message, span = "repeat is a pipeline stage: `x -> repeat(n, Block(args...))`", c.span
            hint = "its first argument is the count, its second a block or op call"
        elif c.kwargs:
            message, span = "repeat takes no named arguments", c.kwargs[0].span
            hint = f"write {usage}"
        elif len(args) != 2:
            message, span = (
                f"repeat takes 2 arguments, the count and a block or op call, got {len(args)}",
                c.span,
            )
            hint = f"write {usage}"
        elif isinstance(args[0], ast.Call) or (  # `repeat(Unit(16), 2)`, `repeat(Unit, 2)`
            isinstance(args[0], ast.Name)
            and (args[0].id in self.program.blocks or get_op(args[0].id) is not None)
        ):
            message, span = "repeat's arguments are the other way around: the count comes first", c.span
            hint = f"write repeat({format_expr(args[1])}, {format_expr(args[0])})"
        else:  # `repeat(2, 16)`
            message = f"repeat's second argument must be a block or op call, got {format_expr(args[1])}"
            span, hint = args[1].span, f"write {usage}, e.g. repeat(2, Unit(16))"
        self.diags.add("argument error", message, span, hint)

    def _note_call(self, first: int, block: ast.BlockDef, c: ast.Call) -> None:
        """Name the call in the errors it caused inside the block (those reported from `first` on): the block's
        body is shared by every call, so its place alone does not say which call went wrong. An error from a
        call nested in this one is noted by both, innermost first."""
        from ..frontend.fmt import format_expr

        items = self.diags.items
        if len(items) == first:  # the common case, and a call of a 10,000-copy repeat: nothing to format
            return
        written = format_expr(c)
        note = f"in {written if len(written) <= 60 else c.func + '(...)'}, called at {c.span}"
        for i in range(first, len(items)):
            d = items[i]
            if d.note or _inside(d.span, block.span):
                items[i] = replace(d, note=f"{d.note}; {note}" if d.note else note)

    def _apply(
        self,
        opname: str,
        at: Any,
        tensors: list[Any],
        args: list[Any],
        kwargs: dict[str, Any],
        env: _Env,
        name: str,
        arg_spans: list[Span] | None = None,
        kw_spans: dict[str, Span] | None = None,
        tensor_spans: list[Span] | None = None,
    ) -> Any:
        """Bind arguments, run the op's rule, add the node; every failure becomes a located Diagnostic."""
        op = get_op(opname)
        assert op is not None
        span: Span = at.span
        if any(t is POISON for t in tensors):
            return POISON
        lo, hi = op.tensor_range
        if not lo <= len(tensors) <= (hi if hi is not None else len(tensors)):
            want = str(lo) if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
            listed = any(isinstance(a, list | tuple) and any(isinstance(x, TVal) for x in a) for a in args)
            self.diags.add(
                "argument error",
                f"{op.name} takes {want} tensor input(s), got {len(tensors)}"
                + (" (and a list of tensors)" if listed else ""),
                span,
                f"give the tensors one by one, not in a list: {op.name}(a, b, ...)"
                if listed
                else _tensor_hint(op),
            )
            return POISON
        types = tuple(t.type for t in tensors)
        # where the tensors come from, for an op whose rule reads the graph (grad: is y computed from x?)
        view = GraphView(self.nodes, tuple(t.ref for t in tensors)) if op.reruns is not None else None
        spans = _ArgSpans(span, arg_spans, kw_spans, len(args), tensor_spans)
        # The same call on the same types (every copy of a repeated block) binds and infers alike: reuse it.
        try:
            key: Any = (opname, _memo_key(args), _memo_key(kwargs), env.default_init, types)
            hit = None if view is not None else self.memo.get(key)
        except TypeError:  # an unhashable argument (a list): no memo
            key, hit = None, None
        if hit is not None:
            attr_items, inf = hit
        else:
            checked = self._bind_and_infer(op, spans, args, kwargs, env, types, view)
            if checked is None:
                return POISON
            attr_items, inf = checked
            if key is not None and view is None:
                self.memo[key] = checked
        for w in inf.warnings:  # once per place written, however many copies of a block it builds
            d = Diagnostic(WARNING, w.message, spans.of(op, w.arg), w.hint)
            self.warnings.setdefault((d.span, d.message), d)
        nid = self._node(
            name or op.name,
            op.name,
            attr_items,
            tuple(t.ref for t in tensors),
            inf.outputs,
            dict(inf.params),
            dict(inf.state),
            inf.flops,
            span,
            env,
        )
        if len(inf.outputs) == 1:
            return TVal(Ref(nid), inf.outputs[0])
        return tuple(TVal(Ref(nid, i), t) for i, t in enumerate(inf.outputs))

    def _bind_and_infer(
        self,
        op: OpDef,
        spans: _ArgSpans,
        args: list[Any],
        kwargs: dict[str, Any],
        env: _Env,
        types: tuple[TensorType, ...],
        view: GraphView | None,
    ) -> tuple[tuple[tuple[str, Any], ...], Inferred] | None:
        """Bind the arguments and run the op's rule; None (after reporting) when either fails."""
        span = spans.call
        attrs, errors = bind_args(op, args, kwargs)
        if "init" in attrs and attrs["init"] is None and env.default_init is not None:
            attrs["init"] = env.default_init
        for err in errors:
            kind, message, hint = err.kind, err.message, err.hint or _op_hint(op)
            # `dense(widht)` beside `let width = 64`: an unbound name is a size symbol, refused as "the name
            # 'widht'"; where it is one slip from a name the spec binds, say that instead
            given = kwargs.get(err.arg) if err.arg in kwargs else None
            if given is None and err.arg is not None:
                names = [a.name for a in op.args]
                i = names.index(err.arg) if err.arg in names else len(args)
                given = args[i] if i < len(args) else None
            word = given.as_symbol() if isinstance(given, Dim) else None
            dym = (
                did_you_mean(word, [n for n in self._visible(env) if n != word])
                if word and len(word) > 2
                else ""
            )
            if word and dym:
                kind, message = "name error", f"'{word}' is not defined; {dym}"
                hint = f"{op.name}'s '{err.arg}' got a name nothing defines (`let` defines constants)"
            self.diags.add(kind, message, spans.of(op, err.arg), hint)
        if errors:
            return None
        try:
            inf = op.infer(OpCall(op, attrs, types, view))
        except OpError as err:
            self.diags.add(err.kind, err.message, spans.of(op, err.arg), err.hint or _op_hint(op))
            return None
        except DimError as err:
            self.diags.add("shape error", str(err), span, _op_hint(op))
            return None
        for t in inf.outputs:
            for d in t.dims:
                if d.is_const and d.value > MAX_DIM:
                    self.diags.add(
                        "shape error",
                        f"{op.name} would produce {t}: dimension {d.value} is larger than "
                        f"the largest supported size {MAX_DIM:,}",
                        span,
                        "XLA holds at most 2³¹ − 1 elements along an axis; check the sizes given (a few zeros "
                        "too many?)",
                    )
                    return None
        return tuple(attrs.items()), inf

    def _node(
        self,
        name: str,
        op: str,
        attrs: tuple[tuple[str, Any], ...],
        inputs: tuple[Ref, ...],
        outputs: tuple[TensorType, ...],
        params: dict[str, tuple[int, ...]],
        state: dict[str, tuple[int, ...]],
        flops: Dim,
        span: Span,
        env: _Env,
    ) -> int:
        if len(self.nodes) >= MAX_NODES:
            raise _Limit
        full = env.prefix + name
        unique = full
        k = self.next_suffix.get(full, 2)  # resume the count: 10,000 stages of `-> relu` stay linear
        while unique in self.names:
            unique = f"{full}_{k}"
            k += 1
        self.next_suffix[full] = k
        self.names.add(unique)
        nid = len(self.nodes)
        self.nodes.append(
            Node(
                nid,
                unique,
                op,
                attrs,
                inputs,
                outputs,
                tuple(params.items()),
                tuple(state.items()),
                flops,
                env.scope,
                span,
            )
        )
        return nid


def fmt_params(n: Node) -> str:
    return " ".join(f"{k}{list(v)}" for k, v in (*n.params, *n.state))


class _StmtError(Exception):
    pass


class _CallError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


def _memo_key(v: Any) -> Any:
    """A hashable key that tells 2 from 2.0 from true (equal and equally hashed in Python, not in a spec)."""
    if isinstance(v, bool | int | float | str):
        return (type(v).__name__, v)
    if isinstance(v, tuple | list):
        return (type(v).__name__, *(_memo_key(x) for x in v))
    if isinstance(v, dict):
        return ("dict", *((k, _memo_key(x)) for k, x in v.items()))
    if isinstance(v, Fn):
        return ("fn", v.name, _memo_key(v.args), _memo_key(dict(v.kwargs)))
    hash(v)  # anything else must be hashable as it is (Dim); a TypeError means: no memo for this call
    return v


def _stage_names(target: str, stages: Sequence[ast.Call]) -> list[str]:
    """Names of a pipeline's nodes: the last is the target; the others `target.op`, numbered where an op repeats."""
    if not target:
        return [""] * len(stages)
    funcs = [_stage_func(st) for st in stages[:-1]]
    total = Counter(funcs)  # counted once: `funcs.count` per stage made a 30,000-stage pipeline take 25 s
    seen: Counter[str] = Counter()
    out = []
    for f in funcs:
        seen[f] += 1
        out.append(f"{target}.{f}" + (str(seen[f]) if total[f] > 1 else ""))
    return [*out, target]


def _stage_func(st: ast.Call) -> str:
    # `repeat(3, Unit(64))` is named after what it repeats
    if st.func == "repeat" and len(st.args) == 2 and isinstance(st.args[1], ast.Call):
        return st.args[1].func
    return st.func


@dataclass(frozen=True)
class _ArgSpans:
    """Where a call's parts are written, to locate what its op's rule says about one of them.

    Args:
        call: the whole call (also where a part written nowhere, a default or the piped tensor, is reported).
        positional, keyword: the spans of the arguments given by position and by name.
        n_pos: how many were given by position.
        tensors: the tensor inputs' spans, in order (a piped tensor's is the call's).
    """

    call: Span
    positional: list[Span] | None = None
    keyword: dict[str, Span] | None = None
    n_pos: int = 0
    tensors: list[Span] | None = None

    def of(self, op: OpDef, arg: str | None) -> Span:
        """The span of argument `arg` (an argument's name or a tensor's, op.tensor_names), else the call's."""
        if arg is None:
            return self.call
        if self.keyword and arg in self.keyword:
            return self.keyword[arg]
        names = [a.name for a in op.args]
        if self.positional and arg in names and names.index(arg) < min(self.n_pos, len(self.positional)):
            return self.positional[names.index(arg)]
        if self.tensors and arg in op.tensor_names and op.tensor_names.index(arg) < len(self.tensors):
            return self.tensors[op.tensor_names.index(arg)]
        return self.call


def _op_names() -> list[str]:
    from ..ops._registry import all_ops

    return list(all_ops())


def _unknown_op_hint(name: str) -> str:
    lower = name.lower()
    if lower in _op_names():
        return f"op names are lower case: {lower}"
    return (
        op_hint(name)
        or "`specc ops` lists the ops (docs/ops.md); blocks must be defined or imported before use"
    )


def _tensor_hint(op: OpDef) -> str:
    lo, hi = op.tensor_range
    if lo == 1 and hi == 1:
        return f"apply it to one value: `x -> {op.name}(...)` or `{op.name}(x, ...)`"
    return f"pass the tensors first: {op.name}(a, b, ...)"


def _names_in(e: Any) -> set[str]:
    """Every name an expression reads (`Name` nodes at any depth)."""
    if isinstance(e, ast.Name):
        return {e.id}
    if isinstance(e, tuple | list):
        return set().union(*(_names_in(x) for x in e)) if e else set()
    if hasattr(e, "__dataclass_fields__"):
        return set().union(*(_names_in(getattr(e, f)) for f in e.__dataclass_fields__ if f != "span"))
    return set()


def _op_hint(op: OpDef) -> str:
    """The hint of an op's error that brings none of its own: what the op takes, and where it is described."""
    from ..reference import signature

    return f"{op.name} is {signature(op)}; `specc ops {op.name}` describes it, with an example"


def _fmt_exprs(dims: tuple[ast.Expr, ...]) -> str:
    from ..frontend.fmt import format_expr

    return "[" + ", ".join(format_expr(d) for d in dims) + "]"


def _inside(span: Span | None, outer: Span) -> bool:
    return (
        span is not None
        and span.file == outer.file
        and (outer.line, outer.col) <= (span.line, span.col)
        and (span.end_line, span.end_col) <= (outer.end_line, outer.end_col)
    )


def build_graph(program: Program, model: str | None = None) -> Graph:
    """Check one model of a loaded program and return its typed graph; raises SpecError listing every problem."""
    m = program.model(model)
    # Building allocates millions of small acyclic objects; the cyclic collector would rescan them all again and
    # again (100k nodes: 9 s instead of 4), so it pauses while the graph is built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return GraphBuilder(program).build(m)
    except SpecError as e:
        raise e.with_sources(program.sources) from None
    finally:
        if collecting:
            gc.enable()


_FREE_SIZE_HINT = (
    "a size that stays free (known only when data arrive) cannot bound a slice; fix it in the input's type "
    "(`input x: f32[N, 8]`), or in a block, where the caller's tensor fixes it"
)


def _known_int(v: Any) -> Any:
    """A size whose value is known (`W` bound to 8 by a block's input pattern, `W / 2`) as that int; anything
    else as it is."""
    if isinstance(v, Dim) and (n := v.as_int()) is not None:
        return n
    return v


def _x64_enabled() -> bool:
    """JAX's 64-bit mode, as JAX reads it from the environment (the checker does not import JAX)."""
    return os.environ.get("JAX_ENABLE_X64", "").strip().lower() in ("1", "true", "t", "yes", "y", "on")
