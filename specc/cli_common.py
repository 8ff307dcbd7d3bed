"""What every `specc` subcommand shares (specc.cli and the command groups in their own packages, e.g. specc.plot.cli):
exit codes, the located rendering of spec errors, and the argument types. A module of its own, so a command group
never imports specc.cli, which imports the groups (`python -m specc.cli` would load specc.cli twice)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from .errors import SpecError, UsageError

EXIT_SPEC_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def is_usage(err: SpecError) -> bool:
    """A UsageError, or an error found only in command-line options' values (`--seed -1`, `--set epochs=abc`, a
    `--data` expression that does not parse): located in the option as typed, and a usage error as click's own
    range checks are (exit 2)."""
    if isinstance(err, UsageError):
        return True
    # a pass that gathers every problem into one report (`specc check`) keeps a UsageError's by its kind
    return bool(err.diagnostics) and all(
        d.kind == "usage error" or (d.span is not None and d.span.file.startswith("--"))
        for d in err.diagnostics
    )


def _fail(err: SpecError, as_json: bool = False) -> None:
    code = EXIT_USAGE if is_usage(err) else EXIT_SPEC_ERROR
    if as_json:
        click.echo(json.dumps({"errors": [d.to_json() for d in err.diagnostics]}, indent=2))
    else:
        click.echo(err.render(), err=True)
        n = len(err.diagnostics)
        if n > 1:
            click.echo(f"\n{n} errors", err=True)
    sys.exit(code)


def reports_spec_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """Render SpecErrors as located messages (exit 1; a UsageError, an option's value, exits 2); never show users
    a traceback for their mistakes."""

    @wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except SpecError as e:
            _fail(e, kwargs.get("as_json", False))
        except RecursionError:  # the front ends bound nesting; this is the last line of defence
            err = SpecError.one(
                "value error",
                "the spec is nested too deeply to process",
                None,
                "split deep expressions into named steps",
            )
            _fail(err, kwargs.get("as_json", False))
        except KeyboardInterrupt as e:  # a second Ctrl-C, or one outside the trainer's loop: say so
            note = getattr(e, "note", "")  # what a second Ctrl-C in a run left undone (loop.Stopped)
            click.echo("specc: interrupted" + (f" {note}" if note else ""), err=True)
            # a checkpoint Orbax's threads are writing is abandoned (--resume skips an unfinished one); as the
            # interpreter exits, their work fails, and absl logged each failure with its traceback
            logging.getLogger("absl").disabled = True
            # a timer the interrupt left running kept the process from exiting until it fired: JAX's 60 s one
            # that warns of a slow TPU start, when the Ctrl-C came between its start and the try that cancels it
            for thread in threading.enumerate():
                if isinstance(thread, threading.Timer):
                    thread.cancel()
            sys.exit(128 + getattr(e, "signum", 2))  # a second SIGTERM in a run (loop.Stopped): 143, else 130
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors: click prints them and exits 2
        except BrokenPipeError:
            # the reader went away (`specc check X | head -0`): click's main then exits 1 quietly, as it
            # does for `specc --help | head -0`
            raise
        except Exception as e:  # a bug in specc, not in the spec
            if os.environ.get("SPECC_DEBUG"):
                raise
            click.echo(
                f"specc: internal error: {type(e).__name__}: {e}\n"
                "this is a bug in specc; rerun with SPECC_DEBUG=1 for the traceback",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    return run


class OutPath(click.Path):
    """click.Path for an output (-o, --out): an empty one is a usage error. `-o "$OUT"` with OUT unset was the
    current folder: `specc train --out ''` trained into it, `convert -o ''` said 'cannot write .: Device or
    resource busy'."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path (an unset shell variable?); give a name", param, ctx)
        return super().convert(value, param, ctx)


SPEC = click.Path(exists=True, dir_okay=False, path_type=Path)
RUN = click.Path(exists=True, file_okay=False, path_type=Path)
CHECKPOINT = click.option(
    "--checkpoint",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="The best epoch's checkpoint (by the early-stop metric, else val_loss) or the last one.",
)

FORCE_OUTPUT = click.option("--force", is_flag=True, help="Replace the output file if it exists.")


SPEC_SUFFIXES = (".net", ".yaml", ".yml")


def write_emitted(text: str, out_dir: Path | None, name: str) -> None:
    """An --emit product (`specc compile --emit flax|ir|dot|stablehlo`): to stdout, or as `name` in `out_dir`."""
    if out_dir is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    from .train.io import write_output

    write_output(out_dir / name, text.encode())
    click.echo(f"wrote {out_dir / name}")


def parse_binds(binds: tuple[str, ...]) -> dict[str, int]:
    """`--bind SIZE=N` options (compile, export) as sizes by name: N a positive integer, each name once (a second
    `--bind T=4` after `--bind T=3` won silently)."""
    bind: dict[str, int] = {}
    for b in binds:
        name, _, size = b.partition("=")
        # ASCII digits, and few of them: str.isdigit() accepts '１０', and int() refuses 4,300 digits
        if not name.isidentifier() or not (
            size.isascii() and size.isdigit() and len(size) <= 10 and 1 <= int(size) < 2**31
        ):
            raise click.BadParameter(
                f"expected SIZE=N with N a positive integer, got {b!r}", param_hint="--bind"
            )
        if name in bind:
            raise click.BadParameter(
                f"{name} is bound twice ({name}={bind[name]}, then {b}); give it once", param_hint="--bind"
            )
        bind[name] = int(size)
    return bind


# The suffixes of file formats an output could be taken for, each with the format's name.
FORMAT_SUFFIXES = {
    ".npz": "an .npz",
    ".npy": "an .npy",
    ".csv": "CSV",
    ".json": "JSON",
    ".onnx": "ONNX",
    ".safetensors": "safetensors",
    ".stablehlo": "StableHLO",
    ".mlir": "StableHLO",
    ".pt": "a PyTorch file",
    ".pth": "a PyTorch file",
    ".h5": "HDF5",
    ".pkl": "a pickle",
    ".net": "a .net spec",
    ".yaml": "a YAML spec",
    ".yml": "a YAML spec",
}


def guard_suffix(output: Path | None, writes: tuple[str, ...], what: str, other: str = "") -> None:
    """Refuse an -o whose suffix names another format than the one the command writes (`predict -o out.csv`
    wrote an .npz named out.csv; `export --to onnx -o w.npz` ONNX named w.npz): a usage error naming the suffix
    to give. `writes`: the suffixes the command's format goes by, the first its usual one; `other`: how to get
    the format the suffix names instead, if the command can write it."""
    if output is None:
        return
    suffix = output.suffix.lower()
    if suffix in FORMAT_SUFFIXES and suffix not in writes:
        raise click.UsageError(
            f"-o {output}: {what}, not {FORMAT_SUFFIXES[suffix]}; name it {output.with_suffix(writes[0])}"
            + (f", or {other}" if other else "")
        )


def spec_and_imports(file: Path) -> tuple[Path, ...]:
    """FILE and every file it imports, directly or not (`specc convert main.net --to net -o lib.net` replaced the
    library main.net imports); FILE alone when its imports do not load, or when it is no regular file (/dev/stdin
    from a pipe, which reads empty after this read, so that the command itself got nothing)."""
    from .frontend.load import load_program

    if not file.is_file():
        return (file,)
    try:
        sources = load_program(file).sources
    except SpecError:
        return (file,)
    return (file, *(Path(name) for name in sources))


def guard_output(
    output: Path | None,
    reads: tuple[Path, ...] = (),
    run: Path | None = None,
    writes_spec: bool = False,
    force: bool | None = None,
) -> None:
    """Refuse an -o that would replace what the command reads (the spec, the input arrays), a file of the run
    folder it reads (run.json, metrics.jsonl, its checkpoints, its spec copy), or, for a command that does not
    write a spec (`writes_spec`: convert does), an existing spec file (`export --to npz -o net.net`, a slip of
    the tab key): a usage error, nothing written, --force or not. A command with a --force option (`force` not
    None: predict, export) also refuses any other existing file unless it is given: specc cannot tell a file it
    wrote from the user's; the rest replace it, as -o means."""
    if output is None:
        return
    out = output.resolve()
    if not writes_spec and output.suffix.lower() in SPEC_SUFFIXES and out.is_file():
        raise click.UsageError(
            f"-o {output} is an existing spec file, and this command does not write a spec: writing it would "
            "replace it; give the output its own name (e.g. its format's suffix)"
        )
    for i, r in enumerate(reads):
        if out == Path(r).resolve():
            what = "the file this command reads" if i == 0 else f"a file {reads[0]} imports"
            raise click.UsageError(f"-o {output} is {what}: writing it would replace it")
    if run is not None:
        _guard_run_files(output, out, run)
    if force is False and (output.exists() or output.is_symlink()):
        # the wording of `specc plot`'s outputs, which refuse the same way
        raise click.UsageError(f"{output} exists; give --force to replace it, or another -o")


def _guard_run_files(output: Path, out: Path, run: Path) -> None:
    """Refuse an -o (`out`: resolved) among the run folder's own files, which the command reads."""
    from .train.rundir import BEST_DIR, OWN_FILES, SPEC_DIR

    home = Path(run).resolve()
    inside = [p for p in (out, *out.parents) if p.parent == home]
    if inside and (inside[0].name in OWN_FILES or inside[0].name in (BEST_DIR, SPEC_DIR, "checkpoints")):
        what = (
            f"would write into the run's own {inside[0].name}/ folder"
            if inside[0] != out and inside[0].name not in OWN_FILES
            else f"would replace the run's own {inside[0].name}"
        )
        raise click.UsageError(
            f"-o {output} {what}; write the file elsewhere, or under another name in {run}"
        )
