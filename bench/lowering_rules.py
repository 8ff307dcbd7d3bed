"""Which lowering of an op wins on this machine, per shape: the figures behind the CPU rule table in specc/ops/conv.py.

Times one jitted forward + backward (gradients of sum(op(x) * w) with respect to the input and the parameters) of
every lowering an op holds, whatever its precondition says (export-only forms aside), at batch 100: the conv shapes
of the lecture convnet, LeNet-5 and a small ResNet; pools, tiled and sliced, against reduce_window and against the
reshape + max whose gradient splits ties (the form before the tie fix); conv_transpose as a sub-pixel matmul; batch
norm fused. Lowerings alternate call by call, round by round, so load from other processes falls on all alike;
prints the median per lowering and its ratio to the reference.

    .venv/bin/python bench/lowering_rules.py [--rounds 15] [--only conv|pool|transpose|norm]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import specc
from specc.backend.flax import ApplyContext, BuildContext, compiler_options
from specc.ops._registry import get_op

BATCH = 100

# (case, input [H, W, C], the op call); the figures in docs/benchmarks.md come from these
CONV_CASES = [
    ("convnet c1", (28, 28, 1), "conv(32, 5)"),
    ("convnet c2", (8, 8, 32), "conv(64, 5)"),
    ("lenet c1", (28, 28, 1), "conv(6, 5, padding=2)"),
    ("lenet c3", (14, 14, 6), "conv(16, 5)"),
    ("lenet c5 (5×5 on 5×5)", (5, 5, 16), "conv(120, 5)"),
    ("resnet stem 3×3 1→16", (28, 28, 1), "conv(16, 3, padding=1)"),
    ("resnet 3×3 16→16", (28, 28, 16), "conv(16, 3, padding=1)"),
    ("resnet 3×3 16→32 /2", (28, 28, 16), "conv(32, 3, stride=2, padding=1)"),
    ("resnet 3×3 32→32", (14, 14, 32), "conv(32, 3, padding=1)"),
    ("3×3 64→64 on 7×7", (7, 7, 64), "conv(64, 3, padding=same)"),
    ("5×5 16→32 same", (14, 14, 16), "conv(32, 5, padding=same)"),
    ("cifar stem 3×3 3→32", (32, 32, 3), "conv(32, 3, padding=1)"),
    ("5×5 32→64 on 12×12", (12, 12, 32), "conv(64, 5)"),
    ("5×5 16→32 on 8×8", (8, 8, 16), "conv(32, 5)"),
    ("3×3 32→64 on 6×6", (6, 6, 32), "conv(64, 3)"),
    ("3×3 32→64 on 10×10", (10, 10, 32), "conv(64, 3)"),
]
POOL_CASES = [
    ("convnet p1 maxpool(3)", (24, 24, 32), "maxpool(3)"),
    ("maxpool(2) 28×28×32", (28, 28, 32), "maxpool(2)"),
    ("alexnet-like 3×3 /2", (27, 27, 64), "maxpool(3, stride=2)"),
    ("resnet stem 3×3 /2 pad 1", (32, 32, 16), "maxpool(3, stride=2, padding=1)"),
    ("googlenet 3×3 /1 same", (14, 14, 32), "maxpool(3, stride=1, padding=same)"),
    ("3×3 /2 ceil", (24, 24, 32), "maxpool(3, stride=2, ceil=true)"),
    ("lenet s2 avgpool(2)", (28, 28, 6), "avgpool(2)"),
    ("avgpool 3×3 /2 pad 1", (28, 28, 16), "avgpool(3, stride=2, padding=1)"),
    ("avgpool 3×3 /1 same", (14, 14, 32), "avgpool(3, stride=1, padding=same)"),
]
TRANSPOSE_CASES = [
    ("dcgan 7→14 4×4 /2 64→32", (7, 7, 64), "conv_transpose(32, 4, stride=2, padding=same)"),
    ("dcgan 14→28 4×4 /2 32→1", (14, 14, 32), "conv_transpose(1, 4, stride=2, padding=same)"),
    ("14→28 4×4 /2 32→16", (14, 14, 32), "conv_transpose(16, 4, stride=2, padding=same)"),
    ("7→14 4×4 /2 64→8", (7, 7, 64), "conv_transpose(8, 4, stride=2, padding=same)"),
    ("7→14 3×3 /2 64→32", (7, 7, 64), "conv_transpose(32, 3, stride=2, padding=same)"),
    ("8→16 5×5 /2 64→32", (8, 8, 64), "conv_transpose(32, 5, stride=2, padding=same)"),
    ("unet up 2×2 /2 64→32", (14, 14, 64), "conv_transpose(32, 2, stride=2)"),
    ("cifar 16→32 4×4 /2 64→3", (16, 16, 64), "conv_transpose(3, 4, stride=2, padding=same)"),
    ("3×3 /1 same 32→32", (14, 14, 32), "conv_transpose(32, 3, padding=same)"),
    ("3×3 /1 valid 16→8", (12, 12, 16), "conv_transpose(8, 3)"),
]
NORM_CASES = [
    ("mlp 256", (256,), "batchnorm"),
    ("28×28×16", (28, 28, 16), "batchnorm"),
    ("14×14×32", (14, 14, 32), "batchnorm"),
    ("7×7×64", (7, 7, 64), "batchnorm"),
    ("transformer 28×64", (28, 64), "layernorm"),
    ("mlp 512", (512,), "layernorm"),
    ("128×256", (128, 256), "layernorm"),
]


def one_op(shape: tuple[int, ...], call: str) -> tuple[Any, Any, tuple[Any, ...]]:
    """The op definition, attributes and input types of `x -> call` over [N, *shape]."""
    dims = ", ".join(map(str, shape))
    g = specc.load(
        "bench.net", text=f"model M {{\n input x: f32[N, {dims}]\n y = x -> {call}\n output y\n}}"
    ).graph()
    node = next(n for n in g.nodes if n.op not in ("input", "param", "const"))
    return get_op(node.op), node.attr, tuple(g.type_of(r) for r in node.inputs)


def step(
    op: Any, attrs: Any, types: tuple[Any, ...], apply: Callable[..., Any], x: Any, forward_only: bool = False
) -> tuple[Callable[[], Any], float]:
    """A compiled forward + backward of one lowering (`forward_only`: its forward), ready to call, and the seconds
    its compilation took."""
    build = op.lowerings[0].build
    module = build(attrs, types, BuildContext(nnx.Rngs(0))) if build is not None else nnx.Dict()
    gd, state = nnx.split(module)
    ctx = ApplyContext({})

    def forward(state: Any, x: Any, apply: Callable[..., Any] = apply) -> Any:
        return apply(nnx.merge(gd, state) if build is not None else None, attrs, [x], ctx)

    def loss(state: Any, x: Any, w: Any) -> Any:
        return (forward(state, x) * w).sum()

    y_shape = jax.eval_shape(forward, state, x).shape
    want = jax.eval_shape(lambda s, x: forward(s, x, op.lowerings[0].apply), state, x).shape
    if y_shape != want:  # a form for other shapes (tiled pooling computes other windows where they overlap)
        raise TypeError(f"{y_shape}, not {want}")
    w = jnp.asarray(np.random.default_rng(1).normal(size=y_shape), jnp.float32)
    fn = forward if forward_only else jax.grad(loss, argnums=(0, 1))
    args = (state, x) if forward_only else (state, x, w)
    t = time.perf_counter()
    f = jax.jit(fn).lower(*args).compile(compiler_options=compiler_options([op.name]))
    took = time.perf_counter() - t
    return lambda: jax.block_until_ready(f(*args)), took


def split_ties_max(m: Any, a: Any, xs: list[Any], ctx: Any) -> Any:
    """The tiled max-pool before the tie fix: reshape + max, whose gradient splits a tie among its maxima."""
    x = xs[0]
    k = a["window"]
    if a["stride"] not in (None, k) or a["padding"] != "valid" or a["ceil"]:
        raise TypeError("not a tiling pool")  # run() skips the form for this case
    n, h, w, c = x.shape
    return x.reshape(n, h // k, k, w // k, k, c).max(axis=(2, 4))


def run(
    cases: list[tuple[str, tuple[int, ...], str]],
    rounds: int,
    extra: dict[str, Any],
    only: str | None,
    forward_only: bool = False,
) -> None:
    rng = np.random.default_rng(0)
    for case, shape, call in cases:
        if only and only not in case:
            continue
        op, attrs, types = one_op(shape, call)
        x = jnp.asarray(rng.normal(size=(BATCH, *shape)), jnp.float32)
        forms = {  # the reference and every form that computes the op here
            lw.name: lw.apply
            for i, lw in enumerate(op.lowerings)
            if i == 0 or (lw.applies is not None and lw.applies(attrs, types))
        }
        if op.name in extra:
            forms.update(extra[op.name])
        steps, compiled = {}, {}
        for name, apply in forms.items():
            with contextlib.suppress(TypeError):  # a form for other shapes (dense: a kernel covering the map)
                steps[name], compiled[name] = step(op, attrs, types, apply, x, forward_only)
        for f in steps.values():  # compile and warm
            f()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(rounds):
            for name, f in steps.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        ref = statistics.median(times["reference"])
        cells = []
        for name, ts in times.items():
            med = statistics.median(ts)
            took = f", compiled in {compiled[name]:.2f} s" if forward_only else ""
            cells.append(f"{name} {med * 1e3:7.2f} ms ({med / ref:4.2f}{took})")
        print(f"{case:26s} {call:32s} " + "   ".join(cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", choices=("conv", "pool", "transpose", "norm"))
    ap.add_argument("--cases", help="only the cases whose name contains this")
    ap.add_argument("--forward", action="store_true", help="time the forward alone (evaluation, prediction)")
    args = ap.parse_args()
    what = "forward" if args.forward else "forward + backward"
    print(f"batch {BATCH}; jitted {what}; median of {args.rounds} interleaved rounds (ratio to reference)")
    if args.only in (None, "conv"):
        run(CONV_CASES, args.rounds, {}, args.cases, args.forward)
    if args.only in (None, "pool"):
        old = {} if args.forward else {"maxpool": {"tiled, split ties (old)": split_ties_max}}  # same forward
        run(POOL_CASES, args.rounds, old, args.cases, args.forward)
    if args.only in (None, "transpose"):
        run(TRANSPOSE_CASES, args.rounds, {}, args.cases, args.forward)
    if args.only in (None, "norm"):
        run(NORM_CASES, args.rounds, {}, args.cases, args.forward)


if __name__ == "__main__":
    main()
