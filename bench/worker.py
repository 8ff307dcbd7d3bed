"""One contender training one model in its own process: `python -m bench.worker CONTENDER MODEL ...` writes a
JSON record (epoch times, first epoch, peak RSS, final validation accuracy, threads). CONTENDER "init" writes
specc's initial parameters (the same jitted initialisation as `specc train`) for the other two to load."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .models import BATCH, LR, MODELS, MOMENTUM, SEED, epoch_batches, load_splits


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _xla_threads() -> str:
    flags = os.environ.get("XLA_FLAGS", "")
    return f"XLA:CPU intra-op pool = {os.cpu_count()} cores (default)" + (
        f", XLA_FLAGS={flags}" if flags else ""
    )


def _spec_graph(model: str) -> tuple[Any, Any]:
    import specc

    spec = specc.load(MODELS[model].spec)
    return spec, spec.graph()


def run_init(model: str, out: Path, data: str) -> dict[str, Any]:
    """specc's initial parameters and batch statistics (flattened "node/…/name" → array) into `out`, and the
    loss of the first validation batch under them (the other contenders must find the same)."""
    import jax
    import numpy as np
    from flax import nnx

    from specc.backend.flax import build_module

    _, graph = _spec_graph(model)
    # the loop's own initialisation (specc/train/loop.py): one jitted program from the seed
    m = nnx.eval_shape(lambda: build_module(graph, seed=SEED))
    nnx.update(m, jax.jit(lambda: nnx.state(build_module(graph, seed=SEED)))())
    flat = {}
    for path, var in nnx.to_flat_state(nnx.state(m, nnx.Any(nnx.Param, nnx.BatchStat))):
        assert path[0] == "layers"
        flat["/".join(str(p) for p in path[1:])] = np.asarray(var.get_value())
    np.savez(out, **flat)  # type: ignore[arg-type]  # numpy's stub types **kwds as the allow_pickle flag
    params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(m, nnx.Param)))
    # the spec's module in eval mode, as the other contenders compute theirs
    return {"params": params, "initial_val_loss": _flax_val_loss(m, load_splits(data).val, graph)}


def run_specc(model: str, epochs: int, data: str, workdir: Path) -> dict[str, Any]:
    """`specc train`'s trainer in-process, quiet: the compilation cache, the config checked from the spec with the
    suite's settings as `--set` overrides, `train_and_evaluate` with its own batches, run folder and evaluation."""
    from specc.malloc import huge_pages_on
    from specc.train.compile_cache import enable_compile_cache
    from specc.train.execution import split_for
    from specc.train.loop import frozen_heap, train_and_evaluate
    from specc.train.spec import build_config

    cache = enable_compile_cache()
    spec, graph = _spec_graph(model)
    split = split_for(graph, BATCH)  # as `specc train` does, before JAX's first operation
    sets = [
        f"epochs={epochs}",
        f"batch={BATCH}",
        f"optimizer=sgd(lr={LR}, momentum={MOMENTUM})",
        f"seed={SEED}",
    ]
    config = build_config(spec, graph, sets)
    splits = load_splits(data)
    first_step: list[float] = []
    start = time.perf_counter()
    with frozen_heap():  # as `specc train` trains
        result = train_and_evaluate(
            config,
            workdir / "run",
            verbose=False,
            graph=graph,
            splits=splits,
            callbacks=[lambda step: first_step.append(time.perf_counter()) if step == 1 else None],
        )
    times = [h["time"] for h in result.history]
    # set-up and compilation until the first step was dispatched, then the first epoch as the loop timed it
    first = first_step[0] - start + times[0]
    return {
        "epochs": times,
        "first_epoch": first,
        "val_accuracy": result.history[-1].get("val_accuracy"),
        "threads": _xla_threads()
        + (f", the CPU split into {split} devices (data-parallel)" if split > 1 else "")
        + (", malloc in huge pages (glibc.malloc.hugetlb=1)" if huge_pages_on() else "")
        + f"; compilation cache {'on' if cache else 'off'}",
    }


def run_flax(model: str, epochs: int, data: str, init: dict[str, Any]) -> dict[str, Any]:
    """The loop Flax's performance guide writes: `jax.jit` over the `nnx.split` state of the model and its
    `nnx.Optimizer` (Optax SGD with momentum), merged inside the step, donated; loss and accuracy summed on the
    device and fetched once per epoch."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from .flax_models import MODELS as FLAX
    from .flax_models import load_params, param_count

    splits = load_splits(data)
    start = time.perf_counter()
    net = FLAX[model](nnx.Rngs(SEED))
    load_params(net, init)
    t = time.perf_counter()
    initial = _flax_val_loss(net, splits.val)
    start += time.perf_counter() - t  # the check of the initial parameters is no part of the first epoch
    net.train()
    optimizer = nnx.Optimizer(net, optax.sgd(LR, momentum=MOMENTUM), wrt=nnx.Param)
    graphdef, state = nnx.split((net, optimizer))

    def train_step(state: Any, sums: jax.Array, x: jax.Array, y: jax.Array) -> Any:
        m, opt = nnx.merge(graphdef, state)

        def loss_fn(m: Any) -> Any:
            logits = m(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(m)
        opt.update(m, grads)
        acc = jnp.mean(jnp.argmax(logits, -1) == y)
        return nnx.state((m, opt)), sums + jnp.stack([loss, acc])

    step = jax.jit(train_step, donate_argnums=(0, 1))
    times, first = [], 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        sums = jnp.zeros(2)
        for b in epoch_batches(splits.train, epoch):
            state, sums = step(state, sums, b["x"], b["y"])
        jax.device_get(sums)
        times.append(time.perf_counter() - t0)
        if epoch == 0:
            first = time.perf_counter() - start
    nnx.update((net, optimizer), state)
    return {
        "epochs": times,
        "first_epoch": first,
        "val_accuracy": _flax_accuracy(net, splits.val),
        "initial_val_loss": initial,
        "params": param_count(net),
        "threads": _xla_threads(),
    }


def _flax_logits(net: Any, ds: Any, graph: Any = None) -> Any:
    """Logits over all of `ds` at once, in eval mode; `graph`: net is specc's module, called with the spec's
    inputs by name. One program per model, for the initial check and the final accuracy alike."""
    import jax
    import numpy as np
    from flax import nnx

    net.eval()
    graphdef, state = nnx.split(net)
    net.train()
    key = id(net)
    if key not in _EVAL:
        output = None if graph is None else graph.outputs[0][0]

        def apply(state: Any, x: Any) -> Any:
            m = nnx.merge(graphdef, state)
            return m(x) if output is None else m(x=x)[output]

        _EVAL[key] = jax.jit(apply)
    return np.asarray(_EVAL[key](state, ds.fields["x"]))


_EVAL: dict[int, Any] = {}  # a model's evaluation program, compiled once (the eval graphdef does not change)


def _flax_val_loss(net: Any, ds: Any, graph: Any = None) -> float:
    return _cross_entropy(_flax_logits(net, ds, graph), ds.fields["y"])


def _flax_accuracy(net: Any, ds: Any) -> float:
    return float((_flax_logits(net, ds).argmax(-1) == ds.fields["y"]).mean())


def _cross_entropy(logits: Any, y: Any) -> float:
    import numpy as np

    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def run_torch(model: str, epochs: int, data: str, init: dict[str, Any], threads: int) -> dict[str, Any]:
    """PyTorch eager on the CPU, as its tutorials train: SGD with momentum, CrossEntropyLoss, zero_grad / backward /
    step per batch; loss and accuracy summed as tensors and read once per epoch."""
    import torch

    from .torch_models import MODELS as TORCH
    from .torch_models import load_params, param_count

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    splits = load_splits(data)
    start = time.perf_counter()
    net = TORCH[model]()
    load_params(net, init)
    t = time.perf_counter()
    initial = _cross_entropy(_torch_logits(net, splits.val), splits.val.fields["y"])
    start += time.perf_counter() - t  # the check of the initial parameters is no part of the first epoch
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    times, first = [], 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        net.train()
        sums = torch.zeros(2)
        for b in epoch_batches(splits.train, epoch):
            x, y = torch.from_numpy(b["x"]), torch.from_numpy(b["y"]).long()
            opt.zero_grad(set_to_none=True)
            logits = net(x)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                sums += torch.stack([loss.detach(), (logits.argmax(-1) == y).float().mean()])
        sums.tolist()
        times.append(time.perf_counter() - t0)
        if epoch == 0:
            first = time.perf_counter() - start
    accuracy = float((_torch_logits(net, splits.val).argmax(-1) == splits.val.fields["y"]).mean())
    return {
        "epochs": times,
        "first_epoch": first,
        "val_accuracy": accuracy,
        "initial_val_loss": initial,
        "params": param_count(net),
        "threads": f"torch {torch.get_num_threads()} intra-op / {torch.get_num_interop_threads()} inter-op threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        "version": torch.__version__,
    }


def _torch_logits(net: Any, ds: Any) -> Any:
    import numpy as np
    import torch

    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.array(ds.fields["x"]))).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__.split("\n")[0])
    ap.add_argument("contender", choices=["init", "specc", "flax", "torch"])
    ap.add_argument("model", choices=list(MODELS))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    ap.add_argument("--init", type=Path, required=True, help="specc's initial parameters (.npz)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.contender == "init":
        record = run_init(args.model, args.init, args.data)
    else:
        import numpy as np

        with np.load(args.init) as z:
            init = {k: z[k] for k in z.files}
        if args.contender == "specc":
            with tempfile.TemporaryDirectory() as d:
                record = run_specc(args.model, args.epochs, args.data, Path(d))
        elif args.contender == "flax":
            record = run_flax(args.model, args.epochs, args.data, init)
        else:
            record = run_torch(args.model, args.epochs, args.data, init, args.threads)
    record["peak_rss_mb"] = _peak_rss_mb()
    args.out.write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
