"""A model's initial parameters drawn together (backend/init_draws.py) are the values each initialiser call draws on
its own: the same keys from the same streams, the same distributions, bit for bit (a normal draw's erf_inv may
round its last bit otherwise in another program, as between XLA's optimisation levels: within 2 ulp of the
tensor's largest value)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import specc
from specc.backend import init_draws
from specc.backend.flax import INITIALIZERS, build_module, compiler_options, init_call, initializer
from specc.ir.graph import Fn

# a dense kernel, a conv's, attention's [F, heads, width], one smaller than the smallest bucket, one just over a
# power of two, one over the largest bucket (drawn at its own size), a 1-D shape (JAX's variance scaling refuses
# it: drawn on its own); distributions share buckets across initialisers and shapes, and some draw alone
SHAPES = [(300, 200), (3, 3, 16, 32), (64, 4, 16), (3, 2), (33, 32), (1025, 1024), (7,)]
DRAWN = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"]
WITH_ARGS = [("normal", {"stddev": 0.5}), ("truncated_normal", {"stddev": 0.2}), ("uniform", {"scale": 0.1})]


def _cases() -> list[tuple[str, dict[str, Any], tuple[int, ...]]]:
    """Each initialiser with three of the shapes, in turn: every shape meets several initialisers."""
    inits = [(n, {}) for n in DRAWN] + WITH_ARGS
    return [(n, kw, SHAPES[(i + j) % len(SHAPES)]) for i, (n, kw) in enumerate(inits) for j in range(3)]


def _same(got: Any, want: Any, normal: bool) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    # erf_inv's last bit: within 2 ulp of the tensor's largest value (near 0 an ulp is far smaller)
    if normal:
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * np.spacing(np.abs(want).max()))
    else:
        np.testing.assert_array_equal(got, want)


def _reference(name: str, kwargs: dict[str, Any]) -> Any:
    """The initialiser a spec gets for `name(**kwargs)` (backend/flax.py `initializer`): JAX's own, specc's
    symmetric `uniform`."""
    return initializer(Fn(name, tuple(kwargs.values())))


def test_every_shared_draw_is_the_initialisers_own() -> None:
    """shared_draws against each initialiser's own call, jitted alike, with the key the stream would hand out:
    fold_in(stream key, count + place); the stream starts mid-way, and drawing does not advance it."""
    rngs = nnx.Rngs(11)
    for _ in range(5):
        rngs.params()
    draws, wanted = [], []
    for place, (name, kwargs, shape) in enumerate(_cases()):
        draw = init_draws.plan(name, kwargs, shape, jnp.float32)
        if len(shape) < 2 and name in DRAWN:
            assert draw is None  # JAX's fans need two axes: its own call says so
            continue
        assert draw is not None, (name, shape)
        draws.append(("default", 3 * place, draw))
        wanted.append((_reference(name, kwargs), 5 + 3 * place, shape, "normal" in name))
    graphdef, state = nnx.split(rngs)
    got = _once(lambda state: init_draws.shared_draws(nnx.merge(graphdef, state), draws), state)

    def each_on_its_own(key: Any) -> list[Any]:
        return [init(jax.random.fold_in(key, count), shape, jnp.float32) for init, count, shape, _ in wanted]

    own = _once(each_on_its_own, rngs.default.key[...])
    for value, mine, (_, _, _, normal) in zip(got, own, wanted, strict=True):
        _same(value, mine, normal)
    assert int(rngs.default.count[...]) == 5


def _once(f: Any, *args: Any) -> Any:
    """f(*args) compiled as specc compiles its initialisers (XLA's quick options on the CPU)."""
    return jax.jit(f).lower(*args).compile(compiler_options=compiler_options(once=True))(*args)


def test_what_is_not_drawn_together() -> None:
    assert init_draws.plan("glorot_uniform", {}, (4, 4), jnp.bfloat16) is None  # float32 only
    assert init_draws.plan("orthogonal", {}, (4, 4), jnp.float32) is None
    assert init_draws.plan("constant", {"value": 0.3}, (4, 4), jnp.float32) is None
    assert init_draws.plan("normal", {"stddev": 1.0, "mean": 2.0}, (4, 4), jnp.float32) is None


MODEL = """
model Inits {
  input x: f32[N, 8, 8, 3]
  input t: i32[N, 6]
  a = x -> conv(16, 3, padding=same, init=he_normal) -> conv(16, 3, init=lecun_uniform) -> flatten
  b = a -> dense(32, init=normal(0.5)) -> dense(32, init=truncated_normal(0.2)) -> dense(10, init=uniform(0.1))
  c = a -> dense(10, init=orthogonal, bias_init=constant(0.3))
  e = t -> embed(50, 16) -> lstm(24) -> attention(4) -> mean(axis=1) -> dense(10)
  f = t -> embed(50, 16, init=glorot_normal) -> mean(axis=1) -> dense(10, init=he_uniform)
  y = b + c + e + f
  output y
}
"""


@pytest.mark.parametrize("together", [True, False], ids=["one program", "layer by layer"])
def test_a_model_built_with_shared_draws_has_the_parameters_it_had(
    together: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every initialiser a spec can name, some drawn together and some on their own (orthogonal, a constant, Flax's
    own embedding and recurrent initialisers), against the same build with nothing shared; the streams end at the
    same count either way."""
    from specc.backend import flax as backend

    g = specc.load("inits.net", text=MODEL).graph()
    if not together:
        monkeypatch.setattr(backend, "TOGETHER_MAX_NODES", 0)
    shared_rngs = nnx.Rngs(5)
    shared = nnx.state(build_module(g, rngs=shared_rngs), nnx.Param)
    monkeypatch.setattr(init_draws, "enabled", lambda: False)
    own_rngs = nnx.Rngs(5)
    own = nnx.state(build_module(g, rngs=own_rngs), nnx.Param)
    flat_shared, flat_own = dict(nnx.to_flat_state(shared)), dict(nnx.to_flat_state(own))
    assert flat_shared.keys() == flat_own.keys() and len(flat_shared) > 20
    for path, v in flat_own.items():
        _same(flat_shared[path].get_value(), v.get_value(), normal=True)
    assert int(shared_rngs.default.count[...]) == int(own_rngs.default.count[...]) > 10


def test_small_buckets_are_drawn_in_a_larger_one() -> None:
    """The lecture convnet's kernels (800, 51,200, 51,200, 2,000 values) draw as one bucket of 65,536; a bucket
    whose move would add more than MERGE_SPARE values, or past LARGEST_BUCKET, and another distribution stay apart."""

    def draws(*sizes: int, name: str = "he_uniform") -> list[init_draws.Draw]:
        made = [init_draws.plan(name, {}, (n // 8, 8), jnp.float32) for n in sizes]
        assert all(d is not None for d in made)
        return made  # type: ignore[return-value]

    assert list(init_draws._buckets(draws(800, 51200, 51200, 2000)).values()) == [[0, 1, 2, 3]]
    apart = init_draws._buckets(draws(*[2048] * 9, 1 << 18))  # 9 × (2^18 - 2^11) > MERGE_SPARE
    assert sorted(len(v) for v in apart.values()) == [1, 9]
    huge = init_draws.LARGEST_BUCKET * 2
    assert len(init_draws._buckets(draws(800, huge))) == 2
    mixed = draws(800) + draws(51200, name="he_normal")
    assert len(init_draws._buckets(mixed)) == 2


def test_a_replay_that_strays_from_its_record_is_an_error() -> None:
    call = init_draws.Call((3, 4), jnp.dtype(jnp.float32))
    replay = init_draws.Replay([call], [])
    init = replay.wrap("zeros", {}, jax.nn.initializers.zeros)
    with pytest.raises(RuntimeError, match="otherwise than when recorded"):
        init(jax.random.key(0), (4, 3), jnp.float32)
    init = init_draws.Replay([call], []).wrap("zeros", {}, jax.nn.initializers.zeros)
    with pytest.raises(RuntimeError, match=r"asks for bfloat16\[3, 4\], recorded \['float32\[3, 4\]'\]"):
        init(jax.random.key(0), (3, 4), jnp.bfloat16)
    with pytest.raises(RuntimeError, match="made 0 of its 1"):
        init_draws.Replay([call], []).done()


def test_init_call_names_match_the_plans() -> None:
    """Each spec initialiser the plans know resolves to the jax.nn.initializers name they were written for."""
    for spec, (name, _, _) in INITIALIZERS.items():
        if name in init_draws.VARIANCE_SCALING:
            assert init_call(spec)[0] == name
