"""TensorBoard event files beside metrics.jsonl, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
def test_tensorboard_scalars_and_histograms_read_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from specc.train.cli import train_command

    out = tmp_path / "run"
    code = train_command(
        HERE / "specs_train" / "tiny_dropout.net",
        overrides=["epochs=2"],
        out_dir=out,
        verbose=False,
        log_histograms=True,
    )
    assert code == 0
    assert list(out.glob("events.out.tfevents.*")), "no event file beside metrics.jsonl"
    import json

    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = EventAccumulator(str(out), size_guidance={"scalars": 0, "histograms": 0}).Reload()
    tags = acc.Tags()
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"):
        assert key in tags["scalars"], key
        events = acc.Scalars(key)
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([h[key] for h in history], rel=1e-6)
    assert "params/layers/h_dense/kernel" in tags["histograms"] or any(
        t.startswith("params/layers/") and t.endswith("kernel") for t in tags["histograms"]
    )
    assert len(acc.Histograms(tags["histograms"][0])) == 2

    # a forced re-run replaces the old curves instead of mixing two runs in one folder
    code = train_command(
        HERE / "specs_train" / "tiny_dropout.net",
        overrides=["epochs=1"],
        out_dir=out,
        verbose=False,
        force=True,
    )
    assert code == 0
    acc = EventAccumulator(str(out)).Reload()
    assert [e.step for e in acc.Scalars("loss")] == [1]
    # the model's drawing, for the lecture's "what did I train" (graphviz renders it; the image decodes)
    assert "model" in tags["images"]
    image = acc.Images("model")[0]
    assert image.width > 100 and image.height > 100


@pytest.mark.slow
def test_per_step_scalars_average_to_the_epoch_figures(tmp_path: Path) -> None:
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from specc.train.cli import train_command

    out = tmp_path / "run"
    assert (
        train_command(
            HERE / "specs_train" / "tiny_dropout.net",
            overrides=["epochs=2"],
            out_dir=out,
            verbose=False,
            log_steps=True,
        )
        == 0
    )
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    acc = EventAccumulator(str(out), size_guidance={"scalars": 0}).Reload()
    steps = acc.Scalars("step/loss")
    per_epoch = len(steps) // 2
    assert [e.step for e in steps] == list(range(1, 2 * per_epoch + 1))
    for i, h in enumerate(history):
        mean = sum(e.value for e in steps[i * per_epoch : (i + 1) * per_epoch]) / per_epoch
        assert mean == pytest.approx(h["loss"], rel=1e-5)
