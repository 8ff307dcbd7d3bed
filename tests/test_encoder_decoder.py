"""Encoder–decoder models: cross-attention (`dec -> attention(enc, heads)`) and recurrent layers started from a given
state and returning their final one (`x -> lstm(h0, c0, H)`, `y, h, c = x -> lstm(H, return_state=true)`).

Shapes against jax.eval_shape, values against hand-written NumPy and Flax's own cell loop, parameter counts against
PyTorch's, errors at their line:col, and the emitted Flax against the lowering."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_compile import assert_emitted_matches

import specc
from specc.backend.emit_flax import emit_flax
from specc.backend.flax import build_module
from specc.errors import SpecError
from specc.ir.graph import Graph


def graph(body: str, name: str = "M") -> Graph:
    return specc.load("t.net", text=f"model {name} {{\n{body}\n}}\n").graph()


def error(body: str) -> tuple[int, int, str, str]:
    """(line, col, kind, message) of the one error of a model whose body starts on line 2."""
    with pytest.raises(SpecError) as e:
        graph(body)
    d = e.value.diagnostics[0]
    assert d.span is not None
    return d.span.line, d.span.col, d.kind, d.message


def eval_shape(g: Graph, inputs: dict[str, jax.ShapeDtypeStruct]) -> dict[str, jax.ShapeDtypeStruct]:
    """The lowered model's outputs as JAX traces them, without computing (its state split off, as nnx.jit does)."""
    graphdef, state = nnx.split(build_module(g, rngs=nnx.Rngs(0)))
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, inputs)


def rng_inputs(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


# ---- cross-attention: shapes and parameter counts ----------------------------------------------------

CROSS = """\
  input dec: f32[N, T, 8]
  input enc: f32[N, S, 12]
  a = dec -> attention(enc, 2)
  output a"""


def torch_mha_params(embed: int, heads: int, kdim: int, vdim: int) -> int:
    """nn.MultiheadAttention(embed, heads, kdim=, vdim=): q, k, v projections to embed (one in_proj_bias of 3·embed)
    and an out projection embed → embed with its bias."""
    return embed * embed + kdim * embed + vdim * embed + 3 * embed + embed * embed + embed


@pytest.mark.parametrize(("embed", "heads", "kdim"), [(8, 2, 12), (512, 8, 512), (64, 4, 32), (6, 3, 1)])
def test_cross_attention_counts_pytorchs_parameters(embed: int, heads: int, kdim: int) -> None:
    g = graph(
        f"  input q: f32[N, T, {embed}]\n  input m: f32[N, S, {kdim}]\n  a = q -> attention(m, {heads})\n  output a"
    )
    want = torch_mha_params(embed, heads, kdim, kdim)
    assert g.total_params == want
    torch = pytest.importorskip("torch")
    mha = torch.nn.MultiheadAttention(embed, heads, kdim=kdim, vdim=kdim)
    assert sum(p.numel() for p in mha.parameters()) == want


def test_cross_attention_shapes_equal_jax_eval_shape() -> None:
    g = graph(CROSS)
    assert str(g.type_of(g.value_map["a"])) == "f32[N, T, 8]"
    x = {
        "dec": jax.ShapeDtypeStruct((3, 5, 8), jnp.float32),
        "enc": jax.ShapeDtypeStruct((3, 7, 12), jnp.float32),
    }
    out = eval_shape(g, x)
    assert out["a"].shape == (3, 5, 8) and out["a"].dtype == jnp.float32
    node = g.nodes[g.value_map["a"].node]
    assert dict(node.params)["key.kernel"] == (12, 2, 4) and dict(node.params)["query.kernel"] == (8, 2, 4)


def test_cross_attention_flops() -> None:
    g = graph(CROSS.replace("attention(enc, 2)", "attention(enc, 2, features=16)"))
    n = g.nodes[g.value_map["a"].node]
    got = n.flops.subst({"N": 1, "T": 5, "S": 7}).as_int()
    # q and out projections on 5 query steps, k and v on 7 memory steps, 5×7 scores and weighted sums of 16
    assert got == 5 * 2 * (8 * 16 + 16 * 8) + 7 * 2 * (2 * 12 * 16) + 5 * 7 * 2 * (2 * 16)


def attention_by_hand(
    layer: nnx.MultiHeadAttention, q: np.ndarray, mem: np.ndarray, causal: bool = False
) -> np.ndarray:
    """Multi-head attention written out in NumPy from the layer's weights."""
    w = {k: np.asarray(getattr(layer, k).kernel[...]) for k in ("query", "key", "value", "out")}
    b = {k: np.asarray(getattr(layer, k).bias[...]) for k in ("query", "key", "value", "out")}
    qh = np.einsum("ntf,fhd->nhtd", q, w["query"]) + b["query"][None, :, None, :]
    kh = np.einsum("nsf,fhd->nhsd", mem, w["key"]) + b["key"][None, :, None, :]
    vh = np.einsum("nsf,fhd->nhsd", mem, w["value"]) + b["value"][None, :, None, :]
    scores = np.einsum("nhtd,nhsd->nhts", qh, kh) / np.sqrt(qh.shape[-1])
    if causal:
        t, s = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((t, s), bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    heads = np.einsum("nhts,nhsd->nthd", p, vh)
    return np.einsum("nthd,hdf->ntf", heads, w["out"]) + b["out"]


@pytest.mark.parametrize("causal", [False, True])
def test_cross_attention_values_equal_the_formula(causal: bool) -> None:
    s = "T" if causal else "S"  # a causal cross-attention needs the memory as long as the query
    g = graph(
        f"  input dec: f32[N, T, 8]\n  input enc: f32[N, {s}, 12]\n"
        f"  a = dec -> attention(enc, 2, features=6, causal={'true' if causal else 'false'})\n  output a"
    )
    m = build_module(g, rngs=nnx.Rngs(3))
    x = rng_inputs({"dec": (2, 5, 8), "enc": (2, 5 if causal else 7, 12)})
    got = np.asarray(m(x)["a"])
    want = attention_by_hand(m.layers["a"], x["dec"], x["enc"], causal)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the memory matters: another memory gives another output
    other = np.asarray(m({**x, "enc": x["enc"][::-1]})["a"])
    assert not np.allclose(other, got)


def test_cross_attention_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    g = graph(CROSS)
    m = build_module(g, rngs=nnx.Rngs(1))
    layer = m.layers["a"]
    x = rng_inputs({"dec": (2, 5, 8), "enc": (2, 7, 12)})
    mha = torch.nn.MultiheadAttention(8, 2, kdim=12, vdim=12, batch_first=True)

    def w(k: str) -> np.ndarray:
        return np.asarray(getattr(layer, k).kernel[...])

    def b(k: str) -> np.ndarray:
        return np.asarray(getattr(layer, k).bias[...])

    # Flax's [in, heads, head_dim] kernels are PyTorch's [heads·head_dim, in] weights transposed
    with torch.no_grad():
        mha.q_proj_weight.copy_(torch.tensor(w("query").reshape(8, 8).T))
        mha.k_proj_weight.copy_(torch.tensor(w("key").reshape(12, 8).T))
        mha.v_proj_weight.copy_(torch.tensor(w("value").reshape(12, 8).T))
        mha.in_proj_bias.copy_(
            torch.tensor(np.concatenate([b(k).reshape(-1) for k in ("query", "key", "value")]))
        )
        mha.out_proj.weight.copy_(torch.tensor(w("out").reshape(8, 8).T))
        mha.out_proj.bias.copy_(torch.tensor(b("out")))
        want, _ = mha(torch.tensor(x["dec"]), torch.tensor(x["enc"]), torch.tensor(x["enc"]))
    np.testing.assert_allclose(np.asarray(m(x)["a"]), want.numpy(), rtol=1e-5, atol=1e-5)


def test_self_attention_is_unchanged_by_the_memory_form() -> None:
    """`attention(x, x, h)` (x as its own memory) is self-attention, parameter for parameter and value for value."""
    body = "  input x: f32[N, T, 8]\n  a = x -> attention(2)\n  b = x -> attention(x, 2)\n  output a, b"
    g = graph(body)
    assert g.nodes[g.value_map["a"].node].params == g.nodes[g.value_map["b"].node].params
    m = build_module(g, rngs=nnx.Rngs(0))
    nnx.update(m.layers["b"], nnx.state(m.layers["a"]))
    out = m(rng_inputs({"x": (2, 4, 8)}))
    np.testing.assert_allclose(np.asarray(out["a"]), np.asarray(out["b"]), rtol=1e-6)


# ---- cross-attention: located errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enc", "call", "at", "kind", "words"),
    [
        (
            "f32[M, S, 12]",
            "attention(enc, 2)",
            "attention",
            "shape error",
            "has batch M but the query has batch N",
        ),
        (
            "f32[N, 12]",
            "attention(enc, 2)",
            "attention",
            "shape error",
            "must be [N, S, features], got f32[N, 12]",
        ),
        ("f16[N, S, 12]", "attention(enc, 2)", "attention", "type error", "is f16 but the query is f32"),
        ("i32[N, S, 12]", "attention(enc, 2)", "attention", "type error", "is i32 but the query is f32"),
        ("f32[N, S, F]", "attention(enc, 2)", "attention", "shape error", "got F in f32[N, S, F]"),
        (
            "f32[N, S, 12]",
            "attention(enc, 2, causal=true)",
            "causal",
            "argument error",
            "T = T and the memory S = S",
        ),
        ("f32[N, 9, 12]", "attention(enc, 3)", "3", "argument error", "8 features into 3 heads"),
    ],
)
def test_cross_attention_errors_are_located(enc: str, call: str, at: str, kind: str, words: str) -> None:
    stmt = f"a = dec -> {call}"
    line, col, k, message = error(f"  input dec: f32[N, T, 8]\n  input enc: {enc}\n  {stmt}\n  output a")
    assert (line, col, k) == (4, 3 + stmt.index(at), kind), message
    assert words in message


def test_causal_cross_attention_over_an_equally_long_memory_checks() -> None:
    g = graph(
        "  input q: f32[N, 6, 8]\n  input m: f32[N, 6, 4]\n  a = q -> attention(m, 2, causal=true)\n  output a"
    )
    assert str(g.type_of(g.value_map["a"])) == "f32[N, 6, 8]"


# ---- initial and final state -----------------------------------------------------------------------------

SEQ2SEQ = """\
  input src: f32[N, S, 5]
  input tgt: f32[N, T, 3]
  e, h, c = src -> lstm(16, return=last, return_state=true)
  y = tgt -> lstm(h, c, 16)
  output e, h, c, y"""


def test_state_shapes_equal_jax_eval_shape() -> None:
    g = graph(SEQ2SEQ)
    shapes = {k: str(g.type_of(g.value_map[k])) for k in ("e", "h", "c", "y")}
    assert shapes == {"e": "f32[N, 16]", "h": "f32[N, 16]", "c": "f32[N, 16]", "y": "f32[N, T, 16]"}
    x = {
        "src": jax.ShapeDtypeStruct((4, 7, 5), jnp.float32),
        "tgt": jax.ShapeDtypeStruct((4, 3, 3), jnp.float32),
    }
    out = eval_shape(g, x)
    assert {k: v.shape for k, v in out.items()} == {"e": (4, 16), "h": (4, 16), "c": (4, 16), "y": (4, 3, 16)}


def test_state_inputs_and_outputs_add_no_parameters_or_flops() -> None:
    g = graph(SEQ2SEQ)
    plain = graph("  input src: f32[N, S, 5]\n  input tgt: f32[N, T, 3]\n  y = tgt -> lstm(16)\n  output y")
    enc, dec = (g.nodes[g.value_map[k].node] for k in ("h", "y"))
    assert dec.params == plain.nodes[plain.value_map["y"].node].params
    assert dec.flops == plain.nodes[plain.value_map["y"].node].flops
    # Flax's LSTM (one bias per gate): 4·(F·H + H·H + H); PyTorch's nn.LSTM has 4·H more (b_ih and b_hh)
    assert enc.param_count == 4 * (5 * 16 + 16 * 16 + 16)
    assert dec.param_count == 4 * (3 * 16 + 16 * 16 + 16)


def cell_loop(cell: nnx.Module, carry: object, x: np.ndarray) -> tuple[object, np.ndarray]:
    """Flax's cell stepped by hand over the time axis from the given carry."""
    ys = []
    for t in range(x.shape[1]):
        carry, y = cell(carry, jnp.asarray(x[:, t]))
        ys.append(y)
    return carry, np.stack([np.asarray(y) for y in ys], axis=1)


def test_lstm_from_a_given_state_equals_flaxs_cell_loop() -> None:
    g = graph(
        "  input x: f32[N, T, 5]\n  input h0: f32[N, 16]\n  input c0: f32[N, 16]\n"
        "  y, h, c = x -> lstm(h0, c0, 16, return_state=true)\n  output y, h, c"
    )
    m = build_module(g, rngs=nnx.Rngs(2))
    x = rng_inputs({"x": (3, 6, 5), "h0": (3, 16), "c0": (3, 16)})
    out = {k: np.asarray(v) for k, v in m(x).items()}
    (c_end, h_end), ys = cell_loop(
        m.layers["y_h_c"].cell, (jnp.asarray(x["c0"]), jnp.asarray(x["h0"])), x["x"]
    )
    np.testing.assert_allclose(out["y"], ys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["h"], np.asarray(h_end), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["c"], np.asarray(c_end), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["h"], out["y"][:, -1])  # an LSTM's output is its h
    # the state matters: from zeros the same layer computes something else
    zeros = {**x, "h0": np.zeros_like(x["h0"]), "c0": np.zeros_like(x["c0"])}
    assert not np.allclose(np.asarray(m(zeros)["y"]), out["y"])


@pytest.mark.parametrize("cell", ["gru", "simple"])
def test_gru_and_simple_cells_from_a_given_state(cell: str) -> None:
    call = "gru(h0, 8, return_state=true)" if cell == "gru" else "rnn(h0, 8, cell=simple, return_state=true)"
    g = graph(f"  input x: f32[N, T, 5]\n  input h0: f32[N, 8]\n  y, h = x -> {call}\n  output y, h")
    assert str(g.type_of(g.value_map["h"])) == "f32[N, 8]"
    m = build_module(g, rngs=nnx.Rngs(4))
    x = rng_inputs({"x": (2, 4, 5), "h0": (2, 8)})
    out = {k: np.asarray(v) for k, v in m(x).items()}
    h_end, ys = cell_loop(m.layers["y_h"].cell, jnp.asarray(x["h0"]), x["x"])
    np.testing.assert_allclose(out["y"], ys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["h"], np.asarray(h_end), rtol=1e-5, atol=1e-6)


def test_an_encoders_final_state_seeds_the_decoder() -> None:
    g = graph(SEQ2SEQ)
    m = build_module(g, rngs=nnx.Rngs(5))
    x = rng_inputs({"src": (2, 7, 5), "tgt": (2, 3, 3)})
    out = m(x)
    c_enc, h_enc = np.asarray(out["c"]), np.asarray(out["h"])
    np.testing.assert_array_equal(np.asarray(out["e"]), h_enc)
    _, ys = cell_loop(m.layers["y"].cell, (jnp.asarray(c_enc), jnp.asarray(h_enc)), x["tgt"])
    np.testing.assert_allclose(np.asarray(out["y"]), ys, rtol=1e-5, atol=1e-6)


STATE_INPUTS = """\
  input x: f32[N, T, 5]
  input h0: f32[N, 16]
  input c0: f32[N, 16]
  input w: f32[N, T, 16]
  input m: f32[M, 16]
  input k: f16[N, 16]
"""


@pytest.mark.parametrize(
    ("stmt", "at", "kind", "words"),
    [
        ("y = x -> lstm(h0, 16)", "lstm", "argument error", "starts from its state (h0, c0): 2 tensor(s)"),
        ("y = x -> gru(h0, c0, 16)", "gru", "argument error", "gru takes 1 to 2 tensor input(s), got 3"),
        (
            "y = x -> rnn(h0, c0, 16)",
            "rnn",
            "argument error",
            "rnn(cell=simple) starts from its state (h0): 1",
        ),
        ("y = x -> rnn(h0, 16, cell=lstm)", "rnn", "argument error", "rnn(cell=lstm) starts from its state"),
        ("y = x -> lstm(c0, h0, 8)", "lstm", "shape error", "initial state h0 must be [N, H] = [N, 8]"),
        ("y = x -> lstm(h0, w, 16)", "lstm", "shape error", "initial state c0 must be [N, H] = [N, 16]"),
        ("y = x -> lstm(h0, m, 16)", "lstm", "shape error", "got f32[M, 16]"),
        ("y = x -> lstm(h0, k, 16)", "lstm", "type error", "initial state c0 is f16[N, 16]"),
        ("y = x -> lstm(h0, c0, 16, bidirectional=true)", "bidirectional", "argument error", "its own state"),
        (
            "y, h = x -> gru(16, bidirectional=true, return_state=true)",
            "return_state",
            "argument error",
            "two states",
        ),
        (
            "y, h = x -> lstm(16, return_state=true)",
            "y, h",
            "value error",
            "2 names on the left but the right side",
        ),
    ],
)
def test_state_errors_are_located(stmt: str, at: str, kind: str, words: str) -> None:
    line, col, k, message = error(f"{STATE_INPUTS}  {stmt}\n  output y")
    assert (line, col, k) == (8, 3 + stmt.index(at), kind), message
    assert words in message


# ---- the emitted Flax computes what the lowering computes ------------------------------------------------

ENCODER_DECODER = """
model EncDec {
  input src: f32[N, 7, 5]
  input tgt: f32[N, 4, 6]
  input h0: f32[N, 3]
  e, h, c = src -> lstm(8, return=last, return_state=true)
  s, hs, cs = src -> rnn(h, c, 8, cell=lstm, return_state=true)
  y = tgt -> lstm(h, c, 8)
  g, gh = tgt -> gru(h0, 3, return=last, return_state=true)
  r = tgt -> rnn(gh, 3)
  a = y -> attention(s, 2)
  b = y -> attention(src, 4, features=12)
  q = s -> attention(e[:, None, :] + s, 2, causal=true)
  output a, b, q, r, hs, cs, g
}
"""


def test_emitted_flax_matches_for_state_and_cross_attention(tmp_path: Path) -> None:
    g = specc.load("encdec.net", text=ENCODER_DECODER).graph()
    source = emit_flax(g)
    assert "initial_carry=(" in source and "return_carry=True" in source and "in_kv_features=5" in source
    assert_emitted_matches(g, tmp_path)


def test_half_precision_state_is_carried_in_f32_and_returned_in_its_dtype(tmp_path: Path) -> None:
    g = graph(
        "  input x: bf16[N, 4, 5]\n  input h0: bf16[N, 8]\n  y, h = x -> gru(h0, 8, return_state=true)\n  output y, h"
    )
    m = build_module(g, rngs=nnx.Rngs(0))
    x = {"x": jnp.ones((2, 4, 5), jnp.bfloat16), "h0": jnp.ones((2, 8), jnp.bfloat16)}
    out = m(x)
    assert out["y"].dtype == jnp.bfloat16 and out["h"].dtype == jnp.bfloat16
    assert_emitted_matches(g, tmp_path)


# ---- the lecture specs train -----------------------------------------------------------------------------

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "epochs"), [("seq2seq.net", 5), ("transformer_encoder_decoder.net", 3)])
def test_the_encoder_decoder_specs_learn_to_reverse(name: str, epochs: int, tmp_path: Path) -> None:
    """On the embedded reversal task the decoder must use the encoder (its state, or the memory it attends to):
    from the answer so far alone it could guess the next symbol at 1 in 9 at best."""
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    text = re.sub(r"epochs(\s*)=\s*\d+", rf"epochs\1= {epochs}", (SPECS / name).read_text())
    spec = specc.load(SPECS / name, text=text)
    graph = spec.graph()
    result = train_and_evaluate(build_config(spec, graph), tmp_path / name, verbose=False, graph=graph)
    assert result.history[-1]["val_accuracy"] > 0.9, result.history


def test_the_reversal_data_set_is_teacher_forced_reversal(tmp_path: Path) -> None:
    from specc.train.data import load_data

    splits = load_data("reversal", [], {"n": 50, "length": 5, "vocab": 7}, base_dir=tmp_path, seed=1)
    d = splits.train.fields
    assert {k: (v.dtype.name, v.shape) for k, v in d.items()} == {k: ("int32", (50, 5)) for k in d}
    assert set(d) == {"src", "tgt_in", "tgt"}
    np.testing.assert_array_equal(d["tgt"], d["src"][:, ::-1])
    np.testing.assert_array_equal(d["tgt_in"][:, 0], 0)  # the start token
    np.testing.assert_array_equal(d["tgt_in"][:, 1:], d["tgt"][:, :-1])
    assert d["src"].min() >= 1 and d["src"].max() <= 6


def test_a_drawing_names_the_optional_tensors_a_call_gives() -> None:
    """A cross-attention reads apart from a self-attention in `specc dot`, and a recurrent layer started from a
    state says so (both were drawn as the plain op)."""
    from specc.backend.dot import op_text

    root = Path(__file__).resolve().parents[1]
    graph = specc.load(root / "specs" / "seq2seq.net").graph()
    texts = [op_text(n) for n in graph.nodes if n.op == "lstm"]
    assert texts == ["lstm 128 → h, c", "lstm 128 (h0, c0)"], texts
    graph = specc.load(root / "specs" / "transformer_encoder_decoder.net").graph()
    texts = sorted({op_text(n) for n in graph.nodes if n.op == "attention"})
    assert texts == ["attention ×4", "attention ×4 (memory)", "causal attention ×4"], texts


# ---- a repeated decoder layer reads the memory -------------------------------------------------------

DECODER_LAYER = """\
block Dec(d) {
  input y: [N, T, d]
  input mem: [N, S, d]
  c = y -> layernorm -> attention(mem, 2)
  k = y + c
  output k
}
"""


def test_a_repeated_block_takes_the_tensors_written_in_its_call() -> None:
    """`repeat(2, Dec(mem, 8))` is `Dec(mem, 8) -> Dec(mem, 8)`: every copy reads the memory (it was 'block Dec
    takes 1 argument(s) (d), got 2', the memory taken for a parameter)."""
    model = "model M {{\n  input x: f32[N, T, 8]\n  input mem: f32[N, S, 8]\n  y = x -> {}\n  output y\n}}\n"
    repeated = specc.load("t.net", text=DECODER_LAYER + model.format("repeat(2, Dec(mem, 8))")).graph()
    written = specc.load("t.net", text=DECODER_LAYER + model.format("Dec(mem, 8) -> Dec(mem, 8)")).graph()
    assert sum(n.param_count for n in repeated.nodes) == sum(n.param_count for n in written.nodes) == 2 * 304
    reads_mem = [n for n in repeated.nodes if n.op == "attention" and len(n.inputs) == 2]
    assert [s.repeat for n in reads_mem for s in n.scope] == [(0, 2), (1, 2)]
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    m = np.random.default_rng(1).normal(size=(2, 5, 8)).astype(np.float32)
    outs = [build_module(g, rngs=nnx.Rngs(0))({"x": x, "mem": m})["y"] for g in (repeated, written)]
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_repeated_block_with_a_tensor_after_its_parameters_is_located() -> None:
    text = DECODER_LAYER + "model M {\n  input x: f32[N, T, 8]\n  input mem: f32[N, S, 8]\n"
    text += "  y = x -> repeat(2, Dec(8, mem))\n  output y\n}\n"
    with pytest.raises(SpecError) as e:
        specc.load("t.net", text=text).graph()
    d = e.value.diagnostics[0]
    assert d.span is not None
    assert (d.span.line, d.span.col, d.kind) == (11, 29, "argument error")
    assert d.message == "tensor inputs of Dec come before its other arguments"
