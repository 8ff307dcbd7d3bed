"""A model's initial parameters drawn together: the initialisers' calls of many layers as a few vmapped flat draws,
the values each call would have drawn on its own.

XLA compiles every random draw of a program apart, 50-80 ms each on a 2-core CPU whatever its shape (a key's
`fold_in`, then threefry): GoogLeNet's 58 kernels took 8.1 s of XLA and 1.7 s of lowering to initialise. Under
JAX's partitionable threefry (its default) element i of a draw depends only on the key and i, so the first n
elements of a longer flat draw are the n-element draw; and each jax.nn.initializers distribution specc offers is
an elementwise function of such a draw times a factor of the shape. So the keys of all the draws are one vmapped
`fold_in` over the streams' counters, and the draws of one distribution one vmapped flat draw per size bucket (a
power of two; a few small draws go in a larger bucket rather than compile a draw of their own), cut, reshaped and
scaled as jax.nn.initializers scales them (tests/test_init_draws.py checks every initialiser against JAX's own:
bit for bit, but for the last bits of a normal draw's erf_inv, which may round otherwise in another program, as
between XLA's optimisation levels).

How a layer takes part (backend/flax.py's LayerFactory): its build is traced once to `Record` its initialiser
calls — which stream each key came from and its place in that stream, numbered while Flax's `RngStream` hands the
keys out — and later built again with a `Replay` that returns the drawn values in the same order. A call that
cannot be drawn this way (orthogonal, a constant, a key that did not come from a stream of the model's Rngs, a
dtype other than float32, threefry without partitionable counting) is drawn as before, with the key it is given.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

# jax.nn.initializers' variance-scaling family: (scale, mode, distribution), as JAX defines each
VARIANCE_SCALING: dict[str, tuple[float, str, str]] = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
TRUNCATED_STD = 0.87962566103423978  # the standard deviation of a unit normal truncated to (-2, 2), as JAX's
SMALLEST_BUCKET = 256  # the shortest flat draw: smaller tensors share it
# Larger tensors draw at their own size: their draw's run outweighs its compilation, and a bucket's spare elements
# and the cut would only add to it (VGG-16's 103M-element kernel)
LARGEST_BUCKET = 1 << 20
# A bucket is drawn at the next larger one's length when that adds at most this many values: one flat draw fewer
# for XLA to compile (50-80 ms) for at most ~35 ms of threefry at LLVM level 0. Cold build_module, cache off, 2
# cores, 4 runs: lecture convnet 0.51-0.71 → 0.36-0.44 s, LeNet-5 0.55-0.68 → 0.40-0.57 s, the bench's small
# ResNet 0.64-0.79 → 0.42-0.66 s (their few kernels had each drawn in a bucket of its own).
MERGE_SPARE = 1 << 19


@dataclass(frozen=True)
class Draw:
    """One initialiser call drawn with others: jax.random's `base` distribution (with `args`) drawn flat, its first
    prod(shape) elements reshaped, times a factor (`scale`: ("variance", scale, denominator, distribution) as
    jax.nn.initializers.variance_scaling computes it, ("stddev", s), or () for none). Hashable: a program of
    draws is made once per distinct list of them."""

    base: str  # "uniform" | "normal" | "truncated_normal"
    args: tuple[float, ...]
    shape: tuple[int, ...]
    scale: tuple[Any, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def factor(self, dtype: Any) -> Any:
        """The factor as JAX computes it (the same float32 operations, so the same bits), or None."""
        if not self.scale:
            return None
        if self.scale[0] == "stddev":
            return jnp.array(self.scale[1], dtype)
        _, scale, denominator, distribution = self.scale
        variance = jnp.array(scale / denominator, dtype=dtype)
        if distribution == "uniform":
            return jnp.sqrt(3 * variance)
        return jnp.sqrt(variance) / jnp.array(TRUNCATED_STD, dtype)


def plan(name: str, kwargs: dict[str, Any], shape: Sequence[int], dtype: Any) -> Draw | None:
    """How initialiser `name` (a jax.nn.initializers name, or specc's symmetric "uniform") with `kwargs` draws
    `shape` of `dtype` as a flat draw, or None where it cannot (then it draws on its own)."""
    shape = tuple(int(d) for d in shape)
    if jnp.dtype(dtype) != jnp.float32 or not shape or 0 in shape:
        return None
    if name in VARIANCE_SCALING and not kwargs:
        if len(shape) < 2:  # JAX's fans need an input and an output axis: its own call raises
            return None
        scale, mode, distribution = VARIANCE_SCALING[name]
        fan_in, fan_out = _fans(shape)
        denominator = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
        if distribution == "uniform":
            return Draw("uniform", (-1, 1.0), shape, ("variance", scale, denominator, distribution))
        return Draw("truncated_normal", (-2, 2), shape, ("variance", scale, denominator, distribution))
    if name in ("normal", "truncated_normal") and set(kwargs) <= {"stddev"}:
        args: tuple[float, ...] = () if name == "normal" else (-2.0, 2.0)
        return Draw(name, args, shape, ("stddev", kwargs.get("stddev", 1e-2)))
    if name == "uniform" and set(kwargs) <= {"scale"}:  # specc's U(-s, s) (backend/flax.py symmetric_uniform)
        s = kwargs.get("scale", 1e-2)
        return Draw("uniform", (-s, s), shape)
    return None


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """jax.nn.initializers' fans for the default axes (input -2, output -1, the rest a receptive field), computed
    in the same order, so the same floats."""
    in_size, out_size = shape[-2], shape[-1]
    receptive_field_size = math.prod(shape) / in_size / out_size / 1
    return in_size * receptive_field_size, out_size * receptive_field_size


def enabled() -> bool:
    """Whether draws can be shared: partitionable threefry (the prefix of a longer flat draw is the shorter one)."""
    config: Any = jax.config  # its options are not in the stub
    return bool(config.jax_threefry_partitionable) and config.jax_default_prng_impl == "threefry2x32"


# ---- recording a layer's calls and replaying them -------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One initialiser call of a layer's build, in order: a shared `draw` of key number `ordinal` of `stream`, or
    (draw None) a call drawn on its own."""

    shape: tuple[int, ...]
    dtype: Any
    stream: str = ""
    ordinal: int = -1
    draw: Draw | None = None


class Record:
    """A layer build's initialiser calls (`calls`) and how many keys it took from each stream (`keys`); with
    `share` false every call draws on its own.

    `numbered()` is the context the build is traced in: while it is open, each key one of `rngs`' streams hands
    out is numbered in its stream.
    """

    def __init__(self, rngs: nnx.Rngs, share: bool = True):
        self.share = share
        self.streams = {id(stream): name for name, stream in rngs.items() if stream.count[...].shape == ()}
        self.keys: Counter[str] = Counter()
        self.calls: list[Call] = []
        self._numbers: dict[int, tuple[Any, str, int]] = {}

    @contextlib.contextmanager
    def numbered(self) -> Iterator[Record]:
        handing_out = nnx.RngStream.__call__
        record = self

        def numbered_call(stream: nnx.RngStream) -> Any:
            key = handing_out(stream)
            name = record.streams.get(id(stream))
            if name is not None:  # keep the key alive with its number: ids are not reused meanwhile
                record._numbers[id(key)] = (key, name, record.keys[name])
                record.keys[name] += 1
            return key

        nnx.RngStream.__call__ = numbered_call  # type: ignore[method-assign, assignment]
        try:
            yield self
        finally:
            nnx.RngStream.__call__ = handing_out  # type: ignore[method-assign]

    def wrap(self, name: str, kwargs: dict[str, Any], made: Callable[..., Any]) -> Callable[..., Any]:
        def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
            shape = tuple(int(d) for d in shape)
            numbered = self._numbers.get(id(key))
            ours = self.share and numbered is not None and numbered[0] is key
            draw = plan(name, kwargs, shape, dtype) if ours else None
            if draw is None or numbered is None:
                self.calls.append(Call(shape, jnp.dtype(dtype)))
                return made(key, shape, dtype)
            self.calls.append(Call(shape, jnp.dtype(dtype), numbered[1], numbered[2], draw))
            return jnp.zeros(shape, dtype)

        return init


class Replay:
    """Feeds a layer's build the values drawn for its recorded calls, in order; calls drawn on their own draw."""

    def __init__(self, calls: Sequence[Call], values: Sequence[Any]):
        self.calls, self.values = calls, values
        self.at = self.taken = 0

    def wrap(self, name: str, kwargs: dict[str, Any], made: Callable[..., Any]) -> Callable[..., Any]:
        def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
            shape, dtype = tuple(int(d) for d in shape), jnp.dtype(dtype)
            call = self.calls[self.at] if self.at < len(self.calls) else None
            if call is None or (call.shape, call.dtype) != (shape, dtype):
                recorded = [f"{c.dtype}{list(c.shape)}" for c in self.calls]
                raise RuntimeError(
                    f"a layer's build called its initialisers otherwise than when recorded: call {self.at} asks "
                    f"for {dtype}{list(shape)}, recorded {recorded}"
                )
            self.at += 1
            if call.draw is None:
                return made(key, shape, dtype)
            self.taken += 1
            return self.values[self.taken - 1]

        return init

    def done(self) -> None:
        if self.at != len(self.calls) or self.taken != len(self.values):
            made = f"{self.at} of its {len(self.calls)}"
            raise RuntimeError(f"a layer's build made {made} recorded initialiser calls")


# ---- the shared draws --------------------------------------------------------------------------------


def shared_draws(
    rngs: nnx.Rngs, draws: Sequence[tuple[str, int, Draw]], skip: dict[str, Any] | None = None
) -> list[Any]:
    """The values of `draws` — (stream, how many keys that stream hands out before this one, Draw) — drawn from
    `rngs`' streams as they stand, each stream first skipping `skip[stream]` keys (a uint32 scalar; none if not
    given): key = fold_in(stream key, stream count + skip + that many), as the stream would hand it out, vmapped
    over all; then per distribution and size bucket one vmapped flat draw."""
    keys: list[Any] = [None] * len(draws)
    for name in sorted({stream for stream, _, _ in draws}):
        stream = getattr(rngs, name)
        idx = [i for i, d in enumerate(draws) if d[0] == name]
        counts = stream.count[...] + jnp.asarray([draws[i][1] for i in idx], jnp.uint32)
        if skip is not None:
            counts = counts + skip[name]
        made = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(stream.key[...], counts)
        for row, i in enumerate(idx):
            keys[i] = made[row]
    groups = _buckets([d for _, _, d in draws])
    values: list[Any] = [None] * len(draws)
    for (base, args, bucket), idx in groups.items():
        # nothing to share, or the drawing outweighs its compilation: each at its own size
        if len(idx) == 1 or bucket > LARGEST_BUCKET:
            for i in idx:
                draw = draws[i][2]
                values[i] = _scaled(draw, _flat(base, args, keys[i], draw.size))
            continue
        flat = jax.vmap(lambda key, base=base, args=args, n=bucket: _flat(base, args, key, n))(
            jnp.stack([keys[i] for i in idx])
        )
        for row, i in enumerate(idx):
            values[i] = _scaled(draws[i][2], flat[row, : draws[i][2].size])
    return values


def _buckets(draws: Sequence[Draw]) -> dict[tuple[str, tuple[float, ...], int], list[int]]:
    """The draws' indices by (distribution, flat length): each draw in the power-of-two bucket of its size, then,
    per distribution, each bucket merged into the next larger one while the values that adds to the draws stay
    within MERGE_SPARE (one flat draw fewer to compile)."""
    by_dist: dict[tuple[str, tuple[float, ...]], dict[int, list[int]]] = {}
    for i, draw in enumerate(draws):
        bucket = max(SMALLEST_BUCKET, 1 << (draw.size - 1).bit_length())
        by_dist.setdefault((draw.base, draw.args), {}).setdefault(bucket, []).append(i)
    groups: dict[tuple[str, tuple[float, ...], int], list[int]] = {}
    for (base, args), buckets in by_dist.items():
        sizes = sorted(buckets)
        for small, big in itertools.pairwise(sizes):
            if big <= LARGEST_BUCKET and len(buckets[small]) * (big - small) <= MERGE_SPARE:
                buckets[big] = buckets.pop(small) + buckets[big]
        for bucket, idx in buckets.items():
            groups[(base, args, bucket)] = sorted(idx)
    return groups


def _scaled(draw: Draw, flat: Any) -> Any:
    """A flat draw as the initialiser returns it: reshaped, times its factor."""
    v = flat.reshape(draw.shape)
    factor = draw.factor(jnp.float32)
    return v if factor is None else v * factor


def _flat(base: str, args: tuple[float, ...], key: Any, n: int) -> Any:
    """jax.random's `base` draw of n float32 values, called as jax.nn.initializers calls it."""
    if base == "normal":
        return jax.random.normal(key, (n,), jnp.float32)
    low, high = args
    if base == "uniform":
        return jax.random.uniform(key, (n,), jnp.float32, low, high)
    return jax.random.truncated_normal(key, low, high, (n,), jnp.float32)
