"""`specc lsp`: the checker as a language server (pygls). Diagnostics as you type, hover with shapes and parameter
counts, completion of ops, blocks and train keys, go to definition. The answers come from lsp/analysis.py; this
module converts positions and speaks the protocol. It never lets an exception reach the client: a bad document
only produces diagnostics, and a bug in specc is logged to the editor's output panel.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec, TextDocument

from ..errors import WARNING, Diagnostic
from ..frontend.load import Program
from ..source import Span
from .analysis import Analysis, Symbol, analyse, completions, definition, hover, signature_help, symbols

DEBOUNCE_S = 0.2  # a check starts once typing pauses this long
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("specc.lsp")

_SYMBOLS = {
    "model": types.SymbolKind.Class,
    "block": types.SymbolKind.Function,
    "constant": types.SymbolKind.Constant,
    "train": types.SymbolKind.Module,
    "objective": types.SymbolKind.Module,
    "input": types.SymbolKind.Field,
    "value": types.SymbolKind.Variable,
}
_KINDS = {
    "op": types.CompletionItemKind.Function,
    "function": types.CompletionItemKind.Function,
    "block": types.CompletionItemKind.Class,
    "keyword": types.CompletionItemKind.Keyword,
    "key": types.CompletionItemKind.Property,
    "value": types.CompletionItemKind.Variable,
    "constant": types.CompletionItemKind.Constant,
    "type": types.CompletionItemKind.TypeParameter,
}


class NotOpen(Exception):
    """A request about a document the client never opened and that cannot be read from disk (a request racing a
    close, a deleted file): there is nothing to answer, which is not a bug in specc."""


class SpecServer(LanguageServer):
    """The language server, with the latest analysis of every open document.

    Args:
        analyses: by document URI, the analysis of its latest text seen.
        last_programs: by URI, the last text that parsed (completion and definition use it while the text does
            not parse, which is most of the time while typing).
    """

    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("specc")
        except PackageNotFoundError:
            v = "0"
        # the whole text on every change: pygls applies an incremental edit at lines it splits with splitlines,
        # which also breaks at \x85, \u2028, \v, ... where the client (LSP counts \r\n, \n and \r only) does
        # not; a spec is small, so sending it whole costs nothing
        super().__init__("specc", v, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.analyses: dict[str, Analysis] = {}
        self.last_programs: dict[str, Program] = {}

    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (computed now if the text changed since)."""
        doc = self.workspace.get_text_document(uri)
        try:
            text = doc.source  # pygls reads a document that is not open from disk
        except (OSError, ValueError):
            raise NotOpen(uri) from None
        a = self.analyses.get(uri)
        if a is None or a.text != text:
            a = analyse(_path(uri), text)
            self.analyses[uri] = a
            if a.program is not None:
                self.last_programs[uri] = a.program
        return a

    def publish(self, uri: str) -> None:
        a = self.analysis(uri)
        doc = self.workspace.get_text_document(uri)
        lines = Lines.of(a.text)
        diags = [_to_lsp(a, d, doc, lines) for d in a.diagnostics]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diags, version=doc.version)
        )

    def log_error(self, where: str) -> None:
        message = f"specc: internal error in {where} (a bug in specc):\n{traceback.format_exc()}"
        log.error(message)
        with contextlib.suppress(Exception):  # the client went away: nothing more to tell it
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=message))


def _path(uri: str) -> Path:
    fs = to_fs_path(uri)
    return Path(fs) if fs else Path.cwd() / "untitled.net"  # an unsaved buffer imports relative to the cwd


_LSP_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Lines:
    """One text's lines as specc counts them (ended by \n: a lone \r is whitespace in the language) and as LSP
    does (ended by \r\n, \n or \r, nothing else), to turn a specc position into the client's and back.

    Args:
        text: the text.
        specc: the offset where each of specc's lines starts.
        lsp: the offset where each of the protocol's lines starts.
        ends: the offset where each of the protocol's lines ends (before its \r\n, \n or \r).
    """

    text: str
    specc: tuple[int, ...]
    lsp: tuple[int, ...]
    ends: tuple[int, ...]

    @staticmethod
    def of(text: str) -> Lines:
        breaks = list(_LSP_LINE_END.finditer(text))
        return Lines(
            text,
            (0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")),
            (0, *(m.end() for m in breaks)),
            (*(m.start() for m in breaks), len(text)),
        )

    def to_client(self, codec: PositionCodec, line: int, col: int) -> types.Position:
        """specc's 1-based (line, col), in code points, as an LSP position in the client's units."""
        line = min(max(line, 1), len(self.specc))
        offset = min(self.specc[line - 1] + max(col - 1, 0), len(self.text))
        at = bisect.bisect_right(self.lsp, offset) - 1
        before = self.text[self.lsp[at] : min(offset, self.ends[at])]
        return types.Position(line=at, character=codec.client_num_units(before))

    def end(self, codec: PositionCodec) -> types.Position:
        """The position after the text's last character, in the client's units (a whole-document edit's end)."""
        last = len(self.lsp) - 1
        return types.Position(line=last, character=codec.client_num_units(self.text[self.lsp[last] :]))

    def from_client(self, codec: PositionCodec, p: types.Position) -> tuple[int, int]:
        """An LSP position in the client's units as specc's 0-based (line, char) in code points (analysis.py's)."""
        if p.line >= len(self.lsp):
            return len(self.specc) - 1, len(self.text) - self.specc[-1]
        line = self.text[self.lsp[p.line] : self.ends[p.line]]
        char, units = 0, 0  # code points before the client's units, at most the line's (never past its end)
        while char < len(line) and units < p.character:
            units += codec.client_num_units(line[char])
            char += 1
        offset = self.lsp[p.line] + char
        at = bisect.bisect_right(self.specc, offset) - 1
        return at, offset - self.specc[at]

    def range(self, codec: PositionCodec, span: Span) -> types.Range:
        """A specc span (1-based, code points, end exclusive) as an LSP range in the client's units."""
        return types.Range(
            start=self.to_client(codec, span.line, span.col),
            end=self.to_client(codec, span.end_line, span.end_col),
        )


def _to_lsp(a: Analysis, d: Diagnostic, doc: TextDocument, lines: Lines) -> types.Diagnostic:
    """One diagnostic for the editor; `lines`: Lines.of(a.text), made once for all of a document's."""
    message = d.message + (f"\nnote: {d.note}" if d.note else "") + (f"\nhint: {d.hint}" if d.hint else "")
    related = None
    if d.span is None:
        rng = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    elif d.span.file == a.name:
        rng = lines.range(doc.position_codec, d.span)
    else:  # a problem in an imported file: shown on the import, with a link to the place
        rng = lines.range(doc.position_codec, a.import_span(d.span.file))
        message = f"in {d.span}: {message}"
        other = _file_lines(a.file_of(d.span))
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=from_fs_path(str(a.file_of(d.span))) or "",
                    range=other.range(doc.position_codec, d.span),
                ),
                message=d.message,
            )
        ]
    return types.Diagnostic(
        range=rng,
        message=message,
        severity=types.DiagnosticSeverity.Warning if d.kind == WARNING else types.DiagnosticSeverity.Error,
        source="specc",
        code=d.kind,
        related_information=related,
    )


def formatted_text(name: str, text: str) -> str | None:
    """`specc fmt`'s canonical form of an editor's text (its CRLF line breaks kept), or None where fmt refuses it (a
    YAML spec, a text that does not parse, comments fmt could not keep in place)."""
    from ..errors import SpecError
    from ..frontend.convert import as_written, format_source
    from ..frontend.load import YAML_SUFFIXES
    from ..source import Source

    if name.endswith(YAML_SUFFIXES):  # fmt formats .net text; a YAML spec is the user's own layout
        return None
    try:
        return as_written(format_source(Source(name, text)), text.encode()).decode()
    except SpecError:
        return None


def _file_lines(path: Path) -> Lines:
    """An imported file's lines, of its text as specc reads it (bytes decoded, \r\n and \r kept, no BOM)."""
    try:
        return Lines.of(path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff"))
    except OSError:
        return Lines.of("")


def make_server() -> SpecServer:
    """A server with the specc features registered (not yet started)."""
    server = SpecServer()

    def initialized() -> None:
        """A request before `initialize` is the client's mistake, answered as the protocol says (-32002), not
        logged as a bug in specc."""
        from pygls.exceptions import JsonRpcServerNotInitialized

        try:
            server.workspace  # noqa: B018  # pygls raises RuntimeError until the client initialised the server
        except RuntimeError:
            raise JsonRpcServerNotInitialized() from None

    def safe(f: F) -> F:
        """Log what a handler raises instead of failing the request: an editor must never see a crash."""
        if asyncio.iscoroutinefunction(f):

            @functools.wraps(f)
            async def run_async(params: Any) -> Any:
                initialized()
                try:
                    return await f(params)
                except NotOpen:
                    return None
                except Exception:
                    server.log_error(f.__name__)
                    return None

            return run_async  # type: ignore[return-value]

        @functools.wraps(f)
        def run(params: Any) -> Any:
            initialized()
            try:
                return f(params)
            except NotOpen:
                return None
            except Exception:
                server.log_error(f.__name__)
                return None

        return run  # type: ignore[return-value]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @safe
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        server.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @safe
    async def did_change(params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        version = params.text_document.version
        await asyncio.sleep(DEBOUNCE_S)
        if server.workspace.get_text_document(uri).version == version:  # no later change: check this one
            server.publish(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @safe
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        server.publish(params.text_document.uri)  # an imported file may have changed on disk

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @safe
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        server.analyses.pop(uri, None)
        server.last_programs.pop(uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @safe
    def on_hover(params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        lines = Lines.of(a.text)
        h = hover(a, *lines.from_client(doc.position_codec, params.position))
        if h is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=h.markdown),
            range=lines.range(doc.position_codec, h.span),
        )

    @server.feature(types.TEXT_DOCUMENT_COMPLETION)
    @safe
    def on_completion(params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        line, char = Lines.of(a.text).from_client(doc.position_codec, params.position)
        items = [
            types.CompletionItem(
                label=c.label,
                kind=_KINDS.get(c.kind, types.CompletionItemKind.Text),
                detail=c.detail or None,
                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=c.doc)
                if c.doc
                else None,
            )
            for c in completions(a, line, char, server.last_programs.get(uri))
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @safe
    def on_definition(params: types.DefinitionParams) -> types.Location | None:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        lines = Lines.of(a.text)
        span = definition(
            a, *lines.from_client(doc.position_codec, params.position), server.last_programs.get(uri)
        )
        if span is None:
            return None
        if span.file == a.name:
            return types.Location(uri=uri, range=lines.range(doc.position_codec, span))
        target = a.file_of(span)
        rng = _file_lines(target).range(doc.position_codec, span)
        return types.Location(uri=from_fs_path(str(target)) or uri, range=rng)

    @server.feature(
        types.TEXT_DOCUMENT_SIGNATURE_HELP, types.SignatureHelpOptions(trigger_characters=["(", ","])
    )
    @safe
    def on_signature_help(params: types.SignatureHelpParams) -> types.SignatureHelp | None:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        line, char = Lines.of(a.text).from_client(doc.position_codec, params.position)
        sig = signature_help(a, line, char, server.last_programs.get(uri))
        if sig is None:
            return None
        info = types.SignatureInformation(
            label=sig.label,
            documentation=sig.doc or None,
            parameters=[types.ParameterInformation(label=p) for p in sig.params],
        )
        return types.SignatureHelp(signatures=[info], active_signature=0, active_parameter=sig.active)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @safe
    def on_formatting(params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        """`specc fmt`'s canonical text as one edit of the whole document; none while the text does not parse or
        fmt could not keep its comments (its diagnostics, or `specc fmt`, say why)."""
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        new = formatted_text(a.name, a.text)
        if new is None:
            return None
        if new == a.text:
            return []
        whole = types.Range(
            start=types.Position(line=0, character=0), end=Lines.of(a.text).end(doc.position_codec)
        )
        return [types.TextEdit(range=whole, new_text=new)]

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @safe
    def on_symbols(params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        a = server.analysis(uri)
        lines = Lines.of(a.text)

        def convert(s: Symbol) -> types.DocumentSymbol:
            return types.DocumentSymbol(
                name=s.name,
                kind=_SYMBOLS[s.kind],
                range=lines.range(doc.position_codec, s.span),
                selection_range=lines.range(doc.position_codec, s.name_span),
                detail=s.detail or None,
                children=[convert(c) for c in s.children] or None,
            )

        return [convert(s) for s in symbols(a, server.last_programs.get(uri)) if s.span.file == a.name]

    return server


def serve(tcp: str | None = None) -> None:
    """Run the server on stdio, or on `tcp` = "HOST:PORT"."""
    logging.basicConfig(level=logging.WARNING, format="specc lsp: %(message)s")  # stderr: the editor's log
    server = make_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
