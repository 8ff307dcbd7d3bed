"""`specc sweep`: a grid of `--set` overrides (train keys or `let` constants, so the model itself may vary), each
point trained into its own run folder, one after another in one process, then a summary of their final figures
(a table, `summary.csv` and `summary.json` in the sweep folder)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import SpecError, UsageError
from ..source import Source, Span
from .io import write_atomic
from .spec import Override, _statement_break, value_text

SWEEP_FILE = "sweep.json"
SUMMARY_FILES = ("summary.csv", "summary.json")
FORMAT = 1
FINISHED = ("done", "early_stop", "diverged")  # a point with one of these is not trained again by --resume
_SAFE = re.compile(r"[^A-Za-z0-9_.,=+\-()\[\]]")


@dataclass(frozen=True)
class Axis:
    """One `--set KEY=V1,V2,...`: the key as typed and one Override per value, each located in the option."""

    key: str
    values: tuple[Override, ...]


@dataclass(frozen=True)
class Point:
    """One run of the grid: its overrides (one value per axis) and its run folder's name (`width=16,seed=0`)."""

    name: str
    overrides: tuple[Override, ...]

    @property
    def settings(self) -> dict[str, str]:
        """Key → value as typed, in the axes' order."""
        return {".".join(o.path): value_text(o) for o in self.overrides}

    @property
    def values(self) -> dict[str, Any]:
        """Key → value: a literal's value (`16` is 16, so summary.json sorts and plots), else the text as typed."""
        from .spec import _NotLiteral, literal

        out: dict[str, Any] = {}
        for k, text in self.settings.items():
            try:
                out[k] = literal(next(o.value for o in self.overrides if ".".join(o.path) == k), {})
            except _NotLiteral:
                out[k] = text
        return out


def _error(message: str, span: Span | None, src: Source | None, hint: str = "") -> SpecError:
    err = SpecError.one("argument error", message, span, hint)
    return err.with_sources({src.name: src}) if src is not None else err


def top_level_commas(text: str) -> list[int]:
    """The indices of the commas in `text` outside brackets and strings: `adam(1e-3, b1=0.9)` has none."""
    from ..frontend.fmt import code_chars  # the one scanner of characters outside strings

    out, depth = [], 0
    for i, ch in code_chars(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            out.append(i)
    return out


def parse_axis(text: str, index: int = 0) -> Axis:
    """`--set KEY=V1,V2,...` (the index-th): the values split at top-level commas only, so a call or a list with
    commas is one value (`optimizer=adam(1e-3, b1=0.9),sgd(0.1)` is two). Errors point into the option."""
    from ..frontend.parse import parse_expr

    name = "--set" if index == 0 else f"--set[{index + 1}]"
    src = Source(name, text)
    key, eq, rest = text.partition("=")
    if not eq or not key.strip() or not rest.strip():
        raise _error(
            f"--set wants KEY=V1,V2,..., got '{text}'",
            Span.point(name, 1, 1, len(text)),
            src,
            "e.g. --set width=16,64,256 or --set 'optimizer=adam(1e-3),sgd(0.1)'",
        )
    start = len(key) + 1
    second = _statement_break(rest)
    if second is not None:
        raise _error(
            "one KEY=V1,V2,... per --set; this one holds a second statement",
            Span.point(name, 1, start + second + 1),
            src,
            "give each key its own option: --set width=16,64 --set seed=0,1",
        )
    path = tuple(key.strip().split("."))
    key_span = Span.point(name, 1, 1, len(key))
    cuts = [-1, *top_level_commas(rest), len(rest)]
    values: list[Override] = []
    seen: dict[str, int] = {}
    for a, b in itertools.pairwise(cuts):
        piece = rest[a + 1 : b]
        col = start + a + 2 + (len(piece) - len(piece.lstrip()))
        if not piece.strip():
            raise _error(
                "an empty value in the list",
                Span.point(name, 1, col),
                src,
                "separate values by single commas",
            )
        try:
            expr = parse_expr(piece.strip(), name, 1, col)
        except SpecError as e:
            raise e.with_sources({name: src}) from None
        ov = Override(path, expr, src, key_span)
        shown = value_text(ov)
        if shown in seen:
            raise _error(
                f"{key.strip()}={shown} is given twice (first at column {seen[shown]})",
                expr.span,
                src,
                "list each value once",
            )
        seen[shown] = col
        values.append(ov)
    return Axis(key.strip(), tuple(values))


def grid(axes: Sequence[Axis]) -> list[Point]:
    """Every combination of the axes' values, the first axis varying slowest; folder names are unique."""
    keys = [a.key for a in axes]
    for i, k in enumerate(keys):
        if k in keys[:i]:
            ov = axes[i].values[0]
            raise _error(
                f"'{k}' is swept by two --set options",
                ov.key_span,
                ov.source,
                f"give all its values in one: --set {k}=V1,V2,...",
            )
    points: list[Point] = []
    taken: set[str] = set()
    for combo in itertools.product(*(a.values for a in axes)):
        name = folder_name(",".join(f"{'.'.join(o.path)}={value_text(o)}" for o in combo))
        base, n = name, 2
        while name.lower() in taken:  # case-insensitive file systems
            name, n = f"{base}-{n}", n + 1
        taken.add(name.lower())
        points.append(Point(name, tuple(combo)))
    return points


def folder_name(text: str) -> str:
    """`width=16,seed=0` as it is; spaces dropped, any other character a file system may refuse becomes `_`."""
    name = _SAFE.sub("_", text.replace(" ", ""))
    if name.startswith((".", "-")):
        name = "_" + name[1:]
    if len(name) > 120:
        import hashlib

        name = name[:110] + "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return name


# ---- the sweep folder -------------------------------------------------------------------------------------------


def _run_error(message: str, hint: str = "") -> SpecError:
    return SpecError.one("run error", message, None, hint)


def read_sweep(out: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((out / SWEEP_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def prepare_sweep(
    out: Path,
    spec_path: Path,
    *,
    resume: bool,
    force: bool,
    axes: Sequence[str] = (),
    model: str | None = None,
) -> dict[str, Any]:
    """Check that `out` can take this sweep (nothing is written); the record of the sweep it continues or
    replaces, else a new one. Same rules as a run folder: a sweep is continued with --resume or replaced with
    --force; a folder that is not a sweep is never written into. `axes`: the swept keys in order; --resume must
    sweep the keys the sweep does (other values of them extend it), else the summary would mix two grids; and
    give the spec file it was started with (the same path, or the same content moved: sweep.json's
    `spec_sha256`) and the model it trained (`model`, the name `--model` picked or the file's last), else it
    would mix two models."""
    if out.exists() and not out.is_dir():
        raise _run_error(f"the sweep folder {out} is a file", "give --out a folder")
    existing = read_sweep(out) if out.is_dir() else None
    occupied = out.is_dir() and any(out.iterdir())
    if occupied and existing is None:
        raise _run_error(
            f"{out} is not empty and is not a specc sweep (no {SWEEP_FILE}); specc will not write into it",
            "give --out a new or empty folder",
        )
    if existing is not None and not (resume or force):
        raise _run_error(
            f"{out} already holds a sweep of {existing.get('spec', '?')} (started {existing.get('started', '?')})",
            "continue it with --resume (finished runs are skipped), replace it with --force, or give another --out",
        )
    spec = str(spec_path.resolve())
    digest = _spec_digest(spec_path)
    if existing is not None and resume:
        started = existing.get("spec")
        moved = digest is not None and existing.get("spec_sha256") == digest
        if isinstance(started, str) and started != spec and not moved:
            # another spec's points would be trained into this sweep's grid, its finished ones skipped as if
            # they were this spec's: the summary would mix two models (a moved but unchanged spec is the same)
            raise UsageError.of(
                f"--resume: the sweep in {out} was started with {started}; this command gives {spec_path}",
                f"resume with the spec it was started with, {started}; or give another --out (--force "
                "replaces the sweep)",
            )
        trained = existing.get("model")
        if isinstance(trained, str) and model is not None and trained != model:
            # a file's other model trained into this sweep's grid: the finished points (the first model's) would
            # be skipped and summarised with the new one's (a sweep.json from before models were recorded: no check)
            raise UsageError.of(
                f"--resume: the sweep in {out} trained model {trained}; this command trains {model}",
                f"resume with --model {trained}; or give another --out (--force replaces the sweep)",
            )
        before = swept_keys(existing)
        if before is not None and axes and list(axes) != before:
            order = sorted(before) == sorted(axes)
            raise UsageError.of(
                f"--resume: the sweep in {out} varies {', '.join(before)}"
                + (", in that order; this command varies " if order else "; this command varies ")
                + ", ".join(axes),
                f"resume with {' '.join(f'--set {k}=...' for k in before)} (other values extend the sweep), or "
                "give another --out (--force replaces the sweep)",
            )
        return {
            **existing,
            "spec": spec,
            "spec_sha256": digest,
            **({"model": model} if model is not None else {}),
            "axes": list(before if before is not None else axes),
        }
    return {
        "format": FORMAT,
        "spec": spec,
        "spec_sha256": digest,
        **({"model": model} if model is not None else {}),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "axes": list(axes),
        "points": {},
    }


def _spec_digest(spec_path: Path) -> str | None:
    """The spec file's SHA-256, which tells a moved spec from another one on --resume (None: unreadable)."""
    import hashlib

    try:
        return hashlib.sha256(spec_path.read_bytes()).hexdigest()
    except OSError:
        return None


def swept_keys(record: Mapping[str, Any]) -> list[str] | None:
    """The keys a sweep record varies, in order: its `axes`, or (a record written before specc kept them) its
    first point's settings; None where neither says."""
    axes = record.get("axes")
    if isinstance(axes, list) and axes and all(isinstance(k, str) for k in axes):
        return axes
    points = record.get("points")
    first = next(iter(points.values()), None) if isinstance(points, dict) else None
    settings = first.get("settings") if isinstance(first, dict) else None
    return list(settings) if isinstance(settings, dict) and settings else None


def _write_json(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def _label_run(workdir: Path, settings: Mapping[str, str]) -> None:
    """run.json's `overrides`: the point's settings, which `specc plot curves` labels the run by."""
    from .rundir import RUN_FILE, read_run

    meta = read_run(workdir)
    if meta is not None:
        meta["overrides"] = dict(settings)
        _write_json(workdir / RUN_FILE, meta)


# ---- the summary ------------------------------------------------------------------------------------------------


def summary_row(name: str, entry: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """One point's line from its sweep.json entry and its run: its settings, the parameter count, how it ended, and
    the last epoch's figures (train and validation losses and metrics, as in its metrics.jsonl), with the best
    epoch by the entry's `best` rule (metric, min|max)."""
    from .artifact import _read_history

    history = _read_history(workdir / "metrics.jsonl")
    row: dict[str, Any] = {
        "run": name,
        **entry["values"],
        "params": entry["params"],
        "status": entry["status"],
    }
    row["epochs"] = len(history)
    if entry.get("best"):
        metric, mode = entry["best"]
        scored = [h for h in history if metric in h]
        if not scored and metric == "val_loss":  # no validation split: the best training loss
            metric, scored = "loss", [h for h in history if "loss" in h]
        if scored:
            pick = min if mode == "min" else max
            top = pick(scored, key=lambda h: float(h[metric]))
            row["best_epoch"] = int(top.get("epoch", history.index(top) + 1))
            row[f"best_{metric}"] = float(top[metric])
    last = history[-1] if history else {}
    row.update({k: v for k, v in last.items() if k not in ("epoch", "time", "lr", "stage")})
    return row


def write_summary(out: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "summary.csv", buf.getvalue().encode())
    _write_json(out / "summary.json", list(rows))


def print_summary(title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns and k != "run"]  # the settings name the run
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right")
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    for line in cells:
        table.add_row(*line)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: the whole table, not one squeezed into 80 columns
        widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
        console = Console(width=max(80, sum(widths) + 3 * len(widths) + 1))
    console.print(table)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# ---- the command ------------------------------------------------------------------------------------------------


def sweep_command(
    file: Path,
    options: Sequence[str],
    *,
    model: str | None = None,
    epochs: int | None = None,
    batch: int | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
    lowering: str = "auto",
) -> int:
    """Train every point of the grid; returns the exit code: 0 all done, 1 a run diverged, 130 interrupted (143:
    by SIGTERM; the runs finished so far and the summary stay). Every point is checked before the first one trains."""
    from ..spec import load
    from .spec import apply_lets, build_config, parse_flag

    if not options:
        raise click.UsageError("give at least one --set KEY=V1,V2,...")
    if resume and force:
        raise click.UsageError("give --resume (continue the sweep) or --force (replace it), not both")
    points = grid([parse_axis(o, i) for i, o in enumerate(options)])
    base = load(file, model)
    out = out_dir if out_dir is not None else Path("runs") / f"{Path(file).stem}-sweep"
    flags = [parse_flag(k, v) for k, v in (("epochs", epochs), ("batch", batch)) if v is not None]
    planned = []
    for p in points:  # the whole grid is checked before anything is written or trained
        ovs = [*p.overrides, *flags]
        spec = apply_lets(base, ovs)
        graph = spec.graph()
        planned.append((p, graph, build_config(spec, graph, ovs)))
    # each warning once (the spec's own repeat at every point; a grid value's is shown as its --set)
    said = dict.fromkeys(c.report_warnings().render() for _, _, c in planned if c.warnings)
    for text in said:
        click.echo(text + "\n", err=True)
    name = base.program.model(model).name
    replaced = read_sweep(out) if force and out.is_dir() else None
    record = prepare_sweep(
        out, Path(file), resume=resume, force=force, axes=list(points[0].settings), model=name
    )
    done: dict[str, Any] = record.setdefault("points", {})
    todo = {p.name for p, _, c in planned if not (resume and _finished(done.get(p.name), c, out / p.name))}
    from . import rundir

    if resume:
        _refuse_unrecorded_points(out, done, todo)
        from .rundir import check_resumable, specc_run

        for p, graph, config in planned:  # a point skipped as finished must still hold this sweep's run
            if p.name not in todo and (run := specc_run(out / p.name)) is not None:
                check_resumable(run, config, graph)
    for p, graph, config in planned:  # a clash with a folder's run shows now, not after hours of the sweep
        if p.name in todo:
            rundir.prepare(out / p.name, config, graph, resume=resume, force=force)
    if replaced is not None:
        _remove_points(out, replaced, keep={p.name for p in points})

    from .compile_cache import enable_compile_cache
    from .loop import frozen_heap, train_and_evaluate

    enable_compile_cache()
    from .execution import split_for

    # the first point's rule; a point whose batch the split does not divide trains on fewer devices
    split_for(planned[0][1], planned[0][2].batch)
    out.mkdir(parents=True, exist_ok=True)
    # this grid's points in its order, then those of an earlier grid of the sweep (the summary keeps them)
    done = {p.name: done.get(p.name, {"settings": p.settings}) for p, _, _ in planned} | done
    record["points"] = done
    _write_json(out / SWEEP_FILE, record)
    code = 0
    for i, (p, graph, config) in enumerate(planned, 1):
        workdir = out / p.name
        if p.name not in todo:
            done[p.name].update(_described(p, graph, config))
            if verbose:
                click.echo(f"[{i}/{len(planned)}] {p.name}: finished, skipped", err=True)
            continue
        if verbose:
            click.echo(f"[{i}/{len(planned)}] {p.name} → {workdir}", err=True)
        with frozen_heap():
            result = train_and_evaluate(
                config, workdir, resume=resume, force=force, verbose=verbose, graph=graph, lowering=lowering
            )
        _label_run(workdir, p.settings)
        done[p.name] = {"status": result.status, "epochs": config.epochs, **_described(p, graph, config)}
        _write_json(out / SWEEP_FILE, record)
        _summarize(out, done)
        if result.divergence is not None and verbose:
            click.echo(f"specc: {p.name}: {result.divergence.message()}", err=True)
        if result.status == "interrupted":
            code = result.exit_code
            break
        if result.status == "diverged":
            code = result.exit_code
    rows = _summarize(out, done)
    print_summary(f"{name}: {out}", rows)
    if verbose:
        click.echo(f"summary: {out / 'summary.csv'}, {out / 'summary.json'}", err=True)
    return code


def _point_folders(out: Path, names: Any) -> list[Path]:
    """The point folders of `out` that `names` (a sweep record's, read from disk) name: plain folder names only,
    never a path out of the sweep."""
    if not isinstance(names, Mapping):
        return []
    return [out / n for n in names if isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n]


def _remove_points(out: Path, replaced: Mapping[str, Any], keep: set[str]) -> None:
    """--force: the replaced sweep's points that this grid does not train lose what their runs wrote (each
    folder goes when nothing else is left in it). Left, they stayed among the points: `specc plot curves
    out/*/` drew them, and a later --resume of a grid naming one again continued its old run as this sweep's."""
    from .rundir import BEST_DIR, recorded_checkpoint_dir, remove_own, specc_run

    for folder in _point_folders(out, replaced.get("points")):
        run = specc_run(folder) if folder.is_dir() and not folder.is_symlink() else None
        if folder.name in keep or run is None:
            continue
        checkpoints = recorded_checkpoint_dir(folder) or "checkpoints"
        remove_own(folder, checkpoints, run)
        for sub in (
            folder / checkpoints,
            folder / BEST_DIR,
            folder,
        ):  # the folders the run made, if now empty
            if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
                sub.rmdir()


def _refuse_unrecorded_points(out: Path, recorded: Mapping[str, Any], todo: set[str]) -> None:
    """--resume: a point this sweep never started whose folder holds a run is another sweep's or another
    command's (an earlier grid of the folder, replaced before --force removed such points): continuing it as
    this sweep's would mix two runs in one."""
    from .rundir import specc_run

    for name in sorted(todo - set(recorded)):
        if specc_run(out / name) is not None:
            raise _run_error(
                f"{out / name} holds a run that this sweep never started (sweep.json does not list {name})",
                "move it away, or replace the sweep with --force",
            )


def _described(p: Point, graph: Any, config: Any) -> dict[str, Any]:
    """What the summary shows of a point besides its run's figures: settings, values, parameters, best rule."""
    from .loggers import best_metric

    rule = best_metric(config)
    return {
        "settings": p.settings,
        "values": p.values,
        "params": graph.total_params,
        "best": list(rule[:2]) if rule else None,
    }


def _finished(entry: Any, config: Any, workdir: Path) -> bool:
    """Whether --resume may skip a point: it ended (done, stopped early, diverged) with the epochs asked now."""
    from .rundir import read_run

    if not isinstance(entry, dict) or entry.get("status") not in FINISHED or read_run(workdir) is None:
        return False
    return entry.get("status") != "done" or entry.get("epochs") == config.epochs


def _summarize(out: Path, points: Mapping[str, Any]) -> list[dict[str, Any]]:
    """summary.csv and summary.json over the sweep's points that ran (in sweep.json's order); the rows."""
    rows = [
        summary_row(name, entry, out / name)
        for name, entry in points.items()
        if "status" in entry and "values" in entry and (out / name / "metrics.jsonl").is_file()
    ]
    write_summary(out, rows)
    return rows
