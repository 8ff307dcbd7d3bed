"""The run directory keeps a user's files: specc deletes only what a run wrote, refuses to overwrite another run,
resumes only the spec it trained, and reads damaged checkpoints as errors, not tracebacks (issue 8, issue 10).
`--force` never deletes the spec it trains, a user's `run.json` does not make a folder a run, and only the files a
run writes go (spec copies by name, tensorboardX's event files, Orbax's step folders)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from specc.cli import main
from specc.errors import SpecError
from specc.train.checkpoint import foreign_steps, orbax_steps
from specc.train.cli import train_command
from specc.train.rundir import event_files

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


def fake_run(out: Path, spec_files: list[str]) -> None:
    """A run.json with the keys specc writes (what makes a folder a run), for the checks made before training."""
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "format": 2,
        "model": "Tiny",
        "spec": spec_files[0],
        "spec_files": spec_files,
        "fingerprint": {},
    }
    (out / "run.json").write_text(json.dumps(record))


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
    assert f"{spec}:17:14: value error" in res.output  # at the dir, not the key
    for out in (tmp_path / "run", tmp_path):
        with pytest.raises(SpecError):
            train(spec, out, force=True)
    assert snapshot(tmp_path) == before


def test_checkpoint_every_0_saves_at_the_end_only_and_a_negative_every_is_located(tmp_path: Path) -> None:
    spec = write(tmp_path, SPEC.replace("  epochs    = 1", "  epochs    = 3\n  checkpoint(every=0)"))
    assert train(spec, tmp_path / "run") == 0
    # 1,437 examples in batches of 64: 22 steps an epoch; one checkpoint, the last epoch's
    assert [p.name for p in orbax_steps(tmp_path / "run" / "checkpoints")] == ["66"]
    spec.write_text(SPEC.replace("  epochs    = 1", "  epochs    = 3\n  checkpoint(every=-1)"))
    res = CliRunner().invoke(main, ["check", str(spec)])
    assert res.exit_code == 1, res.output
    assert (
        f"{spec}:17:20: argument error: checkpoint: argument 'every' must be at least 0, got -1" in res.output
    )


def test_a_second_run_into_a_folder_being_trained_is_refused(tmp_path: Path) -> None:
    """Two `specc train --out runs/x` at once: metrics.jsonl held epochs [1, 2, 1, 2] and both failed saving
    checkpoints, each deleting the other's. The folder is locked while a run holds it: the second is a run error,
    the first's files untouched; a refused run into a new folder leaves no folder behind."""
    import fcntl
    import os

    spec = write(tmp_path)
    out = tmp_path / "run"
    assert train(spec, out) == 0
    before = snapshot(out)
    fd = os.open(out, os.O_RDONLY)  # as the other process's run holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        text = error_of(spec, out, resume=True)
    finally:
        os.close(fd)
    assert f"run error: another specc train is writing {out} right now" in text
    assert snapshot(out) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("mine")
    error_of(spec, tmp_path / "other" / "new" / "deeper", resume=False, data="digits(nope=1)")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["mine.txt"]


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


@pytest.mark.parametrize("flag", [[], ["--force"], ["--resume"]])
def test_a_run_json_specc_did_not_write_does_not_make_a_run(tmp_path: Path, flag: list[str]) -> None:
    spec = write(tmp_path)
    out = tmp_path / "proj"
    (out / "spec").mkdir(parents=True)
    (out / "run.json").write_text('{"name": "my app"}')
    (out / "config.json").write_text('{"db": "x"}')
    (out / "spec" / "important.txt").write_text("mine")
    (out / "curves.png").write_text("x")
    before = snapshot(out)
    res = CliRunner().invoke(main, ["train", str(spec), "--out", str(out), *flag])
    assert res.exit_code == 1, res.output
    assert "is not a specc run" in res.output and "already holds a run" not in res.output
    assert snapshot(out) == before


def test_force_refuses_to_delete_a_file_the_spec_imports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    fake_run(out, ["spec/main.net", "spec/lib.net"])
    write(out / "spec", SPEC, "main.net")
    write(
        out / "spec", "block Hidden() {\n  input x\n  y = x -> dense(16) -> relu\n  output y\n}\n", "lib.net"
    )
    body = SPEC.replace("x -> dense(16) -> relu", "x -> Hidden()")
    spec = write(tmp_path, 'import "run/spec/lib.net"\n' + body)
    before = snapshot(out)
    msg = error_of(spec, out, force=True)
    assert f"--force would delete {(out / 'spec' / 'lib.net').resolve()}, a file the spec imports" in msg
    assert snapshot(out) == before


def test_force_refuses_to_delete_the_data_it_trains_on(tmp_path: Path) -> None:
    out = tmp_path / "run"
    fake_run(out, ["spec/tiny.net", "spec/digits.npz"])  # a data file kept among the spec copies
    (out / "spec").mkdir()
    np.savez(out / "spec" / "digits.npz", x=np.zeros((8, 64), np.float32), y=np.zeros(8, np.int32))
    spec = write(tmp_path, SPEC.replace("digits(split=0.8)", 'npz("run/spec/digits.npz")'))
    before = snapshot(out)
    msg = error_of(spec, out, force=True)
    assert f"--force would delete {(out / 'spec' / 'digits.npz').resolve()}, a data file of the run" in msg
    assert snapshot(out) == before


def test_force_refuses_to_overwrite_a_users_file_with_the_spec_copy(tmp_path: Path) -> None:
    out = tmp_path / "run"
    fake_run(out, ["spec/other.net"])
    write(out / "spec", "my own tiny.net", "tiny.net")
    spec = write(tmp_path)
    before = snapshot(out)
    msg = error_of(spec, out, force=True)
    assert "spec/tiny.net is not a file a run wrote; the run's copy of the spec would overwrite it" in msg
    assert snapshot(out) == before


def test_resume_and_force_together_is_a_usage_error(tmp_path: Path) -> None:
    spec = write(tmp_path)
    res = CliRunner().invoke(
        main, ["train", str(spec), "--out", str(tmp_path / "run"), "--resume", "--force"]
    )
    assert res.exit_code == 2, res.output
    assert "give --resume (continue the run) or --force (replace it), not both" in res.output
    assert not (tmp_path / "run").exists()


def test_only_tensorboardx_event_files_and_orbax_steps_are_the_runs(tmp_path: Path) -> None:
    ours = ["events.out.tfevents.1796094235.vm", "events.out.tfevents.1796094235.host.example.com"]
    for name in [*ours, "events.out.tfevents.mine", "events.out.tfevents.123.vm"]:
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in event_files(tmp_path)) == sorted(ours)
    steps = tmp_path / "checkpoints"
    for name in ("3", "4", "5.orbax-checkpoint-tmp-1700000000", "99", "notes"):
        (steps / name).mkdir(parents=True)
    (steps / "3" / "_CHECKPOINT_METADATA").write_text("{}")  # what Orbax writes in every step
    (steps / "99" / "mydata").write_text("mine")
    assert [p.name for p in orbax_steps(steps)] == ["3", "4", "5.orbax-checkpoint-tmp-1700000000"]
    assert [p.name for p in foreign_steps(steps)] == ["99"]


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
def test_force_refuses_to_delete_the_spec_it_trains(trained, tmp_path: Path, monkeypatch) -> None:
    out = copy_run(trained, tmp_path)
    before = snapshot(out)
    monkeypatch.chdir(out)
    res = CliRunner().invoke(main, ["train", "spec/tiny.net", "--out", ".", "--force"])
    assert res.exit_code == 1, res.output
    assert f"--force would delete {out.resolve() / 'spec' / 'tiny.net'}, the spec being trained" in res.output
    assert snapshot(out) == before
    mine = write(out / "spec", SPEC, "mine.net")  # a user's own spec kept in the run's spec/
    before = snapshot(out)
    msg = error_of(mine, out, force=True)
    assert "spec/mine.net lies in the run's spec/ folder, where the run writes its copy of it" in msg
    assert snapshot(out) == before


@pytest.mark.slow
def test_force_deletes_only_what_a_run_wrote(trained, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    (out / "checkpoints" / "99").mkdir()
    (out / "checkpoints" / "99" / "mydata").write_text("my data")
    before = snapshot(out)
    msg = error_of(trained[0], out, force=True)  # Orbax would take 99 for a step: refused, not deleted
    assert "checkpoints/99 is not a checkpoint specc wrote, but Orbax would take it for step 99" in msg
    assert snapshot(out) == before
    shutil.rmtree(out / "checkpoints" / "99")
    (out / "spec" / "my_notes.txt").write_text("my notes")
    (out / "events.out.tfevents.mine").write_text("my events")
    (out / "checkpoints" / "mine").mkdir()
    (out / "checkpoints" / "mine" / "1").write_text("kept")
    assert train(trained[0], out, force=True) == 0
    assert (out / "spec" / "my_notes.txt").read_text() == "my notes"
    assert (out / "spec" / "tiny.net").read_text() == SPEC
    assert (out / "events.out.tfevents.mine").read_text() == "my events"
    assert (out / "checkpoints" / "mine" / "1").read_text() == "kept"
    assert len(event_files(out)) == 1 and len(orbax_steps(out / "checkpoints")) == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_resume_after_changing_a_layer_names_it_at_its_line(trained, tmp_path: Path) -> None:
    out = copy_run(trained, tmp_path)
    edited = write(tmp_path, SPEC.replace("dense(16)", "dense(30)"), "edited.net")
    msg = error_of(edited, out, resume=True, epochs=2)
    assert "edited.net:6:" in msg
    assert "resume error" in msg and "'h.dense' changed" in msg
    assert "features=16" in msg and "features=30" in msg
    # one edit, one error: the relu after it and the next layer's kernel changed shape only because of it (they were
    # two more errors); a second edit is its own
    assert msg.count("resume error") == 1 and "'h' changed" not in msg and "'logits' changed" not in msg
    edited = write(
        tmp_path,
        SPEC.replace("dense(16)", "dense(30)").replace("dense(10)", "dense(10, bias=false)"),
        "two.net",
    )
    msg = error_of(edited, out, resume=True, epochs=2)
    assert msg.count("resume error") == 2 and "'logits' changed" in msg and "two.net:7:" in msg


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
    fake_run(out, ["spec/tiny.net"])
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


KILLED_WHILE_SAVING = """
import os, signal, sys
import orbax.checkpoint._src.path.atomicity as atomicity
finalize = atomicity.AtomicRenameTemporaryPath.finalize
async def killed_before_the_rename(self, *args, **kwargs):
    if str(self._final_path).endswith(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # the step's files written, Orbax's rename not done
    return await finalize(self, *args, **kwargs)
atomicity.AtomicRenameTemporaryPath.finalize = killed_before_the_rename
from specc.cli import main
main(["train", sys.argv[1], "--out", sys.argv[2], "--epochs", "2"])
"""


@pytest.mark.slow
def test_a_run_killed_while_saving_resumes_and_leaves_no_temporary(tmp_path: Path, caplog) -> None:
    """SIGKILL while Orbax wrote checkpoint 44 left `44.orbax-checkpoint-tmp` beside step 22: evaluate and
    predict read step 22, and --resume went on, but the temporary stayed until the step was saved again (Orbax
    then warned 'Attempted to create temporary directory ... which already exists'), and one whose step is never
    saved again (a Ctrl-C's mid-epoch save, killed) stayed for good, a model's size each. --resume removes them."""
    import subprocess
    import sys

    from specc.train.artifact import load_run

    spec = write(tmp_path, SPEC.replace("  metrics", "  checkpoint(every=1)\n  metrics"))
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_SAVING, str(spec), str(out), "checkpoints/44"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    steps = out / "checkpoints"
    assert sorted(p.name for p in steps.iterdir()) == ["22", "44.orbax-checkpoint-tmp"]
    assert load_run(out, "last").step == 22  # evaluate and predict read the last finished checkpoint
    shutil.copytree(steps / "44.orbax-checkpoint-tmp", steps / "30.orbax-checkpoint-tmp")  # never saved again
    (steps / "notes").mkdir()  # a user's folder stays
    assert train(spec, out, resume=True, epochs=2) == 0
    assert sorted(p.name for p in steps.iterdir()) == ["22", "44", "notes"]
    assert [p.name for p in (out / "best").iterdir()] == ["44"]
    assert "orbax-checkpoint-tmp" not in caplog.text
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_changed_checkpoint_folder_is_neither_resumed_nor_left_behind(tmp_path: Path) -> None:
    """A run saving to `checkpoint(dir="ck")`, replaced with --force by one saving to checkpoints/, kept ck/'s
    steps; a later --resume naming ck again restored the replaced run's weights and history. Now --force deletes
    the steps of the folder the replaced run saved to, and a resume whose folder differs is a located error."""
    ck = SPEC.replace("  epochs    = 1\n", '  epochs    = 1\n  checkpoint = checkpoint(every=1, dir="ck")\n')
    spec_ck, spec = write(tmp_path, ck, "ck.net"), write(tmp_path, SPEC)
    out = tmp_path / "run"
    assert train(spec_ck, out) == 0 and orbax_steps(out / "ck")
    assert train(spec, out, force=True) == 0
    assert not (out / "ck").exists() and orbax_steps(out / "checkpoints")  # emptied, the folder goes too
    err = error_of(spec_ck, out, resume=True)
    assert 'resume error: the run saved its checkpoints in "checkpoints", this spec saves them in "ck"' in err
    assert f"{spec_ck}:17:3" in err and 'hint: resume with checkpoint(dir="checkpoints")' in err


def test_a_resume_without_the_runs_set_says_to_give_it_again(tmp_path: Path) -> None:
    """`train --set optimizer=adam(...)`, then `--resume` without it: the hint said to resume only with the spec
    that was trained, though the spec was unchanged; it now names the --set too."""
    spec, out = write(tmp_path), tmp_path / "run"
    assert train(spec, out, overrides=["optimizer=adam(lr=0.01)"]) == 0
    err = error_of(spec, out, resume=True)
    assert (
        f"{spec}:14:3: resume error: train key 'optimizer' changed since the run was trained: was adam("
        in err
    )
    assert "or give the value it trained with again (--set optimizer=...)" in err
