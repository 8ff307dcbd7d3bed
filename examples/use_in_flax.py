"""A spec as an ordinary Flax NNX module inside your own training loop (no `specc train`).

    python examples/use_in_flax.py

Loads specs/digits_mlp.net, builds the module, and trains it for a few epochs with a hand-written Optax loop on the
embedded digits; prints the validation accuracy.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import specc
from specc.train.data import load_data

ROOT = Path(__file__).resolve().parents[1]


def main(epochs: int = 5) -> float:
    spec = specc.load(ROOT / "specs" / "digits_mlp.net")
    print(spec.check())  # outputs, parameter count, FLOPs
    model = spec.build(nnx.Rngs(0))  # an nnx.Module: model(x=...) -> {"logits": ...}
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    data = load_data("digits", [], {"split": 0.8}, base_dir=ROOT, seed=0)

    @nnx.jit
    def step(model: nnx.Module, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(m: nnx.Module) -> jax.Array:
            logits = m(x=x)["logits"]
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    for epoch in range(epochs):
        for batch in data.train.batches(32, rng=np.random.default_rng(epoch)):
            loss = step(model, optimizer, batch["x"], batch["y"])
        print(f"epoch {epoch + 1}: loss {float(loss):.4f}")
    assert data.val is not None
    logits = model(x=jnp.asarray(data.val.fields["x"]))["logits"]
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == data.val.fields["y"]))
    print(f"validation accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
