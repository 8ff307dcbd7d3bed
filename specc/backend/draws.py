"""Random draws inside specc's compiled programs (dropout's masks, sample_normal's noise, a trainer's drawn
inputs), made as one flat vector and reshaped: the same values, compiled in a fraction of the time.

XLA:CPU compiles a threefry draw of a small multi-dimensional shape slowly at its full optimisation, under JAX's
default `jax_threefry_partitionable` (inside jit: `normal(key, (2, 7, 7, 6))` 3.7 s, `(128, 10)` 2.5 s, a
transformer's `(2, 5, 16)` 1.3 s; the same draws flat and reshaped 0.4-0.5 s each). The draw counts its elements
in row-major order either way, so the reshaped flat draw holds the same bits (tests/test_draws.py checks each kind
of draw against JAX's own, under either threefry counting).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax


def normal(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
    """jax.random.normal(key, shape, dtype), drawn flat."""
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(
    key: Any, shape: Sequence[int], dtype: Any = jnp.float32, minval: Any = 0.0, maxval: Any = 1.0
) -> Any:
    """jax.random.uniform(key, shape, dtype, minval, maxval), drawn flat (minval and maxval scalars)."""
    return jax.random.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)


def bernoulli(key: Any, p: Any, shape: Sequence[int]) -> Any:
    """jax.random.bernoulli(key, p, shape), drawn flat (p a scalar)."""
    return jax.random.bernoulli(key, p, (math.prod(shape),)).reshape(shape)


class Dropout(nnx.Dropout):
    """nnx.Dropout whose mask is drawn flat: the same variables, the same masks, Flax's own call for everything
    but the plain training call (`deterministic` or `rngs` passed in, a rate of 0 or 1, no streams)."""

    def __call__(self, inputs: Any, *, deterministic: bool | None = None, rngs: Any = None) -> Any:
        stream = self.rngs
        if (
            deterministic is not None
            or rngs is not None
            or self.deterministic is not False
            or self.rate in (0.0, 1.0)
            or stream is None
        ):
            # only the arguments given: jax2onnx converts nnx.Dropout by patching its __call__ with one that takes
            # no `rngs`, so passing rngs=None made every model with a dropout fail `specc export --to onnx`
            given: dict[str, Any] = {
                k: v for k, v in (("deterministic", deterministic), ("rngs", rngs)) if v is not None
            }
            return super().__call__(inputs, **given)
        key = stream[self.rng_collection]() if isinstance(stream, nnx.Rngs) else stream()
        keep = 1.0 - self.rate
        shape = list(inputs.shape)
        for axis in self.broadcast_dims:  # one draw shared along these axes
            shape[axis] = 1
        mask = jnp.broadcast_to(bernoulli(key, keep, shape), inputs.shape)
        return lax.select(mask, inputs / keep, jnp.zeros_like(inputs))
