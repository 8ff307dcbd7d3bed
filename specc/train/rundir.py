"""The run directory: what a run writes there, the guard that keeps one run from overwriting another, and the
check that `--resume` continues the run that was trained, not an edited spec.

A run folder holds `run.json` (the marker: versions, seed, what was trained), `config.json` (the resolved train
configuration after `--set`), `spec/` (the spec as trained, with every file it imports), `metrics.jsonl`,
`curves.png` and the checkpoint folder. specc deletes only those, and only with `--force`: the files by their names
(the spec copies by the names run.json lists), TensorBoard's event files by tensorboardX's naming, and the checkpoint
folders that are Orbax's. A `run.json` that specc did not write does not make a folder a run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import Diagnostics, SpecError
from ..source import Source, Span
from .io import write_atomic

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
SPEC_DIR = "spec"
GRADIENTS_FILE = "gradients.jsonl"  # --log-gradients: each layer's gradient norm per epoch
OWN_FILES = (
    RUN_FILE,
    CONFIG_FILE,
    "metrics.jsonl",
    "curves.png",
    "normalization.json",
    "classes.json",
    GRADIENTS_FILE,
)
BEST_DIR = "best"  # the best epoch's checkpoint (specc/train/loggers.py)
EVENTS_PREFIX = "events.out.tfevents."  # TensorBoard's event files
# tensorboardX's EventsWriter names a file events.out.tfevents.<time, 10 digits>.<host>; a user's
# `events.out.tfevents.mine` is not one of them
_EVENTS_FILE = re.compile(r"^events\.out\.tfevents\.\d{10}\..+$")
FORMAT = 2
# keys that may change between a run and its --resume: they decide when to stop, not what is trained
HARMLESS = ("epochs", "early_stop", "checkpoint_every")


def checkpoint_dir_problem(cdir: str) -> str | None:
    """Why `cdir` cannot be a run's checkpoint folder (None if it can): a plain relative subfolder, no '..'."""
    if cdir.strip() == "":
        return "is empty"
    p = PurePosixPath(cdir.replace("\\", "/"))
    if p.is_absolute() or cdir.startswith("~"):
        return "is not inside the run directory"
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts:
        return "is the run directory itself"
    if ".." in parts:
        return "leaves the run directory"
    if parts[0] in OWN_FILES or parts[0] in (SPEC_DIR, BEST_DIR) or parts[0].startswith(EVENTS_PREFIX):
        return f"collides with the run's own '{parts[0]}'"
    return None


def _run_error(message: str, hint: str = "", span: Span | None = None) -> SpecError:
    return SpecError.one("run error", message, span, hint)


def _plain(x: Any) -> Any:
    """A JSON-able, span-free image of a config value (dataclasses, tuples, paths). A config's warnings are not
    part of it: they come from checking the spec, and a resume would compare their wording."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {
            f.name: _plain(getattr(x, f.name))
            for f in dataclasses.fields(x)
            if f.name not in ("span", "spans", "sources", "warnings")
        }
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def fingerprint(config: Any, graph: Any) -> dict[str, Any]:
    """What a run trains, as JSON: the model's nodes (op, arguments, types, parameters) and the train settings."""
    from ..ir.printer import format_node

    train = _plain(config)
    # `lets` (the --set constants) are not compared themselves: the nodes and settings they made are
    for k in ("spec_path", "data_base", "checkpoint_dir", "lets"):
        train.pop(k, None)
    for o in train.pop("objectives", []):
        prefix = "" if o["name"] == "main" else f"objective {o['name']} "
        train[prefix + "loss"] = [[c, _call_text(t)] for c, t in o["terms"]]
        train[prefix + "optimizer"] = _call_text(o["optimizer"])
        train[prefix + "params"] = o.get("params")
    return {
        "model": graph.model,
        "nodes": {n.name: format_node(graph, n).strip() for n in graph.nodes},
        "outputs": [k for k, _ in graph.outputs],
        "train": {k: v for k, v in train.items() if k not in HARMLESS},
        "harmless": {k: train.get(k) for k in HARMLESS},
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("specc", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _spec_copy_names(sources: Mapping[str, Source], main: Path) -> dict[str, str]:
    """Display name → path inside spec/, keeping the files' layout relative to each other (imports resolve)."""
    paths = {name: Path(name).resolve() for name in sources if not name.startswith("<")}
    if not paths:
        return {}
    root = Path(os.path.commonpath([str(p.parent) for p in [*paths.values(), main.resolve()]]))
    return {name: p.relative_to(root).as_posix() for name, p in paths.items()}


def read_run(workdir: Path) -> dict[str, Any] | None:
    """The run.json of `workdir`, or None when there is none; `specc_run` when only specc's own will do."""
    try:
        return dict(json.loads((Path(workdir) / RUN_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def specc_run(workdir: Path) -> dict[str, Any] | None:
    """The run.json of `workdir` when specc wrote it (its format number, model, spec copy and fingerprint), else
    None: an app's own `run.json` must not make its folder a run that `--force` may replace."""
    record = read_run(workdir)
    if record is None:
        return None
    shape = {"format": int, "model": str, "spec": str, "fingerprint": dict}
    return record if all(isinstance(record.get(k), t) for k, t in shape.items()) else None


@contextlib.contextmanager
def held(workdir: Path, primary: bool = True) -> Iterator[None]:
    """The run folder locked against a second `specc train` into it while this one runs: two at once
    interleaved metrics.jsonl ([1, 2, 1, 2]), and the second deleted the first's checkpoints as a run to replace.
    A run error naming the folder instead. The folder is made here (to lock it) and removed again, with the
    parents made for it, if the run stops before writing anything into it; a file system without locks runs
    unlocked, as before."""
    import fcntl

    workdir = Path(workdir)
    made: list[Path] = []  # innermost first
    probe = workdir
    while primary and not probe.exists() and probe != probe.parent:
        made.append(probe)
        probe = probe.parent
    fd = None
    try:
        if primary:
            with contextlib.suppress(OSError):  # prepare says why the folder cannot be made or used
                workdir.mkdir(parents=True, exist_ok=True)
                fd = os.open(workdir, os.O_RDONLY)
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _run_error(
                    f"another specc train is writing {workdir} right now; two runs in one folder would mix "
                    "their metrics and delete each other's checkpoints",
                    "wait for it to end (then --resume or --force as usual), or give another --out",
                ) from None
            except OSError:
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)
        for d in made:
            try:
                d.rmdir()  # only while empty: nothing was written
            except OSError:
                break


def prepare(
    workdir: Path,
    config: Any,
    graph: Any,
    *,
    resume: bool,
    force: bool,
    primary: bool = True,
) -> bool:
    """Check that `workdir` can take this run (nothing is written yet; `start` writes); True when it holds a
    run to resume. Raises SpecError (exit 1) when it cannot be used: a file, unwritable, another run (without
    --resume or --force), a folder that is not a run, a spec that differs from the run's on resume.
    """
    workdir = Path(workdir)
    if not primary:
        # only process 0 writes the run folder; the others follow its decision (it may be writing it right now)
        return resume and read_run(workdir) is not None
    problem = checkpoint_dir_problem(config.checkpoint_dir)
    if problem:
        raise _run_error(
            f'checkpoint dir "{config.checkpoint_dir}" {problem}',
            'give a plain subfolder of the run directory, e.g. checkpoint(dir="checkpoints")',
            config.span("checkpoint"),
        )
    if workdir.exists() and not workdir.is_dir():
        raise _run_error(f"the run directory {workdir} is a file", "give --out a folder")
    existing = specc_run(workdir) if workdir.is_dir() else None
    occupied = workdir.is_dir() and any(workdir.iterdir())
    ckpt = workdir / config.checkpoint_dir
    if resume:
        if existing is None:
            if occupied:
                raise _run_error(
                    f"{workdir} is not a specc run (no {RUN_FILE} that specc wrote); there is nothing to resume",
                    "give --out the folder of an earlier run, or drop --resume",
                )
            resuming = False
        else:
            check_resumable(existing, config, graph, recorded_checkpoint_dir(workdir))
            resuming = True
    elif occupied:
        if existing is None:
            raise _run_error(
                f"{workdir} is not empty and is not a specc run"
                + (f" (its {RUN_FILE} is not one specc wrote)" if read_run(workdir) is not None else "")
                + "; specc will not write into it",
                "give --out a new or empty folder",
            )
        if not force:
            raise _run_error(
                f"{workdir} already holds a run of {existing.get('model', '?')} "
                f"(started {existing.get('started', '?')})",
                "continue it with --resume, replace it with --force, or give another --out",
            )
        _check_replaceable(workdir, config, existing)
        resuming = False
    else:
        resuming = False
    for part in _walk_up(ckpt, workdir):
        if part.is_symlink() or (part.exists() and not part.is_dir()):
            raise _run_error(
                f"the checkpoint folder {ckpt} cannot be used: {part} is "
                + ("a symbolic link" if part.is_symlink() else "a file"),
                "move it away, or choose another checkpoint(dir=...)",
                config.span("checkpoint"),
            )
    if primary:
        _probe_writable(workdir)
    return resuming


def _probe_writable(workdir: Path) -> None:
    """Fail now, not after an epoch, when the run directory cannot be created or written."""
    probe = workdir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise _run_error(
            f"cannot create the run directory {workdir}: {probe} is a file", "give --out a folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _run_error(
            f"cannot write the run directory {workdir}: {probe} is not writable",
            "give --out a folder you can write to",
        )


def start(
    workdir: Path, config: Any, graph: Any, *, resuming: bool, sizes: Mapping[str, int] | None = None
) -> None:
    """Write the run's record (run.json, config.json, spec/) once every check has passed; a replaced run's own
    files go first. `sizes`: the size names the training data fixed (artifact.data_sizes). Raises SpecError when
    the folder cannot be written."""
    workdir = Path(workdir)
    existing = specc_run(workdir) if resuming else None
    sources = _spec_sources(config)  # read before a replaced run's files go, whatever lies among them
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        replaced = None if resuming else specc_run(workdir)
        if replaced is not None:
            before = recorded_checkpoint_dir(workdir)  # read before remove_own deletes config.json
            remove_own(workdir, config.checkpoint_dir, replaced)
            old = workdir / before if before is not None and before != config.checkpoint_dir else None
            if old is not None and old.is_dir() and not any(old.iterdir()):  # the replaced run's, now empty
                old.rmdir()
        if resuming:  # the run is ours and this process holds its folder (`held`): no save is under way
            from .checkpoint import remove_unfinished

            remove_unfinished(workdir / config.checkpoint_dir)
            remove_unfinished(workdir / BEST_DIR)
        _write_record(workdir, config, graph, existing, sources, sizes or {})
    except OSError as e:
        raise _run_error(
            f"cannot write the run directory {workdir}: {e.strerror or e}",
            "give --out a folder you can write to",
        ) from None


def _walk_up(path: Path, stop: Path) -> list[Path]:
    out = []
    while path != stop and path != path.parent:
        out.append(path)
        path = path.parent
    return list(reversed(out))


def _spec_sources(config: Any) -> dict[str, Source]:
    """The spec as it is trained, by display name: the main file and every file it imports."""
    from ..spec import load

    return dict(load(config.spec_path, config.model).program.sources)


def event_files(workdir: Path) -> list[Path]:
    """The TensorBoard event files tensorboardX wrote in `workdir`, by its naming (a look-alike stays)."""
    if not workdir.is_dir():
        return []
    return sorted(
        p for p in workdir.iterdir() if _EVENTS_FILE.match(p.name) and p.is_file() and not p.is_symlink()
    )


def spec_copies(workdir: Path, record: Mapping[str, Any]) -> list[Path]:
    """The spec copies the run `record` (its run.json) wrote in `workdir`: the files its `spec_files` names, or
    for a run written before that list, its main copy and what that imports. Only files inside spec/ count,
    whatever the record says; a user's own file in spec/ is not one of them."""
    listed = record.get("spec_files")
    if not (isinstance(listed, list) and all(isinstance(n, str) for n in listed)):
        listed = _copy_and_imports(workdir, str(record.get("spec", "")))
    spec = workdir / SPEC_DIR
    if spec.is_symlink() or not spec.is_dir():
        return []
    root = spec.resolve()
    files = [workdir / n for n in listed]
    return [p for p in files if p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(root)]


def _copy_and_imports(workdir: Path, main: str) -> list[str]:
    """`main` (run.json's `spec`) and the files it imports, relative to `workdir` (an unreadable copy: itself)."""
    from ..spec import load

    try:
        sources = load(workdir / main).program.sources
    except (SpecError, OSError, ValueError):
        return [main]
    top = workdir.resolve()
    return [main, *(os.path.relpath(Path(n).resolve(), top) for n in sources if not n.startswith("<"))]


def own_paths(workdir: Path, checkpoint_dir: str, record: Mapping[str, Any]) -> list[Path]:
    """Everything replacing the run `record` in `workdir` deletes: the files a run writes (by their names, its spec
    copies as its run.json lists them, tensorboardX's event files) and Orbax's step folders; nothing else."""
    from .checkpoint import orbax_steps

    named = [p for p in (workdir / n for n in OWN_FILES) if p.is_file() and not p.is_symlink()]
    # the steps in the folder the replaced run saved to as well (its config.json's), where the new run saves
    # elsewhere: left, a later --resume with the old folder restored the replaced run's weights
    folders = {checkpoint_dir, recorded_checkpoint_dir(workdir) or checkpoint_dir}
    found = [
        *named,
        *event_files(workdir),
        *spec_copies(workdir, record),
        *(step for folder in sorted(folders) for step in orbax_steps(workdir / folder)),
        *orbax_steps(workdir / BEST_DIR),
    ]
    # each once: a file named twice (`spec/a.net`, `spec/x/../a.net`) must not fail its second delete
    return list({p.resolve(): p for p in found}.values())


def remove_own(workdir: Path, checkpoint_dir: str, record: Mapping[str, Any]) -> None:
    """Delete what the run `record` wrote in `workdir` (`own_paths`); a folder of spec copies goes only when
    nothing is left in it, so a user's notes in spec/ keep it."""
    import shutil

    for p in own_paths(workdir, checkpoint_dir, record):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
            _prune_empty(p.parent, workdir / SPEC_DIR)


def _prune_empty(folder: Path, spec: Path) -> None:
    """Remove `folder` and its parents up to `spec` (the run's spec/) while they are empty: the folders that held
    only spec copies; anything outside spec/ stays."""
    while (folder == spec or spec in folder.parents) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _check_replaceable(workdir: Path, config: Any, record: Mapping[str, Any]) -> None:
    """Refuse `--force` (before anything is deleted) where replacing the run would delete a file this run reads
    (the spec, a file it imports or its data kept inside the run folder), overwrite a user's file with the new
    spec copy, or leave a user's numbered folder among the checkpoints, which Orbax would read as a step."""
    from .checkpoint import foreign_steps

    strays = foreign_steps(workdir / config.checkpoint_dir) + foreign_steps(workdir / BEST_DIR)
    if strays:
        raise _run_error(
            f"{strays[0]} is not a checkpoint specc wrote, but Orbax would take it for step {strays[0].name}",
            f"move it out of {strays[0].parent}, or give another --out",
        )
    doomed = {p.resolve() for p in own_paths(workdir, config.checkpoint_dir, record)}
    sources = _spec_sources(config)
    read = _read_paths(config, sources)
    for what, path in read:
        if path in doomed or any(d in path.parents for d in doomed):
            raise _run_error(
                f"--force would delete {path}, {what}, with the run in {workdir}",
                f"move it out of {workdir} (or train a copy kept elsewhere), or give another --out",
            )
    _check_spec_copies_fit(workdir, config, sources, {p for _, p in read}, doomed)


def _check_spec_copies_fit(
    workdir: Path, config: Any, sources: Mapping[str, Source], read: set[Path], doomed: set[Path]
) -> None:
    """Refuse where the new run's spec copy would overwrite a file in spec/ that the replaced run did not write
    (the spec being trained itself, kept there, or a user's file of the same name)."""
    for rel in _spec_copy_names(sources, Path(config.spec_path)).values():
        target = workdir / SPEC_DIR / rel
        if not (target.exists() or target.is_symlink()):
            continue
        if target.is_symlink() or target.resolve() not in doomed:
            if target.resolve() in read:
                raise _run_error(
                    f"the spec {target} lies in the run's {SPEC_DIR}/ folder, where the run writes its copy of it",
                    f"move it out of {workdir}, or give another --out",
                )
            raise _run_error(
                f"{target} is not a file a run wrote; the run's copy of the spec would overwrite it",
                "move it away, or give another --out",
            )


def _read_paths(config: Any, sources: Mapping[str, Source]) -> list[tuple[str, Path]]:
    """What a run reads from disk, as (what, resolved path): the spec, its imports, and the existing files that
    the data call's string arguments name (relative to the data folder)."""
    main = Path(config.spec_path).resolve()
    files = [Path(n).resolve() for n in sources if not n.startswith("<")]
    out = [("the spec being trained", main)] + [("a file the spec imports", p) for p in files if p != main]
    base = Path(config.data_base if config.data_base is not None else Path(config.spec_path).parent)
    values = [v for k, v in config.data.args if k != "*"] + list(config.data.kw.get("*", ()))
    for v in values:
        if isinstance(v, str) and v and (base / v).exists():
            out.append(("a data file of the run", (base / v).resolve()))
    return out


def _write_record(
    workdir: Path,
    config: Any,
    graph: Any,
    existing: dict[str, Any] | None,
    sources: Mapping[str, Source],
    sizes: Mapping[str, int],
) -> None:
    fp = fingerprint(config, graph)
    names = _spec_copy_names(sources, Path(config.spec_path))
    main_name = Source.display_name(Path(config.spec_path))
    if existing is None:
        for name, rel in names.items():
            write_atomic(workdir / SPEC_DIR / rel, sources[name].text.encode("utf-8"))
    # the copies this run wrote, by name: what a later --force deletes in spec/ (a resumed run wrote none)
    spec_files = (
        [f"{SPEC_DIR}/{rel}" for rel in names.values()] if existing is None else existing.get("spec_files")
    )
    record = {
        "format": FORMAT,
        "model": graph.model,
        "spec": f"{SPEC_DIR}/{names.get(main_name, Path(config.spec_path).name)}",
        **({"spec_files": spec_files} if spec_files is not None else {}),
        "spec_origin": str(Path(config.spec_path).resolve()),
        "data_base": str(Path(config.data_base or Path(config.spec_path).parent).resolve()),
        "seed": config.seed,
        "started": existing.get("started") if existing else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "fingerprint": fp,
        **({"data_sizes": dict(sizes)} if sizes else {}),
    }
    write_atomic(workdir / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(workdir / CONFIG_FILE, (json.dumps(_plain(config), indent=2) + "\n").encode())


def _follows_a_change(before: str, now: str, changed: set[str]) -> bool:
    """A node whose call is the same (`%logits: f32[N, 10] = dense(%h, features=10, ...)  # params ...`) and whose
    types or parameter shapes differ only because an input changed: `dense(100)` → `dense(300)` also changed the
    relu after it and the next layer's kernel; one edit, reported once, at the layer edited."""
    call_before, call_now = (t.partition(" = ")[2].partition("  # ")[0] for t in (before, now))
    return call_before == call_now and any(
        name in changed for name in re.findall(r"%([^\s,()\[\]]+)", call_now)
    )


def recorded_checkpoint_dir(workdir: Path) -> str | None:
    """The checkpoint folder the run in `workdir` saved to, as its config.json records it (None: no record, or a
    value that is no plain subfolder of it, which nothing then reads or deletes)."""
    try:
        value = json.loads((Path(workdir) / CONFIG_FILE).read_text(encoding="utf-8")).get("checkpoint_dir")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(value, str) or checkpoint_dir_problem(value) is not None:
        return None
    # a folder reached through a symbolic link is not the run's own: nothing in it is read or deleted
    return None if any(p.is_symlink() for p in _walk_up(Path(workdir) / value, Path(workdir))) else value


def check_resumable(
    existing: dict[str, Any], config: Any, graph: Any, checkpoint_dir: str | None = None
) -> None:
    """Raise a located SpecError naming every difference between the run's spec and `config`/`graph` that
    resuming cannot honour (a changed layer, optimizer, loss, data, batch or seed, or the checkpoint folder the
    run saved to: `checkpoint_dir`, whose steps a resume with another folder would not find, or would take from
    elsewhere)."""
    saved = existing.get("fingerprint")
    if not isinstance(saved, dict):
        raise _run_error(
            "this run folder records no fingerprint of what it trained; it cannot be resumed safely",
            "train afresh with --force, or into another --out",
        )
    now = fingerprint(config, graph)
    diags = Diagnostics()
    hint = "resume only with the spec that was trained (a copy is in the run's spec/ folder); or --force to start afresh"
    if saved.get("model") != now["model"]:
        diags.add(
            "resume error",
            f"the run trained model {saved.get('model')}, this spec gives {now['model']}",
            graph.span,
            hint,
        )
    old_nodes: dict[str, str] = dict(saved.get("nodes", {}))
    by_name = {n.name: n for n in graph.nodes}
    changed = {name for name, text in now["nodes"].items() if old_nodes.get(name) != text}
    shown = 0
    for name, text in now["nodes"].items():
        before = old_nodes.get(name)
        if before == text or (before is not None and _follows_a_change(before, text, changed)):
            continue
        shown += 1
        if shown > 5:
            continue
        if before is None:
            diags.add(
                "resume error", f"'{name}' is new since the run was trained: {text}", by_name[name].span, hint
            )
        else:
            diags.add(
                "resume error",
                f"'{name}' changed since the run was trained: was `{before}`, now `{text}`",
                by_name[name].span,
                hint,
            )
    gone = [n for n in old_nodes if n not in now["nodes"]]
    if gone:
        diags.add(
            "resume error",
            f"the trained model had {', '.join(repr(g) for g in gone[:5])}"
            + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            + ", which this spec no longer has",
            graph.span,
            hint,
        )
    if checkpoint_dir is not None and checkpoint_dir != config.checkpoint_dir:
        diags.add(
            "resume error",
            f'the run saved its checkpoints in "{checkpoint_dir}", this spec saves them in '
            f'"{config.checkpoint_dir}": the resume would not continue from them',
            config.span("checkpoint") or graph.span,
            f'resume with checkpoint(dir="{checkpoint_dir}"); or --force to start afresh',
        )
    old_train: dict[str, Any] = dict(saved.get("train", {}))
    for key, value in now["train"].items():
        if old_train.get(key) != value:
            span = config.span(_span_key(key))
            # the spec may be unchanged: the run was started with a --set (or --batch, --seed, --data)
            option = (
                ""
                if key.startswith("objective ")
                else f", or give the value it trained with again (--set {key}=...)"
            )
            diags.add(
                "resume error",
                f"train key '{key}' changed since the run was trained: was {_show(old_train.get(key))}, "
                f"now {_show(value)}",
                span,
                f"resume with the spec that was trained (a copy is in the run's spec/ folder){option}; or --force "
                "to start afresh",
            )
    diags.raise_if_any(dict(config.sources))


def _span_key(key: str) -> str:
    if key.startswith("objective "):
        return key.split()[1]
    return {"rename": "data", "params": "loss"}.get(key, key)


def _call_text(c: Any) -> Any:
    """`adam(lr=0.001, b1=0.9)` from a plain CallSpec; other values as they are."""
    if isinstance(c, dict) and "name" in c and "args" in c:
        args = []
        for k, v in c["args"]:
            shown = _call_text(v)
            if k == "*":
                args += [str(a) for a in shown]
            else:
                args.append(f"{k}={shown}")
        return f"{c['name']}({', '.join(args)})"
    if isinstance(c, list):
        return [_call_text(v) for v in c]
    return c


def _show(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "))
    return text if len(text) <= 160 else text[:157] + "..."
