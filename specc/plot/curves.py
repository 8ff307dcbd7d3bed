"""`specc plot curves`: one metric of several runs on one figure (a sweep: width, seed, degree), read from each
run's `metrics.jsonl`; each run is labelled by its folder name, or by the overrides it was trained with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .subject import plot_error

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class Curve:
    """One run's `metric` per epoch."""

    label: str
    epochs: tuple[int, ...]
    values: tuple[float, ...]


def run_label(run: Path) -> str:
    """The overrides the run was trained with (run.json's `overrides`, as `specc sweep` records them: `width=64,
    seed=1`), else the run folder's name."""
    from ..train.rundir import read_run

    meta = read_run(run) or {}
    overrides = meta.get("overrides")
    if isinstance(overrides, dict) and overrides:
        return ", ".join(f"{k}={v}" for k, v in overrides.items())
    if isinstance(overrides, list) and overrides:
        return ", ".join(str(o) for o in overrides)
    return Path(run).resolve().name


def read_curves(runs: list[Path], metric: str) -> list[Curve]:
    """Each run's `metric` per epoch (epochs without it are skipped); an error names the metrics a run has."""
    curves = []
    for run in runs:
        path = Path(run) / METRICS_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            # a sweep's folder holds one run per point: the curves are theirs
            sweep = (Path(run) / "sweep.json").is_file()
            raise plot_error(
                f"{run} is a sweep, not a run" if sweep else f"{run} has no readable {METRICS_FILE}",
                f"give its points' folders: specc plot curves {Path(run)}/*/"
                if sweep
                else "give the --out folders of `specc train`",
            ) from None
        rows = []
        for i, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rows.append(dict(json.loads(line)))
                except (ValueError, TypeError):
                    raise plot_error(f"{path}:{i}: not a JSON record") from None
        points = [(int(r.get("epoch", k + 1)), float(r[metric])) for k, r in enumerate(rows) if metric in r]
        if not points:
            have = sorted({k for r in rows for k in r if k not in ("epoch", "time", "stage")})
            if not rows:  # no epoch finished: no --metric can help
                raise plot_error(
                    f"{run}: no epoch has finished yet ({METRICS_FILE} is empty)",
                    f"train it for an epoch or more (specc train SPEC --resume --out {run})",
                )
            raise plot_error(
                f"{run}: no '{metric}' in {METRICS_FILE}", f"it has: {', '.join(have)}; give --metric"
            )
        curves.append(Curve(run_label(Path(run)), tuple(e for e, _ in points), tuple(v for _, v in points)))
    return curves


def draw(curves: list[Curve], metric: str, title: str, log: bool = False) -> Any:
    from .figure import new_figure

    fig = new_figure(6.5, 4.0)
    ax = fig.subplots()
    for c in curves:
        ax.plot(c.epochs, c.values, marker="o", ms=2.5, label=c.label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return fig
