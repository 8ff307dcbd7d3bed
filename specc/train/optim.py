"""Optimizers and learning-rate schedules of the train section, built with Optax (imported only when built).

A schedule's time t counts epochs by default (`per=epoch`; the lecture slides' convention: the rate is constant
within an epoch, t = 0 in the first), or optimizer steps with `per=step`; see docs/training.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .spec import Arg, CallSpec, Signature

_PER = Arg("per", "str", "epoch", ("epoch", "step"))


@dataclass(frozen=True)
class ScheduleFn:
    """A schedule: its signature and `fn(t, **args) -> learning rate` (t a float array: epochs or steps)."""

    sig: Signature
    fn: Callable[..., Any]


def _constant(t: Any, lr: float) -> Any:
    import jax.numpy as jnp

    return jnp.full_like(t, lr, dtype=jnp.float32)


def _inverse_time(t: Any, lr0: float, rate: float, power: float = 1.0) -> Any:
    """Caffe's `inv`: lr0 · (1 + rate·t)^(-power); power=1 is computed as the plain quotient it always was."""
    import jax.numpy as jnp

    if power == 1.0:
        return lr0 / (1.0 + rate * t)
    return lr0 * jnp.power(1.0 + rate * t, -power)


def _poly(t: Any, lr0: float, power: float, steps: int) -> Any:
    """Caffe's `poly`: lr0 · (1 - t/steps)^power, reaching 0 at t = steps and staying there."""
    import jax.numpy as jnp

    return lr0 * jnp.power(jnp.clip(1.0 - t / steps, 0.0, 1.0), power)


def _sigmoid(t: Any, lr0: float, rate: float, step: float) -> Any:
    """Caffe's `sigmoid`: lr0 / (1 + exp(-rate·(t - step))); a negative rate decays around t = step."""
    import jax.numpy as jnp

    return lr0 / (1.0 + jnp.exp(-rate * (t - step)))


def _exponential(t: Any, lr0: float, rate: float) -> Any:
    import jax.numpy as jnp

    return lr0 * jnp.exp(-rate * t)


def _step(t: Any, lr0: float, factor: float, every: int) -> Any:
    import jax.numpy as jnp

    return lr0 * jnp.power(factor, jnp.floor(t / every))


def _cosine(t: Any, lr0: float, steps: int, warmup: int = 0, final: float = 0.0) -> Any:
    """Linear warm-up from 0 over `warmup`, then half a cosine from lr0 to `final` until `steps` (warm-up included)."""
    import jax.numpy as jnp

    warm = lr0 * t / max(warmup, 1)
    frac = jnp.clip((t - warmup) / max(steps - warmup, 1), 0.0, 1.0)
    cos = final + 0.5 * (lr0 - final) * (1.0 + jnp.cos(jnp.pi * frac))
    return jnp.where(t < warmup, warm, cos)


def _piecewise(t: Any, boundaries: tuple[float, ...], values: tuple[float, ...]) -> Any:
    """values[i] where i = how many boundaries are ≤ t; `values` has one more entry than `boundaries`."""
    import jax.numpy as jnp

    t = jnp.asarray(t)
    # t may be an array of steps (`specc plot schedule`): each compared with every boundary
    i = jnp.sum(t[..., None] >= jnp.asarray(boundaries, jnp.float32), axis=-1) if boundaries else 0
    return jnp.asarray(values, jnp.float32)[i]


SCHEDULES: Mapping[str, ScheduleFn] = MappingProxyType(
    {
        "constant": ScheduleFn(
            Signature("constant", (Arg("lr", "float", domain="rate"), _PER), "a fixed rate"), _constant
        ),
        "inverse_time": ScheduleFn(
            Signature(
                "inverse_time",
                (Arg("lr0", "float", domain="rate"), Arg("rate", "float"), Arg("power", "float", 1.0), _PER),
                "lr0 · (1 + rate·t)^(-power) (Caffe's inv)",
            ),
            _inverse_time,
        ),
        "poly": ScheduleFn(
            Signature(
                "poly",
                (Arg("lr0", "float", domain="rate"), Arg("power", "float"), Arg("steps", "int"), _PER),
                "lr0 · (1 - t/steps)^power, 0 from t = steps on (Caffe's poly)",
            ),
            _poly,
        ),
        "sigmoid": ScheduleFn(
            Signature(
                "sigmoid",
                (Arg("lr0", "float", domain="rate"), Arg("rate", "float"), Arg("step", "float"), _PER),
                "lr0 / (1 + exp(-rate·(t - step))) (Caffe's sigmoid)",
            ),
            _sigmoid,
        ),
        "exponential": ScheduleFn(
            Signature(
                "exponential",
                (Arg("lr0", "float", domain="rate"), Arg("rate", "float"), _PER),
                "lr0 · exp(-rate·t)",
            ),
            _exponential,
        ),
        "step": ScheduleFn(
            Signature(
                "step",
                (
                    Arg("lr0", "float", domain="rate"),
                    Arg("factor", "float", domain="nonneg"),
                    Arg("every", "int"),
                    _PER,
                ),
                "lr0 · factor^floor(t / every)",
            ),
            _step,
        ),
        "cosine": ScheduleFn(
            Signature(
                "cosine",
                (
                    Arg("lr0", "float", domain="rate"),
                    Arg("steps", "int"),
                    Arg("warmup", "int", 0),
                    Arg("final", "float", 0.0, domain="rate"),
                    _PER,
                ),
                "linear warm-up, then cosine decay to `final` at t = steps",
            ),
            _cosine,
        ),
        "piecewise": ScheduleFn(
            Signature(
                "piecewise",
                (Arg("boundaries", "numbers"), Arg("values", "numbers"), _PER),
                "values[i] after boundaries[i-1]",
            ),
            _piecewise,
        ),
    }
)


def make_schedule(lr: float | CallSpec, steps_per_epoch: int) -> float | Callable[[Any], Any]:
    """A float, or an Optax schedule `count -> lr` where count is the optimizer's step count."""
    if not isinstance(lr, CallSpec):
        return float(lr)
    import jax.numpy as jnp

    sf = SCHEDULES[lr.name]
    kw = {k: v for k, v in lr.args if k != "per"}
    per_epoch = lr["per"] == "epoch"
    spe = max(int(steps_per_epoch), 1)

    def schedule(count: Any) -> Any:
        count = jnp.asarray(count)
        t = (count // spe if per_epoch else count).astype(jnp.float32)
        return jnp.asarray(sf.fn(t, **kw), jnp.float32)

    return schedule


def check_schedule_args(call: CallSpec) -> str | None:
    """A problem with a schedule's values the signature cannot express, or None."""
    if call.name == "piecewise" and len(call["values"]) != len(call["boundaries"]) + 1:
        return "piecewise needs one more value than boundaries"
    if call.name == "step" and call["every"] < 1:
        return "step: every must be at least 1"
    if call.name == "poly" and call["steps"] < 1:
        return "poly: steps must be at least 1"
    # steps = 0 decayed to `final` after the first step (the run trained one step); a warm-up longer than the
    # decay ramped past lr0 and then fell to `final` at once
    if call.name == "cosine" and call["steps"] < 1:
        return "cosine: steps must be at least 1"
    if call.name == "cosine" and not 0 <= call["warmup"] <= call["steps"]:
        return f"cosine: warmup must be 0 to steps ({call['steps']}), got {call['warmup']}"
    if call.name == "poly" and call["power"] < 0:
        return "poly: power must be at least 0"
    # 1 + rate·t reaches 0 at t = -1/rate: an infinite rate there (it trained, then diverged), then NaN
    if call.name == "inverse_time" and call["rate"] < 0:
        rate = call["rate"]
        return f"inverse_time: rate must be at least 0, got {rate:g} (1 + rate·t is 0 at t = {-1 / rate:g})"
    bounds = list(call["boundaries"]) if call.name == "piecewise" else []
    if any(a >= b for a, b in itertools.pairwise(bounds)):
        return f"piecewise: boundaries must increase, got {bounds}"
    return None


# ---- optimizers ---------------------------------------------------------------------------------------------

_B1, _B2 = Arg("b1", "float", 0.9, domain="decay"), Arg("b2", "float", 0.999, domain="decay")
# Every optimizer also takes these, by name only: by position they followed each optimizer's own arguments, so
# `lion(1e-4, 0.9, 0.99, 1e-3)` (lion's documented order, weight decay last) clipped the gradient's norm to 1e-3.
# Optimizers with their own decoupled decay define weight_decay themselves, a positional argument after theirs
# (PyTorch's AdamW(lr, betas, eps, weight_decay)).
_COMMON = (
    Arg("clip", "float", None, domain="positive", keyword=True),
    Arg("weight_decay", "float", 0.0, domain="nonneg", keyword=True),
    Arg("clip_weights", "float", None, domain="positive", keyword=True),
)


@dataclass(frozen=True)
class OptimizerFn:
    """An optimizer: its signature and `build(lr, **args) -> optax.GradientTransformation`.

    decoupled: whether weight_decay is the optimizer's own (AdamW-style) rather than an L2 term added to the
    gradient before it (PyTorch's `weight_decay` for SGD/Adam).
    """

    sig: Signature
    build: Callable[..., Any]
    decoupled: bool = False


def _sig(
    name: str, *args: Arg, lr: float | None = 1e-3, doc: str = "", own_decay: float | None = None
) -> Signature:
    common = (
        _COMMON
        if own_decay is None
        else (_COMMON[0], Arg("weight_decay", "float", own_decay, domain="nonneg"), _COMMON[2])
    )
    return Signature(name, (Arg("lr", "lr", lr, domain="rate"), *args, *common), doc)


def _optax() -> Any:
    import optax

    return optax


OPTIMIZERS: Mapping[str, OptimizerFn] = MappingProxyType(
    {
        "sgd": OptimizerFn(
            _sig(
                "sgd",
                Arg("momentum", "float", 0.0, domain="decay"),
                Arg("nesterov", "bool", False),
                lr=0.01,
                doc="stochastic gradient descent, with (Nesterov) momentum",
            ),
            lambda lr, momentum, nesterov: _optax().sgd(lr, momentum or None, nesterov),
        ),
        "adagrad": OptimizerFn(
            _sig(
                "adagrad",
                Arg("initial_accumulator", "float", 0.1, domain="nonneg"),
                Arg("eps", "float", 1e-7, domain="nonneg"),
                lr=0.01,
            ),
            lambda lr, initial_accumulator, eps: _optax().adagrad(lr, initial_accumulator, eps),
        ),
        "adadelta": OptimizerFn(
            _sig(
                "adadelta",
                Arg("rho", "float", 0.9, domain="fraction"),
                Arg("eps", "float", 1e-6, domain="nonneg"),
                lr=1.0,
            ),
            lambda lr, rho, eps: _optax().adadelta(lr, rho, eps),
        ),
        "rmsprop": OptimizerFn(
            _sig(
                "rmsprop",
                Arg("decay", "float", 0.9, domain="fraction"),
                Arg("eps", "float", 1e-8, domain="nonneg"),
                Arg("momentum", "float", 0.0, domain="decay"),
                Arg("centered", "bool", False),
            ),
            lambda lr, decay, eps, momentum, centered: _optax().rmsprop(
                lr, decay, eps, momentum=momentum or None, centered=centered
            ),
        ),
        "adam": OptimizerFn(
            _sig("adam", _B1, _B2, Arg("eps", "float", 1e-8, domain="nonneg")),
            lambda lr, b1, b2, eps: _optax().adam(lr, b1, b2, eps),
        ),
        "adamw": OptimizerFn(
            _sig("adamw", _B1, _B2, Arg("eps", "float", 1e-8, domain="nonneg"), own_decay=1e-4),
            lambda lr, b1, b2, eps, weight_decay: _optax().adamw(lr, b1, b2, eps, weight_decay=weight_decay),
            decoupled=True,
        ),
        "nadam": OptimizerFn(
            _sig("nadam", _B1, _B2, Arg("eps", "float", 1e-8, domain="nonneg")),
            lambda lr, b1, b2, eps: _optax().nadam(lr, b1, b2, eps),
        ),
        "lamb": OptimizerFn(
            _sig("lamb", _B1, _B2, Arg("eps", "float", 1e-6, domain="nonneg"), own_decay=0.0),
            lambda lr, b1, b2, eps, weight_decay: _optax().lamb(lr, b1, b2, eps, weight_decay=weight_decay),
            decoupled=True,
        ),
        "lion": OptimizerFn(
            _sig(
                "lion",
                Arg("b1", "float", 0.9, domain="decay"),
                Arg("b2", "float", 0.99, domain="decay"),
                lr=1e-4,
                own_decay=1e-3,
            ),
            lambda lr, b1, b2, weight_decay: _optax().lion(lr, b1, b2, weight_decay=weight_decay),
            decoupled=True,
        ),
    }
)


def make_optimizer(call: CallSpec, steps_per_epoch: int) -> Any:
    """The Optax transformation for an optimizer call: [clip by global norm] → [L2 decay] → the optimizer →
    [weights clipped to ±clip_weights]."""
    import optax

    of = OPTIMIZERS[call.name]
    kw = call.kw
    lr = make_schedule(kw["lr"], steps_per_epoch)
    own = {a.name: kw[a.name] for a in of.sig.args if a.name not in ("lr", *(c.name for c in _COMMON))}
    if of.decoupled:
        own["weight_decay"] = kw["weight_decay"]
    parts = []
    if kw.get("clip") is not None:
        parts.append(optax.clip_by_global_norm(kw["clip"]))
    if not of.decoupled and kw.get("weight_decay"):
        parts.append(optax.add_decayed_weights(kw["weight_decay"]))
    parts.append(of.build(lr, **own))
    if kw.get("clip_weights") is not None:
        parts.append(_clip_weights(kw["clip_weights"]))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def _clip_weights(limit: float) -> Any:
    """After the update, every weight it trains lies in [-limit, limit]: the update becomes clip(p + u) - p. The
    original WGAN's critic (Arjovsky et al., 2017: RMSProp, lr 5e-5, clip 0.01); Optax has projections but no
    transformation that applies one after each update."""
    import jax
    import jax.numpy as jnp
    import optax

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        if params is None:
            raise ValueError("clip_weights needs the parameters")
        return jax.tree.map(lambda u, p: jnp.clip(p + u, -limit, limit) - p, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
