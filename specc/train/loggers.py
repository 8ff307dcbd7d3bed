"""What the trainer hands each finished epoch to, besides metrics.jsonl: TensorBoard event files and the best
checkpoint. Each logger has `epoch(record, state)` — the epoch's record (the metrics.jsonl line) and a call that
fetches the train state to the host (only when a logger needs it) — and `close()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .rundir import BEST_DIR, event_files  # the names a run folder owns live in rundir


class EpochLogger(Protocol):
    def epoch(self, record: Mapping[str, float], state: Callable[[], Any]) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """TensorBoard event files in the run folder, beside metrics.jsonl: every key of the epoch record (loss,
    metrics, val_*, lr, time) as a scalar at step = epoch; with `histograms`, each parameter's values per epoch
    (tag `params/layers/<layer>/<name>`). Open with `tensorboard --logdir RUN`."""

    def __init__(self, workdir: Path, *, histograms: bool = False, fresh: bool = True, graph: Any = None):
        SummaryWriter = _summary_writer()
        workdir = Path(workdir)
        if fresh:  # a new run (or --force) replaces the old run's curves; --resume appends
            for old in event_files(workdir):
                old.unlink()
        self.histograms = histograms
        self.writer = SummaryWriter(logdir=str(workdir), flush_secs=10)
        self.picture: threading.Thread | None = None
        if fresh and graph is not None:  # graphviz runs while the trainer compiles
            self.picture = threading.Thread(target=self._try_picture, args=(graph,), name="specc-tb-picture")
            self.picture.start()

    def _try_picture(self, graph: Any) -> None:
        with contextlib.suppress(Exception):  # a missing drawing is no reason to stop a run
            self._add_picture(graph)

    def _add_picture(self, graph: Any) -> None:
        """The model's `specc dot` drawing under IMAGES, graphviz's PNG as it is (needs graphviz's `dot`; else
        its DOT source under TEXT)."""
        import shutil
        import subprocess

        from tensorboardX.proto.summary_pb2 import Summary

        from ..backend.dot import DotOptions, to_dot

        text = to_dot(graph, DotOptions())
        png = b""
        if shutil.which("dot") is not None:
            done = subprocess.run(
                ["dot", "-Tpng", "-Gdpi=72"], input=text.encode(), capture_output=True, check=False
            )
            png = done.stdout if done.returncode == 0 else b""
        if png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR":
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
            summary = Summary(value=[Summary.Value(tag="model", image=image)])
            self.writer._get_file_writer().add_summary(summary, 0)
        else:
            self.writer.add_text("model", "```\n" + text + "\n```", 0)

    def epoch(self, record: Mapping[str, float], state: Callable[[], Any]) -> None:
        step = int(record["epoch"])
        for k, v in record.items():
            if k != "epoch":
                self.writer.add_scalar(k, float(v), step)
        if self.histograms:
            import numpy as np

            from .checkpoint import leaf_paths

            for path, leaf in leaf_paths({"params": state()["params"]}):
                self.writer.add_histogram(path, np.asarray(leaf, np.float32), step)
        self.writer.flush()

    def step(self, step: int, values: Mapping[str, float]) -> None:
        """One train step's loss and metrics (`--log-steps`), under `step/<name>` at the global step."""
        for k, v in values.items():
            self.writer.add_scalar(f"step/{k}", v, step)

    def close(self) -> None:
        if self.picture is not None:
            self.picture.join()
        self.writer.close()


def _summary_writer() -> Any:
    """tensorboardX's SummaryWriter, imported without PyTorch: its writer imports torch when it is installed
    (only to accept torch tensors, which specc never passes), 3-10 s of a run's start."""
    import sys

    if "tensorboardX.writer" in sys.modules or "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


def best_metric(config: Any) -> tuple[str, str, float] | None:
    """(metric, mode, min_delta) that decides the best epoch: early_stop's, else val_loss (None: neither)."""
    es = config.early_stop
    if es is not None:
        mode = es["mode"]
        if mode == "auto":
            mode = "max" if any(w in es["metric"] for w in ("accuracy", "acc")) else "min"
        return str(es["metric"]), str(mode), float(es["min_delta"])
    return "val_loss", "min", 0.0


class BestCheckpoint:
    """Keeps the train state of the best epoch so far in `<run>/best/` (one checkpoint): best by the early-stop
    metric when there is one, else by val_loss; epochs whose record lacks the metric (no validation) are skipped.
    On resume the best value so far comes from the run's history. The best state is kept in host memory and written
    once, when the run ends (also on Ctrl-C or divergence): a save per improving epoch cost ~0.2 s each, most of a
    small model's run."""

    def __init__(self, workdir: Path, config: Any, history: Sequence[Mapping[str, float]]):
        from .checkpoint import remove_steps

        self.rule = best_metric(config)
        self.seed = config.seed
        directory = Path(workdir) / BEST_DIR
        if not history:
            remove_steps(directory)  # a fresh run: an earlier run's best is not this one's
        self.directory = directory
        self.best: float | None = None
        self.pending: tuple[int, Any, dict[str, Any]] | None = None
        for record in history:
            self._better(record)

    def _better(self, record: Mapping[str, float]) -> bool:
        if self.rule is None or self.rule[0] not in record:
            return False
        name, mode, delta = self.rule
        v = float(record[name])
        if self.best is None or (v < self.best - delta if mode == "min" else v > self.best + delta):
            self.best = v
            return True
        return False

    def epoch(self, record: Mapping[str, float], state: Callable[[], Any]) -> None:
        if not self._better(record):
            return
        host = state()
        assert self.rule is not None
        meta = {"epoch": int(record["epoch"]), "metric": self.rule[0], "value": self.best, "seed": self.seed}
        self.pending = (int(host["step"]), host, meta)

    def close(self) -> None:
        """Write the best epoch's state, if an epoch had the metric: a run without validation makes no best/."""
        if self.pending is None:
            return
        from .checkpoint import CheckpointError, Checkpoints

        step, host, meta = self.pending
        self.pending = None
        try:
            checkpoints = Checkpoints(self.directory, keep=1)
        except OSError as e:
            raise CheckpointError(f"cannot make {self.directory}: {e.strerror or e}") from None
        try:
            checkpoints.save(step, host, meta)
        finally:
            checkpoints.close()


def epoch_loggers(
    workdir: Path,
    config: Any,
    history: Sequence[Mapping[str, float]],
    *,
    primary: bool = True,
    histograms: bool = False,
    graph: Any = None,
) -> list[EpochLogger]:
    """The loggers of a run: the best checkpoint (every process: Orbax saves are collective) and TensorBoard
    (process 0; skipped with a note-free no-op when tensorboardX is missing)."""
    loggers: list[EpochLogger] = [BestCheckpoint(workdir, config, history)]
    if primary:
        with contextlib.suppress(ImportError):
            loggers.append(TensorBoardLogger(workdir, histograms=histograms, fresh=not history, graph=graph))
    return loggers
