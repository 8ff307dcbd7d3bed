"""Every alternative lowering against its op's reference one, forward and gradients, over generated configurations.

Tolerances: max-pool (tiled and sliced) must match reduce_window exactly (values and gradients, ties included: a
tied window's gradient goes to its first maximum, as XLA's select_and_scatter gives it); avgpool and the conv and
conv_transpose rewrites (a matmul sums in another order than XLA's convolution) within rtol 1e-5 / atol 1e-5 in
float32, on inputs of order one; the fused batch and layer norms within rtol 1e-4 / atol 1e-4 of the largest value
compared (their gradients scale with 1/std: on a constant input they are of order 1/sqrt(eps) ≈ 316). Inputs are drawn
normal, tied (small integers) or constant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.backend.flax import (
    ApplyContext,
    BuildContext,
    build_layer,
    build_module,
    choose_lowering,
    compiler_options,
    data_shards,
    lowering_names,
)
from specc.ops import conv as conv_op
from specc.ops._registry import Lowering, OpDef, all_ops, get_op

RTOL = ATOL = 1e-5
NORM_TOL = 1e-4

EXPORT_ONLY = {"channels_first", "arithmetic"}  # forward-only forms for ONNX (tests/test_export.py)


@pytest.fixture(autouse=True, scope="module")
def _shifted_wgrad_at_every_size() -> Any:
    """The shifted weight gradient takes over from 2M or 1M input values (`_shifted_wgrad_apply`): here at every size,
    so that the small generated cases test it (its threshold is tested on its own, below)."""
    saved = conv_op.SHIFTED_WGRAD_MIN_VALUES, conv_op.SHIFTED_WGRAD_STRIDED_MIN_VALUES
    conv_op.SHIFTED_WGRAD_MIN_VALUES = conv_op.SHIFTED_WGRAD_STRIDED_MIN_VALUES = 0
    yield
    conv_op.SHIFTED_WGRAD_MIN_VALUES, conv_op.SHIFTED_WGRAD_STRIDED_MIN_VALUES = saved


def one_op(shape: tuple[int, ...], call: str) -> tuple[OpDef, Any, dict[str, Any], tuple[Any, ...]]:
    """The op, node, attributes and input types of `y = x -> call` over an f32 input of `shape` (batch included)."""
    dims = ", ".join(str(d) for d in shape)
    g = specc.load(
        "t.net", text=f"model M {{\n input x: f32[{dims}]\n y = x -> {call}\n output y\n}}"
    ).graph()
    node = next(n for n in g.nodes if n.op not in ("input", "param", "const"))
    op = get_op(node.op)
    assert op is not None
    return op, node, node.attr, tuple(g.type_of(r) for r in node.inputs)


def forms_that_apply(op: OpDef, attrs: dict[str, Any], types: tuple[Any, ...]) -> list[Lowering]:
    """The alternatives that can run this call: every one whose `applies` holds, the shapes the CPU rule rejects
    included (`--lowering measure` may pick them). Where the rule picks a form, it must apply."""
    out = []
    for lw in op.lowerings[1:]:
        if lw.name in EXPORT_ONLY:
            continue
        assert lw.applies is not None and lw.when is not None
        if lw.when(attrs, types, "cpu"):
            assert lw.applies(attrs, types), f"the CPU rule picks {lw.name}, which does not apply"
        if lw.applies(attrs, types):
            out.append(lw)
    return out


_PROGRAMS: dict[str, Any] = {}  # one compiled check per (op, attributes, input types, lowering): inputs vary


def value_and_grads(
    op: OpDef, attrs: dict[str, Any], types: tuple[Any, ...], lw: Lowering, x: np.ndarray, w: int | np.ndarray
) -> tuple[Any, Any, Any]:
    """y, d sum(y*w)/dx and d sum(y*w)/d parameters, with parameters initialised alike for every lowering; `w` an
    array broadcast to y's shape, or a seed to draw it from. One jitted program (cheaper than op-by-op here)."""
    key = repr((op.name, sorted(attrs.items()), [str(t) for t in types], lw.name))
    if key not in _PROGRAMS:
        build = op.lowerings[0].build
        module = build_layer(build, attrs, types) if build is not None else nnx.Dict()
        gd, state = nnx.split(module)
        ctx = ApplyContext({})

        def forward(state: Any, x: Any) -> Any:
            return lw.apply(nnx.merge(gd, state) if build is not None else None, attrs, [x], ctx)

        def program(state: Any, x: Any, w: Any) -> Any:
            y, vjp = jax.vjp(forward, state, x)
            gs, gx = vjp(jnp.broadcast_to(jnp.asarray(w, y.dtype), y.shape))
            return y, gx, gs

        # compiled as a train step of a model with this op is (a conv's with XLA:CPU's older emitters)
        run = jax.jit(program, compiler_options=compiler_options([op.name]))
        _PROGRAMS[key] = (run, forward, state)
    run, forward, state = _PROGRAMS[key]
    if isinstance(w, int):
        w = np.random.default_rng(w).normal(size=jax.eval_shape(forward, state, x).shape).astype(np.float32)
    return run(state, jnp.asarray(x), w)  # type: ignore[no-any-return]


def inputs(kind: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "tied":
        return rng.integers(0, 3, shape).astype(np.float32)
    if kind == "constant":
        return np.full(shape, 0.5, np.float32)
    return rng.normal(size=shape).astype(np.float32)


def close(a: Any, b: Any, msg: str, exact: bool, norm: bool) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if exact:
        np.testing.assert_array_equal(a, b, err_msg=msg)
    elif norm:
        tol = NORM_TOL * max(1.0, float(np.abs(b).max(initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=NORM_TOL, atol=tol, err_msg=msg)
    else:
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=msg)


def check_alternatives(shape: tuple[int, ...], call: str, kind: str, seed: int, exact: bool) -> int:
    op, _, attrs, types = one_op(shape, call)
    x = inputs(kind, shape, seed)
    ref = value_and_grads(op, attrs, types, op.lowerings[0], x, seed + 1)
    forms = forms_that_apply(op, attrs, types)
    for lw in forms:
        got = value_and_grads(op, attrs, types, lw, x, seed + 1)
        for what, a, b in zip(("value", "input gradient", "parameter gradient"), got, ref, strict=True):
            for la, lb in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
                if la.dtype == jax.dtypes.float0:  # an integer variable's (an RNN's step count): no gradient
                    continue
                msg = f"{lw.name} vs reference, {what}, {call} on {shape} ({kind})"
                close(la, lb, msg, exact, op.name in ("batchnorm", "layernorm"))
    return len(forms)


# 4 examples a run keep CI within its budget; `--hypothesis-seed` varies them between runs
PROPERTY = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KIND = st.sampled_from(["normal", "tied", "constant"])


@st.composite
def conv_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same", "0", "1", "2", "((1, 0), (2, 1))"]))
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    covers = draw(st.booleans())  # half the cases: the kernel as large as the map (the dense form)
    h = kh if covers else draw(st.integers(kh, kh + 6))
    w = kw if covers else draw(st.integers(kw, kw + 6))
    if covers:
        padding = "valid"
    bias = draw(st.booleans())
    call = (
        f"conv({cout}, ({kh}, {kw}), stride={stride}, padding={padding}, bias={'true' if bias else 'false'})"
    )
    return (draw(st.integers(1, 3)), h, w, cin), call


@st.composite
def depthwise_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    """groups = channels = features (MobileNet's 3×3 depthwise convs), strided and padded alike."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from(["1", "2", "(2, 1)", "3"]))
    padding = draw(st.sampled_from(["valid", "same", "1", "((1, 0), (2, 1))"]))
    c = draw(st.integers(2, 5))
    h, w = draw(st.integers(kh, kh + 6)), draw(st.integers(kw, kw + 6))
    bias = "true" if draw(st.booleans()) else "false"
    call = f"conv({c}, ({kh}, {kw}), stride={stride}, padding={padding}, groups={c}, bias={bias})"
    return (draw(st.integers(1, 3)), h, w, c), call


@st.composite
def grouped_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    """groups > 1 that are not depthwise (ResNeXt's, AlexNet's two halves), 1-D and 2-D, strided, padded, dilated."""
    g, cpg, opg = draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if cpg == opg == 1:
        opg = 2  # (one channel in and out a group is the depthwise form's, in 2-D)
    rank = draw(st.sampled_from([1, 2]))
    ks = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["valid", "same", "1"]))
    stride = draw(st.integers(1, 2)) if dilation == 1 else 1
    spatial = [draw(st.integers((k - 1) * dilation + 1, (k - 1) * dilation + 6)) for k in ks]
    bias = "true" if draw(st.booleans()) else "false"
    kernel = f"({ks[0]}, {ks[1]})" if rank == 2 else str(ks[0])
    call = (
        f"conv({g * opg}, {kernel}, stride={stride}, padding={padding}, dilation={dilation}, groups={g}, "
        f"bias={bias})"
    )
    return (draw(st.integers(1, 3)), *spatial, g * cpg), call


@st.composite
def pool_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    """Half the cases tile the input (the tiled form), half overlap, pad or clip (ceil mode): the sliced form."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    shape = (draw(st.integers(1, 3)), 0, 0, draw(st.integers(1, 3)))
    if draw(st.booleans()):
        h, w = kh * draw(st.integers(1, 4)), kw * draw(st.integers(1, 4))
        return (shape[0], h, w, shape[3]), f"{kind}(({kh}, {kw}))"
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    ceil = draw(st.booleans())
    padding = "same" if not ceil and draw(st.booleans()) else f"(({ph}, {ph}), ({pw}, {pw}))"
    extra = ", count_pad=false" if kind == "avgpool" and padding != "same" and draw(st.booleans()) else ""
    h, w = draw(st.integers(kh, kh + 6)), draw(st.integers(kw, kw + 6))
    call = f"{kind}(({kh}, {kw}), stride=({sh}, {sw}), padding={padding}, ceil={str(ceil).lower()}{extra})"
    return (shape[0], h, w, shape[3]), call


@st.composite
def transpose_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 4)),
    )
    padding = draw(st.sampled_from(["valid", "same", "int"]))
    if padding == "int":  # PyTorch's padding: the full output cropped by p a side, p ≤ k - 1, leaving ≥ 1
        ph = draw(st.integers(0, min(kh - 1, ((shape[1] - 1) * sh + kh - 1) // 2)))
        pw = draw(st.integers(0, min(kw - 1, ((shape[2] - 1) * sw + kw - 1) // 2)))
        padding = f"({ph}, {pw})"
    bias = "true" if draw(st.booleans()) else "false"
    call = f"conv_transpose({draw(st.integers(1, 4))}, ({kh}, {kw}), stride=({sh}, {sw}), padding={padding}, bias={bias})"
    return shape, call


@st.composite
def norm_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    batch, ch = draw(st.integers(2, 6)), draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (3, 2)]))
    eps, momentum = draw(st.sampled_from([1e-5, 1e-3])), draw(st.sampled_from([0.9, 0.5]))
    return (batch, *spatial, ch), f"batchnorm(momentum={momentum}, eps={eps})"


@PROPERTY
@given(conv_cases(), KIND, st.integers(0, 2**16))
def test_conv_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) >= 1  # im2col applies to every 2-D case


@PROPERTY
@given(depthwise_cases(), KIND, st.integers(0, 2**16))
def test_depthwise_conv_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1  # the shifted form only (groups > 1)


@PROPERTY
@given(grouped_cases(), KIND, st.integers(0, 2**16))
def test_grouped_conv_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1  # the groups written out


@PROPERTY
@given(pool_cases(), KIND, st.integers(0, 2**16))
def test_pool_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=call.startswith("maxpool")) >= 1  # slices: all


@PROPERTY
@given(transpose_cases(), KIND, st.integers(0, 2**16))
def test_conv_transpose_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1


@PROPERTY
@given(norm_cases(), KIND, st.integers(0, 2**16))
def test_batchnorm_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1


@st.composite
def layernorm_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    lead = draw(st.sampled_from([(2,), (3, 5), (2, 3, 2)]))
    return (*lead, draw(st.integers(1, 8))), f"layernorm(eps={draw(st.sampled_from([1e-6, 1e-5, 1e-3]))})"


@PROPERTY
@given(layernorm_cases(), KIND, st.integers(0, 2**16))
def test_layernorm_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    """The fused form's closed-form gradient against autodiff through Flax's LayerNorm; a constant input's
    gradients are of order 1/sqrt(eps), hence the norms' tolerance."""
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1


@st.composite
def lstm_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 4)))
    ret = draw(st.sampled_from(["sequence", "last"]))
    both = "true" if draw(st.booleans()) else "false"
    op = draw(st.sampled_from(["lstm({h}", "rnn({h}, cell=lstm"]))
    return shape, op.format(h=draw(st.integers(1, 5))) + f", return={ret}, bidirectional={both})"


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # 2 scans each
@given(lstm_cases(), KIND, st.integers(0, 2**16))
def test_lstm_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1


def test_the_lstm_vjp_form_starts_from_a_given_state_and_returns_its_final_state_as_the_reference() -> None:
    """`src -> lstm(h0, c0, H, return_state=true)` (a seq2seq encoder/decoder): outputs, final h and c, and the
    gradients w.r.t. the input, both initial states and the weights, within the stated tolerance."""
    g = specc.load(
        "t.net",
        text="""
model S {
  input x: f32[N, 7, 3]
  input h0: f32[N, 5]
  input c0: f32[N, 5]
  y, h, c = x -> lstm(h0, c0, 5, return=last, return_state=true)
  output y, h, c
}""",
    ).graph()
    fast, ref = build_module(g, platform="cpu"), build_module(g, platform="reference")
    assert set(lowering_names(fast).values()) == {"vjp"} and set(lowering_names(ref).values()) == {
        "reference"
    }
    rng = np.random.default_rng(0)
    feed = {
        k: rng.normal(size=s).astype(np.float32)
        for k, s in (("x", (4, 7, 3)), ("h0", (4, 5)), ("c0", (4, 5)))
    }
    w = {k: rng.normal(size=(4, 5)).astype(np.float32) for k in ("y", "h", "c")}

    def loss(module: Any, feed: dict[str, Any]) -> Any:
        out = module(**feed)
        return sum(jnp.sum(out[k] * w[k]) for k in w)

    results = []
    for module in (fast, ref):
        outs = module(**feed)
        gm, gx = nnx.jit(nnx.grad(loss, argnums=(0, 1)))(module, feed)  # one compile, not op by op
        results.append((outs, jax.tree.leaves(nnx.state(gm, nnx.Param)), gx))
    (o1, p1, x1), (o2, p2, x2) = results
    for k in ("y", "h", "c"):
        np.testing.assert_allclose(o1[k], o2[k], rtol=RTOL, atol=ATOL)
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    for k in feed:
        np.testing.assert_allclose(x1[k], x2[k], rtol=RTOL, atol=ATOL)


@st.composite
def attention_cases(draw: Any) -> tuple[tuple[int, ...], str]:
    heads = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 5)), heads * draw(st.integers(1, 3)))
    width = f", features={heads * draw(st.integers(1, 3))}" if draw(st.booleans()) else ""
    causal = ", causal=true" if draw(st.booleans()) else ""
    return shape, f"attention({heads}{width}{causal})"


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # 2 programs each
@given(attention_cases(), KIND, st.integers(0, 2**16))
def test_attention_alternatives_match_the_reference(case: Any, kind: str, seed: int) -> None:
    shape, call = case
    assert check_alternatives(shape, call, kind, seed, exact=False) == 1


def test_the_fused_attention_reads_a_memory_as_the_reference() -> None:
    """A decoder's cross-attention (keys and values from a memory of another length and width) beside its causal
    self-attention: outputs and gradients w.r.t. both inputs and every weight, within the stated tolerance."""
    g = specc.load(
        "t.net",
        text="""
model D {
  input x: f32[N, 5, 8]
  input enc: f32[N, 7, 6]
  h = x -> attention(2, causal=true)
  y = h -> attention(enc, 4, features=12)
  output y
}""",
    ).graph()
    fast, ref = build_module(g, platform="cpu"), build_module(g, platform="reference")
    assert set(lowering_names(fast).values()) == {"fused"}
    assert set(lowering_names(ref).values()) == {"reference"}
    rng = np.random.default_rng(0)
    feed = {
        "x": rng.normal(size=(3, 5, 8)).astype(np.float32),
        "enc": rng.normal(size=(3, 7, 6)).astype(np.float32),
    }
    w = rng.normal(size=(3, 5, 8)).astype(np.float32)

    def loss(module: Any, feed: dict[str, Any]) -> Any:
        return jnp.sum(module(**feed)["y"] * w)

    results = []
    for module in (fast, ref):
        value, (gm, gx) = nnx.jit(nnx.value_and_grad(loss, argnums=(0, 1)))(module, feed)
        results.append((value, jax.tree.leaves(nnx.state(gm, nnx.Param)), gx))
    (v1, p1, x1), (v2, p2, x2) = results
    np.testing.assert_allclose(v1, v2, rtol=RTOL, atol=ATOL)
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    for k in feed:
        np.testing.assert_allclose(x1[k], x2[k], rtol=RTOL, atol=ATOL)


def test_every_alternative_is_checked() -> None:
    """A new alternative lowering needs `applies` (the form it rewrites) to be in the property tests and to be
    measured by `--lowering measure`; the export-only forms have none (tests/test_export.py checks them)."""
    for op in all_ops().values():
        for lw in op.lowerings[1:]:
            assert (lw.applies is None) == (lw.name in EXPORT_ONLY), (op.name, lw.name)


def test_fused_batchnorm_updates_the_running_statistics_as_the_reference() -> None:
    op, _, attrs, types = one_op((8, 3, 3, 4), "batchnorm(momentum=0.8)")
    x = jnp.asarray(inputs("normal", (8, 3, 3, 4), 0) * 3 + 1)
    stats = []
    for lw in (op.lowerings[0], next(lw for lw in op.lowerings if lw.name == "fused")):
        assert op.lowerings[0].build is not None
        m = op.lowerings[0].build(attrs, types, BuildContext(nnx.Rngs(0)))
        lw.apply(m, attrs, [x], ApplyContext({}))
        stats.append((np.asarray(m.mean[...]), np.asarray(m.var[...])))
    for a, b in zip(*stats, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.abs(stats[0][0]).min() > 0.05  # the statistics moved: the test compares something


@pytest.mark.parametrize(
    "window", ["2", "(2, 3)", "3, stride=2", "3, stride=2, padding=1", "(3, 2), stride=(2, 1), ceil=true"]
)
def test_maxpool_gives_a_tied_window_gradient_to_its_first_maximum(window: str) -> None:
    """The gradient of reduce_window max, exactly: one element per window, not an equal split among the ties; for
    the tiled form (windows that tile) and the sliced one (every 4-D pool: overlapping, padded, ceil mode)."""
    tiles = "stride" not in window
    for kind in ("tied", "constant"):
        shape = (2, 7 - tiles, 7 - tiles, 2)
        assert check_alternatives(shape, f"maxpool({window})", kind, 0, exact=True) == 1 + tiles


def test_maxpool_windows_of_minus_infinity_give_their_gradient_as_the_reference() -> None:
    """A window of -inf only (a masked or padded map) still has a first maximum: the tiled form's reduction
    starts from -inf and must not lose the gradient to its initial value."""
    op, _, attrs, types = one_op((1, 4, 4, 1), "maxpool(2)")
    x = np.array([[0, 1, 1, 1], [1, 2, 1, 1], [-np.inf] * 4, [-np.inf, -np.inf, 3, -np.inf]], np.float32)
    x = x.reshape(1, 4, 4, 1)
    ref = value_and_grads(op, attrs, types, op.lowerings[0], x, np.ones(1))
    forms = forms_that_apply(op, attrs, types)
    assert {lw.name for lw in forms} == {"tiled", "slices"}
    for lw in forms:
        got = value_and_grads(op, attrs, types, lw, x, np.ones(1))
        for a, b in zip(got[:2], ref[:2], strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=lw.name)
    assert np.asarray(ref[1]).ravel().tolist()[8] == 1  # the all -inf window's first element


def test_each_overlapping_window_gives_its_gradient_to_its_first_element() -> None:
    op, _, attrs, types = one_op((1, 3, 3, 1), "maxpool(2, stride=1)")
    for lw in op.lowerings[:1] + tuple(forms_that_apply(op, attrs, types)):
        _, gx, _ = value_and_grads(op, attrs, types, lw, np.zeros((1, 3, 3, 1), np.float32), np.ones(1))
        assert np.asarray(gx).ravel().tolist() == [1, 1, 0, 1, 1, 0, 0, 0, 0], lw.name


def test_the_cpu_rule_table_picks_per_shape() -> None:
    def chosen(shape: tuple[int, ...], call: str, platform: str = "cpu") -> str:
        _, node, _, types = one_op(shape, call)
        return choose_lowering(node, types, platform).name

    assert chosen((100, 28, 28, 1), "conv(32, 5)") == "im2col_t"  # the lecture convnet's two convs
    assert chosen((100, 8, 8, 32), "conv(64, 5)") == "im2col"
    assert chosen((100, 32, 32, 3), "conv(32, 3, padding=1)") == "im2col_t"  # a CIFAR stem
    assert chosen((100, 28, 28, 5), "conv(32, 5)") == "reference"  # 5 channels, 576 positions
    assert chosen((100, 28, 28, 1), "conv(32, 2)") == "reference"  # a 2×2 kernel: slices gain nothing
    assert chosen((100, 5, 5, 16), "conv(120, 5)") == "dense"  # LeNet-5's C5
    assert chosen((100, 28, 28, 16), "conv(16, 3, padding=1)") == "reference"  # a ResNet's 3×3 convs lose
    # few channels in and features: the input gradient written out (below 512 KiB of padded input a device)
    assert chosen((100, 14, 14, 6), "conv(16, 5)") == "col2im_igrad"  # LeNet-5's C3
    assert chosen((100, 14, 14, 6), "conv(16, 5)", "gpu") == "reference"
    assert chosen((100, 14, 14, 16), "conv(16, 5)") == "reference"  # 16 channels in
    assert chosen((100, 14, 14, 6), "conv(32, 5)") == "reference"  # 32 features: XLA's YNNPACK path
    assert chosen((100, 14, 14, 6), "conv(16, 5, stride=2)") == "shifted_wgrad"  # strided: not this form
    # 32 channels in and out: the shifted weight gradient, which runs the reference below 2M input values
    assert chosen((100, 14, 14, 32), "conv(32, 3, padding=1)") == "shifted_wgrad"
    assert chosen((16, 56, 56, 64), "conv(64, 3, padding=1)") == "shifted_wgrad"  # ResNet-18's first stage
    assert chosen((16, 56, 56, 64), "conv(64, 3, padding=1)", "gpu") == "reference"
    assert chosen((16, 56, 56, 64), "conv(128, 3, stride=2, padding=1)") == "shifted_wgrad"  # at any size
    assert (
        chosen((100, 28, 28, 16), "conv(32, 3, stride=2, padding=1)") == "shifted_wgrad"
    )  # the small ResNet's
    assert chosen((16, 56, 56, 64), "conv(256, 1)") == "pointwise"  # ResNet-50's bottleneck
    assert (
        chosen((100, 28, 28, 16), "conv(32, 1, stride=2, bias=false)") == "pointwise"
    )  # a projection shortcut
    assert chosen((16, 56, 56, 64), "conv(256, 1)", "gpu") == "reference"
    assert chosen((16, 56, 56, 64), "conv(256, 1, padding=1)") == "reference"
    assert chosen((16, 56, 56, 16), "conv(64, 3, padding=1)") == "reference"  # 16 channels in
    assert chosen((100, 28, 28, 1), "conv(32, 5)", "gpu") == "reference"
    assert chosen((100, 28, 28, 1), "conv(32, 5)", "reference") == "reference"
    assert chosen((100, 28, 28, 1), "conv(32, 5, dilation=2)") == "reference"
    assert chosen((100, 28, 28, 4), "conv(32, 5, groups=2)") == "grouped"
    assert chosen((16, 28, 28, 128), "conv(128, 3, padding=1, groups=32)") == "grouped"  # ResNeXt
    assert chosen((16, 28, 28, 128), "conv(128, 3, padding=1, groups=32)", "gpu") == "reference"
    assert (
        chosen((16, 28, 28, 256), "conv(512, 3, padding=1, groups=128)") == "reference"
    )  # > 64 convolutions
    assert (
        chosen((16, 56, 56, 144), "conv(144, 3, stride=2, padding=1, groups=144)") == "depthwise"
    )  # MobileNetV2
    assert chosen((16, 56, 56, 144), "conv(144, 3, padding=1, groups=144)", "gpu") == "reference"
    assert (
        chosen((16, 56, 56, 144), "conv(288, 3, padding=1, groups=144)") == "reference"
    )  # 2 filters a channel
    assert chosen((16, 56, 56, 144), "conv(144, 3, padding=1, groups=144, dilation=2)") == "reference"
    assert chosen((100, 7, 7, 64), "conv_transpose(32, 4, stride=2, padding=same)") == "subpixel"
    assert (
        chosen((100, 14, 14, 32), "conv_transpose(1, 4, stride=2, padding=same)") == "reference"
    )  # thin out
    assert chosen((100, 14, 14, 32), "conv_transpose(32, 3, padding=same)") == "reference"  # stride 1
    assert chosen((100, 24, 24, 32), "maxpool(3)") == "tiled"
    assert chosen((100, 27, 27, 64), "maxpool(3, stride=2)") == "slices"  # AlexNet's overlapping pool
    assert chosen((100, 14, 14, 32), "maxpool(3, stride=1, padding=same)") == "reference"
    assert chosen((100, 14, 14, 32), "avgpool(3, stride=1, padding=same)") == "slices"
    assert chosen((100, 256), "batchnorm") == "fused"
    assert chosen((100, 256), "batchnorm(axis=0)") == "reference"
    assert chosen((100, 28, 64), "layernorm") == "fused"  # the transformer block's
    assert chosen((100, 28, 64), "layernorm", "gpu") == "reference"
    assert chosen((100, 27, 27, 64), "maxpool(3, stride=2)", "gpu") == "reference"
    assert chosen((100, 28, 28), "lstm(128, return=last)") == "vjp"  # the LSTM classifier
    assert chosen((100, 28, 28), "rnn(128, cell=lstm)") == "vjp"
    assert chosen((100, 28, 28), "rnn(128, cell=gru)") == "reference"
    assert chosen((100, 28, 28), "lstm(128)", "gpu") == "reference"
    assert chosen((100, 28, 64), "attention(4)") == "fused"  # the transformer block
    assert chosen((100, 28, 64), "attention(4)", "gpu") == "reference"


@pytest.mark.parametrize(
    ("call", "form"),
    [
        ("conv(5, 3, padding=1)", "shifted_wgrad"),
        ("conv(4, (3, 2), padding=((1, 0), (2, 1)), bias=false)", "shifted_wgrad"),
        ("conv(3, (2, 4), padding=same)", "shifted_wgrad"),
        ("conv(2, 5)", "shifted_wgrad"),
        ("conv(4, 3, stride=2, padding=1)", "shifted_wgrad"),  # a ResNet's downsampling conv
        ("conv(3, (3, 2), stride=(2, 3), padding=((1, 0), (2, 1)), bias=false)", "shifted_wgrad"),
        ("conv(2, 5, stride=3)", "shifted_wgrad"),
        ("conv(3, 2, stride=2)", "shifted_wgrad"),  # stride = kernel: one offset a phase
        ("conv(2, (2, 3), stride=(3, 1), padding=same)", "shifted_wgrad"),  # stride > kernel: a phase unread
        ("conv(5, 1)", "pointwise"),
        ("conv(4, 1, stride=2, bias=false)", "pointwise"),
        ("conv(3, 1, stride=(2, 3), padding=same)", "pointwise"),
    ],
)
def test_the_weight_gradient_forms_match_the_reference(call: str, form: str) -> None:
    """The kernels, paddings (none, symmetric, uneven, SAME of an even kernel) and strides (below, at and above
    the kernel's size, per axis) the shifted weight gradient rewrites, and 1×1 convs at strides that do not divide
    the map, on every kind of input (the property test draws these in a fraction of its cases)."""
    op, _, attrs, types = one_op((3, 9, 7, 3), call)
    assert form in [lw.name for lw in forms_that_apply(op, attrs, types)]
    for kind in ("normal", "tied", "constant"):
        assert check_alternatives((3, 9, 7, 3), call, kind, 7, exact=False) >= 1


@pytest.mark.parametrize("name", ["shifted_wgrad", "col2im_igrad"])
def test_a_gradient_penalty_differentiates_through_the_written_out_gradients(name: str) -> None:
    """WGAN-GP's penalty: the parameters' gradient of a norm of the input gradient, through the custom VJP as
    through XLA's own (the module's fixture puts the shifted form in force at this size)."""
    op, _, attrs, types = one_op((2, 6, 5, 3), "conv(4, 3, padding=1)")
    assert op.lowerings[0].build is not None
    gd, state = nnx.split(build_layer(op.lowerings[0].build, attrs, types))
    x = jnp.asarray(inputs("normal", (2, 6, 5, 3), 0))

    def penalty(state: Any, lw: Lowering) -> Any:
        def total(x: Any) -> Any:
            return jnp.sum(jnp.tanh(lw.apply(nnx.merge(gd, state), attrs, [x], ApplyContext({}))))

        return jnp.sum(jax.grad(total)(x) ** 2)

    form = next(lw for lw in op.lowerings if lw.name == name)
    applied = jax.make_jaxpr(lambda x: form.apply(nnx.merge(gd, state), attrs, [x], ApplyContext({})))(x)
    assert "custom_vjp" in str(applied)
    got, ref = (jax.grad(penalty)(state, lw) for lw in (form, op.lowerings[0]))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)
        assert np.abs(np.asarray(b)).max() > 1  # the penalty reaches the parameters


def traced_at_batch(example: tuple[int, ...], call: str, form: str) -> Callable[[int], str]:
    """batch → the jaxpr of `form`'s apply of `call` over [batch, *example] f32 inputs: traced from shapes alone,
    under the data_shards in force."""
    op, _, attrs, types = one_op((16, *example), call)
    lw = next(lw for lw in op.lowerings if lw.name == form)
    assert op.lowerings[0].build is not None
    module = build_layer(op.lowerings[0].build, attrs, types)

    def program(batch: int) -> str:
        x = jax.ShapeDtypeStruct((batch, *example), jnp.float32)
        return str(jax.make_jaxpr(lambda x: lw.apply(module, attrs, [x], ApplyContext({})))(x))

    return program


@pytest.mark.parametrize(
    ("call", "small", "large"),
    [("conv(64, 3, padding=1)", 8, 16), ("conv(128, 3, stride=2, padding=1)", 4, 8)],
)
def test_the_shifted_weight_gradient_takes_over_from_its_size_on(
    monkeypatch: Any, call: str, small: int, large: int
) -> None:
    """Below SHIFTED_WGRAD_MIN_VALUES input values a device (stride 1; SHIFTED_WGRAD_STRIDED_MIN_VALUES strided)
    the form traces the reference convolution (XLA's own gradients); from there on its custom gradient. Traced
    from shapes alone: nothing computed. 56×56×64 is 0.2M values an example."""
    monkeypatch.setattr(conv_op, "SHIFTED_WGRAD_MIN_VALUES", 1 << 21)
    monkeypatch.setattr(conv_op, "SHIFTED_WGRAD_STRIDED_MIN_VALUES", 1 << 20)
    program = traced_at_batch((56, 56, 64), call, "shifted_wgrad")
    per_device = jax.local_device_count()  # outside a train step: the process's devices share the batch
    assert "custom_vjp" in program(large * per_device)
    assert "custom_vjp" not in program(small * per_device) and "conv_general_dilated" in program(
        small * per_device
    )
    # the train loop traces its step inside data_shards(its mesh's devices): one device's share is batch / that
    with data_shards(3):
        assert "custom_vjp" in program(large * 3)
        assert "custom_vjp" not in program(small * 3)
    with data_shards(1):
        assert "custom_vjp" in program(large)


@pytest.mark.parametrize(
    "call",
    [
        "conv(16, 5)",  # LeNet-5's C3
        "conv(5, 3, padding=1)",
        "conv(4, (3, 2), padding=((1, 0), (2, 1)), bias=false)",  # uneven
        "conv(3, (2, 4), padding=same)",  # SAME of an even kernel
        "conv(2, 1)",
        "conv(3, 5, padding=2)",  # LeNet-5's C1 as padded
    ],
)
def test_the_input_gradient_form_matches_the_reference(call: str) -> None:
    """The kernels and paddings the written-out input gradient (col2im) covers, on every kind of input (the
    property test draws it too, in the conv cases it applies to)."""
    op, _, attrs, types = one_op((3, 9, 7, 3), call)
    assert "col2im_igrad" in [lw.name for lw in forms_that_apply(op, attrs, types)]
    for kind in ("normal", "tied", "constant"):
        assert check_alternatives((3, 9, 7, 3), call, kind, 11, exact=False) >= 1


def test_the_input_gradient_form_gives_way_over_its_size() -> None:
    """Over COL2IM_MAX_BYTES of padded input a device the form traces the reference convolution (XLA's own
    gradients); one device's share is the batch over the train step's devices (`data_shards`)."""
    program = traced_at_batch((14, 14, 6), "conv(16, 5)", "col2im_igrad")
    per_example = 14 * 14 * 6 * 4  # bytes of padded input (no padding here)
    fits = conv_op.COL2IM_MAX_BYTES // per_example
    with data_shards(1):
        assert "custom_vjp" in program(fits)
        assert "custom_vjp" not in program(fits + 1) and "conv_general_dilated" in program(fits + 1)
    with data_shards(2):
        assert "custom_vjp" in program(2 * fits)
        assert "custom_vjp" not in program(2 * fits + 2)


def test_forward_only_programs_have_their_own_rule() -> None:
    """Validation and prediction run the model forward only: forms chosen for their gradients give way there."""

    def chosen(shape: tuple[int, ...], call: str, platform: str = "cpu") -> tuple[str, str]:
        _, node, _, types = one_op(shape, call)
        return tuple(choose_lowering(node, types, platform, forward=f).name for f in (False, True))  # type: ignore[return-value]

    assert chosen((100, 28, 28, 1), "conv(32, 5)") == ("im2col_t", "reference")  # the lecture convnet's C1
    assert chosen((100, 8, 8, 32), "conv(64, 5)") == ("im2col", "reference")  # and its C2
    assert chosen((100, 28, 28, 1), "conv(6, 5, padding=2)") == ("im2col_t", "im2col_t")  # LeNet-5's C1
    assert chosen((100, 28, 28, 1), "conv(16, 3, padding=1)") == ("im2col_t", "im2col_t")  # a ResNet stem
    assert chosen((100, 5, 5, 16), "conv(120, 5)") == ("dense", "dense")  # LeNet-5's C5
    assert chosen((16, 56, 56, 64), "conv(256, 1)") == ("pointwise", "pointwise")
    assert chosen((16, 56, 56, 64), "conv(64, 3, padding=1)") == ("shifted_wgrad", "reference")
    assert chosen((100, 24, 24, 32), "maxpool(3)") == ("tiled", "reference")  # tiling windows
    assert chosen((100, 27, 27, 64), "maxpool(3, stride=2)") == ("slices", "slices")  # overlapping ones
    assert chosen((100, 28, 28, 6), "avgpool(2)") == ("tiled", "tiled")
    assert chosen((100, 24, 24, 32), "maxpool(3)", "export") == ("slices", "slices")  # ONNX runs slices
    assert chosen((100, 28, 28, 1), "conv(32, 5)", "gpu") == ("reference", "reference")


def test_the_forward_graphdef_runs_the_forward_forms_on_the_same_parameters() -> None:
    from specc.backend.flax import forward_graphdef

    g = specc.load("specs/mnist_convnet.net").graph()
    model = build_module(g, platform="cpu")
    model.eval()
    trained = lowering_names(model)
    gd = forward_graphdef(model)
    assert lowering_names(model) == trained  # the module itself keeps its training forms
    assert not model.forward_only
    forward = nnx.merge(gd, nnx.state(model))
    assert forward.forward_only
    assert {k: v for k, v in trained.items() if v != "reference"} == {
        "c1": "im2col_t",
        "p1.maxpool": "tiled",
        "c2": "im2col",
        "p2.maxpool": "tiled",
    }
    assert set(lowering_names(forward).values()) == {"reference"}
    # one batch of tied, constant and normal images, each module's forward jitted once (eager, op by op, the 25
    # patch slices of each im2col dispatch one by one)
    x = jnp.concatenate([inputs(kind, (1, 28, 28, 1), 0) for kind in ("tied", "constant", "normal")])
    gd, state = nnx.split(model)
    logits = {
        name: jax.jit(lambda s, x, g=g: nnx.merge(g, s)(x=x)["logits"])(state, x)
        for name, g in (("trained", gd), ("forward", nnx.graphdef(forward)))
    }
    np.testing.assert_allclose(logits["forward"], logits["trained"], rtol=RTOL, atol=ATOL)


def test_a_model_runs_the_same_under_every_lowering_choice() -> None:
    g = specc.load(
        "t.net",
        text="""
model C {
  input x: f32[N, 28, 28, 1]
  c1 = x -> conv(8, 5) -> maxpool(3) -> relu
  c2 = c1 -> conv(8, 5) -> maxpool(2) -> relu
  y = c2 -> conv(4, 2)
  output y
}""",
    ).graph()
    fast, ref = build_module(g, platform="cpu"), build_module(g, platform="reference")
    assert set(lowering_names(fast).values()) >= {"im2col_t", "im2col", "tiled", "dense"}
    assert set(lowering_names(ref).values()) == {"reference"}
    x = inputs("tied", (2, 28, 28, 1), 0)
    # jitted as training runs it (eager, each im2col slice is a dispatch of its own)
    run = nnx.jit(lambda m, x: m(x=x)["y"])
    np.testing.assert_allclose(run(fast, x), run(ref, x), rtol=RTOL, atol=ATOL)


def test_lowering_reference_on_the_command_line(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from specc.cli import main

    spec = tmp_path / "c.net"
    spec.write_text(
        "model C {\n  input x: f32[N, 12, 12, 1]\n  y = x -> conv(4, 5) -> maxpool(2)\n  output y\n}\n"
    )
    chosen = {}
    for choice in ("auto", "measure", "reference"):
        r = CliRunner().invoke(main, ["compile", str(spec), "--lowering", choice, "--batch", "2"])
        assert r.exit_code == 0, r.output
        assert ("lowerings measured: 2 op shape(s)" in r.output) == (choice == "measure")
        r = CliRunner().invoke(main, ["compile", str(spec), "--lowering", choice, "--batch", "2", "--json"])
        chosen[choice] = {n["op"]: n["lowering"] for n in json.loads(r.output)["nodes"]}
    assert chosen["reference"] == {"input": None, "conv": "reference", "maxpool": "reference"}
    if jax.default_backend() == "cpu":  # the CPU's rule
        assert chosen["auto"] == {"input": None, "conv": "im2col_t", "maxpool": "tiled"}
    assert chosen["measure"]["conv"] in ("reference", "dense", "im2col_t", "im2col", "col2im_igrad")
    r = CliRunner().invoke(main, ["compile", str(spec), "--lowering", "fast"])
    assert r.exit_code == 2 and "'auto', 'measure', 'reference'" in r.output
    assert "--lowering" in CliRunner().invoke(main, ["train", "--help"]).output


@pytest.mark.parametrize("cores", [1, 2])
def test_compile_json_names_the_form_the_batch_runs(monkeypatch: Any, cores: int) -> None:
    """A size-gated form is named where the bound batch's share a device runs it, and "reference" where that share
    is over its gate: LeNet-5's C3 pads nothing, 4.6 KiB an example, so 32 examples are under COL2IM_MAX_BYTES and
    400 over it on one device or the two `specc train` would split the CPU into."""
    from click.testing import CliRunner

    import specc.train.execution as execution
    from specc.cli import main

    if jax.default_backend() != "cpu":
        pytest.skip("the CPU's rule table")
    monkeypatch.setattr(execution, "cores", lambda: cores)
    spec = str(Path(__file__).parent.parent / "specs" / "lenet5.net")
    forms = {}
    for batch in (32, 400):
        r = CliRunner().invoke(main, ["compile", spec, "--batch", str(batch), "--json"])
        assert r.exit_code == 0, r.output
        forms[batch] = {n["name"]: n["lowering"] for n in json.loads(r.output)["nodes"]}
    assert forms[32]["c3.conv"] == "col2im_igrad" and forms[400]["c3.conv"] == "reference"
    assert forms[32]["c1.conv"] == forms[400]["c1.conv"] == "im2col_t"  # not size-gated


@pytest.mark.parametrize("kind", ["tied", "constant", "normal"])
def test_the_tiled_max_pool_differentiates_as_reduce_window(kind: str) -> None:
    """The tiled max-pool's one reduce (window position and maximum), bit for bit against reduce_window, ties and
    constant windows included, on whichever device count this process has (one device took another form once)."""
    from jax import lax

    import specc.ops.pooling as pooling

    x = jnp.asarray(inputs(kind, (3, 6, 9, 2), 1))
    w = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3, 3, 2)).astype(np.float32))

    def reference(x: Any) -> Any:
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 3, 1), (1, 2, 3, 1), "VALID")

    pool = pooling._tiled_max(jax, jnp, (3, 3, 2, 3, 3, 2), (2, 4))
    for f in (reference, pool):
        assert f(x).shape == (3, 3, 3, 2)
    got, vjp = jax.vjp(jax.jit(pool), x)
    want, vjp_ref = jax.vjp(reference, x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(vjp(w)[0]), np.asarray(vjp_ref(w)[0]))
