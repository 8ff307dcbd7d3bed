"""Metrics of the train section: typed Terms, elementwise scores with the batch first, averaged over examples.

Any loss except the parameter penalties may also be listed as a metric (`metrics = [mse(pred, y)]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .spec import Arg, CallSpec, Signature
from .terms import Term, class_scores


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


# One entry per metric: signature, type rule, JAX definition. Losses serve as metrics too (mse, mae, ...).
METRICS: Mapping[str, Term] = MappingProxyType(
    {
        "accuracy": Term(
            Signature(
                "accuracy",
                (Arg("logits", "value"), Arg("labels", "value", number=True)),
                "fraction classified right",
            ),
            class_scores("logits", "labels", number=True, binary=True),
            accuracy,
        ),
        "top_k_accuracy": Term(
            Signature(
                "top_k_accuracy",
                (Arg("logits", "value"), Arg("labels", "value"), Arg("k", "int", 5)),
                "label among the k highest scores",
            ),
            class_scores("logits", "labels", same=False, k_arg="k"),
            top_k_accuracy,
        ),
    }
)

# Kept for callers that name the type: a metric is a Term.
MetricFn = Term


def metric_value(call: CallSpec, values: Mapping[str, Any], weights: Any = None) -> Any:
    """A metric (or a loss used as one) on one batch, as a scalar mean over the (weighted) examples."""
    from .losses import reduce, term_value

    m = METRICS.get(call.name)
    if m is None:
        return term_value(call, values, None, weights)
    return reduce(m.elementwise(call, values), "mean", weights)
