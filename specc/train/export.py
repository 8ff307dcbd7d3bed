"""Export a model (usually a trained run's, `specc.load_run`) for other tools: ONNX (through jax2onnx, for
onnxruntime and Netron), StableHLO (`jax.export`, serialized), and the named parameter/state leaves as `.npz` or
`.safetensors`.

The exported function maps the inputs the model's outputs need (by name, in the order the spec declares them) to
its outputs (in the order of its `output` lines), in eval mode. Sizes are fixed: the batch N is 1 unless bound,
other free sizes (`T`) must be bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..errors import SpecError, UsageError
from ..ir.dims import Dim
from ..ir.types import JNP_NAMES
from .checkpoint import _is_key, leaf_paths
from .io import write_output

FORMATS = ("onnx", "npz", "safetensors", "stablehlo")
SUFFIX = {"onnx": ".onnx", "npz": ".npz", "safetensors": ".safetensors", "stablehlo": ".stablehlo"}


@dataclass(frozen=True)
class Signature:
    """The exported function's inputs (name, dtype, dims: ints, size names, or the Dim of a size computed from
    names, `2*P`) and output names."""

    inputs: tuple[tuple[str, str, tuple[int | str | Dim, ...]], ...]
    outputs: tuple[str, ...]
    ids: tuple[tuple[str, int, str], ...] = ()  # an input an `embed` looks up: its name, the vocab, where

    @property
    def dims(self) -> tuple[tuple[Dim, ...], ...]:
        """Every input's dims as Dims, to bind."""
        return tuple(
            tuple(Dim.sym(d) if isinstance(d, str) else Dim.of(d) for d in dims) for _, _, dims in self.inputs
        )

    def shapes(self, bind: Mapping[str, int], fmt: str) -> list[tuple[int, ...]]:
        """Every input's shape with its free sizes bound (N defaults to 1); a SpecError names the unbound, a
        bound name no input has, and a computed size that is not positive."""
        names = sorted({s for dims in self.dims for d in dims for s in d.symbols()})
        unknown = [k for k in bind if k not in names]
        if unknown:
            raise _bind_error(
                fmt,
                f"--bind {', '.join(unknown)}: the model's inputs have no size of that name",
                f"its sizes are {', '.join(names)}" if names else "its inputs have fixed sizes: drop --bind",
            )
        sizes = {"N": 1, **bind}
        free = [d for d in names if d not in sizes]
        if free:
            raise _bind_error(
                fmt,
                f"the input size(s) {', '.join(free)} are free; an exported model has fixed sizes",
                "bind them, e.g. " + " ".join(f"--bind {d}=16" for d in free),
            )
        out = []
        for (name, _, _), dims in zip(self.inputs, self.dims, strict=True):
            shape = []
            for axis, d in enumerate(dims):
                n = d.subst(sizes).as_int()
                if n is None or n < 1:
                    raise _bind_error(
                        fmt,
                        f"with {', '.join(f'{k}={sizes[k]}' for k in sorted(d.symbols()))}, axis {axis} of "
                        f"{name} is {d} = {n}",
                        "bind sizes that give every axis at least one entry",
                    )
                shape.append(n)
            out.append(tuple(shape))
        return out


def data_bound(model: Any, recorded: Mapping[str, int], bind: Mapping[str, int]) -> dict[str, int]:
    """The sizes a run's training data fixed (`Run.data_sizes`, `T` = 32) that the exported inputs have and
    `bind` (`--bind`, which wins) does not give."""
    names = {s for dims in signature(model).dims for d in dims for s in d.symbols()}
    return {k: v for k, v in sorted(recorded.items()) if k in names and k not in bind}


def signature(model: Any) -> Signature:
    """The inputs the model's outputs depend on, and the outputs, of a SpecModule."""
    graph = model.graph
    outs = tuple(name for name, _ in graph.outputs)
    needed = {s.id for s in model.plan.needed(graph.value_map[o].node for o in outs)}
    ins = []
    for name, nid in graph.inputs:
        if nid not in needed:
            continue
        node = graph.nodes[nid]
        dims = tuple(
            sym if (sym := d.as_symbol()) is not None else int(d.value) if d.is_const else d
            for d in node.type.dims
        )
        ins.append((name, node.type.dtype, dims))
    names = {nid: name for name, nid in graph.inputs if nid in needed}
    ids = tuple(
        (names[n.inputs[0].node], int(n.attr["vocab"]), str(n.span))
        for n in graph.nodes
        if n.op == "embed" and n.inputs and n.inputs[0].node in names
    )
    return Signature(tuple(ins), outs, ids)


def pure_function(model: Any) -> tuple[Callable[..., tuple[Any, ...]], Signature]:
    """`f(*inputs) -> tuple(outputs)` with the model's parameters and state as constants (eval mode).

    PRNG keys in the state (dropout, recurrent carries) are held as their raw key data and re-wrapped inside,
    because converters cannot hold key-typed constants.
    """
    from ..backend.flax import forward_graphdef

    model.eval()
    sig = signature(model)
    gd, state = forward_graphdef(model), nnx.state(model)
    is_key = jax.tree.map(_is_key, state)
    raw = jax.tree.map(lambda a, k: np.asarray(jax.random.key_data(a)) if k else a, state, is_key)
    impls = jax.tree.map(lambda a, k: str(jax.random.key_impl(a)) if k else None, state, is_key)
    names = [n for n, _, _ in sig.inputs]

    def f(*xs: Any) -> tuple[Any, ...]:
        st = jax.tree.map(
            lambda a, k, impl: jax.random.wrap_key_data(a, impl=impl) if k else a, raw, is_key, impls
        )
        out = nnx.merge(gd, st)(dict(zip(names, xs, strict=True)))
        return tuple(out[o] for o in sig.outputs)

    return f, sig


def named_leaves(model: Any) -> dict[str, np.ndarray]:
    """The model's parameters and state by their checkpoint names (`params/layers/c1/kernel`,
    `rest/layers/bn/mean`); RNG keys are left out (they hold no trained value), their 0-d counters kept."""
    _, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]  # flax's variadic return type
    return {p: np.asarray(x) for p, x in leaf_paths({"params": params, "rest": rest}) if not _is_key(x)}


def _struct(dtype: str, shape: tuple[int, ...]) -> Any:
    return jax.ShapeDtypeStruct(shape, jnp.dtype(JNP_NAMES[dtype]))


def _export_error(fmt: str, message: str, hint: str = "") -> SpecError:
    return SpecError.one("export error", f"cannot export to {fmt}: {message}", None, hint)


def _bind_error(fmt: str, message: str, hint: str = "") -> UsageError:
    """A size the command line left free, bound to a name no input has, or bound too small: the run is fine, so a
    usage error (exit 2), as `specc compile`'s are."""
    return UsageError.of(f"cannot export to {fmt}: {message}", hint)


def _check_bound(model: Any, bind: Mapping[str, int] | None, fmt: str) -> None:
    """The ops' rules with `--bind`'s sizes put in (a learned positional table shorter than --bind T=8 crashed in
    the converter, "Incompatible shapes for broadcasting"), as an export error naming the spec's line."""
    from ..passes.bound import check_bound_sizes

    try:
        check_bound_sizes(model.graph, dict(bind or {}), "--bind")
    except SpecError as e:
        d = e.diagnostics[0]
        where = f" (at {d.span.file}:{d.span.line}:{d.span.col})" if d.span else ""
        raise _export_error(fmt, d.message + where, d.hint) from None


def to_stablehlo(model: Any, bind: Mapping[str, int] | None = None) -> bytes:
    """The model as a serialized `jax.export.Exported` (deserialize with jax.export.deserialize)."""
    from jax import export as jexport

    f, sig = pure_function(model)
    shapes = sig.shapes(bind or {}, "stablehlo")
    _check_bound(model, bind, "stablehlo")
    args = [_struct(dt, s) for (_, dt, _), s in zip(sig.inputs, shapes, strict=True)]
    try:
        exported = jexport.export(jax.jit(f))(*args)
    except Exception as e:  # shape polymorphism failures come as several JAX exception kinds
        raise _export_error("stablehlo", f"{type(e).__name__}: {str(e).splitlines()[0]}"[:500]) from None
    return bytes(exported.serialize())


def _for_export(model: Any) -> Any:
    """The same model with the lowerings chosen for export (platform "export": e.g. max-pool as strided slices,
    which every ONNX runtime runs), carrying the model's own parameters and state."""
    from flax import nnx

    from ..backend.flax import build_module

    exported = build_module(model.graph, platform="export", abstract=True)
    nnx.update(exported, nnx.state(model))
    exported.eval()
    return exported


def to_onnx(model: Any, bind: Mapping[str, int] | None = None, opset: int = 21) -> bytes:
    """The model as an ONNX ModelProto's bytes (jax2onnx), at fixed sizes: the batch 1 unless bound, every other
    free size bound in `bind` (an unbound one is an export error).

    Raises SpecError listing the JAX primitives jax2onnx cannot convert.
    """
    try:
        import jax2onnx
    except ImportError:
        raise _export_error(
            "onnx", "jax2onnx is not installed", "pip install 'specc[export]' (jax2onnx and onnxruntime)"
        ) from None
    model = _for_export(model)
    f, sig = pure_function(model)
    shapes = sig.shapes(bind or {}, "onnx")
    _check_bound(model, bind, "onnx")
    args = [_struct(dt, s) for (_, dt, _), s in zip(sig.inputs, shapes, strict=True)]
    import logging
    import warnings

    # onnx_ir logs a WARNING for every intermediate value whose type it was not told (a U-Net's max-pools):
    # the file is complete and onnxruntime runs it, so that is not the user's concern either
    ir_log = logging.getLogger("onnx_ir")
    level = ir_log.level
    ir_log.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings()
        ):  # jax2onnx's own use of deprecated flax/jax APIs is not the user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            _register_converters()
            proto = jax2onnx.to_onnx(
                f,
                args,
                model_name=model.graph.model,
                opset=opset,
                input_names=[n for n, _, _ in sig.inputs],
                output_names=list(sig.outputs),
            )
    except Exception as e:  # jax2onnx raises NotImplementedError, ValueError, TypeError... for what it lacks
        through = _UNDIFFERENTIABLE.search(str(e))
        grads = [n.name for n in model.graph.nodes if n.op == "grad"]
        if through and grads:
            raise _export_error(
                "onnx",
                f"grad ({', '.join(grads)}) differentiates through {through.group(1)}, which jax2onnx converts as "
                "one ONNX operation and cannot differentiate",
                "export to stablehlo instead (`--to stablehlo`); a grad through elementwise ops alone (the "
                "autodiff lecture's) exports to ONNX",
            ) from None
        ops = unsupported_primitives(e)
        if ops:
            raise _export_error(
                "onnx",
                f"jax2onnx has no conversion for the JAX operation(s) {', '.join(ops)}",
                "export to stablehlo or npz instead, or replace the layer(s) that use them",
            ) from None
        text = str(e).strip().splitlines()
        raise _export_error(
            "onnx", f"jax2onnx failed: {type(e).__name__}: {text[0] if text else ''}"[:500]
        ) from None
    finally:
        ir_log.setLevel(level)
    _check_onnx(proto, sig.inputs)
    return bytes(proto.SerializeToString())


# jax2onnx's plugin trees that convert nothing a specc model holds (JAX primitives and Flax layers): equinox's
# layers, and its own examples (its test cases)
_FOREIGN_PLUGINS = frozenset({"equinox", "examples"})


def _register_converters() -> None:
    """Import jax2onnx's converters for JAX and Flax before its first to_onnx would import all of its plugins.

    It imports every module under jax2onnx/plugins once per process, and its equinox plugins build equinox layers
    as they are imported, each random initialiser compiled eagerly: 13 of that import's 15 s of CPU, paid by every
    `specc export --to onnx`. Every tree but _FOREIGN_PLUGINS is imported, as jax2onnx would, then discovery is
    marked done; the files written are the same bytes. A jax2onnx without these internals imports all itself.
    """
    import importlib

    from jax2onnx.plugins import plugin_system

    import_tree = getattr(plugin_system, "_import_tree", None)
    if import_tree is None or getattr(plugin_system, "_already_imported_plugins", True) is not False:
        return
    root = Path(plugin_system.__file__).parent
    for path in sorted(root.iterdir()):
        if path.is_dir() and path.name not in _FOREIGN_PLUGINS and not path.name.startswith(("_", ".")):
            import_tree(path, f"jax2onnx.plugins.{path.name}")
        elif path.suffix == ".py" and path.name not in ("__init__.py", "plugin_system.py"):
            importlib.import_module(f"jax2onnx.plugins.{path.stem}")
    plugin_system._already_imported_plugins = True


def _check_onnx(proto: Any, inputs: Sequence[tuple[str, str, Any]]) -> None:
    """ONNX's own checker, types inferred through every node, on what jax2onnx wrote: it can write a model that no
    runtime loads (a bf16 or f16 model's Gemm given the f32 weights whose casts it dropped), which was exit 0."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        text = str(e).strip().splitlines()
        low = [f"{n}: {dt}" for n, dt, _ in inputs if dt in ("bf16", "f16")]
        hint = (
            f"jax2onnx does not convert models that compute in half precision ({', '.join(low)}): export to "
            "stablehlo, or train with f32 inputs"
            if low
            else "export to stablehlo or npz instead"
        )
        raise _export_error(
            "onnx",
            f"jax2onnx wrote a model that ONNX's checker refuses: {text[0] if text else ''}"[:500],
            hint,
        ) from None


# jax2onnx's own primitives for whole layers (nnx.linear, nnx.conv) have no differentiation rule
_UNDIFFERENTIABLE = re.compile(r"Differentiation rule for '([\w\-\.]+)' not implemented")
_PRIM = re.compile(r"(?:primitive|Primitive|handler for|plugin for)[^'\"`]*['\"`]([\w\-\.]+)['\"`]")


def unsupported_primitives(e: BaseException) -> list[str]:
    """The primitive names a jax2onnx error says it lacks (empty when the error is about something else)."""
    text = str(e)
    if "not" not in text.lower() and not isinstance(e, NotImplementedError):
        return []
    return sorted(set(_PRIM.findall(text)))


def to_npz(model: Any) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **named_leaves(model))  # type: ignore[arg-type]  # numpy types **kwds oddly
    return buf.getvalue()


def to_safetensors(model: Any) -> bytes:
    try:
        from safetensors.numpy import save
    except ImportError:
        raise _export_error(
            "safetensors", "safetensors is not installed", "pip install 'specc[export]'"
        ) from None
    # np.ascontiguousarray would make a 0-d leaf (an RNG count) 1-d: the npz and safetensors would disagree
    return bytes(save({k: np.array(v, order="C") for k, v in named_leaves(model).items()}))


def export_model(model: Any, fmt: str, path: Path, bind: Mapping[str, int] | None = None) -> Path:
    """Write `model` in format `fmt` (one of FORMATS) to `path`; returns it. Raises SpecError."""
    if fmt == "onnx":
        data = to_onnx(model, bind)
    elif fmt == "stablehlo":
        data = to_stablehlo(model, bind)
    elif fmt == "npz":
        data = to_npz(model)
    elif fmt == "safetensors":
        data = to_safetensors(model)
    else:
        raise _export_error(fmt, f"unknown format; expected one of {', '.join(FORMATS)}")
    write_output(Path(path), data)
    return Path(path)
