"""Graph → flax.nnx.Module: each node runs the lowering its op defines, picked per platform.

`build_module(graph, rngs=...)` returns a `SpecModule`, an ordinary NNX module: its layers are real Flax layers
(nnx.Linear, nnx.Conv, nnx.BatchNorm, ...) held in `model.layers` by node name, so `nnx.state`, `nnx.split`,
optimizers and checkpoints treat it like hand-written Flax. The dataflow is a precomputed plan (a static attribute):
calling the model walks it once, in topological order, touching only the nodes the requested values need.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from ..errors import SpecError, dym_suffix
from ..ir.dims import Dim
from ..ir.graph import Fn, Graph, Node, Ref, path_between
from ..ir.types import JNP_NAMES, TensorType
from ..ops._registry import Lowering, get_op
from . import draws, init_draws
from .init_draws import Record, Replay
from .reroll import CARRY, INTERNAL, LOOP_SLOW_CPU_OPS, Run, graph_runs, run_index
from .reroll import layer_keys as reroll_layer_keys

# ---- initialisers ----------------------------------------------------------------------------------

# spec name → (jax.nn.initializers name, its argument names in the spec's order, factory?)
# `zeros`/`ones` are initialisers themselves; the others are factories called with their arguments.
INITIALIZERS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "glorot_uniform": ("glorot_uniform", (), True),
    "xavier_uniform": ("glorot_uniform", (), True),
    "glorot_normal": ("glorot_normal", (), True),
    "xavier_normal": ("glorot_normal", (), True),
    "he_normal": ("he_normal", (), True),
    "he_uniform": ("he_uniform", (), True),
    "lecun_normal": ("lecun_normal", (), True),
    "lecun_uniform": ("lecun_uniform", (), True),
    "normal": ("normal", ("stddev",), True),
    "truncated_normal": ("truncated_normal", ("stddev",), True),
    "uniform": ("uniform", ("scale",), True),
    "constant": ("constant", ("value",), True),
    "orthogonal": ("orthogonal", (), True),
    "zeros": ("zeros", (), False),
    "ones": ("ones", (), False),
}
SPEC_ARG_NAMES = {"std": "stddev", "scale": "scale", "value": "value"}
DEFAULT_WEIGHT_INIT = "glorot_uniform"  # LANGUAGE.md §5; Flax's own default is lecun_normal
DEFAULT_BIAS_INIT = "zeros"


def init_call(fn: Fn | str | None, default: str = DEFAULT_WEIGHT_INIT) -> tuple[str, dict[str, Any], bool]:
    """The jax.nn.initializers name, keyword arguments and whether it is a factory, for a spec initialiser."""
    if fn is None:
        fn = default
    if isinstance(fn, str):
        fn = Fn(fn)
    name, argnames, factory = INITIALIZERS[fn.name]
    kwargs = dict(zip(argnames, fn.args, strict=False))
    for k, v in fn.kwargs:
        kwargs[SPEC_ARG_NAMES.get(k, k)] = v
    return name, kwargs, factory


def initializer(fn: Fn | str | None, default: str = DEFAULT_WEIGHT_INIT) -> Callable[..., Any]:
    """A jax.nn.initializers function for `init=` (None: the op's default)."""
    name, kwargs, factory = init_call(fn, default)
    if name == "uniform":
        return symmetric_uniform(**kwargs)
    f = getattr(jax.nn.initializers, name)
    return f(**kwargs) if factory else f


def symmetric_uniform(scale: float = 1e-2) -> Callable[..., Any]:
    """`uniform(s)`: U(−s, s), the lectures' "small random weights in [−ε, ε]" (PyTorch's uniform_(−a, a),
    Keras's RandomUniform(−0.05, 0.05)); JAX's own `uniform(s)` draws in [0, s), every weight positive."""

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


# ---- contexts the op lowerings receive -------------------------------------------------------------


class BuildContext:
    """What a lowering's `build(attrs, input_types, ctx)` gets: the libraries, the RNG streams and initialisers.

    `nnx`, `jax`, `jnp` are the modules themselves, `draws` specc's random draws (draws.py: its Dropout); `init(fn,
    default)` maps a spec initialiser to a JAX one; `rngs` is the nnx.Rngs the model is built with ("params" for
    weights, "dropout", "sample"). `shapes_only`:
    an abstract build's context, whose `init` gives zeros of the asked shape instead of a draw (the initialiser is
    still looked up, so a bad one fails alike). `feed`: an init_draws.Record or Replay the initialisers go
    through (LayerFactory's shared draws).
    """

    jax = jax
    jnp = jnp
    lax = lax
    nnx = nnx
    draws = draws

    def __init__(self, rngs: nnx.Rngs, shapes_only: bool = False, feed: Record | Replay | None = None):
        self.rngs = rngs
        self.shapes_only = shapes_only
        self.feed = feed

    def init(self, fn: Fn | None, default: str = DEFAULT_WEIGHT_INIT) -> Callable[..., Any]:
        made = initializer(fn, default)
        # an abstract build needs only the variables' shapes: tracing each distinct shape's random draw cost
        # ~20 ms a layer (a 1,000-node chain of distinct dense layers: 8.7 of its 15.8 s of build)
        if self.shapes_only:
            return _zeros_init
        if self.feed is not None:
            name, kwargs, _ = init_call(fn, default)
            return self.feed.wrap(name, kwargs, made)
        return made


def _zeros_init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """An initialiser's stand-in in an abstract build: its shape and dtype, no draw."""
    return jnp.zeros(shape, dtype)


# the devices the batch of the program being traced is split over (`data_shards`), None outside one
_SHARDS: ContextVar[int | None] = ContextVar("specc_data_shards", default=None)


@contextlib.contextmanager
def data_shards(n: int) -> Iterator[None]:
    """While a program is traced inside it, its batch is split over `n` devices (the train loop's mesh): a
    lowering that sizes its work by one device's share reads `ApplyContext.shards`."""
    token = _SHARDS.set(n)
    try:
        yield
    finally:
        _SHARDS.reset(token)


# the op nodes whose size-gated form ran the reference at the traced shapes (`fallbacks`), None outside one
_FELL_BACK: ContextVar[set[str] | None] = ContextVar("specc_fell_back", default=None)


@contextlib.contextmanager
def fallbacks() -> Iterator[set[str]]:
    """While a program is traced inside it, the yielded set collects the op nodes whose chosen form ran the
    reference instead, their traced shapes outside its size gate (`ApplyContext.reference_instead`)."""
    seen: set[str] = set()
    token = _FELL_BACK.set(seen)
    try:
        yield seen
    finally:
        _FELL_BACK.reset(token)


class ApplyContext:
    """What a lowering's `apply(module, attrs, inputs, ctx)` gets: the libraries (and `draws`, specc's flat random
    draws), the node, and its sizes.

    `node` is the IR node being run; `shape(t)` gives a TensorType's concrete shape with the model's free sizes
    (N, T, ...) bound from the actual inputs (-1 for one size that stays unknown, as reshape accepts);
    `function_of(x, y)` is value y as a function of value x (`grad`'s lowering differentiates it).
    """

    __slots__ = ("env", "node", "rerun")
    jax = jax
    jnp = jnp
    lax = lax
    nnx = nnx
    draws = draws

    def __init__(self, env: dict[str, int], rerun: Callable[[Ref, Ref], Callable[[Any], Any]] | None = None):
        self.env = env
        self.node: Node | None = None
        self.rerun = rerun

    def function_of(self, x: Ref, y: Ref) -> Callable[[Any], Any]:
        """y as a function of x: the graph's path from x to y run again from a given value of x, everything
        else held at the values of this call (the same parameters, so outer gradients reach them)."""
        if self.rerun is None:
            raise NotImplementedError("this context runs one op on its own, outside a model")
        return self.rerun(x, y)

    def reference_instead(self) -> None:
        """A size-gated form runs the reference at these shapes: told to `fallbacks` (`specc compile --json`)."""
        seen = _FELL_BACK.get()
        if seen is not None and self.node is not None:
            seen.add(self.node.name)

    @property
    def shards(self) -> int:
        """The devices the traced batch is split over: the train loop's (`data_shards`), else the process's
        devices (what `specc train` would split it over by default)."""
        n = _SHARDS.get()
        return jax.local_device_count() if n is None else n

    def dim(self, d: Dim) -> int | None:
        return d.subst(self.env).as_int() if not d.is_const else d.value

    def shape(self, t: TensorType | Sequence[Dim]) -> tuple[int, ...]:
        dims = t.dims if isinstance(t, TensorType) else t
        out = [self.dim(d) for d in dims]
        if out.count(None) > 1:
            raise ValueError(f"cannot size {list(map(str, dims))} from the inputs' sizes {self.env}")
        return tuple(-1 if v is None else v for v in out)

    @property
    def out_type(self) -> TensorType:
        assert self.node is not None
        return self.node.outputs[0]


# ---- lowering choice -------------------------------------------------------------------------------


def current_platform() -> str:
    return jax.default_backend()


# how a SpecModule picks each op node's lowering: (node, input types) → lowering
Chooser = Callable[[Node, tuple[TensorType, ...]], Lowering]


def choose_lowering(
    node: Node, types: tuple[TensorType, ...], platform: str, forward: bool = False
) -> Lowering:
    """The first specialised lowering whose precondition holds on `platform`, else the reference one (first);
    `forward`: for a program that runs the model forward only (`Lowering.forward`'s precondition where it has one).

    platform "reference" (or any name no precondition accepts) always picks the reference lowerings.
    """
    op = get_op(node.op)
    if op is None or not op.lowerings:
        raise NotImplementedError(f"op {node.op} has no JAX lowering")
    attrs = node.attr
    for lw in op.lowerings[1:]:
        rule = lw.forward if forward and lw.forward is not None else lw.when
        if rule is not None and rule(attrs, types, platform):
            return lw
    return op.lowerings[0]


# ---- the plan --------------------------------------------------------------------------------------

INPUT, PARAM, OP = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Step:
    """One node to run: how to get its value."""

    id: int
    name: str
    kind: int
    key: str | None  # its entry in model.layers, if it has one
    apply: Callable[..., Any] | None
    attrs: dict[str, Any]
    refs: tuple[tuple[int, int], ...]  # (node, output index or -1 for a single-output node)
    node: Node
    lowering: str
    input: str | None = None  # inputs: the name callers pass it by
    dtype: Any = None  # inputs: the declared dtype


class Plan:
    """The static part of a SpecModule: the graph and the steps that run it (hashed by identity, so jit caches
    keyed on a module's graphdef never hash a 10k-node graph)."""

    def __init__(self, graph: Graph, steps: tuple[Step, ...], platform: str, runs: Sequence[Run] = ()):
        self.graph = graph
        self.steps = steps
        self.platform = platform
        self.runs = tuple(runs)
        # each step's run (index into runs), -1 outside any
        self.run_of = run_index(self.runs, len(steps))
        self.by_name = {s.name: s for s in steps}
        self.inputs = tuple((name, nid) for name, nid in graph.inputs)
        # symbols bound from input shapes: (input name, axis, symbol)
        self.binders = tuple(
            (name, i, sym)
            for name, nid in graph.inputs
            for i, d in enumerate(graph.nodes[nid].type.dims)
            if (sym := d.as_symbol()) is not None
        )
        self._needed: dict[tuple[int, ...], tuple[Step, ...]] = {}
        self._paths: dict[tuple[Ref, Ref], tuple[Step, ...]] = {}

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"Plan({self.graph.model}, {len(self.steps)} nodes, {self.platform})"

    def path(self, x: Ref, y: Ref) -> tuple[Step, ...]:
        """The steps that compute y from x, x's own excluded (cached); the checker proved y depends on x."""
        got = self._paths.get((x, y))
        if got is None:
            ids = path_between(self.graph.nodes, x, y)
            assert ids is not None, f"{self.graph.nodes[y.node].name} does not depend on {x}"
            got = tuple(self.steps[i] for i in ids[1:])
            self._paths[(x, y)] = got
        return got

    def needed(self, targets: Iterable[int]) -> tuple[Step, ...]:
        """The steps the target nodes depend on, in order (one backward sweep, cached)."""
        key = tuple(sorted(set(targets)))
        got = self._needed.get(key)
        if got is None:
            need = [False] * len(self.steps)
            for t in key:
                need[t] = True
            for s in reversed(self.steps):
                if need[s.id]:
                    for r, _ in s.refs:
                        need[r] = True
            got = tuple(s for s in self.steps if need[s.id])
            self._needed[key] = got
        return got


def layer_keys(graph: Graph, roll: bool | None = None) -> dict[int, str]:
    """A Python identifier per node with parameters, state or RNG (`stage1.0/conv` → `stage1_0_conv`), unique:
    reroll.layer_keys, which also keeps clear of nnx.Dict's own attributes."""
    return reroll_layer_keys(graph, roll, frozenset(dir(nnx.Dict)))


class ParamValue(nnx.Module):
    """A free trainable tensor (`param w: [3, 2] = normal(0.1)`)."""

    def __init__(self, shape: tuple[int, ...], init: Callable[..., Any], *, rngs: nnx.Rngs):
        self.value = nnx.Param(init(rngs.params(), shape, jnp.float32))


def _param_value(attrs: dict[str, Any], c: BuildContext) -> ParamValue:
    return ParamValue(tuple(attrs["shape"]), c.init(attrs.get("init")), rngs=c.rngs)


# An initialiser runs once: XLA:CPU compiles it without LLVM's optimisations in a sixth of the time (the lecture
# convnet's four layers: 0.5 s instead of 3.3 s with a cold cache; the values are the same but for normal draws,
# which may differ in the last bit).
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
# But drawing many values without them is slow (threefry's loop at ~15M values a second on 2 cores): an initialiser
# of at least this many values keeps LLVM's optimisations, whose compilation it repays (cold builds, level 0 →
# 1: VGG-16 11.6 → 5.7 s, AlexNet 5.5 → 2.9 s, ResNet-50 6.8 → 6.0 s; the lecture convnet's 0.1M values 0.64 →
# 0.89 s the other way).
LONG_INIT_VALUES = 1 << 22
# XLA:CPU's newer MLIR fusion emitters compile a train step 1.5-2× slower than its LLVM loop emitters. For models
# with convolutions or windowed pooling the older emitters' step is as fast (one process, the two programs' calls
# interleaved, 30 each, 2 cores, compile / median step: lecture convnet 3.03 → 1.50 s / 38.9 → 37.8 ms, LeNet-5
# 2.39 → 1.29 s / 25.7 → 26.2 ms); elsewhere it is slower (LSTM 1.7 → 1.2 s / 29.5 → 30.7 ms, transformer block
# 2.8 → 1.7 s / 18.3-19.8 → 20.0-21.4 ms, MLP 1.06 → 0.65 s / 3.5 → 3.8 ms), and a run's steps outweigh its
# one compilation. So programs of conv models, and initialisers (run once), use the older emitters on the CPU.
# Their steps spend their time in library calls (matmuls, convolutions), so LLVM's level 1 serves them as well
# as its default 2 and compiles faster (2 devices; one process, two programs each, their calls interleaved, 30-60
# each; compile / median step, level 2 → 1: lecture convnet 1.48-1.56 → 1.10-1.15 s / 17.2-19.6 → 15.9-17.0 ms,
# LeNet-5 0.97-1.16 → 0.92-0.99 s / 16.4-16.6 → 16.5-16.9 ms, small ResNet 1.62-1.64 → 1.40-1.84 s / 183.7-183.8
# → 181.1-184.0 ms). The other models' steps are their own loops: level 1 made the LSTM's 4 % slower.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


def compiler_options(
    ops: Iterable[str] = (), once: bool = False, runs_long: bool = False
) -> dict[str, Any] | None:
    """XLA options for a program of specc's on this backend (None: XLA's defaults): for a model with these op
    names; `once`: a program run once (an initialiser) or for a short run (`execution.SHORT_RUN_S`), compiled with
    the loop emitters and without LLVM's optimisations — unless it `runs_long` (an initialiser drawing tens of
    millions of values: `LONG_INIT_VALUES`), which keeps them. An option this
    jaxlib does not know is left out (an older XLA refuses the whole compilation over it)."""
    if jax.default_backend() != "cpu":
        return None
    wanted: dict[str, Any] = dict(CPU_COMPILER_OPTIONS) if once or LOOP_SLOW_CPU_OPS.intersection(ops) else {}
    if once and not runs_long:
        wanted |= INIT_COMPILER_OPTIONS
    if not wanted:
        return None
    # one probe answers for every set of these options (their names and kinds of value); option by option only
    # if it fails
    if _compiles_with(tuple({**CPU_COMPILER_OPTIONS, **INIT_COMPILER_OPTIONS}.items())):
        return wanted
    return {k: v for k, v in wanted.items() if _compiles_with(((k, v),))} or None


def graph_compiler_options(graph: Graph, short_run: bool = False) -> dict[str, Any] | None:
    """compiler_options for the programs that run `graph` (its train, evaluation and prediction steps); `short_run`:
    those of a run whose steps take less than their compilation (`execution.SHORT_RUN_S`)."""
    return compiler_options((n.op for n in graph.nodes), once=short_run)


@cache
def _compiles_with(options: tuple[tuple[str, Any], ...]) -> bool:
    """Whether XLA compiles a one-line program with these options (once per process and set)."""
    try:
        jax.jit(lambda x: x + 1).lower(np.float32(0)).compile(compiler_options=dict(options))
    except Exception:  # JaxRuntimeError "No such compile option", or a value it refuses
        return False
    return True


class _Once:
    """A jitted initialiser, compiled on its first call with INIT_COMPILER_OPTIONS on the CPU; called inside
    another trace (a model built under jax.jit) it is traced into that program instead."""

    def __init__(self, jitted: Any):
        self.jitted = jitted
        self.compiled: Any = None

    def __call__(self, *args: Any) -> Any:
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
            return self.jitted(*args)
        if self.compiled is None:
            lowered = self.jitted.lower(*args)
            values = sum(math.prod(out.shape) for out in jax.tree.leaves(lowered.out_info))
            options = compiler_options(once=True, runs_long=values >= LONG_INIT_VALUES)
            self.compiled = lowered.compile(compiler_options=options)
        return self.compiled(*args)


class LayerFactory:
    """Creates each layer of a SpecModule from one trace per distinct (build, attributes, input types).

    A layer's parameters are what its build draws from the shared streams, so every layer gets the values one
    build of the whole model, layer after layer, would give it. Each distinct layer's build is traced once to
    record its initialiser calls (init_draws.Record); the layers asked for are then made together at the next
    `flush` (before a rolled run's layers, and at `finish`): the draws the records allow are drawn together
    (init_draws.shared_draws: a few vmapped draws instead of one threefry per parameter), and each layer is built
    again with its values (init_draws.Replay), threading the streams through. `together` (a small model): the
    draws and every layer's build in one program; otherwise each distinct layer's build is one small program,
    called per layer, and the draws programs of at most SHARED_DRAWS_MAX draws each, one per distinct list of
    draws (a deep chain of identical layers compiles a few small programs, not one per layer or one whole-model
    initialisation: XLA's compilation of that is superlinear in its layers). abstract: each layer's state as
    jax.ShapeDtypeStruct, from the same trace, nothing run.
    """

    def __init__(self, rngs: nnx.Rngs, abstract: bool, together: bool = False):
        self.rngs = rngs
        self.rngs_def, self.rng_state = nnx.split(rngs)
        self.abstract = abstract
        self.together = together and not abstract
        self.share = not abstract and init_draws.enabled()
        self.made: dict[Any, _Recorded] = {}
        self.pending: list[_Recorded] = []  # the layers asked for since the last flush, in order
        self.done: list[Any] = []  # the layers made: Pending(i) is done[i]
        self.draw_programs: dict[tuple[tuple[str, int, init_draws.Draw], ...], Any] = {}

    def __call__(self, key: Any, build: Callable[[BuildContext], Any]) -> Any:
        """A new layer from `build` (None if it declines): its shapes (abstract) or a Pending made at the next
        flush; `key` identifies what it builds (hashable, or not cached)."""
        try:
            entry = self.made.get(key)
        except TypeError:  # an attribute value without a hash: built on its own
            key, entry = object(), None
        if entry is None:
            entry = self.made[key] = self._record(build)
        if entry.graphdef is None:
            return None
        if self.abstract:  # every copy of a layer gets its own variables (shared ones would be one layer)
            return nnx.merge(entry.graphdef, entry.shapes, copy=True)
        self.pending.append(entry)
        return Pending(len(self.done) + len(self.pending) - 1)

    def _record(self, build: Callable[[BuildContext], Any]) -> _Recorded:
        """Trace `build` once, abstractly: the layer's structure, its state's shapes and its initialiser calls."""
        out: list[Any] = []

        def init(rng_state: Any) -> Any:
            rngs = nnx.merge(self.rngs_def, rng_state)
            record = init_draws.Record(rngs, share=self.share)
            # keys are numbered only where draws are shared (an abstract build draws nothing)
            with record.numbered() if self.share else contextlib.nullcontext():
                layer = build(BuildContext(rngs, shapes_only=self.abstract, feed=record))
            gd, state = (None, None) if layer is None else nnx.split(layer)
            out[:] = [gd, record]
            return state

        shapes = jax.eval_shape(init, self.rng_state)
        gd, record = out
        return _Recorded(build, gd, shapes, tuple(record.calls), dict(record.keys))

    def _replay(self, entry: _Recorded) -> Callable[[Any, Sequence[Any]], tuple[Any, Any]]:
        """(rng state, the values of its shared draws) → (the layer's state, rng state after it)."""

        def init(rng_state: Any, values: Sequence[Any]) -> tuple[Any, Any]:
            rngs = nnx.merge(self.rngs_def, rng_state)
            replay = init_draws.Replay(entry.calls, values)
            layer = entry.build(BuildContext(rngs, feed=replay))
            replay.done()
            return nnx.split(layer)[1], nnx.state(rngs)

        return init

    def flush(self) -> None:
        """Make the layers asked for since the last flush, in order, leaving the streams past them."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        # each shared draw: its stream and how many keys that stream hands out before it, from the flush's start
        draws: list[tuple[str, int, init_draws.Draw]] = []
        mine: list[list[int]] = []  # per layer, its draws' places in `draws`
        taken: collections.Counter[str] = collections.Counter()
        for entry in pending:
            mine.append([])
            for call in entry.calls:
                if call.draw is not None:
                    mine[-1].append(len(draws))
                    draws.append((call.stream, taken[call.stream] + call.ordinal, call.draw))
            taken.update(entry.keys)
        for entry in pending:
            if entry.program is None:
                entry.program = _Once(jax.jit(self._replay(entry)))
        if self.together:

            def all_layers(rng_state: Any) -> tuple[list[Any], Any]:
                values = init_draws.shared_draws(nnx.merge(self.rngs_def, rng_state), draws) if draws else []
                # each layer's build a jit of its own inside this one: traced once per distinct layer, in a trace
                # of its own (Flax's updates of a stream's counter ask each tracer for its sharding, and JAX's
                # answer walks the whole trace so far: GoogLeNet's 174 keys took 2.1 s to trace inline)
                return _built(pending, mine, rng_state, values)

            states, self.rng_state = _Once(jax.jit(all_layers))(self.rng_state)
        else:
            states, self.rng_state = _built(pending, mine, self.rng_state, self._draw(draws))
        self.done += [nnx.merge(entry.graphdef, st) for entry, st in zip(pending, states, strict=True)]

    def _draw(self, draws: Sequence[tuple[str, int, init_draws.Draw]]) -> list[Any]:
        """The values of `draws` (as `flush` lists them), drawn by programs of at most SHARED_DRAWS_MAX draws: each
        chunk's places relative to its first draw's in each stream, so identical chunks share one program."""
        values: list[Any] = []
        for start in range(0, len(draws), SHARED_DRAWS_MAX):
            chunk = draws[start : start + SHARED_DRAWS_MAX]
            first: dict[str, int] = {}
            for stream, at, _ in chunk:
                first.setdefault(stream, at)
            spec = tuple((stream, at - first[stream], draw) for stream, at, draw in chunk)
            program = self.draw_programs.get(spec)
            if program is None:

                def drawn(rng_state: Any, skip: dict[str, Any], spec: Any = spec) -> list[Any]:
                    return init_draws.shared_draws(nnx.merge(self.rngs_def, rng_state), spec, skip)

                program = self.draw_programs[spec] = _Once(jax.jit(drawn))
            values += program(self.rng_state, {s: np.uint32(at) for s, at in first.items()})
        return values

    def stacked(self, builds: Sequence[Callable[[BuildContext], Any] | None], copies: int) -> list[Any]:
        """The layers of `copies` copies of a segment (builds[j]: position j's, None for no layer), one layer per
        position whose variables carry a leading axis of length `copies`: a lax.scan over the copies builds each
        position in turn, threading the streams, so copy c's values are those building copy after copy gives.
        None for a position without a layer. The layers asked for before are made first (`flush`)."""
        self.flush()
        graphdefs: list[Any] = [None] * len(builds)

        def one_copy(rng_state: Any, _: Any) -> tuple[Any, list[Any]]:
            states: list[Any] = []
            for j, build in enumerate(builds):
                layer = None
                if build is not None:
                    rngs = nnx.merge(self.rngs_def, rng_state)
                    layer = build(BuildContext(rngs, shapes_only=self.abstract))
                    rng_state = nnx.state(rngs)
                if layer is None:
                    states.append(None)
                    continue
                graphdefs[j], state = nnx.split(layer)
                states.append(state)
            return rng_state, states

        def init(rng_state: Any) -> tuple[Any, list[Any]]:
            return lax.scan(one_copy, rng_state, None, length=copies)

        if self.abstract:
            states = jax.eval_shape(init, self.rng_state)[1]
        else:
            self.rng_state, states = _Once(jax.jit(init))(self.rng_state)
        return [None if gd is None else nnx.merge(gd, st) for gd, st in zip(graphdefs, states, strict=True)]

    def finish(self) -> list[Any]:
        """Make the layers still asked for and leave the caller's streams advanced past every layer, as building
        the layers one by one would; returns every layer made (Pending(i) is the i-th)."""
        self.flush()
        if not self.abstract:
            nnx.update(self.rngs, self.rng_state)
        return self.done


def _built(
    pending: Sequence[_Recorded], places: Sequence[Sequence[int]], rng_state: Any, values: Sequence[Any]
) -> tuple[list[Any], Any]:
    """Each pending layer's state from its program, in order, the streams threaded through; `places[i]`: layer
    i's shared draws' places in `values`."""
    states = []
    for entry, mine in zip(pending, places, strict=True):
        state, rng_state = entry.program(rng_state, [values[i] for i in mine])
        states.append(state)
    return states, rng_state


@dataclass
class _Recorded:
    """A distinct layer's build as LayerFactory traced it: its structure (None: the build declines), its state's
    shapes, its initialiser calls and how many keys it takes from each stream; `program`, its build as a program
    of (rng state, its shared draws' values), once made."""

    build: Callable[[BuildContext], Any]
    graphdef: Any
    shapes: Any
    calls: tuple[init_draws.Call, ...]
    keys: dict[str, int]
    program: Any = None


# At most this many shared draws in one program of a model's layers made one program each (LayerFactory._draw).
SHARED_DRAWS_MAX = 256


@dataclass(frozen=True)
class Pending:
    """A layer LayerFactory makes at finish(): the index in what finish() returns."""

    index: int


# A model of at most this many nodes initialises its layers in one program (LayerFactory's `together`): the
# lecture convnet's four layers took 4 × ~0.3 s to trace, lower and compile one by one with a cold cache. Cold
# builds, one program against a program per distinct layer: EfficientNet-B0 (266 nodes) 4.1-5.2 against 6.9-7.7 s,
# DenseNet-121 (428) 5.5-6.1 against 11.4-11.5 s, a chain of 1,002 nodes of ≈ 400 distinct dense layers 10.7
# against 27.0 s, of 1,002 identical ones 4.4 against 5.3 s; but 4,002 identical ones 35.0 against 4.2 s (XLA's
# compilation of one long program is superlinear).
TOGETHER_MAX_NODES = 1024


def check_call_inputs(graph: Graph, given: Mapping[str, Any]) -> None:
    """A call's inputs against the model's: known names, and each array's rank and fixed sizes (static shapes,
    so traced values are checked as they are traced, once)."""
    declared = {name: graph.nodes[nid].type for name, nid in graph.inputs}
    sizes: dict[str, tuple[int, str]] = {}  # a size name (N, T) → its value and the input that gave it
    for name, v in given.items():
        if name not in declared:
            raise SpecError.one(
                "value error",
                f"model {graph.model} has no input '{name}'{dym_suffix(name, list(declared))}",
                None,
                f"its inputs: {', '.join(f'{k}: {t}' for k, t in declared.items())}",
            )
        t = declared[name]
        shape = getattr(v, "shape", None)
        if shape is None and (isinstance(v, str | bytes) or np.asarray(v).dtype.kind not in "biuf"):
            raise SpecError.one(
                "value error",
                f"{name} is not an array of numbers ({type(v).__name__})",
                None,
                f"give {name}: {t}",
            )
        shape = tuple(np.shape(v)) if shape is None else tuple(shape)
        wrong = len(shape) != len(t.dims) or any(
            d.is_const and int(n) != d.value for d, n in zip(t.dims, shape, strict=True)
        )
        if wrong:
            raise SpecError.one(
                "value error",
                f"{name} has the shape {list(shape)}, but model {graph.model} takes {name}: {t}",
                None,
                f"give {name} {len(t.dims)} axes: {t.dims[0]} examples first"
                + ("" if len(t.dims) < 2 else ", then " + ", ".join(str(d) for d in t.dims[1:])),
            )
        for d, n in zip(t.dims, shape, strict=True):
            size = str(d)
            if d.is_const or not size.isidentifier() or not isinstance(n, int):
                continue
            first, other = sizes.setdefault(size, (n, name))
            if first != n:
                raise SpecError.one(
                    "value error",
                    f"{name} has {size} = {n}, and {other} has {size} = {first}",
                    None,
                    f"the inputs share the size {size}: give them the same {size}",
                )


class SpecModule(nnx.Module):
    """A spec's model as a flax.nnx.Module.

    Call it with the inputs by name: `model(x=images)` → {output name: array}. `values(inputs, names)` returns
    any named value, `trace(inputs)` every node's. `train()` / `eval()` switch dropout and batch-norm.

    Args:
        graph: the checked IR (`specc.load(...).graph()`).
        rngs: streams "params" (initialisation), "dropout", "sample" (sample_normal); default nnx.Rngs(seed).
        platform: picks among each op's lowerings ("cpu", "gpu", "tpu"; default: JAX's backend;
            "reference": the reference lowering of every op).
        choose: (node, input types) → its lowering, instead of the platform's rule (`choose_lowering`); e.g.
            backend.tuning.MeasuredLowerings for `--lowering measure`.
    """

    def __init__(
        self,
        graph: Graph,
        *,
        rngs: nnx.Rngs,
        platform: str,
        abstract: bool = False,
        roll: bool | None = None,
        choose: Chooser | None = None,
    ):
        pick: Chooser = choose or (lambda n, types: choose_lowering(n, types, platform))
        # forward-only programs (`forward_only`): the platform's forward rule; a chooser given picks for both
        pick_forward: Chooser = choose or (lambda n, types: choose_lowering(n, types, platform, forward=True))
        forward_forms: dict[int, Lowering] = {}  # op nodes whose forward-only form is another than `pick`'s
        keys = layer_keys(graph, roll)
        runs = graph_runs(graph, roll)
        run_at = {run.start: run for run in runs}
        make = LayerFactory(rngs, abstract, together=not runs and len(graph.nodes) <= TOGETHER_MAX_NODES)

        def builder(
            n: Node,
        ) -> tuple[Lowering | None, tuple[TensorType, ...], Any, Callable[[BuildContext], Any] | None]:
            """The node's lowering (None for a param), its input types, its cache key and its layer's build (None:
            no layer)."""
            attrs = n.attr
            if n.op == "param":
                return None, (), (_param_value, n.attrs), partial(_param_value, attrs)
            types = tuple(graph.type_of(r) for r in n.inputs)
            lw = pick(n, types)
            op = get_op(n.op)
            assert op is not None
            build = lw.build if lw.build is not None else op.lowerings[0].build
            return lw, types, (build, n.attrs, types), None if build is None else partial(build, attrs, types)

        steps: list[Step] = []
        layers: dict[str, Any] = {}
        input_ids = dict((nid, name) for name, nid in graph.inputs)
        rolled: set[int] = set()  # nodes of rolled runs whose (stacked) layer exists
        run_of = run_index(runs, len(graph.nodes))
        for n in graph.nodes:
            refs = tuple((r.node, -1 if len(graph.nodes[r.node].outputs) == 1 else r.index) for r in n.inputs)
            if n.op == "input":
                steps.append(
                    Step(
                        n.id,
                        n.name,
                        INPUT,
                        None,
                        None,
                        {},
                        refs,
                        n,
                        "input",
                        input_ids.get(n.id, n.name),
                        jnp.dtype(JNP_NAMES[n.type.dtype]),
                    )
                )
                continue
            attrs = n.attr
            if n.shares is not None:
                # a later application of a named instance runs the owner's layer, with the owner's lowering
                owner = graph.nodes[n.shares]
                owned = pick(owner, tuple(graph.type_of(r) for r in owner.inputs))
                steps.append(Step(n.id, n.name, OP, keys[n.shares], owned.apply, attrs, refs, n, owned.name))
                continue
            if n.id in run_at:  # a rolled run: every copy's layers at once, one stacked layer per position
                run = run_at[n.id]
                segment = graph.nodes[run.start : run.start + run.length]
                made = make.stacked([builder(m)[3] for m in segment], run.copies)
                for m, layer in zip(segment, made, strict=True):
                    if layer is not None:
                        layers[keys[m.id]] = layer
                        rolled.update(range(m.id, run.end, run.length))
            lw, types, cache_key, build = builder(n)
            key = None
            if run_of[n.id] >= 0:
                key = keys[n.id] if n.id in rolled else None
            elif build is not None:
                layer = make(cache_key, build)
                if layer is not None:  # a build may decline (positional with fixed sinusoids owns nothing)
                    key = keys[n.id]
                    layers[key] = layer
            if lw is None:
                steps.append(Step(n.id, n.name, PARAM, key, None, attrs, refs, n, "param"))
            else:
                steps.append(Step(n.id, n.name, OP, key, lw.apply, attrs, refs, n, lw.name))
                fw = pick_forward(n, types)
                if fw is not lw:  # every form builds the reference's layer, so the layer serves both
                    forward_forms[n.id] = fw
        for s in steps:  # a later application of a named instance runs its owner's form
            if s.kind == OP and s.node.shares in forward_forms:
                forward_forms[s.id] = forward_forms[s.node.shares]
        made = make.finish()
        layers = {k: made[v.index] if isinstance(v, Pending) else v for k, v in layers.items()}
        self.train_plan = Plan(graph, tuple(steps), platform, runs)
        self.forward_plan = self.train_plan
        if forward_forms:
            forward_steps = tuple(
                replace(s, apply=forward_forms[s.id].apply, lowering=forward_forms[s.id].name)
                if s.id in forward_forms
                else s
                for s in steps
            )
            self.forward_plan = Plan(graph, forward_steps, platform, runs)
        # True in the programs that only run the model forward (forward_graphdef): each op in its forward form
        self.forward_only = False
        self.layers = nnx.Dict(layers)

    @property
    def plan(self) -> Plan:
        """The steps this module runs: the forward-only forms' (`forward_only`) or the training ones'."""
        return self.forward_plan if self.forward_only else self.train_plan

    # ---- the public calls

    @property
    def graph(self) -> Graph:
        return self.plan.graph

    def __call__(self, inputs: Mapping[str, Any] | None = None, /, **kw: Any) -> dict[str, Any]:
        """The model's outputs, by name; the inputs by name (`model(x=...)` or `model({"x": ...})`), each of its
        declared rank and fixed sizes (a SpecError naming the input, as `Run.predict` gives, where JAX failed
        deep in an op or broadcast a wrong rank silently)."""
        graph = self.plan.graph
        if inputs is not None and not isinstance(inputs, Mapping):
            first = graph.inputs[0][0] if graph.inputs else "x"
            raise SpecError.one(
                "value error",
                f"model {graph.model} takes its inputs by name, got a positional {type(inputs).__name__}",
                None,
                f"call it as model({first}=...) or model({{'{first}': ...}})",
            )
        given = {**(inputs or {}), **kw}
        check_call_inputs(graph, given)
        return self.values(given, [name for name, _ in graph.outputs])

    def values(
        self, inputs: Mapping[str, Any], names: Iterable[str], given: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Named model-level values (outputs or any `name = ...`), or nodes by their full name; `given[node name]`
        stands for that node's output (a VAE's decoder run from a latent drawn from the prior)."""
        refs: dict[str, Ref] = {}
        vmap = self.plan.graph.value_map
        for name in names:
            if name in vmap:
                refs[name] = vmap[name]
            elif name in self.plan.by_name:
                refs[name] = Ref(self.plan.by_name[name].id)
            else:
                raise SpecError.one(
                    "value error",
                    f"model {self.plan.graph.model} has no value named {name!r}{dym_suffix(name, list(vmap))}",
                    None,
                    f"its values: {', '.join(list(vmap)[:30])}{', ...' if len(vmap) > 30 else ''}",
                )
        targets = [r.node for r in refs.values()]
        plan = self.plan
        # a run folds its copies into one loop: only its last copy's carried values exist afterwards
        roll = given is None and all(
            plan.run_of[t] < 0 or t in plan.runs[plan.run_of[t]].exported() for t in targets
        )
        vals = self._run(inputs, plan.needed(targets), None, given, roll=roll)
        out = {}
        for name, r in refs.items():
            v = vals[r.node]
            if v is None:
                missing = self._missing(inputs, r.node)
                raise SpecError.one(
                    "value error",
                    f"{name} needs the input(s) {', '.join(missing)}",
                    None,
                    f"give them by name: model({', '.join(f'{k}=...' for k in missing)})",
                )
            out[name] = v[r.index] if isinstance(v, tuple) else v
        return out

    def trace(self, inputs: Mapping[str, Any], perturb: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every node's output by node name (a tuple for multi-output nodes); `perturb[name]` is added to that
        node's output, so gradients w.r.t. zero perturbations are gradients w.r.t. the nodes."""
        vals = self._run(inputs, self.plan.steps, perturb)
        return {s.name: vals[s.id] for s in self.plan.steps if vals[s.id] is not None}

    # ---- the interpreter

    def _bind(self, inputs: Mapping[str, Any]) -> dict[str, int]:
        env: dict[str, int] = {}
        for name, axis, sym in self.plan.binders:
            v = inputs.get(name)
            if v is not None and sym not in env:
                # the static shape, not jnp.shape: converters such as jax2onnx make jnp.shape a traced value
                env[sym] = int(np.shape(v)[axis])
        return env

    def _run(
        self,
        inputs: Mapping[str, Any],
        steps: Iterable[Step],
        perturb: Mapping[str, Any] | None,
        given: Mapping[str, Any] | None = None,
        roll: bool = False,
    ) -> list[Any]:
        vals: list[Any] = [None] * len(self.plan.steps)
        layers = self.layers
        env = self._bind(inputs)
        ctx = ApplyContext(env, partial(self._function_of, vals, layers, env, perturb))
        run_of, done = self.plan.run_of, -1
        for s in steps:
            v: Any
            if s.id < done:
                continue
            if roll and run_of[s.id] >= 0:
                run = self.plan.runs[run_of[s.id]]
                if self._run_rolled(run, vals, ctx):
                    done = run.end
                    continue
            if given is not None and s.name in given:
                vals[s.id] = jnp.asarray(given[s.name])
                continue
            if s.kind == INPUT:
                assert s.input is not None  # input steps always carry their name
                x = inputs.get(s.input)
                v = None if x is None else jnp.asarray(x, dtype=s.dtype)
            elif s.kind == PARAM and run_of[s.id] >= 0:
                v = self._copy_layer(s).value[...]
            elif s.kind == OP and run_of[s.id] >= 0 and s.key is not None:
                # one copy of a rolled run, run on its own: its slice of the stacked layer
                args = _args(s, vals)
                if args is None:
                    continue
                layer = self._copy_layer(s)
                v = _applied(s, layer, args, ctx)
                self._copy_back(s, layer)
            else:
                v = _step_value(s, vals, layers, ctx)
                if v is None:
                    continue
            vals[s.id] = _perturbed(s, v, perturb)
        return vals

    def _function_of(
        self,
        vals: list[Any],
        layers: Any,
        env: dict[str, int],
        perturb: Mapping[str, Any] | None,
        x: Ref,
        y: Ref,
    ) -> Callable[[Any], Any]:
        """ApplyContext.function_of for a run whose values so far are `vals`: y as a function of x's value. The
        path's nodes are never in a rolled run (graph_runs leaves them out), so each runs on its own layer."""
        path = self.plan.path(x, y)
        graphdef, state = nnx.split(layers)

        def f(v: Any) -> Any:
            # fresh Variables at this trace level: a layer on the path that counts its RNG draws or updates batch
            # statistics may do so here; those changes are dropped (the forward pass made its own)
            mine = nnx.merge(graphdef, jax.tree.map(lambda a: a, state))
            local = list(vals)
            if isinstance(local[x.node], tuple):
                local[x.node] = (*local[x.node][: x.index], v, *local[x.node][x.index + 1 :])
            else:
                local[x.node] = v
            ctx = ApplyContext(env, partial(self._function_of, local, mine, env, perturb))
            for s in path:
                out = _step_value(s, local, mine, ctx)
                assert out is not None, f"{s.name} has an input that is absent"
                local[s.id] = _perturbed(s, out, perturb)
            got = local[y.node]
            return got[y.index] if isinstance(got, tuple) else got

        return f

    def _copy_layer(self, s: Step) -> Any:
        """Step s's copy of its rolled run's stacked layer, as a layer of its own."""
        c = self.plan.runs[self.plan.run_of[s.id]].copy_of(s.id)[0]
        graphdef, state = nnx.split(self.layers[s.key])
        return nnx.merge(graphdef, jax.tree.map(lambda x: x[c], state))

    def _copy_back(self, s: Step, layer: Any) -> None:
        """What running one copy changed besides parameters (batch statistics, RNG counters), into the stack."""
        new = nnx.state(layer, nnx.Not(nnx.Param))
        if jax.tree.leaves(new):
            c = self.plan.runs[self.plan.run_of[s.id]].copy_of(s.id)[0]
            stack = self.layers[s.key]
            old = nnx.state(stack, nnx.Not(nnx.Param))
            nnx.update(stack, jax.tree.map(lambda a, b: a.at[c].set(b), old, new))

    def _run_rolled(self, run: Run, vals: list[Any], ctx: ApplyContext) -> bool:
        """A run's copies as one lax.scan over its stacked layers; sets the last copy's carried values. False
        (nothing done) when an input it reads is absent."""
        steps = self.plan.steps
        shared_in = {v for row in run.sources for kind, v in row if kind not in (INTERNAL, CARRY)}
        carry = tuple(vals[r] for r in run.carry_in)
        if any(v is None for v in carry) or any(vals[r] is None for r in shared_in):
            return False
        first = steps[run.start : run.start + run.length]
        graphdefs: dict[int, Any] = {}
        stacked: dict[int, Any] = {}
        for j, s in enumerate(first):
            if s.key is not None:
                graphdefs[j], stacked[j] = nnx.split(self.layers[s.key])

        def body(
            carry: tuple[Any, ...], layer_states: dict[int, Any]
        ) -> tuple[tuple[Any, ...], dict[int, Any]]:
            layers = {j: nnx.merge(graphdefs[j], st) for j, st in layer_states.items()}
            local: list[Any] = []
            for j, s in enumerate(first):
                args = [
                    local[v] if kind == INTERNAL else carry[v] if kind == CARRY else vals[v]
                    for kind, v in run.sources[j]
                ]
                if s.kind == PARAM:
                    local.append(layers[j].value[...])
                    continue
                ctx.node = s.node
                assert s.apply is not None
                v = s.apply(layers.get(j), s.attrs, args, ctx)
                local.append(tuple(v) if isinstance(v, list) else v)
            # what the copy changed besides its parameters: batch statistics, RNG counters
            changed = {j: nnx.state(m, nnx.Not(nnx.Param)) for j, m in layers.items()}
            return tuple(local[p] for p in run.carried), changed

        out, changed = jax.lax.scan(body, carry, stacked)
        for j, st in changed.items():
            if jax.tree.leaves(st):
                nnx.update(self.layers[first[j].key], st)
        last = run.start + run.length * (run.copies - 1)
        for p, v in zip(run.carried, out, strict=True):
            vals[last + p] = v
        return True

    def _missing(self, inputs: Mapping[str, Any], target: int) -> list[str]:
        needed = {s.id for s in self.plan.needed([target])}
        return [name for name, nid in self.plan.inputs if nid in needed and inputs.get(name) is None]


def _args(s: Step, vals: list[Any]) -> list[Any] | None:
    """The values an op step reads, or None when one of them is absent (an input not given)."""
    args = [vals[i] if j < 0 else (vals[i][j] if vals[i] is not None else None) for i, j in s.refs]
    return None if any(a is None for a in args) else args


def _applied(s: Step, layer: Any, args: list[Any], ctx: ApplyContext) -> Any:
    ctx.node = s.node
    assert s.apply is not None  # op steps always carry their lowering
    v = s.apply(layer, s.attrs, args, ctx)
    return tuple(v) if isinstance(v, list) else v


def _step_value(s: Step, vals: list[Any], layers: Any, ctx: ApplyContext) -> Any:
    """A param's or an op's value, its layer (if any) its own, not a copy's slice of a stacked one; None when an
    input it reads is absent."""
    if s.kind == PARAM:
        return layers[s.key].value[...]
    args = _args(s, vals)
    if args is None:
        return None
    return _applied(s, None if s.key is None else layers[s.key], args, ctx)


def _perturbed(s: Step, v: Any, perturb: Mapping[str, Any] | None) -> Any:
    """`trace`'s perturbation of a node's output (zero, for gradients with respect to the node)."""
    if perturb is None or v is None or s.name not in perturb:
        return v
    p = perturb[s.name]
    return tuple(a + b for a, b in zip(v, p, strict=True)) if isinstance(v, tuple) else v + p


def seeded_rngs(seed: int) -> nnx.Rngs:
    """nnx.Rngs(seed), its key and counters made by one small program: made eagerly, they are three (threefry's
    seed, the key's staging, the counter's conversion: 0.16 s before the first layer with a cold cache on the CPU).
    The same values: the same calls, traced. (No compiler options: a model built inside a jit nests this one.)"""
    rngs = nnx.eval_shape(lambda: nnx.Rngs(seed))
    nnx.update(rngs, jax.jit(lambda: nnx.state(nnx.Rngs(seed)))())
    return rngs


def build_layer(
    build: Callable[..., Any], attrs: dict[str, Any], types: tuple[TensorType, ...], seed: int = 0
) -> Any:
    """One op's layer from a lowering's `build(attrs, types, ctx)`, initialised from `seed` as build_module's
    layers are (None if the build declines): jitted, where built eagerly each random draw is a program of its own
    at XLA's full optimisation (a 5×5 conv kernel's took 6 s to compile)."""
    make = LayerFactory(seeded_rngs(seed), abstract=False)
    layer = make(None, partial(build, attrs, types))
    return None if layer is None else make.finish()[layer.index]


def build_module(
    graph: Graph,
    *,
    rngs: nnx.Rngs | None = None,
    seed: int = 0,
    platform: str | None = None,
    abstract: bool = False,
    roll: bool | None = None,
    choose: Chooser | None = None,
) -> SpecModule:
    """Lower a checked graph to a SpecModule (an nnx.Module) with freshly initialised parameters.

    abstract: parameters and state as jax.ShapeDtypeStruct — nothing allocated or compiled; for counting,
        jax.eval_shape and XLA lowering of big models (what nnx.eval_shape gives, in linear time).
    roll: run repeated identical segments (`repeat`, long hand-written chains) as one lax.scan each — True
        always, False never, None by the rule in reroll.py (long runs only).
    choose: each op's lowering instead of the platform's rule (SpecModule's `choose`).
    """
    if rngs is None:  # an abstract build runs nothing: its streams need no program
        rngs = nnx.Rngs(seed) if abstract else seeded_rngs(seed)
    return SpecModule(
        graph, rngs=rngs, platform=platform or current_platform(), abstract=abstract, roll=roll, choose=choose
    )


def lowering_names(module: SpecModule, fell_back: Set[str] = frozenset()) -> dict[str, str]:
    """Which lowering each op node runs (node name → lowering name), in the module's mode (`forward_only`); the
    nodes in `fell_back` (`fallbacks`) ran the reference at the traced shapes."""
    plan = module.plan
    fell = {i for i, s in enumerate(plan.steps) if s.name in fell_back}
    for run in plan.runs:  # a rolled run traces its first copy only; every copy runs what it ran
        fell |= {
            i + k * run.length
            for i in fell
            if run.start <= i < run.start + run.length
            for k in range(run.copies)
        }
    return {
        s.name: "reference" if i in fell else s.lowering for i, s in enumerate(plan.steps) if s.kind == OP
    }


def forward_graphdef(module: SpecModule) -> Any:
    """`module`'s graphdef for a program that runs it forward only (validation, evaluation, prediction): each op
    in its forward form (`Lowering.forward`), the same parameters and state; the module itself is unchanged."""
    module.forward_only = True
    try:
        return nnx.graphdef(module)
    finally:
        module.forward_only = False


__all__ = [
    "ApplyContext",
    "BuildContext",
    "SpecModule",
    "build_module",
    "data_shards",
    "fallbacks",
    "initializer",
]
