"""Tests for specc.train.data: embedded sets, file loaders, splits, batching, normalisation and field checks."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specc.train.data import DATASETS, DataError, DataSet, Splits, check_fields, load_data

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared/data/mnist-t10k"
MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST t10k files not found at {MNIST_DIR}",
)


def load(name: str, *args: object, seed: int = 0, base_dir: Path = ROOT, **kwargs: object) -> Splits:
    return load_data(name, args, kwargs, base_dir=base_dir, seed=seed)


# ---------------------------------------------------------------------------------------------- embedded sets


def test_digits_fields_range_and_class_counts() -> None:
    s = load("digits")
    assert s.val is None and s.shuffle is True
    x, y = s.train.fields["x"], s.train.fields["y"]
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    # Values are the 0..16 counts divided by 16.
    assert np.array_equal(np.unique(x * 16), np.arange(17, dtype=np.float32))
    assert np.bincount(y).tolist() == DIGITS_COUNTS
    # The first image of scikit-learn's digits is a 0 whose first row is 0 0 5 13 9 1 0 0.
    assert y[0] == 0 and (x[0, :8] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_image_option() -> None:
    flat = load("digits").train.fields["x"]
    img = load("digits", image=True).train.fields["x"]
    assert img.shape == (1797, 8, 8, 1)
    assert np.array_equal(img.reshape(1797, 64), flat)


def test_split_fraction_sizes_and_disjoint_cover() -> None:
    s = load("digits", split=0.8)
    assert s.val is not None
    assert (len(s.train), len(s.val)) == (1437, 360)  # floor(0.8 * 1797) for training
    # Both splits together are a permutation of the whole set: compare rows as bytes.
    whole = load("digits").train.fields["x"]
    both = np.concatenate([s.train.fields["x"], s.val.fields["x"]])
    assert sorted(r.tobytes() for r in both) == sorted(r.tobytes() for r in whole)


def test_split_count_and_no_split() -> None:
    s = load("digits", split=1000)
    assert s.val is not None and (len(s.train), len(s.val)) == (1000, 797)
    assert load("digits", split=1.0).val is None
    assert load("digits", split=1797).val is None


@pytest.mark.parametrize("split", [0.0, 1.5, -0.2, 1, 1798, 0.0001])
def test_bad_split_is_an_error(split: float) -> None:
    with pytest.raises(DataError, match="split"):
        load("digits", split=split)


def test_split_is_deterministic_by_seed() -> None:
    a = load("digits", split=0.8, seed=3)
    b = load("digits", split=0.8, seed=3)
    c = load("digits", split=0.8, seed=4)
    assert np.array_equal(a.train.fields["x"], b.train.fields["x"])
    assert not np.array_equal(a.train.fields["x"], c.train.fields["x"])


@pytest.mark.parametrize("name", ["moons", "circles", "spirals", "blobs", "sine"])
def test_generators_are_deterministic_by_seed(name: str) -> None:
    a, b, c = (load(name, seed=s).train.fields["x"] for s in (7, 7, 8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_moons_and_circles_shapes_labels_geometry() -> None:
    for name in ("moons", "circles"):
        f = load(name, n=301).train.fields
        assert f["x"].shape == (301, 2) and f["x"].dtype == np.float32
        assert np.bincount(f["y"]).tolist() == [150, 151]
        assert f["t"].shape == (301, 1) and np.array_equal(f["t"][:, 0], f["y"].astype(np.float32))
    c = load("circles", n=400, noise=0.0, factor=0.3).train.fields
    radius = np.linalg.norm(c["x"], axis=1)
    assert np.allclose(radius[c["y"] == 0], 1.0, atol=1e-5)
    assert np.allclose(radius[c["y"] == 1], 0.3, atol=1e-5)
    m = load("moons", n=200, noise=0.0).train.fields
    outer = m["x"][m["y"] == 0]
    assert np.allclose(np.linalg.norm(outer, axis=1), 1.0, atol=1e-5) and (outer[:, 1] >= -1e-6).all()


def test_spirals_and_blobs_shapes_and_label_counts() -> None:
    s = load("spirals", classes=4, n=1001).train.fields
    assert s["x"].shape == (1001, 2) and np.bincount(s["y"]).tolist() == [251, 250, 250, 250]
    assert np.abs(s["x"]).max() <= 1.0 + 1e-6  # radius grows 0..1
    b = load("blobs", 5, 3, 500).train.fields  # classes, dim, n by position
    assert b["x"].shape == (500, 3) and np.bincount(b["y"]).tolist() == [100] * 5
    # Tight clusters: every point is nearer its own class mean than any other class mean.
    b = load("blobs", classes=3, dim=2, n=300, std=0.1).train.fields
    means = np.stack([b["x"][b["y"] == k].mean(0) for k in range(3)])
    nearest = np.argmin(np.linalg.norm(b["x"][:, None] - means[None], axis=2), axis=1)
    assert np.array_equal(nearest, b["y"])


def test_xor_and_sine() -> None:
    f = load("xor").train.fields
    assert f["x"].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and f["y"].tolist() == [0, 1, 1, 0]
    noisy = load("xor", n=100, noise=0.05).train.fields
    assert noisy["x"].shape == (100, 2) and np.bincount(noisy["y"]).tolist() == [50, 50]
    assert np.array_equal(np.round(noisy["x"]).sum(1) % 2, noisy["y"])  # noise small: nearest corner decides
    s = load("sine", n=50).train.fields
    assert s["x"].shape == s["y"].shape == (50, 1) and s["y"].dtype == np.float32
    assert np.allclose(s["y"], np.sin(s["x"]), atol=1e-6) and np.abs(s["x"]).max() <= np.pi


# ---------------------------------------------------------------------------------------------- batching


def test_batches_cover_every_index_once_per_epoch() -> None:
    ds = DataSet({"i": np.arange(103), "x": np.arange(206, dtype=np.float32).reshape(103, 2)})
    rng = np.random.default_rng(0)
    epochs = []
    for _ in range(3):
        batches = list(ds.batches(10, rng=rng))
        assert [len(b["i"]) for b in batches] == [10] * 10 + [3]
        assert all(np.array_equal(b["x"][:, 0], 2 * b["i"]) for b in batches)  # fields stay aligned
        seen = np.concatenate([b["i"] for b in batches])
        assert sorted(seen.tolist()) == list(range(103))
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    ordered = np.concatenate([b["i"] for b in ds.batches(10, rng=None)])
    assert ordered.tolist() == list(range(103))
    dropped = list(ds.batches(10, rng=np.random.default_rng(1), drop_last=True))
    assert len(dropped) == ds.num_batches(10, drop_last=True) == 10
    assert len(set(np.concatenate([b["i"] for b in dropped]).tolist())) == 100
    assert ds.num_batches(10) == 11
    with pytest.raises(DataError, match="batch size"):
        ds.batches(0)


def test_unshuffled_batches_are_views() -> None:
    ds = DataSet({"x": np.zeros((8, 3), np.float32)})
    first = next(ds.batches(4, rng=None))["x"]
    assert np.shares_memory(first, ds.fields["x"]) and not first.flags.writeable


def test_dataset_converts_dtypes_validates_and_is_read_only() -> None:
    raw = np.arange(6, dtype=np.float64).reshape(3, 2)
    ds = DataSet({"x": raw, "y": np.array([1, 2, 3], dtype=np.int64)})
    assert ds.fields["x"].dtype == np.float32 and ds.fields["y"].dtype == np.int32 and len(ds) == 3
    with pytest.raises(ValueError):
        ds.fields["y"][0] = 5
    with pytest.raises(DataError, match="different lengths"):
        DataSet({"x": np.zeros((3, 2)), "y": np.zeros(4)})
    with pytest.raises(DataError, match="dtype"):
        DataSet({"name": np.array(["a", "b"])})


def test_rename() -> None:
    ds = DataSet({"x": np.zeros((4, 2), np.float32), "y": np.arange(4)})
    r = ds.rename({"image": "x", "label": "y"})
    assert set(r.fields) == {"image", "label"} and r.fields["label"].tolist() == [0, 1, 2, 3]
    assert set(ds.rename({"image": "x"}).fields) == {"image", "y"}
    with pytest.raises(DataError, match="no field 'z'") as e:
        ds.rename({"a": "z"})
    assert "available fields: x, y" in e.value.hint


# ---------------------------------------------------------------------------------------------- normalize


def test_normalize_uses_train_statistics() -> None:
    s = load("blobs", n=600, split=0.5, normalize=True)
    assert s.val is not None
    x = s.train.fields["x"].astype(np.float64)
    assert np.allclose(x.mean(0), 0, atol=1e-5) and np.allclose(x.std(0), 1, atol=1e-4)
    mean, std = s.stats["x"]
    raw = load("blobs", n=600, split=0.5)
    assert raw.val is not None
    assert np.allclose(s.val.fields["x"], (raw.val.fields["x"] - mean) / std, atol=1e-5)
    assert np.array_equal(s.train.fields["y"], raw.train.fields["y"]) and "y" not in s.stats
    # Constant pixels (digits' borders) stay finite.
    d = load("digits", normalize=True).train.fields["x"]
    assert np.isfinite(d).all() and d[:, 0].max() == 0.0


# ---------------------------------------------------------------------------------------------- errors


def test_unknown_option_suggests_the_close_one() -> None:
    with pytest.raises(
        DataError, match=r"unknown option 'splt'; valid options: image, split, normalize, shuffle"
    ) as e:
        load("digits", splt=0.8)
    assert e.value.hint == "did you mean 'split'?" and e.value.field == "splt"
    with pytest.raises(DataError, match="unknown option 'nosie'") as e:
        load("moons", nosie=0.2)
    assert "did you mean 'noise'?" in e.value.hint


def test_unknown_dataset_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match="unknown data set 'mnsit'") as e:
        load("mnsit")
    assert all(name in e.value.message for name in DATASETS) and e.value.hint == "did you mean 'mnist'?"


def test_argument_errors() -> None:
    with pytest.raises(DataError, match="argument 'n' must be an integer, got string"):
        load("moons", n="ten")
    with pytest.raises(DataError, match="argument 'normalize' must be true or false"):
        load("moons", normalize=1)
    with pytest.raises(DataError, match="digits takes no positional arguments, got 1"):
        load("digits", 3)
    with pytest.raises(DataError, match="needs argument 'path'"):
        load("npz")
    with pytest.raises(DataError, match="argument 'n' must be at least 2"):
        load("moons", n=1)
    with pytest.raises(DataError, match="factor"):
        load("circles", factor=1.5)
    with pytest.raises(DataError, match="subset' must be one of train, test") as e:
        load("mnist", "x", subset="tset")
    assert e.value.hint == "did you mean 'test'?"
    assert len(load("moons", n=1e3).train) == 1000  # an integral float is an integer


def test_missing_file_names_the_path_and_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load("mnist", "data/nope", base_dir=tmp_path)
    assert str(tmp_path / "data/nope") in e.value.message and "no such file" in e.value.message
    assert "spec file's folder" in e.value.hint and e.value.kind == "file error"
    with pytest.raises(DataError, match="no such file"):
        load("npz", "missing.npz", base_dir=tmp_path)


def test_a_missing_path_given_by_data_is_not_said_to_start_from_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data 'mnist("nope")'` reads from the current folder, and the error named it there, but the hint said
    relative paths start from the spec file's folder."""
    from click.testing import CliRunner

    from specc.cli import main

    (tmp_path / "spec").mkdir()
    spec = tmp_path / "spec" / "m.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 28, 28, 1]\n  input y: i32[N]\n  z = x -> flatten -> dense(10)\n"
        "  output z\n}\ntrain {\n  data = digits\n  loss = cross_entropy(z, y)\n}\n"
    )
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        main, ["train", str(spec), "--data", 'mnist("nope")', "--out", str(tmp_path / "run")]
    )
    assert r.exit_code == 2 and f"no such file or directory: {tmp_path / 'nope'}" in r.output, r.output
    assert "(given by --data, from the current folder)" in r.output, r.output
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------- npz and csv


def test_npz_round_trip_relative_to_base_dir(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20, dtype=np.int64) % 4
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub/d.npz", x=x, y=y, w=np.ones((20, 2, 2), np.float32))
    s = load("npz", "sub/d.npz", base_dir=tmp_path)
    f = s.train.fields
    assert set(f) == {"x", "y", "w"}
    assert f["x"].dtype == np.float32 and np.allclose(f["x"], x) and f["y"].dtype == np.int32
    assert f["y"].tolist() == y.tolist() and f["w"].shape == (20, 2, 2)
    np.savez(tmp_path / "bad.npz", x=np.zeros(3), y=np.zeros(4))
    with pytest.raises(DataError, match=r"first \(example\) dimension"):
        load("npz", "bad.npz", base_dir=tmp_path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match=r"text.npz: not a readable \.npz archive"):
        load("npz", "text.npz", base_dir=tmp_path)


def test_csv_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("id,a,b,label\nr1,1.5,2,0\nr2,-3,4.25,2\nr3,0,0,1\n")
    f = load("csv", str(p), target="label").train.fields
    assert f["x"].dtype == np.float32 and f["x"].tolist() == [[1.5, 2], [-3, 4.25], [0, 0]]
    assert f["y"].dtype == np.int32 and f["y"].tolist() == [0, 2, 1]  # the text column `id` is skipped
    p.write_text("a,b,price\n1,2,3.5\n4,5,6\n")
    g = load("csv", p, target="price").train.fields
    assert g["y"].dtype == np.float32 and g["y"].tolist() == [3.5, 6.0]
    p.write_text("a,species\n1,setosa\n2,virginica\n3,setosa\n")
    assert load("csv", p, target="species").train.fields["y"].tolist() == [0, 1, 0]


def test_csv_errors(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="not a header row"):
        load("csv", p)
    p.write_text("a,b,label\n1,2,3\n")
    with pytest.raises(DataError, match="has no column 'lable'; columns: a, b, label") as e:
        load("csv", p, target="lable")
    assert e.value.hint == "did you mean 'label'?"
    p.write_text("a,b,y\n1,2,3\n1,2\n")
    with pytest.raises(DataError, match=r"t.csv:3: expected 3 cells"):
        load("csv", p)
    p.write_text("a,b,y\n1,,3\n1,2,3\n")
    with pytest.raises(DataError, match="column 'b' has an empty cell in data row 1"):
        load("csv", p)


def test_csv_cells_and_separators_a_csv_writer_would_not_make_are_refused(tmp_path: Path) -> None:
    """Three ways a csv went wrong silently or with a crash: `delimiter=";;"` (or "\\t" as written in a spec)
    reached Python's csv module, a TypeError and exit 3; 1e300 became inf in f32 and was reported as "inf in
    example 9" with no line; `1_000` (Python's spelling, no CSV writer's) was read as 1000."""
    p = tmp_path / "t.tsv"
    p.write_text("a\tb\ty\n1\t2\t0\n3\t4\t1\n5\t6\t0\n")
    splits = load("csv", p, delimiter="\\t", split=1.0)
    np.testing.assert_array_equal(splits.train.fields["y"], [0, 1, 0])
    for bad in (";;", "", '"'):
        with pytest.raises(DataError, match="the cell separator is one character") as e:
            load("csv", p, delimiter=bad)
        assert e.value.field == "delimiter"
    c = tmp_path / "t.csv"
    c.write_text("a,b,y\n1,2,0\n1e300,2,1\n")
    with pytest.raises(DataError, match=r"column 'a' holds 1e300 at line 3, too large for f32"):
        load("csv", c)
    c.write_text("a,b,y\n1,2,0\n1_000,2,1\n")
    with pytest.raises(
        DataError, match=r"column 'a' mixes numbers and text: line 2 holds 1, line 3 holds '1_000'"
    ):
        load("csv", c)


# ---------------------------------------------------------------------------------------------- IDX (MNIST)


def _write_idx(path: Path, arr: np.ndarray, magic: int, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture()
def tiny_idx(tmp_path: Path) -> Path:
    images = np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 28, 28) % 256
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, 0x803, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]), 0x801, compress=False)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[:2], 0x803, compress=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 2]), 0x801, compress=True)
    return tmp_path


def test_idx_synthetic_train_test_and_single_file(tiny_idx: Path) -> None:
    f = load("mnist", tiny_idx).train.fields  # train files win when both are present
    assert f["x"].shape == (5, 28, 28, 1) and f["y"].tolist() == [3, 1, 4, 1, 5]
    assert f["x"][0, 0, 1, 0] == pytest.approx(1 / 255) and f["x"].max() == 1.0
    fashion = load("fashion_mnist", tiny_idx, subset="test")
    assert fashion.train.fields["y"].tolist() == [9, 2]
    assert fashion.class_names[9] == "Ankle boot" and len(fashion.class_names) == 10
    assert load("mnist", tiny_idx).class_names == ()  # digits are their own names
    single = load("mnist", tiny_idx / "t10k-images-idx3-ubyte.gz").train.fields
    assert single["y"].tolist() == [9, 2]


def test_idx_wrong_magic_and_truncation(tiny_idx: Path) -> None:
    # Labels saved under the images name: the magic number says what it really is.
    (tiny_idx / "train-images-idx3-ubyte").write_bytes((tiny_idx / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError) as e:
        load("mnist", tiny_idx)
    assert e.value.message == (
        "mnist: train-images-idx3-ubyte: not an IDX image file (magic 0x00000803 expected, found 0x00000801)"
    )
    assert "IDX label file" in e.value.hint
    (tiny_idx / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(DataError, match=r"magic 0x00000803 expected, found 0x504b0304"):
        load("mnist", tiny_idx)
    data = gzip.decompress((tiny_idx / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tiny_idx / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(DataError, match="announces 2x28x28 = 1568 bytes of data, the file holds 1558") as e:
        load("mnist", tiny_idx, subset="test")
    assert "truncated" in e.value.hint


def test_idx_missing_files_in_folder(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"no train-images-idx3-ubyte\[.gz\] or t10k-images-idx3-ubyte\[.gz\]"
    ):
        load("mnist", tmp_path)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 28, 28)), 0x803, compress=False)
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        load("mnist", tmp_path)


@pytest.fixture(scope="module")
def mnist() -> Splits:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST t10k files not found at {MNIST_DIR}")
    return load("mnist", MNIST_DIR)


@needs_mnist
def test_mnist_t10k_real(mnist: Splits) -> None:
    x, y = mnist.train.fields["x"], mnist.train.fields["y"]
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    # The README's "pixel mean 0.132515 (of 255)" is the mean after scaling to [0, 1]: 33.79 of 255.
    assert float(x.mean(dtype=np.float64)) == pytest.approx(0.132515, abs=2e-6)
    assert np.bincount(y).tolist() == MNIST_COUNTS
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels


@needs_mnist
def test_mnist_t10k_split_8000(mnist: Splits) -> None:
    s = load("mnist", MNIST_DIR, split=8000, seed=0)
    assert s.val is not None and (len(s.train), len(s.val)) == (8000, 2000)
    counts = np.bincount(s.train.fields["y"], minlength=10) + np.bincount(s.val.fields["y"], minlength=10)
    assert counts.tolist() == MNIST_COUNTS
    again = load("mnist", MNIST_DIR / "t10k-images-idx3-ubyte.gz", split=8000, seed=0)
    assert again.val is not None and np.array_equal(again.val.fields["y"], s.val.fields["y"])


@needs_mnist
def test_gzip_read_raw_is_not_mistaken_for_idx(tmp_path: Path) -> None:
    # A doubly-compressed file stays gzip after one decompression: reported with the magic actually found.
    gz = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(gz))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()
    )
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path)
    assert e.value.message.startswith(
        "mnist: t10k-images-idx3-ubyte.gz: not an IDX image file (magic 0x00000803 expected, found 0x1f8b08"
    )


# ---------------------------------------------------------------------------------------------- CIFAR-10


def _cifar_batch(n: int, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"x",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b""] * n,
    }


def test_cifar10_batches_folder_and_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_cifar_batch(4, i) for i in range(3)]
    for i, b in enumerate(batches[:2], start=1):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(b, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batches[2], protocol=5))
    f = load("cifar10", tmp_path).train.fields
    assert f["x"].shape == (8, 32, 32, 3) and f["x"].dtype == np.float32 and f["x"].flags.c_contiguous
    assert f["y"].tolist() == batches[0][b"labels"] + batches[1][b"labels"]  # type: ignore[operator]
    data = batches[0][b"data"]
    assert isinstance(data, np.ndarray)
    # Rows hold 1024 red, then green, then blue values; pixel (r, c) channel k is data[k*1024 + r*32 + c].
    assert f["x"][0, 2, 5, 1] == pytest.approx(data[0, 1024 + 2 * 32 + 5] / 255)
    test = load("cifar10", folder, subset="test")
    assert test.train.fields["y"].tolist() == batches[2][b"labels"]
    assert test.class_names == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )


def test_cifar10_refuses_foreign_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match=r"not a CIFAR-10 python batch .*is not allowed"):
        load("cifar10", tmp_path)
    assert not marker.exists()
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(DataError, match="expected data and labels"):
        load("cifar10", tmp_path)


# ---------------------------------------------------------------------------------------------- check_fields


def test_check_fields() -> None:
    ds = load("digits").train
    check_fields(ds, {"x": ("f32", (None, 64)), "y": ("i32", (None,))})
    check_fields(ds, {"x": ("bf16", ("N", 64))})  # any float width, symbolic batch
    with pytest.raises(DataError) as e:
        check_fields(ds, {"x": ("f32", (None, 784))})
    assert (
        e.value.message == "field 'x' has shape [1797, 64] but input x is f32[N, 784]"
        and e.value.field == "x"
    )
    assert "`input x: f32[N, 64]`" in e.value.hint
    with pytest.raises(DataError, match="has shape") as e:
        check_fields(ds, {"x": ("f32", (None, 8, 8))})
    assert "sizes agree (64 values per example)" in e.value.hint
    with pytest.raises(DataError, match=r"the data has no field 'image'") as e:
        check_fields(ds, {"image": ("f32", (None, 64))})
    assert "available fields: x, y" in e.value.hint
    with pytest.raises(DataError, match=r"field 'y' is i32 \(int\) but input y is f32\[N\] \(float\)"):
        check_fields(ds, {"y": ("f32", (None,))})
    with pytest.raises(DataError, match=r"field 'x' is f32 \(float\) but input x is i32"):
        check_fields(ds, {"x": ("i32", (None, 64))})
    with pytest.raises(DataError, match="has shape"):
        check_fields(ds, {"y": ("i32", (None, 1))})


def test_module_imports_neither_jax_nor_sklearn() -> None:
    code = (
        "import sys, specc.train.data as d; d.load_data('digits', [], {}, base_dir=d.Path('.'), seed=0); "
        "bad = [m for m in ('jax', 'sklearn') if m in sys.modules]; assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_text_labels_keep_their_names_in_label_order(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,species\n1,virginica\n2,setosa\n3,versicolor\n4,setosa\n")
    s = load("csv", p, target="species")
    assert s.class_names == ("setosa", "versicolor", "virginica")
    assert s.train.fields["y"].tolist() == [2, 0, 1, 0]
    kept = load(
        "csv", p, target="species", classes=[2, 0]
    )  # y becomes the index in the list: the names follow
    assert kept.class_names == ("virginica", "setosa") and kept.train.fields["y"].tolist() == [0, 1, 1]
    p.write_text("a,label\n1,0\n2,1\n")
    assert load("csv", p, target="label").class_names == ()  # integer labels: no names
    assert load("digits").class_names == ()


def test_a_data_error_is_a_spec_error_for_code_that_loads_data_itself(tmp_path: Path) -> None:
    """examples/use_in_flax.py calls load_data: its DataError was no SpecError, so `except specc.SpecError`, the
    library's one exception for a user's mistake, let a missing file through."""
    import specc

    with pytest.raises(specc.SpecError) as e:
        load("npz", tmp_path / "nope.npz")
    assert isinstance(e.value, DataError) and e.value.render().startswith("file error: npz: no such file")


def test_a_csv_split_by_another_separator_is_named_in_the_hint(tmp_path: Path) -> None:
    """`csv("semi.csv")` of a;b;y said the file had no column 'y' and hinted at target=, not at delimiter=."""
    for sep, spelled in ((";", '";"'), ("\t", '"\\t"')):
        p = tmp_path / "s.csv"
        p.write_text(sep.join("aby") + "\n" + sep.join("120") + "\n" + sep.join("341") + "\n")
        with pytest.raises(DataError, match="has no column 'y'") as e:
            load("csv", p)
        assert e.value.hint == f"the header reads as one column: give delimiter={spelled}"


def test_an_idx_label_beyond_9_is_named_in_the_label_file(tmp_path: Path) -> None:
    """A label of 42 was caught only by the class check, whose hint asked for a model of 43 scores."""
    images = np.zeros((3, 28, 28), np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, 0x803, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([3, 42, 4]), 0x801, compress=False)
    with pytest.raises(
        DataError, match=r"train-labels-idx1-ubyte holds the label 42 \(label 1\); mnist has classes"
    ):
        load("mnist", tmp_path)
