"""Big graphs lower in linear time: build_module traces each distinct layer once (never the whole model), and the
parameters it gives equal those of one build of the whole model, layer after layer from one Rngs."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
from flax import nnx

import specc
from specc.backend.flax import (
    BuildContext,
    build_module,
    choose_lowering,
    compiler_options,
    current_platform,
    layer_keys,
)
from specc.ops._registry import get_op

DEEP = """
block Unit() {
  input x: [N, 16]
  h = x -> dense(16) -> relu -> dropout(0.1)
  y = h + x
  output y
}
model Deep {
  input x: f32[N, 16]
  y = x -> repeat(%d, Unit()) -> dense(10)
  output y
}
"""


class Spy:
    """Counts calls of a function it wraps."""

    def __init__(self, fn: Any):
        self.fn, self.calls = fn, 0

    def __call__(self, *a: Any, **k: Any) -> Any:
        self.calls += 1
        return self.fn(*a, **k)


@pytest.mark.parametrize("copies", [10, 500])
def test_abstract_build_traces_each_distinct_layer_once(copies: int, monkeypatch: pytest.MonkeyPatch) -> None:
    g = specc.load("deep.net", text=DEEP % copies).graph()
    shapes, whole = Spy(jax.eval_shape), Spy(nnx.eval_shape)
    monkeypatch.setattr(jax, "eval_shape", shapes)
    monkeypatch.setattr(nnx, "eval_shape", whole)
    model = build_module(
        g, abstract=True, roll=False
    )  # unrolled: every copy a layer of its own (test_reroll)
    # dense(16), dropout, dense(10): three traces whether the chain holds 10 copies or 500
    assert (shapes.calls, whole.calls) == (3, 0)
    assert len(g.nodes) == 4 * copies + 2
    params = nnx.state(model, nnx.Param)
    assert len(jax.tree.leaves(params)) == 2 * copies + 2
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(params))
    # every copy its own variables: the first and last dense of the chain are two layers, not one shared
    assert "y_Unit_0_h_dense" in model.layers and f"y_Unit_{copies - 1}_h_dense" in model.layers


@pytest.mark.parametrize(
    ("copies", "jits", "together"),
    [
        # 10 nodes: the seed's streams (one program), a jit per distinct layer (the two denses, the dropout: each
        # traced once, inside the next), then one program draws for and initialises them all
        (2, 5, True),
        # 282 nodes, built as a model over TOGETHER_MAX_NODES is: the streams, the 71 kernels' draws (one
        # program), then one small program per distinct layer (the two denses, the dropout), called per layer
        (70, 5, False),
    ],
)
def test_parameters_equal_one_build_of_the_whole_model(
    copies: int, jits: int, together: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc.backend import flax as backend

    g = specc.load("deep.net", text=DEEP % copies).graph()
    if not together:
        monkeypatch.setattr(backend, "TOGETHER_MAX_NODES", len(g.nodes) - 1)
    compiler_options(once=True)  # its once-per-process probe of XLA's options is no layer's program
    jitted = Spy(jax.jit)
    jax_jit = jax.jit
    try:
        jax.jit = jitted  # type: ignore[assignment]
        model = build_module(g, seed=7, roll=False)
    finally:
        jax.jit = jax_jit
    assert jitted.calls == jits

    def whole() -> Any:
        # the former way: one Rngs, every layer built in graph order (`specc train` did it inside one jit, which
        # draws the same values; run eagerly here, as compiling 70 layers' initialisers at once took 15 s)
        ctx, keys, layers = BuildContext(nnx.Rngs(7)), layer_keys(g, False), {}
        for n in g.nodes:
            op = get_op(n.op)
            if op is None or n.op in ("input", "param"):
                continue
            lw = choose_lowering(n, tuple(g.type_of(r) for r in n.inputs), current_platform())
            build = lw.build if lw.build is not None else op.lowerings[0].build
            if build is not None and (layer := build(n.attr, tuple(g.type_of(r) for r in n.inputs), ctx)):
                layers[keys[n.id]] = layer
        return nnx.state(nnx.Dict(layers))

    want = [
        np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
        for x in jax.tree.leaves(whole())
    ]
    got = [
        np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
        for x in jax.tree.leaves(nnx.state(model.layers))
    ]
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_abstract_build_of_distinct_layers_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain whose layers all differ (bench/graph_scale.py's `random`) does not roll, and its abstract build
    traces no random draw: the variables' shapes are all `specc compile` needs (a draw's trace per distinct
    shape was half of such a build's time)."""
    from bench.graph_scale import spec_text
    from specc.backend.reroll import graph_runs

    g = specc.load("random.net", text=spec_text("random", 300)).graph()
    assert len(g.nodes) == 302 and not graph_runs(g)
    from jax._src import random as jax_random  # what jax.nn.initializers draw with

    draws = Spy(jax_random.uniform)
    monkeypatch.setattr(jax_random, "uniform", draws)
    monkeypatch.setattr(jax.random, "uniform", draws)  # what backend/init_draws.py's shared draws call
    model = build_module(g, abstract=True)
    assert draws.calls == 0
    kernels = [
        jax.tree.leaves(v) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param)) if p[-1] == "kernel"
    ]
    assert len(kernels) == 151 and all(isinstance(k, jax.ShapeDtypeStruct) for (k,) in kernels)
    # and a real build of the same graph does draw (glorot_uniform, the default initialiser)
    build_module(specc.load("small.net", text=spec_text("random", 6)).graph(), seed=0)
    assert draws.calls > 0
