"""Optimizers, schedules and losses of the train section against Optax and the lecture formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import specc
from specc.errors import Diagnostics
from specc.frontend.parse import parse_expr
from specc.train import losses as L
from specc.train.metrics import metric_value
from specc.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from specc.train.spec import CallSpec, _Checker


def bind(text: str, table: dict) -> CallSpec:
    diags = Diagnostics()
    c = _Checker({}, ["logits", "y"], diags).call_of(parse_expr(text), "x", table, None)
    assert not diags, diags.items
    assert c is not None
    return c


SCHED = {k: v.sig for k, v in SCHEDULES.items()}
OPT = {k: v.sig for k, v in OPTIMIZERS.items()}


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("inverse_time(0.1, 0.5)", lambda t: 0.1 / (1 + 0.5 * t)),
        ("exponential(0.1, 0.2)", lambda t: 0.1 * math.exp(-0.2 * t)),
        ("step(0.1, 0.5, 3)", lambda t: 0.1 * 0.5 ** (t // 3)),
        ("constant(0.05)", lambda t: 0.05),
        (
            "cosine(1.0, 10, warmup=2)",
            lambda t: t / 2 if t < 2 else 0.5 * (1 + math.cos(math.pi * min(t - 2, 8) / 8)),
        ),
        ("piecewise([2, 5], [0.1, 0.01, 0.001])", lambda t: 0.1 if t < 2 else 0.01 if t < 5 else 0.001),
        ("inverse_time(0.1, 0.5, power=1)", lambda t: 0.1 / (1 + 0.5 * t)),
        ("inverse_time(0.01, 0.0001, power=0.75)", lambda t: 0.01 * (1 + 0.0001 * t) ** -0.75),
        ("inverse_time(0.2, 0.3, 2)", lambda t: 0.2 * (1 + 0.3 * t) ** -2),
        ("poly(0.1, 2, 10)", lambda t: 0.1 * max(1 - t / 10, 0) ** 2),
        ("poly(0.05, 0.5, 9)", lambda t: 0.05 * max(1 - t / 9, 0) ** 0.5),
        ("sigmoid(0.1, -0.5, 6)", lambda t: 0.1 / (1 + math.exp(0.5 * (t - 6)))),
        ("sigmoid(0.1, 2, 3)", lambda t: 0.1 / (1 + math.exp(-2 * (t - 3)))),
    ],
)
def test_schedules_follow_their_formulas_per_epoch_and_per_step(text: str, formula) -> None:
    spe = 7
    per_epoch = make_schedule(bind(text, SCHED), spe)
    per_step = make_schedule(bind(text[:-1] + ", per=step)", SCHED), spe)
    for t in (0, 1, 2, 3, 4, 6, 9, 12):
        # per epoch: constant within the epoch, t = the epoch index
        for count in (t * spe, t * spe + spe - 1):
            assert float(per_epoch(count)) == pytest.approx(formula(t), rel=1e-5, abs=1e-7)
        assert float(per_step(t)) == pytest.approx(formula(t), rel=1e-5, abs=1e-7)


def _run(tx: optax.GradientTransformation, params, grads_seq):
    state = tx.init(params)
    for g in grads_seq:
        upd, state = tx.update(g, state, params)
        params = optax.apply_updates(params, upd)
    return params


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("sgd(lr=0.1)", optax.sgd(0.1)),
        ("sgd(lr=0.1, momentum=0.9, nesterov=true)", optax.sgd(0.1, 0.9, True)),
        ("adagrad(lr=0.05)", optax.adagrad(0.05)),
        ("adadelta(lr=1.0, rho=0.95)", optax.adadelta(1.0, 0.95)),
        ("rmsprop(lr=0.01, momentum=0.5)", optax.rmsprop(0.01, momentum=0.5)),
        ("adam(lr=0.01, b2=0.99)", optax.adam(0.01, b2=0.99)),
        ("adamw(lr=0.01, weight_decay=0.1)", optax.adamw(0.01, weight_decay=0.1)),
        ("nadam(lr=0.01)", optax.nadam(0.01)),
        ("lamb(lr=0.01, weight_decay=0.01)", optax.lamb(0.01, weight_decay=0.01)),
        ("lion(lr=0.001)", optax.lion(0.001)),
        (
            "sgd(lr=0.1, clip=0.5, weight_decay=0.01)",
            optax.chain(optax.clip_by_global_norm(0.5), optax.add_decayed_weights(0.01), optax.sgd(0.1)),
        ),
        ("adam(lr=step(0.1, 0.5, 1, per=step))", optax.adam(lambda c: 0.1 * 0.5 ** jnp.floor(c / 1.0))),
    ],
)
def test_optimizer_updates_equal_optax(text: str, reference) -> None:
    key = jax.random.key(0)
    params = {"w": jax.random.normal(key, (4, 3)), "b": jnp.arange(3.0)}
    grads = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)) * 3, params) for i in range(4)]
    ours = _run(make_optimizer(bind(text, OPT), steps_per_epoch=5), params, grads)
    ref = _run(reference, params, grads)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_every_optimizer_of_the_language_is_there() -> None:
    assert set(OPTIMIZERS) >= {
        "sgd",
        "adagrad",
        "adadelta",
        "rmsprop",
        "adam",
        "adamw",
        "nadam",
        "lamb",
        "lion",
    }
    assert set(SCHEDULES) >= {"constant", "inverse_time", "exponential", "step", "cosine", "piecewise"}


def test_losses_match_optax_and_formulas() -> None:
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 5, size=6), jnp.int32)

    @jax.jit  # one program: run eagerly, each operation was compiled on its own (4 s)
    def pairs(z: jax.Array, y: jax.Array) -> dict[str, tuple[jax.Array, jax.Array]]:
        onehot = jax.nn.one_hot(y, 5)
        t = (z > 0).astype(jnp.float32)
        mu, lv = z[:, :2], z[:, 2:4]
        p = jax.nn.softmax(z[::-1] * 0.3)
        return {
            "cross_entropy": (L.cross_entropy(z, y), optax.softmax_cross_entropy_with_integer_labels(z, y)),
            "cross_entropy of one-hot": (L.cross_entropy(z, onehot), L.cross_entropy(z, y)),
            "binary_cross_entropy": (L.binary_cross_entropy(z, t), optax.sigmoid_binary_cross_entropy(z, t)),
            "huber": (L.huber(z, t, 0.5), optax.huber_loss(z, t, delta=0.5)),
            "mse": (L.mse(z, t), (z - t) ** 2),
            "mae": (L.mae(z, t), jnp.abs(z - t)),
            "hinge": (L.hinge(z, y), jnp.zeros(6)),  # against the formula below
            "kl_normal": (L.kl_normal(mu, lv), -0.5 * (1 + lv - mu**2 - jnp.exp(lv))),
            "kl_div": (L.kl_div(z, p), optax.kl_divergence(jax.nn.log_softmax(z), p)),
            "nll": (L.nll(jax.nn.log_softmax(z), y), L.cross_entropy(z, y)),
        }

    got = pairs(z, y)
    # multiclass hinge: sum over j != y of max(0, 1 + z_j - z_y)
    zs, ys = np.asarray(z), np.asarray(y)
    hinge = [
        sum(max(0.0, 1 + float(zs[i, j] - zs[i, ys[i]])) for j in range(5) if j != ys[i]) for i in range(6)
    ]
    tolerances = {"binary_cross_entropy": 1e-5, "hinge": 1e-5, "kl_div": 1e-5, "mse": 1e-7, "mae": 1e-7}
    for name, (ours, theirs) in got.items():
        want = hinge if name == "hinge" else theirs
        atol = 1e-6 if name == "kl_div" else 0
        np.testing.assert_allclose(ours, want, rtol=tolerances.get(name, 1e-6), atol=atol, err_msg=name)
    params = {"k": jnp.ones((2, 3)), "b": jnp.ones((3,))}
    assert float(L.l2(params, 0.5)) == pytest.approx(3.0)
    assert float(L.l1(params, 0.5, all=True)) == pytest.approx(4.5)


def test_reduction_and_padding_weights() -> None:
    e = jnp.arange(12.0).reshape(4, 3)
    assert float(L.reduce(e, "mean")) == pytest.approx(5.5)
    assert float(L.reduce(e, "sum")) == pytest.approx(66.0)
    w = jnp.array([1.0, 1.0, 0.0, 0.0])  # the last two rows are padding
    assert float(L.reduce(e, "mean", w)) == pytest.approx(2.5)
    assert float(L.reduce(e, "sum", w)) == pytest.approx(15.0)
    acc = metric_value(
        CallSpec("accuracy", (("logits", "z"), ("labels", "y"))),
        {"z": jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), "y": jnp.array([0, 0, 1])},
        jnp.array([1.0, 1.0, 0.0]),
    )
    assert float(acc) == pytest.approx(0.5)


def test_weighted_loss_expression() -> None:
    spec = specc.load(
        "t.net",
        text="""
model M {
  input x: f32[N, 4]
  input y: i32[N]
  a = x -> dense(3)
  b = x -> dense(3)
  output a, b
}
train {
  data = blobs(classes=3, dim=4)
  loss = cross_entropy(a, y) + 0.3 * cross_entropy(b, y) - mse(a, b) / 2 + l2(1e-4)
}
""",
    )
    from specc.train.spec import build_config

    cfg = build_config(spec, spec.graph())
    terms = cfg.objectives[0].terms
    assert [(c, t.name) for c, t in terms] == [
        (1.0, "cross_entropy"),
        (0.3, "cross_entropy"),
        (-0.5, "mse"),
        (1.0, "l2"),
    ]


def test_inverse_time_power_one_is_the_plain_quotient_bitwise() -> None:
    t = jnp.arange(0, 50, dtype=jnp.float32)
    old = 0.1 / (1.0 + 0.37 * t)
    new = SCHEDULES["inverse_time"].fn(t, 0.1, 0.37, 1.0)
    assert np.array_equal(np.asarray(old), np.asarray(new))
    assert SCHEDULES["inverse_time"].sig.usage() == "inverse_time(lr0, rate, power=1.0, per=epoch)"


def test_poly_reaches_zero_and_stays_there() -> None:
    f = make_schedule(bind("poly(0.1, 1.5, 4, per=step)", SCHED), 3)
    assert [float(f(c)) for c in (4, 5, 100)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("poly(0.1, 2, 0)", "poly: steps must be at least 1"),
        ("poly(0.1, -1, 10)", "poly: power must be at least 0"),
        ("step(0.1, 0.5, 0)", "step: every must be at least 1"),
        ("poly(0.1, 2, 10)", None),
        ("cosine(0.1, 0)", "cosine: steps must be at least 1"),
        ("cosine(0.1, 10, warmup=20)", "cosine: warmup must be 0 to steps (10), got 20"),
        ("cosine(0.1, 10, warmup=-1)", "cosine: warmup must be 0 to steps (10), got -1"),
        ("cosine(0.1, 10, warmup=10)", None),
        ("sigmoid(0.1, -1, 5)", None),
        ("inverse_time(0.1, -1)", "inverse_time: rate must be at least 0, got -1 (1 + rate·t is 0 at t = 1)"),
        ("inverse_time(0.1, 0)", None),
        ("piecewise([2, 1], [0.1, 0.2, 0.3])", "piecewise: boundaries must increase, got [2, 1]"),
        ("piecewise([1, 1], [0.1, 0.2, 0.3])", "piecewise: boundaries must increase, got [1, 1]"),
        ("piecewise([1, 2], [0.1, 0.2, 0.3])", None),
    ],
)
def test_schedule_value_checks(text: str, problem: str | None) -> None:
    from specc.train.optim import check_schedule_args

    assert check_schedule_args(bind(text, SCHED)) == problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("poly(0.1, 2)", "poly needs argument 'steps'"),
        ("sigmoid(0.1, -1, 5, stepz=3)", "sigmoid has no argument 'stepz'"),
        ("inverse_time(0.1, 0.5, powr=2)", "inverse_time has no argument 'powr'"),
    ],
)
def test_new_schedules_have_checked_signatures(text: str, message: str) -> None:
    diags = Diagnostics()
    c = _Checker({}, [], diags).call_of(parse_expr(text), "schedule", SCHED, None)
    assert c is None
    assert any(message in d.message for d in diags.items), [d.message for d in diags.items]


def test_optimizers_take_clip_and_a_foreign_weight_decay_by_name_only() -> None:
    """`clip`, `weight_decay` and `clip_weights`, which every optimizer takes, followed each optimizer's own
    arguments by position: `lion(1e-4, 0.9, 0.99, 1e-3)`, lion's documented order with its weight decay last, set
    clip=1e-3 (the gradient's norm clipped to 1e-3) and kept the default decay; `adam(1e-3, 0.9, 0.999, 1e-8,
    1e-2)` (PyTorch's Adam order) clipped too. Now an optimizer's own decoupled decay is its last positional
    argument, and the common ones are given by name: a value in their place is an error at that value."""
    lion = bind("lion(1e-4, 0.9, 0.99, 0.05)", OPT).kw
    assert (lion["weight_decay"], lion["clip"]) == (0.05, None)
    adamw = bind("adamw(1e-3, 0.9, 0.999, 1e-8, 0.01)", OPT).kw
    assert (adamw["weight_decay"], adamw["clip"]) == (0.01, None)
    adam = bind("adam(1e-3, clip=1.0, weight_decay=1e-4)", OPT).kw
    assert (adam["clip"], adam["weight_decay"]) == (1.0, 1e-4)
    diags = Diagnostics()
    text = "adam(1e-3, 0.9, 0.999, 1e-8, 1e-2)"
    assert _Checker({}, [], diags).call_of(parse_expr(text), "optimizer", OPT, None) is None
    [d] = diags.items
    assert (d.kind, d.span.line, d.span.col, d.span.end_col) == ("argument error", 1, 30, 34)
    assert d.message == "adam takes at most 4 positional arguments (lr, b1, b2, eps), got 5"
    assert d.hint.startswith(
        "give clip, weight_decay, clip_weights by name, e.g. adam(..., clip=...); usage: "
    )
