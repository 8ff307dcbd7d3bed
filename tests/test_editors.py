"""The VS Code extension in editors/vscode: the manifest declares the language, and the TextMate grammar is valid,
names every keyword, dtype and op the parser and registry know (so they cannot drift), and colours sample lines
as intended (a small TextMate scanner over Python's `re`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from specc.frontend.parse import KEYWORDS
from specc.ir.types import DTYPES
from specc.ops._registry import all_ops

VSCODE = Path(__file__).resolve().parents[1] / "editors" / "vscode"
GRAMMAR: dict[str, Any] = json.loads((VSCODE / "syntaxes" / "specc.tmLanguage.json").read_text())


def _rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """A rule with its includes and nested pattern lists flattened, in order (as TextMate tries them)."""
    if "include" in rule:
        return _rules(GRAMMAR["repository"][rule["include"].lstrip("#")])
    if "match" in rule or "begin" in rule:
        return [rule]
    return [r for sub in rule.get("patterns", []) for r in _rules(sub)]


def _scopes(rule: dict[str, Any]) -> list[str]:
    return [rule.get("name", "")] + [c["name"] for c in rule.get("captures", {}).values()]


def _matched_by(word: str, prefix: str) -> bool:
    top = _rules({"patterns": GRAMMAR["patterns"]})
    return any(
        "match" in r and any(s.startswith(prefix) for s in _scopes(r)) and re.fullmatch(r["match"], word)
        for r in top
    )


def test_manifest_declares_the_language_and_its_grammar() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text())
    (lang,) = manifest["contributes"]["languages"]
    assert lang["id"] == "specc" and lang["extensions"] == [".net"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.specc"
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / lang["configuration"]).is_file()
    assert (VSCODE / manifest["main"]).is_file()
    assert manifest["contributes"]["configuration"]["properties"]["specc.server.command"]["default"] == [
        "specc",
        "lsp",
    ]
    json.loads((VSCODE / lang["configuration"]).read_text())


def test_every_regex_compiles() -> None:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("match", "begin", "end"):
                    yield v
                else:
                    yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    patterns = list(walk(GRAMMAR))
    assert len(patterns) > 15
    for p in patterns:
        re.compile(p)


@pytest.mark.parametrize(
    ("words", "scope"),
    [
        ([k for k in KEYWORDS if k not in ("true", "false")], "keyword.other"),
        (["true", "false"], "constant.language"),
        (list(DTYPES), "storage.type"),
        (list(all_ops()), "support.function.builtin"),
    ],
    ids=["keywords", "booleans", "dtypes", "ops"],
)
def test_grammar_names_every_word_the_parser_and_registry_know(words: list[str], scope: str) -> None:
    missing = [w for w in words if not _matched_by(w, scope)]
    assert not missing, f"add {missing} to the {scope} rule of editors/vscode/syntaxes/specc.tmLanguage.json"


def _tokens(line: str) -> list[tuple[str, str]]:
    """(text, innermost scope) of one line, scanned as TextMate does: the earliest match wins, ties go to the
    first rule; a begin rule scans its own patterns until its end."""
    out: list[tuple[str, str]] = []

    def emit(m: re.Match[str], rule: dict[str, Any], captures_key: str = "captures") -> None:
        caps = rule.get(captures_key, {})
        if caps:
            for k, c in caps.items():
                if m.group(int(k)):
                    out.append((m.group(int(k)), c["name"]))
        elif rule.get("name"):
            out.append((m.group(), rule["name"]))

    def scan(pos: int, rules: list[dict[str, Any]], end: str | None) -> int:
        while pos < len(line):
            best: tuple[int, int, re.Match[str], dict[str, Any] | None] | None = None
            candidates: list[tuple[dict[str, Any] | None, str]] = [(None, end)] if end else []
            candidates += [(r, r.get("match") or r["begin"]) for r in rules]
            for order, (r, p) in enumerate(candidates):
                m = re.compile(p).search(line, pos)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), order, m, r)
            if best is None:
                return len(line)
            _, _, m, r = best
            if r is None:  # the end of the enclosing begin rule
                return m.end()
            if "match" in r:
                emit(m, r)
                pos = max(m.end(), pos + 1)
            else:
                emit(m, r, "beginCaptures")
                pos = scan(m.end(), _rules({"patterns": r.get("patterns", [])}), r["end"])
                if r.get("name"):  # the region from its begin to its end
                    out.append((line[m.start() : pos], r["name"]))
        return pos

    scan(0, _rules({"patterns": GRAMMAR["patterns"]}), None)
    return out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "  h = x -> conv(32, 3, stride=2) -> relu   : [N, 13, 13, 32]  # 3×3, /2",
            [
                ("->", "keyword.operator.pipeline.specc"),
                ("conv", "support.function.builtin.specc"),
                ("32", "constant.numeric.specc"),
                ("stride", "variable.parameter.specc"),
                ("relu", "support.function.builtin.specc"),
                ("N", "variable.other.constant.dim.specc"),
                ("13", "constant.numeric.specc"),
                ("# 3×3, /2", "comment.line.number-sign.specc"),
            ],
        ),
        (
            "  input x: f32[N, 28, 28, 1]",
            [
                ("input", "keyword.other.specc"),
                ("f32", "storage.type.specc"),
                ("N", "variable.other.constant.dim.specc"),
                ("28", "constant.numeric.specc"),
            ],
        ),
        (
            "block Basic(c, stride=1) {",
            [
                ("block", "keyword.other.specc"),
                ("Basic", "entity.name.function.specc"),
                ("1", "constant.numeric.specc"),
            ],
        ),
        ("model LeNet5 {", [("model", "keyword.other.specc"), ("LeNet5", "entity.name.type.specc")]),
        (
            '  data = mnist("a # b", split=0.8) as {x: image}',
            [
                ("mnist", "entity.name.function.specc"),
                ('"a # b"', "string.quoted.double.specc"),
                ("split", "variable.parameter.specc"),
                ("0.8", "constant.numeric.specc"),
                ("as", "keyword.other.specc"),
            ],
        ),
        (
            "  optimizer = adam(lr=1e-3, nesterov=true)",
            [
                ("adam", "entity.name.function.specc"),
                ("lr", "variable.parameter.specc"),
                ("1e-3", "constant.numeric.specc"),
                ("true", "constant.language.specc"),
            ],
        ),
    ],
)
def test_sample_lines_are_coloured_as_intended(line: str, expected: list[tuple[str, str]]) -> None:
    tokens = _tokens(line)
    for tok in expected:
        assert tok in tokens, (tok, tokens)
    assert ("x", "keyword.other.specc") not in tokens and ("5", "constant.numeric.specc") not in tokens
    if "#" not in expected[-1][0]:  # a `#` in a string starts no comment
        assert not any(scope.startswith("comment") for _, scope in tokens), tokens
