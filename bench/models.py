"""The suite's models and data: each model is a spec, trained by specc, and written by hand in Flax NNX and PyTorch
(bench/flax_models.py, bench/torch_models.py) with the same architecture and, loaded from specc, the same
initial parameters; the data are specc's own MNIST t10k split, shared by every contender."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MNIST = (ROOT / ".." / "shared" / "data" / "mnist-t10k").resolve()
BATCH = 100
LR = 0.01
MOMENTUM = 0.9
SEED = 0
SPLIT = 8000


@dataclass(frozen=True)
class BenchModel:
    """One model of the suite: its name on the command line, its label in the report and its spec file."""

    name: str
    label: str
    spec: Path


MODELS = {
    m.name: m
    for m in (
        BenchModel("mlp", "MLP 784-256-256-10", ROOT / "bench" / "specs" / "mlp.net"),
        BenchModel("convnet", "lecture convnet", ROOT / "specs" / "mnist_convnet.net"),
        BenchModel("lenet5", "LeNet-5", ROOT / "specs" / "lenet5.net"),
        BenchModel(
            "resnet",
            "small ResNet (stem, identity + down block)",
            ROOT / "bench" / "specs" / "resnet_small.net",
        ),
        BenchModel("lstm", "LSTM, 28 steps of 28, hidden 128", ROOT / "bench" / "specs" / "lstm_rows.net"),
        BenchModel(
            "transformer", "transformer block, 28 tokens of 28", ROOT / "specs" / "transformer_block.net"
        ),
    )
}


def mnist_present() -> bool:
    return any((MNIST / f"t10k-images-idx3-ubyte{ext}").exists() for ext in (".gz", ""))


def load_splits(data: str) -> Any:
    """The suite's data through specc's loader: "mnist" (8,000 / 2,000 of the t10k images, specc's split for seed 0)
    or "digits" (the embedded 8×8 digits scaled to 28×28, for a smoke run without the MNIST files)."""
    import numpy as np

    from specc.train.data import DataSet, Splits, load_data

    if data == "mnist":
        return load_data("mnist", [str(MNIST)], {"split": SPLIT}, base_dir=ROOT, seed=SEED)
    splits = load_data("digits", [], {"image": True, "split": 0.8}, base_dir=ROOT, seed=SEED)

    def grow(ds: Any) -> Any:
        x = np.kron(ds.fields["x"], np.ones((1, 3, 3, 1), np.float32))  # 8×8 → 24×24, then 2 pixels of margin
        return DataSet({"x": np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), "y": ds.fields["y"]})

    return Splits(grow(splits.train), grow(splits.val), splits.shuffle, splits.stats)


def epoch_batches(train: Any, epoch: int) -> Any:
    """Epoch `epoch`'s batches in specc's own order (the loop's generator: seed and epoch), last partial dropped."""
    import numpy as np

    return train.select(["x", "y"]).batches(BATCH, rng=np.random.default_rng([SEED, epoch]), drop_last=True)
