"""`specc lsp` in a real session: pygls's LanguageClient starts `python -m specc.cli lsp` over stdio and speaks LSP
to it — diagnostics at the checker's ranges and cleared when fixed, hover shapes and parameter counts, completion,
go to definition (also into an imported file). One server for the module."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls")

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

LAYERS = """\
block Unit(c) {
  input x: [N, F]
  y = x -> dense(c) -> relu
  output y
}
"""

# an op misspelled on line 6 (0-based 5): `reluu`
BROKEN = """\
import "layers.net"
let width = 128

model MLP {
  input x: f32[N, 784]
  h = x -> dense(width) -> reluu
  z = h -> Unit(64)
  logits = z -> dense(10)
  output logits
}
"""
FIXED = BROKEN.replace("reluu", "relu")
TRAINED = FIXED + "\ntrain {\n  data = digits()\n  \n}\n"  # an empty line to complete in, indented


_SERVER = """\
import atexit, sys
heavy = lambda: " ".join(m for m in ("jax", "jaxlib", "flax", "optax") if m in sys.modules)
atexit.register(lambda: open({!r}, "w").write(heavy() or "none"))
from specc.cli import main
main(["lsp"])
"""


class Session:
    """A client and its server subprocess, driven synchronously from the tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("specc-test", "1")
        self.diagnostics: dict[str, list[types.PublishDiagnosticsParams]] = {}
        self.logs: list[str] = []

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics.setdefault(params.uri, []).append(params)

        @self.client.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.logs.append(params.message)

        # `specc lsp` as the console script runs it; at exit the server writes which heavy modules it imported
        self.modules = folder / "modules.txt"
        self.run(
            self.client.start_io(sys.executable, "-c", _SERVER.format(str(self.modules)), cwd=str(folder))
        )
        self.run(
            self.client.initialize_async(
                types.InitializeParams(
                    capabilities=types.ClientCapabilities(),
                    root_uri=from_fs_path(str(folder)),
                )
            )
        )
        self.client.initialized(types.InitializedParams())
        self.versions: dict[str, int] = {}

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def uri(self, name: str) -> str:
        return from_fs_path(str(self.folder / name)) or ""

    def open(self, name: str, text: str) -> str:
        uri = self.uri(name)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="specc", version=1, text=text)
            )
        )
        return uri

    def change(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def published(self, uri: str) -> list[types.Diagnostic]:
        """The diagnostics the server publishes for the document's latest version (waits for them)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for p in self.diagnostics.get(uri, []):
                if p.version == self.versions[uri]:
                    return list(p.diagnostics)
            self.run(asyncio.sleep(0.05))
        raise AssertionError(f"no diagnostics for version {self.versions[uri]} of {uri}")

    def position(self, uri: str, text: str, needle: str, offset: int = 0) -> types.TextDocumentPositionParams:
        i = text.index(needle) + offset
        line = text.count("\n", 0, i)
        char = i - (text.rfind("\n", 0, i) + 1)
        return types.TextDocumentPositionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=char),
        )

    def hover(self, uri: str, text: str, needle: str, offset: int = 0) -> str:
        p = self.position(uri, text, needle, offset)
        h = self.run(self.client.text_document_hover_async(types.HoverParams(p.text_document, p.position)))
        assert h is not None, needle
        assert isinstance(h.contents, types.MarkupContent)
        return h.contents.value

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.run(self.client.shutdown_async(None))
        self.client.exit(None)
        self.run(self.client.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("lsp")
    (folder / "layers.net").write_text(LAYERS)
    s = Session(folder)
    yield s
    s.close()


def test_diagnostics_arrive_at_the_range_and_clear_when_fixed(session: Session) -> None:
    uri = session.open("mlp.net", BROKEN)
    (d,) = session.published(uri)
    col = BROKEN.split("\n")[5].index("reluu")
    assert (d.range.start.line, d.range.start.character) == (5, col)
    assert (d.range.end.line, d.range.end.character) == (5, col + len("reluu"))
    assert d.severity == types.DiagnosticSeverity.Error and d.source == "specc" and d.code == "name error"
    assert "reluu" in d.message and "hint:" in d.message
    session.change(uri, FIXED)
    assert session.published(uri) == []


def test_a_warning_is_published_with_warning_severity(session: Session) -> None:
    """A valid spec whose loss is given a sigmoid's output: a yellow squiggle on the argument, not a red one."""
    text = TRAINED.replace("logits = z -> dense(10)", "logits = z -> dense(10) -> sigmoid").replace(
        "  \n}", "  loss = binary_cross_entropy(logits, 1)\n  optimizer = sgd(lr=0.1)\n}"
    )
    uri = session.open("warned.net", text)
    (d,) = session.published(uri)
    line = text.split("\n").index("  loss = binary_cross_entropy(logits, 1)")
    col = text.split("\n")[line].index("logits")
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (line, col, col + 6)
    assert d.severity == types.DiagnosticSeverity.Warning and d.code == "warning"
    assert "already been through sigmoid" in d.message and "hint:" in d.message


def test_an_error_in_an_imported_file_shows_on_the_import_and_closing_clears(session: Session) -> None:
    (session.folder / "broken_layers.net").write_text(LAYERS.replace("relu", "reluu"))
    text = FIXED.replace('"layers.net"', '"broken_layers.net"')
    uri = session.open("imports_broken.net", text)
    (d,) = session.published(uri)
    assert (d.range.start.line, d.range.end.line) == (0, 0)  # the import line
    assert d.message.startswith("in broken_layers.net:3:24: unknown op 'reluu'")
    (rel,) = d.related_information or []
    assert rel.location.uri == session.uri("broken_layers.net")
    assert (rel.location.range.start.line, rel.location.range.start.character) == (2, 23)
    session.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    deadline = time.monotonic() + 60
    while len(session.diagnostics[uri]) < 2 and time.monotonic() < deadline:
        session.run(asyncio.sleep(0.05))
    assert list(session.diagnostics[uri][-1].diagnostics) == []


def test_positions_count_the_line_ends_lsp_counts(session: Session) -> None:
    """LSP ends lines at \\r\\n, \\n and \\r, and nowhere else; specc's lines end at \\n (a lone \\r is whitespace).
    A comment holding a lone \\r put every diagnostic and hover below it a line off in the editor, and pygls's own
    line split (splitlines) also broke at \\u2028, which LSP does not."""
    import re

    text = "# notes\rmore notes \u2028 here\r\n" + BROKEN.replace("\n", "\r\n")
    lines = re.split(r"\r\n|\r|\n", text)  # the client's lines
    assert lines[7].startswith("  h = x -> dense(width) -> reluu")
    uri = session.open("crlf.net", text)
    (d,) = session.published(uri)
    col = lines[7].index("reluu")
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (
        7,
        col,
        col + len("reluu"),
    )
    session.change(uri, text.replace("reluu", "relu"))
    assert session.published(uri) == []
    at = types.Position(line=8, character=lines[8].index("h ->"))
    h = session.run(
        session.client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(uri), at))
    )
    assert isinstance(h.contents, types.MarkupContent) and "h: f32[N, 128]" in h.contents.value
    assert h.range is not None and (h.range.start.line, h.range.start.character) == (at.line, at.character)
    # CR only: one line to specc, so a syntax error, shown where the client shows its token
    cr = "model M {\r  input x: f32[N, 4]\r  h = x -> dense(3)\r  output h\r}\r"
    (d,) = session.published(session.open("cr.net", cr))
    assert d.code == "syntax error" and (d.range.start.line, d.range.start.character) == (2, 2)


def test_hover_shows_shapes_and_parameter_counts(session: Session) -> None:
    uri = session.open("hover.net", FIXED)
    assert session.published(uri) == []
    assert "h: f32[N, 128]" in session.hover(uri, FIXED, "h = x")
    assert "logits: f32[N, 10]" in session.hover(uri, FIXED, "logits =")
    dense = session.hover(uri, FIXED, "dense(width)")
    assert "dense(x, features" in dense and "params 100,480 = 784·128 + 128" in dense
    assert "f32[N, 784]` → `f32[N, 128]" in dense
    unit = session.hover(uri, FIXED, "Unit(64)")
    assert "block Unit(c)" in unit and "params 8,256" in unit  # 128·64 + 64
    assert "let width = 128" in session.hover(uri, FIXED, "width)")


def test_completion_offers_ops_with_signatures_and_train_keys(session: Session) -> None:
    uri = session.open("complete.net", TRAINED)
    p = session.position(uri, TRAINED, "dense(10)")
    items = session.run(
        session.client.text_document_completion_async(types.CompletionParams(p.text_document, p.position))
    )
    by_label = {i.label: i for i in items.items}
    assert by_label["conv"].detail.startswith("conv(x, features, kernel, stride=1")
    assert by_label["conv"].kind == types.CompletionItemKind.Function
    assert by_label["Unit"].kind == types.CompletionItemKind.Class  # a block of the imported file
    assert "width" in by_label and "input" in by_label
    assert by_label["h"].detail == "f32[N, 128]" and "logits" not in by_label  # values bound above the cursor
    p = session.position(uri, TRAINED, "dense(width)", len("dense(w"))
    help_ = session.run(
        session.client.text_document_signature_help_async(
            types.SignatureHelpParams(p.text_document, p.position)
        )
    )
    (sig,) = help_.signatures
    assert sig.label.startswith("dense(x, features") and help_.active_parameter == 1  # x is piped in
    p = session.position(uri, TRAINED, "  \n}", 2)  # the empty line of the train section
    items = session.run(
        session.client.text_document_completion_async(types.CompletionParams(p.text_document, p.position))
    )
    labels = {i.label for i in items.items}
    assert {"loss", "optimizer", "epochs", "batch", "metrics"} <= labels and "conv" not in labels


def test_definition_jumps_to_blocks_constants_and_values(session: Session) -> None:
    uri = session.open("define.net", FIXED)

    def where(needle: str, offset: int = 0) -> tuple[str, int, int]:
        p = session.position(uri, FIXED, needle, offset)
        loc = session.run(
            session.client.text_document_definition_async(types.DefinitionParams(p.text_document, p.position))
        )
        assert isinstance(loc, types.Location), needle
        return loc.uri, loc.range.start.line, loc.range.start.character

    assert where("Unit(64)") == (session.uri("layers.net"), 0, len("block "))
    assert where("width)") == (uri, 1, len("let "))
    assert where("h -> Unit") == (uri, 5, 2)  # the value h, bound on line 6


def test_outline_lists_models_values_and_constants(session: Session) -> None:
    uri = session.open("outline.net", FIXED)
    result = session.run(
        session.client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
    )
    by_name = {s.name: s for s in result}
    assert set(by_name) == {"width", "MLP"}  # the imported block is not this file's
    mlp = by_name["MLP"]
    assert mlp.kind == types.SymbolKind.Class and mlp.detail == "109,386 params"  # 100,480 + 8,256 + 650
    assert (mlp.range.start.line, mlp.range.end.line, mlp.selection_range.start.character) == (3, 9, 6)
    assert [(c.name, c.detail) for c in mlp.children or []] == [
        ("x", "f32[N, 784]"),
        ("h", "f32[N, 128]"),
        ("z", "f32[N, 64]"),
        ("logits", "f32[N, 10]"),
    ]


def test_formatting_replaces_the_document_with_specc_fmts_text(session: Session) -> None:
    """Format document: one edit, the whole text, exactly `specc fmt`'s (comments and CRLF line breaks kept, the
    end position in the client's UTF-16 units); a canonical text gets no edit, one that does not parse none."""
    from specc.frontend.convert import format_source
    from specc.source import Source

    ugly = 'model M {\n input x:f32[N,4]   # é, "ü"\n  y = x->dense(2)\n  output y\n}  # end: 😀'
    for text in (ugly, ugly.replace("\n", "\r\n")):
        uri = session.open("ugly.net", text)
        doc = types.TextDocumentIdentifier(uri=uri)
        options = types.FormattingOptions(tab_size=2, insert_spaces=True)
        edits = session.run(
            session.client.text_document_formatting_async(types.DocumentFormattingParams(doc, options))
        )
        assert edits is not None and len(edits) == 1
        (edit,) = edits
        last = text.split("\n")[-1]
        assert (edit.range.start.line, edit.range.start.character) == (0, 0)
        assert (edit.range.end.line, edit.range.end.character) == (4, len(last.encode("utf-16-le")) // 2)
        want = format_source(Source("ugly.net", text.replace("\r\n", "\n")))
        assert edit.new_text == (want.replace("\n", "\r\n") if "\r\n" in text else want)
        session.change(uri, edit.new_text)
        again = session.client.text_document_formatting_async(types.DocumentFormattingParams(doc, options))
        unchanged = session.run(again)
        assert unchanged is not None and len(unchanged) == 0  # no edit (the client reads [] as ())
        session.change(uri, "model M {\n  y = x ->\n}\n")
        again = session.client.text_document_formatting_async(types.DocumentFormattingParams(doc, options))
        assert session.run(again) is None
        session.client.text_document_did_close(types.DidCloseTextDocumentParams(doc))
    # a YAML spec is not fmt's to lay out, even one whose text would parse as .net
    uri = session.open("m.yaml", "model M {\n input x:f32[N,4]\n  output x\n}\n")
    doc = types.TextDocumentIdentifier(uri=uri)
    params = types.DocumentFormattingParams(doc, types.FormattingOptions(tab_size=2, insert_spaces=True))
    assert session.run(session.client.text_document_formatting_async(params)) is None
    session.client.text_document_did_close(types.DidCloseTextDocumentParams(doc))
    assert not session.logs, session.logs


def test_requests_about_a_document_never_opened_and_not_on_disk_answer_nothing(session: Session) -> None:
    """A request racing a close, or about a deleted file: no answer, and no 'internal error' in the editor's log
    (pygls reads an unopened document from disk, and that read failed)."""
    (session.folder / "latin1.net").write_bytes(b"# caf\xe9\nmodel M {\n}\n")  # not UTF-8
    for name in ("gone.net", "latin1.net", "."):
        doc = types.TextDocumentIdentifier(uri=session.uri(name))
        at = types.Position(line=0, character=0)
        c = session.client
        assert session.run(c.text_document_hover_async(types.HoverParams(doc, at))) is None
        assert session.run(c.text_document_definition_async(types.DefinitionParams(doc, at))) is None
        assert session.run(c.text_document_completion_async(types.CompletionParams(doc, at))) is None
        assert session.run(c.text_document_signature_help_async(types.SignatureHelpParams(doc, at))) is None
        assert session.run(c.text_document_document_symbol_async(types.DocumentSymbolParams(doc))) is None
    assert not session.logs, session.logs[0]


def test_server_exits_cleanly_without_importing_jax(session: Session) -> None:
    """Last in the module: the session ends (shutdown, exit) and the server never needed JAX."""
    session.close()
    assert session.client._server is not None and session.client._server.returncode == 0
    assert session.modules.read_text() == "none"
    assert not session.logs, session.logs  # no internal error was logged during the session


def test_a_request_before_initialize_is_answered_server_not_initialized(tmp_path: Path) -> None:
    """A hover sent before `initialize` got `null` and a log line calling it an internal error, a bug in specc;
    it is the client's mistake, which the protocol answers with -32002 (ServerNotInitialized)."""
    import json
    import subprocess

    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "textDocument/hover",
            "params": {"textDocument": {"uri": "file:///x.net"}, "position": {"line": 0, "character": 0}},
        }
    ).encode()
    with subprocess.Popen(
        [sys.executable, "-m", "specc", "lsp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        proc.stdin.flush()
        length = 0
        while (line := proc.stdout.readline().strip()) != b"":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        reply = json.loads(proc.stdout.read(length))
        proc.stdin.close()  # end of input: the server exits
        proc.wait(timeout=60)
        err = proc.stderr.read()
    assert reply["id"] == 1 and reply["error"]["code"] == -32002, reply
    assert b"internal error" not in err, err
