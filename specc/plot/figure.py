"""Where a figure goes and how it is written: the format from the output's suffix, never over a user's file
unless asked; matplotlib (imported only here, on first use) draws off-screen with the Agg canvas."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..train.io import write_output

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


class OutputError(Exception):
    """The output path cannot be used (a usage error: exit 2)."""


def output_path(output: Path | None, default: Path, force: bool) -> Path:
    """The file to write: `output` (its suffix picks the format) or `default`; refuses an existing file unless
    `force`."""
    path = Path(output) if output is not None else default
    if path.suffix.lower() not in FORMATS:
        raise OutputError(f"{path}: the output must end in {', '.join(FORMATS)} (the format)")
    if path.exists() and not force:
        raise OutputError(f"{path} exists; give --force to replace it, or another -o")
    if path.is_dir():
        raise OutputError(f"{path} is a folder")
    return path


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, no display)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError.one(
            "environment error", "specc plot needs matplotlib", None, "pip install 'specc[plot]'"
        ) from None
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Write `fig` to `path` atomically, in the format its suffix names."""
    buf = io.BytesIO()
    fig.savefig(buf, format=FORMATS[path.suffix.lower()], dpi=dpi)
    write_output(path, buf.getvalue())
    return path
