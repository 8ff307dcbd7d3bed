"""Where a training epoch's time goes: one jitted train step (batch 100, SGD momentum) of specc's lowered module,
of the hand-written Flax model and of the PyTorch model, timed in one process, interleaved, min and median of N
calls — the compiled programs against each other, without either loop, data pipeline or process start. specc's
step runs as `specc train` runs it: a model it splits the CPU for is timed data-parallel over those devices.

    .venv/bin/python -m bench.step_time [--models lstm,transformer] [--calls 30]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .models import BATCH, LR, MODELS, MOMENTUM, SEED, epoch_batches, load_splits, mnist_present


def _jax_step(
    net: Any, call: Callable[[Any, Any], Any], options: dict[str, Any] | None = None, split: int = 1
) -> Callable[[Any, Any], Any]:
    """A donated jitted SGD step over `net` (any NNX module) with `call(module, x)` giving the logits, compiled with
    XLA `options` (specc's train step passes `compiler_options` of the model's ops: a profile taken without them
    times another program — for conv models, other emitters). `split` > 1: data-parallel over that many CPU
    devices, the state replicated and the batch split, as `specc train` runs a model it splits the CPU for."""
    import jax
    import numpy as np
    import optax
    from flax import nnx
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    net.train()
    optimizer = nnx.Optimizer(net, optax.sgd(LR, momentum=MOMENTUM), wrt=nnx.Param)
    graphdef, state = nnx.split((net, optimizer))
    place: Callable[[Any], Any] = lambda a: a  # noqa: E731
    kw: dict[str, Any] = {}
    if split > 1:
        mesh = Mesh(np.array(jax.devices()[:split]), ("batch",))
        replicated = NamedSharding(mesh, PartitionSpec())
        state = jax.device_put(state, replicated)
        kw["out_shardings"] = replicated
        place = functools.partial(jax.device_put, device=NamedSharding(mesh, PartitionSpec("batch")))

    def step(state: Any, x: Any, y: Any) -> Any:
        m, opt = nnx.merge(graphdef, state)

        def loss_fn(m: Any) -> Any:
            return optax.softmax_cross_entropy_with_integer_labels(call(m, x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return nnx.state((m, opt)), loss

    jitted = jax.jit(step, donate_argnums=0, compiler_options=options, **kw)
    box = [state]

    from specc.backend.flax import data_shards

    def run(x: Any, y: Any) -> None:
        with data_shards(split):  # its first call traces it, as the train loop traces its step
            box[0], loss = jitted(box[0], place(x), place(y))
        loss.block_until_ready()

    def hlo(x: Any, y: Any) -> str:
        """The optimized HLO of the program `run` calls (compiled again: the names match its profile's)."""
        with data_shards(split):
            return str(jitted.lower(box[0], place(x), place(y)).compile().as_text())

    run.hlo = hlo  # type: ignore[attr-defined]
    return run


def _spec_logits(m: Any, x: Any, output: str) -> Any:
    return m(x=x)[output]


def _torch_step(model: str, init: dict[str, Any]) -> Callable[[Any, Any], None] | None:
    try:
        import torch
    except ImportError:
        return None
    from .torch_models import MODELS as TORCH
    from .torch_models import load_params

    torch.set_num_threads(os.cpu_count() or 1)
    net = TORCH[model]()
    load_params(net, init)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(x: Any, y: Any) -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y).long())
        loss.backward()
        opt.step()

    return run


def prepare(models: list[str]) -> tuple[dict[str, Any], dict[str, int], tuple[Any, Any]]:
    """The models' graphs, the CPU devices each one's step runs on as `specc train` splits the CPU for it (the
    devices are made once, before JAX's first operation, for the model that wants the most), and one batch."""
    import numpy as np

    import specc
    from specc.train.execution import split_cpu, wanted_split

    graphs = {name: specc.load(MODELS[name].spec).graph() for name in models}
    wanted = {name: wanted_split(g, BATCH) for name, g in graphs.items()}
    made = split_cpu(max(wanted.values()))
    data = load_splits("mnist" if mnist_present() else "digits")
    b = next(iter(epoch_batches(data.train, 0)))
    batch = np.ascontiguousarray(b["x"]), np.ascontiguousarray(b["y"])
    return graphs, {name: min(k, made) for name, k in wanted.items()}, batch


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from flax import nnx

    from specc.backend.flax import build_module, graph_compiler_options

    from .flax_models import MODELS as FLAX
    from .flax_models import load_params

    ap = argparse.ArgumentParser(prog="python -m bench.step_time", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args(argv)
    graphs, splits, (x, y) = prepare(args.models.split(","))
    print(
        f"one train step, batch {BATCH}, ms: min / median of {args.calls} interleaved calls "
        "(CPU: the process's CPU time a call, median; it counts every thread, waiting ones that spin too)"
    )
    for name, graph in graphs.items():
        split = splits[name]
        module = build_module(graph, seed=SEED)
        options = graph_compiler_options(graph)  # as `specc train` compiles its step
        output = graph.outputs[0][0]
        init = {
            "/".join(str(p) for p in path[1:]): np.asarray(v.get_value())
            for path, v in nnx.to_flat_state(nnx.state(module, nnx.Any(nnx.Param, nnx.BatchStat)))
        }
        hand = FLAX[name](nnx.Rngs(SEED))
        load_params(hand, init)
        # specc's step as `specc train` runs it: on the devices it splits the CPU into for this model (a module
        # lowered in a process of several devices takes the split's forms, so no one-device row beside it)
        label = "specc module" if split == 1 else f"specc, {split} devices"
        logits = functools.partial(_spec_logits, output=output)
        steps = {
            label: _jax_step(module, logits, options, split),
            "Flax NNX": _jax_step(hand, lambda m, x: m(x)),
        }
        torch_step = _torch_step(name, init)
        if torch_step is not None:
            steps["PyTorch"] = torch_step
        times: dict[str, list[float]] = {k: [] for k in steps}
        cpu: dict[str, list[float]] = {k: [] for k in steps}
        for run in steps.values():  # compile / warm up
            run(x, y)
        for _ in range(args.calls):
            for k, run in steps.items():
                t, c = time.perf_counter(), time.process_time()
                run(x, y)
                times[k].append(1e3 * (time.perf_counter() - t))
                cpu[k].append(1e3 * (time.process_time() - c))
        cells = "  ".join(
            f"{k} {min(v):6.1f} / {statistics.median(v):6.1f} (CPU {statistics.median(cpu[k]):6.1f})"
            for k, v in times.items()
        )
        print(f"{name:<12} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
