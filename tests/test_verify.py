"""The IR verifier: every spec's graph is well formed, and corrupted graphs are caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import specc
from specc.ir.dims import Dim
from specc.ir.graph import Ref
from specc.passes.verify import verify

SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.net"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_graph_verifies(path: Path) -> None:
    spec = specc.load(path)
    for model in spec.program.models:
        assert verify(spec.graph(model)) == []


def _mlp() -> specc.Graph:
    return specc.load(SPECS[0].parent / "mlp.net").graph()


def test_a_wrong_recorded_type_is_caught() -> None:
    g = _mlp()
    n = g.nodes[2]
    bad = dataclasses.replace(n, outputs=(n.type.with_dims((Dim.sym("N"), Dim.const(99))),))
    g2 = dataclasses.replace(g, nodes=(*g.nodes[:2], bad, *g.nodes[3:]))
    assert any("recorded type" in p for p in verify(g2))


def test_a_forward_reference_is_caught() -> None:
    g = _mlp()
    n = g.nodes[2]
    bad = dataclasses.replace(n, inputs=(Ref(4),))
    g2 = dataclasses.replace(g, nodes=(*g.nodes[:2], bad, *g.nodes[3:]))
    assert any("not defined before it" in p for p in verify(g2))


def test_a_duplicate_name_and_wrong_params_are_caught() -> None:
    g = _mlp()
    a, b = g.nodes[2], g.nodes[3]
    g2 = dataclasses.replace(g, nodes=(*g.nodes[:3], dataclasses.replace(b, name=a.name), *g.nodes[4:]))
    assert any("defined twice" in p for p in verify(g2))
    g3 = dataclasses.replace(
        g, nodes=(*g.nodes[:2], dataclasses.replace(a, params=(("kernel", (1, 1)),)), *g.nodes[3:])
    )
    assert any("recorded params" in p for p in verify(g3))
