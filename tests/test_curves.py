"""curves.png: a short run's helper process draws it (matplotlib imported while the run trains), the trainer draws
it where the helper fails, and a helper nobody used ends."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from specc.train import loop
from specc.train.curves import CurvesDrawer, render_curves
from specc.train.loop import train_and_evaluate
from specc.train.spec import build_config

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
HISTORY = [
    {"epoch": 1, "loss": 1.5, "accuracy": 0.5, "val_loss": 1.4, "val_accuracy": 0.55, "time": 0.1},
    {"epoch": 2, "loss": 0.9, "accuracy": 0.7, "val_loss": float("nan"), "val_accuracy": 0.72, "time": 0.1},
]


def short_run(tmp_path: Path, first: bool = True) -> None:
    """The README's digits MLP for two epochs: a short run (its steps take less than their compilation); `first`:
    as the process's first run (the only one a helper draws for)."""
    import specc

    if first:
        loop._HELPED.clear()

    spec = specc.load(str(ROOT / "specs" / "digits_mlp.net"))
    config = build_config(spec, spec.graph(), ["epochs=2"])
    result = train_and_evaluate(config, tmp_path / "run", verbose=False)
    assert result.status == "done"
    assert not any("matplotlib" in n for n in result.notes)


def test_a_short_run_has_its_curves_drawn_by_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def in_the_trainer(*args: object, **kw: object) -> bytes:
        raise AssertionError("drawn in the trainer's process")

    monkeypatch.setattr(loop, "render_curves", in_the_trainer)
    short_run(tmp_path)
    assert (tmp_path / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_a_process_starts_one_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[CurvesDrawer] = []
    monkeypatch.setattr(loop, "CurvesDrawer", lambda: started.append(CurvesDrawer()) or started[-1])
    short_run(tmp_path / "a")
    short_run(tmp_path / "b", first=False)  # a sweep's second point: drawn in the process
    assert len(started) == 1
    assert (tmp_path / "b" / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_where_the_helper_fails_the_trainer_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CurvesDrawer, "render", lambda self, history, title: None)
    short_run(tmp_path)
    assert (tmp_path / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_the_helper_draws_what_the_trainer_would() -> None:
    drawer = CurvesDrawer()
    assert drawer.render(HISTORY, "M: m.net") == render_curves(HISTORY, "M: m.net")
    assert drawer.render(HISTORY, "again") is None  # one drawing a helper


def test_a_helper_nobody_used_ends() -> None:
    closed = CurvesDrawer()
    proc = closed._proc
    assert proc is not None
    closed.close()
    assert proc.returncode is not None
    dropped = CurvesDrawer()  # a run that raised before its end
    proc = dropped._proc
    assert proc is not None
    del dropped
    gc.collect()
    assert proc.returncode is not None
