"""Options every data set takes beyond split/normalize/shuffle: classes=, labels=shuffled, augment=; csv dtype=;
the embedded sequence set sine_windows."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.errors import SpecError
from specc.train.data import AUGMENTATIONS, DATASETS, DataError, DataSet, Splits, load_data
from specc.train.spec import check_spec

ROOT = Path(__file__).resolve().parents[1]
DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def load(name: str, *args: object, seed: int = 0, base_dir: Path = ROOT, **kwargs: object) -> Splits:
    return load_data(name, args, kwargs, base_dir=base_dir, seed=seed)


# ---------------------------------------------------------------------------------------------- classes=


def test_classes_keeps_and_relabels_in_the_order_given() -> None:
    s = load("digits", classes=[8, 3])
    x_all = load("digits").train.fields
    y = s.train.fields["y"]
    assert s.train.fields["x"].shape == (DIGITS_COUNTS[8] + DIGITS_COUNTS[3], 64)
    assert np.bincount(y).tolist() == [DIGITS_COUNTS[8], DIGITS_COUNTS[3]]
    # the kept examples, in their order, with 8 -> 0 and 3 -> 1
    keep = np.isin(x_all["y"], [8, 3])
    np.testing.assert_array_equal(s.train.fields["x"], x_all["x"][keep])
    np.testing.assert_array_equal(y, np.where(x_all["y"][keep] == 8, 0, 1))


def test_classes_before_the_split_and_t_follows_y() -> None:
    s = load("digits", classes=[0, 1, 2], split=0.5)
    assert s.val is not None
    assert len(s.train) + len(s.val) == sum(DIGITS_COUNTS[:3])
    assert set(s.val.fields["y"].tolist()) == {0, 1, 2}
    m = load("moons", n=200, classes=[1, 0]).train.fields
    np.testing.assert_array_equal(m["t"][:, 0], m["y"].astype(np.float32))
    assert np.bincount(m["y"]).tolist() == [100, 100]


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("digits", {"classes": [0, 42]}, "digits: classes=[0, 42]: digits has classes 0..9"),
        ("moons", {"classes": [2]}, "moons has classes 0..1"),
        ("digits", {"classes": []}, "must be a list of integers"),
        ("digits", {"classes": 3}, "must be a list of integers like [0, 1], got int 3"),
        ("digits", {"classes": [1, 1]}, "names class 1 twice"),
        ("digits", {"classes": [-1]}, "class -1 is negative"),
        ("digits", {"classes": [0.5]}, "got float 0.5 in the list"),
        ("sine", {"classes": [0]}, "sine has none"),
        ("spirals", {"classes": [0, 1]}, "argument 'classes' is number of spiral arms here"),
    ],
)
def test_classes_errors_are_argument_errors(name: str, kwargs: dict, words: str) -> None:
    with pytest.raises(DataError) as e:
        load(name, **kwargs)
    assert words in e.value.message
    assert e.value.field == "classes"


def test_classes_on_a_file_is_checked_against_its_labels(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,2\n")
    s = load("csv", str(f), target="label", classes=[2, 0])
    assert s.train.fields["y"].tolist() == [1, 0, 0]
    with pytest.raises(DataError, match=r"classes=\[5\]: csv has classes 0..2"):
        load("csv", str(f), target="label", classes=[5])
    g = tmp_path / "r.csv"
    g.write_text("a,price\n1,2.5\n2,3.5\n")
    with pytest.raises(DataError, match=r"integer class labels y\[n\], and this data has no field y"):
        load("csv", str(g), target="price", dtype="f32", classes=[0])


def test_classes_error_is_located_by_specc_check() -> None:
    model = (
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  logits = x -> dense(10)\n  output logits\n}"
    )
    train = "train {\n  data = digits(classes=[0, 42])\n  loss = cross_entropy(logits, y)\n}"
    spec = specc.load("m.net", text=f"{model}\n{train}\n")
    with pytest.raises(SpecError) as e:
        check_spec(spec)
    (d,) = e.value.diagnostics
    assert d.kind == "argument error"
    assert "digits has classes 0..9" in d.message
    assert (d.span.line, d.span.col) == (8, 17)  # at `classes=[0, 42]`


def test_one_class_for_a_classifier_is_a_data_error(tmp_path: Path) -> None:
    """digits(classes=[3]) under cross_entropy trained a one-class classifier silently (val_accuracy 1). A located
    data error, from specc check where the list is in the spec (it passed check and stopped train at the data
    line), from loading where the data hold one class of their own (an npz); one class is fine for a model that
    does not classify it (an autoencoder of the 3s)."""
    from click.testing import CliRunner

    from specc.cli import main
    from specc.train.loop import check_label_range, load_splits
    from specc.train.spec import build_config

    model = (
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  logits = x -> dense(10)\n  output logits\n}"
    )
    path = tmp_path / "m.net"
    path.write_text(
        f"{model}\ntrain {{\n  data = digits(classes=[3])\n  loss = cross_entropy(logits, y)\n}}\n"
    )
    for command in (
        ["check", str(path)],
        ["train", str(path), "--out", str(tmp_path / "run"), "--epochs", "1"],
    ):
        r = CliRunner().invoke(main, command)
        assert r.exit_code == 1, r.output
        assert r.stderr.splitlines()[0] == (
            f"{path}:8:17: data error: the training labels 'y' would hold one class only (classes=[3] keeps one "
            "class), so 'logits' would learn to name it whatever the input: loss 0, accuracy 1"
        )
        assert r.stderr.splitlines()[-1] == (
            "hint: cross_entropy(logits, y) scores classes, and needs at least two: keep at least two classes, "
            "e.g. classes=[3, 8]"
        )
    assert not (tmp_path / "run").exists()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", x=rng.normal(size=(40, 64)).astype(np.float32), y=np.full(40, 3, np.int32))
    path.write_text(f'{model}\ntrain {{\n  data = npz("one.npz")\n  loss = cross_entropy(logits, y)\n}}\n')
    r = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(
        f"{path}:8:3: data error: the training labels 'y' hold one class only (every label is 3), so 'logits' "
        "would learn to name it"
    )
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    autoencoder = "model A {\n  input x: f32[N, 64]\n  r = x -> dense(64)\n  output r\n}"
    for text in (
        f"{model}\ntrain {{\n  data = digits(classes=[3, 8])\n  loss = cross_entropy(logits, y)\n}}\n",
        f"{autoencoder}\ntrain {{\n  data = digits(classes=[3])\n  loss = mse(r, x)\n}}\n",
    ):
        path.write_text(text)
        spec = specc.load(path)
        graph = spec.graph()
        config = build_config(spec, graph)
        check_label_range(config, graph, load_splits(config))


# ---------------------------------------------------------------------------------------------- labels=shuffled


def test_shuffled_labels_same_multiset_other_order_val_untouched() -> None:
    true = load("digits", split=0.8)
    rand = load("digits", split=0.8, labels="shuffled")
    assert true.val is not None and rand.val is not None
    ty, ry = true.train.fields["y"], rand.train.fields["y"]
    np.testing.assert_array_equal(true.train.fields["x"], rand.train.fields["x"])
    assert sorted(ty.tolist()) == sorted(ry.tolist())
    assert (ty != ry).mean() > 0.8  # a random relabelling keeps about 1/10 by chance
    np.testing.assert_array_equal(true.val.fields["y"], rand.val.fields["y"])
    np.testing.assert_array_equal(true.val.fields["x"], rand.val.fields["x"])
    # seeded by the run's seed
    np.testing.assert_array_equal(ry, load("digits", split=0.8, labels="shuffled").train.fields["y"])
    assert not np.array_equal(ry, load("digits", split=0.8, labels="shuffled", seed=1).train.fields["y"])


def test_shuffled_labels_move_y_and_t_together_and_bad_values() -> None:
    m = load("moons", n=100, labels="shuffled").train.fields
    np.testing.assert_array_equal(m["t"][:, 0], m["y"].astype(np.float32))
    with pytest.raises(DataError, match='must be one of shuffled, got "random"') as e:
        load("digits", labels="random")
    assert e.value.field == "labels"


# ---------------------------------------------------------------------------------------------- augment=


def _epoch(s: Splits, seed: int, epoch: int, batch: int = 16) -> list[dict[str, np.ndarray]]:
    return list(s.train.batches(batch, rng=np.random.default_rng([seed, epoch]), drop_last=True))


def test_augment_is_deterministic_per_seed_and_epoch_and_changes_images() -> None:
    plain = load("digits", image=True)
    aug = load("digits", image=True, augment=["random_crop(pad=2)", "flip_lr"])
    assert aug.augment is not None and plain.augment is None
    a0, a0_again, a1 = _epoch(aug, 0, 0), _epoch(aug, 0, 0), _epoch(aug, 0, 1)
    p0 = _epoch(plain, 0, 0)
    assert len(a0) == len(p0) == 1797 // 16
    for a, b in zip(a0, a0_again, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
    # same shuffle order as without augmentation: labels equal, images changed
    assert all(np.array_equal(a["y"], p["y"]) for a, p in zip(a0, p0, strict=True))
    changed = np.mean(
        [not np.array_equal(a["x"][i], p["x"][i]) for a, p in zip(a0, p0, strict=True) for i in range(16)]
    )
    assert changed > 0.7
    assert a0[0]["x"].shape == (16, 8, 8, 1) and a0[0]["x"].dtype == np.float32
    assert not np.array_equal(a0[0]["x"], a1[0]["x"])  # another epoch, other crops
    # the stored data and the validation split are never augmented
    np.testing.assert_array_equal(aug.train.fields["x"], plain.train.fields["x"])
    np.testing.assert_array_equal(next(aug.train.batches(16))["x"], plain.train.fields["x"][:16])


def test_flip_and_crop_do_what_they_say() -> None:
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    batch = {"x": x, "y": np.array([0, 1], np.int32)}
    rng = np.random.default_rng(0)
    flipped = AUGMENTATIONS["flip_lr"].fn(batch, rng, p=1.0)
    np.testing.assert_array_equal(flipped["x"], x[:, :, ::-1])
    np.testing.assert_array_equal(flipped["y"], batch["y"])
    assert AUGMENTATIONS["flip_lr"].fn(batch, rng, p=0.0)["x"] is not x  # a new array, same values
    np.testing.assert_array_equal(AUGMENTATIONS["random_crop"].fn(batch, rng, pad=0)["x"], x)
    for seed in range(5):
        out = AUGMENTATIONS["random_crop"].fn(batch, np.random.default_rng(seed), pad=2)["x"]
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
        for i in range(2):
            # each example is some 4x5 window of its zero-padded image
            hits = [
                (dy, dx)
                for dy in range(5)
                for dx in range(5)
                if np.array_equal(out[i], padded[i, dy : dy + 4, dx : dx + 5])
            ]
            assert hits


def test_augment_through_the_training_loop_batches_resumes_identically() -> None:
    from specc.train.loop import _batches

    s = load("digits", image=True, augment=["random_crop(pad=1)", "flip_lr(p=0.5)"])
    rng = lambda: np.random.default_rng([3, 2])  # noqa: E731 - the loop's (seed, epoch) generator
    full = list(_batches(s.train, 32, rng(), 0, ["x", "y"]))
    resumed = list(_batches(s.train, 32, rng(), 5, ["x", "y"]))
    assert len(resumed) == len(full) - 5
    for a, b in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
    plain = list(_batches(load("digits", image=True).train, 32, rng(), 0, ["x", "y"]))
    assert not all(np.array_equal(a["x"], p["x"]) for a, p in zip(full, plain, strict=True))
    direct = list(s.train.batches(32, rng=rng(), drop_last=True))
    np.testing.assert_array_equal(full[0]["x"], direct[0]["x"])
    # renamed for a model, the augmentation stays
    assert s.train.rename({"image": "x"}).augment is s.train.augment


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"augment": ["flip_lr"]},
            "augment=[...] transforms images [n, H, W, C], and this data has x f32[1797, 64]",
        ),
        ({"image": True, "augment": ["fliplr"]}, "unknown augmentation 'fliplr'"),
        ({"image": True, "augment": ["random_crop(pad=-1)"]}, "argument 'pad' must be at least 0"),
        ({"image": True, "augment": ["random_crop(pad=1.5)"]}, "argument 'pad' must be an integer"),
        ({"image": True, "augment": ["random_crop(size=3)"]}, "unknown argument 'size'"),
        ({"image": True, "augment": ["flip_lr(p=2)"]}, "p=2.0 is a probability, at most 1"),
        ({"image": True, "augment": [3]}, "int 3 is not an augmentation"),
        ({"image": True, "augment": []}, "lists no augmentation"),
        ({"image": True, "augment": ["flip_lr"], "shuffle": False}, "needs shuffle=true"),
    ],
)
def test_augment_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(DataError) as e:
        load("digits", **kwargs)
    assert words in e.value.message
    assert e.value.field == "augment"


def test_augment_accepts_calls_bound_by_the_checker_and_a_single_name() -> None:
    from specc.train.spec import CallSpec

    call = CallSpec("random_crop", (("*", ()), ("pad", 1)))
    s = load("digits", image=True, augment=[call, "flip_lr"])
    assert s.augment is not None
    assert s.augment.steps == (("random_crop", (("pad", 1),)), ("flip_lr", (("p", 0.5),)))
    assert load("digits", image=True, augment="flip_lr").augment is not None


# ---------------------------------------------------------------------------------------------- csv dtype=


def test_csv_dtype_f32_gives_a_float_target_t(tmp_path: Path) -> None:
    f = tmp_path / "houses.csv"
    f.write_text("rooms,area,price\n3,70,2\n4,90,3\n2,50,1\n")
    auto = load("csv", str(f), target="price").train.fields
    assert auto["y"].dtype == np.int32
    reg = load("csv", str(f), target="price", dtype="f32").train.fields
    assert set(reg) == {"x", "t"}
    assert reg["t"].dtype == np.float32 and reg["t"].shape == (3, 1)
    assert reg["t"][:, 0].tolist() == [2.0, 3.0, 1.0]
    assert load("csv", str(f), target="price", dtype="i32").train.fields["y"].dtype == np.int32


def test_csv_dtype_errors(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("a,y\n1,0.5\n2,1\n")
    with pytest.raises(DataError, match=r"dtype=i32 needs integer labels in column 'y'; line 2 holds 0\.5"):
        load("csv", str(f), dtype="i32")
    g = tmp_path / "b.csv"
    g.write_text("a,y\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match="dtype=f32 reads column 'y' as numbers, and it holds text"):
        load("csv", str(g), dtype="f32")
    with pytest.raises(DataError, match='must be one of f32, i32, got "f64"') as e:
        load("csv", str(g), dtype="f64")
    assert e.value.field == "dtype"


# ---------------------------------------------------------------------------------------------- sine_windows


def test_sine_windows_shapes_defaults_and_determinism() -> None:
    info = DATASETS["sine_windows"]
    assert info.signature() == "sine_windows(n=1000, window=32, period=16.0, noise=0.05)"
    f = load("sine_windows").train.fields
    assert f["x"].shape == (1000, 32, 1) and f["x"].dtype == np.float32
    assert f["t"].shape == (1000, 1) and f["t"].dtype == np.float32
    np.testing.assert_array_equal(f["x"], load("sine_windows").train.fields["x"])
    g = load("sine_windows", n=50, window=8, split=0.8).train.fields
    assert g["x"].shape == (40, 8, 1)


def test_sine_windows_target_is_the_continuation() -> None:
    period, window = 12.0, 10
    f = load("sine_windows", n=64, window=window, period=period, noise=0.0).train.fields
    x, t = f["x"][:, :, 0].astype(np.float64), f["t"][:, 0].astype(np.float64)
    # any sampled sine obeys s[k+1] = 2 cos(w) s[k] - s[k-1]: the window continues into t
    c = 2 * math.cos(2 * math.pi / period)
    np.testing.assert_allclose(x[:, 2:], c * x[:, 1:-1] - x[:, :-2], atol=1e-5)
    np.testing.assert_allclose(t, c * x[:, -1] - x[:, -2], atol=1e-5)
    assert np.abs(x).max() <= 1.0 + 1e-6
    # windows start at different phases
    assert np.unique(np.round(x[:, 0], 4)).size > 32
    noisy = load("sine_windows", n=64, window=window, period=period, noise=0.1).train.fields
    resid = noisy["t"][:, 0] - (c * noisy["x"][:, -1, 0] - noisy["x"][:, -2, 0])
    assert 0.1 < float(np.std(resid)) < 0.5


def test_sine_windows_argument_errors() -> None:
    with pytest.raises(DataError, match="argument 'period' must be at least 2"):
        load("sine_windows", period=1.5)
    with pytest.raises(DataError, match="argument 'window' must be at least 1"):
        load("sine_windows", window=0)


# ---------------------------------------------------------------------------------------------- check path


def test_binding_options_imports_no_numpy() -> None:
    code = (
        "import sys, specc.train.data as d; "
        "d._bind(d.DATASETS['digits'], [], {'image': True, 'classes': [3, 8], 'labels': 'shuffled', "
        "'augment': ['random_crop(pad=4)', 'flip_lr']}); "
        "d._bind(d.DATASETS['csv'], ['a.csv'], {'dtype': 'f32'}); "
        "assert 'numpy' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_dataset_select_keeps_augment() -> None:
    s = load("digits", image=True, augment=["flip_lr"])
    sub = s.train.select(["x"])
    assert set(sub.fields) == {"x"} and sub.augment is s.train.augment
    assert DataSet({"x": np.zeros((2, 1))}).augment is None


AUTOENCODER = """\
model AE {
  input x: f32[N, 64]
  logits = x -> dense(16) -> relu -> dense(64)
  output logits
}
train {
  data   = DATA
  loss   = binary_cross_entropy(logits, x)
  epochs = 1
}
"""


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("digits(split=0.8, normalize=true)", "normalize=true standardised 'x'"),
        ('npz("pixels.npz")', "scale 'x' to [0, 1] (pixels / 255)"),
    ],
)
def test_binary_cross_entropy_targets_outside_0_1_are_a_data_error(
    tmp_path: Path, data: str, words: str
) -> None:
    """An autoencoder's binary_cross_entropy against `normalize=true` inputs (or 0-255 pixels) trained without a
    word: with targets outside [0, 1] the loss has no minimum. A located data error when the data is loaded."""
    from specc.train.loop import check_label_range, load_splits
    from specc.train.spec import build_config, check_target_range

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pixels.npz", x=rng.integers(0, 256, (50, 64)).astype(np.float32))
    path = tmp_path / "ae.net"
    path.write_text(AUTOENCODER.replace("DATA", data))
    spec = specc.load(path)
    graph = spec.graph()
    config = build_config(spec, graph)
    splits = load_splits(config)
    check_label_range(config, graph, splits)
    with pytest.raises(SpecError) as e:
        check_target_range(config, splits)
    text = e.value.render()
    assert (
        "data error: binary_cross_entropy's targets are probabilities in [0, 1], but the training data's 'x'"
        in text
    )
    assert words in text and f"{path}:7:3" in text
    from click.testing import CliRunner

    from specc.cli import main

    r = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "binary_cross_entropy's targets are probabilities" in r.stderr, r.output
    path.write_text(AUTOENCODER.replace("DATA", "digits(split=0.8)"))
    spec = specc.load(path)
    config = build_config(spec, spec.graph())
    check_target_range(config, load_splits(config))  # pixels in [0, 1]: fine


def test_a_drawn_input_the_data_file_also_holds_is_a_data_error(tmp_path: Path) -> None:
    """`input x: ... = normal()` with an npz holding x: the file's x was never read (the model trained on
    noise), silently; `specc check` cannot see an npz's fields, so loading says it."""
    from specc.train.loop import load_splits
    from specc.train.spec import build_config

    np.savez(tmp_path / "gan.npz", x=np.zeros((20, 64), np.float32))
    path = tmp_path / "g.net"
    path.write_text(
        "model G {\n  input x: f32[N, 64] = normal()\n  r = x -> dense(1)\n  output r\n}\n"
        'train {\n  data = npz("gan.npz")\n  loss = r\n}\n'
    )
    spec = specc.load(path)
    config = build_config(spec, spec.graph())
    with pytest.raises(SpecError) as e:
        load_splits(config, ("x",))
    text = e.value.render()
    assert f"{path}:7:3: data error: input x is drawn by the trainer, but the data has a field 'x'" in text


def test_ids_outside_an_embedding_table_are_a_data_error(tmp_path: Path) -> None:
    """reversal's symbols 0-9 looked up in embed(5, 8): the lookup gave NaN and the run stopped as 'diverged at
    step 0', naming the embed but not the ids. A data error at the data line, naming the embed and the vocab."""
    from click.testing import CliRunner

    from specc.cli import main

    path = tmp_path / "e.net"
    path.write_text(
        "model E {\n  input src: i32[N, T]\n  input tgt: i32[N, T]\n  logits = src -> embed(5, 8) -> dense(10)\n"
        "  output logits\n}\ntrain {\n  data = reversal(n=100, length=4)\n  loss = cross_entropy(logits, tgt)\n}\n"
    )
    r = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(
        f"{path}:8:3: data error: the training data's 'src' holds the id 9, but the embed at 4:19 has a table of 5 "
        "(ids 0 to 4)"
    ), r.stderr
    assert "hint: give the embed a vocab of at least 10" in r.stderr
