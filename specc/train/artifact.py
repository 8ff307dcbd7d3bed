"""A trained run as an object: `load_run(dir)` rebuilds the model from the run folder's spec copy, restores its
parameters and state (batch statistics) from the `best` or `last` checkpoint, and evaluates or predicts with the
run's configuration and data normalisation — what `specc evaluate`, `specc predict` and `specc export` stand on.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from .io import write_atomic
from .rundir import BEST_DIR

NORMALIZATION_FILE = "normalization.json"
CLASSES_FILE = "classes.json"


def _run_error(message: str, hint: str = "") -> SpecError:
    return SpecError.one("run error", message, None, hint)


# ---- what the trainer writes --------------------------------------------------------------------------------


def write_normalization(
    workdir: Path, stats: Mapping[str, tuple[Any, Any]], rename: Mapping[str, str]
) -> None:
    """normalization.json: model input → {"mean", "std"} (shaped to broadcast against one example), from the
    data's `normalize=true` statistics (keyed by data field; `rename` maps model input → field)."""
    by_field = {f: i for i, f in rename.items()}
    out = {
        by_field.get(name, name): {"mean": np.asarray(m).tolist(), "std": np.asarray(s).tolist()}
        for name, (m, s) in stats.items()
    }
    write_atomic(Path(workdir) / NORMALIZATION_FILE, (json.dumps(out) + "\n").encode())


def data_sizes(graph: Any, fields: Mapping[str, np.ndarray]) -> dict[str, int]:
    """The size names the training data fixed (`T` of `input x: f32[N, T, 1]`, windows of 32: T = 32), recorded in
    run.json for `specc export`. A name on an input's first axis (the batch, N) stays free, and so does a size
    computed from names (`2*P`)."""
    batch = {d.as_symbol() for _, nid in graph.inputs for d in graph.nodes[nid].type.dims[:1]}
    out: dict[str, int] = {}
    for name, nid in graph.inputs:
        if name not in fields:  # drawn by the trainer
            continue
        for d, n in zip(graph.nodes[nid].type.dims[1:], fields[name].shape[1:], strict=False):
            sym = d.as_symbol()
            if sym is not None and sym not in batch:
                out.setdefault(sym, int(n))
    return out


def write_class_names(workdir: Path, names: Sequence[str]) -> None:
    """classes.json: the data's class names in label order (a csv's text labels), for `predict` to name its
    argmax; no file where the data has none."""
    if names:
        write_atomic(Path(workdir) / CLASSES_FILE, (json.dumps({"y": list(names)}) + "\n").encode())


# The hint of every damaged-file error: what the trainer wrote cannot be rebuilt from the rest of the folder.
_DAMAGED = "train the run again: specc train SPEC --out RUN --force"


def _read_run_json(path: Path) -> Any:
    """A JSON file of the run folder; an unreadable or damaged one (a run killed while writing it, an edit) is a
    run error naming it, not a JSONDecodeError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise _run_error(f"cannot read {path}: {e.strerror or e}", _DAMAGED) from None
    except json.JSONDecodeError as e:
        why = "it is empty" if not e.doc.strip() else f"not valid JSON ({e.msg}, line {e.lineno})"
        raise _run_error(f"cannot read {path}: {why}", _DAMAGED) from None
    except ValueError as e:  # not UTF-8
        raise _run_error(f"cannot read {path}: {e}", _DAMAGED) from None


def read_class_names(workdir: Path) -> tuple[str, ...]:
    path = Path(workdir) / CLASSES_FILE
    if not path.is_file():
        return ()
    raw = _read_run_json(path)
    names = raw.get("y", []) if isinstance(raw, dict) else None
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def read_normalization(workdir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path = Path(workdir) / NORMALIZATION_FILE
    if not path.is_file():
        return {}
    raw = _read_run_json(path)
    try:
        return {
            str(k): (np.asarray(v["mean"], np.float32), np.asarray(v["std"], np.float32))
            for k, v in raw.items()
        }
    except (AttributeError, KeyError, TypeError, ValueError):
        raise _run_error(f"{path} is not a table of each input's mean and std", _DAMAGED) from None


# ---- the configuration, back from config.json ---------------------------------------------------------------


def _decode(tp: Any, v: Any) -> Any:
    """config.json's plain JSON → the typed value of a TrainConfig field (the inverse of rundir._plain)."""
    from .spec import CallSpec

    if v is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(options[0], v) if len(options) == 1 else _decode(Any, v)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], x) for x in v)
        return tuple(_decode(a, x) for a, x in zip(args, v, strict=True))
    if tp is Path:
        return Path(v)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        return tp(
            **{f.name: _decode(hints[f.name], v[f.name]) for f in dataclasses.fields(tp) if f.name in v}
        )
    if tp is Any or tp is object:
        if isinstance(v, dict) and set(v) == {"name", "args"}:
            return _decode(CallSpec, v)
        if isinstance(v, list):
            return tuple(_decode(Any, x) for x in v)
        return v
    return v


def config_from_json(plain: Mapping[str, Any], base: Any = None) -> Any:
    """A TrainConfig from config.json; spans, sources and warnings from `base` (the spec copy's own config) when
    given. Run folders written before warnings were left out of config.json hold them without their spans, so
    they are not read back (they made such a run unloadable)."""
    from .spec import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    kw = {
        f.name: _decode(hints[f.name], plain[f.name])
        for f in dataclasses.fields(TrainConfig)
        if f.name in plain and f.name not in ("spans", "sources", "warnings")
    }
    if base is not None:
        kw.update(spans=base.spans, sources=base.sources, warnings=base.warnings)
    return TrainConfig(**kw)


# ---- the run ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """A trained run, loaded: the spec as trained, its graph, the model (an nnx.Module in eval mode) with the
    checkpoint's parameters and state, the train configuration, the data normalisation and the history.

    Args:
        directory: the run folder.
        checkpoint: which checkpoint was loaded ("best" or "last") and its global `step`.
        normalization: model input → (mean, std), applied to those inputs by `predict` (empty: none).
        class_names: the training data's class names in label order (empty: the data named none).
        data_sizes: the size names the training data fixed (`T` = 32), from run.json (empty: none, or a run
            recorded before specc kept them).
    """

    directory: Path
    spec: Any
    graph: Any
    model: Any
    config: Any
    normalization: dict[str, tuple[np.ndarray, np.ndarray]]
    history: list[dict[str, float]]
    checkpoint: str
    step: int
    record: dict[str, Any] = field(default_factory=dict, repr=False)
    class_names: tuple[str, ...] = ()
    data_sizes: dict[str, int] = field(default_factory=dict)
    # what the last `evaluate` ran on: {"split": "validation" | "training" | "data", "examples": n}; for "data",
    # also the --data expression and the part of its examples ("validation" where it splits them, else "all")
    evaluated_on: dict[str, Any] = field(default_factory=dict, repr=False)

    def named_classes(self, outputs: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
        """For each output that scores the data's classes, the name of its highest-scoring class per example;
        {} where the data named no classes. An output scores them when a class-scoring loss or metric of the
        train section reads it (`cross_entropy(logits, y)`, `accuracy(logits, y)`, ...) and its last axis has
        one entry a class: an auxiliary head of the same width that no such term reads gets no names."""
        n = len(self.class_names)
        scored = class_score_values(self.config)
        arrays = {k: np.asarray(v) for k, v in outputs.items() if k in scored}
        return {
            k: [self.class_names[i] for i in a.reshape(-1, n).argmax(-1)]
            for k, a in arrays.items()
            if n > 1 and a.dtype.kind == "f" and a.ndim >= 2 and a.shape[-1] == n
        }

    def predict(self, **inputs: Any) -> dict[str, np.ndarray]:
        """The model's outputs (by name) for raw inputs (by model input name), normalised as in training."""
        import jax
        from flax import nnx

        from .export import signature
        from .inputs import conform_inputs

        sig = signature(self.model)
        checked = conform_inputs(sig.inputs, inputs, "predict", sig.ids)
        from ..passes.bound import check_bound_sizes

        try:  # a rule that took a free T may refuse the inputs' (a learned positional table shorter than T)
            check_bound_sizes(self.graph, data_sizes(self.graph, checked), "the inputs")
        except SpecError as e:
            raise e.with_sources(dict(self.config.sources)) from None
        fed = {k: self._normalize(k, v) for k, v in checked.items()}
        _, params, rest = nnx.split(self.model, nnx.Param, ...)  # type: ignore[misc]
        from ..backend.flax import forward_graphdef, graph_compiler_options

        gd = forward_graphdef(self.model)

        options = graph_compiler_options(self.model.graph)
        run = jax.jit(lambda p, r, x: nnx.merge(gd, p, r)(x), compiler_options=options)
        out = run(params, rest, fed)
        return {k: np.asarray(v) for k, v in out.items()}

    def _normalize(self, name: str, v: Any) -> np.ndarray:
        a = np.asarray(v)
        if name not in self.normalization:
            return a
        mean, std = self.normalization[name]
        return ((a.astype(np.float32) - mean) / std).astype(np.float32)

    def evaluate(self, data: str | None = None) -> dict[str, float]:
        """The spec's losses and metrics (`loss`, `accuracy`, …) on the run's validation split (its training
        data when it has none), or on `data` (a data call as `--data` takes it: 'csv("test.csv")', relative to
        the current folder; raw values, the run's normalisation is applied). Same code as the trainer's
        validation: the run's last `val_*` figures are reproduced exactly from the `last` checkpoint. Which of
        the three it ran on, and how many examples, is left in `evaluated_on`."""
        from .loop import evaluate_model, load_splits

        config = self.config
        stats: Mapping[str, tuple[np.ndarray, np.ndarray]] = {}
        if data is not None:
            config = self._config_for_data(data)
            if self.normalization:
                stats = self.normalization
        from .loop import drawn_inputs

        drawn = tuple(drawn_inputs(self.graph))
        try:
            splits = load_splits(config, drawn)
        except SpecError as e:
            if data is None:
                raise
            raise _for_fixed_model(e, config, drawn) from None
        ds = splits.val if splits.val is not None else splits.train
        if data is not None:
            ds = _by_run_classes(ds, splits.class_names, self.class_names, config)
        split = "data" if data is not None else "validation" if splits.val is not None else "training"
        self.evaluated_on = {"split": split, "examples": len(ds)}
        if data is not None:  # which part of --data's examples: its validation split where it makes one
            self.evaluated_on.update(data=data, part="validation" if splits.val is not None else "all")
        if stats:
            from .data import DataSet

            ds = DataSet({k: self._normalize(k, v) if k in stats else v for k, v in ds.fields.items()})
        batch = min(config.batch, len(splits.train))
        return evaluate_model(self.model, config, self.graph, ds, batch)

    def _config_for_data(self, data: str) -> Any:
        """The run's configuration with `--data`'s call, located at `--data` (as `specc train --data` does): a
        data error then shows the option as typed, not the spec copy's `data =` line it replaced."""
        from .spec import build_config, parse_flag

        new = build_config(self.spec, self.graph, [parse_flag("data", data)])
        call = new.data
        if self.normalization:
            # the data come raw: the run's own statistics are applied, not ones computed on these data
            call = dataclasses.replace(call, args=tuple((k, v) for k, v in call.args if k != "normalize"))
        spans = (
            *((k, v) for k, v in self.config.spans if k != "data"),
            *((k, v) for k, v in new.spans if k == "data"),
        )
        return dataclasses.replace(
            self.config,
            data=call,
            data_base=Path.cwd(),
            spans=spans,
            sources=(*self.config.sources, *new.sources),
        )


def _by_run_classes(ds: Any, theirs: Sequence[str], ours: Sequence[str], config: Any) -> Any:
    """`--data`'s examples with its text labels numbered as the run's classes: a csv numbers its text labels in
    sorted order of the labels it holds, so one holding only "dog" rows made "dog" class 0, and the accuracy of a
    run that learnt it as class 1 came out inverted, silently. A label the run never saw is a data error."""
    from .data import DataSet

    if not theirs or list(theirs) == list(ours) or "y" not in ds.fields:
        return ds
    where = config.span("data") or config.data.span
    sources = dict(config.sources)
    if not ours:
        raise SpecError.one(
            "data error",
            f"--data names its classes ({', '.join(theirs[:5])}{', ...' if len(theirs) > 5 else ''}), and the run "
            "was trained on numbered ones: which number each name is, it cannot tell",
            where,
            "give the labels as the class numbers the run was trained on",
        ).with_sources(sources)
    index = {name: i for i, name in enumerate(ours)}
    unknown = [name for name in theirs if name not in index]
    if unknown:
        raise SpecError.one(
            "data error",
            f"--data's label '{unknown[0]}' is not a class of the run ({', '.join(ours[:10])}"
            f"{', ...' if len(ours) > 10 else ''})",
            where,
            "give only labels the run was trained on (they are matched by name, case included)",
        ).with_sources(sources)
    relabel = np.array([index[name] for name in theirs], np.int32)
    return DataSet({**ds.fields, "y": relabel[np.asarray(ds.fields["y"])]})


def _for_fixed_model(err: SpecError, config: Any, drawn: Sequence[str]) -> SpecError:
    """`--data`'s errors, with the trainer's hint to declare the inputs as the data are (a spec can change) made
    one to give data that fit the inputs: a trained run's model is what it is."""
    from .data import _show_input

    takes = ", ".join(f"{n}: {_show_input(dt, dims)}" for n, dt, dims in config.inputs if n not in drawn)
    hint = f"the run's model takes {takes}: give --data whose fields fit it"
    return SpecError(
        [
            dataclasses.replace(d, hint=hint) if d.hint.startswith("declare `input") else d
            for d in err.diagnostics
        ],
        err.sources,
    )


def _read_history(path: Path) -> list[dict[str, float]]:
    """metrics.jsonl's epoch records. A line that is not one (the last, cut short when a run was killed while
    writing it) is skipped, the others kept — as the trainer keeps gradients.jsonl's readable lines on resume."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return []
    history = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            history.append(record)
    return history


def _run_record(directory: Path) -> dict[str, Any]:
    """run.json, with the fields load_run reads checked: a damaged record is a run error, not a KeyError."""
    from .rundir import RUN_FILE, read_run

    meta = read_run(directory)
    if meta is None:
        raise _run_error(
            f"{directory} is not a specc run (no readable run.json)", "give the --out of `specc train`"
        )
    fields: dict[str, type | tuple[type, ...]] = {
        "spec": str,
        "model": (str, type(None)),
        "data_base": str,
        "seed": int,
    }
    bad = [k for k, tp in fields.items() if (k in meta or k == "spec") and not isinstance(meta.get(k), tp)]
    bad += ["spec"] if meta.get("spec") == "" else []
    if bad:
        raise _run_error(
            f"{directory / RUN_FILE} is damaged: no valid {', '.join(repr(k) for k in bad)}", _DAMAGED
        )
    return meta


def _recorded_sizes(meta: Mapping[str, Any]) -> dict[str, int]:
    """run.json's `data_sizes`, the entries that are a size name and a positive integer (an edited one is not
    trusted further)."""
    raw = meta.get("data_sizes")
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if str(k).isidentifier() and type(v) is int and 1 <= v < 2**31}


def _config_record(path: Path) -> dict[str, Any]:
    """config.json as JSON, checked as far as load_run reads it before decoding it (its `let` overrides)."""
    plain = _read_run_json(path)
    lets = plain.get("lets", []) if isinstance(plain, dict) else None
    if not isinstance(lets, list) or not all(isinstance(p, list) and len(p) == 2 for p in lets):
        raise _run_error(f"{path} is not a run's configuration (a JSON object with its `lets`)", _DAMAGED)
    return plain


def load_run(directory: str | Path, checkpoint: str = "best") -> Run:
    """Load a run folder written by `specc train`: the spec copy, the model with the `best` checkpoint's
    parameters and state (by the early-stop metric, else val_loss; the last one when the run kept no best) or the
    `last` one. Raises SpecError naming what is missing."""
    import jax
    from flax import nnx

    from ..backend.flax import build_module
    from ..spec import load
    from .checkpoint import CheckpointError, Checkpoints, has_steps
    from .rundir import CONFIG_FILE
    from .spec import apply_lets, build_config, let_overrides

    if checkpoint not in ("best", "last"):
        raise _run_error(f"checkpoint must be 'best' or 'last', not {checkpoint!r}")
    directory = Path(directory)
    meta = _run_record(directory)
    spec_path = directory / meta["spec"]
    if not spec_path.is_file():  # it said "file error: no such file: RUN/spec/m.net, hint: check the path"
        raise _run_error(
            f"{directory} has lost its copy of the spec it trained ({spec_path} is missing)",
            "put the spec back there (as trained: a changed one does not match the checkpoints), or train the "
            "run again",
        )
    plain = _config_record(directory / CONFIG_FILE)
    # the model as trained: the spec copy with the run's `--set` of its `let` constants
    lets = let_overrides([(str(k), str(v)) for k, v in plain.get("lets", [])], str(directory / CONFIG_FILE))
    loaded = load(spec_path, meta.get("model"))
    model = meta.get("model")
    if (
        model and model not in loaded.program.models
    ):  # it said "usage error: --model M: ...", no --model given
        raise _run_error(
            f"{spec_path}, the run's copy of the spec it trained, defines no model {model} (it has "
            f"{', '.join(loaded.program.models) or 'none'}): it is not the spec this run trained",
            "put the spec the run trained back there, or train the run again",
        )
    spec = apply_lets(loaded, lets)
    graph = spec.graph()
    try:
        base = build_config(spec, graph, lets)
    except SpecError:
        base = None  # trained with a train section given by --set only
    try:
        config = config_from_json(plain, base)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise _run_error(
            f"{directory / CONFIG_FILE} is damaged ({type(e).__name__}: {e})", _DAMAGED
        ) from None
    config = dataclasses.replace(
        config, spec_path=spec_path, data_base=Path(meta.get("data_base", directory))
    )
    seed = int(meta.get("seed", config.seed))

    which = checkpoint
    folder = directory / BEST_DIR
    if checkpoint == "last" or not has_steps(folder):  # no best epoch (no validation figure, e.g. a GAN)
        which, folder = "last", directory / config.checkpoint_dir
    ckpts = Checkpoints(folder)
    try:
        flat, record, step = ckpts.restore_leaves()
    except CheckpointError as e:
        # --checkpoint last helps only where the best one failed and the run has a last one
        last = which == "best" and has_steps(directory / config.checkpoint_dir)
        raise _run_error(
            e.message, "give --checkpoint last, or train the run again" if last else "train the run (again)"
        ) from None
    finally:
        ckpts.close()

    model = build_module(graph, seed=seed, abstract=True)
    _, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    from .checkpoint import leaf_paths

    like = {"params": params, "rest": rest}
    keys = record.pop("_keys", {})
    leaves = []
    for path, _x in leaf_paths(like):
        if path not in flat:
            raise _run_error(
                f"the checkpoint in {folder} has no value '{path}'; was it trained from this spec?"
            )
        a = np.asarray(flat[path])
        leaves.append(jax.random.wrap_key_data(a, impl=keys[path]) if path in keys else jax.numpy.asarray(a))  # type: ignore[arg-type]
    restored = jax.tree.unflatten(jax.tree.structure(like), leaves)
    nnx.update(model, restored["params"], restored["rest"])
    model.eval()
    history = _read_history(directory / "metrics.jsonl")
    return Run(
        directory,
        spec,
        graph,
        model,
        config,
        read_normalization(directory),
        history,
        which,
        step,
        record,
        read_class_names(directory),
        _recorded_sizes(meta),
    )


def class_score_values(config: Any) -> frozenset[str]:
    """The model values that the train section's class-scoring losses and metrics score."""
    from .spec import class_score_pairs

    return frozenset(scores for scores, _ in class_score_pairs(config))


def read_inputs(run: Run, path: Path, allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """A predict file's arrays by model input name (an .npz's members, or a .csv's rows for a model whose outputs
    need one input), checked against the run's model and cast to its input dtypes (specc.train.inputs); NaN or
    ±inf only with `allow_nonfinite`."""
    from .export import signature
    from .inputs import read_input_file
    from .loop import drawn_inputs

    sig = signature(run.model)
    drawn = {name: _show_draw(node.attr["draw"]) for name, node in drawn_inputs(run.graph).items()}
    return read_input_file(sig.inputs, path, sig.ids, allow_nonfinite, drawn)


def _show_draw(fn: Any) -> str:
    """`normal(mean=0.0, std=0.2)`: a drawn input's distribution as the spec reads."""
    parts = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.kwargs]
    return f"{fn.name}({', '.join(parts)})"
