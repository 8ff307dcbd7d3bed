"""How batches reach the train step (specc/train/execution.py): scan over chunks and prefetch train the model the
per-batch step trains; the rule picks by step length and devices; --log-gradients writes each layer's norms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

import specc
from specc.train import execution
from specc.train.execution import choose_execution, prefetched
from specc.train.loop import train_and_evaluate
from specc.train.rundir import GRADIENTS_FILE, OWN_FILES
from specc.train.spec import build_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "specs_train" / "tiny_dropout.net"  # batch norm, dropout: RNG and batch statistics


def config(path: Path, *overrides: str, text: str | None = None):
    spec = specc.load(path, text=text)
    return build_config(spec, spec.graph(), list(overrides))


# Five sigmoid layers (vanishing gradients) and dropout (the RNG folded from the step number) on the digits.
DEEP_SIGMOID = """
model Deep {
  input x: f32[N, 64]
  input y: i32[N]
  h1 = x -> dense(32) -> sigmoid
  h2 = h1 -> dense(32) -> sigmoid
  h3 = h2 -> dense(32) -> sigmoid -> dropout(0.1)
  h4 = h3 -> dense(32) -> sigmoid
  h5 = h4 -> dense(32) -> sigmoid
  logits = h5 -> dense(10)
  output logits
}
train {
  data = digits(split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1)
  batch = 32
  epochs = 2
  metrics = [accuracy(logits, y)]
}
"""
CHUNK = 10  # 44 batches an epoch: four full chunks and one of 4 (the rest of the chunk unused)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs per strategy with --log-gradients, scan in chunks of CHUNK batches. Prefetch feeds the step's
    own program from a thread: test_distributed's four devices train with it. A stop inside a chunk and its
    bitwise resume: test_train.py's test_resume_is_bitwise (its auto strategy scans whole epochs)."""
    out = tmp_path_factory.mktemp("exec")
    path = out / "deep.net"
    path.write_text(DEEP_SIGMOID)
    with pytest.MonkeyPatch.context() as mp:
        batch_bytes = 32 * (64 * 4 + 4)  # x: f32[64], y: i32
        mp.setattr(execution, "CHUNK_BYTES", CHUNK * batch_bytes)
        cfg = config(path)
        got = {
            mode: train_and_evaluate(cfg, out / mode, verbose=False, execution=mode, log_gradients=True)
            for mode in ("step", "scan")
        }
    return out, got


def gradient_lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / GRADIENTS_FILE).read_text().splitlines()]


def test_scan_chunks_train_the_model_the_step_trains(runs) -> None:
    out, got = runs
    step, scan = got["step"], got["scan"]
    assert step.step == scan.step == 88
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([h[key] for h in scan.history], [h[key] for h in step.history], rtol=1e-5)
    for x, y in zip(jax.tree.leaves(step.params), jax.tree.leaves(scan.params), strict=True):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)
    for a, b in zip(gradient_lines(out / "step"), gradient_lines(out / "scan"), strict=True):
        assert a["layers"].keys() == b["layers"].keys()
        np.testing.assert_allclose(list(b["layers"].values()), list(a["layers"].values()), rtol=1e-4)


def test_the_rule() -> None:
    common = {"batch_bytes": 8320, "steps_per_epoch": 44, "processes": 1, "platform": "cpu", "batch": 32}
    small = choose_execution("auto", flops_per_example=19_000, devices=1, **common)
    assert (small.mode, small.chunk) == ("scan", 44)  # a whole epoch a call
    mid = choose_execution("auto", flops_per_example=1_000_000, devices=1, **{**common, "batch": 100})
    assert mid.mode == "scan" and 2 <= mid.chunk < 44  # ~0.3 s of ~15 ms steps
    big = choose_execution("auto", flops_per_example=2_700_000, devices=1, **{**common, "batch": 100})
    assert (
        big.mode == "prefetch"
    )  # ~40 ms steps: a device loop gains little and can cost much (conv + batch norm)
    huge = choose_execution("auto", flops_per_example=10**9, devices=1, **common)
    assert huge.mode == "prefetch"  # a step longer than a chunk's 0.3 s
    assert choose_execution("auto", flops_per_example=19_000, devices=4, **common).mode == "prefetch"
    conv = choose_execution(
        "auto", flops_per_example=19_000, devices=1, ops=frozenset({"conv", "relu"}), **common
    )
    assert conv.mode == "prefetch" and "conv" in conv.why  # convolutions are slow in XLA:CPU's device loop
    assert (
        choose_execution("scan", flops_per_example=None, devices=1, **{**common, "processes": 2}).mode
        == "step"
    )
    assert choose_execution("step", flops_per_example=19_000, devices=1, **common).mode == "step"
    limited = choose_execution(
        "scan", flops_per_example=19_000, devices=1, **{**common, "batch_bytes": 20 << 20}
    )
    assert limited.chunk == 3  # at most 64 MiB stacked


def test_prefetch_hands_on_errors_and_stops_its_thread() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for x in prefetched(items()):
            got.append(x)
    assert got == [1, 2]
    endless = prefetched(iter(range(10**9)))
    assert next(endless) == 0
    endless.close()
    assert not any(t.name == "specc-prefetch" for t in threading.enumerate())


def test_log_gradients_shows_vanishing_gradients(runs) -> None:
    out, _ = runs
    lines = gradient_lines(out / "scan")
    assert [(x["epoch"], x["objective"]) for x in lines] == [(1, "main"), (2, "main")]
    layers = lines[0]["layers"]
    assert list(layers) == ["h1.dense", "h2.dense", "h3.dense", "h4.dense", "h5.dense", "logits"]
    assert all(np.isfinite(v) and v > 0 for v in layers.values())
    assert layers["h1.dense"] < layers["logits"] / 10  # through five sigmoids the first layer learns little
    assert GRADIENTS_FILE in OWN_FILES  # --force deletes it with the run


def test_train_help_does_not_import_jax() -> None:
    script = (
        "import sys\n"
        "from specc.cli import main\n"
        "try:\n"
        "    main(['train', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'flax', 'optax', 'orbax') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    out = _python(script)
    assert "--exec" in out and "--log-gradients" in out


def _python(script: str) -> str:
    """A fresh interpreter's standard output for `script`, which must succeed."""
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


# Two 64-channel 3×3 convolutions on the 8×8 digits: a step guessed at ~20 ms, long enough to split the CPU.
WIDE_CONV = """
model WideConv {
  input x: f32[N, 8, 8, 1]
  input y: i32[N]
  h = x -> conv(64, 3, padding=same) -> relu -> conv(64, 3, padding=same) -> relu -> maxpool(2) -> global_avgpool
  logits = h -> dense(10)
  output logits
}
train {
  data = digits(image=true, split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = adam(lr=3e-3)
  batch = 32
  epochs = 2
  metrics = [accuracy(logits, y)]
}
"""


def _graph(text: str):
    return specc.load(Path("t.net"), text=text).graph()


def test_the_split_rule() -> None:
    wide = _graph(WIDE_CONV)
    ops = frozenset(n.op for n in wide.nodes)
    flops = execution.flops_per_example(wide, 32)
    assert flops is not None and flops > 4_000_000
    assert execution.cpu_split(ops, flops, 32, 2) == 2
    assert execution.cpu_split(ops, flops, 32, 1) == 1  # one core: nothing to gain
    assert execution.cpu_split(ops, flops, 30, 4) == 3  # the most devices ≤ 4 that divide the batch
    assert execution.cpu_split(ops, flops, 12, 2) == 1  # shares of 6 examples: too small
    assert execution.cpu_split(ops, None, 32, 2) == 2  # an unknown FLOP count counts as long
    assert execution.cpu_split(ops, None, 32, 64) == execution.SPLIT_MAX
    # a step guessed at >= 100 ms: two devices a core, still dividing the batch into shares of >= 8
    long_flops = int(execution.SPLIT_LONG_STEP_S * execution.CPU_FLOPS_PER_CORE * 2 / (3 * 100)) + 1
    assert execution.cpu_split(ops, long_flops, 100, 2) == 4
    assert execution.cpu_split(ops, long_flops - 2, 100, 2) == 2
    assert execution.cpu_split(ops, 4 * long_flops, 30, 2) == 3
    assert execution.cpu_split(ops, 10**9, 64, 64) == 2 * execution.SPLIT_MAX
    # ~1 ms steps: not worth an all-reduce
    small = _graph((ROOT / "specs" / "augmented_cnn.net").read_text())
    small_ops = frozenset(n.op for n in small.nodes)
    assert execution.cpu_split(small_ops, execution.flops_per_example(small, 32), 32, 2) == 1
    mlp = _graph(DEEP_SIGMOID)  # no convolution: XLA:CPU's matmuls use every core already
    assert execution.cpu_split(frozenset(n.op for n in mlp.nodes), None, 32, 2) == 1


def _train_cli(spec: Path, out: Path, *args: str) -> tuple[str, list[dict]]:
    r = subprocess.run(
        [sys.executable, "-m", "specc", "train", str(spec), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=out.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return r.stderr, [x for x in rows if "val_loss" in x]


@pytest.mark.skipif(execution.cores() < 2, reason="the CPU splits only with two cores or more")
def test_a_convnet_trains_data_parallel_on_the_split_cpu(tmp_path: Path) -> None:
    spec = tmp_path / "wide.net"
    spec.write_text(WIDE_CONV)
    banner, split = _train_cli(spec, tmp_path / "split")
    assert "the CPU is split into 2 devices" in banner and "devices: 2 × cpu" in banner
    assert split[-1]["loss"] < split[0]["loss"] and split[-1]["val_accuracy"] > 0.5
    # stopped after one epoch and resumed: bitwise the run that did not stop, on the same split
    _train_cli(spec, tmp_path / "resumed", "--epochs", "1")
    _, resumed = _train_cli(spec, tmp_path / "resumed", "--resume")
    assert [r["loss"] for r in resumed] == [r["loss"] for r in split]
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in split]
    # one device trains the same model: only the order of the gradient's sums differs
    banner, one = _train_cli(spec, tmp_path / "one", "--devices", "1")
    assert "devices: 1 × cpu" in banner and "CPU is split" not in banner
    np.testing.assert_allclose([r["val_loss"] for r in one], [r["val_loss"] for r in split], rtol=2e-3)


def test_devices_asked_for_split_the_cpu_into_that_many(tmp_path: Path) -> None:
    # an MLP, which the rule keeps on one device: --devices 3 makes three CPU devices, and two epochs on them
    # end where one device's do, up to the order of the gradient's sums
    spec = ROOT / "specs" / "digits_mlp.net"
    banner, three = _train_cli(spec, tmp_path / "three", "--devices", "3", "--batch", "33", "--epochs", "2")
    assert "devices: 3 × cpu" in banner and "the CPU is split into 3 devices (--devices 3)" in banner
    banner, one = _train_cli(spec, tmp_path / "one", "--devices", "1", "--batch", "33", "--epochs", "2")
    assert "devices: 1 × cpu" in banner and "CPU is split" not in banner
    np.testing.assert_allclose([r["val_loss"] for r in three], [r["val_loss"] for r in one], rtol=1e-4)
    assert three[-1]["val_loss"] < three[0]["val_loss"]


def test_by_default_the_mesh_takes_the_most_devices_that_divide_the_batch() -> None:
    script = (
        "import jax\n"
        "jax.config.update('jax_num_cpu_devices', 4)\n"
        "from specc.errors import SpecError\n"
        "from types import SimpleNamespace\n"
        "from specc.train.loop import _make_mesh\n"
        "c = SimpleNamespace(shard='replicate', span=lambda key: None)\n"
        "print(_make_mesh(None, 6, c).n, _make_mesh(None, 8, c).n, _make_mesh(2, 6, c).n)\n"
        "for devices, batch in ((4, 6), (8, 8)):\n"
        "    try:\n"
        "        _make_mesh(devices, batch, c)\n"
        "    except SpecError as e:\n"
        "        print(e.diagnostics[0].message + ' | ' + e.diagnostics[0].hint)\n"
    )
    sizes, uneven, too_many = _python(script).splitlines()[-3:]
    assert sizes == "3 4 2"  # batch 6 on 4 devices: 3 of them; a given --devices is obeyed
    # the count asked for is the slip (a usage error): the counts that divide the batch among the 4 devices there are
    assert uneven == (
        "--devices 4: batch 6 does not split evenly over 4 devices | give a count that divides the batch (1, 2, 3),"
        " or a batch that is a multiple of 4 (--batch 8)"
    )
    # JAX already runs with 4 CPU devices (a library caller): more cannot be made now, and the hint says when
    message, hint = too_many.split(" | ")
    assert message == "--devices 8 asks for more devices than the 4 available"
    assert hint.startswith("use --devices 4 or fewer; a CPU splits into more only before JAX starts")


def test_more_devices_than_the_environment_fixes_is_a_usage_error(tmp_path: Path) -> None:
    # JAX_NUM_CPU_DEVICES fixes the CPU at 2 devices, so --devices 4 cannot be had: a mistake in the command,
    # not in the spec, so exit 2 (as click's own usage errors), no traceback, and no run folder written
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "specs" / "digits_mlp.net"), "--out", str(out)]
    r = subprocess.run(
        [*cmd, "--devices", "4"], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("usage error: --devices 4 asks for more devices than the 2 available\n")
    assert "hint: use --devices 2 or fewer" in r.stderr and "JAX_NUM_CPU_DEVICES" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_devices_that_do_not_divide_the_batch_is_a_usage_error(tmp_path: Path) -> None:
    """`specc train ... --devices 99` was exit 1, 'value error' at the spec's batch line, though the flag was the
    slip: now exit 2 naming --devices, the counts that divide the batch (the CPU splits into any) and a batch
    that fits, no run folder written. --devices 0 is click's range error, exit 2."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "specs" / "digits_mlp.net"), "--out", str(out)]
    r = subprocess.run(
        [*cmd, "--batch", "32", "--devices", "99"], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [
        "usage error: --devices 99: batch 32 does not split evenly over 99 devices",
        "hint: give a count that divides the batch (1, 2, 4, 8, 16, 32), or a batch that is a multiple of 99"
        " (--batch 99)",
    ]
    assert not out.exists()
    r = subprocess.run([*cmd, "--devices", "0"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "Invalid value for '--devices': 0 is not in the range x>=1." in r.stderr


def test_a_short_run_is_planned_by_its_guessed_length() -> None:
    common = {"batch_bytes": 8320, "steps_per_epoch": 44, "processes": 1, "platform": "cpu", "batch": 32}
    small = choose_execution("auto", flops_per_example=19_000, devices=1, **common)  # the digits MLP's size
    assert small.step_s is not None and small.step_s < 1e-3
    assert small.for_run(44 * 30).short_run  # 30 epochs: a fraction of a second of steps
    assert "compiled for a short run" in small.for_run(44 * 30).describe()
    assert not small.for_run(int(execution.SHORT_RUN_S / small.step_s) + 1).short_run
    assert "short run" not in small.describe()
    big = choose_execution("auto", flops_per_example=2_700_000, devices=1, **{**common, "batch": 100})
    assert not big.for_run(80 * 4).short_run  # ~40 ms steps: the run outweighs its compilation
    gpu = choose_execution("auto", flops_per_example=19_000, devices=1, **{**common, "platform": "gpu"})
    assert gpu.step_s is None and not gpu.for_run(1).short_run  # no guess off the CPU


def test_a_short_run_compiles_with_the_quick_options_and_trains_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lecture-sized run compiles its train and evaluation steps as initialisers are (XLA:CPU's loop emitters,
    no LLVM optimisation): XLA's compilation, not the steps, is most of such a run. The losses are the usual
    options' within float32 rounding (the emitters' tanh, exp and sums may differ in the last bits)."""
    from specc.backend import flax as backend

    path = tmp_path / "deep.net"
    path.write_text(DEEP_SIGMOID)
    real = backend.graph_compiler_options
    asked: list[bool] = []

    def recorded(graph: object, short_run: bool = False) -> object:
        asked.append(short_run)
        return real(graph, short_run)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "graph_compiler_options", recorded)
    quick = train_and_evaluate(config(path), tmp_path / "quick", verbose=False)
    assert asked and all(asked), asked
    assert backend.compiler_options(once=True) == {
        "xla_cpu_use_fusion_emitters": False,
        "xla_backend_optimization_level": 0,
    }
    monkeypatch.setattr(execution, "SHORT_RUN_S", 0.0)
    asked.clear()
    usual = train_and_evaluate(config(path), tmp_path / "usual", verbose=False)
    assert asked and not any(asked), asked
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            [h[key] for h in quick.history], [h[key] for h in usual.history], rtol=1e-5
        )
