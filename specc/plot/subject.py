"""What a plot looks at: a trained run (`load_run`) or a spec's freshly initialised model, and a batch of its data —
the same model builder, data loader and normalisation as `specc train` and `specc evaluate`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from ..frontend import ast
from ..ir.graph import Fn, Graph
from ..source import Source, Span


@dataclass
class Subject:
    """A model to plot: its graph, the nnx module (eval mode), its train configuration (None for a spec without a
    train section) and whether it was trained (a run) or is at initialisation (a spec).

    Args:
        name: the run folder's name or the spec file's stem (titles and default file names).
        directory: the run folder, or None for a spec.
    """

    name: str
    graph: Graph
    model: Any
    config: Any
    trained: bool
    directory: Path | None = None
    spec: Any = None


def plot_error(message: str, hint: str = "", span: Span | None = None) -> SpecError:
    return SpecError.one("plot error", message, span, hint)


def located(err: SpecError, subject: Subject) -> SpecError:
    """`err` with the subject's spec files attached, so its span renders with the line and a caret."""
    return err.with_sources(subject.spec.program.sources if subject.spec is not None else {})


def open_run(directory: Path, checkpoint: str = "best") -> Subject:
    from ..train.artifact import load_run

    r = load_run(directory, checkpoint)
    return Subject(Path(directory).name, r.graph, r.model, r.config, True, Path(directory), r.spec)


def open_spec(
    file: Path, model: str | None = None, init: str | None = None, seed: int | None = None
) -> Subject:
    """A spec's model at initialisation, seeded with `seed` (default: its train section's seed, else 0); `init` (an
    initialiser as the language writes it, e.g. "normal(0.01)") replaces every weight initialiser of the model."""
    from ..spec import load
    from ..train.spec import build_config

    spec = load(file, model)
    graph = spec.graph()
    if init is not None:
        graph = with_init(graph, parse_init(init))
    has_train = any(isinstance(item, ast.TrainDef) for item in spec.program.module.items)
    # without a train section the data must come from --data; a broken one is reported as it is
    config = build_config(spec, graph) if has_train else None
    if seed is None:
        seed = config.seed if config is not None else 0
    return Subject(Path(file).stem, graph, build_model(graph, seed), config, False, None, spec)


def open_subject(path: Path, *, model: str | None = None, init: str | None = None) -> Subject:
    """A run folder or a spec file, as `specc plot activations` takes either."""
    if Path(path).is_dir():
        if init is not None:
            raise plot_error(
                "--init sets the initialisation of a spec; a run is already trained", "give a .net"
            )
        return open_run(path)
    return open_spec(path, model, init)


def build_model(graph: Graph, seed: int) -> Any:
    """The model as the trainer initialises it: every initialiser in one jit, in eval mode."""
    return build_models([graph], seed)[0]


def build_models(graphs: list[Graph], seed: int) -> list[Any]:
    """Several models initialised in one jit (one XLA compilation: most of a small model's start-up time)."""
    import jax
    from flax import nnx

    from ..backend.flax import build_module, compiler_options

    models = [nnx.eval_shape(lambda g=g: build_module(g, seed=seed)) for g in graphs]
    # compiled as a program run once, as the trainer's initialisers are (LayerFactory's): at XLA's full
    # optimisation the three deep-initialisation MLPs (3 layers of 64) took 3.5 s to compile, 1.0 s so
    made = jax.jit(lambda: [nnx.state(build_module(g, seed=seed)) for g in graphs])
    states = made.lower().compile(compiler_options(once=True))()
    for model, state in zip(models, states, strict=True):
        nnx.update(model, state)
        model.eval()
    return models


def model_values(
    model: Any, inputs: dict[str, Any], names: list[str], given: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Named values (or nodes by full name) of `model` on `inputs` (`given`: nodes' outputs set), in one jit."""
    import jax
    from flax import nnx

    from ..backend.flax import forward_graphdef

    _, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]  # flax's variadic return type
    gd = forward_graphdef(model)  # run once, forward only
    out = jax.jit(lambda p, r, x, g: nnx.merge(gd, p, r).values(x, names, g))(
        params, rest, inputs, given or {}
    )
    return {k: np.asarray(v) for k, v in out.items()}


# ---- --init ---------------------------------------------------------------------------------------------------


def parse_init(text: str) -> Fn:
    """`--init normal(0.01)` → Fn("normal", (0.01,)); located errors point into the option's text."""
    from ..frontend.parse import parse_expr
    from ..ops._registry import OpError, convert_init

    src = Source("--init", text)
    whole = Span.point("--init", 1, 1, len(text))
    try:
        expr = parse_expr(text, "--init")
    except SpecError as e:
        raise e.with_sources({"--init": src}) from None

    def number(e: ast.Expr) -> Any:
        if isinstance(e, ast.Num):
            return e.value
        if isinstance(e, ast.Neg) and isinstance(e.operand, ast.Num):
            return -e.operand.value
        return e  # convert_init names what it wanted

    if isinstance(expr, ast.Name):
        fn = Fn(expr.id)
    elif isinstance(expr, ast.Call):
        fn = Fn(
            expr.func,
            tuple(number(a) for a in expr.args),
            tuple((k.name, number(k.value)) for k in expr.kwargs),
        )
    else:
        fn = Fn("")
    try:
        return convert_init(
            fn, lambda want, hint="": OpError("argument error", f"--init must be {want}", hint)
        )
    except OpError as e:
        raise SpecError.one(e.kind, e.message, whole, e.hint).with_sources({"--init": src}) from None


def with_init(graph: Graph, fn: Fn) -> Graph:
    """The graph with every weight initialiser (`init=` of layers, `param`s; not `bias_init=`) replaced by `fn`."""
    nodes = tuple(
        dataclasses.replace(n, attrs=tuple((k, fn if k == "init" else v) for k, v in n.attrs))
        if "init" in n.attr
        else n
        for n in graph.nodes
    )
    return dataclasses.replace(graph, nodes=nodes)


# ---- data -----------------------------------------------------------------------------------------------------


def fed_inputs(graph: Graph) -> list[str]:
    """The model's inputs the data feed (not those the trainer draws)."""
    return [name for name, nid in graph.inputs if "draw" not in graph.nodes[nid].attr]


def data_batch(subject: Subject, data: str | None = None, n: int | None = None) -> dict[str, np.ndarray]:
    """The first `n` examples (all when None) of the training split of the subject's data (or of `data`, a data
    call as `--data` takes it, relative to the current folder), as the model sees them (normalised as in training);
    every field the data hold, renamed to the model's input names."""
    from ..train.loop import drawn_inputs, load_splits
    from ..train.spec import build_config, parse_override

    config = subject.config
    if data is not None:
        ovs = [parse_override(f"data={data}", name="--data")]
        if config is None:  # no train section: a stand-in loss (never computed) so that the section checks
            ovs.append(parse_override(f"loss={subject.graph.outputs[0][0]}", name="--data"))
        config = dataclasses.replace(build_config(subject.spec, subject.graph, ovs), data_base=Path.cwd())
    elif config is None:
        raise plot_error(
            f"model {subject.graph.model} has no train section to take data from",
            "give --data, e.g. --data 'digits()'",
        )
    splits = load_splits(config, tuple(drawn_inputs(subject.graph)))
    ds = splits.train
    fields = {k: np.asarray(v) for k, v in ds.fields.items()}
    if n is not None:
        fields = {k: v[:n] for k, v in fields.items()}
    return fields
