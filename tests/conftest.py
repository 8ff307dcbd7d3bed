"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import specc
from specc.errors import SpecError
from specc.ir.printer import format_graph

IrDumps = Callable[..., "dict[str, str] | list[str]"]


def _ir_dumps(path: Path, text: str | None = None) -> dict[str, str] | list[str]:
    """The IR dump of every model of a spec, or its error messages when it does not check."""
    try:
        spec = specc.load(path, text=text)
        return {name: format_graph(spec.graph(name)) for name in spec.program.models}
    except SpecError as e:
        return [f"{d.kind}: {d.message}" for d in e.diagnostics]


@pytest.fixture
def ir_dumps() -> IrDumps:
    return _ir_dumps
