"""The Pygments lexer: every spec tokenises without errors; the parts of the language get their token types."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, String

from specc.pygments_lexer import SpecLexer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.net")), ids=lambda p: p.name)
def test_every_spec_tokenises_without_errors(path: Path) -> None:
    tokens = list(SpecLexer().get_tokens(path.read_text()))
    assert not [v for t, v in tokens if t in Error], path


def test_token_types() -> None:
    src = (
        'model M {\n  input x: f32[N, 4]  # c\n  h = x -> dense(8, init=normal(1e-3)) -> relu\n  s = "a"\n}\n'
    )
    got = {(t, v) for t, v in SpecLexer().get_tokens(src)}
    for want in [
        (Keyword, "model"),
        (Name.Class, "M"),
        (Keyword, "input"),
        (Keyword.Type, "f32"),
        (Name.Builtin, "dense"),
        (Name.Builtin, "relu"),
        (Number.Float, "1e-3"),
        (Number.Integer, "8"),
        (String.Double, '"a"'),
        (Comment.Single, "# c"),
        (Name, "h"),
    ]:
        assert want in got, want
