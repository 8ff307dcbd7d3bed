"""`specc export`: ONNX (checked against onnxruntime: outputs equal JAX's within 1e-4 absolute), StableHLO
(deserialised and run), and the named weights as npz/safetensors; an op jax2onnx lacks is a clean error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import specc
from specc.cli import main

ROOT = Path(__file__).parent.parent
TOL = 1e-4  # absolute, on outputs of order 1-10: float32 reassociation in onnxruntime's kernels


def _inputs(sig, bind, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for (name, dt, _), shape in zip(sig.inputs, sig.shapes(bind, "onnx"), strict=True):
        out[name] = (
            rng.integers(0, 100, shape).astype(np.int32)
            if dt == "i32"
            else rng.standard_normal(shape).astype(np.float32)
        )
    return out


def _onnx_matches_jax(model, data: bytes, bind) -> float:
    import jax
    import onnxruntime as ort

    from specc.backend.flax import graph_compiler_options
    from specc.train.export import pure_function

    f, sig = pure_function(model)
    feeds = _inputs(sig, bind)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    got = ort.InferenceSession(data, opts).run(None, feeds)
    # compiled as specc compiles the model's own programs (a conv model's: ResNet-18's forward 8.6 → 5.4 s)
    want = jax.jit(f, compiler_options=graph_compiler_options(model.graph))(*feeds.values())
    return max(float(np.max(np.abs(np.asarray(g) - np.asarray(w)))) for g, w in zip(got, want, strict=True))


@pytest.mark.slow
# specc/ops/conv.py's im2col lowering (in progress) still reads `.value`; drop this filter once it uses [...]
@pytest.mark.filterwarnings("ignore:'.value' access is now deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("spec", "bind"),
    [
        ("lenet5.net", {"N": 3}),
        ("lstm_classifier.net", {"N": 3, "T": 7}),
        ("mnist_convnet.net", {"N": 3}),
        ("autodiff.net", {}),  # its output dz_dx1 = grad(z, x1): jax.grad traced into ONNX's elementwise ops
        # specc's flat-drawing Dropout passed rngs=None to jax2onnx's patched nnx.Dropout call: a TypeError
        ("batchnorm_dropout.net", {"N": 3}),
    ],
)
def test_onnx_equals_jax_for_zoo_models(spec: str, bind: dict[str, int]) -> None:
    from specc.backend.flax import build_module
    from specc.train.export import to_onnx

    model = build_module(specc.load(ROOT / "specs" / spec).graph(), seed=0)
    assert _onnx_matches_jax(model, to_onnx(model, bind), bind) <= TOL


def test_an_onnx_export_leaves_jax2onnx_s_equinox_plugins_unimported() -> None:
    """jax2onnx's first to_onnx imports all its plugins, and its equinox ones build equinox layers as they are
    imported (13 s of CPU compiling their initialisers); specc registers the converters for JAX and Flax itself.
    A jax2onnx whose internals moved would import them all again: slower, and this fails to say so."""
    import sys

    from specc.backend.flax import build_module
    from specc.train.export import to_onnx

    to_onnx(build_module(specc.load(ROOT / "specs" / "autodiff.net").graph(), seed=0))
    assert "jax2onnx.plugins.jax.lax.add" in sys.modules
    assert [m for m in sys.modules if m.startswith(("jax2onnx.plugins.equinox", "equinox"))] == []


@pytest.mark.slow
def test_export_a_trained_run_in_every_format(tmp_path: Path) -> None:
    import jax
    from jax import export as jexport

    out = tmp_path / "run"
    r = CliRunner().invoke(
        main, ["train", str(ROOT / "specs" / "digits_mlp.net"), "--epochs", "1", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    run = specc.load_run(out)
    for fmt in ("onnx", "npz", "safetensors", "stablehlo"):
        r = CliRunner().invoke(main, ["export", str(out), "--to", fmt, "--bind", "N=4"])
        assert r.exit_code == 0, r.output
    assert _onnx_matches_jax(run.model, (out / "DigitsMLP.onnx").read_bytes(), {"N": 4}) <= TOL

    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    exported = jexport.deserialize(bytearray((out / "DigitsMLP.stablehlo").read_bytes()))
    (logits,) = exported.call(x)
    np.testing.assert_allclose(np.asarray(logits), jax.jit(lambda v: run.model(x=v)["logits"])(x), atol=1e-6)

    with np.load(out / "DigitsMLP.npz") as z:
        names = set(z.files)
        kernel = z["params/layers/h_dense/kernel"] if "params/layers/h_dense/kernel" in names else None
    from safetensors.numpy import load_file

    st = load_file(str(out / "DigitsMLP.safetensors"))
    assert set(st) == names and any(n.endswith("/kernel") for n in names)
    if kernel is not None:
        np.testing.assert_array_equal(st["params/layers/h_dense/kernel"], kernel)


def test_unsupported_ops_are_listed_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.backend.flax import build_module
    from specc.errors import SpecError
    from specc.train import export

    jax2onnx = pytest.importorskip("jax2onnx")

    def refuse(*a, **k):
        raise NotImplementedError("[jaxpr] No plugins registered for primitive 'cumlogsumexp'")

    monkeypatch.setattr(jax2onnx, "to_onnx", refuse)
    model = build_module(specc.load(ROOT / "specs" / "perceptron.net").graph(), seed=0)
    with pytest.raises(SpecError) as e:
        export.to_onnx(model, {"N": 1})
    assert "cumlogsumexp" in e.value.render() and "export error" in e.value.render()


def test_free_sizes_must_be_bound() -> None:
    from specc.backend.flax import build_module
    from specc.errors import SpecError
    from specc.train.export import to_stablehlo

    model = build_module(specc.load(ROOT / "specs" / "lstm_classifier.net").graph(), seed=0)
    with pytest.raises(SpecError) as e:
        to_stablehlo(model)
    assert "--bind T=" in e.value.render()


@pytest.mark.slow
def test_a_size_the_runs_data_fixed_needs_no_bind(tmp_path: Path) -> None:
    """`input x: f32[N, T, 1]` trained on windows of 8: `specc export RUN` asked for --bind T=... though the run's
    data fixed T. The run records T = 8 (run.json's data_sizes), the export uses it and says so; --bind wins."""
    from jax import export as jexport

    spec = tmp_path / "f.net"
    spec.write_text(
        (ROOT / "specs" / "lstm_forecaster.net")
        .read_text()
        .replace("sine_windows(n=1000, window=32, split=0.9)", "sine_windows(n=64, window=8, split=0.9)")
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(spec), "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["data_sizes"] == {"T": 8}
    for binds, shape in (([], (1, 8, 1)), (["--bind", "T=5", "--bind", "N=2"], (2, 5, 1))):
        r = CliRunner().invoke(
            main, ["export", str(out), "--to", "stablehlo", "-o", str(tmp_path / "f"), "--force", *binds]
        )
        assert r.exit_code == 0, r.output
        assert ("sizes from the run's training data: T=8 (--bind overrides)" in r.stderr) == (not binds)
        exported = jexport.deserialize(bytearray((tmp_path / "f").read_bytes()))
        assert [a.shape for a in exported.in_avals] == [shape]


def test_npz_and_safetensors_hold_the_same_arrays_scalars_included() -> None:
    """A dropout's RNG count is a 0-d leaf: safetensors stored it as shape (1,) (np.ascontiguousarray makes 0-d
    arrays 1-d), so the two weight formats disagreed on its shape."""
    import io

    pytest.importorskip("safetensors")
    from safetensors.numpy import load

    from specc.backend.flax import build_module
    from specc.train.export import to_npz, to_safetensors

    model = build_module(specc.load(ROOT / "specs" / "batchnorm_dropout.net").graph(), seed=0)
    with np.load(io.BytesIO(to_npz(model))) as z:
        npz = {k: z[k] for k in z.files}
    st = load(to_safetensors(model))
    assert any(a.ndim == 0 for a in npz.values())
    assert {k: (a.dtype, a.shape) for k, a in st.items()} == {k: (a.dtype, a.shape) for k, a in npz.items()}


def test_a_computed_input_size_is_bound_through_its_names() -> None:
    """specs/siamese.net's x: f32[2*P, 64]: the export said 'the input size(s) ? are free ... --bind ?=16', and
    no --bind could bind it; a --bind of a name no input has (a typo, n for N) was silently ignored."""
    from specc.backend.flax import build_module
    from specc.errors import SpecError
    from specc.train.export import signature

    sig = signature(build_module(specc.load(ROOT / "specs" / "siamese.net").graph(), seed=0))
    assert sig.shapes({"P": 3}, "onnx") == [(6, 64)]
    for bind, words in [
        (
            {},
            "cannot export to onnx: the input size(s) P are free; an exported model has fixed sizes\n"
            "hint: bind them, e.g. --bind P=16",
        ),
        (
            {"N": 4},
            "cannot export to onnx: --bind N: the model's inputs have no size of that name\nhint: its sizes are P",
        ),
    ]:
        with pytest.raises(SpecError) as e:
            sig.shapes(bind, "onnx")
        assert e.value.render() == "usage error: " + words, e.value.render()  # the command line's: exit 2


@pytest.mark.slow
def test_resnet18_exports_and_equals_jax() -> None:
    """The whole ResNet-18 (at 64×64 to keep CI short; 224×224 measured 7.2e-07): padded overlapping max-pool as
    strided slices, convolutions channels-first and batch-norm as arithmetic for export, where jax2onnx's own
    conversions lose a transpose or make a max-pool onnxruntime refuses."""
    import re

    from specc.backend.flax import build_module
    from specc.train.export import to_onnx

    text = re.sub(r"\s*: \[N[^\]]*\]", "", (ROOT / "specs" / "resnet18.net").read_text())
    model = build_module(specc.load("resnet18.net", text=text.replace("224, 224", "64, 64")).graph(), seed=0)
    assert _onnx_matches_jax(model, to_onnx(model, {"N": 1}), {"N": 1}) <= TOL


@pytest.mark.slow
def test_a_unet_step_exports_without_library_log_noise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """onnx_ir logged a WARNING per untyped intermediate of a max-pool before a conv_transpose (six lines for a
    small U-Net); the file was fine. The export now says only what it wrote, and the file still equals JAX."""
    import logging

    from specc.backend.flax import build_module
    from specc.train.export import to_onnx

    spec = tmp_path / "up.net"
    spec.write_text(  # a U-Net's step: down by a max-pool, up by a conv_transpose, joined to the skip
        "model Up {\n  input x: f32[N, 28, 28, 1]\n  e = x -> conv(16, 3, padding=same) -> relu\n"
        "  u = e -> maxpool(2) -> conv(4, 3, padding=same) -> conv_transpose(4, 2, stride=2)\n"
        "  d = concat(u, e) -> conv(1, 1)\n  output d\n}\n"
    )
    model = build_module(specc.load(spec).graph(), seed=0)
    with caplog.at_level(logging.WARNING):
        data = to_onnx(model, {"N": 2})
    assert [r.getMessage() for r in caplog.records if r.name.startswith("onnx_ir")] == []
    assert logging.getLogger("onnx_ir").level == logging.NOTSET  # restored
    assert _onnx_matches_jax(model, data, {"N": 2}) <= TOL


@pytest.mark.slow
def test_an_onnx_model_no_runtime_loads_is_an_export_error(tmp_path: Path) -> None:
    """jax2onnx drops a bf16 or f16 model's casts of its f32 weights after the first layer, and wrote a Gemm of
    bf16 activations and f32 weights that onnxruntime refuses to load, exit 0; ONNX's checker now runs on it."""
    pytest.importorskip("jax2onnx")
    from specc.backend.flax import build_module
    from specc.errors import SpecError
    from specc.train.export import to_onnx

    spec = tmp_path / "half.net"
    spec.write_text(
        "model Half {\n  input x: bf16[N, 4]\n  y = x -> dense(3) -> relu -> dense(2)\n  output y\n}\n"
    )
    with pytest.raises(SpecError) as e:
        to_onnx(build_module(specc.load(spec).graph(), seed=0))
    text = e.value.render()
    assert "export error: cannot export to onnx" in text and "checker refuses" in text, text
    assert "half precision (x: bf16): export to stablehlo" in text, text


def test_the_onnx_checker_refuses_mixed_types_in_one_node() -> None:
    """The check itself, on a Gemm of a bf16 input and f32 weights as jax2onnx wrote it (building one through
    jax2onnx takes ~14 s: the test above)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from specc.errors import SpecError
    from specc.train.export import _check_onnx

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.0] * 8)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])],
        "half",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 2])],
        [w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(SpecError) as e:
        _check_onnx(proto, [("x", "bf16", ("N", 4))])
    assert "checker refuses" in e.value.render() and "(x: bf16)" in e.value.render()
    w32 = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.0] * 8)
    fine = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])],
        "f32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w32],
    )
    _check_onnx(
        helper.make_model(fine, opset_imports=[onnx.helper.make_opsetid("", 21)]), [("x", "f32", ("N", 4))]
    )
