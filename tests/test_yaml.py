"""The YAML front end: net → YAML → net keeps the AST and the IR for every spec; located, safe errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.frontend import ast
from specc.frontend.fmt import format_module
from specc.frontend.load import parse_any, read_source
from specc.frontend.parse import parse_text
from specc.frontend.yaml_frontend import parse_yaml, to_yaml
from specc.source import Source

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.net"))
TWINS = sorted((ROOT / "specs" / "yaml").glob("*.yaml"))


def _yaml(text: str, name: str = "t.yaml") -> ast.Module:
    return parse_yaml(Source(name, text))


def _error(text: str, name: str = "t.yaml") -> tuple[str, int, int, str]:
    """(kind, line, col, message) of the first problem in a YAML spec, from loading through checking."""
    with pytest.raises(SpecError) as info:
        specc.load(name, text=text).graph()
    d = info.value.diagnostics[0]
    assert d.span is not None
    return d.kind, d.span.line, d.span.col, d.message


# ---- round trips over every spec ---------------------------------------------------------------------------


def test_specs_are_found() -> None:
    assert len(SPECS) >= 10 and TWINS


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_net_to_yaml_to_net_keeps_ast_and_ir(path: Path, ir_dumps) -> None:
    module = parse_any(read_source(path))
    text = to_yaml(module)
    back = parse_yaml(Source(str(path.with_suffix(".yaml")), text))
    assert back == module
    assert format_module(back) == format_module(module)
    # the IR of every model, via the YAML text loaded beside the original (so imports resolve alike)
    assert ir_dumps(path.with_suffix(".yaml"), text) == ir_dumps(path)
    # and back to .net text: the same IR again
    assert ir_dumps(path, format_module(back)) == ir_dumps(path)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_to_yaml_is_deterministic_and_stable(path: Path) -> None:
    module = parse_any(read_source(path))
    text = to_yaml(module)
    assert to_yaml(parse_yaml(Source("x.yaml", text))) == text
    assert to_yaml(parse_text(format_module(module), "x.net")) == text


@pytest.mark.parametrize("twin", TWINS, ids=lambda p: p.name)
def test_yaml_twins_give_the_ir_of_their_net_file(twin: Path, ir_dumps) -> None:
    net = ROOT / "specs" / (twin.stem + ".net")
    assert net.is_file(), f"{twin.name} has no .net original"
    assert parse_any(read_source(twin)) == parse_any(read_source(net))
    assert ir_dumps(twin) == ir_dumps(net)


def test_check_json_of_yaml_twin_equals_net() -> None:
    runner = CliRunner()
    a = runner.invoke(main, ["check", str(ROOT / "specs/yaml/mlp.yaml"), "--json"])
    b = runner.invoke(main, ["check", str(ROOT / "specs/mlp.net"), "--json"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output) == json.loads(b.output)
    assert json.loads(a.output)["outputs"] == {"logits": "f32[N, 10]"}


# ---- the schema --------------------------------------------------------------------------------------------

HAND_WRITTEN = """\
let: {width: 16}
blocks:
  Res:
    args: {c: null, k: 3}
    inputs: [x]
    layers:
      - {name: h, op: conv, features: c, kernel: k, padding: same}
      - {op: relu}
      - {name: y, expr: "relu_2 + x"}
    outputs: y
models:
  Net:
    inputs: {x: "f32[N, 8, 8, 16]", t: "i32[N]"}
    params: {b: {type: "[10]", init: zeros}}
    default: {init: he_normal}
    layers:
      - {name: a, op: Res, c: width}
      - {name: r, op: Res, repeat: 2, c: 16, k: 1, assert: [N, 8, 8, 16]}
      - {name: m, op: concat, input: [a, r], axis: -1}
      - {name: g, op: global_avgpool}
      - {name: z, op: dense, features: 10, init: "normal(0.01)"}
      - {name: logits, expr: "z + b", assert: "[N, 10]"}
    outputs: [logits]
train:
  data: {value: 'npz("d.npz")', as: {x: image, t: label}}
  loss: cross_entropy(logits, t)
  optimizer: adam(lr=1.0e-3)
  metrics: ['accuracy(logits, t)']
"""

HAND_WRITTEN_NET = """\
let width = 16

block Res(c, k=3) {
  input x
  h = x -> conv(c, k, padding=same)
  relu_2 = h -> relu
  y = relu_2 + x
  output y
}

model Net {
  input x: f32[N, 8, 8, 16]
  input t: i32[N]
  param b: [10] = zeros
  default init = he_normal
  a = x -> Res(width)
  r = a -> repeat(2, Res(16, k=1)) : [N, 8, 8, 16]
  m = concat(a, r, axis=-1)
  g = m -> global_avgpool
  z = g -> dense(10, init=normal(0.01))
  logits = z + b : [N, 10]
  output logits
}

train {
  data = npz("d.npz") as {x: image, t: label}
  loss = cross_entropy(logits, t)
  optimizer = adam(lr=0.001)
  metrics = [accuracy(logits, t)]
}
"""


def test_hand_written_yaml_equals_its_net_meaning(ir_dumps) -> None:
    """Defaults (previous layer as input, generated names, positional required args) give the .net AST."""
    assert _yaml(HAND_WRITTEN) == parse_text(HAND_WRITTEN_NET)
    assert ir_dumps(Path("h.yaml"), HAND_WRITTEN) == ir_dumps(Path("h.net"), HAND_WRITTEN_NET)


def test_optional_argument_by_position_is_written_as_expr() -> None:
    m = parse_text(
        "model M {\n  input x: f32[N, 4]\n  y = x -> leaky_relu(0.2)\n  z = y -> relu()\n  output z\n}\n"
    )
    text = to_yaml(m)
    assert "expr: x -> leaky_relu(0.2)" in text and "expr: y -> relu()" in text
    assert _yaml(text) == m


def test_statements_out_of_section_order_go_into_the_layers_list() -> None:
    src = (
        "model M {\n  input x: f32[N, 3]\n  h = x -> relu\n  param w: [3] = zeros\n  let k = 2\n"
        "  output h\n  y = h * w\n  output y\n}\n"
    )
    m = parse_text(src)
    text = to_yaml(m)
    assert "{param: w, type: '[3]', init: zeros}" in text and "{output: [h]}" in text
    assert _yaml(text) == m


def test_layouts_yaml_cannot_hold_are_located_errors() -> None:
    m = parse_text("let a = 1\nmodel M {\n  input x: f32[N]\n  output x\n}\nlet b = 2\n", "f.net")
    with pytest.raises(SpecError) as info:
        to_yaml(m)
    d = info.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (6, 1) and "not together" in d.message  # type: ignore[union-attr]


def test_string_literals_and_lists_round_trip() -> None:
    m = parse_text(
        'train {\n  data = csv("a b.csv", target="y#1")\n  metrics = [accuracy(l, y), "x"]\n'
        "  batch = 32\n  lr = 1e-05\n  flag = false\n}\n"
    )
    assert _yaml(to_yaml(m)) == m


def test_number_spellings_yaml_does_not_read_survive_the_round_trip() -> None:
    """`let EPS = 1e-3` came back as `let EPS = 0.001`: PyYAML reads 1e-3 as a string, so it was written as the
    float; it stays .net text (which the YAML front end reads as .net), as 0.001 and 2 stay YAML numbers."""
    text = "let EPS = 1e-3\nlet L = [5e-4, 0.001, 2]\nmodel M {\n  input x: f32[N, 4]\n  output x\n}\n"
    module = parse_text(text, "t.net")
    out = to_yaml(module)
    assert "EPS: 1e-3\n" in out and "L: [5e-4, 0.001, 2]\n" in out
    back = parse_yaml(Source("t.yaml", out))
    assert back == module and format_module(back) == format_module(module)
    assert "let EPS = 1e-3\nlet L = [5e-4, 0.001, 2]\n" in format_module(back)


def test_unquoted_call_in_a_flow_list_gets_a_hint() -> None:
    with pytest.raises(SpecError) as info:
        _yaml("train:\n  metrics: [accuracy(logits, y)]\n")
    d = info.value.diagnostics[0]
    assert (d.kind, d.span.line, d.span.col) == ("syntax error", 2, 21)  # type: ignore[union-attr]
    assert "quote the expression" in d.hint


def test_first_layer_without_input_and_without_declared_inputs_is_an_error() -> None:
    kind, line, col, msg = _error("models:\n  M:\n    layers:\n      - {name: h, op: relu}\n")
    assert (kind, line, col) == ("name error", 4, 9) and "needs an `input`" in msg


# ---- located errors ----------------------------------------------------------------------------------------

GOOD_HEAD = 'models:\n  MLP:\n    inputs: {x: "f32[N, 64]"}\n'


def test_bad_indentation_is_a_located_syntax_error() -> None:
    kind, line, col, msg = _error(GOOD_HEAD + "   layers: []\n")
    assert (kind, line, col) == ("syntax error", 4, 4) and "indentation" in msg


def test_unclosed_flow_mapping_points_at_its_opener() -> None:
    kind, _, _, msg = _error("models:\n  M: {inputs: {x: 'f32[N]'}\n")
    assert kind == "syntax error" and "missing '}' to close the mapping opened at 2:6" in msg


def test_unknown_layer_key_names_the_valid_ones() -> None:
    text = GOOD_HEAD + "    layers:\n      - {name: h, op: dense, featurs: 10}\n    outputs: [h]\n"
    with pytest.raises(SpecError) as info:
        _yaml(text)
    d = info.value.diagnostics[0]
    assert (d.kind, d.span.line, d.span.col) == ("name error", 5, 30)  # type: ignore[union-attr]
    assert "did you mean 'features'?" in d.message and "features, bias, init" in d.hint


def test_unknown_section_key() -> None:
    kind, line, col, msg = _error(GOOD_HEAD + "    layer: []\n")
    assert (kind, line, col) == ("name error", 4, 5) and "did you mean 'layers'?" in msg


def test_unknown_op_is_reported_by_the_checker_at_the_op_value() -> None:
    text = GOOD_HEAD + "    layers:\n      - {name: h, op: dens, features: 10}\n    outputs: [h]\n"
    kind, line, col, msg = _error(text)
    assert (kind, line, col) == ("name error", 5, 23) and "did you mean 'dense'?" in msg


def test_errors_inside_expr_point_into_the_yaml_line() -> None:
    text = GOOD_HEAD + '    layers:\n      - {name: h, expr: "x -> dense(10 +* 2)"}\n    outputs: [h]\n'
    kind, line, col, _ = _error(text)
    assert (kind, line, col) == ("syntax error", 5, 41)
    plain = GOOD_HEAD + "    layers:\n      - name: h\n        expr: x -> dense(q)\n    outputs: [h]\n"
    kind, line, col, msg = _error(plain)
    assert (kind, line, col) == ("argument error", 6, 26) and "'q'" in msg


def test_shape_assertion_error_points_at_the_assert_value() -> None:
    text = (
        GOOD_HEAD
        + '    layers:\n      - {name: h, op: dense, features: 10, assert: "[N, 11]"}\n    outputs: [h]\n'
    )
    kind, line, col, msg = _error(text)
    assert (kind, line, col) == ("shape error", 5, 52) and "expected [N, 11]" in msg


def test_python_tags_are_rejected_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for tag in (
        f'!!python/object/apply:os.system ["touch {marker}"]',
        '!!python/object/apply:os.system ["echo hi"]',
    ):
        text = GOOD_HEAD + f"    layers:\n      - name: h\n        op: {tag}\n    outputs: [h]\n"
        kind, line, col, msg = _error(text)
        assert (kind, line, col) == ("value error", 6, 13) and "python/object/apply:os.system" in msg
    assert not marker.exists()


def test_duplicate_keys_are_errors() -> None:
    kind, line, col, msg = _error(GOOD_HEAD + '    inputs: {y: "f32[N]"}\n')
    assert (kind, line, col) == ("value error", 4, 5) and "duplicate key 'inputs' (first at 3:5)" in msg


def test_wrong_value_types_are_located() -> None:
    kind, line, col, msg = _error(GOOD_HEAD + "    layers: {h: 1}\n")
    assert (kind, line, col) == ("type error", 4, 13) and "must be a list" in msg
    kind, line, col, msg = _error("models:\n  M:\n    inputs: {x: 3}\n")
    assert (kind, line, col) == ("type error", 3, 17) and "tensor type" in msg
    kind, line, col, msg = _error(GOOD_HEAD + "    layers:\n      - {name: h, op: dense, features: {a: 1}}\n")
    assert (kind, line, col) == ("type error", 5, 40)


def test_alias_bomb_fails_fast() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    with pytest.raises(SpecError) as info:
        _yaml("\n".join(lines) + "\n")
    assert "expands to more than" in info.value.diagnostics[0].message


def test_empty_and_non_mapping_documents() -> None:
    assert _yaml("") == ast.Module(())
    kind, line, col, _ = _error("- a\n- b\n")
    assert (kind, line, col) == ("type error", 1, 1)


def test_yaml_can_import_a_net_file(tmp_path: Path) -> None:
    (tmp_path / "blocks.net").write_text("block Twice(k) {\n  input x\n  y = x * k\n  output y\n}\n")
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "imports: blocks.net\nmodels:\n  M:\n    inputs: {x: 'f32[N, 2]'}\n"
        "    layers:\n      - {name: y, op: Twice, k: 3}\n    outputs: y\n"
    )
    g = specc.load(spec).graph()
    assert str(g.type_of(g.outputs[0][1])) == "f32[N, 2]"


# ---- the CLI -----------------------------------------------------------------------------------------------


def test_cli_convert_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "resnet18.yaml"
    r = runner.invoke(main, ["convert", str(ROOT / "specs/resnet18.net"), "--to", "yaml", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("# resnet18.net")
    r = runner.invoke(main, ["convert", str(out), "--to", "net"])
    assert r.exit_code == 0, r.output
    assert parse_text(r.output) == parse_any(read_source(ROOT / "specs/resnet18.net"))
    a = runner.invoke(main, ["check", str(out), "--json"])
    b = runner.invoke(main, ["check", str(ROOT / "specs/resnet18.net"), "--json"])
    assert json.loads(a.output) == json.loads(b.output)


def test_cli_renders_yaml_errors_with_the_yaml_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD_HEAD + "    layers:\n      - {name: h, op: dense, featurs: 10}\n")
    r = CliRunner().invoke(main, ["check", str(bad)])
    assert r.exit_code == 1
    assert ":5:30: name error: unknown key 'featurs'" in r.output
    assert "      - {name: h, op: dense, featurs: 10}" in r.output


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        (
            "models:\n  Mé:\n    inputs: {x: '[N, 4]'}\n    outputs: [x]\n",
            2,
            3,
            "a model name must be a name, got the string 'Mé'",
        ),
        (
            "models:\n  M:\n    inputs: {x: '[N, 4]'}\n    layers:\n      - {name: hé, op: dense, features: 3}\n"
            "    outputs: [hé]\n",
            5,
            16,
            "a layer name must be a name, got the string 'hé'",
        ),
        (
            "let: {café: 1}\nmodels:\n  M:\n    inputs: {x: '[N, 4]'}\n    outputs: [x]\n",
            1,
            7,
            "a constant's name must be a name, got the string 'café'",
        ),
    ],
)
def test_a_yaml_name_is_an_ascii_name_as_in_net(text: str, line: int, col: int, message: str) -> None:
    # `\w` took 'é': the YAML loaded, and `convert --to net` wrote `model Mé {`, which .net cannot parse
    assert _error(text) == ("type error", line, col, message)


def test_convert_into_another_folder_rewrites_the_relative_paths(tmp_path: Path) -> None:
    """`specc convert a.net --to yaml -o yaml/a.yaml` (the layout of specs/yaml/) copied `import "blocks.net"` and
    `npz("data.npz")` as written, so the twin read them from yaml/ and failed to import; they are rewritten to be
    read from the output's folder (a `from` run only where it lies beside the spec), both ways and .net to .net,
    comments kept; in the same folder nothing changes."""
    (tmp_path / "blocks.net").write_text(
        "block Body() {\n  input x: [N, 64]\n  y = x -> dense(8)\n  output y\n}\n", encoding="utf-8"
    )
    (tmp_path / "runs" / "Pre").mkdir(parents=True)
    spec = tmp_path / "a.net"
    spec.write_text(
        'import "blocks.net"\nmodel A {\n  input x: f32[N, 64]\n  input y: i32[N]\n'
        '  B = Body() from "runs/Pre"\n  C = Body() from "runs/Elsewhere"\n'
        "  h = x -> B\n  g = x -> C\n  z = concat(h, g) -> dense(10)\n  output z\n}\n"
        'train {\n  data = npz("data.npz", split=0.5)  # beside the spec\n  loss = cross_entropy(z, y)\n}\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    twin = tmp_path / "yaml" / "a.yaml"
    r = runner.invoke(main, ["convert", str(spec), "--to", "yaml", "-o", str(twin)])
    assert r.exit_code == 0, r.output
    text = twin.read_text(encoding="utf-8")
    assert "imports: [../blocks.net]" in text and 'npz("../data.npz", split=0.5)' in text
    assert "from: ../runs/Pre}" in text and "from: runs/Elsewhere}" in text  # not beside the spec: not moved
    assert runner.invoke(main, ["check", str(twin)]).exit_code == 0
    back = tmp_path / "net" / "deeper" / "a.net"
    r = runner.invoke(main, ["convert", str(twin), "--to", "net", "-o", str(back)])
    assert r.exit_code == 0, r.output
    text = back.read_text(encoding="utf-8")
    assert 'import "../../blocks.net"' in text and 'npz("../../data.npz", split=0.5)' in text
    assert runner.invoke(main, ["check", str(back)]).exit_code == 0
    copy = tmp_path / "net" / "a.net"
    r = runner.invoke(main, ["convert", str(spec), "--to", "net", "-o", str(copy)])
    assert r.exit_code == 0, r.output
    text = copy.read_text(encoding="utf-8")
    assert 'import "../blocks.net"' in text and 'npz("../data.npz", split=0.5)  # beside the spec' in text
    assert 'from "../runs/Pre"' in text
    same = tmp_path / "b.yaml"
    assert runner.invoke(main, ["convert", str(spec), "--to", "yaml", "-o", str(same)]).exit_code == 0
    assert "imports: [blocks.net]" in same.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("layer", "message", "hint"),
    [
        (
            "{name: h, op: dense, features: 10, activation: relu}",
            "unknown key 'activation' in layer 'h' (dense)",
            "hint: write the activation as a layer of its own after this one: `{op: relu}`",
        ),
        (
            "{name: h, op: dense, units: 10}",
            "unknown key 'units' in layer 'h' (dense); did you mean 'features'?",
            "hint: units (PyTorch/Keras) is `features` in specc",
        ),
    ],
)
def test_a_layer_key_of_pytorch_or_keras_gets_specc_s_name(
    tmp_path: Path, layer: str, message: str, hint: str
) -> None:
    """`activation: relu` in a YAML layer said only "valid keys: ..."; the .net front end's table of PyTorch and
    Keras names serves the YAML one too."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD_HEAD + f"    layers:\n      - {layer}\n")
    r = CliRunner().invoke(main, ["check", str(bad)])
    assert r.exit_code == 1
    assert message in r.output and hint in r.output, r.output


def _hinted(text: str) -> tuple[str, str]:
    """(`line:col: kind: message`, hint) of the first problem in a YAML spec."""
    with pytest.raises(SpecError) as info:
        specc.load("t.yaml", text=text).graph()
    d = info.value.diagnostics[0]
    assert d.span is not None
    return f"{d.span.line}:{d.span.col}: {d.kind}: {d.message}", d.hint


_M = 'models:\n  M:\n    inputs: {x: "f32[N, 64]"}\n'


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        (
            "models:\n  M:\n    inputs: {x: [N, 64]}\n",
            '3:17: type error: input x\'s type must be a tensor type like "f32[N, 64]"',
            'a type is one quoted string, its dtype first (f32, i32, ...): "f32[N, 64]"',
        ),
        (
            'models:\n  M:\n    inputs: {? [x] : "f32[N, 64]"}\n',
            "3:16: type error: a mapping key must be a plain name",
            "write the name alone before the ':'",
        ),
        (
            "models: []\n",
            "1:9: type error: the models must be a mapping, got a list",
            "write it like `models: {MLP: ",
        ),
        (
            _M + "    layers: {}\n",
            "4:13: type error: layers must be a list, got a mapping",
            "write it like `layers: [",
        ),
        (
            _M + "    layers: 3\n",
            "4:13: type error: layers must be a list, got the number 3",
            "write it like `layers: [",
        ),
        (
            _M + "    layers:\n      - {name: h, op: dense, features: 10}\n    outputs: h\ntrain: [1, 2]\n",
            "7:8: type error: train must be a mapping, got a list",
            "write it like `train: {data: digits, ",
        ),
        (
            _M
            + "    layers:\n      - {name: h, op: dense, features: 10}\n    outputs: h\n---\nlet: {a: 1}\n",
            "7:1: syntax error: a second YAML document ('---'); a spec is one document",
            "merge the two into one mapping",
        ),
    ],
)
def test_schema_mistakes_get_a_hint(text: str, where: str, hint: str) -> None:
    got, got_hint = _hinted(text)
    assert got == where
    assert got_hint.startswith(hint), got_hint
