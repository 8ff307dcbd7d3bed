"""specc's random draws in compiled programs (backend/draws.py) are JAX's own, bit for bit: drawn flat and reshaped
only because XLA:CPU compiles a small multi-dimensional draw slowly — no seed's results change."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import specc
from specc.backend import draws
from specc.backend.flax import build_module, compiler_options

# the shapes the draws take in practice (a conv kernel's, logits', a transformer's, per example) and a scalar
SHAPES = [(3, 3, 4, 10), (128, 10), (2, 5, 16), (4, 1, 1, 1), ()]


def _pairs(shapes: list[tuple[int, ...]]) -> list[tuple[Any, Any]]:
    """(JAX's draw, specc's) of each kind and shape, as functions of a key."""
    out: list[tuple[Any, Any]] = []
    for shape in shapes:
        out += [
            (lambda k, s=shape: jax.random.normal(k, s), lambda k, s=shape: draws.normal(k, s)),
            (
                lambda k, s=shape: jax.random.normal(k, s, jnp.bfloat16),
                lambda k, s=shape: draws.normal(k, s, jnp.bfloat16),
            ),
            (
                lambda k, s=shape: jax.random.uniform(k, s, jnp.float32, -2.0, 3.0),
                lambda k, s=shape: draws.uniform(k, s, jnp.float32, -2.0, 3.0),
            ),
            (
                lambda k, s=shape: jax.random.bernoulli(k, 0.7, s),
                lambda k, s=shape: draws.bernoulli(k, 0.7, s),
            ),
        ]
    return out


def _same(pairs: list[tuple[Any, Any]], key: Any, options: dict[str, Any] | None) -> None:
    """Both draws of every pair in one jitted program, compiled with these XLA options: equal, bit for bit."""
    program = jax.jit(lambda k: ([f(k) for f, _ in pairs], [g(k) for _, g in pairs]))
    theirs, ours = program.lower(key).compile(compiler_options=options)(key)
    for want, got in zip(theirs, ours, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_each_draw_is_jaxs_own_bit_for_bit_in_a_train_steps_program() -> None:
    """JAX's defaults, XLA's full optimisation, as a train step is compiled (small shapes: JAX's own draws of
    these compile slowly, which is the point of drawing flat)."""
    _same(_pairs([(3, 5), (2, 1, 3, 1)]), jax.random.key(7), None)


def test_each_draw_is_jaxs_own_bit_for_bit_under_threefrys_other_counting() -> None:
    """Every kind and shape under jax_threefry_partitionable=False (JAX's default before 0.5), compiled as an
    initialiser is, without LLVM's optimisations (quick)."""
    with jax.threefry_partitionable(False):
        _same(_pairs(SHAPES), jax.random.key(7), compiler_options(once=True))


def _bits(state: Any) -> list[np.ndarray]:
    """A state's variables as arrays, keys as their data."""
    return [
        np.asarray(jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v)
        for v in jax.tree.leaves(state)
    ]


def test_dropout_masks_and_streams_are_flaxs_own() -> None:
    """Per element, per channel and per example, two calls each: the same outputs and the streams moved on
    alike; in evaluation the input itself."""
    x = jnp.arange(6 * 4 * 3, dtype=jnp.float32).reshape(6, 4, 3) + 1
    pairs = [
        (kind(0.3, broadcast_dims=dims, rngs=nnx.Rngs(dropout=3)) for kind in (nnx.Dropout, draws.Dropout))
        for dims in [(), (1,), (1, 2)]
    ]
    layers = [layer for pair in pairs for layer in pair]
    gd, state = nnx.split(layers)

    def twice(state: Any) -> tuple[list[Any], Any]:
        ms = nnx.merge(gd, state)
        return [y for m in ms for y in (m(x), m(x))], nnx.state(ms)

    ys, after = jax.jit(twice).lower(state).compile(compiler_options(once=True))(state)
    for want, got in zip(ys[0::4] + ys[1::4], ys[2::4] + ys[3::4], strict=True):  # nnx.Dropout's, ours
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert 0 < int((np.asarray(got) == 0).sum()) < x.size  # a mask: neither all kept nor all dropped
    theirs, ours = nnx.merge(gd, after)[0::2], nnx.merge(gd, after)[1::2]
    for want, got in zip(_bits(nnx.state(theirs)), _bits(nnx.state(ours)), strict=True):
        np.testing.assert_array_equal(got, want)
    ours[0].eval()
    np.testing.assert_array_equal(np.asarray(ours[0](x)), np.asarray(x))


def test_a_models_dropout_and_sample_normal_draw_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's train-mode outputs, twice (the streams advancing), against the same model drawing with
    nnx.Dropout's own call and jax.random.normal."""
    spec = specc.load(
        "t.net",
        text="""
model M {
  input x: f32[N, 3, 4]
  h = x -> dropout(0.4, per=channel) -> dropout(0.2) -> flatten
  mu = h -> dense(10)
  logvar = h -> dense(10)
  z = sample_normal(mu, logvar)
  output z, h
}
""",
    )
    x = jnp.ones((2, 3, 4))

    def outputs() -> list[np.ndarray]:
        model = build_module(spec.graph(), seed=1)
        model.train()
        graphdef, state = nnx.split(model)

        def twice(state: Any) -> list[Any]:
            m = nnx.merge(graphdef, state)
            return [m(x=x), m(x=x)]

        # without LLVM's optimisations (quick; the draws' bits at full optimisation: the first test above)
        calls = jax.jit(twice).lower(state).compile(compiler_options(once=True))(state)
        return [np.asarray(v) for v in jax.tree.leaves(calls)]

    ours = outputs()
    monkeypatch.setattr(draws.Dropout, "__call__", nnx.Dropout.__call__)
    monkeypatch.setattr(draws, "normal", jax.random.normal)
    theirs = outputs()
    for want, got in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(ours[0], ours[2])  # a new draw in each call
