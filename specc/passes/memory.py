"""Memory: what training a checked graph needs (parameters, gradients, optimizer state, activations), estimated
from the IR alone, so that `specc train` can refuse a model that cannot fit before JAX allocates anything."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..ir.dims import Dim
from ..ir.graph import Graph, Node
from .count import batch_symbols

# Bytes per element as the trainer stores them: JAX runs in 32-bit mode, so 64-bit types are held as 32-bit ones.
_ITEMSIZE: Mapping[str, int] = {
    "f32": 4,
    "f16": 2,
    "bf16": 2,
    "f64": 4,
    "i32": 4,
    "i64": 4,
    "u8": 1,
    "bool": 1,
}
_PARAM_BYTES = 4  # parameters are f32


def optimizer_slots(name: str, args: Mapping[str, Any] | None = None) -> int:
    """How many parameter-sized buffers the Optax state of optimizer `name` holds (adam: m and v, so 2)."""
    args = args or {}
    if name == "sgd":
        return 1 if args.get("momentum") else 0
    if name == "rmsprop":
        return 1 + bool(args.get("centered")) + bool(args.get("momentum"))
    if name in ("adagrad", "lion"):
        return 1
    return 2  # adam, adamw, nadam, lamb, adadelta: two moments (or accumulators)


@dataclass(frozen=True)
class NodeMemory:
    """One node's share: its parameters and its output for the batch (None while another dim is symbolic)."""

    name: str
    op: str
    params: int
    param_bytes: int
    output_bytes: int | None


@dataclass(frozen=True)
class MemoryEstimate:
    """What one training step holds in memory, in bytes.

    Args:
        parameters: the trainable parameters (f32).
        gradients: one gradient per parameter.
        optimizer_state: `slots` parameter-sized buffers of the optimizer.
        model_state: non-trainable state (batch-norm statistics).
        activations: every node's output for a batch of `batch` examples, kept for the backward pass.
        largest_activation: the largest single node output among them.
        batch: the batch size the activations are counted for.
        optimizer: the optimizer's name; slots: its buffers per parameter.
        nodes: per node, in graph order.
        unknown: nodes whose output size still has a symbol other than the batch (not counted: the total is then
            a lower bound).
    """

    parameters: int
    gradients: int
    optimizer_state: int
    model_state: int
    activations: int
    largest_activation: int
    batch: int
    optimizer: str
    slots: int
    nodes: tuple[NodeMemory, ...]
    unknown: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.model_state + self.activations

    @property
    def minimum(self) -> int:
        """What no schedule of the step can avoid: parameters, gradients, optimizer and model state, and the
        largest activation with its gradient (XLA may fuse or recompute the other activations)."""
        fixed = self.parameters + self.gradients + self.optimizer_state + self.model_state
        return fixed + 2 * self.largest_activation

    def breakdown(self) -> tuple[tuple[str, int], ...]:
        """The non-zero parts, largest first: ("parameters", bytes), ("optimizer state", bytes), ..."""
        parts = (
            ("parameters", self.parameters),
            ("gradients", self.gradients),
            (f"{self.optimizer} state", self.optimizer_state),
            ("batch statistics", self.model_state),
            (f"activations for a batch of {self.batch}", self.activations),
        )
        return tuple(sorted(((k, v) for k, v in parts if v), key=lambda kv: -kv[1]))

    def largest_layer(self) -> NodeMemory | None:
        """The node with the most parameters, or None for a model without any."""
        with_params = [n for n in self.nodes if n.params]
        return max(with_params, key=lambda n: n.params) if with_params else None

    def describe(self) -> str:
        """`about 12.0 GB (4.0 GB parameters, 4.0 GB gradients, 8.0 GB adam state)`."""
        parts = ", ".join(f"{format_bytes(v)} {k}" for k, v in self.breakdown())
        return f"about {format_bytes(self.total)}" + (f" ({parts})" if parts else "")


def format_bytes(n: int) -> str:
    """Decimal units, as memory is sold: 12.0 GB, 350.2 MB, 12 KB."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{round(n / 1000)} KB" if n >= 1000 else f"{n} bytes"


def _output_bytes(node: Node, env: Mapping[str, Dim | int]) -> int | None:
    total = 0
    for t in node.outputs:
        n = _ITEMSIZE.get(t.dtype, 4)
        for d in t.dims:
            v = d.subst(env).as_int()
            if v is None:
                return None
            n *= max(v, 0)
        total += n
    return total


def estimate_memory(
    graph: Graph,
    batch: int,
    optimizer: str = "adam",
    optimizer_args: Mapping[str, Any] | None = None,
    bind: Mapping[str, int] | None = None,
) -> MemoryEstimate:
    """Estimate the memory of training `graph` on batches of `batch` examples with `optimizer`.

    A lower bound in spirit: XLA may fuse away some activations but also needs workspace; the figure is meant to
    catch models that are off by a large factor, not to predict the peak to the byte. `bind` gives values to
    symbols other than the batch (a sequence length); outputs that still depend on one are left out and named
    in `unknown`. Imports nothing from JAX.
    """
    env: dict[str, Dim | int] = {s: batch for s in batch_symbols(graph)}
    env.update(bind or {})
    slots = optimizer_slots(optimizer, optimizer_args)
    rows: list[NodeMemory] = []
    unknown: list[str] = []
    activations = largest = 0
    for node in graph.nodes:
        out: int | None = 0
        # A parameter or constant node's output is its tensor itself, already counted as a parameter.
        if node.op not in ("param", "const"):
            out = _output_bytes(node, env)
            if out is None:
                unknown.append(node.name)
            else:
                activations += out
                largest = max(largest, out)
        rows.append(NodeMemory(node.name, node.op, node.param_count, node.param_count * _PARAM_BYTES, out))
    params = graph.total_params * _PARAM_BYTES
    return MemoryEstimate(
        parameters=params,
        gradients=params,
        optimizer_state=slots * params,
        model_state=graph.total_state * 4,
        activations=activations,
        largest_activation=largest,
        batch=batch,
        optimizer=optimizer,
        slots=slots,
        nodes=tuple(rows),
        unknown=tuple(unknown),
    )


def available_memory() -> tuple[int, str] | None:
    """(bytes, where) for the memory training can use, or None when it cannot be told.

    The first accelerator's free memory when JAX is already imported and reports it (`memory_stats()`; JAX is
    never imported here), else the host's MemAvailable from /proc/meminfo, else its physical memory.
    """
    jax = sys.modules.get("jax")
    if jax is not None:
        try:
            device = jax.local_devices()[0]
            stats = device.memory_stats() if device.platform != "cpu" else None
        except Exception:  # a backend that cannot report is no reason to stop training
            stats = None
        if stats and stats.get("bytes_limit"):
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return free, f"the {device.platform.upper()} ({device.device_kind}) has"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "this machine has"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine has"
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    graph: Graph,
    batch: int,
    optimizer_name: str,
    available_bytes: int | None = None,
    *,
    optimizer_args: Mapping[str, Any] | None = None,
    bind: Mapping[str, int] | None = None,
) -> None:
    """Raise a "resource error" SpecError when training `graph` cannot fit in memory; else return.

    It refuses only when `MemoryEstimate.minimum` exceeds the memory, so a model that XLA could still fit by
    fusing activations is never refused; the message states the full estimate. `available_bytes` defaults to `available_memory()` (nothing is checked when that cannot be told). The error
    is located at the node with the most parameters (the node with the largest output when no node has any) and
    its hint names that layer. With data parallelism pass the per-device batch and one device's memory.
    """
    est = estimate_memory(graph, batch, optimizer_name, optimizer_args, bind)
    where = "this machine has"
    if available_bytes is None:
        found = available_memory()
        if found is None:
            return
        available_bytes, where = found
    if est.minimum <= available_bytes:
        return
    message = f"training this model needs {est.describe()}; {where} {format_bytes(max(available_bytes, 0))} available"
    largest = est.largest_layer()
    hints: list[str] = []
    node: Node | None = None
    if largest is not None:
        node = graph.nodes[est.nodes.index(largest)]
        hints.append(
            f"the largest layer is '{largest.name}' ({largest.op}, {largest.params:,} parameters, "
            f"{format_bytes(largest.param_bytes)}); make it smaller"
        )
    elif graph.nodes:
        node = graph.nodes[max(range(len(est.nodes)), key=lambda i: est.nodes[i].output_bytes or 0)]
    if est.activations > est.parameters:
        hints.append(f"lower the batch size ({batch}): activations take {format_bytes(est.activations)}")
    elif est.slots:
        hints.append(f"use an optimizer with less state than {optimizer_name} (sgd keeps none)")
    span = node.span if node is not None else graph.span
    raise SpecError.one("resource error", message, span, "; or ".join(hints) or "make the model smaller")
