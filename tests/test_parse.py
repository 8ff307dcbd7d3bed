"""The .net front end: the grammar's shapes, spans, layout rules and the shipped LALR tables."""

from __future__ import annotations

import pytest

from specc.errors import SpecError
from specc.frontend import ast
from specc.frontend import parse as parse_mod
from specc.frontend.parse import parse_expr, parse_text


def model_body(text: str) -> tuple[ast.Stmt, ...]:
    item = parse_text(text).items[0]
    assert isinstance(item, ast.ModelDef)
    return item.body


def test_the_shipped_lalr_tables_match_the_grammar() -> None:
    # a stale cache would be ignored (correct but 0.2 s slower); CI refreshes nothing, so this must hold
    with parse_mod._CACHE.open("rb") as f:
        assert f.readline().strip() == parse_mod._cache_key(parse_mod._grammar_text())


def test_pipeline_statement_with_assertion_and_spans() -> None:
    (stmt,) = model_body("model M {\n  logits = h -> dense(10) -> relu : [N, 10]\n}")
    assert isinstance(stmt, ast.Assign)
    assert stmt.targets == ("logits",)
    assert [c.func for c in stmt.value.stages] == ["dense", "relu"]
    assert stmt.value.stages[1].bare and not stmt.value.stages[0].bare
    assert stmt.assert_dims == (ast.Name("N"), ast.Num(10))
    dense = stmt.value.stages[0]
    assert (dense.span.line, dense.span.col, dense.span.end_col) == (2, 17, 26)
    assert (stmt.assert_span.line, stmt.assert_span.col) == (2, 37)


def test_layout_continuation_lines_semicolons_and_brackets() -> None:
    body = model_body(
        "model M {\n  h = x\n    -> dense(64,\n             bias=false)\n    -> relu; y = h\n  # comment\n\n}"
    )
    assert len(body) == 2
    h, y = body
    assert isinstance(h, ast.Assign) and [c.func for c in h.value.stages] == ["dense", "relu"]
    assert h.value.stages[0].kwargs == (ast.Kwarg("bias", ast.Bool(False)),)
    assert isinstance(y, ast.Assign) and y.targets == ("y",)


def test_operator_precedence_and_associativity() -> None:
    e = parse_expr("a + b * c ** 2 ** 3 - -d @ e")
    # ((a + (b * (c ** (2 ** 3)))) - ((-d) @ e))
    assert isinstance(e, ast.BinOp) and e.op == "-"
    left, right = e.left, e.right
    assert isinstance(left, ast.BinOp) and left.op == "+"
    mul = left.right
    assert isinstance(mul, ast.BinOp) and mul.op == "*"
    power = mul.right
    assert isinstance(power, ast.BinOp) and power.op == "**" and isinstance(power.right, ast.BinOp)
    assert isinstance(right, ast.BinOp) and right.op == "@" and isinstance(right.left, ast.Neg)


def test_slices_tuples_lists_and_literals() -> None:
    e = parse_expr('f(x[:, 0:1, ..., ::2], (2, 2), [(1, 1), (0, 1)], "s", true, -1, 1e-3)')
    assert isinstance(e, ast.Call)
    idx = e.args[0]
    assert isinstance(idx, ast.Index)
    assert [type(i).__name__ for i in idx.items] == ["Slice", "Slice", "EllipsisLit", "Slice"]
    assert e.args[1] == ast.TupleLit((ast.Num(2), ast.Num(2)))
    assert e.args[3:] == (ast.Str("s"), ast.Bool(True), ast.Num(-1), ast.Num(0.001))


def test_blocks_imports_lets_train_and_renames() -> None:
    m = parse_text(
        'import "lib.net"\nlet C = 8\nblock B(c, s=1) {\n  input x\n  output x\n}\n'
        'train {\n  data = mnist("d") as {x: image, y: label}\n  early_stop(val_loss, patience=3)\n}\n'
    )
    kinds = [type(i).__name__ for i in m.items]
    assert kinds == ["Import", "Let", "BlockDef", "TrainDef"]
    block = m.items[2]
    assert isinstance(block, ast.BlockDef) and [p.name for p in block.params] == ["c", "s"]
    train = m.items[3]
    assert isinstance(train, ast.TrainDef)
    assert train.entries[0].rename == (("x", "image"), ("y", "label"))
    assert train.entries[1].key == "early_stop" and isinstance(train.entries[1].value, ast.Call)


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("model M {\n  h = x -> dense(100\n  y = h\n}\n", 2, 17, "missing ')' to close the call to dense"),
        ("model M {\n  input = x\n}\n", 2, 3, "keyword"),
        ("model M {\n  h = x -> -> relu\n}\n", 2, 12, "'->'"),
    ],
)
def test_syntax_errors_are_worded_and_located(text: str, line: int, col: int, words: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_text(text, "t.net")
    d = e.value.diagnostics[0]
    assert d.kind == "syntax error" and words in d.message
    assert d.span is not None and (d.span.line, d.span.col) == (line, col)
    assert "Expected one of" not in d.message and d.hint


@pytest.mark.parametrize(
    ("body", "line", "col", "hint"),
    [
        ("y = x + (x -> relu)", 3, 14, "bind it to a name first: `h = x -> relu`, then `y = x + h`"),
        ("y = (x -> relu)  # (a comment)", 3, 10, "drop the parentheses: `y = x -> relu`"),
        ("y = add(x, x -> dense(4) -> relu)", 3, 16, "`h = x -> dense(4) -> relu`, then `y = add(x, h)`"),
        ("y = concat([x, x -> relu], axis=1)", 3, 20, "`h = x -> relu`, then `y = concat([x, h], axis=1)`"),
        ("y = relu(x + (x -> relu))", 3, 19, "`h = x -> relu`, then `y = relu(x + h)`"),
        ("y = x + (x\n      -> relu)", 4, 7, "`h = x -> relu`, then `y = x + h`"),
        ("y = concat((x -> relu),\n    x, axis=1)", 3, 17, "`h = x -> relu`, then use `h` in its place"),
        ("h = x\n  y = x + (h -> relu)", 4, 14, "`h1 = h -> relu`, then `y = x + h1`"),
    ],
)
def test_a_pipeline_inside_brackets_is_not_a_missing_bracket(
    body: str, line: int, col: int, hint: str
) -> None:
    text = f"model M {{\n  input x: f32[N, 4]\n  {body}\n  output y\n}}\n"
    with pytest.raises(SpecError) as e:
        parse_text(text, "t.net")
    d = e.value.diagnostics[0]
    assert d.message == "a pipeline ('->') cannot stand inside an expression"
    assert d.span is not None and (d.span.line, d.span.col, d.span.end_col) == (
        line,
        col,
        col + 2,
    )  # the '->'
    assert d.hint is not None and hint in d.hint


@pytest.mark.parametrize(
    "body", ["y = x + (x -> relu", "y = x + (x -> relu]", "y = x -> dense(4 -> relu -> dense(2)"]
)
def test_a_bracket_left_open_before_a_pipeline_is_still_missing(body: str) -> None:
    text = f"model M {{\n  input x: f32[N, 4]\n  {body}\n  output y\n}}\n"
    with pytest.raises(SpecError) as e:
        parse_text(text, "t.net")
    assert e.value.diagnostics[0].message.startswith("missing ')' to close")
