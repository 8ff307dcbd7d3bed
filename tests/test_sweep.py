"""`specc sweep` and `--set` on `let` constants: a 2×2 grid of one-epoch runs (trained once for the module), the
summary against each run's metrics.jsonl, a model that changes with its constant, resume and load_run rebuilding
that model, located errors, and the sweep folder's no-overwrite rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.train.spec import apply_lets, build_config
from specc.train.sweep import grid, parse_axis, top_level_commas

TINY = """let width = 4
model Linear {
  input x: f32[N, 64]
  input y: i32[N]
  logits = x -> dense(10)
  output logits
}
model Tiny {
  input x: f32[N, 64]
  input y: i32[N]
  logits = x -> dense(width) -> relu -> dense(10)
  output logits
}
train {
  data = digits(split=100)
  loss = cross_entropy(logits, y)
  optimizer = adam(lr=1e-2)
  batch = 50
  epochs = 1
  metrics = [accuracy(logits, y)]
}
"""
POINTS = ["width=4,seed=0", "width=4,seed=1", "width=8,seed=0", "width=8,seed=1"]
SWEEP = ("sweep", "--set", "width=4,8", "--set", "seed=0,1")


def params(width: int) -> int:
    return 64 * width + width + width * 10 + 10


def invoke(*args: str | Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny spec's folder with a 2×2 sweep (width × seed, one epoch each) in `sweep/`, stopped by Ctrl-C in
    the first step of its last point (as `specc train` is: a callback raising KeyboardInterrupt)."""
    import specc.train.loop as loop

    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny.net").write_text(TINY, encoding="utf-8")
    real = loop.train_and_evaluate

    def ctrl_c_in_the_last(config: Any, workdir: Path, **kw: Any) -> Any:
        def ctrl_c(step: int) -> None:
            raise KeyboardInterrupt

        return real(config, workdir, **kw, callbacks=[ctrl_c] if workdir.name == POINTS[-1] else [])

    with pytest.MonkeyPatch.context() as m:
        m.setattr(loop, "train_and_evaluate", ctrl_c_in_the_last)
        code, table, err = invoke(*SWEEP, root / "tiny.net", "--out", root / "sweep")
    assert code == 130, err
    assert "width" in table and "val_accuracy" in table
    return root


def last_record(run: Path) -> dict[str, float]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return dict(json.loads(lines[-1]))


def test_one_folder_per_point_and_a_summary_that_matches_each_run(swept: Path) -> None:
    out = swept / "sweep"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(POINTS)
    rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in rows] == POINTS  # grid order: the first --set varies slowest
    for r in rows[:3]:
        last = last_record(out / r["run"])
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert r[k] == last[k]
        assert (r["status"], r["epochs"], r["best_epoch"]) == ("done", 1, 1)
        assert r["best_val_loss"] == last["val_loss"]
    for r in rows:
        assert r["params"] == params(r["width"])
        meta = json.loads((out / r["run"] / "run.json").read_text(encoding="utf-8"))
        assert meta["overrides"] == {"width": str(r["width"]), "seed": str(r["seed"])}
        assert meta["seed"] == r["seed"]
    csv = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0].startswith("run,width,seed,params,status,epochs,best_epoch,best_val_loss,")
    assert len(csv) == 5 and csv[1].startswith('"width=4,seed=0",4,0,310,done,1,1,')


def test_ctrl_c_stops_the_sweep_and_keeps_the_finished_runs(swept: Path) -> None:
    out = swept / "sweep"
    last = json.loads((out / "summary.json").read_text(encoding="utf-8"))[-1]
    assert (last["run"], last["status"], last["epochs"]) == (POINTS[-1], "interrupted", 0)
    assert "loss" not in last  # no epoch ended
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert [v["status"] for v in record["points"].values()] == ["done", "done", "done", "interrupted"]
    assert [p.name for p in (out / POINTS[-1] / "checkpoints").iterdir()] == [
        "1"
    ]  # --resume goes on from here


def test_the_let_override_changes_the_model_and_is_recorded(swept: Path) -> None:
    assert (params(4), params(8)) == (310, 610)
    spec = specc.load(swept / "tiny.net")
    assert spec.graph().total_params == params(4)
    assert apply_lets(spec, ["width=8"]).graph().total_params == params(8)
    config = json.loads((swept / "sweep" / "width=8,seed=1" / "config.json").read_text(encoding="utf-8"))
    assert config["lets"] == [["width", "8"]] and config["seed"] == 1
    # without applying it first, build_config configures the overridden model, not the caller's graph
    assert build_config(spec, spec.graph(), ["width=8"]).lets == (("width", "8"),)


def test_load_run_and_resume_rebuild_the_model_with_its_let(swept: Path, tmp_path: Path) -> None:
    from specc.train.artifact import load_run
    from specc.train.cli import recorded_lets
    from specc.train.rundir import check_resumable, read_run

    run = tmp_path / "run"
    shutil.copytree(swept / "sweep" / "width=8,seed=0", run)
    r = load_run(run, "last")  # the width-8 checkpoint restores into the width-8 model only
    assert r.graph.total_params == params(8) and r.config.lets == (("width", "8"),)
    # `specc train --resume` without --set: the run's own `width=8` comes first, and the fingerprint agrees
    ovs = recorded_lets(run)
    assert [(o.path, o.source.name) for o in ovs] == [(("width",), f"{run / 'config.json'}[width]")]
    spec = apply_lets(specc.load(swept / "tiny.net"), ovs)
    check_resumable(read_run(run) or {}, build_config(spec, spec.graph(), ovs), spec.graph())
    # a changed constant is refused, located at the model's changed layer, before anything is trained
    code, _, err = invoke("train", swept / "tiny.net", "--out", run, "--resume", "--set", "width=4")
    assert code == 1 and "changed since the run was trained" in err and "tiny.net:11:" in err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_the_sweep_folder_is_not_overwritten_and_resume_skips_finished_runs(swept: Path) -> None:
    out = swept / "sweep"
    before = (out / "summary.json").read_bytes()
    code, _, err = invoke(*SWEEP, swept / "tiny.net", "--out", out)
    assert code == 1 and "already holds a sweep" in err and "--resume" in err
    assert (out / "summary.json").read_bytes() == before
    code, _, err = invoke(
        "sweep", swept / "tiny.net", "--set", "width=4", "--set", "seed=0,1", "--out", out, "--resume"
    )
    assert code == 0, err
    assert err.count("finished, skipped") == 2 and "training" not in err
    assert json.loads((out / "summary.json").read_bytes()) == json.loads(before)  # every run of the sweep
    stray = swept / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    code, _, err = invoke("sweep", swept / "tiny.net", "--set", "width=4", "--out", stray, "--force")
    assert code == 1 and "is not a specc sweep" in err
    assert [p.name for p in stray.iterdir()] == ["notes.txt"]


def test_resume_with_other_swept_keys_is_a_usage_error_naming_them(swept: Path, tmp_path: Path) -> None:
    """--resume of a width × seed sweep with `--set lr=...` trained the new grid into the same folder and mixed
    both in the summary. The keys must be the sweep's, in its order (other values of them extend the sweep); a
    sweep.json written before the keys were recorded is judged by its points' settings."""
    out = tmp_path / "sweep"
    shutil.copytree(swept / "sweep", out)
    record = json.loads((out / "sweep.json").read_text())
    assert record["axes"] == ["width", "seed"]
    del record["axes"]
    (out / "sweep.json").write_text(json.dumps(record))
    before = {p.name for p in out.iterdir()}
    for options, varies in [
        (["--set", "optimizer.lr=0.1,0.01"], "this command varies optimizer.lr"),
        (["--set", "seed=0,1"], "this command varies seed"),
        (["--set", "seed=0,1", "--set", "width=4,8"], "in that order; this command varies seed, width"),
    ]:
        code, _, err = invoke("sweep", swept / "tiny.net", *options, "--out", out, "--resume")
        assert code == 2, err
        assert err.startswith(f"usage error: --resume: the sweep in {out} varies width, seed"), err
        assert (
            varies in err and "hint: resume with --set width=... --set seed=... (other values extend" in err
        )
        assert {p.name for p in out.iterdir()} == before and json.loads(
            (out / "sweep.json").read_text()
        ) == record


def test_resume_with_another_spec_is_a_usage_error_naming_both(swept: Path, tmp_path: Path) -> None:
    """--resume with another spec file trained its points into the sweep and skipped the finished ones as if they
    were its own: the summary mixed two models. Now exit 2 naming the sweep's spec, nothing written; the same
    spec moved elsewhere (sweep.json's spec_sha256) resumes."""
    out = tmp_path / "sweep"
    shutil.copytree(swept / "sweep", out)
    other = tmp_path / "other.net"
    other.write_text(TINY.replace("adam(lr=1e-2)", "sgd(lr=0.1)"), encoding="utf-8")
    record = (out / "sweep.json").read_text()
    before = {p.name for p in out.iterdir()}
    code, _, err = invoke(*SWEEP, other, "--out", out, "--resume")
    assert code == 2, err
    assert err.startswith(
        f"usage error: --resume: the sweep in {out} was started with {swept / 'tiny.net'}; this command gives "
        f"{other}"
    ), err
    assert (
        f"hint: resume with the spec it was started with, {swept / 'tiny.net'}; or give another --out" in err
    )
    assert {p.name for p in out.iterdir()} == before and (out / "sweep.json").read_text() == record

    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(swept / "tiny.net", moved / "tiny.net")
    code, _, err = invoke(*SWEEP, moved / "tiny.net", "--out", out, "--resume")
    assert code == 0, err
    assert err.count("finished, skipped") == 3
    assert json.loads((out / "sweep.json").read_text())["spec"] == str(moved / "tiny.net")


def test_resume_with_another_model_is_a_usage_error_naming_both(swept: Path, tmp_path: Path) -> None:
    """sweep.json did not record the model, so `--resume --model Linear` on a sweep of the file's last model, Tiny,
    trained Linear's points into it and skipped the finished ones as if they were Linear's. Now the model is
    recorded (the one `--model` names or the file's last) and another one is exit 2, nothing written; naming the
    same model resumes."""
    out = tmp_path / "sweep"
    shutil.copytree(swept / "sweep", out)
    assert json.loads((out / "sweep.json").read_text())["model"] == "Tiny"
    record = (out / "sweep.json").read_text()
    before = {p.name for p in out.iterdir()}
    code, _, err = invoke(*SWEEP, swept / "tiny.net", "--model", "Linear", "--out", out, "--resume")
    assert code == 2, err
    assert err.startswith(
        f"usage error: --resume: the sweep in {out} trained model Tiny; this command trains Linear"
    ), err
    assert "hint: resume with --model Tiny; or give another --out (--force replaces the sweep)" in err
    assert {p.name for p in out.iterdir()} == before and (out / "sweep.json").read_text() == record

    code, _, err = invoke(*SWEEP, swept / "tiny.net", "--model", "Tiny", "--out", out, "--resume")
    assert code == 0, err
    assert err.count("finished, skipped") == 3
    assert json.loads((out / "sweep.json").read_text())["model"] == "Tiny"


def test_bad_values_are_located_in_the_option_before_anything_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.net"
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = invoke("sweep", spec, "--set", "seed=0,1", "--set", "width=4,abc", "--out", out)
    assert code == 2  # located in the option only: a usage error
    assert err.split("\n")[:3] == [
        "--set[2]:1:9: value error: constant 'width' is an integer (`let width = 4`); `abc` is not a literal",
        " 1 | width=4,abc",
        "   |         ^^^",
    ]
    code, _, err = invoke("sweep", spec, "--set", "widht=4,8", "--out", out)
    assert code == 2
    assert err.startswith(
        "--set:1:1: name error: unknown train key or constant 'widht'; did you mean 'width'?"
    )
    code, _, err = invoke("sweep", spec, "--set", "width=4,,8", "--out", out)
    assert code == 2 and err.startswith("--set:1:9: argument error: an empty value in the list")
    code, _, err = invoke("sweep", spec, "--set", "width=4,4", "--out", out)
    assert code == 2 and err.startswith("--set:1:9: argument error: width=4 is given twice")
    assert not out.exists()


def test_values_split_at_top_level_commas_only() -> None:
    axis = parse_axis("optimizer=adam(1e-3, b1=0.9), sgd(0.1),adam(lr=1e-3, b1=0.9)", 1)
    assert [o.value.span.col for o in axis.values] == [11, 31, 40]
    assert [type(o.value).__name__ for o in axis.values] == ["Call", "Call", "Call"]
    assert top_level_commas('"a,b",c') == [5]
    points = grid([parse_axis("width=16,64"), parse_axis("data=digits(split=0.5),digits(split=100)", 1)])
    assert [p.name for p in points] == [
        "width=16,data=digits(split=0.5)",
        "width=16,data=digits(split=100)",
        "width=64,data=digits(split=0.5)",
        "width=64,data=digits(split=100)",
    ]
    with pytest.raises(SpecError) as e:
        grid([parse_axis("seed=0"), parse_axis("seed=1,2", 1)])
    assert "'seed' is swept by two --set options" in e.value.render()


def test_let_overrides_on_check_compile_and_dot(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.net"
    spec.write_text(TINY, encoding="utf-8")
    code, out, _ = invoke("check", spec, "--json", "--set", "width=8")
    assert code == 0 and json.loads(out)["total_params"] == params(8)
    code, _, err = invoke("compile", spec, "--emit", "ir", "--set", "epochs=3")
    assert code == 2 and "'epochs' is a train setting; only `let` constants change the model" in err
    code, out, _ = invoke("compile", spec, "--emit", "ir", "--set", "width=16")
    assert code == 0 and "kernel[64, 16]" in out
    code, out, _ = invoke("dot", spec, "--set", "width=16")
    assert code == 0 and "kernel 64×16" in out and "kernel 64×4" not in out


def test_a_constant_wins_over_the_train_key_of_its_name() -> None:
    text = TINY.replace("let width = 4\n", "let width = 4\nlet epochs = 5\n").replace(
        "epochs = 1", "epochs = epochs"
    )
    spec = specc.load("tiny.net", text=text)
    cfg = build_config(spec, spec.graph(), ["epochs=7"])
    assert (cfg.epochs, cfg.lets) == (7, (("epochs", "7"),))
    cfg = build_config(spec, spec.graph(), ["train.epochs=9"])
    assert (cfg.epochs, cfg.lets) == (9, ())
    with pytest.raises(SpecError) as e:
        build_config(spec, spec.graph(), ["epochs=2.5"])
    assert "constant 'epochs' is an integer (`let epochs = 5`), got 2.5" in e.value.render()


def test_force_removes_the_replaced_points_and_resume_takes_no_stray_run(tmp_path: Path) -> None:
    """`sweep --set width=4,8 --force` over a sweep of width=4,8,16 left width=16/ with its run: `plot curves
    out/*/` drew it, and a later --resume naming width=16 again continued that old run as this sweep's point.
    Now --force removes the replaced points' runs (a user's file keeps its folder), and --resume refuses a point
    folder holding a run the sweep never started, or another run than the one it finished."""
    spec = tmp_path / "tiny.net"
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "sweep"
    code, _, err = invoke("sweep", spec, "--set", "width=4,8,16", "--out", out)
    assert code == 0, err
    (out / "width=8" / "notes.txt").write_text("mine")
    code, _, err = invoke("sweep", spec, "--set", "width=4", "--out", out, "--force")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.csv",
        "summary.json",
        "sweep.json",
        "width=4",
        "width=8",
    ]
    assert [p.name for p in (out / "width=8").iterdir()] == ["notes.txt"]
    shutil.copytree(out / "width=4", out / "width=16")  # a run no sweep of this folder started
    code, _, err = invoke("sweep", spec, "--set", "width=4,16", "--out", out, "--resume")
    assert code == 1 and "width=16 holds a run that this sweep never started" in err, err
    # a finished point whose folder now holds another run is not skipped as this sweep's
    code, _, err = invoke("train", spec, "--model", "Linear", "--out", out / "width=4", "--force")
    assert code == 0, err
    code, _, err = invoke("sweep", spec, "--set", "width=4", "--out", out, "--resume")
    assert code == 1 and "resume error: the run trained model Linear, this spec gives Tiny" in err, err
