"""`--lowering measure`: each op's lowering chosen by timing it, once per (op, attributes, input shapes, machine),
and remembered on disk; `auto` takes the rule table's choice (each lowering's `when`) instead.

For every op node with more than one lowering that applies (`Lowering.applies`), the reference and each
alternative run forward and backward on random inputs of the node's shapes (the batch split over the devices as
the train step splits it), jitted, their calls interleaved; an alternative replaces the reference only when its
median takes under MARGIN of the reference's. Timing an op alone is not timing it inside a model (XLA fuses it
with its neighbours; docs/benchmarks.md records rewrites that won alone and lost in the whole step), so where the
choices differ from the rule's, the whole model's forward and backward is timed both ways and the measured forms
run only under MODEL_MARGIN of the rule's time (`MeasuredLowerings.settle`).

The choices, verdicts and times go into `lowerings.json` in specc's cache folder (the one JAX's compilation cache
uses, `compile_cache.cache_dir`), keyed by everything that changes the answer: the op and its attributes (a
model: its structure), the input shapes and dtypes, the platform, the device kind and count, and the versions of
JAX and jaxlib. A later build with the same key measures nothing. A cache that cannot be read is ignored, one that
cannot be written is not a reason to fail: the choice then holds for this process only. `auto`, whose rules were
measured in whole train steps on the CPU, stays the default; `measure` is for machines that rule table has not
seen (another CPU, a GPU or TPU, where every rule keeps the reference).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from flax import nnx

from ..ir.graph import Graph, Node
from ..ir.types import JNP_NAMES, TensorType
from ..ops._registry import Lowering, OpDef, get_op
from .flax import ApplyContext, build_layer, choose_lowering, current_platform, data_shards

CACHE_FILE = "lowerings.json"
FORMAT = 1  # the file's layout; another number is read as empty
MARGIN = 0.95  # an alternative must take under this share of the reference's time
# the measured forms must take under this share of the rule's in the whole model: the rules were measured in whole
# train steps, and a model's forward and backward timed alone still leaves out the optimizer and the metrics
MODEL_MARGIN = 0.9
CALLS = 15  # timed calls per candidate at most, interleaved, after one untimed call (its compilation)
BUDGET = (
    2.0  # seconds of timed calls an op (or a model) may take, all its candidates together: at least 3 each
)
HOPELESS = 3.0  # a candidate whose first timed call takes this many times the baseline's is not called again


# The revision of specc's lowerings' code, in every cached timing's key: bumped when a form's code changes what it
# runs, so that a choice timed with the old code is timed again rather than obeyed (2: the tiled max-pool's one
# form on every device count; before, one device ran an argmax/gather form 4-20× slower on the pool's gradient).
# A form added is in the key by name (the candidates timed), with no bump.
FORMS_REVISION = 2


class MeasuredLowerings:
    """A `choose(node, input types) → Lowering` for SpecModule that times the candidates (see the module's doc).

    Args:
        platform: JAX's platform ("cpu", "gpu", "tpu"): the rule's choice where nothing is measured.
        env: the free sizes (the batch symbol: the whole batch) that make the input shapes concrete; a node whose
            shapes stay symbolic keeps the rule's choice.
        cache: the folder of lowerings.json, or None (remember in this process only).
        devices: the devices the batch is split over, as the train step splits it (its first axis).
        options: the XLA options the model's programs compile with (`graph_compiler_options`), which every
            candidate is compiled with too: on the CPU a conv model's steps use XLA's older emitters at LLVM level
            1, under which the forms' speeds differ from XLA's defaults'. Part of the cache's key.
    """

    def __init__(
        self,
        platform: str,
        env: Mapping[str, int],
        cache: Path | None,
        devices: int = 1,
        options: Mapping[str, Any] | None = None,
    ):
        self.platform = platform
        self.env = dict(env)
        self.devices = devices
        self.options = dict(options) if options else None
        self.path = None if cache is None else cache / CACHE_FILE
        self.table: dict[str, Any] = _read(self.path)
        self.measured = 0  # distinct (op, shapes) timed in this process
        self.reused = 0  # choices found in the cache
        self.seconds = 0.0  # spent timing
        self.made: dict[str, str] = {}  # this process's choices by key (a node asked again counts once)
        self.use_rule = False  # settle() found the rule's forms faster in the whole model
        self.verdict = ""  # settle()'s account
        device = jax.local_devices()[0]
        self.machine = [platform, device.device_kind, jax.local_device_count(), devices, jax.__version__]
        self.machine.append(jaxlib.__version__)
        self.machine.append(f"forms {FORMS_REVISION}")
        if self.options:  # a key without options is the one files written before them hold: XLA's defaults
            self.machine.append(sorted(self.options.items()))

    def __call__(self, node: Node, types: tuple[TensorType, ...]) -> Lowering:
        rule = choose_lowering(node, types, self.platform)
        if self.use_rule:
            return rule
        op = get_op(node.op)
        assert op is not None  # choose_lowering raised otherwise
        attrs = node.attr
        candidates = [op.lowerings[0]]
        candidates += [lw for lw in op.lowerings[1:] if lw.applies is not None and lw.applies(attrs, types)]
        maybe = [self._shape(t) for t in types]
        shapes = [s for s in maybe if s is not None]
        floating = all(jnp.issubdtype(JNP_NAMES[t.dtype], jnp.floating) for t in types)
        if len(candidates) < 2 or len(shapes) < len(maybe) or not floating:  # timed: forward and backward
            return rule
        key = json.dumps(
            [
                *self.machine,
                op.name,
                _attrs_key(attrs),
                [[s, t.dtype] for s, t in zip(shapes, types, strict=True)],
                [lw.name for lw in candidates],  # a form added since is timed, not passed over
            ]
        )
        by_name = {lw.name: lw for lw in candidates}
        if key in self.made:
            return by_name[self.made[key]]
        known = self.table.get(key)
        if isinstance(known, dict) and known.get("choice") in by_name:
            self.reused += 1
            self.made[key] = known["choice"]
            return by_name[known["choice"]]
        t = time.perf_counter()
        with _uncached():
            times = time_lowerings(op, node, types, shapes, candidates, self.env, self.devices, self.options)
        self.seconds += time.perf_counter() - t
        self.measured += 1
        best = min(times, key=times.__getitem__)
        if best != "reference" and times[best] >= MARGIN * times["reference"]:
            best = "reference"
        self.table[key] = {"choice": best, "median_ms": {k: round(v * 1e3, 4) for k, v in times.items()}}
        _write(self.path, key, self.table[key])
        self.made[key] = best
        return by_name[best]

    def settle(self, graph: Graph) -> None:
        """The whole model decides between the ops' measured forms and the rule's, where they differ: an op timed
        alone is not the op inside the model (XLA fuses it with its neighbours), so both models' forward and
        backward are timed as the ops were; the measured forms stay only when they take under MODEL_MARGIN of the
        rule's time. The verdict is cached like an op's choice, keyed by the model and both sets of forms."""
        measured = _forms(graph, self)
        rule = _forms(graph, lambda n, types: choose_lowering(n, types, self.platform))
        if measured == rule:
            return
        shapes = [self._shape(graph.nodes[nid].type) for _, nid in graph.inputs]
        if any(s is None for s in shapes):
            return
        key = json.dumps([*self.machine, "model", _graph_key(graph, self.env), sorted(measured.items())])
        known = self.table.get(key)
        if not (isinstance(known, dict) and known.get("choice") in ("measured", "rule")):
            t = time.perf_counter()
            with _uncached():
                times = time_models(
                    graph,
                    {"measured": self, "rule": None},
                    self.platform,
                    self.env,
                    self.devices,
                    self.options,
                )
            self.seconds += time.perf_counter() - t
            choice = "measured" if times["measured"] < MODEL_MARGIN * times["rule"] else "rule"
            known = {"choice": choice, "median_ms": {k: round(v * 1e3, 4) for k, v in times.items()}}
            self.table[key] = known
            _write(self.path, key, known)
        self.use_rule = known["choice"] == "rule"
        ms = known["median_ms"]
        differ = sum(measured[k] != rule[k] for k in measured)
        self.verdict = (
            f"; the whole model with {differ} op(s) in other forms than the rule's: {ms['measured']:.1f} ms against "
            f"{ms['rule']:.1f} ms, so {'the rule runs' if self.use_rule else 'the measured forms run'}"
        )

    def _shape(self, t: TensorType) -> tuple[int, ...] | None:
        dims = [d.subst(self.env).as_int() for d in t.dims]
        return None if any(v is None for v in dims) else tuple(v for v in dims if v is not None)

    def describe(self) -> str:
        """One line for the start banner."""
        where = f" ({self.path})" if self.path is not None else " (not remembered: no cache folder)"
        spent = f"; {self.seconds:.1f} s of timing" if self.seconds else ""
        return (
            f"lowerings measured: {self.measured} op shape(s) timed, {self.reused} from the cache{where}"
            f"{self.verdict}{spent}"
        )


def measured_lowerings(
    graph: Graph, batch: int, devices: int = 1, env: Mapping[str, int] | None = None
) -> MeasuredLowerings:
    """The chooser for `--lowering measure` on JAX's backend: `batch` examples (the batch symbols) split over
    `devices`, the other free sizes from `env`, remembered in specc's cache folder ($SPECC_CACHE_DIR set and
    empty: nowhere)."""
    from ..passes.count import batch_symbols
    from ..train.compile_cache import cache_dir
    from .flax import graph_compiler_options

    sizes = {s: batch for s in batch_symbols(graph)}
    sizes.update(env or {})
    options = graph_compiler_options(graph)
    chooser = MeasuredLowerings(current_platform(), sizes, cache_dir(), devices, options)
    chooser.settle(graph)
    return chooser


def time_lowerings(
    op: OpDef,
    node: Node,
    types: tuple[TensorType, ...],
    shapes: list[tuple[int, ...]],
    candidates: list[Lowering],
    env: Mapping[str, int],
    devices: int = 1,
    options: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Median seconds of each candidate's jitted forward + backward (d sum(y·w) by the parameters and the inputs),
    on the same random inputs and parameters, compiled with XLA `options`; with `devices` > 1 the inputs' first
    axis is split over them and the parameters replicated, as the train step runs the op."""
    attrs = node.attr
    rng = np.random.default_rng(0)
    xs = [_draw(rng, s, JNP_NAMES[t.dtype]) for s, t in zip(shapes, types, strict=True)]
    ctx = ApplyContext(dict(env))
    ctx.node = node
    layers: dict[Any, tuple[Any, Any, Any]] = {}  # by build: the candidates sharing one share its layer
    built = {}
    for lw in candidates:
        build = lw.build if lw.build is not None else op.lowerings[0].build
        if build not in layers:
            layers[build] = _layer(build, attrs, types)
        gd, params, rest = layers[build]
        built[lw.name] = (partial(_op_outputs, lw, gd, attrs, ctx), params, rest)
    # by the inputs too, as in a train step; by the state: Flax mutates batch statistics only at the trace level
    # that made them (their gradients are zero)
    return _interleaved(_steps(built, xs, rng, devices, (0, 1, 2), options), "reference")


def _layer(build: Any, attrs: dict[str, Any], types: tuple[TensorType, ...]) -> tuple[Any, Any, Any]:
    """The op's layer from `build` as (GraphDef, params, the rest), or (None, {}, {}) without one."""
    layer = None if build is None else build_layer(build, attrs, types)
    if layer is None:
        return None, {}, {}
    # flax types split(node, f1, f2) as (GraphDef, State, *State)
    gd, params, rest = nnx.split(layer, nnx.Param, ...)  # type: ignore[misc]
    return gd, params, rest


def _op_outputs(
    lw: Lowering, gd: Any, attrs: dict[str, Any], ctx: Any, params: Any, rest: Any, xs: list[Any]
) -> list[Any]:
    """The op under one lowering, its module merged from (params, rest) inside the trace: each of its float
    outputs (an LSTM's with return_state: the sequence, h and c)."""
    out = lw.apply(nnx.merge(gd, params, rest) if gd is not None else None, attrs, list(xs), ctx)
    return [
        v for v in (out if isinstance(out, tuple | list) else (out,)) if jnp.issubdtype(v.dtype, jnp.floating)
    ]


def time_models(
    graph: Graph,
    choosers: Mapping[str, Any],
    platform: str,
    env: Mapping[str, int],
    devices: int = 1,
    options: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Median seconds of the whole model's jitted forward + backward (d Σ sum(output·w) by its parameters and
    state) in training mode under each chooser (None: the platform's rule), interleaved; inputs random (integers
    zero), split over `devices` as in time_lowerings."""
    from .flax import build_module

    rng = np.random.default_rng(0)
    xs = {}
    for name, nid in graph.inputs:
        t = graph.nodes[nid].type
        xs[name] = _draw(rng, tuple(int(d.subst(env).as_int() or 0) for d in t.dims), JNP_NAMES[t.dtype])
    built = {}
    for label, choose in choosers.items():
        module = build_module(graph, seed=0, platform=platform, choose=choose)
        module.train()
        gd, params, rest = nnx.split(module, nnx.Param, ...)  # type: ignore[misc]
        built[label] = (partial(_model_outputs, gd), params, rest)
    return _interleaved(_steps(built, xs, rng, devices, (0, 1), options), "rule")


def _model_outputs(gd: Any, params: Any, rest: Any, xs: Any) -> list[Any]:
    out = nnx.merge(gd, params, rest)(xs)
    return [v for v in jax.tree.leaves(out) if jnp.issubdtype(v.dtype, jnp.floating)]


def _draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> Any:
    """A random input: normal for floats, zeros for integers (valid indices)."""
    floating = jnp.issubdtype(dtype, jnp.floating)
    return jnp.asarray(rng.normal(size=shape).astype(dtype) if floating else np.zeros(shape, dtype))


def _steps(
    built: Mapping[str, tuple[Any, Any, Any]],
    xs: Any,
    rng: np.random.Generator,
    devices: int,
    argnums: tuple[int, ...],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """label → a call of its value-and-gradient of Σ sum(output·w) (w random, the same for every label), compiled
    with XLA `options`, by `argnums` of (params, rest, inputs); `built[label]` = (outputs(params, rest, xs), params,
    rest). With `devices` > 1 the inputs' and weights' first axis is split over them and the rest replicated."""
    outputs, params, rest = next(iter(built.values()))
    ws = [_draw(rng, o.shape, o.dtype) for o in jax.eval_shape(outputs, params, rest, xs)]
    shards = 1
    if devices > 1 and all(v.shape and v.shape[0] % devices == 0 for v in [*jax.tree.leaves(xs), *ws]):
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(jax.local_devices()[:devices]), ("batch",))
        split, whole = NamedSharding(mesh, PartitionSpec("batch")), NamedSharding(mesh, PartitionSpec())
        xs, ws = jax.device_put(xs, split), jax.device_put(ws, split)
        built = {k: (f, jax.device_put(p, whole), jax.device_put(r, whole)) for k, (f, p, r) in built.items()}
        shards = devices
    steps = {}
    for label, (outputs, params, rest) in built.items():

        def loss(params: Any, rest: Any, xs: Any, outputs: Any = outputs) -> Any:
            return sum(jnp.sum(o * w) for o, w in zip(outputs(params, rest, xs), ws, strict=True))

        jitted = jax.jit(jax.value_and_grad(loss, argnums=argnums, allow_int=True))
        with data_shards(shards):
            lowered = jitted.lower(params, rest, xs)
        step = lowered.compile(compiler_options=dict(options) if options else None)
        jax.block_until_ready(step(params, rest, xs))  # not timed: its first call
        steps[label] = partial(step, params, rest, xs)
    return steps


@contextmanager
def _uncached() -> Iterator[None]:
    """The timed programs are not written to JAX's persistent compilation cache: each runs once per machine (its
    verdict is what lowerings.json keeps), and a spec's would be a few dozen files there."""
    before = jax.config.jax_persistent_cache_min_compile_time_secs  # type: ignore[attr-defined]  # not in the stub
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
    try:
        yield
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before)


def _interleaved(runs: Mapping[str, Any], baseline: str) -> dict[str, float]:
    """Median seconds of each run's calls, interleaved: as many rounds as BUDGET allows (3 to CALLS), judged by
    one probing round; a run HOPELESS times slower than `baseline`'s in that round keeps that one time."""
    times: dict[str, list[float]] = {name: [] for name in runs}

    def call(name: str) -> None:
        t = time.perf_counter()
        jax.block_until_ready(runs[name]())
        times[name].append(time.perf_counter() - t)

    for name in runs:
        call(name)
    probe = {name: v[0] for name, v in times.items()}
    rounds = max(3, min(CALLS, int(BUDGET / max(sum(probe.values()), 1e-9))))
    kept = [name for name in runs if probe[name] <= HOPELESS * probe[baseline]]
    for _ in range(rounds - 1):
        for name in kept:
            call(name)
    return {name: statistics.median(v) for name, v in times.items()}


def _forms(graph: Graph, choose: Any) -> dict[str, str]:
    """Each op node's form under `choose`, by node name."""
    return {
        n.name: choose(n, tuple(graph.type_of(r) for r in n.inputs)).name
        for n in graph.nodes
        if n.op not in ("input", "param") and n.shares is None
    }


def _graph_key(graph: Graph, env: Mapping[str, int]) -> str:
    """The model's structure and sizes, hashed: every node's op, attributes, inputs and output types."""
    text = "\n".join(
        f"{n.op}|{_attrs_key(n.attr)}|{[(r.node, r.index) for r in n.inputs]}|{[str(t) for t in n.outputs]}"
        for n in graph.nodes
    )
    return hashlib.sha256(f"{text}\n{sorted(env.items())}".encode()).hexdigest()


def _attrs_key(attrs: Mapping[str, Any]) -> str:
    """The attributes that can change an op's speed, as text (initialisers cannot: left out)."""
    return repr(sorted((k, v) for k, v in attrs.items() if "init" not in k))


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("choices"), dict)
    ):
        return {}
    return dict(data["choices"])


def _write(path: Path | None, key: str, entry: dict[str, Any]) -> None:
    """Add one choice to the file: read again (another process may have added some), then replace it atomically."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        choices = _read(path)
        choices[key] = entry
        fd, tmp = tempfile.mkstemp(prefix=".lowerings-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"format": FORMAT, "choices": choices}, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return
