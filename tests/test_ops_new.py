"""The lecture ops: pad, lrn, ceil-mode and count_pad pooling, None in subscripts, const, locally_connected, the hard
activations — each checked against JAX (types, parameter counts), against a NumPy reference of its formula, and for
located errors."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compile import assert_emitted_matches
from test_lower import FAST, _compiles, abstract_module, assert_counts_agree, assert_types_agree, env_of, load

from specc.backend.dot import to_dot
from specc.backend.flax import build_module
from specc.errors import SpecError
from specc.ir.graph import Graph

RNG = np.random.default_rng(0)


def ty(g: Graph, name: str = "y") -> Any:
    return g.type_of(g.value_map[name])


def run(g: Graph, **inputs: Any) -> dict[str, np.ndarray]:
    # jitted, as a train step runs it: eagerly, each of the op's primitives compiled alone (a pool: 0.5 s, not 0.1)
    out = nnx.jit(lambda m, xs: m(**xs))(build_module(g), inputs)
    return {k: np.asarray(v) for k, v in out.items()}


def error(text: str) -> Any:
    with pytest.raises(SpecError) as e:
        load(text)
    return e.value.diagnostics[0]


def one(inp: str, call: str) -> str:
    return f"model M {{\n  input x: {inp}\n  y = {call}\n  output y\n}}\n"


def column(text: str, d: Any) -> str:
    """The source text a diagnostic's span starts at."""
    line = text.splitlines()[d.span.line - 1]
    return line[d.span.col - 1 :]


# ---- pad ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "want"),
    [
        ("pad(x, 2)", "f32[N, 32, 32, 1]"),
        ("pad(x, (1, 0))", "f32[N, 30, 28, 1]"),
        ("pad(x, [(0, 1), (2, 3)])", "f32[N, 29, 33, 1]"),
        ("pad(x, 1, mode=reflect)", "f32[N, 30, 30, 1]"),
        ("pad(x, 3, mode=edge)", "f32[N, 34, 34, 1]"),
        ("pad(x, 1, value=-1)", "f32[N, 30, 30, 1]"),
    ],
)
def test_pad_shapes(call: str, want: str) -> None:
    assert str(ty(load(one("f32[N, 28, 28, 1]", call)))) == want


def test_pad_symbolic_and_1d() -> None:
    assert str(ty(load(one("f32[N, T, 8]", "x -> pad([(2, 0)])")))) == "f32[N, T + 2, 8]"


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_values_match_numpy(mode: str) -> None:
    g = load(one("f32[2, 5, 6, 3]", f"x -> pad([(1, 2), (3, 0)], mode={mode})"))
    x = RNG.normal(size=(2, 5, 6, 3)).astype(np.float32)
    want = np.pad(x, [(0, 0), (1, 2), (3, 0), (0, 0)], mode=mode)
    np.testing.assert_array_equal(run(g, x=x)["y"], want)


def test_pad_value_and_integers() -> None:
    g = load(one("u8[1, 2, 2, 1]", "x -> pad(1, value=255)"))
    x = np.arange(4, dtype=np.uint8).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(
        run(g, x=x)["y"], np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=255)
    )


def test_lenet5_reads_padded_mnist() -> None:
    g = load(
        "model LeNet5 {\n  input x: f32[N, 28, 28, 1]\n"
        "  y = x -> pad(2) -> conv(6, 5) -> avgpool(2) -> conv(16, 5) -> avgpool(2) : [N, 5, 5, 16]\n  output y\n}\n"
    )
    assert g.total_params == (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16)


@pytest.mark.parametrize(
    ("inp", "call", "arg", "words"),
    [
        ("f32[N, 4, 4, 1]", "pad(x, same)", "same", "number of elements"),
        ("f32[N, 4, 4, 1]", "pad(x, [1, 2, 3])", "[1, 2, 3]", "3 values"),
        ("f32[N, 4, 4, 1]", "pad(x, 4, mode=reflect)", "4", "smaller than the axis"),
        ("f32[N, H, 4, 1]", "pad(x, 1, mode=reflect)", "1", "unknown size"),
        ("f32[N, 4, 4, 1]", "pad(x, 1, mode=edge, value=3)", "value=3", "only used with mode=constant"),
        ("u8[N, 4, 4, 1]", "pad(x, 1, value=-1)", "value=-1", "does not fit"),
        ("i32[N, 4, 4, 1]", "pad(x, 1, value=0.5)", "value=0.5", "whole number"),
        ("f32[N, 0, 4, 1]", "pad(x, 1, mode=edge)", "1", "empty"),
        ("f32[N, 4, 4, 1]", "pad(x, 1, mode=wrap)", "mode=wrap", "constant, reflect, edge"),
        ("f32[N, 16]", "pad(x, 1)", None, "rank 3 to 5"),
    ],
)
def test_pad_errors_are_located_at_the_argument(inp: str, call: str, arg: str | None, words: str) -> None:
    text = one(inp, call)
    d = error(text)
    assert words in d.message
    if arg is not None:
        assert column(text, d).startswith(arg), (column(text, d), d.message)


# ---- lrn ------------------------------------------------------------------------------------------


def lrn_reference(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Krizhevsky et al. 2012, §3.3, with Caffe's alpha/size: b_c = a_c / (k + alpha/n Σ_{j near c} a_j²)^beta."""
    c = x.shape[-1]
    out = np.empty_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        scale = k + alpha / size * (x[..., lo:hi].astype(np.float64) ** 2).sum(-1)
        out[..., i] = x[..., i] / scale**beta
    return out


@pytest.mark.parametrize(
    ("args", "params"),
    [
        ("", (5, 1e-4, 0.75, 2.0)),
        ("size=3, alpha=0.5, beta=0.5, k=1", (3, 0.5, 0.5, 1.0)),
        ("4", (4, 1e-4, 0.75, 2.0)),
    ],
)
def test_lrn_matches_the_formula(args: str, params: tuple[int, float, float, float]) -> None:
    g = load(one("f32[2, 3, 3, 7]", f"x -> lrn({args})"))
    x = (RNG.normal(size=(2, 3, 3, 7)) * 3).astype(np.float32)
    np.testing.assert_allclose(run(g, x=x)["y"], lrn_reference(x, *params), rtol=1e-5, atol=1e-6)


def test_lrn_types_and_errors() -> None:
    assert str(ty(load(one("bf16[N, 4, 4, 8]", "x -> lrn")))) == "bf16[N, 4, 4, 8]"
    assert "float" in error(one("i32[N, 4, 4, 8]", "x -> lrn")).message
    text = one("f32[N, 4, 4, 8]", "x -> lrn(size=0)")
    assert column(text, error(text)).startswith("size=0")
    text = one("f32[N, 4, 4, 8]", "x -> lrn(k=-1)")
    assert column(text, error(text)).startswith("k=-1")


# ---- ceil-mode and count_pad pooling ----------------------------------------------------------------


def caffe_pooled(size: int, k: int, s: int, pad: int) -> int:
    """caffe/src/caffe/layers/pooling_layer.cpp, Reshape."""
    pooled = math.ceil((size + 2 * pad - k) / s) + 1
    if pad and (pooled - 1) * s >= size + pad:
        pooled -= 1
    return pooled


def pool_reference(
    x: np.ndarray,
    kind: str,
    k: int,
    s: int,
    pads: list[tuple[int, int]],
    out: tuple[int, ...],
    count_pad: bool,
) -> np.ndarray:
    """Caffe's forward pass (MAX / AVE), generalised to (lo, hi) pads and torch's count_include_pad=False."""
    n, c = x.shape[0], x.shape[-1]
    y = np.zeros((n, *out, c))
    for idx in np.ndindex(*out):
        sl, area = [], 1
        for ax, i in enumerate(idx):
            size, (lo, hi) = x.shape[1 + ax], pads[ax]
            start = i * s - lo
            end = min(start + k, size + hi)
            area *= end - start  # the window clipped to the padded input (Caffe's pool_size)
            start, end = max(start, 0), min(end, size)
            sl.append(slice(start, end))
        win = x[(slice(None), *sl, slice(None))]
        if kind == "max":
            y[(slice(None), *idx, slice(None))] = win.max(axis=tuple(range(1, x.ndim - 1)))
        else:
            real = math.prod(sz.stop - sz.start for sz in sl)
            y[(slice(None), *idx, slice(None))] = win.sum(axis=tuple(range(1, x.ndim - 1))) / (
                area if count_pad else real
            )
    return y


def test_cifar10_quick_sizes() -> None:
    """Caffe's cifar10_quick: 32 → conv5 pad 2 → pool 3/2 (ceil) 16 → conv → pool 8 → conv → pool 4."""
    g = load(
        "model Quick {\n  input x: f32[N, 32, 32, 3]\n"
        "  y = x -> conv(32, 5, padding=2) -> maxpool(3, stride=2, ceil=true) -> relu\n"
        "      -> conv(32, 5, padding=2) -> relu -> avgpool(3, stride=2, ceil=true)\n"
        "      -> conv(64, 5, padding=2) -> relu -> avgpool(3, stride=2, ceil=true) : [N, 4, 4, 64]\n"
        "  output y\n}\n"
    )
    assert g.total_params == (5 * 5 * 3 * 32 + 32) + (5 * 5 * 32 * 32 + 32) + (5 * 5 * 32 * 64 + 64)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 13),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    pad=st.integers(0, 3),
    kind=st.sampled_from(["max", "avg"]),
    count_pad=st.booleans(),
)
def test_ceil_pool_sizes_and_values_match_caffe(
    size: int, k: int, s: int, pad: int, kind: str, count_pad: bool
) -> None:
    if pad >= k or caffe_pooled(size, k, s, pad) < 1:
        return  # Caffe refuses pad >= kernel; a window that does not fit is an error here too
    if pad == 0 and s > k:
        return  # there Caffe lets the last window start past the input; torch's ceil_mode and specc do not
    opts = f", count_pad={'true' if count_pad else 'false'}" if kind == "avg" else ""
    g = load(
        one(
            f"f32[2, {size}, {size + 1}, 2]",
            f"x -> {kind}pool({k}, stride={s}, padding={pad}, ceil=true{opts})",
        )
    )
    out = (caffe_pooled(size, k, s, pad), caffe_pooled(size + 1, k, s, pad))
    assert tuple(d.value for d in ty(g).dims[1:3]) == out
    x = RNG.normal(size=(2, size, size + 1, 2)).astype(np.float32)
    want = pool_reference(x, kind, k, s, [(pad, pad)] * 2, out, count_pad)
    np.testing.assert_allclose(run(g, x=x)["y"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pads", ["1", "[(1, 0), (0, 1)]", "(1, 1)"])
def test_count_pad_false_divides_by_real_elements(pads: str) -> None:
    g = load(one("f32[2, 5, 6, 3]", f"x -> avgpool(3, stride=2, padding={pads}, count_pad=false)"))
    p = load(one("f32[2, 5, 6, 3]", f"x -> avgpool(3, stride=2, padding={pads})"))
    assert ty(g) == ty(p)
    lohi = {"1": [(1, 1)] * 2, "[(1, 0), (0, 1)]": [(1, 0), (0, 1)], "(1, 1)": [(1, 1)] * 2}[pads]
    out = tuple(d.value for d in ty(g).dims[1:3])
    x = RNG.normal(size=(2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(
        run(g, x=x)["y"], pool_reference(x, "avg", 3, 2, lohi, out, False), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        run(p, x=x)["y"], pool_reference(x, "avg", 3, 2, lohi, out, True), rtol=1e-5, atol=1e-6
    )


def test_count_pad_false_with_same_padding() -> None:
    g = load(one("f32[1, 5, 5, 1]", "x -> avgpool(2, stride=2, padding=same, count_pad=false)"))
    x = np.ones((1, 5, 5, 1), np.float32)
    np.testing.assert_allclose(run(g, x=x)["y"], np.ones((1, 3, 3, 1)))


def test_ceil_pool_symbolic_sizes() -> None:
    t = ty(load(one("f32[N, H, W, 8]", "x -> maxpool(3, stride=2, ceil=true)")))
    assert t.dims[1].subst({"H": 7}).as_int() == caffe_pooled(7, 3, 2, 0) == 3
    assert t.dims[1].subst({"H": 8}).as_int() == caffe_pooled(8, 3, 2, 0) == 4
    # whether the last window starts in the padding depends on the size: refused, located
    d = error(one("f32[N, H, 8, 8]", "x -> maxpool(2, stride=2, padding=1, ceil=true)"))
    assert "symbolic" in d.message


@pytest.mark.parametrize(
    ("call", "arg", "words"),
    [
        ("maxpool(x, 2, padding=same, ceil=true)", "ceil=true", "same already sizes"),
        ("avgpool(x, 2, padding=2, count_pad=false)", "padding=2", "no real element"),
        ("maxpool(x, 2, count_pad=false)", "count_pad", "no parameter"),
        ("maxpool(x, 2, ceil=1)", "ceil=1", "true or false"),
        ("maxpool(x, 12, stride=1, ceil=true)", None, "does not fit"),
    ],
)
def test_pool_option_errors(call: str, arg: str | None, words: str) -> None:
    text = one("f32[N, 8, 8, 3]", call)
    d = error(text)
    assert words in d.message
    if arg is not None:
        assert column(text, d).startswith(arg), (column(text, d), d.message)


def test_pool_labels() -> None:
    g = load(one("f32[N, 8, 8, 3]", "x -> avgpool(3, stride=2, ceil=true, count_pad=false)"))
    assert "avgpool 3×3 /2 ceil" in to_dot(g)


# ---- None in subscripts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        "None",
        ":, None",
        "None, ...",
        "..., None",
        ":, None, 0",
        "None, :, None, 1:",
        "0, None, ..., None",
        "None, None",
    ],
)
def test_none_subscripts_agree_with_numpy(sub: str) -> None:
    g = load(one("f32[2, 3, 4]", f"x[{sub}]"))
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    want = eval(f"x[{sub}]", {"x": x})  # NumPy's own reading of the same subscript
    assert tuple(d.value for d in ty(g).dims) == want.shape
    np.testing.assert_array_equal(run(g, x=x)["y"], want)


def test_none_subscript_symbolic_and_label() -> None:
    g = load(one("f32[N, T]", "x[:, None]"))
    assert str(ty(g)) == "f32[N, 1, T]"
    assert "[:, None]" in to_dot(g)
    assert "too many indices" in error(one("f32[N]", "x[0, None, 1]")).message


def test_a_bound_name_None_is_still_a_value() -> None:
    text = "let None = 1\nmodel M {\n  input x: f32[N, 3]\n  y = x[:, None]\n  output y\n}\n"
    assert str(ty(load(text))) == "f32[N]"


# ---- const ------------------------------------------------------------------------------------------


EDGE = "const([[1, 0, -1], [1, 0, -1], [1, 0, -1]])"


def test_const_types_and_values() -> None:
    g = load(
        f"model M {{\n  k = {EDGE}\n  j = const([[1, 2]], dtype=i32)\n  s = const(2.5)\n  output k, j, s\n}}\n"
    )
    assert [str(ty(g, v)) for v in "kjs"] == ["f32[3, 3]", "i32[1, 2]", "f32[]"]
    out = run(g)
    np.testing.assert_array_equal(out["k"], np.array([[1, 0, -1]] * 3, np.float32))
    assert out["j"].dtype == np.int32 and out["s"] == 2.5
    assert g.total_params == 0


def test_const_in_expressions() -> None:
    """The convolution-arithmetic slides: a given kernel applied to image patches, broadcasting and `@`."""
    g = load(
        "let W = 3\nmodel M {\n  input x: f32[N, 4, 3]\n"
        f"  k = {EDGE}\n"
        "  y = x @ k\n  z = x * const([1, W, 0]) + const(1)\n  output y, z\n}\n"
    )
    assert str(ty(g)) == "f32[N, 4, 3]" and str(ty(g, "z")) == "f32[N, 4, 3]"
    x = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    out = run(g, x=x)
    np.testing.assert_allclose(out["y"], x @ np.array([[1, 0, -1]] * 3, np.float32), rtol=1e-6)
    np.testing.assert_allclose(out["z"], x * np.array([1, 3, 0], np.float32) + 1, rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("const([[1, 2], [3]])", "ragged"),
        ("const([1.5], dtype=i32)", "not a i32"),
        ("const([300], dtype=u8)", "not a u8"),
        ('const(["a"])', "nested list of numbers"),
        ("const([N])", "nested list of numbers"),
        ("const([1], dtype=f8)", "a dtype"),
    ],
)
def test_const_errors_are_located(call: str, words: str) -> None:
    text = f"model M {{\n  y = {call}\n  output y\n}}\n"
    d = error(text)
    assert words in d.message
    assert column(text, d).startswith(call[6:] if "dtype=f8" not in call else "dtype=f8"), column(text, d)


# ---- locally_connected ----------------------------------------------------------------------------


def test_locally_connected_parameter_count_is_keras() -> None:
    g = load(one("f32[N, 28, 28, 3]", "x -> locally_connected(8, 3)"))
    assert str(ty(g)) == "f32[N, 26, 26, 8]"
    assert g.total_params == 26 * 26 * (3 * 3 * 3 * 8) + 26 * 26 * 8
    g = load(one("f32[N, 10, 4]", "x -> locally_connected(5, 3, stride=2, bias=false)"))
    assert str(ty(g)) == "f32[N, 4, 5]" and g.total_params == 4 * 3 * 4 * 5


def test_locally_connected_matches_numpy() -> None:
    g = load(one("f32[2, 6, 5, 3]", "x -> locally_connected(4, (3, 2), stride=(2, 1))"))
    m = build_module(g)
    layer = m.layers[m.plan.by_name["y"].key]
    w, b = np.asarray(layer["kernel"][...]), np.asarray(layer["bias"][...])
    b = RNG.normal(size=b.shape).astype(np.float32)
    layer["bias"].set_value(b)
    x = RNG.normal(size=(2, 6, 5, 3)).astype(np.float32)
    got = np.asarray(m(x=x)["y"])
    oh, ow = w.shape[:2]
    want = np.zeros((2, oh, ow, 4))
    for i in range(oh):
        for j in range(ow):
            patch = x[
                :, 2 * i : 2 * i + 3, j : j + 2, :
            ]  # [N, kh, kw, C], flattened channel-major as lax does
            want[:, i, j] = patch.transpose(0, 3, 1, 2).reshape(2, -1) @ w[i, j] + b[i, j]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("inp", "call", "words"),
    [
        ("f32[N, H, 8, 3]", "locally_connected(x, 4, 3)", "known number"),
        ("f32[N, 8, 8, 3]", "locally_connected(x, 4, 9)", "does not fit"),
        ("f32[N, 4, 4, 4, 3]", "locally_connected(x, 4, 3)", "rank 3 to 4"),
        ("i32[N, 8, 8, 3]", "locally_connected(x, 4, 3)", "float"),
        ("f32[N, 8, 8, 3]", "locally_connected(x, 0, 3)", "at least 1"),
    ],
)
def test_locally_connected_errors(inp: str, call: str, words: str) -> None:
    assert words in error(one(inp, call)).message


# ---- against JAX: types, counts, emitted Flax, XLA --------------------------------------------------

ALL_NEW = """
model New {
  input x: f32[N, 28, 28, 3]
  input s: f32[N, 10, 4]
  k = const([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
  p = x -> pad(2) -> pad([(1, 0), (0, 1)], mode=reflect) -> pad(1, mode=edge) -> pad(1, value=0.5)
  c = p -> conv(8, 5) -> lrn -> maxpool(3, stride=2, ceil=true)
      -> avgpool(3, stride=2, padding=1, ceil=true, count_pad=false)
      -> avgpool(2, padding=1, count_pad=false) -> avgpool(3, stride=2, padding=1, ceil=true)
  l = c -> locally_connected(4, 2) -> lrn(3, alpha=0.1, beta=0.5, k=1)
  q = s -> locally_connected(6, 3, stride=2, bias=false) -> lrn(2)
  e = l[:, None, ..., None] * 2
  m = x[:, 0, 0:3, :] @ k + const(1.5)
  output c, l, q, e, m
}
"""


def test_new_ops_types_and_counts_agree_with_jax() -> None:
    g = load(ALL_NEW)
    m = abstract_module(g)
    assert_counts_agree(g, m)
    assert assert_types_agree(g, m, env_of(g)) >= len(g.nodes)


def test_new_ops_emitted_flax_matches(tmp_path: Any) -> None:
    assert_emitted_matches(load(ALL_NEW), tmp_path)


def test_new_ops_are_differentiable() -> None:
    g = load(ALL_NEW)
    graphdef, state = nnx.split(build_module(g, abstract=True))
    x = {
        "x": jax.ShapeDtypeStruct((2, 28, 28, 3), np.float32),
        "s": jax.ShapeDtypeStruct((2, 10, 4), np.float32),
    }

    def loss(state: Any, x: Any) -> Any:
        out = nnx.merge(graphdef, state)(x)
        return sum(v.sum() for v in out.values())

    grads = jax.eval_shape(jax.grad(loss), state, x)
    assert jax.tree.structure(grads) == jax.tree.structure(state)


@st.composite
def pool_calls(draw: Any) -> str:
    """Random ceil/count_pad pools (the shared oracle draws these options rarely)."""
    rank = draw(st.integers(1, 2))
    dims = [draw(st.integers(0, 9)) for _ in range(rank)]
    kind = draw(st.sampled_from(["max", "avg"]))
    opts = [f"{draw(st.integers(1, 4))}"]
    if draw(st.booleans()):
        opts.append(f"stride={draw(st.integers(1, 4))}")
    opts.append(
        f"padding={draw(st.sampled_from(['valid', 'same', '0', '1', '2', '[(0, 1)]', '[(2, 0), (1, 1)]']))}"
    )
    opts.append(f"ceil={draw(st.sampled_from(['true', 'false']))}")
    if kind == "avg":
        opts.append(f"count_pad={draw(st.sampled_from(['true', 'false']))}")
    dtype = draw(st.sampled_from(["f32", "bf16", "i32"]))
    return one(f"{dtype}[N, {', '.join(map(str, dims))}, 2]", f"{kind}pool(x, {', '.join(opts)})")


@FAST
@given(pool_calls())
def test_every_pool_call_that_checks_compiles(text: str) -> None:
    _compiles(text)


# ---- convolve: a kernel that is a tensor ---------------------------------------------------------------


def test_convolve_with_a_const_kernel_matches_numpy() -> None:
    """The convolution-arithmetic slides: a given 3×3 edge filter slid over a single-channel image."""
    g = load(
        "model M {\n  input x: f32[N, 5, 6, 1]\n"
        f"  k = {EDGE}\n"
        "  y = convolve(x, k)\n  z = convolve(x, k, stride=2, padding=1)\n  output y, z\n}\n"
    )
    assert str(ty(g)) == "f32[N, 3, 4, 1]" and str(ty(g, "z")) == "f32[N, 3, 3, 1]"
    assert g.total_params == 0
    x = RNG.normal(size=(2, 5, 6, 1)).astype(np.float32)
    kern = np.array([[1, 0, -1]] * 3, np.float32)
    want = np.zeros((2, 3, 4, 1), np.float32)
    for i in range(3):
        for j in range(4):
            want[:, i, j, 0] = (x[:, i : i + 3, j : j + 3, 0] * kern).sum(
                (1, 2)
            )  # cross-correlation, as in CNNs
    out = run(g, x=x)
    np.testing.assert_allclose(out["y"], want, rtol=1e-5, atol=1e-5)
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    want_z = np.zeros((2, 3, 3, 1), np.float32)
    for i in range(3):
        for j in range(3):
            want_z[:, i, j, 0] = (xp[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, 0] * kern).sum((1, 2))
    np.testing.assert_allclose(out["z"], want_z, rtol=1e-5, atol=1e-5)


def test_convolve_full_kernel_and_errors() -> None:
    g = load(
        "model M {\n  input x: f32[N, 8, 8, 3]\n  param w: [3, 3, 3, 4]\n  y = convolve(x, w, padding=same)\n"
        "  output y\n}\n"
    )
    assert str(ty(g)) == "f32[N, 8, 8, 4]"
    assert (
        "input channels"
        in error(
            "model M {\n  input x: f32[N, 8, 8, 3]\n  param w: [3, 3, 2, 4]\n  y = convolve(x, w)\n  output y\n}\n"
        ).message
    )
    assert (
        "kernel for 2 spatial axes"
        in error(
            "model M {\n  input x: f32[N, 8, 8, 3]\n  y = convolve(x, const([1, 2]))\n  output y\n}\n"
        ).message
    )
    assert (
        "one dtype"
        in error(
            "model M {\n  input x: f32[N, 8, 8, 1]\n  y = convolve(x, const([[1]], dtype=i32))\n  output y\n}\n"
        ).message
    )


CONVOLVE = """
model C {
  input x: f32[N, 9, 9, 2]
  param w: [2, 2, 2, 3]
  k = const([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
  y = convolve(x, k, padding=[(1, 0), (0, 2)], dilation=2) -> convolve(w, stride=2)
  output y
}
"""


def test_convolve_types_and_emitted_flax(tmp_path: Any) -> None:
    g = load(CONVOLVE)
    m = abstract_module(g)
    assert_counts_agree(g, m)
    assert assert_types_agree(g, m, env_of(g)) >= len(g.nodes)
    assert_emitted_matches(g, tmp_path)


# ---- relu6, hard_sigmoid, hard_swish: MobileNetV2's and V3's activations -------------------------------

HARD = """
model Mobile {
  input x: f32[N, 8]
  a = x -> relu6
  s = x -> hard_sigmoid
  w = x -> hard_swish
  c = x -> dense(4) -> hard_swish -> dense(2) -> relu6
  output a, s, w, c
}
"""


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 6.0)


def test_hard_activations_match_pytorchs_formulas() -> None:
    """PyTorch: ReLU6 = min(max(x, 0), 6), Hardsigmoid = relu6(x + 3) / 6, Hardswish = x * relu6(x + 3) / 6."""
    x = np.array([[-7.0, -3.0, -1.5, 0.0, 1.5, 3.0, 6.0, 7.0]], np.float32)
    out = run(load(HARD), x=x)
    np.testing.assert_allclose(out["a"], _relu6(x), rtol=1e-6)
    np.testing.assert_allclose(out["s"], _relu6(x + 3) / 6, rtol=1e-6)
    np.testing.assert_allclose(out["w"], x * _relu6(x + 3) / 6, rtol=1e-6)
    # the points spelled out: -3 and 3 are the hard sigmoid's corners, 6 relu6's
    np.testing.assert_allclose(out["a"][0], [0, 0, 0, 0, 1.5, 3, 6, 6])
    np.testing.assert_allclose(out["s"][0], [0, 0, 0.25, 0.5, 0.75, 1, 1, 1])
    np.testing.assert_allclose(out["w"][0], [0, 0, -0.375, 0, 1.125, 3, 6, 7])


def test_hard_activations_check_emit_and_refuse_integers(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from specc.cli import main

    spec = tmp_path / "mobile.net"
    spec.write_text(HARD)
    r = CliRunner().invoke(main, ["check", str(spec)])
    assert r.exit_code == 0, r.output
    g = load(HARD)
    assert str(ty(g, "w")) == "f32[N, 8]" and str(ty(g, "c")) == "f32[N, 2]"
    assert_emitted_matches(g, tmp_path)
    for name in ("relu6", "hard_sigmoid", "hard_swish"):
        assert "float" in error(one("i32[N, 4]", f"x -> {name}")).message
