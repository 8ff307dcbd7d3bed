"""A run folder as an artifact: load_run restores parameters and batch statistics (the run's own validation
figures to the last digit), evaluate/predict from the CLI; files created with the user's umask; fmt keeps a file's
mode and writes through symbolic links."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import specc
from specc.cli import main

HERE = Path(__file__).parent
TINY = HERE / "specs_train" / "tiny_dropout.net"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, float]]]:
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    spec = specc.load(TINY)
    graph = spec.graph()
    out = tmp_path_factory.mktemp("runs") / "TinyDrop"
    result = train_and_evaluate(build_config(spec, graph, ["epochs=2"]), out, verbose=False, graph=graph)
    return out, result.history


def trained_from(spec: Path, text: str) -> Path:
    """`text` written to `spec` and trained by `specc train` into `run/` beside it; the run folder."""
    spec.write_text(text)
    out = spec.parent / "run"
    r = CliRunner().invoke(main, ["train", str(spec), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.slow
def test_load_run_reproduces_the_runs_own_validation_figures(tiny_run) -> None:
    out, history = tiny_run
    run = specc.load_run(out, "last")
    assert run.checkpoint == "last" and run.graph.model == "TinyDrop"
    assert run.history == history
    got = run.evaluate()
    # batch norm's running statistics are restored too: exactly the trainer's figures, not just close
    assert got["accuracy"] == history[-1]["val_accuracy"]
    assert got["loss"] == history[-1]["val_loss"]


@pytest.mark.slow
def test_best_checkpoint_is_the_best_val_loss_epoch(tiny_run) -> None:
    out, history = tiny_run
    best = specc.load_run(out, "best")
    assert best.checkpoint == "best"
    i = min(range(len(history)), key=lambda k: history[k]["val_loss"])
    assert best.evaluate()["loss"] == history[i]["val_loss"]


@pytest.mark.slow
def test_a_run_with_no_best_epoch_loads_its_last_checkpoint(tiny_run, tmp_path: Path) -> None:
    """A run whose epochs have no validation figure (a GAN) has no best/ (an empty one, as older runs left, reads
    the same): "best" means the last one."""
    import shutil

    out, history = tiny_run
    copy = tmp_path / "NoBest"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "best")
    run = specc.load_run(copy, "best")
    assert run.checkpoint == "last"
    assert run.evaluate()["loss"] == history[-1]["val_loss"]
    (copy / "best").mkdir()
    assert specc.load_run(copy, "best").checkpoint == "last"


def test_a_run_without_validation_makes_no_best_folder(tmp_path: Path) -> None:
    """docs/training.md: runs without validation data have no best/ (it was made, empty)."""
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    spec = specc.load(TINY)
    graph = spec.graph()
    config = build_config(spec, graph, ["epochs=1", "data=digits(split=1.0)"])
    result = train_and_evaluate(config, tmp_path / "run", verbose=False, graph=graph)
    assert result.status == "done" and "val_loss" not in result.history[-1]
    assert not (tmp_path / "run" / "best").exists() and (tmp_path / "run" / "checkpoints").is_dir()


@pytest.mark.slow
def test_predict_and_cli_evaluate_and_predict(tiny_run, tmp_path: Path) -> None:
    out, history = tiny_run
    run = specc.load_run(out, "last")
    x = np.random.default_rng(0).uniform(0, 16, (5, 64)).astype(np.float32)
    logits = run.predict(x=x)["logits"]
    assert logits.shape == (5, 10) and np.all(np.isfinite(logits))

    r = CliRunner().invoke(main, ["evaluate", str(out), "--checkpoint", "last", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] == history[-1]["val_accuracy"]
    r = CliRunner().invoke(main, ["evaluate", str(out)])
    assert r.exit_code == 0 and "accuracy" in r.output
    # the title whole on one line (as the table's title it was wrapped to the narrow table: "(best checkpoint,
    # step" and "2)" on lines of their own)
    best = specc.load_run(out)
    assert r.output.splitlines()[0] == f"TinyDrop: {out} (best checkpoint, step {best.step})"

    np.savez(tmp_path / "in.npz", x=x)
    r = CliRunner().invoke(
        main, ["predict", str(out), str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz")]
    )
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "o.npz") as z:
        np.testing.assert_array_equal(z["logits"], logits)
    (tmp_path / "in.csv").write_text("\n".join(",".join(str(v) for v in row) for row in x) + "\n")
    r = CliRunner().invoke(
        main, ["predict", str(out), str(tmp_path / "in.csv"), "-o", str(tmp_path / "c.npz")]
    )
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "c.npz") as z:
        np.testing.assert_allclose(z["logits"], logits, rtol=1e-6)

    np.savez(tmp_path / "bad.npz", images=x)
    r = CliRunner().invoke(main, ["predict", str(out), str(tmp_path / "bad.npz")])
    assert r.exit_code == 1 and "no array named x" in r.output


def test_load_run_of_a_folder_that_is_not_a_run_is_a_clean_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path)])
    assert r.exit_code == 1 and "not a specc run" in r.output


def test_outputs_get_the_users_umask(tmp_path: Path) -> None:
    from specc.train.io import write_atomic

    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.txt", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640


def test_fmt_keeps_the_mode_and_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.net"
    real.write_text("model M {\n  input x: f32[N, 4]\n  y = x ->   dense(2)\n  output y\n}\n")
    real.chmod(0o640)
    link = tmp_path / "link.net"
    link.symlink_to(real)
    r = CliRunner().invoke(main, ["fmt", str(link)])
    assert r.exit_code == 0, r.output
    assert link.is_symlink()
    assert "x -> dense(2)" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


@pytest.mark.slow
def test_a_run_on_text_labels_predicts_them_by_name(tmp_path: Path) -> None:
    """A csv whose target column is text (iris species): the run keeps the names (classes.json), and
    `specc predict` names each example's highest-scoring class after the logits."""
    rng = np.random.default_rng(0)
    centres = {"setosa": (5.0, 1.4), "versicolor": (5.9, 4.2), "virginica": (6.6, 5.5)}
    rows = ["sepal,petal,species"] + [
        f"{a + rng.normal(0, 0.2):.2f},{b + rng.normal(0, 0.2):.2f},{name}"
        for _ in range(40)
        for name, (a, b) in centres.items()
    ]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    out = trained_from(
        tmp_path / "iris.net",
        "model Iris {\n  input x: f32[N, 2]\n  input y: i32[N]\n  logits = x -> dense(3)\n  output logits\n}\n"
        'train {\n  data = csv("iris.csv", target="species", split=0.8, normalize=true)\n'
        "  loss = cross_entropy(logits, y)\n  optimizer = adam(lr=0.1)\n  epochs = 30\n  batch = 16\n}\n",
    )
    assert json.loads((out / "classes.json").read_text()) == {"y": ["setosa", "versicolor", "virginica"]}
    (tmp_path / "q.csv").write_text("sepal,petal\n5.0,1.4\n6.6,5.5\n5.9,4.2\n")
    r = CliRunner().invoke(main, ["predict", str(out), str(tmp_path / "q.csv")])
    assert r.exit_code == 0, r.output
    assert "logits, highest class: setosa, virginica, versicolor" in r.stdout
    r = CliRunner().invoke(
        main, ["predict", str(out), str(tmp_path / "q.csv"), "-o", str(tmp_path / "p.npz")]
    )
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "p.npz") as z:  # allow_pickle off: the names are a plain unicode array
        assert z["logits_class"].tolist() == ["setosa", "virginica", "versicolor"] and z["logits"].shape == (
            3,
            3,
        )
    assert specc.load_run(out).class_names == ("setosa", "versicolor", "virginica")


def test_a_run_on_unnamed_labels_writes_no_class_names(tiny_run) -> None:
    out, _ = tiny_run
    assert not (out / "classes.json").exists() and specc.load_run(out).class_names == ()


def test_class_names_go_to_the_outputs_a_class_scoring_term_reads(tmp_path: Path) -> None:
    """An auxiliary head as wide as the classes (an embedding of 3) that no classification loss or metric reads
    gets no class names; the logits that cross_entropy and accuracy score do."""
    from specc.train.artifact import Run, class_score_values
    from specc.train.spec import build_config

    text = (
        "model M {\n  input x: f32[N, 4]\n  input y: i32[N]\n  logits = x -> dense(3)\n"
        "  embedding = x -> dense(3)\n  output logits\n  output embedding\n}\n"
        'train {\n  data = csv("d.csv", target="label")\n  loss = cross_entropy(logits, y) + 0.1 * mse(embedding, 0)\n'
        "  optimizer = sgd(lr=0.1)\n  metrics = [accuracy(logits, y)]\n}\n"
    )
    spec = specc.load(tmp_path / "m.net", text=text)
    graph = spec.graph()
    config = build_config(spec, graph)
    assert class_score_values(config) == {"logits"}
    run = Run(tmp_path, spec, graph, None, config, {}, [], "last", 0, class_names=("a", "b", "c"))
    scores = np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]], np.float32)
    assert run.named_classes({"logits": scores, "embedding": scores}) == {"logits": ["b", "a"]}


def test_an_output_that_would_replace_what_the_command_reads_is_refused(tmp_path: Path, tiny_run) -> None:
    """-o naming the input arrays, the spec, or a run's own file is a usage error and nothing is written (each
    was silently replaced: predict's inputs by its outputs, a spec by its YAML, run.json by weights)."""
    out, _ = tiny_run
    spec = tmp_path / "m.net"
    spec.write_text(TINY.read_text())
    arrays = tmp_path / "x.npz"
    np.savez(arrays, x=np.zeros((2, 64), np.float32))
    other = tmp_path / "other.net"
    other.write_text(TINY.read_text())
    before = {p: p.read_bytes() for p in (spec, arrays, out / "run.json", other)}
    cases = [
        ["predict", str(out), str(arrays), "-o", str(arrays)],
        ["export", str(out), "--to", "npz", "-o", str(out / "run.json")],
        ["export", str(out), "--to", "npz", "-o", str(out / "checkpoints" / "w.npz")],
        ["convert", str(spec), "--to", "yaml", "-o", str(spec)],
        ["dot", str(spec), "-o", str(spec)],
        # another spec, not the one read: a command that writes no spec refuses an existing spec file
        ["export", str(out), "--to", "npz", "-o", str(other)],
        ["dot", str(spec), "-o", str(other)],
        ["predict", str(out), str(arrays), "-o", str(other)],
    ]
    for args in cases:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert "would replace" in r.output or "would write into the run's own checkpoints/" in r.output, (
            r.output
        )
    assert {p: p.read_bytes() for p in before} == before
    r = CliRunner().invoke(main, ["export", str(out), "--to", "npz", "-o", str(out / "weights.npz")])
    assert r.exit_code == 0, r.output  # a new file in the run folder is fine
    (out / "weights.npz").unlink()
    r = CliRunner().invoke(main, ["convert", str(spec), "--to", "net", "-o", str(other)])
    assert r.exit_code == 0, r.output  # convert writes a spec: another existing spec is its output to replace


def test_convert_refuses_an_output_named_for_the_other_front_end(tmp_path: Path) -> None:
    """`convert a.net --to yaml -o keep.net` replaced a hand-written .net spec with YAML (and `--to net -o
    keep.yaml` a YAML one with .net text): neither loaded again. Now a usage error naming the suffix to give."""
    keep_net, keep_yaml = tmp_path / "keep.net", tmp_path / "keep.yaml"
    keep_net.write_text(TINY.read_text())
    keep_yaml.write_text("hi: 1\n")
    new_yml = tmp_path / "new.yml"
    for target, out, suffix in (
        ("yaml", keep_net, ".yaml"),
        ("net", keep_yaml, ".net"),
        ("net", new_yml, ".net"),
    ):
        r = CliRunner().invoke(main, ["convert", str(TINY), "--to", target, "-o", str(out)])
        assert r.exit_code == 2, r.output
        assert f"name it {out.with_suffix(suffix)}" in r.output, r.output
    assert keep_net.read_text() == TINY.read_text() and keep_yaml.read_text() == "hi: 1\n"
    assert not new_yml.exists()
    r = CliRunner().invoke(main, ["convert", str(TINY), "--to", "yaml", "-o", str(new_yml)])
    assert r.exit_code == 0 and CliRunner().invoke(main, ["check", str(new_yml)]).exit_code == 0


def test_an_output_named_for_another_format_is_a_usage_error(tmp_path: Path, tiny_run) -> None:
    """`predict -o out.csv` wrote an .npz named out.csv, and `export --to onnx -o w.npz` ONNX named w.npz,
    silently. Now a usage error naming the suffix to give, nothing written; a suffix of no format is fine."""
    out, _ = tiny_run
    arrays = tmp_path / "x.npz"
    np.savez(arrays, x=np.zeros((2, 64), np.float32))
    here = tmp_path / "outputs"
    here.mkdir()
    cases = [
        (
            ["predict", str(out), str(arrays), "-o", str(here / "p.csv")],
            f"predict writes an .npz (its outputs by name), not CSV; name it {here / 'p.npz'}",
        ),
        (
            ["export", str(out), "--to", "onnx", "-o", str(here / "w.npz")],
            f"--to onnx writes ONNX, not an .npz; name it {here / 'w.onnx'}, or give --to npz",
        ),
        (["export", str(out), "--to", "npz", "-o", str(here / "w.safetensors")], "or give --to safetensors"),
    ]
    runner = CliRunner()
    for args, words in cases:
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert words in r.output.replace("\n", " "), r.output
    assert list(here.iterdir()) == []
    for args in (
        ["predict", str(out), str(arrays), "-o", str(here / "p")],
        ["export", str(out), "--to", "stablehlo", "-o", str(here / "m.mlir")],
    ):
        r = runner.invoke(main, args)
        assert r.exit_code == 0, r.output
    assert sorted(p.name for p in here.iterdir()) == ["m.mlir", "p"]


def test_predict_and_export_replace_an_existing_file_only_with_force(tmp_path: Path, tiny_run) -> None:
    """`predict -o` and `export -o` (and export's default RUN/<model>.<ext>) replaced an existing file silently,
    the user's as much as specc's: now a usage error naming it and --force, nothing written; --force replaces it
    (atomically: no temporary file is left beside it)."""
    out, _ = tiny_run
    arrays = tmp_path / "x.npz"
    np.savez(arrays, x=np.zeros((2, 64), np.float32))
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"the user's own file")
    for args in (
        ["predict", str(out), str(arrays), "-o", str(mine)],
        ["export", str(out), "--to", "npz", "-o", str(mine)],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert f"{mine} exists; give --force to replace it, or another -o" in r.output, r.output
        assert mine.read_bytes() == b"the user's own file"
        r = CliRunner().invoke(main, [*args, "--force"])
        assert r.exit_code == 0, (args, r.output)
        with np.load(mine) as z:
            assert z.files
        mine.write_bytes(b"the user's own file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz", "x.npz"]

    default = out / "TinyDrop.npz"
    r = CliRunner().invoke(main, ["export", str(out), "--to", "npz"])
    assert r.exit_code == 0 and default.is_file(), r.output
    made = default.read_bytes()
    default.write_bytes(b"edited")
    r = CliRunner().invoke(main, ["export", str(out), "--to", "npz"])
    assert r.exit_code == 2 and f"{default} exists; give --force" in r.output, r.output
    assert default.read_bytes() == b"edited"
    r = CliRunner().invoke(main, ["export", str(out), "--to", "npz", "--force"])
    assert r.exit_code == 0 and default.read_bytes() == made, r.output
    default.unlink()
    # --force does not lift the other refusals: the inputs read, a run's own file
    r = CliRunner().invoke(main, ["predict", str(out), str(arrays), "-o", str(arrays), "--force"])
    assert r.exit_code == 2 and "is the file this command reads" in r.output, r.output
    r = CliRunner().invoke(main, ["export", str(out), "--to", "npz", "-o", str(out / "run.json"), "--force"])
    assert r.exit_code == 2 and "would replace the run's own run.json" in r.output, r.output


def test_a_run_with_no_checkpoint_is_not_told_to_try_the_last_one(tmp_path: Path) -> None:
    """After `--epochs 0` there is no checkpoint at all: "give --checkpoint last" cannot help, so it is not said."""
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    spec = specc.load(TINY)
    graph = spec.graph()
    train_and_evaluate(build_config(spec, graph, ["epochs=0"]), tmp_path / "run", verbose=False, graph=graph)
    for args in ([], ["--checkpoint", "last"]):
        r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), *args])
        assert r.exit_code == 1 and "no checkpoint in" in r.output, r.output
        assert "hint: train the run (again)" in r.output and "--checkpoint last" not in r.output


def test_an_output_that_cannot_be_written_is_a_usage_error(tmp_path: Path, tiny_run) -> None:
    """-o under a file (so no folder can be made there) was exit 3, an OSError from the atomic write; now each
    command that writes a path the user named says it cannot write it (exit 2) and writes nothing."""
    out, _ = tiny_run
    spec = tmp_path / "m.net"
    spec.write_text(TINY.read_text())
    arrays = tmp_path / "x.npz"
    np.savez(arrays, x=np.zeros((2, 64), np.float32))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cases = [
        ["dot", str(spec), "-o", str(blocker / "m.svg")],
        ["convert", str(spec), "--to", "yaml", "-o", str(blocker / "m.yaml")],
        ["compile", str(spec), "--emit", "ir", "-o", str(blocker / "emit")],
        ["predict", str(out), str(arrays), "-o", str(blocker / "p.npz")],
        ["export", str(out), "--to", "npz", "-o", str(blocker / "w.npz")],
    ]
    for args in cases:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert f"usage error: cannot write {blocker}/" in r.output and "hint: give a path" in r.output, (
            r.output
        )
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file",
        "m.net",
        "x.npz",
    ]


def test_a_run_whose_spec_warned_loads_and_resumes(tmp_path: Path) -> None:
    """A spec with a warning (batch = 1 before a batchnorm) trained, but config.json held the warning without
    its span: predict, evaluate and export said 'config.json is damaged (TypeError: Diagnostic.__init__() missing
    ... span)'. Warnings are no longer written, and a folder that holds them (as those runs wrote) still loads."""
    from specc.train.loop import train_and_evaluate
    from specc.train.spec import build_config

    spec_file = tmp_path / "bn.net"
    spec_file.write_text(
        "model B {\n  input x: f32[N, 2]\n  input y: i32[N]\n"
        "  logits = x -> dense(4) -> batchnorm -> relu -> dense(2) : [N, 2]\n  output logits\n}\n"
        "train {\n  data = xor(n=8, split=0.5)\n  loss = cross_entropy(logits, y)\n  batch = 1\n  epochs = 1\n}\n"
    )
    spec = specc.load(spec_file)
    graph = spec.graph()
    config = build_config(spec, graph, [])
    assert config.warnings  # the case: a run whose spec warned
    out = tmp_path / "run"
    train_and_evaluate(config, out, verbose=False, graph=graph)
    plain = json.loads((out / "config.json").read_text())
    assert "warnings" not in plain
    assert specc.load_run(out).predict(x=np.zeros((3, 2), np.float32))["logits"].shape == (3, 2)
    # a run folder written with the warnings in config.json (and in run.json's fingerprint)
    old = {"kind": "warning", "message": config.warnings[0].message, "hint": ""}
    (out / "config.json").write_text(json.dumps({**plain, "warnings": [old]}))
    record = json.loads((out / "run.json").read_text())
    record["fingerprint"]["train"]["warnings"] = [old]
    (out / "run.json").write_text(json.dumps(record))
    r = CliRunner().invoke(main, ["evaluate", str(out)])
    assert r.exit_code == 0 and "damaged" not in r.output, r.output
    r = CliRunner().invoke(main, ["train", str(spec_file), "--out", str(out), "--resume", "--epochs", "2"])
    assert r.exit_code == 0, r.output


def test_evaluate_says_which_data_it_ran_on(tmp_path: Path) -> None:
    """A run without a validation split was evaluated on its training data under the same unlabelled table as a
    held-out one; a lecturer would have shown the figures as test error. Now the text and --json say which."""
    spec = tmp_path / "nv.net"
    spec.write_text(TINY.read_text().replace("digits(split=0.8)", "digits(split=1.0)"))
    out = tmp_path / "nv"
    r = CliRunner().invoke(main, ["train", str(spec), "-o", str(out), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["evaluate", str(out)])
    assert r.exit_code == 0 and "on the TRAINING data (the run has no validation split" in r.stdout
    assert "1,797 examples" in r.stdout
    r = CliRunner().invoke(main, ["evaluate", str(out), "--json"])
    assert json.loads(r.stdout)["data"] == {"split": "training", "examples": 1797}


def test_evaluate_on_other_data_numbers_text_labels_as_the_run_did(tmp_path: Path) -> None:
    """A csv numbers its text labels in sorted order of those it holds: evaluating on a file of "dog" rows only
    made "dog" class 0, and a run that learnt it as class 1 scored inverted, silently. Labels are now matched to
    the run's classes.json by name; one the run never saw is a data error."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    labels = np.where(x[:, 0] + x[:, 1] > 0, "dog", "cat")
    rows = [",".join(f"{v:.4f}" for v in r) + f",{lab}" for r, lab in zip(x, labels, strict=True)]
    (tmp_path / "text.csv").write_text("a,b,c,d,y\n" + "\n".join(rows) + "\n")
    dogs = [r for r in rows if r.endswith(",dog")]
    (tmp_path / "dogs.csv").write_text("a,b,c,d,y\n" + "\n".join(dogs) + "\n")
    (tmp_path / "dogs_num.csv").write_text("a,b,c,d,y\n" + "\n".join(r[:-3] + "1" for r in dogs) + "\n")
    (tmp_path / "odd.csv").write_text("a,b,c,d,y\n" + "\n".join(r[:-3] + "Dog" for r in dogs) + "\n")
    out = trained_from(
        tmp_path / "m.net",
        "model M {\n  input x: f32[N, 4]\n  input y: i32[N]\n  logits = x -> dense(8) -> relu -> dense(2)\n"
        '  output logits\n}\ntrain {\n  data = csv("text.csv", split=0.8)\n  loss = cross_entropy(logits, y)\n'
        "  metrics = [accuracy(logits, y)]\n  epochs = 3\n}\n",
    )
    run = specc.load_run(out)
    assert run.class_names == ("cat", "dog")
    by_name = run.evaluate(f'csv("{tmp_path / "dogs.csv"}")')
    assert run.evaluated_on == {
        "split": "data",
        "examples": 107,
        "data": f'csv("{tmp_path / "dogs.csv"}")',
        "part": "all",
    }
    by_number = run.evaluate(f'csv("{tmp_path / "dogs_num.csv"}")')
    assert by_name == by_number and by_name["accuracy"] != 1 - by_number["accuracy"]
    with pytest.raises(
        specc.SpecError, match="--data's label 'Dog' is not a class of the run \\(cat, dog\\)"
    ):
        run.evaluate(f'csv("{tmp_path / "odd.csv"}")')
