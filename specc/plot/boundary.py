"""`specc plot boundary`: a trained classifier's decision regions over its 2-D input plane (the predicted class on
a grid) with the training points coloured by their label — the toy nets of the MLP and regularisation lectures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .subject import Subject, data_batch, located, model_values, plot_error

# losses whose first value is a logit: its sign is the class
_LOGIT_LOSSES = ("binary_cross_entropy", "hinge")


@dataclass(frozen=True)
class Regions:
    """The predicted class on a `len(ys)` × `len(xs)` grid over the data's range, and the data.

    Args:
        input: the model's 2-D input; score: the value read (the first loss term's prediction, e.g. logits);
        label: the data field holding the class.
        classes: int[len(ys), len(xs)], the predicted class at (xs[j], ys[i]).
        points: f32[M, 2], the training examples as the model sees them; labels: int[M].
        predicted: int[M], the model's class for each point.
    """

    input: str
    score: str
    label: str
    xs: np.ndarray
    ys: np.ndarray
    classes: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    num_classes: int

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))


def plane_input(subject: Subject) -> str:
    """The model's one 2-D float input ([N, 2]); a located error naming the inputs otherwise."""
    graph = subject.graph
    fed = [(name, graph.nodes[nid]) for name, nid in graph.inputs if "draw" not in graph.nodes[nid].attr]
    flat = [
        name
        for name, n in fed
        if n.type.rank == 2 and n.type.dims[1].as_int() == 2 and n.type.dtype in ("f16", "bf16", "f32", "f64")
    ]
    if len(flat) == 1:
        return flat[0]
    where = fed[0][1] if fed else None
    shown = ", ".join(f"{name}: {n.type}" for name, n in fed)
    raise located(
        plot_error(
            (
                "a decision boundary is drawn over a 2-D input [N, 2]; "
                if not flat
                else "more than one [N, 2] input; "
            )
            + f"model {graph.model} has {shown}",
            "plot boundary is for 2-D toy data (moons, circles, spirals, blobs with dim=2, xor)",
            where.span if where is not None and where.span.line >= 1 else None,
        ),
        subject,
    )


def score_and_label(subject: Subject) -> tuple[str, str, bool]:
    """The value the first loss term reads as its prediction, the label it compares with, and whether the
    prediction is a logit (a class from its sign) rather than class scores (argmax) or a probability (≥ 0.5)."""
    from ..train.spec import value_args

    config = subject.config
    for objective in config.objectives:
        for _, term in objective.terms:
            names = value_args(term)
            if len(names) >= 2:
                return names[0], names[1], term.name in _LOGIT_LOSSES
    raise plot_error(
        f"model {subject.graph.model}'s loss compares no prediction with a label",
        "plot boundary needs a classifier trained with e.g. cross_entropy(logits, y)",
    )


def decision_regions(subject: Subject, resolution: int = 200, margin: float = 0.1) -> Regions:
    """The classes a trained model predicts over its training data's plane (the range plus `margin` of it)."""
    x_name = plane_input(subject)
    score, label, logit = score_and_label(subject)
    fields = data_batch(subject)
    if label not in fields:
        raise plot_error(f"the data have no field '{label}' to colour the points by")
    points = np.asarray(fields[x_name], np.float32)
    labels = np.asarray(fields[label]).reshape(len(points), -1)[:, 0].astype(np.int64)
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution, dtype=np.float32)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)

    def classes_of(x: np.ndarray) -> np.ndarray:
        s = model_values(subject.model, {x_name: x}, [score])[score].reshape(len(x), -1)
        if s.shape[1] > 1:
            return np.argmax(s, axis=1)
        return (s[:, 0] > (0.0 if logit else 0.5)).astype(np.int64)

    both = classes_of(np.concatenate([grid, points]))  # one compiled shape for the grid and the points
    num = max(int(labels.max()) + 1, int(both.max()) + 1, 2)
    return Regions(
        x_name,
        score,
        label,
        xs,
        ys,
        both[: len(grid)].reshape(gy.shape),
        points,
        labels,
        both[len(grid) :],
        num,
    )


def draw(r: Regions, title: str) -> Any:
    """Filled regions of each predicted class, the points on top coloured by their true label."""
    from .figure import new_figure

    fig = new_figure(5.5, 5.0)
    ax = fig.subplots()
    colours = 10 if r.num_classes <= 10 else 20
    cmap, top = f"tab{colours}", colours - 0.5
    levels = np.arange(r.num_classes + 1) - 0.5
    ax.contourf(r.xs, r.ys, r.classes, levels=levels, cmap=cmap, vmin=-0.5, vmax=top, alpha=0.35)
    ax.scatter(
        r.points[:, 0],
        r.points[:, 1],
        c=r.labels,
        cmap=cmap,
        vmin=-0.5,
        vmax=top,
        s=12,
        edgecolors="k",
        linewidths=0.4,
    )
    ax.set_xlabel(f"{r.input}[:, 0]")
    ax.set_ylabel(f"{r.input}[:, 1]")
    ax.set_title(f"{title}\ntraining accuracy {r.accuracy:.3f}", fontsize=10)
    return fig
