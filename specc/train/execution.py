"""How the trainer feeds its jitted step: one call per batch (`step`), one call per batch with the next batch
prepared and transferred by a background thread (`prefetch`), or one call per chunk of k batches stacked, sent
once and run by a `lax.fori_loop` on the device (`scan`). `choose_execution` picks one by rule (docs/training.md)."""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from ..backend.reroll import LOOP_SLOW_CPU_OPS

EXEC_MODES = ("auto", "step", "prefetch", "scan")

# XLA:CPU reaches about 10 GFLOP/s per core on these models' steps (measured: the lecture convnet's 36 ms step at
# batch 100 on 2 cores); a guess of the step's length is all the rule needs.
CPU_FLOPS_PER_CORE = 1e10
# A scan chunk long enough that its dispatch and the fetch after it vanish, short enough for a live progress bar.
CHUNK_S = 0.3
# Scan only steps guessed shorter than this: there a call's dispatch and fetch are a large part of the step (the
# digits MLP's epoch 0.17x step's). Longer steps gain little (convnet 0.89x, transformer 0.87x, LSTM 0.96x) and
# XLA:CPU can run a step much slower inside a device loop: a small ResNet (conv + batch norm) took 8.1x as long.
SCAN_MAX_STEP_S = 0.02
# Convolutions and windowed pooling run slower inside XLA:CPU's device loop whatever the step's length (LeNet-5,
# ~6 ms steps: 7.5 s an epoch scanned, 2.9 s stepped): such models are stepped on the CPU (LOOP_SLOW_CPU_OPS).
# The stacked chunk (and its double buffer) stays small next to the data set and the model.
CHUNK_BYTES = 64 << 20
# XLA:CPU runs a convolution's gradients on little more than one core, however many it has; split into k devices
# that each take 1/k of the batch (data-parallel, as on k GPUs) the CPU keeps every core busy. One jitted train
# step, batch 100, 2 cores, median ms, one device → the CPU split in 2: lecture convnet 38 → 30, LeNet-5 22.5 →
# 18.9, small ResNet 460 → 164; the MLP (3.2 → 3.2) and the LSTM (28 → 36) gain nothing or lose, the transformer
# ties (17.6 → 15.5). So only models with a convolution or windowed pooling split, when a step is long enough to
# pay for the gradients' all-reduce. (The convnet's one-device figure was taken with a max-pool form since deleted;
# with today's, `specc train --devices 1` ties with the split: 0.85-1.09 against 0.77-1.08 s an epoch. LeNet-5,
# which has no max-pool, still gains: 1.01-1.43 → 0.81-1.23 s. 2026-12-02.) More than 2 cores was not measured: the split stops at SPLIT_MAX devices (two a
# core, ≤ 2 · SPLIT_MAX, for long steps: SPLIT_LONG_STEP_S).
SPLIT_MAX = 4
SPLIT_MIN_STEP_S = 0.005
# A step guessed at >= 100 ms splits into two devices a core: each device runs its program's operations one after
# another, and many of a long step's (a convolution's weight gradient, an all-reduce's wait) leave a core half idle;
# a second device on that core fills it. `specc train` epochs, batch 100, 2 cores, 2 → 4 devices: small ResNet
# (199 ms guessed) 13.0-14.7 → 10.0-11.3 s, the same without batch norm 10.2 → 8.1 s, the lecture convnet at
# batch 400 (161 ms) 2.05-2.08 → 1.68-1.69 s; at batch 200 (80 ms) 1.39 → 1.43 s, and shorter steps lose (the
# convnet at batch 100: 1.36 → 1.62 s, LeNet-5 16.6-18.1 → 20.2-21.8 ms a step): the extra all-reduces cost more
# than they fill. 5 or 10 devices gave the ResNet no more than 4 (10.2-11.2 s).
SPLIT_LONG_STEP_S = 0.1
SPLIT_MIN_EXAMPLES = 8  # each device's share of the batch
# A run whose steps are guessed to take this long or less in all (every epoch's) compiles its train and evaluation
# steps as initialisers are, for a short run: XLA:CPU's loop emitters without LLVM's optimisations (`compiler_
# options(once=True)`). For a lecture's small models XLA's compilation is most of the run: with a cold cache, the
# train step's compilation (tracing included) default → short-run options, and the epochs after it: MLP 1.07 → 0.41 s,
# 0.00-0.03 s both; the digits MLP (the README's, 30 epochs) 1.40 → 0.58 s, 0.01 → 0.02 s an epoch (whole process
# 6.5 → 5.2 s); a GAN on digits 3.31 → 1.62 s, 0.02 → 0.05 s; a VAE 2.54 → 0.80 s, 0.01 → 0.03 s (2 cores, loaded).
# The steps run 2-3× slower, so longer runs keep the usual options; the guess is FLOPs at CPU_FLOPS_PER_CORE.
SHORT_RUN_S = 0.5


@dataclass(frozen=True)
class Execution:
    """The chosen strategy: `mode` ("step", "prefetch" or "scan"), `chunk` batches per device call (1 unless
    scan), and why, for the start banner."""

    mode: str
    chunk: int
    why: str
    step_s: float | None = None  # the guess of one step's length (None: unknown)
    short_run: bool = False  # compiled for a short run (SHORT_RUN_S)

    def describe(self) -> str:
        short = "; compiled for a short run (XLA's quick options)" if self.short_run else ""
        if self.mode == "scan":
            return f"execution: scan, {self.chunk} batches a call ({self.why}){short}"
        return f"execution: {self.mode}, one batch a call ({self.why}){short}"

    def for_run(self, steps: int) -> Execution:
        """This plan for a run of `steps` train steps: marked short when they are guessed at SHORT_RUN_S or less."""
        return replace(self, short_run=self.step_s is not None and self.step_s * steps <= SHORT_RUN_S)


def step_seconds(flops_per_example: int | None, batch: int, platform: str) -> float | None:
    """A guess of one train step's length (forward and backward ≈ 3 × forward), None when unknown."""
    if flops_per_example is None or platform != "cpu":
        return None
    return _cpu_step_guess(flops_per_example, batch, cores())


def _cpu_step_guess(flops_per_example: int, batch: int, n_cores: int) -> float:
    return 3.0 * flops_per_example * batch / (CPU_FLOPS_PER_CORE * n_cores)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_split(ops: frozenset[str], flops_per_example: int | None, batch: int, n_cores: int) -> int:
    """How many devices to split the CPU into for a model with these op names: 1 unless it has a convolution or
    windowed pooling (LOOP_SLOW_CPU_OPS), a step guessed at ≥ 5 ms (unknown counts as long) and several cores;
    then the most devices ≤ min(cores, SPLIT_MAX) that divide the batch into shares of ≥ 8 examples; two a core
    (≤ 2 · SPLIT_MAX) for a step guessed at ≥ 100 ms."""
    if n_cores < 2 or not ops & LOOP_SLOW_CPU_OPS:
        return 1
    guess = None if flops_per_example is None else _cpu_step_guess(flops_per_example, batch, n_cores)
    if guess is not None and guess < SPLIT_MIN_STEP_S:
        return 1
    per_core = 2 if guess is not None and guess >= SPLIT_LONG_STEP_S else 1
    fits = [
        k
        for k in range(2, per_core * min(n_cores, SPLIT_MAX) + 1)
        if batch % k == 0 and batch // k >= SPLIT_MIN_EXAMPLES
    ]
    return max(fits, default=1)


def flops_per_example(
    graph: Any, batch: int, shapes: Mapping[str, Sequence[int]] | None = None
) -> int | None:
    """The graph's forward FLOPs for one example, its batch symbol bound to `batch` and its inputs' other
    symbols (sequence lengths) to `shapes` (input name → an example batch's shape); None while any is unbound."""
    env = {}
    for name, nid in graph.inputs:
        for axis, d in enumerate(graph.nodes[nid].type.dims):
            if (sym := d.as_symbol()) is not None:
                if axis == 0:
                    env[sym] = batch
                elif shapes is not None and name in shapes:
                    env[sym] = int(shapes[name][axis])
    flops = graph.total_flops.subst(env).as_int()
    return int(flops) // batch if flops is not None else None


def split_for(graph: Any, batch: int, devices: int | None = None) -> int:
    """Split the CPU for training `graph` (cpu_split's rule), or into the `devices` the user asked for
    (`--devices N`: on a machine whose JAX platform is a GPU or TPU the CPU's split goes unused); call it before
    JAX's first operation. Returns the CPU devices made (1: none)."""
    if devices is not None:
        return split_cpu(devices, asked=True)
    return split_cpu(wanted_split(graph, batch))


def wanted_split(graph: Any, batch: int) -> int:
    """The CPU devices cpu_split's rule wants for training `graph` at `batch` on this machine's cores."""
    return cpu_split(frozenset(n.op for n in graph.nodes), flops_per_example(graph, batch), batch, cores())


_split: list[tuple[int, bool]] = []  # the split this process made (split_cpu) and if asked, for the banner


def split_cpu(k: int, asked: bool = False) -> int:
    """Give JAX k CPU devices (`jax_num_cpu_devices`); possible only before its first operation. Returns the
    devices the CPU now has from this call: 1 when k ≤ 1, JAX already runs, or the user chose the count
    (XLA_FLAGS' --xla_force_host_platform_device_count, JAX_NUM_CPU_DEVICES), which is kept. `asked`: the
    user's `--devices`, not specc's rule."""
    if k <= 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 1
    if os.environ.get("JAX_NUM_CPU_DEVICES"):
        return 1
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", k)
    except RuntimeError:  # backends are initialised: this process keeps its devices
        return 1
    except AttributeError:  # a JAX without the option: one CPU device
        return 1
    _split[:] = [(k, asked)]
    return k


def split_made() -> tuple[int, bool]:
    """The devices split_cpu gave the CPU in this process (1: none), and whether the user's `--devices` asked
    for them (split_cpu's `asked`) rather than specc's rule."""
    return _split[0] if _split else (1, False)


def choose_execution(
    requested: str,
    *,
    flops_per_example: int | None,
    batch: int,
    batch_bytes: int,
    steps_per_epoch: int,
    devices: int,
    processes: int,
    platform: str,
    ops: frozenset[str] = frozenset(),
) -> Execution:
    """The rule: several processes → step; several devices → prefetch (batches are sharded per call); one
    device → scan over chunks of about 0.3 s by the FLOP count (the whole epoch when it is shorter; on GPU/TPU the
    whole epoch), at most 64 MiB of stacked batches, when a step is guessed under 20 ms and, on the CPU, the model
    (its op names: `ops`) has no convolution or windowed pooling; prefetch otherwise. `requested`
    other than "auto" is obeyed where it can run (scan and prefetch need one process; scan one device)."""
    guess = step_seconds(flops_per_example, batch, platform)
    by_memory = max(1, CHUNK_BYTES // max(batch_bytes, 1))
    by_time = steps_per_epoch if guess is None or guess <= 0 else max(1, math.ceil(CHUNK_S / guess))
    chunk = max(1, min(steps_per_epoch, by_time, by_memory))
    if requested == "step":
        return Execution("step", 1, "--exec step", guess)
    if processes > 1:
        return Execution("step", 1, "several processes", guess)
    if requested == "prefetch":
        return Execution("prefetch", 1, "--exec prefetch", guess)
    if requested == "scan":
        if devices > 1:
            return Execution("prefetch", 1, "--exec scan runs on one device; several are used", guess)
        return Execution("scan", chunk, "--exec scan", guess)
    if devices > 1:
        return Execution("prefetch", 1, "several devices", guess)
    shown = f"a step of ~{guess * 1e3:.2g} ms" if guess is not None else f"on {platform}"
    if platform == "cpu" and (slow := sorted(ops & LOOP_SLOW_CPU_OPS)):
        return Execution("prefetch", 1, f"{slow[0]} runs slower in a device loop on the CPU", guess)
    if chunk >= 2 and (guess is None or guess <= SCAN_MAX_STEP_S):
        return Execution("scan", chunk, shown, guess)
    return Execution("prefetch", 1, shown, guess)


def stack_chunk(batches: Sequence[Mapping[str, np.ndarray]], size: int) -> dict[str, np.ndarray]:
    """k host batches as one array per field, [size, batch, ...]; missing batches (the epoch's end) are zeros
    that the device loop never reads."""
    out = {}
    for k, first in batches[0].items():
        a = np.zeros((size, *first.shape), first.dtype)
        for i, b in enumerate(batches):
            a[i] = b[k]
        out[k] = a
    return out


def make_chunk_step(train_step: Callable[..., Any], n_stats: int) -> Callable[..., Any]:
    """`train_step` (state, batch) → (state, row) run over the first `count` batches of a stacked chunk on the
    device: (state, chunk, count) → (state, rows [size, n_stats + 1]: each step's counted losses and metrics, and 1
    where the step counted)."""
    import jax
    import jax.numpy as jnp

    def chunk_step(state: Any, chunk: Mapping[str, Any], count: Any) -> tuple[Any, Any]:
        size = next(iter(chunk.values())).shape[0]

        def body(i: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
            state, rows = carry
            b = {k: jax.lax.dynamic_index_in_dim(v, i, keepdims=False) for k, v in chunk.items()}
            state, row = train_step(state, b)
            return state, jax.lax.dynamic_update_index_in_dim(rows, row, i, 0)

        rows = jnp.zeros((size, n_stats + 1), jnp.float32)
        return jax.lax.fori_loop(0, count, body, (state, rows))

    return chunk_step


T = TypeVar("T")


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """`items`, produced by a background thread up to `depth` ahead (the next batch is gathered and sent to the
    device while the current step runs). An error in the thread is raised here; closing stops the thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            put(_Failed(e))

    thread = threading.Thread(target=work, name="specc-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            x = q.get()
            if x is _END:
                return
            if isinstance(x, _Failed):
                raise x.error
            yield x
    finally:
        stop.set()
        thread.join()
