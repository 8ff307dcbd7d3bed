"""Loss terms of the train section (LANGUAGE.md §6): each one Term — signature, type rule, JAX definition.

A term maps model values to an elementwise array with the batch first; `reduction=mean|sum` then averages or sums
over all its elements (PyTorch's convention), with optional per-example weights so that padded validation batches
count exactly. `l1`/`l2` are parameter penalties. JAX is imported only when a loss is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .spec import Arg, CallSpec, Signature
from .terms import Term, class_scores, no_tensors, positive, same_shape

_RED = Arg("reduction", "str", "mean", ("mean", "sum"))


def _log_softmax(z: Any) -> Any:
    import jax

    return jax.nn.log_softmax(z, axis=-1)


def _int_labels(logits: Any, labels: Any) -> bool:
    import jax.numpy as jnp

    return jnp.issubdtype(labels.dtype, jnp.integer) and labels.ndim == logits.ndim - 1


def cross_entropy(logits: Any, labels: Any, label_smoothing: float = 0.0) -> Any:
    """Softmax cross-entropy over the last axis; labels are class indices or probabilities (one-hot)."""
    import jax
    import jax.numpy as jnp

    logp = _log_softmax(logits)
    if _int_labels(logits, labels):
        target = jax.nn.one_hot(labels, logits.shape[-1], dtype=logp.dtype)
    else:
        target = labels.astype(logp.dtype)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
    return -jnp.sum(target * logp, axis=-1)


def binary_cross_entropy(logits: Any, targets: Any) -> Any:
    """Sigmoid cross-entropy from logits, elementwise (numerically stable)."""
    import jax.numpy as jnp

    t = targets.astype(logits.dtype)
    return jnp.maximum(logits, 0) - logits * t + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def mse(pred: Any, target: Any) -> Any:
    import jax.numpy as jnp

    return jnp.square(pred - target.astype(pred.dtype))


def mae(pred: Any, target: Any) -> Any:
    import jax.numpy as jnp

    return jnp.abs(pred - target.astype(pred.dtype))


def huber(pred: Any, target: Any, delta: float = 1.0) -> Any:
    import jax.numpy as jnp

    err = jnp.abs(pred - target.astype(pred.dtype))
    quad = jnp.minimum(err, delta)
    return 0.5 * quad**2 + delta * (err - quad)


def hinge(scores: Any, labels: Any) -> Any:
    """Multiclass (Weston-Watkins, CS231n SVM) with integer class labels; else binary with targets 0/1 or ±1."""
    import jax
    import jax.numpy as jnp

    if _int_labels(scores, labels):
        correct = jnp.take_along_axis(scores, labels[..., None].astype(jnp.int32), axis=-1)
        margins = jnp.maximum(0.0, scores - correct + 1.0)
        return jnp.sum(margins, axis=-1) - 1.0  # the correct class contributes max(0, 1) = 1
    t = jnp.where(labels.astype(scores.dtype) > 0, 1.0, -1.0)
    return jax.nn.relu(1.0 - t * scores)


def kl_div(logits: Any, targets: Any) -> Any:
    """KL(targets ‖ softmax(logits)) over the last axis; targets are probabilities."""
    import jax.numpy as jnp

    t = targets.astype(logits.dtype)
    return jnp.sum(
        jnp.where(t > 0, t * (jnp.log(jnp.where(t > 0, t, 1.0)) - _log_softmax(logits)), 0.0), axis=-1
    )


def nll(log_probs: Any, labels: Any) -> Any:
    """Negative log-likelihood: minus the log-probability of the labelled class (log_probs over the last axis)."""
    import jax.numpy as jnp

    return -jnp.take_along_axis(log_probs, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def kl_normal(mu: Any, logvar: Any) -> Any:
    """KL(N(mu, exp(logvar)) ‖ N(0, 1)), elementwise: -½(1 + logvar - mu² - exp(logvar))."""
    import jax.numpy as jnp

    return -0.5 * (1.0 + logvar - jnp.square(mu) - jnp.exp(logvar))


def _weights_of(params: Any, include_all: bool) -> list[Any]:
    import jax

    leaves = jax.tree.leaves(params)
    return [p for p in leaves if include_all or p.ndim >= 2]


def l2(params: Any, weight: float, all: bool = False) -> Any:
    """weight · Σ w² over weight matrices and kernels (ndim ≥ 2; all=true includes biases and scales)."""
    import jax.numpy as jnp

    return weight * sum((jnp.sum(jnp.square(p)) for p in _weights_of(params, all)), jnp.float32(0))


def l1(params: Any, weight: float, all: bool = False) -> Any:
    """weight · Σ |w| over weight matrices and kernels (ndim ≥ 2; all=true includes biases and scales)."""
    import jax.numpy as jnp

    return weight * sum((jnp.sum(jnp.abs(p)) for p in _weights_of(params, all)), jnp.float32(0))


def _v(name: str, number: bool = False) -> Arg:
    return Arg(name, "value", number=number)


_PENALTY = (Arg("weight", "float"), Arg("all", "bool", False))

# One entry per loss: its signature (tensor arguments first), its type rule, its JAX definition.
LOSSES: Mapping[str, Term] = MappingProxyType(
    {
        "cross_entropy": Term(
            Signature(
                "cross_entropy",
                (_v("logits"), _v("labels"), _RED, Arg("label_smoothing", "float", 0.0)),
                "softmax cross-entropy; int labels or one-hot",
            ),
            positive("label_smoothing", class_scores("logits", "labels"), upto=1.0, zero=True),
            cross_entropy,
            target="labels",
        ),
        "binary_cross_entropy": Term(
            Signature(
                "binary_cross_entropy",
                (_v("logits"), _v("targets", number=True), _RED),
                "sigmoid cross-entropy from logits",
            ),
            same_shape("logits", "targets", "logits"),
            binary_cross_entropy,
            target="targets",
        ),
        "mse": Term(
            Signature("mse", (_v("pred"), _v("target", number=True), _RED), "squared error"),
            same_shape("pred", "target"),
            mse,
            target="target",
        ),
        "mae": Term(
            Signature("mae", (_v("pred"), _v("target", number=True), _RED), "absolute error"),
            same_shape("pred", "target"),
            mae,
            target="target",
        ),
        "huber": Term(
            Signature(
                "huber",
                (_v("pred"), _v("target", number=True), Arg("delta", "float", 1.0), _RED),
                "quadratic below delta, linear above",
            ),
            positive("delta", same_shape("pred", "target")),
            huber,
            target="target",
        ),
        "hinge": Term(
            Signature(
                "hinge",
                (_v("scores"), _v("labels", number=True), _RED),
                "multiclass SVM loss, or binary with 0/1 or ±1 targets",
            ),
            class_scores("scores", "labels", number=True, binary=True),
            hinge,
            target="labels",
        ),
        "kl_div": Term(
            Signature("kl_div", (_v("logits"), _v("targets"), _RED), "KL(targets ‖ softmax(logits))"),
            class_scores("logits", "targets", index=False),
            kl_div,
            target="targets",
        ),
        "nll": Term(
            Signature("nll", (_v("log_probs"), _v("labels"), _RED), "negative log-likelihood"),
            class_scores("log_probs", "labels", same=False),
            nll,
            target="labels",
        ),
        "kl_normal": Term(
            Signature(
                "kl_normal", (_v("mu"), _v("logvar"), _RED), "KL of a diagonal Gaussian to N(0, I) (VAE)"
            ),
            same_shape("mu", "logvar", "means", second_float=True),
            kl_normal,
        ),
        "l2": Term(
            Signature("l2", _PENALTY, "weight · Σ w² over weight matrices"), no_tensors, l2, penalty=True
        ),
        "l1": Term(
            Signature("l1", _PENALTY, "weight · Σ |w| over weight matrices"), no_tensors, l1, penalty=True
        ),
    }
)

# Kept for callers that name the type: a loss is a Term.
LossFn = Term


def reduce(elems: Any, reduction: str, weights: Any = None) -> Any:
    """Mean or sum over all elements; with per-example `weights` (0 for padding) over the weighted examples."""
    import jax.numpy as jnp

    elems = elems.astype(jnp.float32)
    if weights is None or elems.ndim == 0 or elems.shape[0] != weights.shape[0]:
        return jnp.mean(elems) if reduction == "mean" else jnp.sum(elems)
    per = elems.reshape(elems.shape[0], -1)
    total = jnp.sum(per * weights[:, None].astype(per.dtype))
    if reduction == "sum":
        return total
    return total / (jnp.sum(weights) * per.shape[1])


def term_value(call: CallSpec, values: Mapping[str, Any], params: Any, weights: Any = None) -> Any:
    """One loss (or loss-as-metric) term, reduced to a scalar."""
    import jax.numpy as jnp

    if call.name == "value":
        return reduce(jnp.asarray(values[call["name"]]), "mean", weights)
    lf = LOSSES[call.name]
    kw = call.kw
    if lf.penalty:
        return lf.fn(params, **{a.name: kw[a.name] for a in lf.sig.args})
    return reduce(lf.elementwise(call, values), kw.get("reduction", "mean"), weights)


def total_loss(
    terms: tuple[tuple[float, CallSpec], ...], values: Mapping[str, Any], params: Any, weights: Any = None
) -> Any:
    """The weighted sum of an objective's terms."""
    import jax.numpy as jnp

    out = jnp.float32(0)
    for coef, call in terms:
        t = term_value(call, values, params, weights)
        out = out + (t if coef == 1.0 else coef * t)
    return out
