"""Metrics of the train section: elementwise scores with the batch first, averaged over (weighted) examples.

Any loss except the parameter penalties may also be listed as a metric (`metrics = [mse(pred, y)]`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .spec import Arg, CallSpec, Signature


@dataclass(frozen=True)
class MetricFn:
    """A metric: its signature and `fn(*values, **options) -> elementwise array`."""

    sig: Signature
    fn: Callable[..., Any]


def accuracy(logits: Any, labels: Any) -> Any:
    """Argmax = label for int labels; argmax = argmax for one-hot; for one logit per example, (z > 0) = target."""
    import jax.numpy as jnp

    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.ndim == logits.ndim - 1:
        return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    if logits.shape[-1] == 1 or labels.shape != logits.shape or logits.ndim == 1:
        return ((logits > 0) == (labels > 0.5)).astype(jnp.float32)
    return (jnp.argmax(logits, axis=-1) == jnp.argmax(labels, axis=-1)).astype(jnp.float32)


def top_k_accuracy(logits: Any, labels: Any, k: int = 5) -> Any:
    import jax
    import jax.numpy as jnp

    _, idx = jax.lax.top_k(logits, k)
    return jnp.any(idx == labels[..., None], axis=-1).astype(jnp.float32)


def _mse(pred: Any, target: Any) -> Any:
    import jax.numpy as jnp

    return jnp.square(pred - target.astype(pred.dtype))


def _mae(pred: Any, target: Any) -> Any:
    import jax.numpy as jnp

    return jnp.abs(pred - target.astype(pred.dtype))


METRICS: Mapping[str, MetricFn] = MappingProxyType(
    {
        "accuracy": MetricFn(
            Signature(
                "accuracy", (Arg("logits", "value"), Arg("labels", "value")), "fraction classified right"
            ),
            accuracy,
        ),
        "top_k_accuracy": MetricFn(
            Signature(
                "top_k_accuracy",
                (Arg("logits", "value"), Arg("labels", "value"), Arg("k", "int", 5)),
                "label among the k highest scores",
            ),
            top_k_accuracy,
        ),
        "mse": MetricFn(
            Signature("mse", (Arg("pred", "value"), Arg("target", "value")), "squared error"), _mse
        ),
        "mae": MetricFn(
            Signature("mae", (Arg("pred", "value"), Arg("target", "value")), "absolute error"), _mae
        ),
    }
)


def metric_value(call: CallSpec, values: Mapping[str, Any], weights: Any = None) -> Any:
    """A metric (or a loss used as one) on one batch, as a scalar mean over the (weighted) examples."""
    from .losses import reduce, term_value

    m = METRICS.get(call.name)
    if m is None:
        return term_value(call, values, None, weights)
    kw = call.kw
    vals = [values[kw[a.name]] for a in m.sig.args if a.kind == "value"]
    opts = {a.name: kw[a.name] for a in m.sig.args if a.kind != "value"}
    return reduce(m.fn(*vals, **opts), "mean", weights)
