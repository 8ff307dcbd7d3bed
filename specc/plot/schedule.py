"""`specc plot schedule`: the learning rate over optimizer steps, from the very schedule functions the trainer
hands Optax (`make_schedule`), with the steps per epoch of the spec's data and batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LearningRates:
    """One curve: the learning rate at steps 0, 1, …, len(rates) - 1 (Optax's update count).

    Args:
        label: the objective's name, or the `--lr` expression drawn.
        text: the learning rate as the spec (or `--lr`) writes it.
    """

    label: str
    text: str
    rates: np.ndarray


def learning_rates(
    file: Path,
    *,
    model: str | None = None,
    overrides: tuple[str, ...] = (),
    lrs: tuple[str, ...] = (),
    steps: int | None = None,
) -> tuple[list[LearningRates], int]:
    """The learning-rate curves of FILE's objectives (or one per `lrs` expression put in as `optimizer.lr`), over
    `steps` steps (default: the train section's epochs), and the steps per epoch they assume."""
    from ..spec import load
    from ..train.loop import drawn_inputs, load_splits
    from ..train.spec import build_config, parse_override

    spec = load(file, model)
    graph = spec.graph()
    ovs = [parse_override(o, i) for i, o in enumerate(overrides)]
    config = build_config(spec, graph, ovs)
    train = load_splits(config, tuple(drawn_inputs(graph))).train
    per_epoch = train.num_batches(min(config.batch, len(train)), drop_last=True)  # as the trainer counts
    total = steps if steps is not None else max(config.epochs, 1) * per_epoch
    if lrs:
        variants = [
            (text, build_config(spec, graph, [*ovs, parse_override(f"optimizer.lr={text}", name="--lr")]))
            for text in lrs
        ]
        triples = [(text, text, c.objectives[0].optimizer["lr"]) for text, c in variants]
    else:
        triples = [(o.name, _show(o.optimizer["lr"]), o.optimizer["lr"]) for o in config.objectives]
    return [
        LearningRates(label, text, rates_of(lr, per_epoch, total)) for label, text, lr in triples
    ], per_epoch


def rates_of(lr: Any, steps_per_epoch: int, steps: int) -> np.ndarray:
    """The learning rate at steps 0 … steps-1 as the trainer's optimizer sees it (`make_schedule`)."""
    from ..train.optim import make_schedule

    schedule = make_schedule(lr, steps_per_epoch)
    if not callable(schedule):
        return np.full(steps, schedule, np.float32)
    return np.asarray(schedule(np.arange(steps)), np.float32)


def _show(lr: Any) -> str:
    from ..train.spec import CallSpec

    if not isinstance(lr, CallSpec):
        return f"{lr:g}"
    return f"{lr.name}(" + ", ".join(f"{k}={v}" for k, v in lr.args) + ")"


def draw(curves: list[LearningRates], steps_per_epoch: int, title: str) -> Any:
    """The curves on one axis over steps, with the epochs marked on a second axis above."""
    from .figure import new_figure

    fig = new_figure(7.0, 3.8)
    ax = fig.subplots()
    for c in curves:
        label = c.label if c.label == c.text else f"{c.label}: {c.text}"
        ax.plot(np.arange(len(c.rates)), c.rates, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    spe = max(steps_per_epoch, 1)
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch")
    ax.set_title(title, fontsize=10)
    return fig
