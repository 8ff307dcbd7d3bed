"""`specc train FILE`: the command's few lines over the library (spec → TrainConfig → train_and_evaluate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from .spec import (
    Override,
    apply_lets,
    build_config,
    check_distinct,
    let_overrides,
    parse_flag,
    parse_override,
)


def recorded_lets(workdir: Path) -> list[Override]:
    """The `let` overrides of the run in `workdir` (config.json's `lets`); none when it holds no run."""
    import json

    from .rundir import CONFIG_FILE

    try:
        lets = json.loads((workdir / CONFIG_FILE).read_text(encoding="utf-8")).get("lets", [])
    except (OSError, ValueError, AttributeError):
        return []
    return let_overrides([(str(k), str(v)) for k, v in lets], str(workdir / CONFIG_FILE))


def train_command(
    file: Path,
    *,
    model: str | None = None,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    batch: int | None = None,
    seed: int | None = None,
    data: str | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    force: bool = False,
    devices: int | None = None,
    verbose: bool = True,
    log_histograms: bool = False,
    log_steps: bool = False,
    lowering: str = "auto",
    execution: str = "auto",
    log_gradients: bool = False,
) -> int:
    """Train FILE's model; returns the exit code: 0 done, 1 diverged, 130 interrupted (143: by SIGTERM). Raises
    SpecError, and click.UsageError (exit 2) for options that contradict each other."""
    if resume and force:  # before anything loads: continuing a run and replacing it exclude each other
        raise click.UsageError("give --resume (continue the run) or --force (replace it), not both")
    import atexit
    import gc

    # At exit, Python's last collections walk every object JAX and Flax made (~2 s); frozen, they are skipped.
    atexit.register(gc.freeze)
    from .loop import maybe_initialize_distributed

    distributed = maybe_initialize_distributed()  # before JAX touches a device
    from .compile_cache import enable_compile_cache

    enable_compile_cache()
    from ..spec import load

    spec = load(file, model)
    ovs: list[Override] = [parse_override(o, i) for i, o in enumerate(overrides)]
    for flag, value in (("epochs", epochs), ("batch", batch), ("seed", seed), ("data", data)):
        if value is not None:
            ovs.append(parse_flag(flag, value))
    check_distinct(ovs, spec.program.lets)
    out = out_dir if out_dir is not None else Path("runs") / spec.program.model(model).name
    if resume:  # the run's own `let` overrides first: the model it trained, unless --set says otherwise
        ovs = recorded_lets(out) + ovs
    spec = apply_lets(spec, ovs)
    graph = spec.graph()
    config = build_config(spec, graph, ovs)
    if config.warnings:  # valid, so the run goes on; said before the banner, where the user looks first
        click.echo(config.report_warnings().render() + "\n", err=True)
    if data is not None:
        config = replace(config, data_base=Path.cwd())  # a path typed on the command line is relative to here
    if not distributed:  # before JAX's first operation
        from .execution import split_for

        split_for(graph, config.batch, devices)
    from .loop import frozen_heap, train_and_evaluate

    with frozen_heap():
        result = train_and_evaluate(
            config,
            out,
            resume=resume,
            force=force,
            devices=devices,
            verbose=verbose,
            graph=graph,
            log_histograms=log_histograms,
            log_steps=log_steps,
            lowering=lowering,
            execution=execution,
            log_gradients=log_gradients,
        )
    if result.divergence is not None:
        click.echo(f"specc: error: {result.divergence.message()}", err=True)
    elif verbose:
        last = result.history[-1] if result.history else {}
        # the last epoch's validation figures, else its losses (`loss_<objective>` with several objectives)
        shown = [f"{k} {v:.4g}" for k, v in last.items() if k.startswith("val_")] or [
            f"{k} {v:.4g}" for k, v in last.items() if k == "loss" or k.startswith("loss_")
        ]
        click.echo(
            f"{result.status}: {len(result.history)} epoch(s), step {result.step}"
            + ("; " + "  ".join(shown) if shown else "")
            + f"\nrun directory: {out}",
            err=True,
        )
    return result.exit_code
