"""The lecture zoo's ImageNet-sized ResNets (specs/resnet18.net, specs/resnet50.net: 224×224×3 → 1,000 classes)
against PyTorch: one SGD-momentum train step of specc's lowered module, run as `specc train` runs it (on the CPU
devices its rule splits the CPU into), and of torchvision's resnet18 or resnet50 written by hand
(bench/torch_models.py), in one process, interleaved, on random images. The suite (`python -m bench`) trains
MNIST-sized models; these are the zoo's.

    .venv/bin/python -m bench.zoo_step [--model resnet18|resnet50] [--batch 16] [--calls 8]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch's threads must not spin while specc's step runs

SPECS = Path(__file__).resolve().parents[1] / "specs"
# the torch_models.ResNet arguments of each spec: bottleneck blocks, blocks a stage
TORCH = {"resnet18": (False, (2, 2, 2, 2)), "resnet50": (True, (3, 4, 6, 3))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.zoo_step", description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(TORCH), default="resnet18")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--calls", type=int, default=8)
    args = ap.parse_args(argv)
    if argv is None:  # the process `specc train` would be: glibc's huge-page tunable (specc/malloc.py)
        from specc.malloc import reexec_tuned

        reexec_tuned(always=True)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare with")
        return 0
    import numpy as np

    import specc
    from specc.train.execution import split_cpu, wanted_split

    graph = specc.load(SPECS / f"{args.model}.net").graph()
    wanted = wanted_split(graph, args.batch)
    devices = min(wanted, split_cpu(wanted))  # before JAX starts, as `specc train` splits the CPU
    from specc.backend.flax import build_module, graph_compiler_options

    from .step_time import _jax_step, _spec_logits
    from .torch_models import ResNet

    torch.set_num_threads(os.cpu_count() or 1)
    net = ResNet(*TORCH[args.model])
    assert sum(p.numel() for p in net.parameters()) == graph.total_params
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 224, 224, 3)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch).astype(np.int32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()

    def torch_step(x: object, y: object) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xt), yt).backward()
        opt.step()

    logits = functools.partial(_spec_logits, output=graph.outputs[0][0])
    start = time.perf_counter()
    specc_step = _jax_step(build_module(graph, seed=0), logits, graph_compiler_options(graph), devices)
    specc_step(x, y)
    print(
        f"{graph.model}, batch {args.batch}: specc built and compiled its step in {time.perf_counter() - start:.1f} s "
        f"({devices} CPU device(s)); {graph.total_params:,} parameters in both"
    )
    torch_step(x, y)
    times: dict[str, list[float]] = {"specc": [], "PyTorch": []}
    for _ in range(args.calls):
        for name, step in (("specc", specc_step), ("PyTorch", torch_step)):
            t = time.perf_counter()
            step(x, y)
            times[name].append(time.perf_counter() - t)
    for name, v in times.items():
        print(f"{name:<8} one step: min {1e3 * min(v):.0f} ms, median {1e3 * statistics.median(v):.0f} ms")
    ratio = statistics.median(times["specc"]) / statistics.median(times["PyTorch"])
    print(f"specc / PyTorch (medians): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
