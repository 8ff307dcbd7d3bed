"""A Pygments lexer for .net specs: `pygmentize -l specc`, LaTeX minted, Sphinx. Registered as an entry point."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from .frontend.parse import KEYWORDS as _GRAMMAR_KEYWORDS
from .ir.types import DTYPES
from .ops._registry import all_ops

# the grammar's reserved words, less true/false (constants, highlighted apart)
KEYWORDS = tuple(k for k in _GRAMMAR_KEYWORDS if k not in ("true", "false"))


class SpecLexer(RegexLexer):
    """The .net spec language: keywords, dtypes, op names, numbers as the grammar reads them, strings, comments."""

    name = "specc"
    aliases = ["specc", "net-spec"]  # noqa: RUF012  (Pygments reads these class attributes)
    filenames = ["*.net"]  # noqa: RUF012

    tokens = {  # noqa: RUF012
        "root": [
            (r"[ \t]+", Whitespace),
            (r"\r?\n", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"(\\\\|\\"|[^"\\\n])*"', String.Double),
            (r"(model|block|objective)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Class)),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(("true", "false", "None"), suffix=r"\b"), Keyword.Constant),
            (words(tuple(DTYPES), suffix=r"\b"), Keyword.Type),
            (words(tuple(sorted(all_ops(), key=len, reverse=True)), suffix=r"\b"), Name.Builtin),
            (r"(\d+\.\d*|\.\d+|\d+)[eE][+-]?\d+", Number.Float),
            (r"\d+\.\d*|\.\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"[A-Za-z_]\w*", Name),
            (r"->|\*\*|[-+*/@=:]", Operator),
            (r"\.\.\.|[()\[\]{},;.]", Punctuation),
        ]
    }


__all__ = ["SpecLexer"]
