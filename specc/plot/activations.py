"""`specc plot activations`: each layer's post-activation values on a batch of data, as histograms and as a table of
mean and standard deviation — the deep-initialisation experiment (collapse, saturation, spread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.graph import Graph
from .subject import Subject, data_batch, fed_inputs, model_values, plot_error


@dataclass(frozen=True)
class LayerActivations:
    """One layer's outputs on the batch, flattened.

    Args:
        name: the node's name in the graph (`h.3/h`: the 4th copy of a repeated block's value h).
        op: the activation (`tanh`), or the op itself for a model without activations.
        values: every output value of the layer on the batch, f32[batch · units].
    """

    name: str
    op: str
    values: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    def saturated(self, level: float = 0.99) -> float:
        """The fraction of values with |v| ≥ level (tanh's saturation)."""
        return float(np.mean(np.abs(self.values) >= level))


def activation_layers(graph: Graph) -> list[int]:
    """The nodes whose outputs are a layer's activations: every activation op's node, in order (a model without
    activations: every node that owns parameters)."""
    from ..ops._registry import get_op

    def family(op: str) -> str:
        d = get_op(op)
        return d.family if d is not None else ""

    acts = [n.id for n in graph if n.op not in ("input", "param", "const") and family(n.op) == "activation"]
    return acts or [n.id for n in graph if n.params or n.shares is not None]


def layer_activations(subject: Subject, data: str | None = None, batch: int = 500) -> list[LayerActivations]:
    """Every layer's activations on the first `batch` training examples (or of `data`)."""
    graph = subject.graph
    layers = activation_layers(graph)
    if not layers:
        raise plot_error(
            f"model {graph.model} has no layer to show", "activations are drawn for layers with weights"
        )
    fields = data_batch(subject, data, batch)
    names = fed_inputs(graph)
    missing = [k for k in names if k not in fields]
    if missing:
        raise plot_error(f"the data have no field {', '.join(missing)} for the model's inputs")
    inputs = {k: fields[k] for k in names}
    wanted = [graph.nodes[i].name for i in layers]
    # only the activations' ancestors run: the labels are not needed
    out = model_values(subject.model, inputs, wanted)
    return [
        LayerActivations(
            graph.nodes[i].name, graph.nodes[i].op, np.asarray(out[graph.nodes[i].name], np.float32).ravel()
        )
        for i in layers
    ]


# activations bounded by ±1 (or [0, 1]): |v| ≥ 0.99 is where their gradient vanishes
SATURATING = frozenset({"tanh", "sigmoid", "hard_tanh", "hard_sigmoid", "softsign"})


def table(layers: list[LayerActivations]) -> list[tuple[str, str, float, float, float | None]]:
    """(layer, op, mean, std, fraction |v| ≥ 0.99 for a saturating activation, else None) per layer, as
    `specc plot activations` prints them."""
    return [(a.name, a.op, a.mean, a.std, a.saturated() if a.op in SATURATING else None) for a in layers]


def draw(layers: list[LayerActivations], title: str) -> Any:
    """One histogram per layer, side by side, on a shared value axis; each titled with its mean and std."""
    from .figure import new_figure

    n = len(layers)
    cols = n if n <= 6 else min(-(-n // 2), 10)  # two rows for a deep net: a 16:9 slide, not a strip
    rows = (n + cols - 1) // cols
    fig = new_figure(1.9 * cols, 2.2 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    lo = min(float(a.values.min()) for a in layers)
    hi = max(float(a.values.max()) for a in layers)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    bins = np.linspace(lo, hi, 41)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        a = layers[k]
        ax.hist(a.values, bins=bins, color="C0")
        ax.set_title(f"{k + 1}: {a.name}\nμ {a.mean:.3g}  σ {a.std:.3g}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return fig
