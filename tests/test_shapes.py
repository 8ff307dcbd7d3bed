"""Shape rules per op, through small inline specs, against hand-computed shapes and exact located errors."""

from __future__ import annotations

import pytest

import specc
from specc import Diagnostic, SpecError


def spec_text(body: str, pre: str = "") -> str:
    """`body` (lines indented by two spaces) inside `model M { ... }`; its first line is line 2 (plus `pre`'s)."""
    return pre + "model M {\n" + body.strip("\n") + "\n}\n"


def types(body: str, pre: str = "") -> dict[str, str]:
    """Every named value's type, printed."""
    g = specc.load("t.net", text=spec_text(body, pre)).graph()
    return {name: str(g.type_of(ref)) for name, ref in g.value_map.items()}


def error(body: str, pre: str = "") -> Diagnostic:
    with pytest.raises(SpecError) as e:
        specc.load("t.net", text=spec_text(body, pre)).graph()
    return e.value.diagnostics[0]


def at(d: Diagnostic) -> tuple[int, int]:
    assert d.span is not None
    return d.span.line, d.span.col


# ---- convolution ------------------------------------------------------------------------------------
# out = floor((in + lo + hi - dilation·(k - 1) - 1) / stride) + 1; `same` gives ceil(in / stride)


def test_conv_2d_paddings_strides_dilation_groups() -> None:
    t = types("""
  input x: f32[N, 28, 28, 3]
  valid = x -> conv(16, 3)
  samepad = x -> conv(16, 3, padding=same)
  one = x -> conv(16, 3, padding=1)
  asym = x -> conv(16, 3, padding=[(0, 1), (2, 0)])
  s2 = x -> conv(16, 3, stride=2)
  s2same = x -> conv(16, 3, stride=2, padding=same)
  dil = x -> conv(16, 3, dilation=2)
  dilsame = x -> conv(16, 3, dilation=2, padding=same)
  rect = x -> conv(16, (3, 5), stride=(1, 2))
  dil12 = x -> conv(16, 3, dilation=(1, 2))
  grouped = x -> conv(48, 3, groups=3)
  output valid
""")
    assert t["valid"] == "f32[N, 26, 26, 16]"
    assert t["samepad"] == "f32[N, 28, 28, 16]"
    assert t["one"] == "f32[N, 28, 28, 16]"
    assert t["asym"] == "f32[N, 27, 28, 16]"  # 28 + 0 + 1 - 2, 28 + 2 + 0 - 2
    assert t["s2"] == "f32[N, 13, 13, 16]"  # floor(25 / 2) + 1
    assert t["s2same"] == "f32[N, 14, 14, 16]"
    assert t["dil"] == "f32[N, 24, 24, 16]"  # effective window 5
    assert t["dilsame"] == "f32[N, 28, 28, 16]"
    assert t["rect"] == "f32[N, 26, 12, 16]"  # W: floor((28 - 5) / 2) + 1
    assert t["dil12"] == "f32[N, 26, 24, 16]"
    assert t["grouped"] == "f32[N, 26, 26, 48]"


def test_conv_1d_and_3d() -> None:
    t = types("""
  input s: f32[N, 100, 4]
  input v: f32[N, 16, 16, 16, 2]
  a = s -> conv(8, 5, stride=2)
  b = s -> conv(8, 3, padding=causal)
  c = v -> conv(4, 3, padding=same)
  d = v -> conv(4, 3, stride=2)
  output a
""")
    assert t["a"] == "f32[N, 48, 8]"
    assert t["b"] == "f32[N, 100, 8]"
    assert t["c"] == "f32[N, 16, 16, 16, 4]"
    assert t["d"] == "f32[N, 7, 7, 7, 4]"


def test_conv_params() -> None:
    g = specc.load(
        "t.net",
        text=spec_text("""
  input x: f32[N, 28, 28, 6]
  a = x -> conv(12, 3, groups=3)
  b = x -> conv(12, 3, bias=false)
  output a
"""),
    ).graph()
    counts = {n.name: n.param_count for n in g if n.op == "conv"}
    assert counts == {"a": 3 * 3 * 2 * 12 + 12, "b": 3 * 3 * 6 * 12}


def test_conv_groups_must_divide_channels() -> None:
    d = error("""
  input x: f32[N, 28, 28, 3]
  a = x -> conv(16, 3, groups=2)
  output a
""")
    assert d.kind == "shape error"
    assert "conv groups=2 must divide both the input channels (3) and the features (16)" in d.message
    assert d.hint == "groups that divide both 3 and 16: 1 (a depthwise conv: groups = features = channels)"
    assert at(d) == (3, 24)  # the groups= argument
    # ResNeXt's 32 groups on a width that is not a multiple of 32: the groups that would do
    d = error("""
  input x: f32[N, 7, 7, 96]
  a = x -> conv(72, 3, groups=32)
  output a
""")
    assert d.hint.startswith("groups that divide both 96 and 72: 1, 2, 3, 4, 6, 8, 12, 24 ")


def test_a_tensor_given_as_an_option_is_described_as_a_tensor() -> None:
    # regression: a value named like an option word shadows it, and the message used to print the
    # elaborator's internal TVal(ref=Ref(node=1, ...)) instead of the tensor's type
    d = error("""
  input x: f32[N, 28, 28, 3]
  same = x -> relu
  y = x -> conv(16, 3, padding=same)
  output y
""")
    assert d.kind == "argument error"
    assert d.message == (
        "conv's 'padding' must be valid, same, an integer or [(lo, hi), ...], got a tensor f32[N, 28, 28, 3]"
    )
    assert at(d) == (4, 24)


def test_conv_window_larger_than_input() -> None:
    d = error("""
  input x: f32[N, 4, 4, 3]
  a = x -> conv(16, 5)
  output a
""")
    assert d.kind == "shape error"
    assert (
        "conv window 5 (kernel 5, dilation 1) does not fit axis 1 of size 4 in f32[N, 4, 4, 3]" in d.message
    )
    assert at(d) == (3, 12)


def test_conv_needs_spatial_axes() -> None:
    d = error("""
  input x: f32[N, 4]
  y = x -> conv(8, 3)
  output y
""")
    assert (
        d.kind == "shape error"
        and "conv expects a rank 3 to 5 input" in d.message
        and "f32[N, 4]" in d.message
    )
    assert at(d) == (3, 12)


def test_conv_on_symbolic_sizes_prints_floor_divisions() -> None:
    t = types("""
  input x: f32[N, H, W, 3]
  valid = x -> conv(16, 3)
  s2 = x -> conv(16, 3, stride=2)
  s2same = x -> conv(16, 3, stride=2, padding=same)
  s2pad = x -> conv(16, 3, stride=2, padding=1)
  dil = x -> conv(16, 3, dilation=2, stride=2)
  samepad = x -> conv(16, 3, padding=same)
  output valid
""")
    assert t["valid"] == "f32[N, H - 2, W - 2, 16]"
    assert t["s2"] == "f32[N, (H + 1)/2 - 1, (W + 1)/2 - 1, 16]"  # floor((H - 3)/2) + 1, canonical form
    assert t["s2same"] == "f32[N, (H + 1)/2, (W + 1)/2, 16]"  # ceil(H / 2)
    assert t["s2pad"] == "f32[N, (H + 1)/2, (W + 1)/2, 16]"
    assert t["dil"] == "f32[N, (H + 1)/2 - 2, (W + 1)/2 - 2, 16]"
    assert t["samepad"] == "f32[N, H, W, 16]"


def test_conv_transpose_follows_flax() -> None:
    # VALID: (in - 1)·stride + kernel; SAME: in·stride
    t = types("""
  input x: f32[N, 7, 7, 64]
  a = x -> conv_transpose(32, 3, stride=2)
  b = x -> conv_transpose(32, 3, stride=2, padding=same)
  c = x -> conv_transpose(32, 4, stride=2)
  output a
""")
    assert t == {
        "x": "f32[N, 7, 7, 64]",
        "a": "f32[N, 15, 15, 32]",
        "b": "f32[N, 14, 14, 32]",
        "c": "f32[N, 16, 16, 32]",
    }


# ---- pooling ----------------------------------------------------------------------------------------


def test_conv_transpose_integer_padding_is_pytorchs() -> None:
    """`padding=p` crops the full transposed convolution by p on each side, as PyTorch's ConvTranspose2d: output
    (in - 1)·stride + kernel - 2p (a DCGAN's 4×4 stride-2 padding-1 doubles the map). Values against a NumPy
    scatter of PyTorch's definition (its kernel is Flax's flipped)."""
    import numpy as np
    from flax import nnx

    from specc.backend.flax import build_module

    t = types("""
  input z: f32[N, 7, 7, 16]
  a = z -> conv_transpose(8, 4, stride=2, padding=1)
  b = z -> conv_transpose(8, 3, stride=2, padding=1)
  c = z -> conv_transpose(8, (5, 3), padding=(2, 0))
  output a
""")
    assert (t["a"], t["b"], t["c"]) == ("f32[N, 14, 14, 8]", "f32[N, 13, 13, 8]", "f32[N, 7, 9, 8]")
    for k, s, p in [(4, 2, 1), (3, 2, 1), (3, 1, 2), (5, 3, 4)]:
        g = specc.load(
            "t.net",
            text=spec_text(
                f"  input z: f32[N, 5, 5, 2]\n  y = z -> conv_transpose(3, {k}, stride={s}, padding={p})\n  output y"
            ),
        ).graph()
        for platform in ("reference", None):
            m = build_module(g, platform=platform)
            x = np.random.default_rng(k).standard_normal((2, 5, 5, 2)).astype(np.float32)
            y = np.asarray(nnx.jit(lambda m, x: m({"z": x}))(m, x)["y"])  # eagerly: twice as slow
            kernel, bias = np.asarray(m.layers["y"].kernel[...]), np.asarray(m.layers["y"].bias[...])
            full = np.zeros((2, 4 * s + k, 4 * s + k, 3), np.float32)
            for i in range(5):
                for j in range(5):
                    for u in range(k):
                        for v in range(k):  # PyTorch: out[i·s + u] += x[i] · w[u], w = Flax's kernel flipped
                            full[:, i * s + u, j * s + v] += x[:, i, j] @ kernel[k - 1 - u, k - 1 - v]
            want = full[:, p : full.shape[1] - p, p : full.shape[2] - p] + bias
            assert y.shape == want.shape and np.allclose(y, want, atol=1e-5), (k, s, p, platform)


def test_conv_transpose_output_padding_is_pytorchs() -> None:
    """`output_padding=op` (PyTorch's) adds op rows after the cropped output: a conv autoencoder's 7 → 14 with
    kernel 3, stride 2, padding 1 (13 without it). Values against a NumPy scatter of PyTorch's definition, on both
    lowerings (8 features: the CPU rule picks the sub-pixel one)."""
    import numpy as np
    from flax import nnx

    from specc.backend.flax import build_module

    t = types("""
  input z: f32[N, 7, 7, 16]
  a = z -> conv_transpose(8, 3, stride=2, padding=1, output_padding=1)
  b = z -> conv_transpose(8, 3, stride=(2, 3), padding=(1, 0), output_padding=(0, 2))
  c = z -> conv_transpose(8, 3, stride=2, padding=0, output_padding=1)
  output a
""")
    assert (t["a"], t["b"], t["c"]) == ("f32[N, 14, 14, 8]", "f32[N, 13, 23, 8]", "f32[N, 16, 16, 8]")
    for k, s, p, op in [(3, 2, 1, 1), (4, 2, 1, 1), (3, 3, 1, 2), (3, 2, 0, 1), (5, 3, 2, 1)]:
        call = f"conv_transpose(8, {k}, stride={s}, padding={p}, output_padding={op})"
        g = specc.load(
            "t.net", text=spec_text(f"  input z: f32[N, 5, 5, 2]\n  y = z -> {call}\n  output y")
        ).graph()
        for platform in ("reference", None):
            m = build_module(g, platform=platform)
            x = np.random.default_rng(k + op).standard_normal((2, 5, 5, 2)).astype(np.float32)
            y = np.asarray(nnx.jit(lambda m, x: m({"z": x}))(m, x)["y"])  # eagerly: twice as slow
            kernel, bias = np.asarray(m.layers["y"].kernel[...]), np.asarray(m.layers["y"].bias[...])
            size = 4 * s + k + op  # the full output and op zero rows after it
            full = np.zeros((2, size, size, 8), np.float32)
            for i in range(5):
                for j in range(5):
                    for u in range(k):
                        for v in range(k):  # PyTorch: out[i·s + u] += x[i] · w[u], w = Flax's kernel flipped
                            full[:, i * s + u, j * s + v] += x[:, i, j] @ kernel[k - 1 - u, k - 1 - v]
            want = full[:, p : size - p, p : size - p] + bias
            assert y.shape == want.shape == (2, 4 * s + k - 2 * p + op, 4 * s + k - 2 * p + op, 8), call
            assert np.allclose(y, want, atol=1e-5), (call, platform)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "padding=1, output_padding=2",
            "output_padding 2 must be at least 0 and smaller than the stride 2×2",
        ),
        (
            "padding=same, output_padding=1",
            "output_padding goes with an integer padding (PyTorch's), not padding=same",
        ),
        (
            "padding=1, output_padding=(1, 0, 1)",
            "'output_padding' has 3 values but the input has 2 spatial axes",
        ),
    ],
)
def test_conv_transpose_output_padding_errors(call: str, message: str) -> None:
    d = error(f"""
  input z: f32[N, 7, 7, 16]
  a = z -> conv_transpose(8, 3, stride=2, {call})
  output a
""")
    assert message in d.message, d.message
    assert at(d) == (3, 43 + call.index("output_padding"))  # at `output_padding=`


@pytest.mark.parametrize(
    ("padding", "message"),
    [
        ("4", "crops more than the kernel 4×4 adds: at most kernel - 1"),
        ("((1, 1), (1, 1))", "one integer per spatial axis (PyTorch's), not (lo, hi) pairs"),
        ("full", "must be valid, same or an integer, got full"),
        ("(3, 0)", "conv_transpose over axis 1 of f32[N, 1, 7, 16]: padding 3 crops the whole output"),
    ],
)
def test_conv_transpose_padding_errors(padding: str, message: str) -> None:
    d = error(f"""
  input z: f32[N, {1 if padding == "(3, 0)" else 7}, 7, 16]
  a = z -> conv_transpose(8, 4, stride=2, padding={padding})
  output a
""")
    assert message in d.message, d.message
    assert at(d) == (3, 43)  # at `padding=`


def test_pooling() -> None:
    t = types("""
  input x: f32[N, 28, 28, 3]
  a = x -> maxpool(2)
  b = x -> maxpool(3, stride=2)
  c = x -> maxpool(3, stride=2, padding=same)
  d = x -> avgpool(3, stride=1, padding=1)
  e = x -> global_avgpool
  f = x -> adaptive_avgpool(7)
  g = x -> global_maxpool
  h = x -> upsample(2)
  i = x -> maxpool(3)
  output a
""")
    assert t["a"] == "f32[N, 14, 14, 3]"
    assert t["b"] == "f32[N, 13, 13, 3]"
    assert t["c"] == "f32[N, 14, 14, 3]"
    assert t["d"] == "f32[N, 28, 28, 3]"
    assert t["e"] == "f32[N, 3]"
    assert t["f"] == "f32[N, 7, 7, 3]"
    assert t["g"] == "f32[N, 3]"
    assert t["h"] == "f32[N, 56, 56, 3]"
    assert t["i"] == "f32[N, 9, 9, 3]"  # stride defaults to the window: floor(25 / 3) + 1


def test_pooling_symbolic() -> None:
    t = types("""
  input x: f32[N, H, W, 3]
  a = x -> maxpool(2)
  output a
""")
    assert t["a"] == "f32[N, H/2, W/2, 3]"


# ---- dense and matmul -------------------------------------------------------------------------------


def test_dense_on_rank_3_acts_on_the_last_axis() -> None:
    t = types("""
  input x: f32[N, T, 32]
  a = x -> dense(10)
  output a
""")
    assert t["a"] == "f32[N, T, 10]"


def test_dense_on_a_sequence_is_position_wise_but_on_an_image_asks_for_flatten() -> None:
    assert (
        types("""
  input x: f32[N, T, 16]
  a = x -> dense(10)
  output a
""")["a"]
        == "f32[N, T, 10]"
    )
    with pytest.raises(SpecError) as e:
        types("""
  input x: f32[N, 28, 28, 1]
  a = x -> dense(10)
  output a
""")
    d = e.value.diagnostics[0]
    assert d.kind == "shape error" and "got f32[N, 28, 28, 1]" in d.message and "flatten" in d.hint


def test_matmul() -> None:
    t = types("""
  input x: f32[N, 3]
  input s: f32[N, T, 3]
  param w: [3, 4]
  param v: [4]
  a = x @ w
  b = a @ v
  c = s @ w
  output a
""")
    assert (t["a"], t["b"], t["c"]) == ("f32[N, 4]", "f32[N]", "f32[N, T, 4]")


def test_matmul_inner_sizes_must_agree() -> None:
    d = error("""
  input x: f32[N, 3]
  param w: [4, 2]
  a = x @ w
  output a
""")
    assert d.kind == "shape error"
    assert "@ contracts 3 with 4: the inner sizes differ in f32[N, 3] @ f32[4, 2]" in d.message
    assert at(d) == (4, 7)


# ---- broadcasting -----------------------------------------------------------------------------------


def test_broadcast_with_symbols() -> None:
    t = types("""
  input x: f32[N, 1, 16]
  input b: f32[16]
  input u: f32[N, H]
  input v: f32[N, H]
  y = x + b
  z = u * v - u / 2
  output y
""")
    assert t["y"] == "f32[N, 1, 16]"
    assert t["z"] == "f32[N, H]"


def test_broadcast_mismatch_is_an_error_at_the_expression() -> None:
    d = error("""
  input a: f32[N, 3]
  input b: f32[N, 4]
  y = a + b
  output y
""")
    assert d.kind == "shape error"
    assert "cannot broadcast [N, 3] with [N, 4]: axis -1 is 3 on one side and 4 on the other" in d.message
    assert at(d) == (4, 7)


@pytest.mark.parametrize(
    ("small", "index", "shape"),
    [
        ("f32[N, 64]", "[:, None, None, :]", "[N, 1, 1, 64]"),  # squeeze-and-excitation's channel scale
        ("f32[N, 32, 32]", "[:, :, :, None]", "[N, 32, 32, 1]"),  # a mask over the pixels
    ],
)
def test_broadcast_of_a_lower_rank_value_hints_at_its_missing_axes(
    small: str, index: str, shape: str
) -> None:
    """NumPy aligns from the right, so [N, C] against [N, H, W, C] fails at H; the hint writes the axes to add."""
    d = error(f"""
  input x: f32[N, 32, 32, 64]
  input s: {small}
  y = x * s
  output y
""")
    assert d.kind == "shape error" and at(d) == (4, 7)
    assert d.hint == (
        f"broadcasting lines axes up from the right: give the {small[3:]} value the missing axes as size 1, "
        f"`{index}` after its name or `-> reshape({shape})`"
    )
    # the scale with its axes added broadcasts against the map, as jax.eval_shape of the lowering says
    import jax
    import numpy as np

    from specc.backend.flax import build_module

    fixed = spec_text(f"  input x: f32[N, 32, 32, 64]\n  input s: {small}\n  y = x * s{index}\n  output y")
    m = build_module(specc.load("t.net", text=fixed).graph())
    dims = [int(d) if d.isdigit() else 2 for d in small[4:-1].split(", ")]
    x, sv = np.ones((2, 32, 32, 64), np.float32), np.ones(dims, np.float32)
    assert jax.eval_shape(lambda a, b: m({"x": a, "s": b})["y"], x, sv).shape == (2, 32, 32, 64)


def test_two_different_symbols_are_not_assumed_equal() -> None:
    d = error("""
  input a: f32[N, H]
  input b: f32[N, W]
  y = a + b
  output y
""")
    assert d.kind == "shape error"
    assert "cannot broadcast [N, H] with [N, W]: axis -1 is H on one side and W on the other" in d.message
    assert "different names are different sizes" in d.hint
    assert at(d) == (4, 7)


# ---- reshape and flatten ----------------------------------------------------------------------------


def test_reshape_symbolic_element_counts_and_inference() -> None:
    t = types("""
  input x: f32[N, 7, 7, 64]
  input s: f32[N, T, 8]
  a = x -> reshape([N, 3136])
  b = x -> reshape([N, -1])
  c = x -> reshape([-1, 49, 64])
  d = x -> flatten
  e = s -> reshape([N, T, 2, 4])
  f = s -> reshape([N, -1])
  output a
""")
    assert t["a"] == t["b"] == t["d"] == "f32[N, 3136]"
    assert t["c"] == "f32[N, 49, 64]"  # -1 inferred as the batch
    assert t["e"] == "f32[N, T, 2, 4]"
    assert t["f"] == "f32[N, 8*T]"


def test_reshape_wrong_element_count() -> None:
    d = error("""
  input x: f32[N, 7, 7, 64]
  a = x -> reshape([N, 3000])
  output a
""")
    assert d.kind == "shape error"
    assert (
        "reshape to [N, 3000] needs 3000*N elements per tensor, but f32[N, 7, 7, 64] has 3136*N" in d.message
    )
    assert at(d) == (3, 12)


def test_reshape_minus_one_must_divide() -> None:
    d = error("""
  input x: f32[N, 7, 7, 64]
  a = x -> reshape([N, -1, 100])
  output a
""")
    assert d.kind == "shape error"
    assert "reshape cannot fill -1 in [N, -1, 100]" in d.message and "not divisible by 100*N" in d.message
    assert at(d) == (3, 20)


def test_reshape_at_most_one_minus_one() -> None:
    d = error("""
  input x: f32[N, 7, 7, 64]
  a = x -> reshape([N, -1, -1])
  output a
""")
    assert d.kind == "shape error" and "reshape can infer at most one axis (-1), got 2" in d.message
    assert at(d) == (3, 20)


# ---- concat, stack, split ---------------------------------------------------------------------------


def test_concat_and_stack() -> None:
    t = types("""
  input a: f32[N, 8, 8, 16]
  input b: f32[N, 8, 8, 32]
  input v: f32[N, 16]
  c = concat(a, b, axis=-1)
  d = concat(a, a, axis=1)
  s = stack(v, v, v, axis=1)
  s0 = stack(v, v)
  s1 = stack(v, v, axis=-1)
  output c
""")
    assert t["c"] == "f32[N, 8, 8, 48]"
    assert t["d"] == "f32[N, 16, 8, 16]"
    assert t["s"] == "f32[N, 3, 16]"
    assert t["s0"] == "f32[2, N, 16]"
    assert t["s1"] == "f32[N, 16, 2]"


def test_concat_other_axes_must_match() -> None:
    d = error("""
  input a: f32[N, 8, 8, 16]
  input b: f32[N, 4, 4, 32]
  c = concat(a, b)
  output c
""")
    assert d.kind == "shape error"
    assert (
        "concat along axis -1: axis 1 differs (8 vs 4) between f32[N, 8, 8, 16] and f32[N, 4, 4, 32]"
        in d.message
    )
    assert at(d) == (4, 7)


def test_concat_axis_out_of_range() -> None:
    d = error("""
  input a: f32[N, 8, 8, 16]
  c = concat(a, a, axis=4)
  output c
""")
    assert d.kind == "shape error"
    assert "axis 4 is out of range for f32[N, 8, 8, 16] (rank 4: axes -4..3)" in d.message
    assert at(d) == (3, 20)  # the axis= argument


def test_concat_rank_and_dtype() -> None:
    d = error("""
  input a: f32[N, 8, 8, 16]
  input b: f32[N, 8, 8]
  c = concat(a, b)
  output c
""")
    assert d.kind == "shape error" and "concat needs tensors of one rank" in d.message
    d = error("""
  input a: f32[N, 16]
  input b: i32[N, 16]
  c = concat(a, b)
  output c
""")
    assert (
        d.kind == "type error"
        and "concat needs tensors of one dtype, got f32[N, 16], i32[N, 16]" in d.message
    )
    assert at(d) == (4, 7)


def test_stack_needs_one_shape() -> None:
    d = error("""
  input a: f32[N, 16]
  input b: f32[N, 8]
  s = stack(a, b, axis=1)
  output s
""")
    assert (
        d.kind == "shape error"
        and "stack needs tensors of one shape, got f32[N, 16] and f32[N, 8]" in d.message
    )
    assert at(d) == (4, 7)


def test_split() -> None:
    t = types("""
  input a: f32[N, 16]
  p, q = split(a, 2)
  r, s, u = split(a, [4, 4, 8], axis=1)
  output p
""")
    assert (t["p"], t["q"]) == ("f32[N, 8]", "f32[N, 8]")
    assert (t["r"], t["s"], t["u"]) == ("f32[N, 4]", "f32[N, 4]", "f32[N, 8]")


@pytest.mark.parametrize(
    ("call", "kind", "message", "col"),
    [
        (
            "split(a, 3)",
            "shape error",
            "split into 3 equal parts: axis -1 of f32[N, 16] has size 16, not divisible by 3",
            19,
        ),
        (
            "split(a, [4, 8])",
            "shape error",
            "split sizes [4, 8] add up to 12 but axis -1 of f32[N, 16] has size 16",
            19,
        ),
        ("split(a, 4)", "value error", "2 names on the left but the right side gives 4 value(s)", 3),
    ],
)
def test_split_errors(call: str, kind: str, message: str, col: int) -> None:
    d = error(f"""
  input a: f32[N, 16]
  p, q = {call}
  output p
""")
    assert d.kind == kind and message in d.message
    assert at(d) == (3, col)


# ---- slicing ----------------------------------------------------------------------------------------


def test_slicing() -> None:
    t = types("""
  input x: f32[N, 5]
  input s: f32[N, T, 5]
  a = x[:, 0:1]
  b = x[:, 0]
  c = x[:, 1:]
  d = x[..., -2:]
  e = x[:, ::2]
  f = s[:, 1:]
  g = s[:, -1]
  h = s[:, :-1]
  i = s[:, ::2]
  output a
""")
    assert (t["a"], t["b"], t["c"], t["d"], t["e"]) == (
        "f32[N, 1]",
        "f32[N]",
        "f32[N, 4]",
        "f32[N, 2]",
        "f32[N, 3]",
    )
    assert (t["f"], t["g"], t["h"]) == ("f32[N, T - 1, 5]", "f32[N, 5]", "f32[N, T - 1, 5]")
    assert t["i"] == "f32[N, (T + 1)/2, 5]"


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("x[:, 7]", "index 7 is out of range for axis 1 of f32[N, 5] (size 5)"),
        ("x[:, 5:]", "slice 5: of axis 1 of f32[N, 5] is empty"),
        ("x[:, :, 0]", "too many indices (3) for f32[N, 5] of rank 2"),
    ],
)
def test_slicing_errors(index: str, message: str) -> None:
    d = error(f"""
  input x: f32[N, 5]
  a = {index}
  output a
""")
    assert d.kind == "shape error" and message in d.message
    assert at(d) == (3, 7)


def test_a_size_a_block_binds_bounds_a_slice() -> None:
    """`W` of the block's input pattern is 8 at this call: `0:W / 2` and `W - 1` are the numbers 4 and 7 (the
    U-Net's crop-and-copy); JAX computes the same shapes."""
    import jax
    import numpy as np

    from specc.backend.flax import build_module

    text = (
        "block Half() {\n  input x: [N, W]\n  y = x[:, 0:W / 2]\n  z = x[:, W - 1]\n  output y\n  output z\n}\n"
        + spec_text("  input x: f32[N, 8]\n  y, z = x -> Half()\n  output y\n  output z\n")
    )
    g = specc.load("t.net", text=text).graph()
    t = {name: str(g.type_of(ref)) for name, ref in g.value_map.items()}
    assert (t["y"], t["z"]) == ("f32[N, 4]", "f32[N]")
    out = jax.eval_shape(build_module(g), {"x": jax.ShapeDtypeStruct((3, 8), np.float32)})
    assert (out["y"].shape, out["z"].shape) == ((3, 4), (3,))


def test_a_free_size_cannot_bound_a_slice() -> None:
    d = error("""
  input x: f32[N, W]
  a = x[:, 0:W]
  output a
""")
    assert d.kind == "value error" and "slice bounds must be integers, got the name 'W'" in d.message
    assert at(d) == (3, 14) and "fix it in the input's type" in d.hint


# ---- reductions -------------------------------------------------------------------------------------


def test_reductions() -> None:
    t = types("""
  input x: f32[N, T, 5]
  a = mean(x, axis=1)
  b = sum(x, axis=[1, 2])
  c = max(x, axis=-1, keepdims=true)
  d = mean(x)
  e = argmax(x, axis=-1)
  f = x -> min(axis=0)
  g = norm(x, axis=-1)
  output a
""")
    assert t["a"] == "f32[N, 5]"
    assert t["b"] == "f32[N]"
    assert t["c"] == "f32[N, T, 1]"
    assert t["d"] == "f32[]"
    assert t["e"] == "i32[N, T]"
    assert t["f"] == "f32[T, 5]"
    assert t["g"] == "f32[N, T]"


def test_reduction_axis_out_of_range() -> None:
    d = error("""
  input x: f32[N, T, 5]
  a = mean(x, axis=3)
  output a
""")
    assert (
        d.kind == "shape error"
        and "axis 3 is out of range for f32[N, T, 5] (rank 3: axes -3..2)" in d.message
    )
    assert at(d) == (3, 15)


# ---- dtypes -----------------------------------------------------------------------------------------


def test_int_labels_into_dense_is_a_type_error() -> None:
    d = error("""
  input y: i32[N]
  a = y -> dense(10)
  output a
""")
    assert d.kind == "type error"
    assert d.message == "dense expects a float input, got i32[N]"
    assert "integer labels are not features" in d.hint
    assert at(d) == (3, 12)


def test_mixed_dtypes_in_arithmetic() -> None:
    d = error("""
  input y: i32[N, 4]
  input x: f32[N, 4]
  a = x + y
  output a
""")
    assert (
        d.kind == "type error" and "+ needs both sides of one dtype, got f32[N, 4] and i32[N, 4]" in d.message
    )
    assert at(d) == (4, 7)


def test_scalars_have_rank_zero() -> None:
    t = types("""
  input x1: f32[]
  input x2: f32[]
  z = sin(x1) + x1 * x2
  output z
""")
    assert t["z"] == "f32[]"


# ---- shape assertions -------------------------------------------------------------------------------


def test_shape_assertion_proved() -> None:
    t = types("""
  input x: f32[N, H, 3]
  a = x -> conv(4, 3) : [N, H - 2, 4]
  b = x -> conv(4, 3, padding=same) : [N, H, 4]
  output a
""")
    assert t["a"] == "f32[N, H - 2, 4]"


def test_shape_assertion_fails_with_the_actual_shape() -> None:
    d = error("""
  input x: f32[N, 28, 28, 1]
  a = x -> conv(8, 3)   : [N, 28, 28, 8]
  output a
""")
    assert d.kind == "shape error"
    assert (
        d.message
        == "shape assertion failed: expected [N, 28, 28, 8], got f32[N, 26, 26, 8] (axis 1: 28 vs 26)"
    )
    assert at(d) == (3, 27)  # the asserted shape


def test_shape_assertion_rank_and_symbol_mismatch() -> None:
    d = error("""
  input x: f32[N, 28, 28, 1]
  a = x -> conv(8, 3)   : [N, 26, 8]
  output a
""")
    assert "expected [N, 26, 8], got f32[N, 26, 26, 8] (rank 3 vs 4)" in d.message
    d = error("""
  input x: f32[N, H, 3]
  a = x -> conv(4, 3) : [N, H, 4]
  output a
""")
    assert (
        d.message == "shape assertion failed: expected [N, H, 4], got f32[N, H - 2, 4] (axis 1: H vs H - 2)"
    )
    assert at(d) == (3, 25)


# ---- symbolic arithmetic and blocks -----------------------------------------------------------------


def test_let_constants_in_dims() -> None:
    t = types(
        """
  input x: f32[N, 2*C]
  a = x -> dense(C) : [N, C]
  output a
""",
        pre="let C = 8\n",
    )
    assert t == {"x": "f32[N, 16]", "a": "f32[N, 8]"}


def test_block_input_sizes_are_usable_as_arguments() -> None:
    # regression: a size bound by a block's input pattern (C = 4 here) used to be rejected as an op argument
    # with "conv's 'features' must be an integer, got '24'"
    t = types(
        """
  input x: f32[N, 8, 8, 4]
  y = x -> Expand(6)
  z = x -> Expand(2) -> Expand(3)
  output y
""",
        pre="""block Expand(t) {
  input x: [N, H, W, C]
  y = x -> conv(C * t, 1, groups=C) : [N, H, W, C * t]
  output y
}
""",
    )
    assert t["y"] == "f32[N, 8, 8, 24]"
    assert t["z"] == "f32[N, 8, 8, 24]"


def test_block_input_pattern_binds_symbols_per_instance() -> None:
    # H is 32 in the first instance and 16 in the second; `/` on known sizes must divide exactly
    t = types(
        """
  input x: f32[N, 32, 32, 3]
  y = x -> Down(8) -> Down(16)
  output y
""",
        pre="""block Down(c) {
  input x: [N, H, W, C]
  y = x -> conv(c, 3, stride=2, padding=same) : [N, H/2, W/2, c]
  output y
}
""",
    )
    assert t["y"] == "f32[N, 8, 8, 16]"


def test_repeat_chains_copies_with_their_own_parameters() -> None:
    spec = specc.load(
        "t.net",
        text=spec_text("""
  input x: f32[N, 8]
  y = x -> repeat(3, dense(8))
  output y
"""),
    )
    assert spec.check()["total_params"] == 3 * (8 * 8 + 8)


def test_repeat_zero_times_passes_its_input_through() -> None:
    """A stage written from a paper's table, `Unit(c, stride) -> repeat(n - 1, Unit(c))`, has one unit where the
    table says n = 1 (MobileNetV2's first and last rows), as PyTorch's empty nn.Sequential; its name is still
    checked, and a negative count is located."""
    pre = """block Unit(c, stride=1) {
  input x: [N, H, W, C]
  y = x -> conv(c, 3, stride=stride, padding=1, bias=false) -> batchnorm -> relu6
  output y
}
block Stage(c, n, stride) {
  input x: [N, H, W, C]
  y = x -> Unit(c, stride=stride) -> repeat(n - 1, Unit(c))
  output y
}
"""
    g = specc.load("t.net", text=spec_text(THREE_STAGES, pre)).graph()
    assert str(g.type_of(g.value_map["y"])) == "f32[N, 8, 8, 32]"
    unit = lambda cin, c: 9 * cin * c + 2 * c  # noqa: E731
    assert g.total_params == unit(3, 16) + unit(16, 24) + unit(24, 24) + unit(24, 32)
    d = error("  input x: f32[N, 8]\n  y = x -> repeat(0, Dense(8))\n  output y")
    assert (d.kind, d.message, at(d)) == ("name error", "unknown op 'Dense'; did you mean 'dense'?", (3, 22))
    d = error("  input x: f32[N, 8]\n  y = x -> repeat(1 - 2, dense(8))\n  output y")
    assert d.message == "repeat's count must be a whole number (0 or more), got -1" and at(d) == (3, 19)


THREE_STAGES = """
  input x: f32[N, 32, 32, 3]
  y = x -> Stage(16, 1, 2) -> Stage(24, 2, 1) -> Stage(32, 1, 2)
  output y
"""


@pytest.mark.parametrize(
    ("x", "per", "message"),
    [
        ("f32[N, 64]", "channel", "dropout per=channel drops whole feature maps of [N, spatial..., C]; "),
        ("f32[N]", "example", "dropout per=example drops an example's whole value; f32[N] has no axis"),
    ],
)
def test_dropout_per_needs_the_axes_it_shares(x: str, per: str, message: str) -> None:
    d = error(f"  input x: {x}\n  y = x -> dropout(0.2, per={per})\n  output y")
    assert d.kind == "argument error" and message in d.message and at(d) == (3, 25), d.message


def test_equal_but_differently_typed_literals_are_not_confused() -> None:
    # 2 == 2.0 == true in Python; the checker's reuse of identical calls must still tell them apart
    t = types("""
  input x: i32[N, 4]
  a = x * 2
  b = x * 2.0
  c = x * 2
  output a, b, c
""")
    assert (t["a"], t["b"], t["c"]) == ("i32[N, 4]", "f32[N, 4]", "i32[N, 4]")


def test_broadcast_to_stretches_axes_of_size_one() -> None:
    """A ViT's class token: `param cls: [1, 1, D]` stretched over the batch and put before the patches; JAX
    computes the same shapes, and the token's gradient is the sum over the batch."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from specc.backend.flax import build_module

    text = spec_text("""
  input x: f32[N, 16, 8]
  param cls: [1, 1, 8]
  t = cls -> broadcast_to([N, -1, -1])
  h = concat(t, x, axis=1)
  u = x[:, 0:1] -> broadcast_to([N, 4, 8])
  out = h[:, 0]
  output out
""")
    g = specc.load("t.net", text=text).graph()
    t = {name: str(g.type_of(ref)) for name, ref in g.value_map.items()}
    assert (t["t"], t["h"], t["u"]) == ("f32[N, 1, 8]", "f32[N, 17, 8]", "f32[N, 4, 8]")
    m = build_module(g)
    out = jax.eval_shape(m, {"x": jax.ShapeDtypeStruct((3, 16, 8), np.float32)})
    assert out["out"].shape == (3, 8)
    gd, params, rest = nnx.split(m, nnx.Param, ...)
    x = jnp.ones((3, 16, 8))
    grads = jax.grad(lambda p: nnx.merge(gd, p, rest)({"x": x})["out"].sum())(params)
    (leaf,) = jax.tree.leaves(grads)
    assert leaf.shape == (1, 1, 8) and np.allclose(leaf, 3.0)  # one per example of the batch


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("broadcast_to([N, 5])", "axis 1 of f32[N, 4] has size 4, which broadcasts only to itself, not to 5"),
        ("broadcast_to([4])", "has 1 axes, fewer than the 2 of f32[N, 4]"),
        ("broadcast_to([-1, N, 4])", "-1 at axis 0 has no axis of f32[N, 4] to keep"),
    ],
)
def test_broadcast_to_errors(call: str, message: str) -> None:
    d = error(f"""
  input x: f32[N, 4]
  a = x -> {call}
  output a
""")
    assert d.kind == "shape error" and message in d.message, d.message
    assert at(d) == (3, 25)  # at the shape: `  a = x -> broadcast_to(` is 24 characters


# ---- specs written from a PyTorch or Keras listing ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "hint", "col"),
    [
        (
            "y = x -> Linear(64, 10)",
            "unknown op 'Linear'",
            "Linear (PyTorch/Keras) is `dense` in specc; `specc ops` lists the ops",
            12,
        ),
        (
            "y = x -> reshape([N, 8, 8, 1]) -> Dropout2d(0.2)",
            "unknown op 'Dropout2d'",
            "Dropout2d (PyTorch/Keras) is `dropout(rate, per=channel)` in specc; `specc ops` lists the ops",
            37,
        ),
        (
            "y = x -> reshape([N, 8, 8, 1]) -> maxpool(kernel_size=2, window=2)",
            "maxpool has no parameter 'kernel_size'; did you mean 'window'?",
            "kernel_size (PyTorch/Keras) is `window` in specc; maxpool's parameters are: window, stride, padding, ceil",
            45,
        ),
        (
            "y = x -> reshape([N, 8, 8, 1]) -> conv(out_channels=4, kernel=3)",
            "conv has no parameter 'out_channels'; did you mean 'features'?",
            "out_channels (PyTorch/Keras) is `features` in specc; conv's parameters are: features, kernel, stride, "
            "padding, dilation, groups, bias, init, bias_init",
            42,
        ),
        (
            "y = x -> dense(10, activation=softmax)",
            "dense has no parameter 'activation'",
            "write the activation as the next stage: `dense(10) -> relu`; dense's parameters are: features, bias, "
            "init, bias_init",
            22,
        ),
        (
            "y = x -> dense(in_features=64, features=10)",
            "dense has no parameter 'in_features'",
            "specc reads the input's sizes from its type: leave it out; dense's parameters are: features, bias, "
            "init, bias_init",
            18,
        ),
        (
            "y = x -> batchnorm(64)",
            "batchnorm's 'momentum' must be between 0 and 1, got 64.0",
            "it weights the old running statistics: 0.9 or 0.99 are usual; PyTorch's BatchNorm2d(64) is "
            "`batchnorm`: the channels come from the input",
            22,
        ),
        (
            "y = x -> reshape([N, 8, 8, 3]) -> conv(3, 16, 3)",
            "conv window 16 (kernel 16, dilation 1) does not fit axis 1 of size 8",
            "conv's arguments are (features, kernel, stride) and it reads the input channels from the input: "
            "PyTorch's Conv2d(3, 16, 3) is conv(16, 3)",
            37,
        ),
    ],
)
def test_a_pytorch_or_keras_name_says_what_specc_calls_it(
    line: str, message: str, hint: str, col: int
) -> None:
    d = error(f"  input x: f32[N, {192 if '3]' in line else 64}]\n  {line}\n  output y")
    assert message in d.message and d.hint == hint and at(d) == (3, col), (d.message, d.hint, at(d))
