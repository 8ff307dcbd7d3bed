"""Shape assertions in the middle of a pipeline (`-> relu : [N, 32, 32, 64] -> maxpool(2) : [N, 16, 16, 64]`), as
lecturers write the shape after each stage: parsed, checked like a statement's trailing assertion, located,
kept by fmt and by YAML/convert, shown to the language server, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.frontend import ast
from specc.frontend.convert import format_source
from specc.frontend.fmt import format_module
from specc.frontend.parse import parse_expr, parse_text
from specc.frontend.yaml_frontend import parse_yaml, to_yaml
from specc.ir.printer import format_graph
from specc.lsp.analysis import analyse, hover
from specc.source import Source

SLIDE = """\
model M {
  input x: f32[N, 32, 32, 3]
  h = x -> conv(64, 3, padding=1) -> relu : [N, 32, 32, 64] -> maxpool(2) : [N, 16, 16, 64] -> flatten
  output h
}
"""

# one stage a line, the shapes in a column, as on a slide; the last assertion is the statement's
COLUMN = """\
model M {
  input x: f32[N, 32, 32, 3]
  h = x : [N, 32, 32, 3]
      -> conv(64, 3, padding=1) -> relu   : [N, 32, 32, 64]   # conv1
      -> maxpool(2)                       : [N, 16, 16, 64]
      -> flatten                          : [N, 16384]
  output h
}
"""


def _stmt(text: str, index: int = 1) -> ast.Assign:
    item = parse_text(text).items[0]
    assert isinstance(item, ast.ModelDef | ast.BlockDef)
    st = item.body[index]
    assert isinstance(st, ast.Assign)
    return st


def _col(text: str, line: int, needle: str) -> int:
    """The 1-based column where `needle` starts on `line` of `text`."""
    return text.split("\n")[line - 1].index(needle) + 1


def _errors(text: str, name: str = "m.net") -> list[tuple[str, int, int, str]]:
    try:
        specc.load(name, text=text).graph()
    except SpecError as e:
        return [(d.kind, d.span.line, d.span.col, d.message) for d in e.diagnostics if d.span is not None]
    return []


# ---- parsing -------------------------------------------------------------------------------------------------


def test_middle_assertions_are_steps_of_the_pipeline_and_the_last_is_the_statements() -> None:
    st = _stmt(SLIDE)
    steps = st.value.stages
    assert [type(s).__name__ for s in steps] == ["Call", "Call", "ShapeAssert", "Call", "ShapeAssert", "Call"]
    assert [c.func for c in st.value.calls] == ["conv", "relu", "maxpool", "flatten"]
    check = steps[2]
    assert isinstance(check, ast.ShapeAssert)
    assert check.dims == (ast.Name("N"), ast.Num(32), ast.Num(32), ast.Num(64))
    assert (check.span.line, check.span.col, check.span.end_col) == (3, 45, 60)  # the bracketed dims
    assert st.assert_dims is None  # the statement ends in a stage

    col = _stmt(COLUMN)
    assert isinstance(col.value.stages[0], ast.ShapeAssert)  # an assertion right after the head
    assert col.assert_dims == (ast.Name("N"), ast.Num(16384))  # the last one, as `h = ... : [N, 16384]`
    assert not isinstance(col.value.stages[-1], ast.ShapeAssert)
    assert col.value.span.end_line == 6 and col.value.span.end_col == 17  # the pipeline ends at `flatten`


def test_a_trailing_assertion_parses_as_before() -> None:
    st = _stmt("model M {\n  input x: f32[N, 4]\n  h = x -> relu : [N, 4]\n}\n")
    assert st.value.stages == (ast.Call("relu", bare=True),) and st.assert_dims == (ast.Name("N"), ast.Num(4))
    assert (st.assert_span.line, st.assert_span.col) == (3, 19)


def test_a_value_on_its_own_takes_assertions_too() -> None:
    # a YAML `expr:` string: the trailing one stays in the pipeline until the layer makes it the statement's
    e = parse_expr("x -> relu : [N, 4] -> dense(2) : [N, 2]")
    assert isinstance(e, ast.Pipeline)
    assert [type(s).__name__ for s in e.stages] == ["Call", "ShapeAssert", "Call", "ShapeAssert"]


@pytest.mark.parametrize(
    "line, col, message, hint",
    [
        (
            "  h = x -> relu : f32[N, 4] -> relu",
            19,
            "a shape assertion gives the dimensions only, found the dtype 'f32'",
            "drop the dtype: `: [N, 4]`",
        ),
        ("  h = x -> relu : [N, 4] -> ", 29, "'->' must be followed by a stage", "finish the pipeline"),
        ("  h = x -> relu : N", 19, "expected '[', found the name 'N'", ""),
    ],
)
def test_malformed_assertions_are_located_syntax_errors(line: str, col: int, message: str, hint: str) -> None:
    text = f"model M {{\n  input x: f32[N, 4]\n{line}\n  output h\n}}\n"
    with pytest.raises(SpecError) as info:
        parse_text(text, "m.net")
    d = info.value.diagnostics[0]
    assert d.kind == "syntax error" and d.span is not None and (d.span.line, d.span.col) == (3, col)
    assert d.message.startswith(message) and hint in d.hint


def test_an_assertion_on_a_line_of_its_own_is_told_to_join_the_line_above() -> None:
    text = (
        "model M {\n  input x: f32[N, 4]\n  h = x -> relu\n      : [N, 4]\n      -> dense(2)\n  output h\n}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_text(text, "m.net")
    d = info.value.diagnostics[0]
    assert d.span is not None and (d.span.line, d.span.col) == (4, 7)
    assert d.message == "a shape assertion cannot start a line"
    assert "`h = x -> relu : [N, 4]`" in d.hint
    fixed = text.replace("relu\n      :", "relu :")
    assert _errors(fixed) == []


# ---- checking ------------------------------------------------------------------------------------------------


def test_true_assertions_check_and_change_no_node() -> None:
    bare = specc.load("m.net", text=SLIDE.replace(" : [N, 32, 32, 64]", "").replace(" : [N, 16, 16, 64]", ""))
    for text in (SLIDE, COLUMN):
        g = specc.load("m.net", text=text).graph()
        # node names (and so parameter paths in checkpoints) are the same with or without assertions
        assert format_graph(g) == format_graph(bare.graph())


def test_a_wrong_middle_assertion_is_located_at_it() -> None:
    text = COLUMN.replace(
        "maxpool(2)                       : [N, 16, 16, 64]", "maxpool(2) : [N, 32, 16, 64]"
    )
    (err,) = _errors(text)
    assert err[:3] == ("shape error", 5, _col(text, 5, "[N, 32, 16, 64]"))
    assert (
        err[3]
        == "shape assertion failed: expected [N, 32, 16, 64], got f32[N, 16, 16, 64] (axis 1: 32 vs 16)"
    )


def test_checking_goes_on_after_a_wrong_assertion_with_the_real_shape() -> None:
    text = SLIDE.replace("[N, 32, 32, 64]", "[N, 32, 32]").replace("[N, 16, 16, 64]", "[N, 8, 8, 64]")
    errs = _errors(text)
    assert [(k, line, col) for k, line, col, _ in errs] == [
        ("shape error", 3, _col(text, 3, "[N, 32, 32]")),
        ("shape error", 3, _col(text, 3, "[N, 8, 8, 64]")),
    ]
    assert "(rank 3 vs 4)" in errs[0][3] and "(axis 1: 8 vs 16)" in errs[1][3]


def test_block_bodies_bind_symbols_and_parameters_per_call() -> None:
    text = """\
block Unit(c) {
  input x: [N, H, W, C]
  y = x -> conv(c, 3, padding=1) : [N, H, W, c] -> relu : [N, H, W, C] -> maxpool(2) : [N, H/2, W/2, c]
  output y
}
model M {
  input x: f32[N, 32, 32, 8]
  h = x -> Unit(8) : [N, 16, 16, 8] -> repeat(2, Unit(8)) : [N, 4, 4, 8] -> flatten : [N, 128]
  output h
}
"""
    assert _errors(text) == []
    # fed 16 channels, the repeat's first copy binds C to 16 and its `relu : [N, H, W, C]` fails; the second
    # copy, fed the first's 8, checks
    bad = text.replace("-> repeat(2, Unit(8))", "-> conv(16, 1) -> repeat(2, Unit(8))")
    errs = _errors(bad)
    assert [(k, line, col) for k, line, col, _ in errs] == [("shape error", 3, _col(text, 3, "[N, H, W, C]"))]
    assert "expected [N, 16, 16, 16], got f32[N, 16, 16, 8]" in errs[0][3]


def test_an_assertion_needs_one_tensor() -> None:
    two = "model M {\n  input x: f32[N, 8]\n  a, b = x -> split(2) : [N, 4]\n  output a\n}\n"
    ((kind, line, col, message),) = _errors(two)
    assert (kind, line, col, message) == (
        "type error",
        3,
        26,
        "a shape assertion needs a tensor, got 2 values",
    )
    mid = "model M {\n  input x: f32[N, 8]\n  h = x -> split(2) : [N, 4] -> relu\n  output h\n}\n"
    assert [e[:3] for e in _errors(mid)] == [("type error", 3, 23)]  # said once, not again at `relu`


# ---- fmt, YAML, convert ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [SLIDE, COLUMN], ids=["one line", "a column"])
def test_fmt_keeps_each_assertion_where_the_author_put_it(text: str) -> None:
    once = format_source(Source("m.net", text))
    assert format_source(Source("m.net", once)) == once
    assert parse_text(once) == parse_text(text)
    if text is COLUMN:
        assert once == COLUMN  # the column of shapes and the comment stay
    else:  # 102 characters: broken before a stage, each assertion on its stage's line
        assert once.split("\n")[2:4] == [
            "  h = x -> conv(64, 3, padding=1) -> relu : [N, 32, 32, 64] -> maxpool(2) : [N, 16, 16, 64]",
            "      -> flatten",
        ]


def test_fmt_spaces_a_cramped_assertion() -> None:
    text = "model M {\n  input x: f32[N, 4]\n  h = x->relu:[N,4]->dense(2):[N,2]\n  output h\n}\n"
    assert (
        format_source(Source("m.net", text)).split("\n")[2] == "  h = x -> relu : [N, 4] -> dense(2) : [N, 2]"
    )
    assert format_module(parse_text(text)).split("\n")[3] == "  h = x -> relu : [N, 4] -> dense(2) : [N, 2]"


def test_yaml_round_trip_keeps_the_middle_assertions() -> None:
    module = parse_text(COLUMN)
    text = to_yaml(module)
    assert "expr: 'x : [N, 32, 32, 3] -> conv(64, 3, padding=1) -> relu : [N, 32, 32, 64]" in text
    assert "assert: '[N, 16384]'" in text
    back = parse_yaml(Source("m.yaml", text))
    assert back == module
    assert format_graph(specc.load("m.yaml", text=text).graph()) == format_graph(
        specc.load("m.net", text=COLUMN).graph()
    )


def test_a_yaml_expr_ending_in_an_assertion_is_the_net_statement() -> None:
    head = "models:\n  M:\n    inputs: {x: 'f32[N, 4]'}\n    layers:\n"
    written = parse_yaml(
        Source(
            "m.yaml",
            head + "      - {name: h, expr: 'x -> relu : [N, 4] -> dense(2) : [N, 2]'}\n    outputs: [h]\n",
        )
    )
    net = parse_text(
        "model M {\n  input x: f32[N, 4]\n  h = x -> relu : [N, 4] -> dense(2) : [N, 2]\n  output h\n}\n"
    )
    assert written == net
    # wrong, it is located in the YAML line
    bad = head + "      - {name: h, expr: 'x -> relu : [N, 5] -> dense(2)'}\n    outputs: [h]\n"
    assert [e[:3] for e in _errors(bad, "m.yaml")] == [("shape error", 5, _col(bad, 5, "[N, 5]"))]


def test_cli_convert_net_to_yaml_and_back(tmp_path: Path) -> None:
    net = tmp_path / "m.net"
    net.write_text(COLUMN)
    out = tmp_path / "m.yaml"
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(net), "--to", "yaml", "-o", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["convert", str(out), "--to", "net"])
    assert r.exit_code == 0, r.output
    assert parse_text(r.output) == parse_text(COLUMN)
    assert "-> maxpool(2) : [N, 16, 16, 64]" in r.output


# ---- the language server and the command line -------------------------------------------------------------


def test_the_language_server_shows_a_wrong_middle_assertion_and_hovers_the_stage_after_it() -> None:
    text = SLIDE.replace("[N, 16, 16, 64]", "[N, 15, 16, 64]")
    a = analyse(Path("m.net"), text)
    assert [(d.kind, d.span.line, d.span.col) for d in a.diagnostics if d.span] == [
        ("shape error", 3, _col(text, 3, "[N, 15, 16, 64]"))
    ]
    ok = analyse(Path("m.net"), SLIDE)
    h = hover(ok, 2, SLIDE.split("\n")[2].index("maxpool") + 2)
    assert h is not None and "f32[N, 16, 16, 64]" in h.markdown


def test_cli_a_wrong_middle_assertion_exits_1_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net"
    bad.write_text(COLUMN.replace("[N, 16, 16, 64]", "[N, 16, 16, 65]"))
    r = subprocess.run(
        [sys.executable, "-m", "specc", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{bad}:5:45: shape error: shape assertion failed: expected [N, 16, 16, 65]")
    assert "hint: the value computed here has shape [N, 16, 16, 64]" in r.stderr


def test_a_floor_in_a_product_is_printed_as_the_language_reads_it() -> None:
    """4·floor((T - 4)/2) printed as `4*T/2 - 8`, which the language (and a reader) takes for (4·T)/2 - 8 = 2·T - 8:
    a message's size could not be pasted back as an assertion. It is `4*(T/2) - 8` now, which holds."""
    text = (
        "model S {\n  input x: f32[N, T, 1]\n"
        "  a = x -> conv(4, 5) -> maxpool(2) -> flatten  : [N, 4*(T/2) - 8]\n"
        "  b = x -> conv(4, 5) -> maxpool(2) -> flatten  : [N, 4*T/2 - 8]\n  output a, b\n}\n"
    )
    with pytest.raises(SpecError) as e:
        specc.load("s.net", text=text).check()
    [d] = e.value.diagnostics
    assert d.span is not None and d.span.line == 4
    assert d.message == (
        "shape assertion failed: expected [N, 2*T - 8], got f32[N, 4*(T/2) - 8] (axis 1: 2*T - 8 vs 4*(T/2) - 8)"
    )
