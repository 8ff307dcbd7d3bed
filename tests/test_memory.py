"""Tests for specc.passes.memory: the training-memory estimate and the up-front refusal of models that cannot fit."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import specc
from specc.errors import SpecError
from specc.ir.graph import Graph
from specc.passes.memory import (
    check_memory,
    estimate_memory,
    format_bytes,
    optimizer_slots,
)

ROOT = Path(__file__).resolve().parents[1]

BIG = """model Big {
  input x: f32[N, 64]
  h = x -> dense(1000000000)
  y = h -> dense(10)
  output y
}
"""


def graph_of(name: str) -> Graph:
    return specc.load(ROOT / "specs" / name).graph()


@pytest.mark.parametrize("spec", ["mlp.net", "mnist_convnet.net", "resnet18.net", "lstm_classifier.net"])
def test_parameter_bytes_are_four_per_parameter(spec: str) -> None:
    g = graph_of(spec)
    est = estimate_memory(g, 32, "adam")
    assert g.total_params > 0
    assert est.parameters == 4 * g.total_params == est.gradients
    assert est.optimizer_state == 2 * est.parameters  # adam's m and v
    assert est.model_state == 4 * g.total_state
    assert sum(n.param_bytes for n in est.nodes) == est.parameters


def test_optimizer_state_per_optimizer() -> None:
    g = graph_of("mlp.net")
    p = 4 * g.total_params
    assert estimate_memory(g, 8, "sgd").optimizer_state == 0
    assert estimate_memory(g, 8, "sgd", {"momentum": 0.9}).optimizer_state == p
    assert estimate_memory(g, 8, "rmsprop", {"centered": True, "momentum": 0.5}).optimizer_state == 3 * p
    assert [optimizer_slots(n) for n in ("adagrad", "lion", "adamw", "lamb", "adadelta")] == [1, 1, 2, 2, 2]


def test_activations_are_the_node_outputs_for_the_batch() -> None:
    g = graph_of("mlp.net")  # x [N, 64] -> dense(100) -> relu -> dense(10), and the labels y [N] (i32)
    est = estimate_memory(g, 64, "sgd")
    assert est.activations == 4 * 64 * (64 + 1 + 100 + 100 + 10)
    assert est.largest_activation == 4 * 64 * 100
    assert estimate_memory(g, 128, "sgd").activations == 2 * est.activations
    assert (
        est.total == est.parameters + est.gradients + est.optimizer_state + est.model_state + est.activations
    )
    assert est.describe().startswith(f"about {format_bytes(est.total)} (")


def test_sizes_other_than_the_batch_are_left_out_until_bound() -> None:
    g = graph_of("lstm_classifier.net")  # tokens i32[N, T]
    free = estimate_memory(g, 32, "adam")
    assert "tokens" in free.unknown
    bound = estimate_memory(g, 32, "adam", bind={"T": 100})
    assert bound.unknown == () and bound.activations > free.activations
    tokens = next(n for n in bound.nodes if n.name == "tokens")
    assert tokens.output_bytes == 4 * 32 * 100


def test_a_billion_unit_dense_layer_is_refused_with_the_figure() -> None:
    spec = specc.load("big.net", text=BIG)
    g = spec.graph()
    with pytest.raises(SpecError) as e:
        check_memory(g, 32, "adam", available_bytes=24 * 10**9)
    (d,) = e.value.diagnostics
    est = estimate_memory(g, 32, "adam")
    params = 64 * 10**9 + 10**9 + 10 * 10**9 + 10  # the two kernels and biases
    assert d.kind == "resource error"
    assert d.message == f"training this model needs {est.describe()}; this machine has 24.0 GB available"
    assert est.describe().startswith(
        "about 1.3 TB (600.0 GB adam state, 300.0 GB parameters, 300.0 GB gradients"
    )
    assert est.parameters == 4 * params
    assert d.span is not None and (d.span.line, d.span.col) == (3, 12)  # `dense(1000000000)`, the largest
    assert d.hint.startswith("the largest layer is 'h' (dense, 65,000,000,000 parameters, 260.0 GB)")


def test_what_fits_passes_and_activations_alone_can_refuse() -> None:
    g = graph_of("mlp.net")
    check_memory(g, 64, "adam", available_bytes=10**9)
    check_memory(g, 64, "adam")  # this machine's own memory
    with pytest.raises(SpecError) as e:
        check_memory(g, 10**7, "sgd", available_bytes=10**9)
    assert "lower the batch size (10000000)" in e.value.diagnostics[0].hint


def test_only_what_cannot_be_fused_away_refuses() -> None:
    # resnet18 at batch 256: the sum of all outputs is far more than the parameters, but XLA fuses most of them;
    # memory between the minimum and the full estimate is not refused.
    g = graph_of("resnet18.net")
    est = estimate_memory(g, 256, "sgd")
    assert est.minimum < est.total
    check_memory(g, 256, "sgd", available_bytes=est.minimum)
    with pytest.raises(SpecError):
        check_memory(g, 256, "sgd", available_bytes=est.minimum - 1)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (12 * 10**9, 350_200_000, 12_000, 999)] == [
        "12.0 GB",
        "350.2 MB",
        "12 KB",
        "999 bytes",
    ]
    assert math.isclose(float(format_bytes(123 * 10**9).split()[0]), 123.0)


def test_estimate_imports_no_jax() -> None:
    code = (
        "import sys, specc; from specc.passes.memory import check_memory; "
        "g = specc.load('specs/mlp.net').graph(); check_memory(g, 64, 'adam'); "
        "assert 'jax' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
