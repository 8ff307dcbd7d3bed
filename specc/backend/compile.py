"""`specc compile`: lower a checked graph to Flax, jit-compile it with XLA for the declared input shapes, and report
node by node (shape, parameters, FLOPs) — or write the StableHLO text or readable Flax source instead.

Parameters stay abstract (jax.ShapeDtypeStruct) while lowering and compiling, so VGG-16 compiles without allocating
its 138M weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ..cli_common import write_emitted
from ..errors import Diagnostic, SpecError, UsageError
from ..ir.graph import Graph
from ..ir.types import JNP_NAMES
from ..passes.count import Counts, batch_symbols, count
from .flax import SpecModule, build_module, data_shards, fallbacks, graph_compiler_options, lowering_names
from .reroll import describe_runs, graph_runs

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Compiled:
    """What compiling one model gives.

    Args:
        graph: the checked model.
        bind: every free size bound to a number (the batch and any --bind).
        counts: per node, with shapes under `bind` and FLOPs per example.
        lowered: jax's Lowered (`.as_text()` is the StableHLO).
        compile_seconds: XLA's compile time (0 when only lowered).
        lowerings: each op node's lowering by node name ("reference", "im2col", ...).
        measured: `--lowering measure`'s one-line account (tuning.MeasuredLowerings.describe), else "".
    """

    graph: Graph
    bind: dict[str, int]
    counts: Counts
    lowered: Any
    compile_seconds: float
    lowerings: dict[str, str]
    measured: str = ""


def bind_sizes(g: Graph, batch: int | None = None, bind: Mapping[str, int] | None = None) -> dict[str, int]:
    """The batch symbol(s) → `batch` (default 32), other sizes from `bind`; a size left free, and a bound name no
    input has (a typo such as `--bind t=16` for T, silently ignored before), are UsageErrors: the spec is valid
    (`specc check` passes it), the command line lacks the size's number."""
    names = sorted({s for _, nid in g.inputs for d in g.nodes[nid].type.dims for s in d.symbols()})
    unknown = [k for k in bind or {} if k not in names]
    if unknown:
        from ..errors import did_you_mean

        dym = did_you_mean(unknown[0], names)
        raise UsageError.of(
            f"--bind {', '.join(unknown)}: the model's inputs have no size of that name"
            + (f"; {dym}" if dym else ""),
            f"its sizes are {', '.join(names)}" if names else "its inputs have fixed sizes: drop --bind",
        )
    env = {s: batch or DEFAULT_BATCH for s in batch_symbols(g)}
    env.update(bind or {})
    for name, nid in g.inputs:
        node = g.nodes[nid]
        free = sorted({s for d in node.type.dims for s in d.symbols()} - set(env))
        if free:
            example = " ".join(f"--bind {s}=16" for s in free)
            # located at the input, but a usage error (exit 2): the spec is valid, the command line lacks a number
            raise UsageError(
                [
                    Diagnostic(
                        "usage error",
                        f"input {name}: {node.type} has the free size(s) {', '.join(free)}, and XLA compiles "
                        "for concrete shapes: give each a number",
                        node.span,
                        f"pass {example} (any positive number), or declare {free[0]} with a number in the "
                        "input's type",
                    )
                ]
            )
    return env


def abstract_inputs(g: Graph, env: Mapping[str, int]) -> dict[str, jax.ShapeDtypeStruct]:
    out = {}
    for name, nid in g.inputs:
        t = g.nodes[nid].type
        shape = tuple(d.subst(env).as_int() for d in t.dims)
        out[name] = jax.ShapeDtypeStruct(shape, jnp.dtype(JNP_NAMES[t.dtype]))  # type: ignore[arg-type]
    return out


def lower_graph(
    g: Graph, env: Mapping[str, int], platform: str | None = None, choose: Any = None
) -> tuple[Any, dict[str, str]]:
    """jax.jit(forward).lower(...) over abstract parameters, in inference mode, and each op node's lowering;
    `choose` as build_module's."""

    model: SpecModule = build_module(g, platform=platform, abstract=True, choose=choose)
    model.eval()
    graphdef, state = nnx.split(model)

    def forward(state: Any, inputs: Any) -> Any:
        return nnx.merge(graphdef, state)(inputs)

    ins = abstract_inputs(g, env)
    needed = {s.input for s in model.plan.needed(r.node for _, r in g.outputs) if s.input is not None}
    # the size-gated forms decide by one device's share of the batch, as `specc train` would split it here
    with data_shards(_train_shards(g, env)), fallbacks() as fell_back:
        lowered = jax.jit(forward).lower(state, {k: v for k, v in ins.items() if k in needed})
    return lowered, lowering_names(model, fell_back)


def _train_shards(g: Graph, env: Mapping[str, int]) -> int:
    """The devices `specc train` splits this machine's CPU into for `g` at the bound batch (execution.cpu_split's
    rule; 1 on a GPU or TPU)."""
    symbols = batch_symbols(g)
    if jax.default_backend() != "cpu" or not symbols:
        return 1
    from ..train.execution import wanted_split

    return wanted_split(g, env[next(iter(symbols))])


def compile_graph(
    g: Graph,
    batch: int | None = None,
    bind: Mapping[str, int] | None = None,
    compile: bool = True,
    platform: str | None = None,
    measure: bool = False,
) -> Compiled:
    """`measure`: each op's lowering timed on this machine and remembered (`--lowering measure`, tuning.py)."""
    env = bind_sizes(g, batch, bind)
    from ..passes.bound import check_bound_sizes

    check_bound_sizes(g, {k: v for k, v in env.items() if k in (bind or {})}, "--bind")
    choose = None
    if measure:
        from .tuning import measured_lowerings

        choose = measured_lowerings(g, 1, env=env)  # env binds the batch symbols too
    lowered, lowerings = lower_graph(g, env, platform, choose)
    seconds = 0.0
    if compile:
        t = time.perf_counter()
        lowered.compile(compiler_options=graph_compiler_options(g))  # the options specc's own programs use
        seconds = time.perf_counter() - t
    per_example = {k: v for k, v in env.items() if k not in batch_symbols(g)}
    shapes = count(g, batch=env[next(iter(batch_symbols(g)))] if batch_symbols(g) else 1, bind=env)
    flops = count(g, batch=1, bind=per_example)
    rows = tuple(
        type(r)(r.name, r.op, s.shape, r.params, r.state, r.flops)
        for r, s in zip(flops.nodes, shapes.nodes, strict=True)
    )
    counts = Counts(rows, flops.total_params, flops.total_state, flops.total_flops)
    return Compiled(
        g, env, counts, lowered, seconds, lowerings, choose.describe() if choose is not None else ""
    )


def summary_json(c: Compiled) -> dict[str, Any]:
    """`specc compile --json`: LANGUAGE.md §8, plus the batch, the bound sizes and the compile time."""
    return {
        "model": c.graph.model,
        "nodes": [
            {
                "name": r.name,
                "op": r.op,
                "shape": r.shape,
                "params": r.params,
                "flops": r.flops,
                "lowering": c.lowerings.get(r.name),
            }
            for r in c.counts.nodes
        ],
        "total_params": c.counts.total_params,
        "total_state": c.counts.total_state,
        "total_flops": c.counts.total_flops,
        "bind": c.bind,
        "compile_seconds": round(c.compile_seconds, 3),
        "rolled": [
            {"first": c.graph.nodes[r.start].name, "nodes_per_copy": r.length, "copies": r.copies}
            for r in graph_runs(c.graph)
        ],
    }


def render_table(c: Compiled) -> Any:
    from rich.table import Table

    sizes = ", ".join(f"{k}={v}" for k, v in sorted(c.bind.items()))
    t = Table(title=f"{c.graph.model} ({sizes})", title_justify="left", show_footer=True)
    t.add_column("node", footer="total")
    t.add_column("op")
    t.add_column("output shape")
    t.add_column("params", justify="right", footer=f"{c.counts.total_params:,}")
    t.add_column("FLOPs/example", justify="right", footer=_num(c.counts.total_flops))
    # a rolled run shows its first copy, then one row for the other copies (10,000 rows take rich ~10 s)
    folded = {r.start + r.length: r for r in graph_runs(c.graph)}
    skip_until = -1
    for i, r in enumerate(c.counts.nodes):
        if i < skip_until:
            continue
        if (run := folded.get(i)) is not None:
            rest = c.counts.nodes[run.start + run.length : run.end]
            params = sum(x.params or 0 for x in rest)
            flops = None if any(x.flops is None for x in rest) else sum(x.flops or 0 for x in rest)
            t.add_row(
                f"… {run.copies - 1:,} more copies",
                "repeat",
                rest[-1].shape,
                f"{params:,}" if params else "",
                _num(flops) if flops else "",
            )
            skip_until = run.end
            continue
        t.add_row(
            r.name, r.op, r.shape, f"{r.params:,}" if r.params else "", _num(r.flops) if r.flops else ""
        )
    return t


def _num(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def compile_command(
    spec: Any,
    emit: str | None = None,
    out_dir: Path | None = None,
    batch: int | None = None,
    as_json: bool = False,
    bind: Mapping[str, int] | None = None,
    lowering: str = "auto",
) -> None:
    """The body of `specc compile` (cli.py parses the options; `--emit ir|dot` never reach here)."""
    import click

    g = spec.graph()
    if emit == "flax":
        from .emit_flax import emit_flax

        write_emitted(emit_flax(g), out_dir, f"{g.model.lower()}.py")
        return
    try:
        platform = "reference" if lowering == "reference" else None
        c = compile_graph(
            g, batch, bind, compile=emit is None, platform=platform, measure=lowering == "measure"
        )
    except SpecError as e:
        raise e.with_sources(spec.program.sources) from None
    if emit == "hlo":
        write_emitted(c.lowered.as_text(), out_dir, f"{g.model}.stablehlo.mlir")
        return
    if as_json:
        click.echo(json.dumps(summary_json(c), indent=2))
        return
    from rich.console import Console

    console = Console(width=max(100, Console().width))
    console.print(render_table(c))
    state = f" (+{c.counts.total_state:,} state)" if c.counts.total_state else ""
    console.print(
        f"params: {c.counts.total_params:,}{state}   FLOPs/example: {_num(c.counts.total_flops)}   "
        f"XLA compile ({jax.default_backend()}): {c.compile_seconds:.2f} s"
    )
    for line in describe_runs(c.graph):
        console.print(f"rolled: {line}", highlight=False)
    if c.measured:
        console.print(c.measured, highlight=False)
