"""`specc plot KIND ...`: the lectures' figures from a spec or a run, each command a few lines over specc.plot.
Imports nothing heavy until a command runs (JAX for the model, matplotlib for the drawing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..cli_common import CHECKPOINT, FORCE_OUTPUT, RUN, SPEC, OutPath, reports_spec_errors

OUTPUT = click.option(
    "-o",
    "--output",
    type=OutPath(dir_okay=False, path_type=Path),
    help="The figure: .png, .svg or .pdf (default: a PNG in the run folder, or ./<spec>-<kind>.png;"
    " curves: ./curves-<metric>.png).",
)
DPI = click.option("--dpi", type=click.IntRange(min=10, max=1200), default=100, show_default=True)


def _write(fig: Any, output: Path | None, default: Path, force: bool, dpi: int) -> None:
    from .figure import OutputError, output_path, save

    try:
        path = output_path(output, default, force)
    except OutputError as e:
        raise click.UsageError(str(e)) from None
    save(fig, path, dpi)
    click.echo(f"wrote {path}", err=True)


def _check_output(output: Path | None, default: Path, force: bool) -> None:
    """Refuse a bad -o before the (slow) model work, not after."""
    from .figure import OutputError, output_path

    try:
        output_path(output, default, force)
    except OutputError as e:
        raise click.UsageError(str(e)) from None


def _default(target: Path, kind: str) -> Path:
    """A run's figures go into its folder; a spec's into ./<spec>-<kind>.png."""
    return target / f"{kind}.png" if target.is_dir() else Path(f"{target.stem}-{kind}.png")


def _plot() -> None:
    """The lectures' figures from a spec or a trained run (matplotlib; PNG, SVG or PDF). See docs/plot.md."""


plot: click.Group = click.group("plot", context_settings={"help_option_names": ["-h", "--help"]})(_plot)


@plot.command()
@click.argument("run", type=RUN)
@click.option("--resolution", type=click.IntRange(min=10, max=2000), default=200, show_default=True)
@CHECKPOINT
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def boundary(run: Path, resolution: int, checkpoint: str, output: Path | None, force: bool, dpi: int) -> None:
    """Decision regions of a trained RUN over its 2-D input, with the training points coloured by label."""
    from . import boundary as b
    from .subject import open_run

    _check_output(output, _default(run, "boundary"), force)
    subject = open_run(run, checkpoint)
    regions = b.decision_regions(subject, resolution)
    click.echo(
        f"{subject.graph.model}: classes of {regions.score} over {regions.input}; "
        f"training accuracy {regions.accuracy:.4f} ({len(regions.points)} points)"
    )
    title = f"{subject.graph.model} ({run.name}, {checkpoint} checkpoint)"
    _write(b.draw(regions, title), output, _default(run, "boundary"), force, dpi)


@plot.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path), metavar="SPEC|RUN")
@click.option("--model", "-m", help="Which model of the spec (default: the last one).")
@click.option(
    "--init", help="Replace every weight initialiser of the spec, e.g. 'normal(0.01)' or glorot_normal."
)
@click.option(
    "--data", help="Take the batch from this data set, e.g. 'digits()' (default: the train section's)."
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=500, show_default=True, help="Examples in the batch."
)
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def activations(
    target: Path,
    model: str | None,
    init: str | None,
    data: str | None,
    batch: int,
    output: Path | None,
    force: bool,
    dpi: int,
) -> None:
    """Per-layer histograms of the activations on a batch: at initialisation (a SPEC) or trained (a RUN folder)."""
    from rich.console import Console
    from rich.table import Table

    from . import activations as a
    from .subject import open_subject

    if init is not None and target.is_dir():
        raise click.UsageError(
            "--init sets a spec's initialisation; a run folder is already trained (give a .net)"
        )
    _check_output(output, _default(target, "activations"), force)
    subject = open_subject(target, model=model, init=init)
    layers = a.layer_activations(subject, data, batch)
    when = "trained" if subject.trained else f"at initialisation{f' ({init})' if init else ''}"
    title = f"{subject.graph.model} {when}"
    table = Table(title=title)
    for col in ("layer", "op", "mean", "std", "|v| ≥ 0.99"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for name, op, mean, std, sat in a.table(layers):
        table.add_row(name, op, f"{mean:.4g}", f"{std:.4g}", "–" if sat is None else f"{sat:.1%}")
    Console().print(table)
    _write(a.draw(layers, title), output, _default(target, "activations"), force, dpi)


@plot.command()
@click.argument("run", type=RUN)
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def gradients(run: Path, output: Path | None, force: bool, dpi: int) -> None:
    """Each layer's gradient norm per epoch (from `specc train --log-gradients`): vanishing gradients."""
    from . import gradients as g

    _check_output(output, _default(run, "gradients"), force)
    logs = g.read_gradients(run)
    for log in logs:
        click.echo(f"{log.objective}: gradient L2 norm per layer, epoch {log.epochs[0]} → {log.epochs[-1]}")
        for layer, norms in log.norms.items():
            click.echo(f"  {layer:<24} {norms[0]:10.4g} → {norms[-1]:10.4g}")
    _write(g.draw(logs, f"gradient norms ({run.name})"), output, _default(run, "gradients"), force, dpi)


@plot.command()
@click.argument("file", type=SPEC)
@click.option("--model", "-m", help="Which model of the spec (default: the last one).")
@click.option(
    "--steps", type=click.IntRange(min=1, max=10_000_000), help="Steps drawn (default: all epochs')."
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a train key, as in train."
)
@click.option(
    "--lr",
    "lrs",
    multiple=True,
    metavar="SCHEDULE",
    help="Draw this learning rate instead (repeatable), e.g. 'cosine(0.1, 20)'.",
)
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def schedule(
    file: Path,
    model: str | None,
    steps: int | None,
    overrides: tuple[str, ...],
    lrs: tuple[str, ...],
    output: Path | None,
    force: bool,
    dpi: int,
) -> None:
    """The learning rate over optimizer steps of FILE's train section (or of each --lr), as the trainer sets it."""
    from . import schedule as s

    _check_output(output, _default(file, "schedule"), force)
    curves, per_epoch = s.learning_rates(file, model=model, overrides=overrides, lrs=lrs, steps=steps)
    for c in curves:
        last = len(c.rates) - 1
        name = c.text if c.label == c.text else f"{c.label}: {c.text}"
        click.echo(f"{name}: step 0 {c.rates[0]:.4g}, step {last} {c.rates[last]:.4g}")
    click.echo(f"{per_epoch} steps per epoch", err=True)
    title = f"learning rate ({file.name}, {per_epoch} steps per epoch)"
    _write(s.draw(curves, per_epoch, title), output, _default(file, "schedule"), force, dpi)


@plot.command()
@click.argument("run", type=RUN)
@click.option("--n", "count", type=click.IntRange(min=1, max=1024), default=64, show_default=True)
@click.option("--image", "value", help="The image value (default: the first output made from the latent).")
@click.option(
    "--latent", help="The value drawn from N(0, 1) (default: the drawn inputs, else the sample_normal)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--manifold", is_flag=True, help="A 2-D latent on a grid of N(0, 1) quantiles (the VAE's plane)."
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUES",
    help="A conditional generator's other input, one number an example: e.g. y=0..9 with --n 100, a row a class.",
)
@CHECKPOINT
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def samples(
    run: Path,
    count: int,
    value: str | None,
    latent: str | None,
    seed: int,
    manifold: bool,
    inputs: tuple[str, ...],
    checkpoint: str,
    output: Path | None,
    force: bool,
    dpi: int,
) -> None:
    """A grid of images from a trained generative RUN (a GAN's generator, a VAE's decoder from the prior; a
    conditional one's labels by --input)."""
    from . import samples as sm
    from .subject import open_run

    fixed: dict[str, tuple[float, ...]] = {}
    for item in inputs:
        name, eq, values = item.partition("=")
        if not eq or not name.strip().isidentifier() or name.strip() in fixed:
            raise click.BadParameter(
                f"expected NAME=VALUES, each NAME once, got {item!r}; e.g. --input y=0..9",
                param_hint="--input",
            )
        try:
            fixed[name.strip()] = sm.parse_values(values)
        except ValueError as e:
            raise click.BadParameter(
                f"{item!r}: '{e}' is not a number or a range A..B", param_hint="--input"
            ) from None
    _check_output(output, _default(run, "samples"), force)
    subject = open_run(run, checkpoint)
    s = sm.generate(subject, count, output=value, latent=latent, seed=seed, manifold=manifold, fixed=fixed)
    click.echo(
        f"{subject.graph.model}: {len(s.images)} × {s.output} {list(s.images.shape[1:])} from {', '.join(s.latent)}"
    )
    _write(sm.draw(s, subject.graph.model), output, _default(run, "samples"), force, dpi)


@plot.command()
@click.argument("runs", type=RUN, nargs=-1, required=True)
@click.option("--metric", default="val_loss", show_default=True, help="The metrics.jsonl key drawn.")
@click.option("--log", "log_scale", is_flag=True, help="A logarithmic metric axis.")
@OUTPUT
@FORCE_OUTPUT
@DPI
@reports_spec_errors
def curves(
    runs: tuple[Path, ...], metric: str, log_scale: bool, output: Path | None, force: bool, dpi: int
) -> None:
    """One metric per epoch of several RUNS on one figure (a sweep); default output ./curves-<metric>.png."""
    from . import curves as c

    default = Path(f"curves-{metric}.png")
    _check_output(output, default, force)
    found = c.read_curves(list(runs), metric)
    for curve in found:
        click.echo(f"{curve.label}: {metric} {curve.values[-1]:.4g} at epoch {curve.epochs[-1]}")
    _write(c.draw(found, metric, f"{metric} of {len(found)} runs", log_scale), output, default, force, dpi)
