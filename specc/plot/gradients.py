"""`specc plot gradients`: each layer's gradient norm per epoch, from the `gradients.jsonl` that
`specc train --log-gradients` writes in the run folder — vanishing gradients in a deep sigmoid net."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .subject import plot_error

GRADIENTS_FILE = "gradients.jsonl"


@dataclass(frozen=True)
class GradientLog:
    """One objective's gradient norms: `norms[layer][k]` is the mean over epoch `epochs[k]`'s steps of that layer's
    gradient L2 norm; layers in the order the file lists them (input side first)."""

    objective: str
    epochs: tuple[int, ...]
    norms: dict[str, tuple[float, ...]]


def read_gradients(run: Path) -> list[GradientLog]:
    """The run's gradient norms, one log per objective (in the order they first appear)."""
    path = Path(run) / GRADIENTS_FILE
    if not path.is_file():
        raise plot_error(
            f"{run} has no {GRADIENTS_FILE}: this run was trained without --log-gradients; retrain with it",
            f"specc train SPEC --log-gradients --out {run} --force",
        )
    rows: dict[str, list[dict[str, Any]]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.setdefault(str(row.get("objective", "main")), []).append(
                {"epoch": int(row["epoch"]), "layers": {str(k): float(v) for k, v in row["layers"].items()}}
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise plot_error(f"{path}:{i}: not a gradient record ({type(e).__name__}: {e})") from None
    if not rows:
        raise plot_error(f"{path} is empty", "the run stopped before its first epoch ended")
    logs = []
    for objective, recs in rows.items():
        layers = list(dict.fromkeys(k for r in recs for k in r["layers"]))
        norms = {k: tuple(r["layers"].get(k, float("nan")) for r in recs) for k in layers}
        logs.append(GradientLog(objective, tuple(r["epoch"] for r in recs), norms))
    return logs


def draw(logs: list[GradientLog], title: str, max_lines: int = 8) -> Any:
    """Per objective: gradient norm (log scale) against layer depth, one line per epoch (at most `max_lines`,
    evenly chosen, the first and last always)."""
    from .figure import new_figure

    n = len(logs)
    width = max(6.0, 0.45 * max(len(g.norms) for g in logs) + 2.5)
    fig = new_figure(width, 3.6 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, g in zip(axes, logs, strict=True):
        layers = list(g.norms)
        count = len(g.epochs)
        picks = sorted(
            {round(i * (count - 1) / max(min(max_lines, count) - 1, 1)) for i in range(min(max_lines, count))}
        )
        for j, k in enumerate(picks):
            colour = (0.1 + 0.8 * j / max(len(picks) - 1, 1), 0.3, 0.9 - 0.8 * j / max(len(picks) - 1, 1))
            ax.plot(
                range(len(layers)),
                [g.norms[lay][k] for lay in layers],
                marker="o",
                ms=3,
                color=colour,
                label=f"epoch {g.epochs[k]}",
            )
        ax.set_yscale("log")
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("gradient L2 norm")
        ax.set_title(g.objective if n > 1 else title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if n > 1:
        fig.suptitle(title, fontsize=10)
    return fig
