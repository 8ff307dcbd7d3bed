"""The examples keep working: a spec used as a plain Flax module in a hand-written loop actually learns."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_spec_as_flax_module_in_a_hand_written_loop_learns() -> None:
    spec = importlib.util.spec_from_file_location("use_in_flax", ROOT / "examples" / "use_in_flax.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(epochs=3) >= 0.9
