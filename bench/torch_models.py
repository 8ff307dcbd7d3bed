"""The suite's models written by hand in PyTorch (eager, CPU), the same architectures as the specs and as
bench/flax_models.py. Submodules are named after the spec's nodes, so `load_params` converts specc's initial
parameters by path: kernels transposed to PyTorch's layouts, NHWC images turned NCHW inside `forward`."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _flat_nhwc(x: torch.Tensor) -> torch.Tensor:
    # flatten in NHWC order, as the spec does, so the dense layer after it takes specc's kernel as is
    return x.permute(0, 2, 3, 1).flatten(1)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.h1_dense = nn.Linear(784, 256)
        self.h2_dense = nn.Linear(256, 256)
        self.logits = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.logits(torch.relu(self.h2_dense(torch.relu(self.h1_dense(x)))))


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 5)
        self.c2 = nn.Conv2d(32, 64, 5)
        self.h_dense = nn.Linear(256, 200)
        self.logits = nn.Linear(200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(nn.functional.max_pool2d(self.c1(_nchw(x)), 3))
        x = torch.relu(nn.functional.max_pool2d(self.c2(x), 2))
        return self.logits(torch.relu(self.h_dense(_flat_nhwc(x))))


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1_conv = nn.Conv2d(1, 6, 5, padding=2)
        self.c3_conv = nn.Conv2d(6, 16, 5)
        self.c5_conv = nn.Conv2d(16, 120, 5)
        self.f6_dense = nn.Linear(120, 84)
        self.logits = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(torch.tanh(self.c1_conv(_nchw(x))), 2)
        x = nn.functional.avg_pool2d(torch.tanh(self.c3_conv(x)), 2)
        x = torch.tanh(self.c5_conv(x)).flatten(1)
        return self.logits(torch.tanh(self.f6_dense(x)))


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)  # PyTorch's 0.1 is Flax's (and specc's) momentum 0.9


class SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem_conv = _conv3(1, 16)
        self.stem_batchnorm = _bn(16)
        self.b1_h_conv1 = _conv3(16, 16)
        self.b1_h_batchnorm = _bn(16)
        self.b1_h_conv2 = _conv3(16, 16)
        self.b1_h = _bn(16)
        self.b2_h_conv1 = _conv3(16, 32, stride=2)
        self.b2_h_batchnorm = _bn(32)
        self.b2_h_conv2 = _conv3(32, 32)
        self.b2_h = _bn(32)
        self.b2_s_conv = nn.Conv2d(16, 32, 1, stride=2, bias=False)
        self.b2_s = _bn(32)
        self.logits = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_batchnorm(self.stem_conv(_nchw(x))))
        h = self.b1_h(self.b1_h_conv2(torch.relu(self.b1_h_batchnorm(self.b1_h_conv1(x)))))
        x = torch.relu(h + x)
        h = self.b2_h(self.b2_h_conv2(torch.relu(self.b2_h_batchnorm(self.b2_h_conv1(x)))))
        x = torch.relu(h + self.b2_s(self.b2_s_conv(x)))
        return self.logits(x.mean(dim=(2, 3)))


class _Basic(nn.Module):
    """ResNet's basic block as torchvision writes it: two 3×3 convs, the shortcut a strided 1×1 conv + batch norm
    where the shape changes."""

    def __init__(self, cin: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3(cin, c, stride), _bn(c)
        self.conv2, self.bn2 = _conv3(c, c), _bn(c)
        self.down = None
        if stride != 1 or cin != c:
            self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride=stride, bias=False), _bn(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class _Bottleneck(nn.Module):
    """ResNet-50's bottleneck as torchvision (v1.5) writes it: 1×1 to c, 3×3 (the stride) to c, 1×1 to 4c; the
    shortcut a strided 1×1 conv + batch norm where the shape changes."""

    def __init__(self, cin: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 1, bias=False), _bn(c)
        self.conv2, self.bn2 = _conv3(c, c, stride), _bn(c)
        self.conv3, self.bn3 = nn.Conv2d(c, 4 * c, 1, bias=False), _bn(4 * c)
        self.down = None
        if stride != 1 or cin != 4 * c:
            self.down = nn.Sequential(nn.Conv2d(cin, 4 * c, 1, stride=stride, bias=False), _bn(4 * c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return torch.relu(self.bn3(self.conv3(h)) + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    """torchvision's resnet18 (basic blocks [2, 2, 2, 2]: 11,689,512 parameters, as specs/resnet18.net) or
    resnet50 (bottlenecks [3, 4, 6, 3]: 25,557,032, as specs/resnet50.net), NHWC in; for timing, not loaded from
    specc's parameters (bench/zoo_step.py)."""

    def __init__(self, bottleneck: bool, depths: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), _bn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        block, widen = (_Bottleneck, 4) if bottleneck else (_Basic, 1)
        blocks: list[nn.Module] = []
        cin = 64
        for c, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), depths, strict=True):
            for i in range(n):
                blocks.append(block(cin, c, stride if i == 0 else 1))
                cin = c * widen
        self.blocks = nn.Sequential(*blocks)
        self.logits = nn.Linear(cin, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.blocks(self.stem(_nchw(x))).mean(dim=(2, 3)))


class RowLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.h = nn.LSTM(28, 128, batch_first=True)
        # Flax's cell has one gate bias where PyTorch has two: the input one stays zero, out of training
        self.h.bias_ih_l0.requires_grad_(False)
        self.logits = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.h(x.reshape(x.shape[0], 28, 28))
        return self.logits(y[:, -1])


class PositionTable(nn.Module):
    def __init__(self, length: int, features: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(length, features) * 0.02)


class TransformerBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.t_dense = nn.Linear(28, 64)
        self.t = PositionTable(28, 64)
        self.a_layernorm = nn.LayerNorm(64, eps=1e-5)
        self.a = nn.MultiheadAttention(64, 4, batch_first=True)
        self.m_layernorm = nn.LayerNorm(64, eps=1e-5)
        self.m_dense = nn.Linear(64, 128)
        self.m = nn.Linear(128, 64)
        self.logits = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.t_dense(x.reshape(x.shape[0], 28, 28)) + self.t.embedding
        q = self.a_layernorm(t)
        h = t + self.a(q, q, q, need_weights=False)[0]
        z = h + self.m(nn.functional.gelu(self.m_dense(self.m_layernorm(h))))
        return self.logits(z.mean(dim=1))


MODELS = {
    "mlp": MLP,
    "convnet": ConvNet,
    "lenet5": LeNet5,
    "resnet": SmallResNet,
    "lstm": RowLSTM,
    "transformer": TransformerBlock,
}


def _converted(name: str, module: nn.Module, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One submodule's PyTorch tensors from specc's (Flax-layout) arrays `p` (keys relative to the node)."""
    if isinstance(module, nn.Linear):
        return {"weight": p["kernel"].T, "bias": p["bias"]}
    if isinstance(module, nn.Conv2d):
        out = {"weight": p["kernel"].transpose(3, 2, 0, 1)}  # HWIO → OIHW
        return out | ({"bias": p["bias"]} if "bias" in p else {})
    if isinstance(module, nn.BatchNorm2d):
        return {"weight": p["scale"], "bias": p["bias"], "running_mean": p["mean"], "running_var": p["var"]}
    if isinstance(module, nn.LayerNorm):
        return {"weight": p["scale"], "bias": p["bias"]}
    if isinstance(module, nn.LSTM):  # Flax's OptimizedLSTMCell: gates i, f, g, o, as PyTorch's
        return {
            "weight_ih_l0": p["cell/dense_i/kernel"].T,
            "weight_hh_l0": p["cell/dense_h/kernel"].T,
            "bias_hh_l0": p["cell/dense_h/bias"],
            "bias_ih_l0": np.zeros_like(p["cell/dense_h/bias"]),
        }
    if isinstance(module, nn.MultiheadAttention):  # LinearGeneral kernels [F, heads, head] → [heads·head, F]
        f = module.embed_dim
        proj = [p[f"{k}/kernel"].reshape(f, -1).T for k in ("query", "key", "value")]
        return {
            "in_proj_weight": np.concatenate(proj),
            "in_proj_bias": np.concatenate([p[f"{k}/bias"].reshape(-1) for k in ("query", "key", "value")]),
            "out_proj.weight": p["out/kernel"].reshape(-1, f).T,
            "out_proj.bias": p["out/bias"],
        }
    if isinstance(module, PositionTable):
        return {"embedding": p["embedding"]}
    raise TypeError(f"{name}: no conversion for {type(module).__name__}")


def load_params(model: nn.Module, init: dict[str, np.ndarray]) -> None:
    """Set every parameter and buffer of `model` from specc's initial parameters (`init`: "node/…/name" → array);
    every tensor must receive a value of its shape."""
    state: dict[str, torch.Tensor] = {}
    for name, module in model.named_children():
        prefix = name + "/"
        mine = {k[len(prefix) :]: v for k, v in init.items() if k.startswith(prefix)}
        for k, v in _converted(name, module, mine).items():
            state[f"{name}.{k}"] = torch.from_numpy(np.array(v, np.float32, order="C"))  # a writable copy
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"{type(model).__name__}: no value from the spec for {', '.join(missing)}")
    for k, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[k].shape):
            raise ValueError(
                f"{type(model).__name__}.{k}: shape {tuple(own[k].shape)}, converted {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=False)


def param_count(model: nn.Module) -> int:
    """Trainable parameters (the LSTM's second, frozen bias left out)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
