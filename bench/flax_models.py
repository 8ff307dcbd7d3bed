"""The suite's models written by hand in Flax NNX, as a Flax user would. Attributes are named after the spec's
nodes (`specc check` names them), so specc's initial parameters load into them by path (`load_params`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

VALID = "VALID"


def _pad(p: int) -> Any:
    return ((p, p), (p, p))


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.h1_dense = nnx.Linear(784, 256, rngs=rngs)
        self.h2_dense = nnx.Linear(256, 256, rngs=rngs)
        self.logits = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        return self.logits(nnx.relu(self.h2_dense(nnx.relu(self.h1_dense(x)))))


class ConvNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(1, 32, (5, 5), padding=VALID, rngs=rngs)
        self.c2 = nnx.Conv(32, 64, (5, 5), padding=VALID, rngs=rngs)
        self.h_dense = nnx.Linear(256, 200, rngs=rngs)
        self.logits = nnx.Linear(200, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(nnx.max_pool(self.c1(x), (3, 3), (3, 3)))
        x = nnx.relu(nnx.max_pool(self.c2(x), (2, 2), (2, 2)))
        x = x.reshape(x.shape[0], -1)
        return self.logits(nnx.relu(self.h_dense(x)))


class LeNet5(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.c1_conv = nnx.Conv(1, 6, (5, 5), padding=_pad(2), rngs=rngs)
        self.c3_conv = nnx.Conv(6, 16, (5, 5), padding=VALID, rngs=rngs)
        self.c5_conv = nnx.Conv(16, 120, (5, 5), padding=VALID, rngs=rngs)
        self.f6_dense = nnx.Linear(120, 84, rngs=rngs)
        self.logits = nnx.Linear(84, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.avg_pool(jnp.tanh(self.c1_conv(x)), (2, 2), (2, 2))
        x = nnx.avg_pool(jnp.tanh(self.c3_conv(x)), (2, 2), (2, 2))
        x = jnp.tanh(self.c5_conv(x)).reshape(x.shape[0], -1)
        return self.logits(jnp.tanh(self.f6_dense(x)))


def _conv3(cin: int, cout: int, rngs: nnx.Rngs, stride: int = 1) -> nnx.Conv:
    return nnx.Conv(cin, cout, (3, 3), strides=stride, padding=_pad(1), use_bias=False, rngs=rngs)


def _bn(c: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, rngs=rngs)


class SmallResNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.stem_conv = _conv3(1, 16, rngs)
        self.stem_batchnorm = _bn(16, rngs)
        self.b1_h_conv1 = _conv3(16, 16, rngs)
        self.b1_h_batchnorm = _bn(16, rngs)
        self.b1_h_conv2 = _conv3(16, 16, rngs)
        self.b1_h = _bn(16, rngs)
        self.b2_h_conv1 = _conv3(16, 32, rngs, stride=2)
        self.b2_h_batchnorm = _bn(32, rngs)
        self.b2_h_conv2 = _conv3(32, 32, rngs)
        self.b2_h = _bn(32, rngs)
        self.b2_s_conv = nnx.Conv(16, 32, (1, 1), strides=2, padding=VALID, use_bias=False, rngs=rngs)
        self.b2_s = _bn(32, rngs)
        self.logits = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.stem_batchnorm(self.stem_conv(x)))
        h = self.b1_h(self.b1_h_conv2(nnx.relu(self.b1_h_batchnorm(self.b1_h_conv1(x)))))
        x = nnx.relu(h + x)
        h = self.b2_h(self.b2_h_conv2(nnx.relu(self.b2_h_batchnorm(self.b2_h_conv1(x)))))
        x = nnx.relu(h + self.b2_s(self.b2_s_conv(x)))
        return self.logits(x.mean(axis=(1, 2)))


class RowLSTM(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.h = nnx.RNN(nnx.OptimizedLSTMCell(28, 128, rngs=rngs))
        self.logits = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.logits(self.h(x.reshape(x.shape[0], 28, 28))[:, -1])


class TransformerBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.t_dense = nnx.Linear(28, 64, rngs=rngs)
        self.t = nnx.Embed(28, 64, rngs=rngs)  # the learned position table
        self.a_layernorm = nnx.LayerNorm(64, epsilon=1e-5, rngs=rngs)
        self.a = nnx.MultiHeadAttention(4, 64, qkv_features=64, out_features=64, decode=False, rngs=rngs)
        self.m_layernorm = nnx.LayerNorm(64, epsilon=1e-5, rngs=rngs)
        self.m_dense = nnx.Linear(64, 128, rngs=rngs)
        self.m = nnx.Linear(128, 64, rngs=rngs)
        self.logits = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        t = self.t_dense(x.reshape(x.shape[0], 28, 28)) + self.t.embedding[...]
        h = t + self.a(self.a_layernorm(t))
        z = h + self.m(jax.nn.gelu(self.m_dense(self.m_layernorm(h)), approximate=False))
        return self.logits(z.mean(axis=1))


MODELS = {
    "mlp": MLP,
    "convnet": ConvNet,
    "lenet5": LeNet5,
    "resnet": SmallResNet,
    "lstm": RowLSTM,
    "transformer": TransformerBlock,
}


def load_params(model: nnx.Module, init: dict[str, np.ndarray]) -> None:
    """Overwrite every parameter and batch statistic of `model` with specc's (`init`: "node/…/name" → array);
    a path specc lacks or a shape that differs is an error: the two models would not be the same."""
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    flat = dict(nnx.to_flat_state(state))
    for path, var in flat.items():
        key = "/".join(str(p) for p in path)
        if key not in init:
            raise KeyError(f"{type(model).__name__}.{key} has no counterpart in the spec's parameters")
        value = init[key]
        if value.shape != var.shape:
            raise ValueError(f"{type(model).__name__}.{key}: shape {var.shape}, the spec's {value.shape}")
        var.set_value(jnp.asarray(value))
    nnx.update(model, state)


def param_count(model: nnx.Module) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
