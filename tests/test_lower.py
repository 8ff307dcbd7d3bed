"""Lowering to Flax, checked against JAX as the oracle: every node's inferred type equals what JAX computes
(jax.eval_shape, so big models cost nothing), parameter and state counts equal the Flax module's, and the
shape rules agree with XLA on random convolutions, pools, broadcasts, reshapes and slices."""

from __future__ import annotations

import math
import re
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
from specc.backend.flax import SpecModule, build_module, lowering_names
from specc.errors import SpecError
from specc.ir.graph import Graph
from specc.ir.types import JNP_NAMES, TensorType
from specc.ops._registry import REQUIRED, all_ops

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.net"))
# small sizes for the free symbols: the batch, sequence lengths; anything else gets DEFAULT_SIZE
SIZES = {"N": 2, "B": 2, "T": 5, "L": 5, "S": 5}
DEFAULT_SIZE = 16
FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---- helpers ---------------------------------------------------------------------------------------


def env_of(g: Graph) -> dict[str, int]:
    syms: set[str] = set()
    for _, nid in g.inputs:
        for d in g.nodes[nid].type.dims:
            syms |= d.symbols()
    return {s: SIZES.get(s, DEFAULT_SIZE) for s in syms}


def concrete(t: TensorType, env: dict[str, int]) -> tuple[tuple[int, ...], jnp.dtype]:
    dims = tuple(d.subst(env).as_int() for d in t.dims)
    assert None not in dims, f"{t} does not become concrete under {env}"
    return dims, jnp.dtype(JNP_NAMES[t.dtype])  # type: ignore[return-value]


def abstract_inputs(g: Graph, env: dict[str, int]) -> dict[str, jax.ShapeDtypeStruct]:
    return {name: jax.ShapeDtypeStruct(*concrete(g.nodes[nid].type, env)) for name, nid in g.inputs}


def random_inputs(g: Graph, env: dict[str, int], seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, nid in g.inputs:
        shape, dtype = concrete(g.nodes[nid].type, env)
        out[name] = (
            rng.integers(0, 2, shape).astype(dtype)
            if not jnp.issubdtype(dtype, jnp.floating)
            else rng.normal(size=shape).astype(dtype)
        )
    return out


def abstract_module(g: Graph, platform: str | None = None) -> SpecModule:
    return build_module(g, platform=platform, abstract=True)


def traced_shapes(g: Graph, model: SpecModule, env: dict[str, int]) -> dict[str, Any]:
    graphdef, state = nnx.split(model)
    return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s).trace(x), state, abstract_inputs(g, env))


def assert_types_agree(g: Graph, model: SpecModule, env: dict[str, int]) -> int:
    """Every node's checked type equals JAX's; returns the number of values compared."""
    got = traced_shapes(g, model, env)
    compared = 0
    for n in g.nodes:
        outs = got[n.name]
        outs = outs if isinstance(outs, tuple) else (outs,)
        assert len(outs) == len(n.outputs), n.name
        for t, o in zip(n.outputs, outs, strict=True):
            shape, dtype = concrete(t, env)
            assert (tuple(o.shape), o.dtype) == (shape, dtype), (
                f"{n.name} ({n.op}): checker says {t} = {shape} {dtype}, JAX computes {o.shape} {o.dtype}"
            )
            compared += 1
    return compared


def flat_shapes(state: Any) -> dict[str, tuple[int, ...]]:
    return {".".join(map(str, path)): tuple(v.shape) for path, v in nnx.to_flat_state(state)}


def assert_counts_agree(g: Graph, model: SpecModule) -> None:
    params = nnx.state(model, nnx.Param)
    stats = nnx.state(model, nnx.BatchStat)
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(params)) == g.total_params
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(stats)) == g.total_state
    # node by node: the checker's parameter names and shapes are Flax's own
    steps = {s.id: s for s in model.plan.steps}
    for n in g.nodes:
        key = steps[n.id].key
        if n.shares is not None:  # a named instance used again: it runs its owner's layer
            assert key == steps[n.shares].key, n.name
            continue
        if not n.params and not n.state:
            assert key is None or not jax.tree.leaves(nnx.state(model.layers[key], nnx.Param)), n.name
            continue
        layer = model.layers[key]
        assert flat_shapes(nnx.state(layer, nnx.Param)) == dict(n.params), n.name
        assert flat_shapes(nnx.state(layer, nnx.BatchStat)) == dict(n.state), n.name


def load(text: str) -> Graph:
    return specc.load("t.net", text=text).graph()


def checked(text: str) -> Graph | None:
    try:
        return load(text)
    except SpecError:
        return None


def jax_shapes(g: Graph, platform: str | None = None) -> dict[str, Any]:
    return traced_shapes(g, abstract_module(g, platform), env_of(g))


# ---- every spec in specs/ ----------------------------------------------------------------------------


def _models(path: Path) -> list[str]:
    return list(specc.load(path).program.models)


SPEC_MODELS = [(p, m) for p in SPECS for m in _models(p)]
# The gradient's trace of DenseNet-121 alone took 18 s of the suite's budget; its ops (conv, batchnorm, relu,
# concat, pools) are all differentiated in the other zoo models, so it is left out of that test only.
DIFFERENTIATED = [(p, m) for p, m in SPEC_MODELS if p.stem != "densenet121"]


@pytest.mark.parametrize(("path", "model"), SPEC_MODELS, ids=[f"{p.stem}:{m}" for p, m in SPEC_MODELS])
def test_spec_types_and_counts_agree_with_jax(path: Path, model: str) -> None:
    g = specc.load(path, model).graph()
    m = abstract_module(g)
    assert_counts_agree(g, m)
    assert assert_types_agree(g, m, env_of(g)) >= len(g.nodes)


# specs whose layers cover the initialisers (per op, per model), recurrent cells, attention, batch statistics,
# free params, locally connected and sampling layers
ABSTRACT_VS_CONCRETE = [
    "deep_init_large",
    "elm",
    "lstm_classifier",
    "transformer_block",
    "batchnorm_dropout",
    "vae",
    "perceptron",
    "lenet5",
    "mimic",
    "siamese",
]


@pytest.mark.parametrize("stem", ABSTRACT_VS_CONCRETE)
def test_abstract_build_has_the_concrete_builds_variables(stem: str) -> None:
    """An abstract build (what `specc compile` lowers) skips the initialisers' draws; its variables must still be
    the ones a real build makes: same paths, kinds, shapes and dtypes (the real build under eval_shape)."""
    g = specc.load(SPECS[[p.stem for p in SPECS].index(stem)]).graph()

    def variables(model: SpecModule) -> dict[str, Any]:
        return {
            ".".join(map(str, path)): (type(v).__name__, tuple(v.shape), str(v.dtype))
            for path, v in nnx.to_flat_state(nnx.state(model, nnx.Variable))
        }

    real = variables(nnx.eval_shape(lambda: build_module(g, seed=0)))
    assert real, stem
    assert variables(build_module(g, abstract=True)) == real


@pytest.mark.parametrize(("path", "model"), DIFFERENTIATED, ids=[f"{p.stem}:{m}" for p, m in DIFFERENTIATED])
def test_spec_is_differentiable_in_a_train_step(path: Path, model: str) -> None:
    """Every lowering has a reverse-mode gradient, in training mode (dropout RNG, batch statistics), in the jitted
    split/merge step a trainer writes — under eval_shape, so it costs a trace."""
    g = specc.load(path, model).graph()
    graphdef, state = nnx.split(build_module(g, abstract=True))
    names = [name for name, _ in g.outputs]

    def step(state: Any, x: Any) -> Any:
        m = nnx.merge(graphdef, state)
        m.train()

        def loss(m: SpecModule) -> Any:
            outs = m.values(x, names)
            return sum(jnp.sum(v) for v in outs.values() if jnp.issubdtype(v.dtype, jnp.floating))

        _, grads = nnx.value_and_grad(loss)(m)
        return grads, nnx.state(m)

    grads, new_state = jax.eval_shape(step, state, abstract_inputs(g, env_of(g)))
    assert jax.tree.structure(grads) == jax.tree.structure(nnx.state(nnx.merge(graphdef, state), nnx.Param))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_every_op_has_a_lowering() -> None:
    missing = [name for name, op in all_ops().items() if not op.lowerings]
    assert missing == []
    for name, op in all_ops().items():
        assert op.lowerings[0].when is None, f"{name}: the reference lowering must apply everywhere"


# ---- the module API ------------------------------------------------------------------------------------

MLP = """
model MLP {
  input x: f32[N, 4]
  input y: i32[N]
  h = x -> dense(8) -> relu
  d = h -> dropout(0.5)
  logits = d -> dense(3)
  output logits
}
"""


def test_call_values_trace_and_unused_inputs() -> None:
    g = load(MLP)
    model = build_module(g, rngs=nnx.Rngs(0))
    model.eval()
    x = np.ones((5, 4), np.float32)
    out = model(x=x)  # y is unused by the output and may be left out
    assert set(out) == {"logits"} and out["logits"].shape == (5, 3)
    vals = model.values({"x": x}, ["h", "logits"])
    np.testing.assert_allclose(vals["logits"], out["logits"], rtol=1e-6)
    assert vals["h"].shape == (5, 8) and float(vals["h"].min()) >= 0
    tr = model.trace({"x": x, "y": np.zeros(5, np.int32)})
    assert set(tr) == {n.name for n in g.nodes}
    with pytest.raises(SpecError, match="no value named"):
        model.values({"x": x}, ["nope"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"x": np.ones((5, 3), np.float32)}, "x has the shape [5, 3], but model MLP takes x: f32[N, 4]"),
        ({"x": np.ones((4,), np.float32)}, "x has the shape [4], but model MLP takes x: f32[N, 4]"),
        (
            {"x": np.ones((2, 5, 4), np.float32)},
            "x has the shape [2, 5, 4], but model MLP takes x: f32[N, 4]",
        ),
        ({"x": "abc"}, "x is not an array of numbers (str)"),
        ({"q": np.ones((5, 4), np.float32)}, "model MLP has no input 'q'"),
    ],
)
def test_a_call_with_inputs_the_model_does_not_take_is_a_spec_error(call: dict, message: str) -> None:
    """A built module called with a wrong width failed inside dot_general, and with a wrong rank it broadcast
    silently (logits [2, 5, 3] from x [2, 5, 4]); a positional array failed on its truth value."""
    model = build_module(load(MLP), rngs=nnx.Rngs(0))
    with pytest.raises(SpecError) as e:
        model(**call)
    assert e.value.diagnostics[0].message == message
    with pytest.raises(SpecError, match="takes its inputs by name, got a positional ndarray"):
        model(np.ones((5, 4), np.float32))


def test_train_eval_switch_dropout() -> None:
    model = build_module(load(MLP), rngs=nnx.Rngs(0))
    x = np.ones((64, 4), np.float32)
    model.eval()
    a, b = model(x=x)["logits"], model(x=x)["logits"]
    np.testing.assert_array_equal(a, b)
    model.train()
    c, d = model(x=x)["logits"], model(x=x)["logits"]
    assert not np.allclose(c, d), "dropout draws a new mask per call while training"


def test_dropout_per_channel_and_per_example_share_one_draw() -> None:
    """per=channel drops whole feature maps (PyTorch's Dropout2d), per=example an example's whole value
    (stochastic depth on a residual branch): every kept value is x / (1 - rate), every draw covers its axes."""
    model = build_module(
        load("""
model M {
  input x: f32[N, 6, 6, 32]
  a = x -> dropout(0.5, per=channel)
  b = x -> dropout(0.5, per=example)
  c = x -> dropout(0.5)
  output a, b, c
}
"""),
        rngs=nnx.Rngs(0),
    )
    model.train()
    out = model(x=np.ones((16, 6, 6, 32), np.float32))
    for name, axes in (("a", (1, 2)), ("b", (1, 2, 3))):
        y = np.asarray(out[name])
        assert set(np.unique(y)) == {0.0, 2.0}
        assert (y.min(axis=axes) == y.max(axis=axes)).all(), f"{name}: one draw per {axes}"
    c = np.asarray(out["c"])
    assert (c.min(axis=(1, 2)) != c.max(axis=(1, 2))).any(), "per element: values of one map differ"
    model.eval()
    assert all(
        np.array_equal(v, np.ones((16, 6, 6, 32)))
        for v in model(x=np.ones((16, 6, 6, 32), np.float32)).values()
    )


def test_default_init_is_glorot_uniform_and_init_is_honoured() -> None:
    g = load("""
model M {
  input x: f32[N, 300]
  a = x -> dense(200)
  b = x -> dense(200, init=normal(0.5), bias_init=ones)
  output a, b
}""")
    model = build_module(g, rngs=nnx.Rngs(0))
    ka = np.asarray(model.layers["a"].kernel[...])
    limit = math.sqrt(6 / (300 + 200))
    assert np.abs(ka).max() <= limit and np.abs(ka).max() > 0.95 * limit  # uniform(±limit), not lecun_normal
    assert np.all(np.asarray(model.layers["a"].bias[...]) == 0)
    kb = np.asarray(model.layers["b"].kernel[...])
    assert abs(kb.std() - 0.5) < 0.02
    assert np.all(np.asarray(model.layers["b"].bias[...]) == 1)


def test_default_init_per_model() -> None:
    g = load("""
model M {
  default init = zeros
  input x: f32[N, 3]
  y = x -> dense(2)
  output y
}""")
    assert np.all(np.asarray(build_module(g).layers["y"].kernel[...]) == 0)


def test_jit_over_split_state_and_gradients_through_trace() -> None:
    g = load("""
model G {
  param w: [3, 2] = normal(1.0)
  input x: f32[N, 3]
  z = x @ w
  s = z -> sigmoid -> sum
  output s
}""")
    model = build_module(g, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 6

    @jax.jit
    def f(state: Any, x: Any) -> Any:
        return nnx.merge(graphdef, state)(x=x)["s"]

    assert f(state, x).shape == ()
    # gradient w.r.t. a node through zero perturbations equals d s / d z computed by hand
    tr = model.trace({"x": x})
    zeros = {"z": jnp.zeros_like(tr["z"])}
    grad = jax.grad(lambda p: model.trace({"x": x}, perturb=p)["s"])(zeros)["z"]
    sz = jax.nn.sigmoid(tr["z"])
    np.testing.assert_allclose(grad, sz * (1 - sz), rtol=1e-5)


def test_batchnorm_updates_statistics_in_training_only() -> None:
    g = load("""
model B {
  input x: f32[N, 4]
  y = x -> batchnorm(momentum=0.5)
  output y
}""")
    model = build_module(g)
    x = np.random.default_rng(0).normal(3.0, 1.0, (32, 4)).astype(np.float32)
    model.eval()
    model(x=x)
    np.testing.assert_array_equal(model.layers["y"].mean[...], 0)
    model.train()
    model(x=x)
    np.testing.assert_allclose(model.layers["y"].mean[...], 0.5 * x.mean(0), rtol=1e-5)


def test_sample_normal_reparameterises() -> None:
    g = load("""
model V {
  input mu: f32[N, 2]
  input logvar: f32[N, 2]
  z = sample_normal(mu, logvar)
  output z
}""")
    model = build_module(g, rngs=nnx.Rngs(sample=1, params=0))
    mu = np.full((4000, 2), 3.0, np.float32)
    lv = np.full((4000, 2), math.log(4.0), np.float32)
    z = np.asarray(model(mu=mu, logvar=lv)["z"])
    assert abs(z.mean() - 3) < 0.1 and abs(z.std() - 2) < 0.1
    z2 = np.asarray(model(mu=mu, logvar=lv)["z"])
    assert not np.allclose(z, z2), "each call draws fresh noise from the sample stream"


def test_recurrent_last_and_bidirectional() -> None:
    g = load("""
model R {
  input x: f32[N, T, 3]
  s = x -> lstm(4, bidirectional=true)
  l = x -> lstm(4, return=last, bidirectional=true)
  output s, l
}""")
    model = build_module(g, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    out = model(x=x)
    assert out["s"].shape == (2, 6, 8) and out["l"].shape == (2, 8)


def test_adaptive_avgpool_matches_torch_bins() -> None:
    g = load("""
model A {
  input x: f32[N, 7, 5, 2]
  y = x -> adaptive_avgpool((3, 5))
  output y
}""")
    x = np.random.default_rng(0).normal(size=(2, 7, 5, 2)).astype(np.float32)
    y = np.asarray(build_module(g)(x=x)["y"])
    for i in range(3):
        lo, hi = i * 7 // 3, -(-(i + 1) * 7 // 3)
        np.testing.assert_allclose(y[:, i], x[:, lo:hi].mean(axis=1), rtol=1e-5, atol=1e-6)


def test_positional_sinusoids_and_learned() -> None:
    g = load("""
model P {
  input x: f32[N, 6, 4]
  s = x -> positional
  l = x -> positional(max_len=10, kind=learned)
  output s, l
}""")
    model = build_module(g)
    out = model(x=np.zeros((1, 6, 4), np.float32))
    assert abs(float(out["s"][0, 3, 0]) - math.sin(3)) < 1e-6
    assert abs(float(out["s"][0, 3, 1]) - math.cos(3)) < 1e-6
    assert model.layers["l"].embedding.shape == (10, 4)


def test_cpu_pool_lowering_matches_reference() -> None:
    text = """
model P {
  input x: f32[N, 8, 12, 3]
  a = x -> maxpool(2)
  b = x -> avgpool((4, 3))
  c = x -> maxpool(3, stride=2)
  output a, b, c
}"""
    g = load(text)
    fast, ref = build_module(g, platform="cpu"), build_module(g, platform="reference")
    assert lowering_names(fast) == {"a": "tiled", "b": "tiled", "c": "slices"}  # overlapping: strided slices
    assert set(lowering_names(ref).values()) == {"reference"}
    x = np.random.default_rng(0).normal(size=(2, 8, 12, 3)).astype(np.float32)
    # jitted, as a train step runs them (eagerly each primitive compiled alone: 7 s, not 2)
    got, want = jax.jit(lambda x: fast(x=x))(x), jax.jit(lambda x: ref(x=x))(x)
    for k, v in got.items():
        np.testing.assert_allclose(v, want[k], rtol=1e-6, atol=1e-6)

    def loss(m: SpecModule, x: Any) -> Any:
        return sum((v * v).sum() for v in m(x=x).values())

    # both forms are differentiable, with the same gradient (max picks the same element: no ties in random data)
    np.testing.assert_allclose(
        jax.jit(jax.grad(lambda x: loss(fast, x)))(x),
        jax.jit(jax.grad(lambda x: loss(ref, x)))(x),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_deep_repeated_graph_builds_and_traces() -> None:
    """Repeated blocks lower to one module that traces end to end (bench/check_speed.py times 10,000 nodes)."""
    g = load(DEEP.format(n=250))
    assert len(g.nodes) >= 750
    model = build_module(g, abstract=True)
    graphdef, state = nnx.split(model)
    out = jax.eval_shape(
        lambda s, x: nnx.merge(graphdef, s)(x=x), state, jax.ShapeDtypeStruct((2, 8), jnp.float32)
    )
    assert out["y"].shape == (2, 8)


DEEP = """
block Unit() {{
  input x: [N, 8]
  y = x -> dense(8) -> relu
  z = y + x
  output z
}}
model Deep {{
  input x: f32[N, 8]
  y = x -> repeat({n}, Unit())
  output y
}}"""


# ---- property tests: the checker's shape rules against XLA ---------------------------------------


def _tuple(v: tuple[int, ...]) -> str:
    return str(v[0]) if len(set(v)) == 1 else "(" + ", ".join(map(str, v)) + ")"


@st.composite
def conv_cases(draw: Any) -> str:
    rank = draw(st.sampled_from([1, 2]))
    sizes = tuple(draw(st.integers(1, 12)) for _ in range(rank))
    k = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    cin = draw(st.integers(1, 4))
    groups = draw(st.sampled_from([1, cin]))
    pad = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.integers(0, 3).map(str),
            st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=rank, max_size=rank).map(
                lambda ps: "[" + ", ".join(f"({a}, {b})" for a, b in ps) + "]"
            ),
        )
    )
    feats = groups * draw(st.integers(1, 3))
    op = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "conv_transpose"]))
    if op == "conv":
        call = (
            f"conv({feats}, {_tuple(k)}, stride={_tuple(s)}, padding={pad}, dilation={_tuple(d)}, "
            f"groups={groups})"
        )
    elif op == "conv_transpose":
        call = f"conv_transpose({feats}, {_tuple(k)}, stride={_tuple(s)}, padding={draw(st.sampled_from(['valid', 'same']))})"
    else:
        call = f"{op}({_tuple(k)}, stride={_tuple(s)}, padding={pad})"
    dims = ", ".join(map(str, sizes))
    return f"model C {{\n  input x: f32[N, {dims}, {cin}]\n  y = x -> {call}\n  output y\n}}\n"


@FAST
@given(conv_cases())
def test_conv_and_pool_shapes_agree_with_xla(text: str) -> None:
    g = checked(text)
    if g is None:
        return
    for platform in ("cpu", "reference"):
        m = abstract_module(g, platform)
        assert_types_agree(g, m, env_of(g))
        assert_counts_agree(g, m)


DIMS = st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=4)


@FAST
@given(DIMS, DIMS)
def test_broadcasting_agrees_with_numpy(a: list[int], b: list[int]) -> None:
    text = f"""
model B {{
  input a: f32[{", ".join(map(str, a))}]
  input b: f32[{", ".join(map(str, b))}]
  c = a + b
  output c
}}"""
    try:
        want = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        want = None
    g = checked(text)
    assert (g is None) == (want is None), f"{a} + {b}: checker {'rejects' if g is None else 'accepts'}"
    if g is not None:
        assert jax_shapes(g)["c"].shape == want


def test_broadcasting_with_symbols() -> None:
    g = load("model B {\n input a: f32[N, 1, 3]\n input b: f32[3]\n c = a * b\n output c\n}")
    assert jax_shapes(g)["c"].shape == (2, 1, 3)
    assert checked("model B {\n input a: f32[N, 3]\n input b: f32[M, 3]\n c = a + b\n output c\n}") is None


@FAST
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_reshape_with_minus_one_agrees_with_numpy(shape: list[int], data: Any) -> None:
    target = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    hole = data.draw(st.integers(-1, len(target) - 1))
    tgt = [-1 if i == hole else t for i, t in enumerate(target)]
    text = f"""
model R {{
  input x: f32[N, {", ".join(map(str, shape))}]
  y = x -> reshape([N, {", ".join(map(str, tgt))}])
  output y
}}"""
    try:
        want = np.empty((2, *shape)).reshape((2, *tgt)).shape
    except ValueError:
        want = None
    g = checked(text)
    assert (g is None) == (want is None), f"{shape} → {tgt}"
    if g is not None:
        assert jax_shapes(g)["y"].shape == want


SLICE_BOUND = st.one_of(st.none(), st.integers(-6, 6))


@FAST
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.data())
def test_slicing_agrees_with_numpy(shape: list[int], data: Any) -> None:
    items = []
    key: list[Any] = [slice(None)]
    for _ in range(data.draw(st.integers(1, len(shape)))):
        if data.draw(st.booleans()):
            i = data.draw(st.integers(-6, 6))
            items.append(str(i))
            key.append(i)
        else:
            lo, hi = data.draw(SLICE_BOUND), data.draw(SLICE_BOUND)
            step = data.draw(st.one_of(st.none(), st.integers(1, 3)))
            items.append(
                f"{'' if lo is None else lo}:{'' if hi is None else hi}"
                + ("" if step is None else f":{step}")
            )
            key.append(slice(lo, hi, step))
    text = f"""
model S {{
  input x: f32[N, {", ".join(map(str, shape))}]
  y = x[:, {", ".join(items)}]
  output y
}}"""
    try:
        want = np.empty((2, *shape))[tuple(key)].shape
    except IndexError:
        want = None
    g = checked(text)
    if g is None:
        return  # the checker may also refuse empty slices, which NumPy allows
    assert want is not None, f"checker accepts x[{items}] on {shape}, NumPy does not"
    assert jax_shapes(g)["y"].shape == want


# ---- the reverse oracle: every random op call the checker accepts runs under XLA ------------------------

# per op: about 350 calls, some 40% of which pass `check` and are compiled (25 s of CPU)
ORACLE_EXAMPLES = 5
# f64/i64 are left out: without jax_enable_x64 JAX computes them in 32 bits
ORACLE_DTYPES = ("f32", "f32", "f32", "f16", "bf16", "i32", "u8", "bool")
# spec literals an argument of each kind may receive: usual values before the "|", then wrong or odd ones
_ARG_VALUES: dict[str, str] = {
    "int": '1 2 3 4 | 0 -1 2.5 "a" true [2,2]',
    "float": '0.5 1.0 2 0.1 | 0 -1.0 true "a" (1,3)',
    "number": '2 0.5 -1 3 | 0 (1,3) [2] true "a"',
    "bool": "true false | 1",
    "str": 'a | "a" 1',
    "enum": "| nope 1",
    "window": "1 2 3 (1,2) | [2,2] (2,2,2) 0 2.5 (1,3)",
    "padding": 'valid same 1 | full causal 0 (1,1) [(0,1),(1,0)] -1 "a" nope',
    "axis": "-1 0 1 | 2 -2 5 1.5 true",
    "axes": "-1 1 [0,1] | 0 [1,1] [0,-1] [] 5 2.5",
    "ints": "[0,1] [1,0] | 0 [0,1,2] [2,0,1] [0,0] 1.5",
    "dims": "[-1] [2,-1] [N,-1] | [4] [0] [-1,-1] [2,2] 2",
    "init": "glorot_uniform normal(0.1) zeros | constant(2) uniform nope",
    "bias_init": "zeros normal(0.1) | ones glorot_uniform nope",
    "dtype": "f32 i32 bool | bf16 u8 f16 nope",
    "parts": '2 [1,3] | 3 [2,2] [4] 2.5 "a" -1 (1,3) 0 true []',
    "index": '-1 [2,2] 2 "a" (1,2)',
    "any": '[[1,0,-1],[1,0,-1]] [1,2] 3 [[0.5]] | [[1],[1,2]] [] "a" true [N] 300 -1',
}
_SUBSCRIPT_ITEMS = ("0", "-1", "1", ":", "1:", ":2", "::2", "0:3", "...", "-2:", "5", "None")


@st.composite
def op_calls(draw: Any, name: str) -> str:
    """A model applying the op `name` to random tensors (size-0 axes, bool and int included) with random arguments."""
    op = all_ops()[name]
    lo, hi = op.tensor_range
    n_tensors = draw(st.integers(lo, min(hi if hi is not None else 3, 3)))
    rank = draw(st.sampled_from([0, 1, 2, 2, 3, 3, 3, 4, 4, 5]))
    shared = [draw(st.sampled_from([0, 1, 2, 3, 4, 4, 5, 6, 8])) for _ in range(rank)]
    inputs = []
    for i in range(n_tensors):
        dims = (
            shared
            if i == 0 or draw(st.booleans())
            else draw(st.lists(st.sampled_from([1, 2, 3]), max_size=4))
        )
        dims_s = [str(d) for d in dims]
        if dims_s and draw(st.integers(0, 3)) == 0:
            dims_s[0] = "N"  # a symbolic batch, bound to 2 when lowered
        dtype = draw(st.sampled_from(("i32", "u8") if name in ("one_hot", "embed") else ORACLE_DTYPES))
        inputs.append(f"input t{i}: {dtype}[{', '.join(dims_s)}]")
    if name == "index":  # written as a subscript
        items = draw(st.lists(st.sampled_from(_SUBSCRIPT_ITEMS), min_size=1, max_size=rank + 1))
        call = f"t0[{', '.join(items)}]"
    else:
        args = []
        odd = draw(
            st.integers(-2 * len(op.args) - 1, len(op.args) - 1)
        )  # one argument gets an odd value, or none
        for i, a in enumerate(op.args):
            if a.default is not REQUIRED and i != odd and draw(st.booleans()):
                continue
            # a kind added to the registry later gets generic values until it is listed here
            good, bad = _ARG_VALUES.get(a.kind, '1 2 [1,2] (1,2) | 0 -1 2.5 "a" true').split("|")
            values = bad.split() if i == odd else good.split() + list(a.choices)
            if a.kind == "ints" and good:  # transpose: a permutation of this rank
                values.append("[" + ", ".join(map(str, draw(st.permutations(range(rank))))) + "]")
            args.append(f"{a.name}={draw(st.sampled_from(values or good.split()))}")
        call = f"{op.name}({', '.join([*(f't{i}' for i in range(n_tensors)), *args])})"
    return "model M {\n  " + "\n  ".join(inputs) + f"\n  y = {call}\n  output y\n}}\n"


def _outputs_named(text: str) -> Graph | None:
    """The checked graph; an op with several outputs gets as many names."""
    try:
        return load(text)
    except SpecError as e:
        many = re.search(r"the right side gives (\d+) values", e.diagnostics[0].message)
        if not many:
            return None
    names = ", ".join(f"y{i}" for i in range(int(many.group(1))))
    return checked(text.replace("  y = ", f"  {names} = ").replace("output y\n", f"output {names}\n"))


@pytest.mark.parametrize("name", sorted(all_ops()))
@settings(
    max_examples=ORACLE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_every_op_call_that_checks_compiles_with_xla(name: str, data: Any) -> None:
    """The reverse of the eval_shape oracle: what `check` accepts, XLA compiles, with the checker's types."""
    _compiles(data.draw(op_calls(name), label="spec"))


def _compiles(text: str) -> None:
    g = _outputs_named(text)
    if g is None:
        return
    env = env_of(g)
    model = abstract_module(g)
    graphdef, state = nnx.split(model)
    run = jax.jit(lambda s, x: nnx.merge(graphdef, s).trace(x))
    lowered = run.lower(state, abstract_inputs(g, env))
    lowered.compile()
    got = lowered.out_info
    for n in g.nodes:
        outs = got[n.name] if isinstance(got[n.name], tuple) else (got[n.name],)
        for t, o in zip(n.outputs, outs, strict=True):
            assert (tuple(o.shape), o.dtype) == concrete(t, env), f"{n.name} ({n.op}): {t} vs {o}\n{text}"


def test_a_call_missing_an_input_or_mixing_sizes_is_a_spec_error() -> None:
    """`model()` raised ValueError, and inputs of two batch sizes failed deep in JAX (or passed where one was
    unused): both SpecErrors naming the inputs now."""
    model = build_module(load(MLP), rngs=nnx.Rngs(0))
    with pytest.raises(SpecError) as e:
        model()
    assert e.value.diagnostics[0].message == "logits needs the input(s) x"
    with pytest.raises(SpecError) as e:
        model(x=np.ones((5, 4), np.float32), y=np.zeros((4,), np.int32))
    assert e.value.diagnostics[0].message == "y has N = 4, and x has N = 5"
