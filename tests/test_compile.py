"""`specc compile`: the summary table and JSON (totals equal the checker's), StableHLO text, and emitted Flax source
that runs and computes what the lowered module computes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from flax import nnx

import specc
from specc.backend.compile import compile_graph
from specc.backend.emit_flax import emit_flax
from specc.backend.flax import (
    ParamValue,
    SpecModule,
    build_module,
    compiler_options,
    graph_compiler_options,
)
from specc.cli import main
from specc.ir.graph import Graph
from specc.ir.types import JNP_NAMES

SPECS = Path(__file__).parent.parent / "specs"
MLP = SPECS / "mlp.net"
CONV = SPECS / "mnist_convnet.net"


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ---- the table and JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [MLP, CONV], ids=lambda p: p.stem)
def test_table_lists_every_node_with_totals(path: Path) -> None:
    r = run("compile", path)
    assert r.exit_code == 0, r.output
    g = specc.load(path).graph()
    for n in g.nodes:
        assert n.name in r.output
    assert f"{g.total_params:,}" in r.output
    assert "XLA compile" in r.output
    assert "f32[32, 10]" in r.output  # the batch bound to 32 by default


@pytest.mark.parametrize("path", [MLP, CONV], ids=lambda p: p.stem)
def test_json_totals_equal_the_checkers(path: Path) -> None:
    r = run("compile", path, "--json", "--batch", 8)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    check = specc.load(path).check()
    assert out["model"] == check["model"]
    assert out["total_params"] == check["total_params"]
    assert out["total_flops"] == check["flops_per_example"]
    assert [n["name"] for n in out["nodes"]] == [n.name for n in specc.load(path).graph().nodes]
    assert sum(n["params"] for n in out["nodes"]) == out["total_params"]
    assert sum(n["flops"] for n in out["nodes"]) == out["total_flops"]
    assert set(out["nodes"][0]) >= {"name", "op", "shape", "params", "flops"}
    assert out["nodes"][-1]["shape"] == "f32[8, 10]"


def test_mnist_convnet_flops_match_the_published_arithmetic() -> None:
    # LANGUAGE.md: a 3×3 conv to 16 channels on 28×28×3, valid: 584,064 FLOPs
    g = specc.load(
        "t.net", text="model C {\n input x: f32[N, 28, 28, 3]\n y = x -> conv(16, 3)\n output y\n}"
    ).graph()
    c = compile_graph(g, batch=4, compile=False)
    assert c.counts.total_flops == 584_064
    assert c.counts.nodes[-1].shape == "f32[4, 26, 26, 16]"


def test_a_size_bound_twice_is_a_usage_error(tmp_path: Path) -> None:
    """`--bind T=3 --bind T=4` compiled at T=4, the first binding dropped silently (export's --bind too: one
    parser serves both)."""
    path = tmp_path / "seq.net"
    path.write_text("model S {\n input x: f32[N, T, 3]\n y = x -> lstm(4, return=last)\n output y\n}")
    r = CliRunner().invoke(main, ["compile", str(path), "--bind", "T=3", "--bind", "T=4", "--json"])
    assert r.exit_code == 2, r.output
    assert "Invalid value for --bind: T is bound twice (T=3, then T=4); give it once" in r.output
    r = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "onnx", "--bind", "N=2", "--bind", "N=2"])
    assert r.exit_code == 2 and "N is bound twice" in r.output, r.output


def test_free_sizes_need_a_binding(tmp_path: Path) -> None:
    path = tmp_path / "seq.net"
    path.write_text("model S {\n input x: f32[N, T, 3]\n y = x -> lstm(4, return=last)\n output y\n}")
    runner = CliRunner()
    r = runner.invoke(main, ["compile", str(path)])
    # the spec is valid (check passes it): the command line lacks T's number, a usage error located at the input
    assert runner.invoke(main, ["check", str(path)]).exit_code == 0
    assert r.exit_code == 2, r.output
    assert f"{path}:2:2: usage error: input x: f32[N, T, 3] has the free size(s) T" in r.output
    assert "hint: pass --bind T=16" in r.output
    r = runner.invoke(main, ["compile", str(path), "--bind", "T=6", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["bind"] == {"N": 32, "T": 6}
    assert out["total_params"] == 4 * (3 * 4 + 4 * 4 + 4)
    r = runner.invoke(main, ["compile", str(path), "--bind", "T=x"])
    assert r.exit_code == 2
    # a name no input has (`t` for T) was ignored silently, and the report said T was free or compiled without it
    r = runner.invoke(main, ["compile", str(path), "--bind", "T=6", "--bind", "t=6"])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("usage error: --bind t: the model's inputs have no size of that name")
    assert "hint: its sizes are N, T" in r.stderr


# ---- StableHLO -----------------------------------------------------------------------------------


def test_emit_hlo_to_stdout_and_to_a_directory(tmp_path: Path) -> None:
    r = run("compile", MLP, "--emit", "hlo")
    assert r.exit_code == 0
    assert "stablehlo.dot_general" in r.output and "tensor<32x64xf32>" in r.output
    # the plain lowering: on CPU the default runs this model's convs as im2col matmuls (no convolution op)
    r = run("compile", CONV, "--emit", "hlo", "-o", tmp_path, "--batch", 2, "--lowering", "reference")
    assert r.exit_code == 0
    text = (tmp_path / "MNISTConvNet.stablehlo.mlir").read_text()
    assert "stablehlo.convolution" in text and "tensor<2x28x28x1xf32>" in text


# ---- emitted Flax source ---------------------------------------------------------------------------


def load_emitted(source: str, model: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "emitted"}
    exec(compile(source, f"<{model}.py>", "exec"), namespace)
    return namespace[model]


def transfer(spec_model: SpecModule, emitted: Any) -> None:
    """Copy parameters and state layer by layer: the emitted attributes are named like `model.layers`."""
    for key in spec_model.layers:
        src = spec_model.layers[key]
        if isinstance(src, ParamValue):
            getattr(emitted, key).set_value(src.value[...])
        else:
            nnx.update(getattr(emitted, key), nnx.state(src))


def example_inputs(g: Graph, batch: int = 3, sizes: dict[str, int] | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    env = {"N": batch, **(sizes or {})}
    out = {}
    for name, nid in g.inputs:
        t = g.nodes[nid].type
        shape = tuple(d.subst(env).as_int() for d in t.dims)
        dtype = np.dtype(JNP_NAMES[t.dtype])
        out[name] = (
            rng.normal(size=shape).astype(dtype) if t.is_float else rng.integers(0, 3, shape).astype(dtype)
        )
    return out


def assert_emitted_matches(
    g: Graph, tmp_path: Path | None = None, sizes: dict[str, int] | None = None
) -> None:
    source = emit_flax(g)
    if tmp_path is not None:  # a file on disk that imports on its own
        (tmp_path / f"{g.model.lower()}.py").write_text(source)
    ours = build_module(g, rngs=nnx.Rngs(0))
    # abstract: every value is overwritten by the transfer, so initialising it would only cost XLA compiles
    cls = load_emitted(source, g.model)
    theirs = nnx.eval_shape(lambda: cls(nnx.Rngs(1)))
    transfer(ours, theirs)
    ours.eval()
    theirs.eval()
    x = example_inputs(g, sizes=sizes)

    def run(module: Any, call: Any) -> Any:
        """Jitted (one XLA compile is faster than running op by op), with the options specc compiles the
        model's own programs with (a conv model's: XLA:CPU's older emitters, compiled in half the time)."""
        graphdef, state = nnx.split(module)
        program = jax.jit(lambda s, x: call(nnx.merge(graphdef, s), x), compiler_options=options)
        return program(state, x)

    options = graph_compiler_options(g)
    want = run(ours, lambda m, x: m(x))
    got = run(theirs, lambda m, x: m(**x))
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-5, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("path", [MLP, CONV], ids=lambda p: p.stem)
def test_emitted_flax_runs_and_matches(path: Path, tmp_path: Path) -> None:
    r = run("compile", path, "--emit", "flax", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    g = specc.load(path).graph()
    source = (tmp_path / f"{g.model.lower()}.py").read_text()
    assert f"class {g.model}(nnx.Module):" in source and "def __call__(self, *," in source
    assert source == emit_flax(g)
    assert_emitted_matches(g, tmp_path)


def test_emitted_flax_same_seed_same_parameters() -> None:
    g = specc.load(CONV).graph()
    ours = build_module(g, rngs=nnx.Rngs(0))
    cls = load_emitted(emit_flax(g), g.model)
    # the emitted model made in one program, as build_module makes its layers (made eagerly, each kernel's draw
    # was a program of its own at XLA's full optimisation: 7 of this test's 8 s)
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: cls(nnx.Rngs(0))))
    made = jax.jit(lambda: nnx.state(cls(nnx.Rngs(0)))).lower().compile(compiler_options(once=True))
    theirs = nnx.merge(graphdef, made())
    a = jax.tree.leaves(nnx.state(ours, nnx.Param))
    b = jax.tree.leaves(nnx.state(theirs, nnx.Param))
    assert sum(x.size for x in a) == sum(x.size for x in b) == g.total_params
    for name in ("c1", "c2", "h_dense", "logits"):
        for ours_leaf, theirs_leaf in zip(
            jax.tree.leaves(nnx.state(ours.layers[name], nnx.Param)),
            jax.tree.leaves(nnx.state(getattr(theirs, name), nnx.Param)),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(ours_leaf), np.asarray(theirs_leaf), err_msg=name)


UNIFORM_INIT = """
model U {
  input x: f32[N, 64]
  param w: [64, 64] = uniform(0.5)
  y = x @ w -> dense(256, init=uniform(0.05), bias_init=uniform)
  output y
}
"""


def test_uniform_init_is_symmetric_built_and_emitted(tmp_path: Path) -> None:
    """`init=uniform(s)` is U(−s, s), as the lectures' "small random weights in [−ε, ε]": it drew JAX's
    uniform(s), in [0, s), every weight positive. The emitted Flax draws the same values."""
    path = tmp_path / "u.net"
    path.write_text(UNIFORM_INIT)
    g = specc.load(path).graph()
    ours = build_module(g, rngs=nnx.Rngs(0))
    w = np.asarray(ours.layers["w"].value[...])
    k = np.asarray(ours.layers["y"].kernel[...])
    b = np.asarray(ours.layers["y"].bias[...])
    for a, s in ((w, 0.5), (k, 0.05), (b, 0.01)):
        assert a.min() < -0.8 * s and a.max() > 0.8 * s and np.abs(a).max() <= s
    cls = load_emitted(emit_flax(g), g.model)
    theirs = cls(nnx.Rngs(0))
    # the same draws; made eagerly here and in one program there, they may differ in the last bit
    np.testing.assert_allclose(np.asarray(theirs.w[...]), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(theirs.y.kernel[...]), k, rtol=1e-6, atol=1e-7)


MANY_OPS = """
block Mix(c) {
  input x: [N, T, F]
  h = x -> dense(c) -> gelu -> layernorm
  output h
}
model Many {
  param w: [8, 8] = normal(0.1)
  input x: f32[N, 6, 8]
  input img: f32[N, 8, 8, 3]
  input ids: i32[N, 6]
  input unused: f32[N, 2]
  e = ids -> embed(5, 8)
  s = x + e -> positional -> positional(max_len=10, kind=learned)
  a = s -> attention(2, causal=true) -> Mix(8)
  r = a -> lstm(4, bidirectional=true, return=last)
  g = a -> gru(3)
  q = (a @ w) * 2 - 1
  left, right = split(q, 2, axis=-1)
  t = concat(left[:, 0:2, :], right[:, -2:, :], axis=1) -> reshape([N, -1]) -> softmax
  c = img -> conv(4, 3, padding=same, groups=1) -> batchnorm -> leaky_relu(slope=0.2)
      -> maxpool(2) -> upsample(2) -> avgpool(3, stride=2, padding=1) -> adaptive_avgpool(3)
  p = c -> conv_transpose(2, 2, stride=2) -> groupnorm(2) -> global_avgpool
  m = mean(g, axis=1) + norm(r, axis=-1, keepdims=true) -> tanh
  k = stack(p, p, axis=1) -> flatten -> dropout(0.3)
  z = concat(m, k, axis=-1)
  j = argmax(z, axis=-1) -> one_hot(3) -> cast(f32)
  output t, z, j
}
"""


def test_emitted_flax_covers_many_ops(tmp_path: Path) -> None:
    g = specc.load("many.net", text=MANY_OPS).graph()
    source = emit_flax(g)
    assert "unused=None" in source
    assert_emitted_matches(g, tmp_path)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.net")), ids=lambda p: p.stem)
def test_every_spec_emits_valid_python(path: Path) -> None:
    for model in specc.load(path).program.models:
        source = emit_flax(specc.load(path, model).graph())
        compile(source, f"{model}.py", "exec")


def test_every_activation_emits_what_it_lowers_to() -> None:
    """One definition per activation (specc/ops/activation.py): the emitted Flax of each, arguments changed from
    their defaults where it has any, computes what the lowering computes."""
    from specc.ops.activation import ACTIVATIONS

    args = {
        "softmax": "(axis=0)",
        "log_softmax": "(axis=0)",
        "gelu": "(approximate=true)",
        "elu": "(alpha=0.5)",
    }
    args["leaky_relu"] = "(slope=0.2)"
    lines = "\n".join(f"  a{i} = x -> {name}{args.get(name, '')}" for i, name in enumerate(ACTIVATIONS))
    outs = "\n".join(f"  output a{i}" for i in range(len(ACTIVATIONS)))
    g = specc.load("t.net", text=f"model Acts {{\n  input x: f32[N, 7]\n{lines}\n{outs}\n}}\n").graph()
    assert_emitted_matches(g)


SQUEEZE_EXCITE = """
model SE {
  input x: f32[N, 6, 5, 8]
  s = x -> global_avgpool(keepdims=true) -> conv(2, 1) -> relu -> conv(8, 1) -> sigmoid : [N, 1, 1, 8]
  y = x * s
  m = x -> global_maxpool(keepdims=true) : [N, 1, 1, 8]
  g = x -> global_avgpool : [N, 8]
  output y, m, g
}
"""


def test_global_pools_keep_their_spatial_axes_on_request() -> None:
    """global_avgpool(keepdims=true) is [N, 1, 1, C] (a squeeze-and-excitation scale, PyTorch's
    AdaptiveAvgPool2d(1)): it was 'no parameter keepdims'. The checker's shapes are what JAX computes, the values
    are the mean and max with the axes kept, and the emitted Flax writes them alike."""
    g = specc.load("se.net", text=SQUEEZE_EXCITE).graph()
    model = build_module(g, rngs=nnx.Rngs(0))
    x = example_inputs(g, batch=2)
    shapes = jax.eval_shape(lambda x: model(**x), x)
    for name in ("y", "m", "g"):
        want = tuple(d.subst({"N": 2}).as_int() for d in g.type_of(g.value_map[name]).dims)
        assert shapes[name].shape == want, name
    out = model(**x)
    np.testing.assert_allclose(out["m"], x["x"].max(axis=(1, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(out["g"], x["x"].mean(axis=(1, 2)), rtol=1e-6)
    assert_emitted_matches(g)


def test_emitted_sizes_keep_a_floor_inside_a_product() -> None:
    """4·floor(T/2) was written `4 * (T) // 2`, which Python reads as (4·T) // 2: the emitted reshape of a pooled
    odd-length sequence asked for 14 values where there were 12."""
    from specc.backend.emit_flax import py_dim
    from specc.ir.dims import Dim

    t = Dim.sym("T")
    for d in (t.floordiv(2) * 4, (t - 4).floordiv(2) * 4 + 3, t.floordiv(2) * t.floordiv(3)):
        for value in (6, 7, 9):
            assert eval(py_dim(d), {"T": value}) == d.subst({"T": value}).as_int(), (py_dim(d), value)
