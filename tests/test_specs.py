"""The lecture zoo in specs/: every spec checks, and the checker reproduces the published parameter counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.ir.graph import Graph

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = sorted(SPECS.glob("*.net"))


def graph(name: str) -> Graph:
    return specc.load(SPECS / name).graph()


def test_the_zoo_is_there() -> None:
    names = {p.name for p in ALL_SPECS}
    for required in (
        "vgg16.net",
        "resnet18.net",
        "resnet50.net",
        "alexnet.net",
        "googlenet.net",
        "mobilenetv2.net",
        "densenet121.net",
        "efficientnet_b0.net",
        "unet.net",
        "mnist_convnet.net",
        "lenet5.net",
        "perceptron.net",
        "xor_mlp.net",
        "digits_mlp.net",
        "batchnorm_dropout.net",
        "autoencoder.net",
        "vae.net",
        "lstm_classifier.net",
        "autodiff.net",
    ):
        assert required in names


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_spec_checks(path: Path) -> None:
    summary = specc.load(path).check()
    assert summary["outputs"]
    assert summary["total_params"] >= 0


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_cli_check_json(path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["total_params"] == specc.load(path).check()["total_params"]


# ---- published parameter counts -------------------------------------------------------------------
# torchvision's model docs (pytorch.org/vision/stable/models.html, "Params" column), 1000 classes; the
# small models are counted by hand in each spec's header comment.

PUBLISHED = {
    "vgg16.net": 138_357_544,
    "resnet18.net": 11_689_512,
    "resnet50.net": 25_557_032,
    "alexnet.net": 61_100_840,
    "googlenet.net": 6_624_904,  # torchvision, aux_logits=False
    "mobilenetv2.net": 3_504_872,
    "densenet121.net": 7_978_856,
    "efficientnet_b0.net": 5_288_548,
    # the U-Net figure's layers as PyTorch counts them (Conv2d and ConvTranspose2d, with biases)
    "unet.net": sum(
        9 * cin * c + c + 9 * c * c + c for cin, c in [(1, 64), (64, 128), (128, 256), (256, 512)]
    )
    + (9 * 512 * 1024 + 1024 + 9 * 1024 * 1024 + 1024)  # the bottom
    + sum(
        4 * 2 * c * c + c + 9 * 2 * c * c + c + 9 * c * c + c for c in (512, 256, 128, 64)
    )  # up-conv, Double
    + (64 * 2 + 2),
    "mnist_convnet.net": 105_506,
    "lenet5.net": 61_706,
    "lenet5_padded.net": 61_706,
    "xor_mlp.net": 9,
    "perceptron.net": 3,
    "digits_mlp.net": 9_610,
    "autoencoder.net": 4_192,
    "batchnorm_dropout.net": 51_210,
    "vae.net": 17_476,
    "lstm_classifier.net": 328_353,  # Keras' summary in Chollet's IMDB LSTM example
    "autodiff.net": 0,
    # issue 9's lecture specs, counted by hand: shared instances once, frozen layers included
    "gan_digits.net": (16 * 128 + 128 + 128 * 64 + 64) + (64 * 128 + 128 + 128 + 1),
    "siamese.net": (64 * 128 + 128) + (128 * 32 + 32),
    "elm.net": (64 * 512 + 512) + (512 * 10 + 10),
    "distillation.net": (64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10) + (64 * 16 + 16 + 16 * 10 + 10),
    # encoder–decoder lecture specs: Flax's LSTM 4·(F·H + H·H + H); attention of 64 features 4·64·64 + 4·64
    "seq2seq.net": 2 * 10 * 32 + 2 * 4 * (32 * 128 + 128 * 128 + 128) + 128 * 10 + 10,
    "transformer_encoder_decoder.net": 2 * 640
    + 2 * (2 * 128 + 16_640 + 16_576)  # two encoder layers
    + 2 * (3 * 128 + 2 * 16_640 + 16_576)  # two decoder layers: self- and cross-attention
    + 2 * 128
    + 650,
}


@pytest.mark.parametrize(("name", "params"), PUBLISHED.items())
def test_published_parameter_counts(name: str, params: int) -> None:
    assert graph(name).total_params == params


# Batch-norm running mean and variance are state, reported apart: 2 values per normalised channel.
# ResNet-18: 64 (stem) + 4·64 + (4·128 + 128) + (4·256 + 256) + (4·512 + 512) = 4,800 channels.
# ResNet-50: 64 + Σ stages (6c per block · blocks + 4c projection) = 26,560 channels; torchvision's
# running_mean/running_var buffers hold the same 53,120 values.
STATE = {
    "resnet18.net": 9_600,
    "resnet50.net": 53_120,
    "batchnorm_dropout.net": 2 * (256 + 128),
    "vgg16.net": 0,
    "mnist_convnet.net": 0,
}


@pytest.mark.parametrize(("name", "state"), STATE.items())
def test_batchnorm_state_counts(name: str, state: int) -> None:
    assert graph(name).total_state == state


def test_state_is_reported_apart_on_the_command_line() -> None:
    result = CliRunner().invoke(main, ["check", str(SPECS / "resnet18.net")])
    assert result.exit_code == 0, result.output
    assert "params:  11,689,512 (+9,600 state)" in result.output


# ---- the MNIST convnet's shape chain ----------------------------------------------------------------


def test_mnist_convnet_shape_chain() -> None:
    g = graph("mnist_convnet.net")
    shapes = {name: str(g.type_of(ref)) for name, ref in g.value_map.items()}
    assert shapes["c1"] == "f32[N, 24, 24, 32]"  # 28 - 5 + 1
    assert shapes["p1"] == "f32[N, 8, 8, 32]"  # maxpool 3, stride 3
    assert shapes["c2"] == "f32[N, 4, 4, 64]"
    assert shapes["p2"] == "f32[N, 2, 2, 64]"
    assert shapes["f"] == "f32[N, 256]"
    assert shapes["logits"] == "f32[N, 10]"
    # the same chain, node by node, through the layers that change the spatial size
    spatial = [n.type.dims[1].value for n in g if n.op in ("input", "conv", "maxpool") and n.type.rank == 4]
    assert spatial == [28, 24, 8, 4, 2]
    per_layer = [n.param_count for n in g if n.param_count]
    assert per_layer == [832, 51_264, 51_400, 2_010]


def test_mnist_convnet_conv_and_dense_flops() -> None:
    # a multiply-add counts 2: conv1 24·24·32 outputs × 5·5·1 taps, conv2 4·4·64 × 5·5·32, dense 256·200, 200·10
    g = graph("mnist_convnet.net")
    flops = [n.flops.subst({"N": 1}).value for n in g if n.op in ("conv", "dense")]
    assert flops == [2 * 24 * 24 * 32 * 25, 2 * 4 * 4 * 64 * 800, 2 * 256 * 200, 2 * 200 * 10]


def test_flops_of_the_language_sketch_example() -> None:
    # LANGUAGE.md §4: a 3×3 conv to 16 channels on 28×28×3, valid: 26·26·16 outputs × 27 taps × 2 = 584,064
    spec = specc.load(
        "t.net", text="model M {\n  input x: f32[N, 28, 28, 3]\n  y = x -> conv(16, 3)\n  output y\n}\n"
    )
    assert spec.check()["flops_per_example"] == 584_064


def test_big_models_end_in_the_published_feature_maps() -> None:
    assert str(graph("resnet18.net").type_of(graph("resnet18.net").value_map["c5"])) == "f32[N, 7, 7, 512]"
    g = graph("resnet50.net")
    assert str(g.type_of(g.value_map["c5"])) == "f32[N, 7, 7, 2048]"
    g = graph("googlenet.net")
    assert str(g.type_of(g.value_map["i5"])) == "f32[N, 7, 7, 1024]"
    g = graph("densenet121.net")  # 512 + 16·32 channels after the last dense block
    assert str(g.type_of(g.value_map["d4"])) == "f32[N, 7, 7, 1024]"
    g = graph("unet.net")  # the figure's 572×572 tile → 388×388, the skips cropped to 392, 200, 104 and 56
    assert str(g.type_of(g.output_map["logits"])) == "f32[N, 388, 388, 2]"
    crops = sorted(str(n.type) for n in g if n.name.endswith("/crop"))
    assert crops == [f"f32[N, {s}, {s}, {c}]" for s, c in ((104, 256), (200, 128), (392, 64), (56, 512))]


def test_lstm_classifier_is_symbolic_in_the_sequence_length() -> None:
    g = graph("lstm_classifier.net")
    assert str(g.nodes[g.input_map["tokens"]].type) == "i32[N, T]"
    assert str(g.type_of(g.value_map["e"])) == "f32[N, T, 32]"
    assert str(g.type_of(g.output_map["p"])) == "f32[N, 1]"
    # its FLOPs depend on T, so there is no single per-example figure
    assert specc.load(SPECS / "lstm_classifier.net").check()["flops_per_example"] is None


def test_autodiff_graph_is_scalar() -> None:
    g = graph("autodiff.net")
    assert [str(g.nodes[i].type) for _, i in g.inputs] == ["f32[]", "f32[]"]
    assert str(g.type_of(g.output_map["z"])) == "f32[]"
    assert [n.op for n in g if n.op not in ("input",)] == ["sin", "mul", "add", "grad"]
    # ∂z/∂x1, checked against cos(x1) + x2 in test_grad.py
    assert str(g.type_of(g.output_map["dz_dx1"])) == "f32[]"


def test_vae_heads_and_sample() -> None:
    g = graph("vae.net")
    ops = {n.name: n.op for n in g}
    assert ops["z"] == "sample_normal"
    assert {k: str(g.type_of(r)) for k, r in g.outputs} == {
        "recon": "f32[N, 64]",
        "mu": "f32[N, 2]",
        "logvar": "f32[N, 2]",
    }


def test_perceptron_uses_free_parameters() -> None:
    g = graph("perceptron.net")
    params = {n.name: n.attr["shape"] for n in g if n.op == "param"}
    assert params == {"w": (2, 1), "b": (1,)}
    assert any(n.op == "step" for n in g)
