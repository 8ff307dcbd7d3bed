"""The train section, checked without JAX (placeholder until the trainer lands)."""

from __future__ import annotations

from typing import Any


def check_train(spec: Any, graph: Any) -> dict[str, Any]:
    return {}
