"""Issue 8, ops and IR build: op calls that crashed `check` or passed it and crashed `compile` are located errors;
a graph over the node cap is refused before it is expanded; long pipelines are named in linear time."""

from __future__ import annotations

from pathlib import Path

import jax
import pytest
from click.testing import CliRunner
from flax import nnx

import specc
from specc import Diagnostic, SpecError
from specc.backend.flax import build_module
from specc.cli import main
from specc.ir.build import MAX_NODES
from specc.ir.types import JNP_NAMES


def spec_text(body: str) -> str:
    """`body` inside `model M { ... }`: its first line is line 2."""
    return "model M {\n" + body.strip("\n") + "\n}\n"


def error(body: str) -> Diagnostic:
    with pytest.raises(SpecError) as e:
        specc.load("t.net", text=spec_text(body)).graph()
    return e.value.diagnostics[0]


def at(d: Diagnostic) -> tuple[int, int]:
    assert d.span is not None
    return d.span.line, d.span.col


# each: the statement (line 3, after `input x: ...` on line 2), the input type, the error kind, a part of the
# message, and the column the caret points at
CASES = [
    # check crashed (exit 3) on these arguments
    (
        "a, b = x -> split(2.5)",
        "f32[N, 4]",
        "argument error",
        "split's 'parts' must be a number of equal",
        21,
    ),
    ('a, b = x -> split("a")', "f32[N, 4]", "argument error", "split's 'parts' must be", 21),
    ("a, b = x -> split([])", "f32[N, 4]", "argument error", "split's 'parts' must be", 21),
    ("y = x -> index(-1)", "f32[N, 4]", "argument error", "index's 'items' must be a subscript, got -1", 18),
    ("y = x -> index([2, 2])", "f32[N, 4]", "argument error", "index's 'items' must be a subscript", 18),
    # check passed, compile crashed
    ("y = x -> neg", "bool[N, 4]", "type error", "neg expects a number input, got bool[N, 4]", 12),
    ("y = -x", "bool[N, 4]", "type error", "neg expects a number input", 7),
    ("y = x -> sign", "bool[N, 4]", "type error", "sign expects a number input", 12),
    ("y = x -> square", "bool[N, 4]", "type error", "square expects a number input", 12),
    ("y = x - x", "bool[N, 4]", "type error", "- is not defined on booleans", 7),
    ("a, b = x -> split(2)", "f32[N]", "shape error", "split into 2 equal parts: axis -1 of f32[N]", 21),
    ("y = x ** -1", "i32[N, 4]", "type error", "integers to a negative power", 7),
    (
        "y = pow(x, scalar=(1, 3))",
        "f32[N, 4]",
        "argument error",
        "pow's 'scalar' must be a number, got (1, 3)",
        14,
    ),
    (
        "y = maximum(x, scalar=(1, 3))",
        "f32[N, 4]",
        "argument error",
        "maximum's 'scalar' must be a number",
        18,
    ),
    (
        "y = x -> max(axis=1)",
        "f32[N, 0]",
        "shape error",
        "max over axis 1 of f32[N, 0]: that axis is empty",
        16,
    ),
    ("y = x -> min", "f32[N, 0]", "shape error", "min over axis 1 of f32[N, 0]: that axis is empty", 12),
    ("y = x -> argmax", "f32[N, 0]", "shape error", "argmax over axis 1 of f32[N, 0]", 12),
    ("y = x -> global_maxpool", "f32[N, 0, 3]", "shape error", "global_maxpool over axis 1", 12),
    ("y = x -> avgpool(2)", "i32[N, 4, 4, 3]", "type error", "avgpool expects a float input", 12),
    ("y = x -> global_avgpool", "u8[N, 4, 4, 3]", "type error", "global_avgpool expects a float input", 12),
    ("y = x -> adaptive_avgpool(2)", "i32[N, 4, 4, 3]", "type error", "adaptive_avgpool expects a float", 12),
    ("y = x -> upsample(2, method=linear)", "i32[N, 4, 4, 3]", "type error", "upsample expects a float", 12),
    ("y = x -> maxpool(2)", "bool[N, 4, 4, 3]", "type error", "maxpool expects a number input", 12),
    (
        "y = x -> dense(3)",
        "f32[N, 0]",
        "shape error",
        "the input's last axis to hold at least one element",
        12,
    ),
    ("y = x -> dense(3, bias_init=he_normal)", "f32[N, 4]", "argument error", "'bias_init' must be an", 21),
    ("y = x -> embed(10, 4)", "i32[]", "shape error", "embed expects token ids with at least", 12),
    ("y = x -> lstm(4, return=last)", "f32[N, 0, 3]", "shape error", "has T = 0", 20),
    (
        "y = x -> reshape([N, -1])",
        "f32[0]",
        "shape error",
        "reshape cannot infer -1 in [N, -1] from f32[0]",
        20,
    ),
    ("y = x -> conv_transpose(1, 1, stride=2)", "f32[N, 0, 1]", "shape error", "axis 1 of f32[N, 0, 1]", 12),
]


@pytest.mark.parametrize(("stmt", "type_", "kind", "message", "col"), CASES, ids=[c[0] for c in CASES])
def test_op_misuse_is_a_located_error(stmt: str, type_: str, kind: str, message: str, col: int) -> None:
    d = error(f"  input x: {type_}\n  {stmt}\n  output {stmt.split()[0].rstrip(',')}")
    assert (d.kind, at(d)) == (kind, (3, col)), d.render()
    assert message in d.message
    assert d.hint


@pytest.mark.parametrize("call", ["split(2.5)", "index(-1)", "neg"])
def test_cli_exit_code_is_1_not_3(tmp_path: Path, call: str) -> None:
    f = tmp_path / "t.net"
    f.write_text(spec_text(f"  input x: bool[N, 4]\n  y = x -> {call}\n  output y"))
    r = CliRunner().invoke(main, ["check", str(f)])
    assert r.exit_code == 1, r.stderr
    assert "internal error" not in r.stderr and f"{f}:3:" in r.stderr


# ---- what JAX computes is what the checker says ------------------------------------------------------


def jax_types(body: str) -> dict[str, str]:
    g = specc.load("t.net", text=spec_text(body)).graph()
    graphdef, state = nnx.split(build_module(g, abstract=True))
    inputs = {
        name: jax.ShapeDtypeStruct(g.nodes[nid].type.concrete() or (), JNP_NAMES[g.nodes[nid].type.dtype])
        for name, nid in g.inputs
    }
    out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, inputs)
    return {k: f"{v.dtype}{list(v.shape)}" for k, v in out.items()}


@pytest.mark.parametrize(
    ("stmt", "want"),
    [
        ("y = x -> dense(3)", "float16[2, 3]"),  # Flax would promote to f32 with its f32 parameters
        ("y = x -> layernorm", "float16[2, 4]"),
        ("y = x -> reshape([2, 2, 2]) -> gru(3)", "float16[2, 2, 3]"),
        ("y = x -> reshape([2, 2, 2]) -> rnn(3, bidirectional=true)", "float16[2, 2, 6]"),
        ("y = x -> reshape([2, 2, 2]) -> attention(2)", "float16[2, 2, 2]"),  # XLA:CPU has no f16 → f32 dot
    ],
)
def test_half_precision_layers_keep_the_input_dtype(stmt: str, want: str) -> None:
    assert jax_types(f"  input x: f16[2, 4]\n  {stmt}\n  output y") == {"y": want}


@pytest.mark.parametrize(
    ("input_", "stmt", "want"),
    [
        # Flax's VALID transposed convolution gives in*stride + max(k - stride, 0): 2*2 + 0, not (2-1)*2 + 1
        ("f32[1, 2, 6]", "y = x -> conv_transpose(4, 1, stride=2)", "float32[1, 4, 4]"),
        ("u8[2, 5, 4]", "y = x -> maxpool(2)", "uint8[2, 2, 4]"),  # the window's identity was an int32
        ("u8[2, 3]", "y = x -> sum", "int32[]"),  # JAX sums bytes in u32, which specc has not
    ],
)
def test_lowering_runs_and_agrees(input_: str, stmt: str, want: str) -> None:
    assert jax_types(f"  input x: {input_}\n  {stmt}\n  output y") == {"y": want}


def test_bool_with_a_number_follows_jax() -> None:
    g = specc.load(
        "t.net", text=spec_text("  input m: bool[2]\n  a = m * 2\n  b = m * 0.5\n  output a, b")
    ).graph()
    assert {k: str(g.type_of(r)) for k, r in g.outputs} == {"a": "i32[2]", "b": "f32[2]"}


# ---- graph size ----------------------------------------------------------------------------------


def test_repeat_over_the_cap_is_refused_before_expanding() -> None:
    d = error("  input x: f32[N, 4]\n  y = x -> repeat(1000000000, relu)\n  output y")
    assert d.kind == "value error" and at(d) == (3, 19)
    assert f"more than the {MAX_NODES:,} nodes a model may have" in d.message
    assert f"{MAX_NODES:,}" in d.hint


def test_repeat_over_the_cap_through_a_block_argument() -> None:
    text = """
block B(n) {
  input x
  y = x -> repeat(n, relu)
  output y
}
model M {
  input x: f32[N, 4]
  y = x -> B(1000000000)
  output y
}
"""
    with pytest.raises(SpecError) as e:
        specc.load("t.net", text=text).graph()
    d = e.value.diagnostics[0]
    assert at(d) == (4, 19) and d.note == "in B(1000000000), called at t.net:9:12"


def test_nested_repeats_over_the_cap_are_refused_after_one_copy() -> None:
    text = """
block B(n) {
  input x
  y = x -> repeat(n, relu)
  output y
}
model M {
  input x: f32[N, 4]
  y = x -> repeat(2000, B(1000))
  output y
}
"""
    with pytest.raises(SpecError) as e:
        specc.load("t.net", text=text).graph()
    d = e.value.diagnostics[0]
    assert at(d) == (9, 19) and "2,000 copies of B of 1,000 nodes each" in d.message


def test_long_pipeline_stage_names() -> None:
    """Named as before (`y.relu1` ... where an op repeats, `y.dense` where it does not), now in linear time."""
    n = 3000
    g = specc.load(
        "t.net", text=spec_text("  input x: f32[N, 4]\n  y = x" + " -> relu" * n + " -> dense(2)\n  output y")
    ).graph()
    names = [node.name for node in g.nodes]
    assert names[1] == "y.relu1" and names[n] == f"y.relu{n}" and names[-1] == "y"
    g = specc.load(
        "t.net", text=spec_text("  input x: f32[N, 4]\n  y = x -> dense(3) -> relu\n  output y")
    ).graph()
    assert [node.name for node in g.nodes] == ["x", "y.dense", "y"]
