"""`specc predict`'s input files and `specc evaluate`'s run folder: a wrong array, a wrong csv row or a damaged run
file is a run error (exit 1) naming the file, the input, what the model takes and what was found — never exit 3.
The checks themselves run on a signature alone; the CLI tests train a tiny run once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.train.inputs import conform_inputs, read_input_file

HERE = Path(__file__).parent
TINY = HERE / "specs_train" / "tiny_dropout.net"
IMAGE = (("x", "f32", ("N", 64)),)
SEQUENCE = (("tokens", "i32", ("N", "T")), ("mask", "f32", ("N", "T", 1)))


def _error(needed, arrays) -> str:
    with pytest.raises(SpecError) as e:
        conform_inputs(needed, arrays, "in.npz")
    return e.value.render()


# ---- the checks, on a signature ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (np.zeros((5, 63), np.float32), ["in.npz: x is f32[5, 63]", "x: f32[N, 64]", "axis 1 must have 64"]),
        (np.zeros((5, 8, 8), np.float32), ["x is f32[5, 8, 8]", "2 axes, not 3", "x.reshape(5, 64)"]),
        (np.float32(1), ["x is a single number (f32[])", "x: f32[N, 64]"]),
        (np.array(["a", "b"]), ["x holds text", "x: f32[N, 64]"]),
        (np.zeros((5, 64), np.complex64), ["x holds complex numbers", "real part"]),
    ],
)
def test_a_wrong_array_names_what_the_model_takes_and_what_was_found(x, words) -> None:
    text = _error(IMAGE, {"x": x})
    assert text.startswith("run error:") and all(w in text for w in words), text


def test_ints_and_bools_become_the_models_floats() -> None:
    for x in (np.ones((2, 64), np.int64), np.ones((2, 64), bool)):
        got = conform_inputs(IMAGE, {"x": x}, "in.npz")["x"]
        assert got.dtype == np.float32 and got.shape == (2, 64) and np.all(got == 1)


def test_a_bf16_input_takes_floats_and_its_own_dtype() -> None:
    """A bf16 input's array, once cast (as `specc predict` reads the file), is checked again by `Run.predict`: it
    was 'x holds records (bfloat16), but the model takes x: bf16[N, 64]', exit 1 for every input."""
    bf16 = (("x", "bf16", ("N", 64)),)
    once = conform_inputs(bf16, {"x": np.full((2, 64), 0.5, np.float32)}, "in.npz")
    again = conform_inputs(bf16, once, "predict")["x"]
    assert (
        again.dtype.name == "bfloat16" and again.shape == (2, 64) and np.all(again.astype(np.float32) == 0.5)
    )


def test_an_integer_input_takes_whole_numbers_in_its_range_only() -> None:
    mask = np.ones((2, 7, 1), np.float32)
    got = conform_inputs(SEQUENCE, {"tokens": np.full((2, 7), 3.0), "mask": mask}, "in.npz")
    assert got["tokens"].dtype == np.int32 and np.all(got["tokens"] == 3)
    assert "holds 0.5, which i32 cannot hold exactly" in _error(
        SEQUENCE, {"tokens": np.full((2, 7), 0.5), "mask": mask}
    )
    assert "holds 4294967296" in _error(SEQUENCE, {"tokens": np.full((2, 7), 2**32), "mask": mask})


def test_size_names_take_any_value_but_one_across_the_inputs() -> None:
    ok = {"tokens": np.zeros((3, 11), np.int32), "mask": np.ones((3, 11, 1), np.float32)}
    assert conform_inputs(SEQUENCE, ok, "in.npz")["tokens"].shape == (3, 11)
    text = _error(SEQUENCE, {**ok, "mask": np.ones((3, 12, 1), np.float32)})
    assert "mask is f32[3, 12, 1]" in text and "tokens has T = 11" in text
    text = _error(SEQUENCE, {**ok, "mask": np.ones((2, 11, 1), np.float32)})
    assert "2 examples" in text and "tokens has N = 3" in text


def test_a_computed_size_takes_only_the_values_its_formula_gives() -> None:
    """`x: f32[2*P, 64]` (specs/siamese.net): an odd batch failed inside split(x, 2) — exit 3, a ValueError."""
    from specc.ir.dims import Dim

    pairs = Dim.sym("P") * 2
    needed = (("x", "f32", (pairs, 64)), ("y", "i32", (pairs,)))
    ok = {"x": np.zeros((4, 64), np.float32), "y": np.zeros(4, np.int32)}
    assert conform_inputs(needed, ok, "in.npz")["x"].shape == (4, 64)
    assert conform_inputs(needed, {"x": np.zeros((0, 64)), "y": np.zeros(0)}, "in.npz")["y"].shape == (0,)
    text = _error(needed, {**ok, "x": np.zeros((5, 64), np.float32)})
    assert text == (
        "run error: in.npz: x is f32[5, 64], but the model takes x: f32[2*P, 64]: no whole P gives 2*P = 5 "
        "(axis 0)\nhint: give x 4 or 6 examples"
    ), text
    text = _error(needed, {**ok, "y": np.zeros(6, np.int32)})
    assert (
        "y is i32[6], but the model takes y: i32[2*P]: it has 6 examples, and with P = 2 (from x), 2*P = 4"
        in text
    )
    assert _error(needed, {**ok, "x": np.zeros((1, 64))}).endswith(
        "2*P = 1 (axis 0)\nhint: give x 2 examples"
    )


def test_token_ids_outside_the_embedding_and_empty_sequences_are_run_errors() -> None:
    """specs/seq2seq.net: an id ≥ vocab gave NaN logits and a negative one wrapped to the table's end (exit 0,
    silently wrong); a sequence of T = 0 steps was exit 3 (IndexError in the LSTM's last step)."""
    from specc.backend.flax import build_module
    from specc.train.export import signature

    sig = signature(build_module(specc.load(HERE.parent / "specs" / "seq2seq.net").graph(), seed=0))
    assert [(name, vocab) for name, vocab, _ in sig.ids] == [("src", 10), ("tgt_in", 10)]
    assert sig.ids[0][2].endswith("seq2seq.net:11:20")
    src = np.arange(12, dtype=np.int32).reshape(2, 6) % 10
    ok = {"src": src, "tgt_in": src}
    assert conform_inputs(sig.inputs, ok, "in.npz", sig.ids)["src"].shape == (2, 6)
    for bad, found in [(src + 5, 10), (src - 1, -1)]:
        with pytest.raises(SpecError) as e:
            conform_inputs(sig.inputs, {**ok, "src": bad}, "in.npz", sig.ids)
        assert e.value.render() == (
            f"run error: in.npz: src holds the token id {found}, but the embed at {sig.ids[0][2]} looks up "
            "ids 0 to 9\n"
            "hint: give ids below the vocabulary of 10 (the model was trained on those)"
        )
    empty = np.zeros((2, 0), np.int32)
    assert _error(sig.inputs, {"src": empty, "tgt_in": empty}) == (
        "run error: in.npz: src is i32[2, 0], but the model takes src: i32[N, T] (axis 1, T, has no entries)\n"
        "hint: give src at least one entry on its axis 1; only the examples may be none"
    )
    assert conform_inputs(sig.inputs, {"src": src[:0], "tgt_in": src[:0]}, "in.npz")["src"].shape == (0, 6)


def _read_errors(folder: Path, suffix: str, names: list[str]) -> dict[str, str]:
    """name → the rendered error of reading `folder/name.suffix` as the image input (each must fail)."""
    out = {}
    for name in names:
        with pytest.raises(SpecError) as e:
            read_input_file(IMAGE, folder / f"{name}{suffix}")
        out[name] = e.value.render()
    return out


def test_an_unreadable_npz_is_a_run_error(tmp_path: Path) -> None:
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("hello\n")
    np.save(tmp_path / "one.npy", np.zeros((2, 64)))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([1, "a"], dtype=object))
    expected = {
        "empty": "it is empty",
        "text": "neither a zip of arrays",
        "one": "one unnamed array",
        "obj": "x is an array of Python objects",
    }
    for name, text in _read_errors(tmp_path, ".npz", list(expected)).items():
        assert expected[name] in text and f"{name}.npz" in text


def test_an_unreadable_npy_says_why_and_never_offers_to_unpickle(tmp_path: Path) -> None:
    """A pickle named .npy showed numpy's advice ('you can load it unsafely using the allow_pickle= keyword'), and
    an .npy of objects numpy's 'Object arrays cannot be loaded when allow_pickle=False'. Now specc's words, as
    for an .npz."""
    import pickle

    (tmp_path / "pickle.npy").write_bytes(pickle.dumps({"x": 1}))
    np.save(tmp_path / "objects.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    (tmp_path / "empty.npy").write_bytes(b"")
    expected = {
        "pickle": "pickle.npy: not an .npy file (numpy would read it as a pickle, which specc does not load)",
        "objects": "objects.npy: an array of Python objects (pickled), which specc does not load",
        "empty": "empty.npy: not a readable .npy file (it is empty)",
    }
    for name, text in _read_errors(tmp_path, ".npy", list(expected)).items():
        assert expected[name] in text and "allow_pickle" not in text, text


def test_an_npy_is_the_input_of_a_model_of_one_input(tmp_path: Path) -> None:
    """np.save's .npy file was 'expected an .npz or a .csv file' with no hint: it is the model's input where the
    model takes one; a model of several is told how to name them."""
    np.save(tmp_path / "x.npy", np.ones((3, 64), np.float32))
    got = read_input_file(IMAGE, tmp_path / "x.npy")
    assert set(got) == {"x"} and got["x"].shape == (3, 64)
    with pytest.raises(SpecError) as e:
        read_input_file(SEQUENCE, tmp_path / "x.npy")
    text = e.value.render()
    assert "an .npy holds one unnamed array, but the model takes tokens, mask" in text
    assert "np.savez(path, tokens=..., mask=...)" in text
    (tmp_path / "x.txt").write_text("1 2 3\n")
    with pytest.raises(SpecError) as e:
        read_input_file(IMAGE, tmp_path / "x.txt")
    assert "expected an .npz, a .csv or" in e.value.render() and "np.savez(path, x=...)" in e.value.render()
    np.save(tmp_path / "bad.npy", np.ones((3, 63), np.float32))  # checked as an .npz's array is
    with pytest.raises(SpecError) as e:
        read_input_file(IMAGE, tmp_path / "bad.npy")
    assert "x: f32[N, 64]" in e.value.render()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            ",".join(f"c{i}" for i in range(64)).encode() + b"\n" + b",".join([b"1"] * 10) + b"\n",
            [":2: 10 values in this row", "x: f32[N, 64] takes 64", "give each row 64 numbers"],
        ),
        (b",".join([b"1"] * 64) + b"\n\n" + b",".join([b"1"] * 63) + b"\n", [":3: 63 values in this row"]),
        # the training csv, its label column kept: one value too many
        (b",".join([b"1"] * 65) + b"\n", [":1: 65 values in this row", "its label column kept? drop it"]),
        (b",".join([b"1"] * 64) + b"\n" + b"1," * 5 + b"a" + b",1" * 58 + b"\n", [":2: column 6 holds 'a'"]),
        (b"caf\xe9," + b",".join([b"a"] * 63) + b"\n", [":1: not a UTF-8 text file", "0xe9"]),
        (b"a,b\n\n", ["has no data rows"]),
    ],
)
def test_a_wrong_csv_row_names_its_line_and_the_values_a_row_takes(tmp_path: Path, content, words) -> None:
    (tmp_path / "in.csv").write_bytes(content)
    with pytest.raises(SpecError) as e:
        read_input_file(IMAGE, tmp_path / "in.csv")
    text = e.value.render()
    assert text.startswith(f"run error: {tmp_path / 'in.csv'}") and all(w in text for w in words), text


def test_a_csv_of_sequences_takes_rows_of_one_length(tmp_path: Path) -> None:
    needed = (("x", "f32", ("N", "T", 2)),)
    (tmp_path / "in.csv").write_text("1,2,3,4\n5,6,7,8\n")
    assert read_input_file(needed, tmp_path / "in.csv")["x"].shape == (2, 2, 2)
    for text, words in [
        ("1,2,3,4\n5,6\n", "but a row is one example, and line 1 has 4"),
        ("1,2,3\n", "multiple"),
    ]:
        (tmp_path / "in.csv").write_text(text)
        with pytest.raises(SpecError, match=words):
            read_input_file(needed, tmp_path / "in.csv")


def test_nan_and_inf_in_an_input_are_a_run_error_unless_allowed(tmp_path: Path) -> None:
    """A NaN or ±inf in a predict file gave NaN outputs and exit 0: now a run error naming the input, how many
    there are and the first (its index; a .csv's line and column); a number too large for the input's dtype
    (1e300 for f32) is one too. allow_nonfinite (--allow-nonfinite) lets them through."""
    x = np.ones((3, 64))
    x[1, 5], x[2, 0], x[2, 7] = np.nan, np.inf, -np.inf
    np.savez(tmp_path / "in.npz", x=x)
    with pytest.raises(SpecError) as e:
        read_input_file(IMAGE, tmp_path / "in.npz")
    text = e.value.render()
    assert text.startswith(f"run error: {tmp_path / 'in.npz'}: x holds 3 values that are not finite"), text
    assert "the first is nan, at x[1, 5]" in text and "--allow-nonfinite" in text, text
    got = read_input_file(IMAGE, tmp_path / "in.npz", allow_nonfinite=True)["x"]
    assert np.isnan(got[1, 5]) and got[2, 0] == np.inf

    np.savez(tmp_path / "big.npz", x=np.full((2, 64), 1e300))
    with pytest.raises(
        SpecError, match=r"holds 128 values .* the first is 1e\+300, too large for f32, at x\[0, 0\]"
    ):
        read_input_file(IMAGE, tmp_path / "big.npz")

    rows = [",".join(["1"] * 64), ",".join(["1"] * 9 + ["-inf"] + ["1"] * 54)]
    (tmp_path / "in.csv").write_text(",".join(f"c{i}" for i in range(64)) + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(SpecError) as e:
        read_input_file(IMAGE, tmp_path / "in.csv")
    assert "x holds 1 value that is not finite" in e.value.render()
    assert "the first is -inf, at x[1, 9] (line 3, column 10)" in e.value.render(), e.value.render()

    # integers hold no NaN; bf16 is checked as cast
    assert read_input_file(SEQUENCE[:1], _saved(tmp_path, tokens=np.ones((2, 3), np.int64)))[
        "tokens"
    ].shape == (2, 3)
    bf16 = (("x", "bf16", ("N", 2)),)
    with pytest.raises(SpecError, match=r"x holds 1 value that is not finite \(NaN or ±inf\) as bf16"):
        read_input_file(bf16, _saved(tmp_path, x=np.array([[1.0, np.nan]], np.float32)))


def _saved(tmp_path: Path, **arrays: np.ndarray) -> Path:
    np.savez(tmp_path / "saved.npz", **arrays)
    return tmp_path / "saved.npz"


# ---- through the CLI, on a trained run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    spec = specc.load(TINY)
    graph = spec.graph()
    out = tmp_path_factory.mktemp("runs") / "TinyDrop"
    train_and_evaluate(build_config(spec, graph, ["epochs=1"]), out, verbose=False, graph=graph)
    return out


@pytest.mark.slow
def test_predict_of_a_wrong_input_file_exits_1(tiny_run: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(0, 16, (5, 64))
    cases = {
        "short.npz": dict(x=x[:, :63]),
        "square.npz": dict(x=x.reshape(5, 8, 8)),
        "scalar.npz": dict(x=np.float32(1)),
        "complex.npz": dict(x=x.astype(np.complex64)),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        r = CliRunner().invoke(main, ["predict", str(tiny_run), str(tmp_path / name)])
        assert r.exit_code == 1 and "x: f32[N, 64]" in r.output and name in r.output, r.output
    (tmp_path / "row.csv").write_text(",".join(f"c{i}" for i in range(64)) + "\n" + "1," * 9 + "1\n")
    r = CliRunner().invoke(main, ["predict", str(tiny_run), str(tmp_path / "row.csv")])
    assert r.exit_code == 1 and "row.csv:2: 10 values" in r.output, r.output

    # ints are the model's floats; the library's predict checks as the CLI does
    run = specc.load_run(tiny_run)
    want = run.predict(x=x.round().astype(np.float32))["logits"]
    np.testing.assert_array_equal(run.predict(x=x.round().astype(np.int64))["logits"], want)
    with pytest.raises(SpecError, match=r"predict: x is f64\[5, 63\]"):
        run.predict(x=x[:, :63])


@pytest.mark.slow
def test_predict_of_an_input_with_nan_exits_1_unless_allowed(tiny_run: Path, tmp_path: Path) -> None:
    x = np.ones((2, 64), np.float32)
    x[1, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    r = CliRunner().invoke(main, ["predict", str(tiny_run), str(tmp_path / "nan.npz")])
    assert r.exit_code == 1, r.output
    assert (
        "nan.npz: x holds 1 value that is not finite (NaN or ±inf) as f32; the first is nan, at x[1, 3]"
        in (r.output)
    )
    assert "hint: the model's outputs would be NaN" in r.output and "--allow-nonfinite" in r.output
    r = CliRunner().invoke(main, ["predict", str(tiny_run), str(tmp_path / "nan.npz"), "--allow-nonfinite"])
    assert r.exit_code == 0 and "logits: float32[2, 10]" in r.output, r.output


@pytest.mark.slow
def test_evaluate_of_a_damaged_run_is_a_run_error(tiny_run: Path, tmp_path: Path) -> None:
    def damaged(name: str, text: str, append: bool = False) -> Path:
        copy = tmp_path / name.replace(".", "_")
        shutil.copytree(tiny_run, copy)
        with open(copy / name, "a" if append else "w", encoding="utf-8") as f:
            f.write(text)
        return copy

    for name, text, words in [
        ("run.json", "{}\n", "'spec'"),
        ("normalization.json", "", "normalization.json: it is empty"),
        ("config.json", "[]\n", "config.json is not a run's configuration"),
        ("config.json", "{}\n", "config.json is damaged"),
    ]:
        r = CliRunner().invoke(main, ["evaluate", str(damaged(name, text))])
        assert r.exit_code == 1 and words in r.output and "--force" in r.output, r.output
        shutil.rmtree(tmp_path / name.replace(".", "_"))

    # a run killed while writing metrics.jsonl: the line cut short is skipped, the epochs before it kept
    copy = damaged("metrics.jsonl", '{"epoch": 2, "los', append=True)
    r = CliRunner().invoke(main, ["evaluate", str(copy)])
    assert r.exit_code == 0, r.output
    history = specc.load_run(copy).history
    assert [h["epoch"] for h in history] == [1]

    # the spec copy deleted: it was "file error: no such file: RUN/spec/tiny.net, hint: check the path"
    copy = tmp_path / "no_spec"
    shutil.copytree(tiny_run, copy)
    for p in (copy / "spec").glob("*.net"):
        p.unlink()
    r = CliRunner().invoke(main, ["evaluate", str(copy)])
    assert r.exit_code == 1, r.output
    assert f"run error: {copy} has lost its copy of the spec it trained" in r.output
    assert "hint: put the spec back there" in r.output

    # another spec copied over the run's copy: it was "usage error: --model Tiny: no model named ..." (exit 2)
    # though no --model was given
    import json

    spec_copy = copy / json.loads((copy / "run.json").read_text())["spec"]
    spec_copy.write_text("model Other {\n  input x: f32[N, 64]\n  y = x -> dense(3)\n  output y\n}\n")
    r = CliRunner().invoke(main, ["evaluate", str(copy)])
    assert r.exit_code == 1, r.output
    assert (
        f"run error: {spec_copy}, the run's copy of the spec it trained, defines no model TinyDrop (it has "
        "Other): it is not the spec this run trained" in r.output
    )


@pytest.mark.slow
def test_evaluate_data_errors_point_at_the_data_option(tiny_run: Path) -> None:
    r = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--data", "xor"])
    assert r.exit_code == 2, r.output  # an option's value: a usage error, located in the option as typed
    assert r.output.startswith("--data:1:8: data error") and " 1 | --data xor" in r.output, r.output
    assert "declare" not in r.output and "the run's model takes x: f32[N, 64]" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--data", "digits(foo=1)"])
    assert r.exit_code == 2 and "--data digits(foo=1)" in r.output, r.output


DENOISING = """\
model DAE {
  input x: f32[N, 64]
  input eps: f32[N, 64] = normal(0, 0.2)
  rec = x + eps -> dense(16) -> relu -> dense(64)
  output rec
}
train {
  data   = digits(split=0.8)
  loss   = mse(rec, x)
  batch  = 64
  epochs = 1
}
"""


@pytest.mark.slow
def test_a_drawn_input_missing_from_the_file_says_it_is_drawn_in_training(tmp_path: Path) -> None:
    """predict asks for every input the outputs read, the noise the trainer drew included; the hint said only
    'name the arrays as the model's inputs', as if eps were a slip of the file."""
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    (tmp_path / "dae.net").write_text(DENOISING)
    spec = specc.load(tmp_path / "dae.net")
    graph = spec.graph()
    train_and_evaluate(build_config(spec, graph), tmp_path / "run", verbose=False, graph=graph)
    x = np.random.default_rng(0).uniform(0, 1, (3, 64)).astype(np.float32)
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "run"), str(_saved(tmp_path, x=x))])
    assert r.exit_code == 1, r.output
    assert "has no array named eps (it has x)" in r.stderr
    assert (
        "eps is drawn in training (normal(mean=0.0, std=0.2)), and predict reads it like any input"
        in r.stderr
    )
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "run"), str(_saved(tmp_path, x=x, eps=0 * x))])
    assert r.exit_code == 0, r.output
