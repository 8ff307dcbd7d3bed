"""The `specc` command: each subcommand a few lines over the library. Exit codes: 0 ok, 1 spec error, 2 usage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .cli_common import (
    CHECKPOINT,
    EXIT_SPEC_ERROR,
    EXIT_USAGE,
    FORCE_OUTPUT,
    FORMAT_SUFFIXES,
    RUN,
    SPEC,
    OutPath,
    guard_output,
    guard_suffix,
    is_usage,
    parse_binds,
    reports_spec_errors,
    spec_and_imports,
    write_emitted,
)
from .errors import SpecError
from .lsp import lsp as lsp_command
from .plot.cli import plot as plot_group

SET_LET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace a `let` constant, e.g. width=256.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="specc")
def main() -> None:
    """specc — check, draw, compile and train deep-learning model specs (.net or YAML)."""


@main.command()
@click.argument("files", type=SPEC, nargs=-1, required=True)
@click.option("--model", "-m", help="Which model of the file (default: the last one).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the errors) as JSON.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace a `let` constant, a train key or an objective's key, as train does, e.g. width=256,"
    " optimizer.lr=0.01 or teacher.epochs=2.",
)
@reports_spec_errors
def check(files: tuple[Path, ...], model: str | None, as_json: bool, overrides: tuple[str, ...]) -> None:
    """Parse and check FILES: shapes, dtypes, names. Prints outputs and parameter count; exit 1 on errors."""
    if len(files) == 1:
        _check_one(files[0], model, as_json, overrides=overrides)
        return
    failed = usage = 0
    results = []
    for file in files:  # every file is checked and reported; the exit code says whether any failed
        try:
            results.append(_check_one(file, model, as_json, quiet=True, overrides=overrides))
        except SpecError as e:
            failed += 1
            usage += is_usage(e)
            if as_json:
                results.append({"file": str(file), "errors": [d.to_json() for d in e.diagnostics]})
            else:
                click.echo(e.render(), err=True)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif failed:
        click.echo(f"\n{failed} of {len(files)} files failed", err=True)
    if failed:  # exit 2 where only the options were wrong (`--model M` that no file has)
        sys.exit(EXIT_USAGE if usage == failed else EXIT_SPEC_ERROR)


def _echo_model_summary(file: Path, summary: dict[str, Any]) -> None:
    click.echo(f"{file}: model {summary['model']}: ok")
    click.echo("  inputs:  " + ", ".join(f"{k}: {t}" for k, t in summary["inputs"].items()))
    click.echo("  outputs: " + ", ".join(f"{k}: {t}" for k, t in summary["outputs"].items()))
    state = f" (+{summary['total_state']:,} state)" if summary["total_state"] else ""
    click.echo(f"  params:  {summary['total_params']:,}{state}")
    if summary["flops_per_example"] is not None:
        click.echo(f"  flops:   {summary['flops_per_example']:,} per example")


def _check_one(
    file: Path, model: str | None, as_json: bool, quiet: bool = False, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
    from .spec import load
    from .train.spec import check_spec

    # a name defined twice is reported with the file's other problems, not alone
    spec = load(file, model, keep_going=True)
    summary = check_spec(spec, overrides)  # the model, then its train and objective sections, in one report
    keys = ("model", "outputs", "total_params", "total_state", "flops_per_example", "inputs")
    warnings = summary.get("warnings")
    others = summary.get(
        "other_models", []
    )  # a file of several models, checked whole: the default comes last
    if as_json:
        report = {k: summary[k] for k in keys}
        if others:
            report["other_models"] = [{k: o[k] for k in keys} for o in others]
        report["warnings"] = warnings.to_json() if warnings else []
        if quiet:  # one of several files: the caller prints them all as one JSON list
            return {"file": str(file), **report}
        click.echo(json.dumps(report, indent=2))
        return report
    for one in [*others, summary]:
        _echo_model_summary(file, one)
    if "train" in summary:
        for o in summary["train"]["objectives"]:
            params = f" over {', '.join(o['params'])}" if o["params"] is not None else ""
            terms = "".join(
                f" {'+' if c >= 0 else '-'} {'' if abs(c) == 1 else f'{abs(c):g}·'}{t}" for c, t in o["loss"]
            )
            terms = terms[3:] if terms.startswith(" + ") else terms.lstrip()
            click.echo(f"  train:   {o['name']}: {terms} by {o['optimizer']}{params}")
    if warnings:  # the spec is valid (exit 0), but says what its author almost surely did not mean
        click.echo(warnings.render(), err=True)
    return {}


# `-` is standard input (as black and gofmt read it): the formatted text goes to standard output
FMT_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
STDIN_NAME = "<stdin>"


@main.command()
@click.argument("files", type=FMT_FILE, nargs=-1, required=True)
@click.option(
    "--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted."
)
@click.option(
    "--diff", "show_diff", is_flag=True, help="Change nothing; print what fmt would change (a diff)."
)
@click.option("--force", is_flag=True, help="Rewrite even if comments would be lost.")
@reports_spec_errors
def fmt(files: tuple[Path, ...], check_only: bool, show_diff: bool, force: bool) -> None:
    """Rewrite FILES (.net) in canonical form, keeping comments, aligned columns and number spellings. `specc
    fmt -` formats standard input to standard output (an editor's format on save)."""
    if Path("-") in files:
        if len(files) > 1:
            raise click.UsageError("- (standard input) is formatted alone: give it without other files")
        if _fmt_stdin(check_only, show_diff, force) and check_only:
            sys.exit(EXIT_SPEC_ERROR)
        return
    if len(files) == 1:  # one file's errors go out as every command's do (reports_spec_errors)
        if _fmt_one(files[0], check_only, show_diff, force) and check_only:
            sys.exit(EXIT_SPEC_ERROR)
        return
    unformatted = failed = 0
    for file in files:  # as `check` does: every file formatted or reported, the first error stopping none
        try:
            unformatted += _fmt_one(file, check_only, show_diff, force)
        except SpecError as e:
            failed += 1
            click.echo(e.render() + "\n", err=True)
    if failed:
        click.echo(f"{failed} of {len(files)} files failed", err=True)
    if failed or (check_only and unformatted):
        sys.exit(EXIT_SPEC_ERROR)


def _fmt_stdin(check_only: bool, show_diff: bool, force: bool) -> bool:
    """`specc fmt -`: standard input formatted to standard output (or checked, or diffed); whether it was not
    canonical. Raises SpecError, located in <stdin>."""
    from .frontend.convert import format_bytes, unified_diff

    raw = sys.stdin.buffer.read()
    new = format_bytes(raw, STDIN_NAME, force)
    if show_diff:
        click.echo(unified_diff(raw, new, STDIN_NAME), nl=False)
    elif check_only:
        if new != raw:
            click.echo(f"{STDIN_NAME}: not canonically formatted (run `specc fmt -`)", err=True)
    else:
        sys.stdout.buffer.write(new)
        sys.stdout.flush()
    return new != raw


def _fmt_one(file: Path, check_only: bool, show_diff: bool, force: bool) -> bool:
    """Format (or check, or diff) one file; whether it was not canonical. Raises SpecError."""
    from .frontend.convert import format_diff, format_file

    if show_diff:
        diff = format_diff(file, force=force)
        click.echo(diff, nl=False)
        changed = bool(diff)
    else:
        changed = format_file(file, check_only=check_only, force=force)
    if check_only and changed:
        # a pipe (/dev/stdin) has no file to rewrite: convert prints the formatted text
        fix = f"specc fmt {file}" if file.is_file() else f"specc convert {file} --to net"
        click.echo(f"{file}: not canonically formatted (run `{fix}`)", err=True)
    return changed


@main.command()
@click.argument("name", required=False)
@reports_spec_errors
def ops(name: str | None) -> None:
    """The ops (or op NAME): signature, what it computes, an example with shapes and parameters (docs/ops.md)."""
    from .reference import all_ops, op_text

    registry = all_ops()
    if name is None:
        width = max(len(op.name) for op in registry.values())
        for op in sorted(registry.values(), key=lambda o: (o.family, o.name)):
            click.echo(f"{op.name:<{width}}  {op.family:<11} {op.doc}")
        click.echo("\n`specc ops NAME` shows one op's signature, arguments and an example")
        return
    if name not in registry:
        from .errors import did_you_mean
        from .ops._foreign import OP_NAMES

        target = OP_NAMES.get(name.lower().replace("_", ""))  # `specc ops Linear`, read off a PyTorch listing
        if target:
            advice = f"{name} (PyTorch/Keras) is `{target}` in specc"
        elif name.lower() in registry:  # `specc ops LSTM`
            advice = f"did you mean {name.lower()!r}?"
        else:
            advice = did_you_mean(name, list(registry))
        raise click.BadParameter(f"no op named {name!r}; {advice}".rstrip("; "))
    click.echo(op_text(registry[name]), nl=False)


@main.command()
@click.argument("name", required=False)
@reports_spec_errors
def data(name: str | None) -> None:
    """The data sets (or data set NAME) a train section can name: arguments, fields, an example (docs/data.md)."""
    from .reference import data_text
    from .train.data import DATASETS

    if name is None:
        width = max(len(info.signature()) for info in DATASETS.values())
        for info in DATASETS.values():
            click.echo(f"{info.signature():<{width}}  {info.doc}")
        return
    if name not in DATASETS:
        from .errors import did_you_mean

        raise click.BadParameter(
            f"no data set named {name!r}; {did_you_mean(name, list(DATASETS))}".rstrip("; ")
        )
    click.echo(data_text(name), nl=False)


@main.command()
@click.argument("file", type=SPEC)
@click.option("--to", "target", type=click.Choice(["yaml", "net"]), required=True)
@click.option(
    "-o", "--output", type=OutPath(dir_okay=False, path_type=Path), help="Write here (default: stdout)."
)
@reports_spec_errors
def convert(file: Path, target: str, output: Path | None) -> None:
    """Convert FILE between the .net and YAML front ends."""
    from .frontend.convert import convert_file

    # `--to yaml -o keep.net` replaced a hand-written .net spec with YAML that no longer loaded as one
    writes = (".yaml", ".yml") if target == "yaml" else (".net",)
    other = "net" if target == "yaml" else "yaml"
    guard_output(output, reads=spec_and_imports(file), writes_spec=True)
    guard_suffix(output, writes, f"--to {target} writes {FORMAT_SUFFIXES[writes[0]]}", f"give --to {other}")
    text = convert_file(file, target, output)
    if output is None:
        click.echo(text, nl=False)
    else:
        from .train.io import write_output

        write_output(output, text.encode())


LOWERING = click.option(
    "--lowering",
    type=click.Choice(["auto", "measure", "reference"]),
    default="auto",
    show_default=True,
    help="auto: each op's form by this platform's rule table (im2col convs on CPU, ...); measure: each op's forms"
    " timed once on this machine, the choice cached; reference: every op's plain form.",
)


@main.command()
@click.argument("file", type=SPEC)
@click.option("--model", "-m")
@click.option(
    "--emit", type=click.Choice(["ir", "flax", "hlo", "dot"]), help="Write this form instead of the table."
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=OutPath(file_okay=False, path_type=Path),
    help="Directory for --emit files.",
)
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Bind the batch size (default 32).")
@click.option(
    "--bind", "binds", multiple=True, metavar="SIZE=N", help="Bind another free size, e.g. --bind T=16."
)
@click.option("--json", "as_json", is_flag=True)
@LOWERING
@SET_LET
@reports_spec_errors
def compile(
    file: Path,
    model: str | None,
    emit: str | None,
    out_dir: Path | None,
    batch: int | None,
    binds: tuple[str, ...],
    as_json: bool,
    lowering: str,
    overrides: tuple[str, ...],
) -> None:
    """Check FILE, lower it to Flax and jit-compile it with XLA; print node, op, shape, params, FLOPs."""
    if emit is not None and as_json:  # --json was ignored without a word
        raise click.UsageError(
            f"--json prints the table as JSON and --emit {emit} writes the {emit} form: give one"
        )
    from .spec import load
    from .train.spec import apply_lets

    spec = apply_lets(load(file, model), overrides, only_lets=True)
    if emit == "ir":
        from .ir.printer import format_graph

        write_emitted(format_graph(spec.graph()), out_dir, f"{spec.graph().model}.ir")
        return
    if emit == "dot":
        write_emitted(spec.to_dot(), out_dir, f"{spec.graph().model}.dot")
        return
    from .train.compile_cache import enable_compile_cache

    enable_compile_cache()
    from .backend.compile import compile_command

    bind = parse_binds(binds)
    compile_command(
        spec, emit=emit, out_dir=out_dir, batch=batch, as_json=as_json, bind=bind, lowering=lowering
    )


@main.command()
@click.argument("file", type=SPEC)
@click.option("--model", "-m")
@click.option(
    "-o",
    "--output",
    type=OutPath(dir_okay=False, path_type=Path),
    help="out.dot, .svg, .png or .pdf (default: DOT on stdout).",
)
@click.option("--rankdir", type=click.Choice(["TB", "LR", "BT", "RL"]), help="Default: to fit a 16:9 slide.")
@click.option(
    "--wrap/--no-wrap", default=None, help="Long chains in rows (default: when too long for a slide)."
)
@click.option("--block", help="Draw this block alone, on symbolic inputs.")
@click.option("--dpi", type=click.IntRange(min=1), help="Resolution of a PNG (Graphviz: 96).")
@click.option("--shapes/--no-shapes", default=True)
@click.option("--params/--no-params", default=True)
@click.option("--legend/--no-legend", default=True)
@click.option(
    "--collapse",
    multiple=True,
    is_flag=False,
    flag_value="all",
    metavar="[NAME]",
    help="Draw block NAME as one node; 'all' (also --collapse alone) every block.",
)
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Expand blocks to this depth only.")
@click.option("--values", help="Computational-graph mode: input values, e.g. x1=2,x2=3 (imports JAX).")
@click.option("--grad", help="With --values: annotate the gradient of this value.")
@SET_LET
@reports_spec_errors
def dot(
    file: Path,
    model: str | None,
    output: Path | None,
    rankdir: str | None,
    wrap: bool | None,
    block: str | None,
    dpi: int | None,
    shapes: bool,
    params: bool,
    legend: bool,
    collapse: tuple[str, ...],
    depth: int | None,
    values: str | None,
    grad: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Draw FILE as a Graphviz graph for slides (inputs white, parameters red, operations blue)."""
    from .backend.dot import dot_command

    guard_output(output, reads=(file,))
    dot_command(
        file,
        model=model,
        output=output,
        rankdir=rankdir,
        wrap=wrap,
        block=block,
        dpi=dpi,
        shapes=shapes,
        params=params,
        legend=legend,
        collapse=collapse,
        depth=depth,
        values=values,
        grad=grad,
        overrides=overrides,
    )


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("file", type=SPEC)
@click.option("--model", "-m")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a train key, an objective's key or a `let` constant, e.g. optimizer.lr=0.01, teacher.epochs=2"
    " or width=256.",
)
@click.option("--epochs", type=click.IntRange(min=0))
@click.option("--batch", type=click.IntRange(min=1))
@click.option("--seed", type=int)
@click.option("--data", help="Override the data source, e.g. 'mnist(\"data/\")'.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=OutPath(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default: runs/<model>).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--force", is_flag=True, help="Replace the run in --out (deletes only the files a run writes).")
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    help="Data-parallel over this many local devices (default: all; on a CPU with several cores a model with"
    " convolutions splits it into devices, --devices 1 keeps one; --devices N splits a CPU into N).",
)
@click.option(
    "--log-histograms", is_flag=True, help="Also log each layer's weights per epoch to TensorBoard."
)
@click.option(
    "--log-steps", is_flag=True, help="Also log every step's loss and metrics to TensorBoard (slower)."
)
@click.option("--log-gradients", is_flag=True, help="Also write each layer's gradient norm per epoch.")
@click.option(
    "--exec",
    "execution",
    type=click.Choice(["auto", "step", "prefetch", "scan"]),
    default="auto",
    show_default=True,
    help="Batches per device call: one (step; prefetch: the next sent by a thread) or a chunk (scan).",
)
@LOWERING
@reports_spec_errors
def train(
    file: Path,
    model: str | None,
    overrides: tuple[str, ...],
    epochs: int | None,
    batch: int | None,
    seed: int | None,
    data: str | None,
    out_dir: Path | None,
    resume: bool,
    force: bool,
    devices: int | None,
    log_histograms: bool,
    log_steps: bool,
    log_gradients: bool,
    execution: str,
    lowering: str,
) -> None:
    """Train FILE's model as its `train` section says; logs metrics.jsonl, checkpoints, curves."""
    from .train.cli import train_command

    code = train_command(
        file,
        model=model,
        overrides=overrides,
        epochs=epochs,
        batch=batch,
        seed=seed,
        data=data,
        out_dir=out_dir,
        resume=resume,
        force=force,
        devices=devices,
        log_histograms=log_histograms,
        log_steps=log_steps,
        lowering=lowering,
        execution=execution,
        log_gradients=log_gradients,
    )
    sys.exit(code)


@main.command()
@click.argument("file", type=SPEC)
@click.option(
    "--set", "options", multiple=True, metavar="KEY=V1,V2,...", help="A train key or `let` to sweep."
)
@click.option("--model", "-m")
@click.option("--epochs", type=click.IntRange(min=0))
@click.option("--batch", type=click.IntRange(min=1))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=OutPath(file_okay=False, path_type=Path),
    help="Default: runs/<spec>-sweep.",
)
@click.option("--resume", is_flag=True, help="Continue the sweep in --out; finished runs are skipped.")
@click.option(
    "--force", is_flag=True, help="Replace the sweep in --out (each run deletes only its own files)."
)
@LOWERING
@reports_spec_errors
def sweep(file: Path, options: tuple[str, ...], **kw: Any) -> None:
    """Train FILE once per point of the --set grid (one run folder each); summary table, summary.csv/.json."""
    from .train.sweep import sweep_command

    sys.exit(sweep_command(file, options, **kw))


@main.command()
@click.argument("run", type=RUN)
@click.option(
    "--data", help="Evaluate on this data set instead of the run's validation split, e.g. 'csv(\"t.csv\")'."
)
@CHECKPOINT
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@reports_spec_errors
def evaluate(run: Path, data: str | None, checkpoint: str, as_json: bool) -> None:
    """The spec's losses and metrics of a trained RUN on its validation split (or --data)."""
    from .train.artifact import load_run

    r = load_run(run, checkpoint)
    figures = r.evaluate(data)
    on = r.evaluated_on
    if as_json:
        record = {"run": str(run), "checkpoint": r.checkpoint, "step": r.step, "data": on, **figures}
        click.echo(json.dumps(record, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    # the title on its own line: as the table's title, rich wrapped it to the two narrow columns' width
    click.echo(f"{r.graph.model}: {run} ({r.checkpoint} checkpoint, step {r.step})")
    # the figures of a run without a validation split are training figures: said, lest they pass for held-out ones
    where = {
        "validation": "the validation split",
        "training": "the TRAINING data (the run has no validation split; --data evaluates on other data)",
        "data": f"--data {data}" + (" (its validation split)" if on.get("part") == "validation" else ""),
    }[on["split"]]
    click.echo(f"on {where}: {on['examples']:,} examples")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(k, f"{v:.6g}")
    Console().print(table)


@main.command()
@click.argument("run", type=RUN)
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", type=OutPath(dir_okay=False, path_type=Path), help="Write the outputs here (.npz)."
)
@FORCE_OUTPUT
@click.option(
    "--allow-nonfinite", is_flag=True, help="Run the model on inputs that hold NaN or ±inf (else an error)."
)
@CHECKPOINT
@reports_spec_errors
def predict(
    run: Path, inputs: Path, output: Path | None, force: bool, allow_nonfinite: bool, checkpoint: str
) -> None:
    """Run a trained RUN on INPUTS (.npz with arrays named as the model's inputs, or .csv or .npy for its one
    input)."""
    from .train.artifact import load_run, read_inputs

    guard_output(output, reads=(inputs,), run=run, force=force)
    guard_suffix(output, (".npz",), "predict writes an .npz (its outputs by name)")
    r = load_run(run, checkpoint)
    out = r.predict(**read_inputs(r, inputs, allow_nonfinite))
    named = r.named_classes(out)
    if output is None:
        import numpy as np

        with np.printoptions(threshold=200, precision=5):
            for k, v in out.items():
                click.echo(f"{k}: {v.dtype}{list(v.shape)}\n{v}")
                if k in named:  # the data named its classes (a csv's text labels): the argmax by name
                    click.echo(f"{k}, highest class: " + ", ".join(named[k]))
        return
    import io

    import numpy as np

    from .train.io import write_output

    buf = io.BytesIO()
    # beside each output that scores named classes, `<output>_class`: the names of its argmax (unicode, no pickle)
    out = {**out, **{f"{k}_class": np.array(v) for k, v in named.items() if f"{k}_class" not in out}}
    np.savez(buf, **out)  # type: ignore[arg-type]  # numpy types **kwds oddly
    write_output(output, buf.getvalue())
    click.echo(f"wrote {output}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in out.items()), err=True)


@main.command()
@click.argument("run", type=RUN)
@click.option("--to", "fmt", type=click.Choice(["onnx", "npz", "safetensors", "stablehlo"]), required=True)
@click.option(
    "-o", "--output", type=OutPath(dir_okay=False, path_type=Path), help="Default: RUN/<model>.<ext>."
)
@click.option(
    "--bind", "binds", multiple=True, metavar="SIZE=N", help="Fix a free size (N defaults to 1), e.g. T=100."
)
@FORCE_OUTPUT
@CHECKPOINT
@reports_spec_errors
def export(
    run: Path, fmt: str, output: Path | None, binds: tuple[str, ...], force: bool, checkpoint: str
) -> None:
    """Export a trained RUN: ONNX (Netron, onnxruntime), StableHLO, or its named weights (npz, safetensors)."""
    from .train.artifact import load_run
    from .train.export import SUFFIX, data_bound, export_model

    bind = parse_binds(binds)
    guard_output(output, run=run, force=force)
    named = {v: k for k, v in SUFFIX.items()} | {".mlir": "stablehlo"}
    suffix = output.suffix.lower() if output is not None else ""
    guard_suffix(
        output,
        (SUFFIX[fmt], ".mlir") if fmt == "stablehlo" else (SUFFIX[fmt],),
        f"--to {fmt} writes {FORMAT_SUFFIXES[SUFFIX[fmt]]}",
        f"give --to {named[suffix]}" if suffix in named else "",
    )
    r = load_run(run, checkpoint)
    path = output or run / f"{r.graph.model}{SUFFIX[fmt]}"
    guard_output(path, run=run, force=force)  # the default name too: an earlier export, or the user's file
    from_data = data_bound(r.model, r.data_sizes, bind) if fmt in ("onnx", "stablehlo") else {}
    if from_data:  # said, since it fixes the exported shapes
        shown = ", ".join(f"{k}={v}" for k, v in from_data.items())
        click.echo(f"sizes from the run's training data: {shown} (--bind overrides)", err=True)
    export_model(r.model, fmt, path, {**from_data, **bind})
    click.echo(f"wrote {path}", err=True)


main.add_command(lsp_command)  # `specc lsp`: the language server (specc/lsp/)

main.add_command(plot_group)  # `specc plot KIND`: the lectures' figures (specc/plot/)

if __name__ == "__main__":
    main()
