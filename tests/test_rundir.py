"""The run directory keeps a user's files: specc deletes only what a run wrote, refuses to overwrite another run,
resumes only the spec it trained, and reads damaged checkpoints as errors, not tracebacks (issue 8, issue 10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from specc.cli import main
from specc.errors import SpecError
from specc.train.cli import train_command

SPEC = """\
# a tiny MLP on the digits
model Tiny {
  input x: f32[N, 64]
  input y: i32[N]

  h      = x -> dense(16) -> relu
  logits = h -> dense(10)
  output logits
}

train {
  data      = digits(split=0.8)
  loss      = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1, momentum=0.9)
  batch     = 64
  epochs    = 1
  metrics   = [accuracy(logits, y)]
}
"""


def write(folder: Path, text: str = SPEC, name: str = "tiny.net") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def train(spec: Path, out: Path, **kw) -> int:
    return train_command(spec, out_dir=out, verbose=False, **kw)


def error_of(spec: Path, out: Path, **kw) -> str:
    with pytest.raises(SpecError) as e:
        train(spec, out, **kw)
    return e.value.render()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- data loss --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cdir", [".", "", "./", "checkpoints/..", "metrics.jsonl", "/tmp/x", "../up"])
def test_checkpoint_dir_that_is_not_a_plain_subfolder_is_refused_before_anything_is_written(
    tmp_path: Path, cdir: str
) -> None:
    spec = write(tmp_path, SPEC.replace("  epochs    = 1", f'  epochs    = 1\n  checkpoint(dir="{cdir}")'))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["check", str(spec)])
    assert res.exit_code == 1, res.output
    assert f"{spec}:17:3: value error" in res.output
    for out in (tmp_path / "run", tmp_path):
        with pytest.raises(SpecError):
            train(spec, out, force=True)
    assert snapshot(tmp_path) == before


def test_out_dot_refuses_and_deletes_nothing(tmp_path: Path, monkeypatch) -> None:
    spec = write(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    res = CliRunner().invoke(main, ["train", str(spec), "--out", ".", "--force"])
    assert res.exit_code == 1
    assert "is not empty and is not a specc run" in res.output
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_second_run_needs_resume_or_force_and_force_keeps_user_files(tmp_path: Path) -> None:
    spec = write(tmp_path)
    out = tmp_path / "run"
    assert train(spec, out) == 0
    for name in ("run.json", "config.json", "metrics.jsonl", "curves.png", "spec/tiny.net"):
        assert (out / name).is_file(), name
    assert (out / "spec" / "tiny.net").read_text() == SPEC
    record = json.loads((out / "run.json").read_text())
    assert record["seed"] == 0 and {"jax", "flax", "optax", "specc"} <= set(record["versions"])
    (out / "notes.txt").write_text("my notes")
    (out / "checkpoints" / "mine.txt").write_text("mine too")
    msg = error_of(spec, out)
    assert "already holds a run of Tiny" in msg and "--resume" in msg and "--force" in msg
    assert train(spec, out, force=True) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "checkpoints" / "mine.txt").read_text() == "mine too"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_and_force_together_is_a_usage_error(tmp_path: Path) -> None:
    spec = write(tmp_path)
    res = CliRunner().invoke(
        main, ["train", str(spec), "--out", str(tmp_path / "run"), "--resume", "--force"]
    )
    assert res.exit_code == 2, res.output
    assert "give --resume (continue the run) or --force (replace it), not both" in res.output
    assert not (tmp_path / "run").exists()


# ---- resume compares the spec it trained -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("trained")
    spec = write(folder)
    out = folder / "run"
    assert train(spec, out) == 0
    return spec, out


def copy_run(trained: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained[1], out)
    return out


@pytest.mark.slow
def test_resume_after_changing_a_layer_names_it_at_its_line(trained, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    edited = write(tmp_path, SPEC.replace("dense(16)", "dense(30)"), "edited.net")
    msg = error_of(edited, out, resume=True, epochs=2)
    assert "edited.net:6:" in msg
    assert "resume error" in msg and "'h.dense' changed" in msg
    assert "features=16" in msg and "features=30" in msg


@pytest.mark.slow
def test_resume_after_changing_the_optimizer_is_located_at_it(trained, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    edited = write(tmp_path, SPEC.replace("sgd(lr=0.1, momentum=0.9)", "adam(lr=0.001)"), "edited.net")
    msg = error_of(edited, out, resume=True, epochs=2)
    assert "edited.net:14:" in msg and "'optimizer' changed" in msg and "adam(" in msg


@pytest.mark.slow
def test_resume_with_more_epochs_continues(trained, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    spec = write(tmp_path, SPEC.replace("epochs    = 1", "epochs    = 2"), "more.net")
    assert train(spec, out, resume=True) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


# ---- damaged checkpoints and unusable folders ------------------------------------------------------------


def step_dir(out: Path) -> Path:
    steps = [p for p in (out / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(steps) == 1
    return steps[0]


def damage_truncate(step: Path) -> None:
    for p in (step / "state").rglob("*"):
        if p.is_file() and p.stat().st_size > 0:
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def damage_bitflip(step: Path) -> None:
    for p in (step / "state").rglob("*"):
        if p.is_file() and p.stat().st_size > 16:
            b = bytearray(p.read_bytes())
            for i in range(0, len(b), 7):
                b[i] ^= 0xFF
            p.write_bytes(bytes(b))


def damage_record(step: Path) -> None:
    for p in (step / "record").rglob("*"):
        if p.is_file():
            p.write_text("{not json")


def damage_state_gone(step: Path) -> None:
    shutil.rmtree(step / "state")


def damage_empty(step: Path) -> None:
    shutil.rmtree(step)
    step.mkdir()


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", [damage_truncate, damage_bitflip, damage_record, damage_state_gone, damage_empty]
)
def test_damaged_checkpoint_is_a_clean_error(trained, tmp_path: Path, damage) -> None:
    out = copy_run(trained, tmp_path)
    damage(step_dir(out))
    res = CliRunner().invoke(main, ["train", str(trained[0]), "--out", str(out), "--resume", "--epochs", "2"])
    assert res.exit_code in (0, 1), res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    if res.exit_code == 1:
        assert "run error" in res.output and "--force" in res.output


@pytest.mark.slow
def test_unusable_out_is_found_before_training(tmp_path: Path) -> None:
    spec = write(tmp_path)
    (tmp_path / "file").write_text("x")
    msg = error_of(spec, tmp_path / "file" / "x")
    assert "cannot write the run directory" in msg or "is a file" in msg
    msg = error_of(spec, tmp_path / "file")
    assert "is a file" in msg
    out = tmp_path / "r"
    out.mkdir()
    (out / "checkpoints").write_text("not a folder")
    (out / "run.json").write_text(json.dumps({"model": "Tiny"}))
    msg = error_of(spec, out, force=True)
    assert "checkpoint folder" in msg and "is a file" in msg
    assert (out / "checkpoints").read_text() == "not a folder"


@pytest.mark.slow
def test_disk_full_while_saving_keeps_the_previous_checkpoint(trained, tmp_path: Path, monkeypatch) -> None:
    import errno

    import orbax.checkpoint as ocp

    out = copy_run(trained, tmp_path)
    before = snapshot(step_dir(out))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    msg = error_of(trained[0], out, resume=True, epochs=2)
    assert "No space left on device" in msg and "previous checkpoint is kept" in msg
    assert snapshot(step_dir(out)) == before


# ---- named leaves ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_leaves_are_named_by_their_state_paths(trained) -> None:
    import orbax.checkpoint as ocp

    tree = ocp.StandardCheckpointer().restore(step_dir(trained[1]).resolve() / "state")
    layers = tree["params"]["layers"]
    assert set(layers) == {"h_dense", "logits"}, set(layers)
    kernel = layers["h_dense"]["kernel"]
    assert np.asarray(kernel).shape == (64, 16)
    assert "opt" in tree and "step" in tree


def test_a_model_too_big_for_memory_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    spec = write(tmp_path, SPEC.replace("dense(16)", "dense(1000000000)"))
    res = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert res.exit_code == 1, res.output
    assert "resource error" in res.output and "tiny.net:6:17" in res.output and "GB" in res.output
    assert not (tmp_path / "run").exists()
