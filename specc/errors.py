"""SpecError: a located user mistake, and its rendering as `file:line:col: kind: message` + source + caret + hint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .source import Source, Span

# The kinds of error a user sees; the first word of every message header.
KINDS = (
    "syntax error",
    "name error",
    "type error",
    "shape error",
    "argument error",
    "import error",
    "value error",
    "data error",
    "file error",
    "usage error",
)

# Not an error: the spec is valid and runs, but almost certainly does not mean what it says (a loss that takes
# logits given a sigmoid's output). Reported with the same place, source line and hint; the exit code stays 0.
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One located problem.

    Args:
        kind: one of KINDS.
        message: what was expected and what was found, in one sentence.
        span: where it is; None only for problems with no place in a file (e.g. an unreadable file).
        hint: how to fix it, or "".
        note: where the place was reached from (the block calls that led there, innermost first), or "". Not
            part of equality: a mistake inside a block called twice is reported once, for the first call.
    """

    kind: str
    message: str
    span: Span | None
    hint: str = ""
    note: str = field(default="", compare=False)

    def render(self, sources: Mapping[str, Source] | None = None) -> str:
        head = f"{self.span}: {self.kind}: {self.message}" if self.span else f"{self.kind}: {self.message}"
        out = [head]
        src = sources.get(self.span.file) if (sources and self.span) else None
        if src is not None and self.span is not None and self.span.line >= 1:
            out.extend(_excerpt(src, self.span))
        if self.note:
            out.append(f"note: {self.note}")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {"kind": self.kind, "message": self.message, "hint": self.hint}
        if self.note:
            d["note"] = self.note
        if self.span:
            d.update(
                file=self.span.file,
                line=self.span.line,
                col=self.span.col,
                end_line=self.span.end_line,
                end_col=self.span.end_col,
            )
        return d


def _excerpt(src: Source, span: Span) -> list[str]:
    text = src.line(span.line).expandtabs(1).rstrip("\r")
    # Long lines (minified or fuzzed input) are cut around the caret so a message stays readable.
    start = 0
    if len(text) > 120:
        start = max(0, span.col - 60)
        text = text[start : start + 120]
    width = len(str(span.line))
    end_col = span.end_col if span.end_line == span.line else len(src.line(span.line)) + 1
    caret_len = max(1, min(end_col, start + len(text) + 1) - span.col)
    pad = " " * max(0, span.col - 1 - start)
    return [f" {span.line:>{width}} | {text}", f" {'':>{width}} | {pad}{'^' * caret_len}"]


class SpecError(Exception):
    """One or more Diagnostics; what the library raises for any mistake in a spec."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source] | None = None):
        self.diagnostics = tuple(diagnostics)
        self.sources: dict[str, Source] = dict(sources or {})
        super().__init__(self.diagnostics[0].message if self.diagnostics else "spec error")

    @staticmethod
    def one(kind: str, message: str, span: Span | None, hint: str = "") -> SpecError:
        return SpecError([Diagnostic(kind, message, span, hint)])

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources) for d in self.diagnostics)

    def with_sources(self, sources: Mapping[str, Source]) -> SpecError:
        merged = {**sources, **self.sources}
        return type(self)(self.diagnostics, merged)


class UsageError(SpecError):
    """A command-line option's value that only the library can judge (e.g. `--devices` beyond the devices JAX
    has): no place in a spec, and the CLI exits 2 for it, as click does for the usage errors it finds itself."""

    @staticmethod
    def of(message: str, hint: str = "") -> UsageError:
        return UsageError([Diagnostic("usage error", message, None, hint)])


@dataclass(frozen=True)
class Warnings:
    """The warnings of a valid spec, with the sources that render them (the spec's files and `--set` lines)."""

    diagnostics: tuple[Diagnostic, ...] = ()
    sources: Mapping[str, Source] | None = None

    def __bool__(self) -> bool:
        return bool(self.diagnostics)

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources) for d in self.diagnostics)

    def to_json(self) -> list[dict[str, object]]:
        return [d.to_json() for d in self.diagnostics]


class Diagnostics:
    """Collects problems during a pass so that one run reports all of them, not only the first."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, kind: str, message: str, span: Span | None, hint: str = "") -> None:
        d = Diagnostic(kind, message, span, hint)
        if d not in self.items:
            self.items.append(d)

    def extend(self, err: SpecError) -> None:
        for d in err.diagnostics:
            if d not in self.items:
                self.items.append(d)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, sources: Mapping[str, Source] | None = None) -> None:
        if self.items:
            raise SpecError(self.items, sources)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest candidate, or ''."""
    import difflib

    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def dym_suffix(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` to append to a message, or ''."""
    d = did_you_mean(word, candidates)
    return f"; {d}" if d else ""


def counted(n: int, noun: str, plural: str = "") -> str:
    """`1 value`, `2 values`, `1 spatial axis`, `0 spatial axes`: a count with its noun agreeing."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def takes_positional(name: str, params: Iterable[str], given: int, besides: str = "") -> str:
    """`conv takes at most 2 positional arguments (features, kernel), got 3`; for a callee with none,
    `relu takes no arguments besides its input, got 1` (`besides`: what it takes apart from arguments)."""
    names = list(params)
    if not names:
        what = f"no arguments besides {besides}" if besides else "no positional arguments"
        return f"{name} takes {what}, got {given}"
    return (
        f"{name} takes at most {counted(len(names), 'positional argument')} ({', '.join(names)}), got {given}"
    )
