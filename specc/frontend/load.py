"""Reading spec files: decode, parse (.net or YAML), follow imports relative to the importing file, detect cycles."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import Diagnostic, Diagnostics, SpecError
from ..source import Source, Span
from . import ast

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Program:
    """A spec file with its imports resolved.

    Args:
        path: the file that was loaded.
        module: its AST.
        models: its models by name, in file order (the last is the default).
        blocks, lets: its own and every imported file's, by name.
        sources: every file read, by display name (for rendering errors).
        problems: names defined twice (and a second train section), kept here instead of raised when loaded with
            `keep_going`, so that `specc check` reports them before everything else it finds; the first
            definition of each name is the one in the tables.
    """

    path: Path
    module: ast.Module
    models: dict[str, ast.ModelDef]
    blocks: dict[str, ast.BlockDef]
    lets: dict[str, ast.Let]
    trains: tuple[ast.TrainDef, ...]
    objectives: dict[str, ast.ObjectiveDef]
    sources: dict[str, Source] = field(default_factory=dict)
    problems: tuple[Diagnostic, ...] = ()

    def model(self, name: str | None = None) -> ast.ModelDef:
        if not self.models:
            raise SpecError.one(
                "name error",
                f"{self.module.file or self.path} defines no model",
                Span.point(str(self.module.file or self.path), 1, 1),
                "a spec needs a `model NAME { ... }` section",
            ).with_sources(self.sources)
        if name is None:
            return list(self.models.values())[-1]
        if name not in self.models:
            from ..errors import UsageError, did_you_mean

            # a slip in the option, not in the file: a usage error (exit 2), as `specc dot --block` says of a block
            dym = did_you_mean(name, self.models)
            raise UsageError.of(
                f"--model {name}: no model named '{name}' in {self.module.file}"
                + (f"; {dym}" if dym else ""),
                "models in this file: " + ", ".join(self.models),
            )
        return self.models[name]


def read_source(path: Path, name: str | None = None) -> Source:
    return read_source_and_bytes(path, name)[0]


def read_source_and_bytes(path: Path, name: str | None = None) -> tuple[Source, bytes]:
    """The decoded source and the bytes it was decoded from, read once: /dev/stdin from a pipe reads empty the
    second time (`cat m.net | specc fmt --check /dev/stdin`)."""
    from .parse import decode

    display = name or Source.display_name(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError.one("file error", f"no such file: {display}", None, "check the path") from None
    except IsADirectoryError:
        raise SpecError.one("file error", f"{display} is a directory, not a spec file", None) from None
    except OSError as e:
        raise SpecError.one("file error", f"cannot read {display}: {e.strerror}", None) from None
    return decode(data, display), data


def parse_any(src: Source) -> ast.Module:
    if src.name.endswith(YAML_SUFFIXES):
        from .yaml_frontend import parse_yaml

        return parse_yaml(src)
    from .parse import parse_source

    return parse_source(src)


def load_program(path: Path | str, text: str | None = None, keep_going: bool = False) -> Program:
    """Load a spec and everything it imports; raises SpecError with every problem found.

    With `keep_going`, a name defined twice is not raised but kept in `Program.problems` (the first definition
    in the tables), so that a checker can report it together with the rest of the file's problems; a syntax
    error or an import that fails is raised all the same."""
    path = Path(path)
    src = Source(Source.display_name(path), text) if text is not None else read_source(path)
    sources: dict[str, Source] = {src.name: src}
    diags = Diagnostics()
    try:
        module = parse_any(src)
    except SpecError as e:
        raise e.with_sources(sources) from None
    blocks: dict[str, ast.BlockDef] = {}
    lets: dict[str, ast.Let] = {}
    _collect_imports(module, path.resolve(), [path.resolve()], blocks, lets, sources, diags, set())
    models: dict[str, ast.ModelDef] = {}
    objectives: dict[str, ast.ObjectiveDef] = {}
    trains: list[ast.TrainDef] = []
    imported = len(diags.items)  # what follows is the file's own definitions: names defined twice
    for item in module.items:
        if isinstance(item, ast.ModelDef):
            _define(models, item.name, item, "model", diags, blocks)
        elif isinstance(item, ast.BlockDef):
            _define(blocks, item.name, item, "block", diags, models)
        elif isinstance(item, ast.Let):
            _define(lets, item.name, item, "constant", diags, {})
        elif isinstance(item, ast.TrainDef):
            if trains:
                diags.add(
                    "name error",
                    "a second `train` section; a spec has at most one",
                    item.span,
                    "merge the sections, or use `objective NAME { ... }` for several losses",
                )
            trains.append(item)
        elif isinstance(item, ast.ObjectiveDef):
            _define(objectives, item.name, item, "objective", diags, {})
    problems = tuple(diags.items[imported:])
    if imported or not keep_going:  # an import that fails leaves the rest unreadable as meant: it comes alone
        diags.raise_if_any(sources)
    return Program(path, module, models, blocks, lets, tuple(trains), objectives, sources, problems)


def _define(table: dict, name: str, item: object, what: str, diags: Diagnostics, other: dict) -> None:
    span: Span = item.span  # type: ignore[attr-defined]
    if isinstance(item, ast.BlockDef) and not _block_header_ok(item, diags):
        return  # calls of the op's name keep reaching the op
    if name in table:
        first, clash = table[name].span, f"{what} '{name}' is defined twice"
    elif name in other:
        first, clash = other[name].span, f"'{name}' names both a model and a block"
    else:
        first = None
    if first is not None:
        diags.add(
            "name error",
            f"{clash} (first at {first.file}:{first.line}:{first.col})",
            span,
            "rename one of them",
        )
    if name not in table:
        table[name] = (
            item  # a model and a block of one name both kept, so that what uses either is checked as meant
        )


def _block_header_ok(block: ast.BlockDef, diags: Diagnostics) -> bool:
    """Report a block header's mistakes; False when the block cannot be defined at all. A block named like an op
    (or `repeat`) would replace it in every call of the file, and of a parameter listed twice only the last value
    given would be kept: both silently."""
    from ..ops._registry import get_op

    for i, p in enumerate(block.params):
        first = next((q.span for q in block.params[:i] if q.name == p.name), None)
        if first is not None:
            diags.add(
                "name error",
                f"block {block.name} has the parameter '{p.name}' twice (first at {first.file}:{first.line}:"
                f"{first.col})",
                p.span,
                "give each parameter its own name",
            )
    if get_op(block.name) is None and block.name != "repeat":
        return True
    what = "the built-in repeat" if block.name == "repeat" else f"the op {block.name}"
    diags.add(
        "name error",
        f"block '{block.name}' takes the name of {what}, which it would replace in every call",
        block.name_span if block.name_span.line else block.span,
        f"rename the block, e.g. `{block.name[:1].upper()}{block.name[1:]}` or `my_{block.name}`",
    )
    return False


def _collect_imports(
    module: ast.Module,
    here: Path,
    chain: list[Path],
    blocks: dict[str, ast.BlockDef],
    lets: dict[str, ast.Let],
    sources: dict[str, Source],
    diags: Diagnostics,
    done: set[Path],
) -> None:
    for item in module.items:
        if not isinstance(item, ast.Import):
            continue
        target = (here.parent / item.path).resolve()
        if target in chain:
            cycle = " → ".join(p.name for p in [*chain[chain.index(target) :], target])
            diags.add(
                "import error",
                f"import cycle: {cycle}",
                item.span,
                "move the shared blocks into a file both import",
            )
            continue
        if target in done:
            continue
        if not target.is_file():
            folder = target.is_dir()
            diags.add(
                "import error",
                f'cannot import "{item.path}": '
                + (
                    f"{Source.display_name(target)} is a folder"
                    if folder
                    else f"no file {Source.display_name(target)}"
                ),
                item.span,
                "import a spec file (a .net or .yaml) in it"
                if folder
                else "import paths are relative to the importing file",
            )
            continue
        try:
            src = read_source(target)
            sources[src.name] = src
            sub = parse_any(src)
        except SpecError as e:
            # the error is in the imported file; name the import that brought it in, as a block call is named
            via = f"imported from {item.span}"
            for d in e.diagnostics:
                diags.items.append(replace(d, note=f"{d.note}; {via}" if d.note else via))
            sources.update(e.sources)
            continue
        done.add(target)
        _collect_imports(sub, target, [*chain, target], blocks, lets, sources, diags, done)
        for it in sub.items:
            if isinstance(it, ast.BlockDef):
                _define(blocks, it.name, it, "block", diags, {})
            elif isinstance(it, ast.Let):
                _define(lets, it.name, it, "constant", diags, {})
