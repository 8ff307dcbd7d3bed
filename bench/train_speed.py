"""One training epoch: specc (`train_and_evaluate`) vs a hand-written Flax NNX + Optax loop, same model and data.

Models: an MLP 784-256-256-10 and the lecture's MNIST convnet (specs/mnist_convnet.net), on the MNIST t10k images
(8,000 for training) at ../shared/data/mnist-t10k, batch 64, Adam 1e-3, the same shuffled batches. Both loops
sum loss and accuracy on the device and fetch them once per epoch. Prints per-epoch seconds (the first epoch,
which compiles, is left out), their medians and the ratio hand-written / specc (≥ 1 means specc is as fast).

    .venv/bin/python bench/train_speed.py [--epochs 5] [--models mlp,convnet]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import specc
from specc.train.data import load_data
from specc.train.loop import train_and_evaluate
from specc.train.spec import build_config

ROOT = Path(__file__).resolve().parent.parent
MNIST = (ROOT / ".." / "shared" / "data" / "mnist-t10k").resolve()
BATCH = 64

MLP_SPEC = f"""
model MLP {{
  input x: f32[N, 28, 28, 1]
  input y: i32[N]
  h = x -> flatten -> dense(256) -> relu -> dense(256) -> relu
  logits = h -> dense(10)
  output logits
}}
train {{
  data = mnist("{MNIST}", split=8000)
  loss = cross_entropy(logits, y)
  optimizer = adam(lr=1e-3)
  batch = {BATCH}
  metrics = [accuracy(logits, y)]
  seed = 0
}}
"""


class HandMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        init = nnx.initializers.glorot_uniform()
        self.l1 = nnx.Linear(784, 256, kernel_init=init, rngs=rngs)
        self.l2 = nnx.Linear(256, 256, kernel_init=init, rngs=rngs)
        self.l3 = nnx.Linear(256, 10, kernel_init=init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        return self.l3(nnx.relu(self.l2(nnx.relu(self.l1(x)))))


class HandConvNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        init = nnx.initializers.glorot_uniform()
        self.c1 = nnx.Conv(1, 32, (5, 5), padding="VALID", kernel_init=init, rngs=rngs)
        self.c2 = nnx.Conv(32, 64, (5, 5), padding="VALID", kernel_init=init, rngs=rngs)
        self.d1 = nnx.Linear(256, 200, kernel_init=init, rngs=rngs)
        self.d2 = nnx.Linear(200, 10, kernel_init=init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(nnx.max_pool(self.c1(x), (3, 3), (3, 3)))
        x = nnx.relu(nnx.max_pool(self.c2(x), (2, 2), (2, 2)))
        x = x.reshape(x.shape[0], -1)
        return self.d2(nnx.relu(self.d1(x)))


def hand_written(make: type, train, epochs: int) -> list[float]:
    """The loop a Flax user writes: jax.jit over nnx.split state, donated, Optax Adam, sums fetched per epoch."""
    model = make(nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(1e-3)

    @jax.jit
    def init_opt(p):
        return tx.init(p)

    def train_step(state, x, y):
        params, opt, sums = state

        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        return params, opt, sums + jnp.stack([loss, acc])

    step = jax.jit(train_step, donate_argnums=0)
    state = (params, init_opt(params), jnp.zeros(2))
    times = []
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        for b in train.batches(BATCH, rng=np.random.default_rng([0, epoch]), drop_last=True):
            state = step(state, b["x"], b["y"])
        jax.device_get(state[2])
        state = (state[0], state[1], jnp.zeros(2))
        if epoch:
            times.append(time.perf_counter() - t0)
    return times


def specc_epochs(spec: specc.Spec, epochs: int) -> list[float]:
    cfg = build_config(spec, spec.graph(), [f"epochs={epochs + 1}"])
    with tempfile.TemporaryDirectory() as d:
        result = train_and_evaluate(cfg, Path(d), verbose=False, graph=spec.graph())
    return [h["time"] for h in result.history[1:]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per loop (after one warm-up epoch)")
    ap.add_argument("--models", default="mlp,convnet")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of specc and hand-written")
    args = ap.parse_args()
    if not (MNIST / "t10k-images-idx3-ubyte.gz").exists() and not (MNIST / "t10k-images-idx3-ubyte").exists():
        print(f"skipped: no MNIST data at {MNIST}")
        return 0
    train = load_data("mnist", [str(MNIST)], {"split": 8000}, base_dir=ROOT, seed=0).train
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {len(train)} training images, batch {BATCH}"
    )
    models = {
        "mlp": (specc.load("mlp.net", text=MLP_SPEC), HandMLP),
        "convnet": (specc.load(ROOT / "specs" / "mnist_convnet.net"), HandConvNet),
    }
    for name in args.models.split(","):
        spec, hand = models[name]
        # Alternate the two loops round by round, so that load from other processes on this small machine falls
        # on both alike; each round compiles afresh and its first epoch is left out.
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(args.rounds):
            ours += specc_epochs(spec, args.epochs)
            theirs += hand_written(hand, train, args.epochs)
        m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
        print(
            f"{name:8s} specc {m_ours:.3f}s  hand-written {m_theirs:.3f}s  per epoch (median of {len(ours)} epochs "
            f"in {args.rounds} alternating rounds; best {min(ours):.3f}s vs {min(theirs):.3f}s)  "
            f"ratio {m_theirs / m_ours:.3f} (best-of: {min(theirs) / min(ours):.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
