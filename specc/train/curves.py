"""`curves.png`: loss and metrics per epoch. Drawn at a run's end, in the trainer's process or, for a short run, by
a helper process started with the run (`CurvesDrawer`): there matplotlib's import (≈ 0.9 s, more than the whole
training of the README's digits MLP) happens on the other core while the run compiles and trains, instead of after
its last epoch.

This file is also the helper itself (`python curves.py`, run as a script so that it imports neither specc nor JAX):
it reads {"history": [...], "title": "..."} as JSON on its standard input and writes the PNG's bytes to its standard
output. It imports only the standard library and matplotlib; the trainer writes the file (atomically).
"""

from __future__ import annotations

import importlib
import io
import json
import math
import subprocess
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

MISSING = "matplotlib is not installed; skipping curves.png (pip install 'specc[plot]')"


def _pyplot(import_module: Any = importlib.import_module) -> Any:
    import_module("matplotlib").use("Agg")
    return import_module("matplotlib.pyplot")


def render_curves(
    history: Sequence[Mapping[str, float]], title: str = "", import_module: Any = importlib.import_module
) -> bytes:
    """The PNG's bytes: one panel per training figure (loss, each metric), its validation beside it; raises
    ImportError without matplotlib. `import_module`: how to import it (the trainer's threads import one at a time)."""
    plt = _pyplot(import_module)
    MaxNLocator = import_module("matplotlib.ticker").MaxNLocator

    keys = list(
        dict.fromkeys(
            k
            for h in history
            for k in h
            if k not in ("epoch", "time", "stage") and not k.startswith(("val_", "lr"))
        )
    )
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, k in zip(axes[0], keys, strict=True):
        # markers: a one-epoch run is a point, not an empty plot
        ax.plot(epochs, [h.get(k, math.nan) for h in history], marker="o", markersize=3, label=k)
        if any(f"val_{k}" in h for h in history):
            ax.plot(
                epochs,
                [h.get(f"val_{k}", math.nan) for h in history],
                marker="o",
                markersize=3,
                label=f"val_{k}",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(k)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


class CurvesDrawer:
    """The helper process (this file as a script), started now: it imports matplotlib at once and then waits for
    the history. It runs in a session of its own, so a Ctrl-C meant for the trainer does not reach it, and ends
    when its input closes, whatever becomes of the trainer. `render` returns the PNG's bytes, or None where the
    helper failed (the caller draws in its own process instead)."""

    def __init__(self) -> None:
        proc = subprocess.Popen(
            # -I: neither this folder (whose io.py, data.py… would shadow modules) nor PYTHON* variables
            [sys.executable, "-I", __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._proc: subprocess.Popen[bytes] | None = proc
        # a drawer dropped unused (the run raised) stops its helper when collected, or at the interpreter's exit
        weakref.finalize(self, _stop, proc)

    def render(
        self, history: Sequence[Mapping[str, float]], title: str, timeout: float = 120.0
    ) -> bytes | None:
        """The PNG's bytes; None where the helper failed or found no matplotlib (which the trainer's own
        environment may still have: PYTHONPATH)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        try:
            out, _ = proc.communicate(
                json.dumps({"history": list(history), "title": title}).encode(), timeout
            )
        except (OSError, subprocess.SubprocessError):
            _stop(proc)
            return None
        return out if proc.returncode == 0 and out.startswith(b"\x89PNG") else None

    def close(self) -> None:
        """Stop the helper if it was not used (a run that failed or was interrupted)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def _serve() -> int:
    try:
        _pyplot()
    except ImportError:
        sys.stdin.buffer.read()
        return 1
    request = sys.stdin.buffer.read()
    if not request:  # the trainer ended without a history: nothing to draw
        return 0
    asked = json.loads(request)
    sys.stdout.buffer.write(render_curves(asked["history"], asked["title"]))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
