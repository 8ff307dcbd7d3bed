"""Repeated identical segments run as one lax.scan over stacked layers (specc/backend/reroll.py): which runs are
found, and that a rolled model computes what the unrolled one does — outputs, gradients, batch statistics, dropout
— while its program holds one copy of the segment whatever the repeat count."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import specc
from specc.backend.flax import build_module, layer_keys
from specc.backend.reroll import ROLL_MIN_NODES, graph_runs

UNIT = """
block Unit() {
  input x: [N, 16]
  h = x -> dense(16) -> batchnorm -> relu -> dropout(0.2)
  y = h + x
  output y
}
model Deep {
  input x: f32[N, 16]
  y = x -> repeat(%d, Unit()) -> dense(10)
  output y
}
"""

CHAIN = """
model Chain {
  input x: f32[N, 8]
  y = x%s -> dense(3)
  output y
}
"""


def graph(text: str) -> Any:
    return specc.load("m.net", text=text).graph()


def x16(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32)


def test_repeat_is_one_run_of_its_copies() -> None:
    g = graph(UNIT % 6)
    (run,) = graph_runs(g, roll=True)
    assert (run.start, run.length, run.copies) == (1, 5, 6)
    # the copy reads the previous copy's sum (position 4) twice: through dense and through the skip
    assert run.carried == (4,) and run.carry_in == (0,)
    assert run.exported() == {run.end - 1}


def test_a_long_hand_written_chain_rolls_by_the_rule() -> None:
    layers = ROLL_MIN_NODES // 2 + 10
    g = graph(CHAIN % (" -> dense(8) -> tanh" * layers))
    (run,) = graph_runs(g)
    assert (run.length, run.copies) == (2, layers)
    short = graph(CHAIN % (" -> dense(8) -> tanh" * 20))
    assert graph_runs(short) == () and len(graph_runs(short, roll=True)) == 1


def test_copies_that_differ_end_the_run() -> None:
    g = graph(CHAIN % (" -> dense(8) -> tanh" * 5 + " -> dense(8) -> relu" + " -> dense(8) -> tanh" * 3))
    runs = graph_runs(g, roll=True)
    assert [(r.length, r.copies) for r in runs] == [(2, 5), (2, 3)]


def test_a_value_read_from_inside_the_run_keeps_those_copies_unrolled() -> None:
    # a U-Net-like skip: the output reads the first copy's value, so no run may hide it
    text = """
model Skip {
  input x: f32[N, 8]
  a = x -> dense(8) -> tanh
  b = a -> dense(8) -> tanh -> dense(8) -> tanh -> dense(8) -> tanh
  y = a + b
  output y
}
"""
    g = graph(text)
    a = g.value_map["a"].node
    for run in graph_runs(g, roll=True):
        assert not (run.start <= a < run.end) or a in run.exported()


def test_copies_share_one_stacked_layer_per_position() -> None:
    g = graph(UNIT % 6)
    keys = layer_keys(g, roll=True)
    dense = [n.id for n in g.nodes if n.op == "dense"][:6]
    assert len({keys[i] for i in dense}) == 1 and keys[dense[0]] == "y_Unit_0_h_dense_x6"
    model = build_module(g, seed=0, roll=True)
    assert model.layers["y_Unit_0_h_dense_x6"].kernel.shape == (6, 16, 16)
    # the same values, copy for copy, as building every copy on its own
    plain = build_module(g, seed=0, roll=False)
    for c in range(6):
        np.testing.assert_array_equal(
            model.layers["y_Unit_0_h_dense_x6"].kernel[...][c],
            plain.layers[f"y_Unit_{c}_h_dense"].kernel[...],
        )


def test_rolled_equals_unrolled_outputs_gradients_and_statistics() -> None:
    g = graph(UNIT % 6)
    rolled, plain = build_module(g, seed=3, roll=True), build_module(g, seed=3, roll=False)
    x = x16()
    # jitted: run eagerly, the unrolled model compiled its ops one by one (8 s more)
    forward = nnx.jit(lambda m: m(x=x)["y"])
    for m in (rolled, plain):
        m.eval()
    np.testing.assert_allclose(forward(rolled), forward(plain), rtol=1e-5, atol=1e-6)
    for m in (rolled, plain):
        m.train()  # batch statistics from the batch, dropout drawing masks

    def loss(m: Any) -> Any:
        return jnp.mean(m(x=x)["y"] ** 2)

    grad = nnx.jit(nnx.grad(loss))  # the statistics and RNG counters it moves come back into the models
    gr, gp = grad(rolled), grad(plain)
    for c in range(6):
        np.testing.assert_allclose(
            gr["layers"]["y_Unit_0_h_dense_x6"]["kernel"][...][c],
            gp["layers"][f"y_Unit_{c}_h_dense"]["kernel"][...],
            rtol=1e-4,
            atol=1e-6,
        )
        # the running statistics and the dropout streams moved as each copy's own would
        np.testing.assert_allclose(
            rolled.layers["y_Unit_0_h_batchnorm_x6"].mean[...][c],
            plain.layers[f"y_Unit_{c}_h_batchnorm"].mean[...],
            rtol=1e-5,
            atol=1e-7,
        )
        assert int(rolled.layers["y_Unit_0_h_x6"].rngs.count[...][c]) == int(
            plain.layers[f"y_Unit_{c}_h"].rngs.count[...]
        )
    np.testing.assert_allclose(
        gr["layers"]["y"]["kernel"][...], gp["layers"]["y"]["kernel"][...], rtol=1e-4, atol=1e-6
    )


def test_a_value_inside_the_run_is_computed_copy_by_copy() -> None:
    g = graph(UNIT % 6)
    rolled, plain = build_module(g, seed=1, roll=True), build_module(g, seed=1, roll=False)
    for m in (rolled, plain):
        m.eval()
    x = x16()
    got, want = rolled.trace({"x": x}), plain.trace({"x": x})
    assert got.keys() == want.keys()
    np.testing.assert_allclose(got["y.Unit.2/h.dense"], want["y.Unit.2/h.dense"], rtol=1e-5, atol=1e-6)
    inner = rolled.values({"x": x}, ["y.Unit.3/y"])["y.Unit.3/y"]
    np.testing.assert_allclose(inner, want["y.Unit.3/y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("copies", [8, 64])
def test_the_program_holds_one_copy_of_the_segment(copies: int) -> None:
    g = graph(UNIT % copies)
    model = build_module(g, abstract=True, roll=True)
    model.eval()
    graphdef, state = nnx.split(model)

    def forward(state: Any, x: Any) -> Any:
        return nnx.merge(graphdef, state)(x=x)

    hlo = jax.jit(forward).lower(state, jax.ShapeDtypeStruct((4, 16), jnp.float32)).as_text()
    # one dense inside the loop body and the head's: whatever the number of copies
    assert hlo.count("stablehlo.dot_general") == 2
    assert "stablehlo.while" in hlo


# a pre-norm residual unit: deep stacks of it train without blowing up
LN_UNIT = """
block Unit() {
  input x: [N, 32]
  h = x -> layernorm -> dense(32) -> relu
  y = h + x
  output y
}
"""

DEEP_TRAIN = (
    LN_UNIT
    + """
model DeepResidualMLP {
  input x: f32[N, 64]
  input y: i32[N]
  logits = x -> dense(32) -> repeat(70, Unit()) -> dense(10)
  output logits
}

train {
  data = digits(split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr=0.01, momentum=0.9)
  metrics = [accuracy(logits, y)]
  epochs = 3
  batch = 64
}
"""
)


@pytest.mark.slow
def test_a_rolled_model_trains_reloads_evaluates_and_exports(tmp_path: Any) -> None:
    """70 residual blocks (280 nodes) roll by the rule: the run's checkpoint holds one stacked kernel per block
    position, and load, evaluate and ONNX export all read it."""
    import json

    import onnxruntime as ort
    from click.testing import CliRunner

    from specc.cli import main
    from specc.train.export import pure_function

    spec = tmp_path / "deep.net"
    spec.write_text(DEEP_TRAIN)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(spec), "--out", str(out)])
    assert r.exit_code == 0, r.output
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]

    run = specc.load_run(out, "last")
    (stack,) = [k for k in run.model.layers if k.endswith("_dense_x70")]
    assert run.model.layers[stack].kernel.shape == (70, 32, 32)
    r = CliRunner().invoke(main, ["evaluate", str(out), "--checkpoint", "last", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] > 0.3

    r = CliRunner().invoke(
        main, ["export", str(out), "--to", "onnx", "--bind", "N=4", "--checkpoint", "last"]
    )
    assert r.exit_code == 0, r.output
    f, _ = pure_function(run.model)
    x = np.random.default_rng(2).normal(size=(4, 64)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    (got,) = ort.InferenceSession(str(out / "DeepResidualMLP.onnx"), opts).run(None, {"x": x})
    (want,) = jax.jit(f)(x)
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)


def test_a_rolled_build_traces_the_segment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    eval_shape = jax.eval_shape
    monkeypatch.setattr(jax, "eval_shape", lambda *a, **k: calls.append(1) or eval_shape(*a, **k))
    g = graph(UNIT % 500)
    model = build_module(g, abstract=True)  # 2,500 nodes: rolled by the rule
    assert len(calls) == 2  # the segment's layers (all 500 copies stacked) and the head
    assert model.layers["y_Unit_0_h_dense_x500"].kernel.shape == (500, 16, 16)


def test_freezing_some_copies_of_a_rolled_chain_is_a_located_error(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from specc.cli import main

    # h1 … h100 are 100 identical copies of dense + tanh (h0 reads the 64-wide input): 200 nodes, rolled
    body = "\n".join(f"  h{i} = h{i - 1} -> dense(16) -> tanh" for i in range(1, 101))
    text = f"""model Named {{
  input x: f32[N, 64]
  input y: i32[N]
  h0 = x -> dense(16) -> tanh
{body}
  logits = h100 -> dense(10)
  output logits
}}

train {{
  data = digits
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr=0.01)
  epochs = 1
  freeze = [h3]
}}
"""
    spec = tmp_path / "named.net"
    spec.write_text(text)
    r = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1, r.output
    line = text.splitlines().index("  freeze = [h3]") + 1
    assert f"named.net:{line}:3: value error: h3 is 1 of the 100 copies of a long repeat" in r.output
    assert "h1_dense_x100" in r.output and not (tmp_path / "run").exists()


BODY = (
    LN_UNIT
    + """
block Body() {
  input v: [N, 64]
  h = v -> dense(32) -> repeat(60, Unit())
  output h
}
"""
)


@pytest.mark.slow
def test_a_pretrained_instance_with_a_rolled_repeat_starts_from_the_runs_stacked_weights(
    tmp_path: Any,
) -> None:
    from click.testing import CliRunner

    from specc.cli import main

    train = """
train {
  data = digits(split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = adam(lr=1e-3)
  epochs = 1
  batch = 64
  %s
}
"""
    model = """
model %s {
  input x: f32[N, 64]
  input y: i32[N]
  B = Body()%s
  logits = x -> B -> dense(10)
  output logits
}
"""
    (tmp_path / "pre.net").write_text(BODY + model % ("Pre", "") + train % "")
    (tmp_path / "ft.net").write_text(BODY + model % ("FineTune", ' from "pre_run"') + train % "freeze = [B]")
    for name in ("pre", "ft"):
        r = CliRunner().invoke(
            main, ["train", str(tmp_path / f"{name}.net"), "--out", str(tmp_path / f"{name}_run")]
        )
        assert r.exit_code == 0, r.output
    pre, ft = specc.load_run(tmp_path / "pre_run", "last"), specc.load_run(tmp_path / "ft_run", "last")
    (key,) = [k for k in ft.model.layers if k.endswith("_dense_x60")]
    assert ft.model.layers[key].kernel.shape == (60, 32, 32)
    # frozen at the run's values, copy for copy
    np.testing.assert_array_equal(ft.model.layers[key].kernel[...], pre.model.layers[key].kernel[...])


def test_specc_compile_of_a_ten_thousand_node_repeat_reports_one_rolled_run(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from specc.cli import main

    text = """
block Unit() {
  input x: [N, 16]
  h = x -> dense(16) -> relu
  y = h + x
  output y
}
model Residual {
  input x: f32[N, 16]
  y = x -> repeat(3333, Unit()) -> dense(10)
  output y
}
"""
    (tmp_path / "big.net").write_text(text)
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "big.net"), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert len(got["nodes"]) == 10_001
    assert got["rolled"] == [{"first": "y.Unit.0/h.dense", "nodes_per_copy": 3, "copies": 3333}]
    assert got["total_params"] == 3333 * (16 * 16 + 16) + 16 * 10 + 10


TRANSFORMER = """
block Layer() {
  input t: [N, 6, 16]
  a = t -> layernorm -> attention(4) -> dropout(0.1)
  h = t + a
  m = h -> layernorm -> dense(32) -> gelu -> dense(16) -> dropout(0.1)
  z = h + m
  output z
}
model Deep {
  input x: f32[N, 6, 16]
  z = x -> positional(kind=learned) -> repeat(3, Layer())
  logits = z -> mean(axis=1) -> dense(3)
  output logits
}
"""


def test_rolled_transformer_layers_equal_unrolled_ones_with_dropout_on() -> None:
    g = graph(TRANSFORMER)
    (run,) = graph_runs(g, roll=True)
    assert run.copies == 3
    rolled, plain = build_module(g, seed=5, roll=True), build_module(g, seed=5, roll=False)
    x = np.random.default_rng(3).normal(size=(2, 6, 16)).astype(np.float32)
    # jitted: run eagerly, the unrolled model's forward and backward compiled each op on its own (10 s more)
    forward = nnx.jit(lambda m: m(x=x)["logits"])
    for m in (rolled, plain):
        m.eval()
    np.testing.assert_allclose(forward(rolled), forward(plain), rtol=1e-5, atol=1e-6)
    for m in (rolled, plain):
        m.train()

    def loss(m: Any) -> Any:
        return jnp.sum(m(x=x)["logits"] ** 2)

    value_and_grad = nnx.jit(nnx.value_and_grad(loss))
    (lr, gr), (lp, gp) = value_and_grad(rolled), value_and_grad(plain)
    np.testing.assert_allclose(lr, lp, rtol=1e-5)  # the same dropout masks, copy for copy
    head_r, head_p = gr["layers"]["logits"]["kernel"][...], gp["layers"]["logits"]["kernel"][...]
    np.testing.assert_allclose(head_r, head_p, rtol=1e-4, atol=1e-6)


def test_the_compile_table_folds_a_rolled_run_into_one_row(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from specc.cli import main

    (tmp_path / "deep.net").write_text(DEEP_TRAIN)
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "deep.net")], terminal_width=200)
    assert r.exit_code == 0, r.output
    # the first copy's 4 rows, then the other 69 copies as one row with their parameters: 69 · (64 + 32·32 + 32)
    assert "logits.Unit.0/y " in r.output and "logits.Unit.1/" not in r.output
    row = next(line for line in r.output.splitlines() if "… 69 more copies" in line)
    assert f"{69 * (64 + 32 * 32 + 32):,}" in row
    assert "80,810" in r.output  # the total still counts every copy
