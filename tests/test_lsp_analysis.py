"""The language server's answers, in process (no pygls): what hover says of calls, block values and train
functions, definitions across files, and that no text — however broken — makes a query raise."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from specc.lsp.analysis import (
    Analysis,
    analyse,
    completions,
    definition,
    hover,
    signature_help,
    symbols,
    word_at,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def googlenet() -> Analysis:
    path = ROOT / "specs/googlenet.net"
    return analyse(path, path.read_text())


def _at(a: Analysis, needle: str, offset: int = 0) -> tuple[int, int]:
    i = a.text.index(needle) + offset
    return a.text.count("\n", 0, i), i - (a.text.rfind("\n", 0, i) + 1)


def test_hover_in_a_block_lists_each_instance(googlenet: Analysis) -> None:
    h = hover(googlenet, *_at(googlenet, "b1 = x"))
    assert h is not None
    # b1 = x -> ConvBN(c1, 1): c1 channels in each of the nine inception modules
    assert "`f32[N, 28, 28, 64]` in i3.Inception1" in h.markdown
    assert "`f32[N, 7, 7, 384]` in i5" in h.markdown
    x = hover(googlenet, *_at(googlenet, "x: [N, H, W, C]"))  # ConvBN's input, as each instance is fed
    assert x is not None and "`f32[N, 224, 224, 3]` in stem.ConvBN1" in x.markdown
    assert "`f32[N, 28, 28, 96]` in i3.Inception1/b2" in x.markdown  # after b2's 1×1 reduction
    conv = hover(googlenet, *_at(googlenet, "conv(c, k"))
    assert conv is not None and "params 9,408 = 7·7·3·64" in conv.markdown  # the stem's 7×7 conv, no bias
    assert "and 51 more applications" in conv.markdown  # 57 ConvBN instances, 6 listed


def test_hover_on_models_instances_and_train_functions() -> None:
    path = ROOT / "specs/gan_digits.net"
    a = analyse(path, path.read_text())
    assert a.diagnostics == ()
    d = hover(a, *_at(a, "D = "))
    assert d is not None and "params 8,449, applied 2×" in d.markdown  # 64·128 + 128 + 128·1 + 1
    model = hover(a, *_at(a, "GAN {"))
    assert model is not None and "outputs: `fake: f32[N, 64]`" in model.markdown
    adam = hover(a, *_at(a, "adam("))
    assert adam is not None and "adam(lr=0.001, b1=0.9" in adam.markdown
    assert hover(a, *_at(a, "# real digits", 3)) is None  # a comment
    assert word_at(a.text, *_at(a, "2e-4", 2)) is None  # the exponent of a number is no name


def test_definition_of_an_imported_block_and_import_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "lib.net").write_text(
        "block Twice(c) {\n  input x: [N, F]\n  y = x -> dense(c) -> dense(c)\n  output y\n}\n"
    )
    (tmp_path / "bad.net").write_text(
        "block Bad() {\n  input x: [N, F]\n  y = x -> nosuchop\n  output y\n}\n"
    )
    text = 'import "lib.net"\nimport "bad.net"\nmodel M {\n  input x: f32[N, 4]\n  y = x -> Twice(3) -> Bad\n  output y\n}\n'
    a = analyse(tmp_path / "m.net", text)
    span = definition(a, *_at(a, "Twice(3)"))
    assert span is not None and a.file_of(span) == (tmp_path / "lib.net").resolve()
    assert (span.line, span.col, span.end_col) == (1, 7, 12)
    (d,) = a.diagnostics
    assert d.span is not None and a.file_of(d.span) == (tmp_path / "bad.net").resolve()
    assert a.import_span(d.span.file).line == 2  # shown on the import that brings the file in


def test_completion_knows_the_section() -> None:
    text = "let k = 3\nblock B(c) {\n  input x: [N, F]\n  y = x -> \n}\ntrain {\n  loss = \n}\n"
    a = analyse(Path("t.net"), text)  # does not parse: completion reads sections and names from the text
    labels = {c.label for c in completions(a, 3, 11)}
    assert {"conv", "dense", "B", "k", "f32", "input", "x"} <= labels  # x: the block's input, bound above
    labels = {c.label for c in completions(a, 6, 9)}
    assert {"cross_entropy", "adam", "digits", "accuracy"} <= labels and "conv" not in labels
    assert {c.label for c in completions(a, 0, 0)} == {
        "model",
        "block",
        "let",
        "import",
        "train",
        "objective",
    }


def test_signature_help_follows_the_arguments_typed() -> None:
    text = (
        "block B(c, stride=1) {\n  input x: [N, F]\n  y = x -> conv(32, 3, \n"  # piped: 32 is features
        "  z = dense(x, 10, bias=\n  w = x -> B(3, \n     -> conv(32,\n}\n"
        "train {\n  optimizer = adam(lr=0.1, \n}\n"
    )
    a = analyse(Path("t.net"), text)  # does not parse: the call and the block are read from the text

    def active(line: int) -> tuple[str, str | None]:
        sig = signature_help(a, line, len(a.lines[line]))
        assert sig is not None, a.lines[line]
        return sig.label.split("(")[0], None if sig.active is None else sig.params[sig.active]

    assert active(2) == ("conv", "stride=1")
    assert active(3) == ("dense", "bias=true")
    assert active(4) == ("B", "stride=1")
    assert active(5) == ("conv", "kernel")  # a continuation line is a pipeline stage too
    assert active(8) == ("adam", "b1=0.9")
    assert signature_help(a, 1, 10) is None  # `[N, F]`: a shape, not a call


@pytest.mark.parametrize("name", ["gan_digits.net", "resnet18.net"])  # instances and objectives; blocks
def test_no_text_makes_a_query_raise(name: str) -> None:
    """Every prefix-cut and character-dropped version of a spec: diagnostics only, never an exception."""
    path = ROOT / "specs" / name
    text = path.read_text()
    rng = random.Random(0)
    cuts = [text[: len(text) * k // 8] for k in range(1, 8)]
    drops = []
    for _ in range(6):
        i = rng.randrange(len(text))
        drops.append(text[:i] + text[i + rng.randint(1, 4) :])
    for t in [*cuts, *drops, "", "\n\n{", "model", "block B(", "}}}", "x -> ->"]:
        a = analyse(path, t)
        lines = t.split("\n")
        for line in range(0, len(lines), max(1, len(lines) // 6)):
            for char in {0, len(lines[line]) // 2, len(lines[line])}:
                hover(a, line, char)
                completions(a, line, char)
                definition(a, line, char)
                signature_help(a, line, char)
        symbols(a)


def test_a_name_defined_twice_hides_no_other_diagnostic() -> None:
    """The editor showed only the duplicate let, as `specc check` did; now the shape and train errors too."""
    path = ROOT / "tests/errors/duplicate_hides_nothing.net"
    a = analyse(path, path.read_text())
    assert [(d.span.line, d.span.col, d.kind) for d in a.diagnostics] == [
        (3, 1, "name error"),
        (11, 1, "name error"),
        (19, 27, "shape error"),
        (27, 22, "argument error"),
    ]


def test_hover_on_a_block_call_shows_what_it_is_passed() -> None:
    """A block call's hover read "`c3.Basic`: → `f32[N, 28, 28, 128]`", the arrow with nothing before it."""
    path = ROOT / "specs/resnet18.net"
    a = analyse(path, path.read_text())
    h = hover(a, *_at(a, "Basic(128"))
    assert h is not None and "`f32[N, 56, 56, 64]` → `f32[N, 28, 28, 128]`; params 230,144" in h.markdown
