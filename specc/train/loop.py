"""The training loop: `train_and_evaluate(config, workdir)` trains a spec's model as its TrainConfig says.

One jitted, pure train step over the model's split state (graphdef static; params, other state, optimizer state,
metric sums and step counters donated), fed batch by batch from host memory; metrics are summed on the device
and fetched every few steps for the progress bar. A non-finite loss freezes the state before that step, so the
offending batch can be re-run outside jit to name the node that first went non-finite. Data-parallel over local
devices: a 1-D mesh over the batch, everything else replicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ..backend import draws
from ..errors import SpecError, UsageError
from ..ir.types import JNP_NAMES
from ..source import Span
from .artifact import data_sizes
from .curves import MISSING, CurvesDrawer, render_curves
from .data import DataError, DataSet, Splits, check_fields, load_data
from .io import import_module, write_atomic
from .losses import term_value, total_loss
from .metrics import metric_value
from .optim import make_optimizer, make_schedule
from .spec import TrainConfig, check_embedding_ids, check_target_range, class_score_pairs, data_error

# A run stopped by a signal exits 128 + its number, as a shell reports one the signal killed: Ctrl-C (SIGINT)
# 130, SIGTERM (`kill PID`, Slurm's or Kubernetes' stop) 143, which their schedulers read as "stopped as asked".
EXIT_OK, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 128 + signal.SIGINT


# A learning rate above this is blamed for a divergence before any node: no optimizer specc offers trains a
# network with it (adam takes ~1e-3, sgd ~0.01-0.1; even sgd on a linear model stays below 10).
LR_TOO_LARGE = 10.0


@dataclass
class Divergence:
    """Where a non-finite loss came from: the global step (0-based), the loss value, and the first node in
    topological order whose output was non-finite on that batch (None if the forward pass was finite).
    `rate`: (objective, learning rate, update index or None for a constant rate) when an update before the step
    had a non-finite rate or one above LR_TOO_LARGE: then the rate is the cause, the node where it showed."""

    step: int
    epoch: int
    loss: float
    node: str | None = None
    op: str | None = None
    span: Span | None = None
    term: str | None = None
    rate: tuple[str, float, int | None] | None = None

    def message(self) -> str:
        head = f"training diverged at step {self.step} (epoch {self.epoch + 1}): the loss is {self.loss}"
        if self.node is not None:
            where = f" at {self.span}" if self.span is not None and self.span.line > 0 else ""
            found = f"the first non-finite value is node '{self.node}' ({self.op}){where}"
        elif self.term is not None:
            found = f"the model's values are finite, the loss term {self.term} is not"
        else:
            found = "the forward pass is finite on that batch (the gradient or the update overflowed)"
        if self.rate is None:
            return f"{head}; {found}"
        objective, lr, update = self.rate
        who = f"objective {objective}'s learning rate" if objective else "the learning rate"
        when = f" at update {update} (from its schedule)" if update is not None else ""
        size = "is not finite" if not math.isfinite(lr) else "is far too large"
        return (
            f"{head}; {who} was {lr:g}{when}, which {size}: the updates blew the weights up ({found})\n"
            "hint: lower the learning rate (adam usually takes about 1e-3, sgd 0.01 to 0.1)"
            + (", or fix the schedule that gives it" if update is not None else "")
        )


@dataclass
class TrainResult:
    """What a run did. status: "done", "early_stop", "interrupted" or "diverged"; history: one dict per epoch."""

    status: str
    history: list[dict[str, float]]
    step: int
    workdir: Path
    params: Any = None
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)
    signum: int = signal.SIGINT  # the signal that interrupted the run (status "interrupted")

    @property
    def exit_code(self) -> int:
        return {"interrupted": 128 + self.signum, "diverged": EXIT_DIVERGED}.get(self.status, EXIT_OK)


class Stopped(KeyboardInterrupt):
    """A second SIGINT or SIGTERM during a run: it stops at once (`specc: interrupted`, then `note`: what it left
    undone), exiting 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.note = ""


# ---- multi-host -----------------------------------------------------------------------------------------------

_DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


def maybe_initialize_distributed() -> bool:
    """Call jax.distributed.initialize when the usual variables name a coordinator (see docs/training.md)."""
    addr = next((os.environ[k] for k in _DISTRIBUTED_ENV if os.environ.get(k)), None)
    if addr is None:
        return False
    # CPU devices of several processes talk over gloo (GPUs use NCCL, TPUs their own interconnect)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    nproc = os.environ.get("JAX_NUM_PROCESSES") or os.environ.get("NUM_PROCESSES")
    pid = os.environ.get("JAX_PROCESS_ID") or os.environ.get("PROCESS_ID")
    jax.distributed.initialize(
        coordinator_address=addr,
        num_processes=int(nproc) if nproc else None,
        process_id=int(pid) if pid else None,
    )
    return True


# ---- the pieces ---------------------------------------------------------------------------------------------


def _stage_graphdefs(
    model: Any, graph: Any, plans: Sequence[Any], run_stages: Sequence[Any], gd_train: Any
) -> list[Any]:
    """Per objective, the train-mode graphdef of its stage, in which what the stage holds still runs in inference
    mode (PyTorch's `.eval()` on a frozen part): every batch norm whose weights no objective of the stage trains
    normalises with its running statistics and keeps them (Keras's frozen BatchNormalization), and every dropout of
    a named instance none of whose weights the stage trains keeps every value (a teacher's soft targets are its
    prediction, not a noisy one). In training mode a frozen body's or a finished teacher's statistics followed the
    new data, although its weights were held bitwise still."""
    from ..backend.flax import layer_keys

    keys = layer_keys(graph)
    out = [gd_train] * len(plans)
    for stage in run_stages:
        trained = frozenset().union(*(plans[i].keys for i in stage.objectives))
        weights: dict[str, set[str]] = {}  # named instance → its layers with weights
        for n in graph.nodes:
            if n.instance and n.params:
                weights.setdefault(n.instance, set()).add(keys[n.id])
        still = {name for name, ks in weights.items() if not ks & trained}
        held = [
            sub
            for key, layer in model.layers.items()
            if key not in trained
            for _, sub in nnx.iter_graph(layer)
            if isinstance(sub, nnx.Module) and hasattr(sub, "use_running_average")
        ]
        quiet = [
            model.layers[keys[n.id]]
            for n in graph.nodes
            if n.op == "dropout" and n.instance in still and keys.get(n.id) in model.layers
        ]
        if not held and not quiet:
            continue
        model.train()
        for sub in held:
            sub.use_running_average = True
        for layer in quiet:
            layer.deterministic = True
        gd = nnx.graphdef(model)
        model.eval()
        for i in stage.objectives:
            out[i] = gd
    return out


def drawn_inputs(graph: Any) -> dict[str, Any]:
    """The inputs the trainer samples (`input z: f32[N, 16] = normal()`): name → their input node."""
    return {name: graph.nodes[nid] for name, nid in graph.inputs if "draw" in graph.nodes[nid].attr}


def load_splits(config: TrainConfig, skip: Sequence[str] = ()) -> Splits:
    """Load the data set, rename fields for the model and check them against its inputs (located errors);
    `skip`: inputs the data need not hold (drawn by the trainer)."""
    call = config.data
    args = list(call.kw.get("*", ()))
    kwargs = {k: v for k, v in call.args if k != "*"}
    base = config.data_base if config.data_base is not None else config.spec_path.parent
    try:
        splits = load_data(call.name, args, kwargs, base_dir=Path(base), seed=config.seed)
        train, val = splits.train, splits.val
        if config.rename:
            mapping = dict(config.rename)
            train = train.rename(mapping)
            val = val.rename(mapping) if val is not None else None
        inputs = {n: (dt, dims) for n, dt, dims in config.inputs if n not in skip}
        check_fields(train, inputs)
        for name in skip:  # `input x: ... = normal()` beside a data field x: the data's x was never read
            if name in train.fields:
                raise DataError(
                    f"input {name} is drawn by the trainer, but the data has a field '{name}', which would never "
                    "be read",
                    hint=f"drop the draw to train on the data's {name}, or give the drawn input a name of its own",
                    field=name,
                )
    except DataError as e:
        raise data_error(config, e) from None
    return Splits(train, val, splits.shuffle, splits.stats, splits.class_names)


def check_label_range(config: TrainConfig, graph: Any, splits: Splits) -> None:
    """Integer class labels must lie in [0, classes) of the scores a loss or metric gives them: JAX's one-hot
    of an out-of-range label is all zeros, so `cross_entropy` trains on it silently (a label 7 for 3 logits gave
    val_accuracy 0 and exit 0). A located data error instead; one score (a binary head's 0/1 or ±1) is left alone."""
    values = graph.value_map
    for scores, labels in class_score_pairs(config):
        if labels is None or scores not in values:
            continue
        width = graph.type_of(values[scores]).dims[-1].as_int()
        if width is None or width < 2:
            continue
        for part, ds in (("training", splits.train), ("validation", splits.val)):
            y = ds.fields.get(labels) if ds is not None else None
            if y is None or y.dtype.kind not in "iu" or y.size == 0:
                continue
            low, high = int(y.min()), int(y.max())
            if low >= 0 and high < width:
                continue
            bad = high if high >= width else low
            hint = (
                f"give '{scores}' {high + 1} scores (the last layer's width), or keep the classes it scores "
                "with the data's classes=[...]"
                if high >= width
                else "class labels count from 0"
            )
            raise data_error(
                config,
                DataError(
                    f"the {part} labels '{labels}' hold {bad}, but '{scores}' scores {width} classes "
                    f"(labels 0 to {width - 1})",
                    hint,
                    field=labels,
                ),
            )
        _check_two_classes(config, splits, scores, labels)


def _check_two_classes(config: TrainConfig, splits: Splits, scores: str, labels: str) -> None:
    """A classifier needs examples of two classes: trained on one (`digits(classes=[3])`) its loss falls to 0 and
    its accuracy is 1 by predicting that class, silently."""
    y = splits.train.fields.get(labels)
    if y is None or y.dtype.kind not in "iu" or y.size == 0 or int(y.min()) != int(y.max()):
        return
    kept = config.data.kw.get("classes")
    one = (
        f"classes={_show(kept)} keeps one class" if isinstance(kept, list | tuple) and len(kept) == 1 else ""
    )
    raise data_error(
        config,
        DataError(
            f"the training labels '{labels}' hold one class only ("
            + (f"{one}, relabelled {int(y.min())}" if one else f"every label is {int(y.min())}")
            + f"), so '{scores}' would learn to name it whatever the input: loss 0, accuracy 1",
            "keep at least two classes, e.g. classes=[3, 8]"
            if one
            else f"give the data examples of at least two classes in '{labels}'",
            field=labels,
        ),
    )


def _show(values: Sequence[object]) -> str:
    return f"[{', '.join(map(str, values))}]"


@dataclass
class _Mesh:
    """Where arrays live: one device (no sharding) or a 1-D mesh over the batch."""

    n: int
    mesh: Any = None
    fsdp: bool = False

    def replicate(self, tree: Any) -> Any:
        return self._put(tree, split=False)

    def settle(self, x: Any) -> None:
        """Wait for `x` (an output of the last program called) where the CPU is split into several devices.

        XLA:CPU (jaxlib 0.10) can deadlock when a program with collectives is called again before the last call
        has started on every device: one device's next call takes its execution slot and waits for that
        device's last call, which waits for the slot, while the other device waits at the last call's
        all-reduce; XLA aborts the process after 40 s (a DCGAN's evaluation, 141 quick calls: 4 runs of 5; 0
        of 6 with this wait). One call in flight at a time avoids it, at the cost of the next call's dispatch no
        longer overlapping the last one's run. The evaluation waits (its calls are quick, so they pile up), and so
        does the train loop: without the wait, LeNet-5 and the lecture convnet at batch 100 on 2 devices, trained
        without the progress bar (whose fetches waited now and then), hung in 4 runs of 4 (2026-12-01; it had
        passed before, and a split-CPU test had failed once in 14 runs); with it, in none."""
        if self.mesh is not None and self.mesh.devices.flat[0].platform == "cpu":
            jax.block_until_ready(x)

    def place(self, state: dict[str, Any]) -> dict[str, Any]:
        """The train state on the devices: parameters and optimizer state split under fsdp, the rest copied."""
        split = {"params", "opt"} if self.fsdp else set()
        return {k: self._put(v, split=k in split) for k, v in state.items()}

    def _sharding(self, x: Any, split: bool) -> Any:
        from jax.sharding import NamedSharding, PartitionSpec

        shape = np.shape(x)
        axes = [i for i, d in enumerate(shape) if d >= self.n and d % self.n == 0]
        if not split or not axes:
            return NamedSharding(self.mesh, PartitionSpec())
        axis = max(axes, key=lambda i: shape[i])  # the largest divisible axis: the most even split
        spec: list[str | None] = [None] * len(shape)
        spec[axis] = "batch"
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def _put(self, tree: Any, split: bool) -> Any:
        if self.mesh is None:
            return jax.device_put(tree)

        def put(x: Any) -> Any:
            if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                impl = jax.random.key_impl(x)
                return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=impl)  # type: ignore[arg-type]
            sh = self._sharding(x, split)
            if jax.process_count() == 1:
                return jax.device_put(x, sh)
            # several processes: each holds the same host value and provides its own devices' pieces
            a = np.asarray(jax.device_get(x))
            return jax.make_array_from_callback(a.shape, sh, lambda index: a[index])

        return jax.tree.map(put, tree)

    def batch(self, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if self.mesh is None:
            return dict(arrays)
        from jax.sharding import NamedSharding, PartitionSpec

        sh = NamedSharding(self.mesh, PartitionSpec("batch"))
        if jax.process_count() == 1:
            return jax.device_put(dict(arrays), sh)
        pi, pc = jax.process_index(), jax.process_count()
        out = {}
        for k, v in arrays.items():
            per = v.shape[0] // pc
            out[k] = jax.make_array_from_process_local_data(sh, v[pi * per : (pi + 1) * per], v.shape)
        return out


# Why a CPU has fewer devices than --devices asks: a library caller's JAX already runs (more only in a fresh
# process), or the environment fixes the count, which split_cpu keeps.
CPU_SPLIT_HINT = (
    "; a CPU splits into more only before JAX starts, and only when neither XLA_FLAGS"
    " (--xla_force_host_platform_device_count) nor JAX_NUM_CPU_DEVICES sets its count (`specc train --devices N`"
    " then does it; in Python, jax.config.update('jax_num_cpu_devices', N) first)"
)


def _make_mesh(devices: int | None, batch: int, config: TrainConfig) -> _Mesh:
    avail = jax.devices() if jax.process_count() > 1 else jax.local_devices()
    if devices is not None and devices < 1:  # the CLI refuses it (IntRange); a library's 0 divided by 0
        raise UsageError.of(
            f"--devices {devices}: a count of devices is at least 1", "use --devices 1 or more"
        )
    n = len(avail) if devices is None else devices
    if devices is None and jax.process_count() == 1:  # by default, the most devices that divide the batch
        n = max(k for k in range(1, n + 1) if batch % k == 0)
    if n > len(avail):
        raise UsageError.of(
            f"--devices {n} asks for more devices than the {len(avail)} available",
            f"use --devices {len(avail)} or fewer" + (CPU_SPLIT_HINT if avail[0].platform == "cpu" else ""),
        )
    if batch % n and devices is not None:  # the count asked for is the slip, not the spec's batch: exit 2
        from .execution import split_made

        # a CPU split for this --devices splits into any count (the next run); else JAX's devices are the limit
        limit = batch if split_made()[1] else min(batch, len(avail))
        fits = [str(k) for k in range(1, limit + 1) if batch % k == 0]
        raise UsageError.of(
            f"--devices {n}: batch {batch} does not split evenly over {n} devices",
            f"give a count that divides the batch ({', '.join(fits)}), or a batch that is a multiple of {n}"
            f" (--batch {batch + n - batch % n})",
        )
    if batch % n:  # all the hosts' devices (several processes), which do not divide the spec's batch
        raise SpecError.one(
            "value error",
            f"batch {batch} does not split evenly over {n} devices",
            config.span("batch"),
            f"use a batch that is a multiple of {n}, or --devices",
        )
    if n == 1:
        return _Mesh(1)
    from jax.sharding import Mesh

    return _Mesh(n, Mesh(np.array(avail[:n]), ("batch",)), fsdp=config.shard == "fsdp")


def _run_error(message: str, hint: str = "") -> SpecError:
    return SpecError.one("run error", message, None, hint)


def _save_failed(e: Any) -> SpecError:
    """A checkpoint the disk refused (full, read-only): Orbax's rename keeps the previous one whole."""
    return _run_error(
        e.message + "; the previous checkpoint is kept whole",
        "free some space (or fix the folder's permissions) and continue with --resume",
    )


def _graph_of(config: TrainConfig) -> Any:
    from ..spec import load
    from .spec import apply_lets, let_overrides

    spec = load(config.spec_path, config.model)
    return apply_lets(spec, let_overrides(config.lets, "lets")).graph()


class _Interrupt:
    """SIGINT or SIGTERM → a flag the loop checks after each step (a second one interrupts at once). SIGTERM is
    what `kill PID`, Slurm and Kubernetes send to stop a job: it killed the run at once, and a run that saves at
    the end only (the default) lost every epoch; now it stops and saves as Ctrl-C does, exiting 143 (128 + 15)
    where Ctrl-C exits 130, as a shell, Slurm and Kubernetes expect of a graceful stop on SIGTERM."""

    def __init__(self, after: _Interrupt | None = None) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT  # the first signal taken
        # after: the run loop's; once it took a signal, any one here is a second. A stopped run's checkpoints are
        # written under this one, and a second Ctrl-C was held until they were, then called "Ctrl-C after the
        # last step" (at step 146 of 1,437)
        self._taken = after is not None and after.requested
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

            def handler(signum: int, frame: Any) -> None:
                if self.requested or self._taken:
                    raise Stopped(signum)
                self.requested, self.signum = True, signum

            for s in self._old:
                signal.signal(s, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


class _Reporter:
    """The rich progress bar (one per epoch) and a summary line per epoch; silent when verbose is False."""

    def __init__(self, verbose: bool, epochs: int, steps: int):
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.progress: Any = None
        self.task: Any = None
        if verbose:
            from rich.console import Console

            self.console = Console(stderr=True)

    def start_epoch(self, epoch: int, done: int) -> None:
        # no bar when the output is a file or pipe: a stopped bar would leave blank lines in logs
        if not self.verbose or not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.steps, completed=done, epoch=f"{epoch + 1}/{self.epochs}", stats=""
        )

    def advance(self, completed: int, stats: str) -> None:
        """Show `completed` steps as done: called only after the device finished them (a fetch waited)."""
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, stats=stats)

    def end_epoch(self, line: str) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.say(line)

    def say(self, line: str) -> None:
        if self.verbose and line:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


# ---- the loop -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze what is alive for a run (JAX, Flax, the graph, the data: they outlive it), and thaw it after. The
    collector's full passes during set-up then skip those objects; each walked all of them, ~0.2 s apiece before
    the first step (lecture convnet, cold cache: set-up 3.55 → 3.01 s). Thawed, a caller that goes on (a sweep's
    next point, tests, a notebook) still collects them. `specc train` and `specc sweep` train inside it; a library
    caller may too."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_Train = TypeVar("_Train", bound=Callable[..., "TrainResult"])


def _holding_the_run_folder(train: _Train) -> _Train:
    """`train` with its run folder locked against a second run into it (rundir.held) from the first check to
    the last write."""

    @functools.wraps(train)
    def run(config: TrainConfig, workdir: str | Path, **options: Any) -> TrainResult:
        from . import rundir

        with rundir.held(Path(workdir), primary=jax.process_index() == 0):
            return train(config, workdir, **options)

    return cast(_Train, run)


@_holding_the_run_folder
def train_and_evaluate(
    config: TrainConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    devices: int | None = None,
    verbose: bool = True,
    graph: Any = None,
    splits: Splits | None = None,
    callbacks: Sequence[Callable[[int], None]] = (),
    force: bool = False,
    log_histograms: bool = False,
    log_steps: bool = False,
    lowering: str = "auto",
    execution: str = "auto",
    log_gradients: bool = False,
) -> TrainResult:
    """Train `config`'s model, writing metrics.jsonl, checkpoints and curves.png under `workdir` (only there, but
    for JAX's compilation cache, in the user's cache folder: compile_cache.py).

    Args:
        config: the checked train section (`specc.train.spec.build_config`).
        workdir: the run directory.
        resume: continue from the newest checkpoint in workdir (bitwise the same as not stopping); the spec must
            be the one the run trained (only epochs and early stopping may change).
        devices: data-parallel over this many devices (default: all local devices).
        verbose: show the progress bar and the per-epoch summary.
        graph, splits: the model graph and data, when the caller has them already.
        callbacks: called with the global step after each step; one raising KeyboardInterrupt stops the run
            like Ctrl-C.
        force: replace the run already in workdir (only the files a run writes are deleted).
        log_histograms: also write histograms of every layer's weights per epoch to TensorBoard.
        log_steps: also write each step's loss and metrics to TensorBoard (a device sync every step: slower).
        lowering: "auto" (each op's form by the platform's rule table), "measure" (each op's forms timed once on
            this machine and the choice cached: backend/tuning.py) or "reference" (every op's plain form).
        execution: "auto", "step", "prefetch" or "scan" (specc/train/execution.py: how batches reach the step).
        log_gradients: also write each layer's gradient norm, averaged per epoch, to gradients.jsonl.
    Raises SpecError for data that does not fit the model, and for a run directory that cannot be used (a file,
    unwritable, another run without resume/force, a spec that differs from the run's on resume).
    """
    workdir = Path(workdir)
    graph = graph if graph is not None else _graph_of(config)
    from . import rundir
    from .objectives import moved_stage, plan_objectives, stage_at, stages, total_epochs
    from .rundir import GRADIENTS_FILE

    plans = plan_objectives(config, graph, getattr(config, "freeze", ()))
    run_stages = stages(config)
    epochs_total = total_epochs(run_stages)
    primary = jax.process_index() == 0
    resuming = rundir.prepare(workdir, config, graph, resume=resume, force=force, primary=primary)
    drawn = drawn_inputs(graph)
    splits = splits if splits is not None else load_splits(config, tuple(drawn))
    check_label_range(config, graph, splits)
    check_target_range(config, splits)
    check_embedding_ids(config, graph, splits)
    notes: list[str] = []
    train_ds, val_ds = splits.train, splits.val
    batch = config.batch
    if len(train_ds) < batch:
        # with --devices n, the whole split rounded down to a multiple of n (it was "batch 1436 does not split
        # evenly over 3 devices", a batch the user never gave); drop_last leaves out the rest, as in any epoch
        usable = len(train_ds) - (len(train_ds) % devices if devices and len(train_ds) >= devices else 0)
        notes.append(
            f"batch {batch} is larger than the {len(train_ds)} training examples; using {usable}"
            + (f" (a multiple of the {devices} devices)" if usable != len(train_ds) else "")
        )
        batch = usable
    watched = config.early_stop["metric"] if config.early_stop is not None else ""
    if watched.startswith("val_") and val_ds is None:
        # the metric is never logged, so the run would go all its epochs without a word
        notes.append(
            f"early_stop watches {watched}, but the data has no validation examples: the run will not stop early"
            f" (give the data a split, e.g. split=0.8, or watch {watched[4:]})"
        )
    mesh = _make_mesh(devices, batch, config)
    _check_memory(config, graph, batch // mesh.n)
    steps_per_epoch = train_ds.num_batches(batch, drop_last=True)

    from ..backend.flax import (
        build_module,
        compiler_options,
        data_shards,
        forward_graphdef,
        graph_compiler_options,
    )

    # build_module initialises each distinct layer in one jit (linear in the graph; see LayerFactory)
    platform = "reference" if lowering == "reference" else None
    sizes = data_sizes(graph, train_ds.fields)  # the size names the data fixes (T = 32): run.json, measuring
    from ..passes.bound import check_bound_sizes

    try:  # a rule that took a free T may refuse the data's (a learned positional table shorter than T)
        check_bound_sizes(graph, sizes, "the training data")
    except SpecError as e:
        raise e.with_sources(dict(config.sources)) from None
    choose = None
    if lowering == "measure" and jax.process_count() > 1:
        # each process would time on its own and might choose otherwise: every process must compile one program
        notes.append(
            "--lowering measure times on one process only; these processes run the rule's forms (auto)"
        )
    elif lowering == "measure":
        from ..backend.tuning import measured_lowerings

        # the sizes the data fixes (a sequence's T) too: an op with a free size cannot be timed
        choose = measured_lowerings(graph, batch, mesh.n, env=sizes)
    model = build_module(graph, seed=config.seed, platform=platform, choose=choose)
    if choose is not None:
        notes.append(choose.describe())
    model.train()
    # flax types split(node, f1, f2) as (GraphDef, State, *State), which mypy cannot unpack into three names
    gd_train, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    model.eval()
    gd_eval = forward_graphdef(model)  # validation runs forward only: each op in its forward form
    gd_steps = _stage_graphdefs(model, graph, plans, run_stages, gd_train)
    if graph.pretrained and not resuming:
        from .pretrained import load_pretrained

        base = config.data_base if config.data_base is not None else config.spec_path.parent
        try:
            params, rest, loaded = load_pretrained(graph, Path(base), params, rest)
        except SpecError as e:
            raise e.with_sources(dict(config.sources)) from None
        notes += loaded
    single = len(plans) == 1
    txs = [make_optimizer(p.objective.optimizer, steps_per_epoch) for p in plans]
    lr_fns = [make_schedule(p.objective.optimizer["lr"], steps_per_epoch) for p in plans]
    selectors = [_selector(p.keys) for p in plans]
    input_names = tuple(n for n, _, _ in config.inputs if n not in drawn)
    draw = _Sampler(graph, drawn, input_names, config.seed, mesh.mesh)
    names = config.value_names
    metric_calls = tuple(m.call for m in config.metrics)
    n_obj = len(plans)
    n_stats = n_obj + len(metric_calls)
    stat_names = stat_names_of([p.objective for p in plans], config.metrics)
    plan = _execution_plan(execution, graph, train_ds, input_names, batch, steps_per_epoch, mesh).for_run(
        steps_per_epoch * epochs_total
    )
    # --log-gradients: per objective, the layers it trains (their parameter leaves' layer keys, in order)
    grad_layers = [_layer_keys_of(nnx.split_state(params, sel, ...)[0]) for sel in selectors]
    if log_gradients:
        from ..backend.flax import layer_keys

        keys = layer_keys(graph)
        copies = Counter(keys.values())  # a rolled run's stacked layer: one key for all its copies
        shown_as = {
            key: graph.nodes[nid].name + (f" ×{copies[key]}" if copies[key] > 1 else "")
            for nid, key in reversed(list(keys.items()))
        }
        grad_names = [[shown_as.get(k, k) for k in keys] for keys in grad_layers]

    def values_of(
        gd: Any, params: Any, rest: Any, batch: Mapping[str, Any], key: Any = None
    ) -> tuple[Any, Any]:
        return model_values(gd, params, rest, batch, input_names, names, draw, key)

    def objective_step(
        i: int, state: dict[str, Any], batch: Mapping[str, Any], key: Any
    ) -> tuple[Any, Any, Any]:
        """One update of objective i: its loss differentiated w.r.t. its own parameters only."""
        objective = plans[i].objective
        mine, others = nnx.split_state(state["params"], selectors[i], ...)

        def loss_fn(p: Any) -> tuple[Any, tuple[Any, Any]]:
            vals, new_rest = values_of(gd_steps[i], nnx.merge_state(p, others), state["rest"], batch, key)
            return total_loss(objective.terms, vals, p, None), (vals, new_rest)

        (loss, (vals, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(mine)
        grad_sums = state.get("grads")
        # A non-finite loss freezes parameters and optimizer state just before the step that produced it. A
        # conditional rather than a select over every parameter: the update runs only when the step is good, and
        # a good step costs nothing extra (a select pass cost ~8 % of an MLP epoch on CPU).
        ok = jnp.isfinite(loss) & (state["bad"] < 0)
        opt_state = state["opt"][i]

        def update(_: None) -> tuple[Any, Any]:
            updates, opt = txs[i].update(grads, opt_state, mine)
            return optax.apply_updates(mine, updates), opt

        new_mine, opt = jax.lax.cond(ok, update, lambda _: (mine, opt_state), None)
        new_state = {
            **state,
            "params": nnx.merge_state(new_mine, others),
            "rest": new_rest,
            "opt": (*state["opt"][:i], opt, *state["opt"][i + 1 :]),
            "bad": jnp.where((state["bad"] < 0) & ~jnp.isfinite(loss), state["step"], state["bad"]),
            "bad_objective": jnp.where(
                (state["bad"] < 0) & ~jnp.isfinite(loss), jnp.int32(i), state["bad_objective"]
            ),
        }
        if grad_sums is not None:  # --log-gradients: each layer's gradient norm, summed over good steps
            norms = _layer_norms(grads, grad_layers[i])
            row = jnp.concatenate([norms, jnp.ones((1,), jnp.float32)])
            new_state["grads"] = (*grad_sums[:i], grad_sums[i] + jnp.where(ok, row, 0.0), *grad_sums[i + 1 :])
        return new_state, loss, vals

    def make_train_step(members: tuple[int, ...], with_row: bool = False) -> Callable[..., Any]:
        """One turn of the stage's objectives on a batch: state → state; with_row, also the step's counted
        losses and metrics and 1 when it counted (the scan's per-step record)."""

        def train_step(state: dict[str, Any], batch: Mapping[str, Any]) -> Any:
            # one turn: every objective of the stage runs its `steps` updates on this batch, in order
            stats = [jnp.float32(0)] * n_stats
            ok = state["bad"] < 0
            metric_vals = None
            update = 0
            for i in members:
                for _ in range(plans[i].objective.steps):
                    # drawn inputs are sampled afresh for every update, from the step number alone (resumable)
                    key = draw.train_key(state["step"], update) if drawn else None
                    update += 1
                    state, loss, vals = objective_step(i, state, batch, key)
                    if metric_vals is None:
                        metric_vals = vals
                stats[i] = loss
            if metric_vals is not None:
                for j, c in enumerate(metric_calls):
                    stats[n_obj + j] = metric_value(c, metric_vals, None)
            ok = ok & (state["bad"] < 0)
            vec = jnp.stack([jnp.asarray(x, jnp.float32) for x in stats])
            counted = jnp.where(ok, vec, 0.0)
            new_state = {
                **state,
                "sums": state["sums"] + counted,
                "n": state["n"] + ok.astype(jnp.int32),
                "step": state["step"] + 1,
            }
            if with_row:
                return new_state, jnp.concatenate([counted, ok.astype(jnp.float32)[None]])
            return new_state

        return train_step

    eval_step = make_eval_step(gd_eval, [p.objective for p in plans], metric_calls, input_names, names, draw)

    if mesh.mesh is None:
        jit_kw: dict[str, Any] = {}
    else:
        from jax.sharding import NamedSharding, PartitionSpec

        jit_kw = {"out_shardings": NamedSharding(mesh.mesh, PartitionSpec())}
    train_jits: dict[int, Any] = {}
    options = graph_compiler_options(graph, short_run=plan.short_run)

    def train_jit_for(stage_index: int, state: Any, example: Any) -> Any:
        """The stage's train step (scan: its chunk step), compiled ahead of its first batch (so the bar never
        waits on XLA). With callbacks the chunk step keeps its input state (a step inside it may be re-run to)."""
        if stage_index not in train_jits:
            members = run_stages[stage_index].objectives
            t = time.perf_counter()
            kw = jit_kw
            if mesh.fsdp:  # the new state keeps each leaf's sharding (parameters stay split)
                kw = {"out_shardings": jax.tree.map(lambda x: x.sharding, state)}
            with data_shards(mesh.n):  # lowerings sized by one device's share of the batch read it
                if plan.mode == "scan":
                    fn = make_chunk_step(make_train_step(members, with_row=True), n_stats)
                    jitted = jax.jit(fn, donate_argnums=() if callbacks else (0,), **kw)
                    traced = jitted.trace(state, *example)
                else:
                    jitted = jax.jit(make_train_step(members), donate_argnums=0, **kw)
                    traced = jitted.trace(state, example)
            t_trace = time.perf_counter()
            lowered = traced.lower()
            t_lower = time.perf_counter()
            # JAX's persistent cache: a second run loads it
            train_jits[stage_index] = lowered.compile(compiler_options=options)
            t_done = time.perf_counter()
            what = "the train step" if len(run_stages) == 1 else f"stage {stage_index + 1}'s train step"
            reporter.say(
                f"compiled {what} in {t_done - t:.2f} s (tracing {t_trace - t:.2f} s, lowering "
                f"{t_lower - t_trace:.2f} s, XLA or its cache {t_done - t_lower:.2f} s)"
            )
        return train_jits[stage_index]

    # (compiling it in a thread beside the train step made the first epoch ~1 s slower on 2 cores: XLA's
    # compilation already runs its code generation on both)
    eval_jit = jax.jit(eval_step, donate_argnums=2, compiler_options=options, **jit_kw)

    def fresh(params: Any) -> dict[str, Any]:
        return {
            "opt": tuple(
                tx.init(nnx.split_state(params, sel, ...)[0]) for tx, sel in zip(txs, selectors, strict=True)
            ),
            "sums": jnp.zeros((n_stats,), jnp.float32),
            "n": jnp.int32(0),
            "step": jnp.int32(0),
            "bad": jnp.int32(-1),
            "bad_objective": jnp.int32(-1),
        }

    # one small program, not one per optimizer-state shape or counter (an eager zeros or int32 compiles its own:
    # 15-50 ms apiece on the CPU with a cold cache)
    state: dict[str, Any] = {
        "params": params,
        "rest": rest,
        **jax.jit(fresh, compiler_options=compiler_options(once=True))(params),
    }
    from .checkpoint import CheckpointError, Checkpoints
    from .execution import make_chunk_step

    def record_run() -> None:
        """run.json, config.json, the spec's copy, the data's statistics and class names."""
        if not primary:
            return
        from .artifact import write_class_names, write_normalization

        rundir.start(workdir, config, graph, resuming=resuming, sizes=sizes)

        try:
            write_normalization(workdir, splits.stats, dict(config.rename))
            write_class_names(workdir, splits.class_names)
        except OSError as e:
            raise _run_error(f"cannot write the run directory {workdir}: {e.strerror or e}") from None

    # A new run is recorded first (a replaced run's files, checkpoints included, go before any is made); a resumed
    # one only once its checkpoint is read and accepted, so a refused resume leaves the run's record as it was.
    if not resuming:
        record_run()
    ckpt_dir = workdir / config.checkpoint_dir
    metrics_path = workdir / "metrics.jsonl"
    history: list[dict[str, float]] = []
    start_epoch, start_batch, step = 0, 0, 0
    early = {"best": None, "bad_epochs": 0}
    try:
        checkpoints = Checkpoints(ckpt_dir)
    except (OSError, ValueError) as e:
        raise _run_error(f"cannot use the checkpoint folder {ckpt_dir}: {e}") from None
    if resuming and checkpoints.steps():
        try:
            state, saved, skipped = checkpoints.restore_newest_readable(state)
            start_epoch, start_batch, step = int(saved["epoch"]), int(saved["batch"]), int(saved["step"])
            history = list(saved["history"])
            early = dict(saved["early"])
        except CheckpointError as e:
            checkpoints.close()
            raise _run_error(e.message, "train afresh with --force, or into another --out") from None
        except (KeyError, TypeError, ValueError) as e:
            checkpoints.close()
            raise _run_error(
                f"the checkpoint record in {ckpt_dir} is damaged ({type(e).__name__}: {e})",
                "train afresh with --force, or into another --out",
            ) from None
        if (moved := moved_stage(run_stages, history)) is not None:
            checkpoints.close()
            epoch_no, was, now = moved
            trained_by = ", ".join(config.objectives[i].name for i in run_stages[was - 1].objectives)
            falls_in = f"stage {now}" if now is not None else "no stage (the plan is shorter)"
            trained = [sum(1 for h in history if h.get("stage") == k + 1) for k in range(len(run_stages))]
            raise _run_error(
                f"cannot resume: epoch {epoch_no} trained in stage {was} ({trained_by}), and with these epochs it falls "
                f"in {falls_in}; the stages' lengths moved",
                f"the run trained its stages for {', '.join(map(str, trained))} epoch(s): resume with the epochs "
                "it was trained with, or train afresh with --force; to train the last stage longer, give the "
                "earlier objectives their own `epochs`",
            )
        notes += skipped
        notes.append(f"resumed from step {step} (epoch {start_epoch + 1}, batch {start_batch})")
    elif resume:
        notes.append(f"no checkpoint in {ckpt_dir}; starting afresh")
    if resuming:
        record_run()
    gradients_path = workdir / GRADIENTS_FILE
    if primary:
        try:
            write_atomic(metrics_path, "".join(json.dumps(h) + "\n" for h in history).encode())
            if log_gradients or gradients_path.exists():  # the epochs the history keeps, as metrics.jsonl
                _truncate_gradients(gradients_path, len(history))
        except OSError as e:
            raise _run_error(f"cannot write {metrics_path}: {e.strerror or e}") from None
    if log_gradients:  # not checkpointed: a resumed epoch averages the steps since the resume
        state["grads"] = tuple(jnp.zeros((len(keys) + 1,), jnp.float32) for keys in grad_layers)
    state = mesh.place(state)

    saver = _Saver(checkpoints)

    def save(epoch: int, batch_index: int) -> None:
        host = jax.device_get({k: v for k, v in state.items() if k != "grads"})
        record = {
            "epoch": epoch,
            "batch": batch_index,
            "step": step,
            "history": list(history),
            "early": dict(early),
            "seed": config.seed,
        }
        saver.save(step, host, record)

    from .loggers import epoch_loggers

    loggers = epoch_loggers(workdir, config, history, primary=primary, histograms=log_histograms, graph=graph)
    reporter = _Reporter(verbose, epochs_total, steps_per_epoch)
    drawer = _curves_drawer(primary and plan.short_run)
    reporter.say(_banner(config, graph, plans, train_ds, val_ds, batch, steps_per_epoch, mesh, plan))
    for n in notes:
        reporter.say(n)
    # Each fetch waits for the device; a few per second keep the bar alive without stalling the pipeline.
    fetch_seconds = 0.25 if verbose else math.inf
    status = "done"
    divergence: Divergence | None = None
    feed = [k for k in input_names]
    with _Interrupt() as interrupt:
        epoch = start_epoch
        while (where := stage_at(run_stages, epoch)) is not None:
            stage_index, stage = where
            active = set(stage.objectives)
            shown = [k for i, k in enumerate(stat_names) if i >= n_obj or i in active]
            rng = np.random.default_rng([config.seed, epoch]) if splits.shuffle else None
            batches = _batches(train_ds, batch, rng, start_batch, feed)
            source = _units(plan, batches, start_batch, mesh)
            first = next(source, None)
            if first is None:
                break
            train_jit = train_jit_for(stage_index, state, first[2])
            units = itertools.chain([first], source)
            reporter.start_epoch(epoch, start_batch)
            epoch_start_step = step - start_batch
            t0 = last_fetch = time.perf_counter()
            seen_sums, seen_count = np.zeros(n_stats), 0  # what the last fetch saw, for per-step values
            stop = False
            bi = start_batch
            try:
                for b0, calls, device_input in units:
                    before = state
                    rows = None
                    if plan.mode == "scan":
                        state, rows = train_jit(state, *device_input)
                    else:
                        state = train_jit(state, device_input)
                    mesh.settle(state["n"])  # a split CPU: one call in flight (see _Mesh.settle)
                    step += calls
                    bi = b0 + calls - 1
                    for s_ in range(step - calls + 1, step + 1):
                        try:
                            for cb in callbacks:
                                cb(s_)
                        except KeyboardInterrupt:
                            interrupt.requested = True
                            if s_ < step:  # stop inside the chunk: run it again from its start, up to s_
                                done = s_ - (step - calls)
                                state, rows = train_jit(before, device_input[0], np.int32(done))
                                step, bi = s_, b0 + done - 1
                            break
                    if (
                        bi + 1 == steps_per_epoch
                        or log_steps
                        or (verbose and time.perf_counter() - last_fetch > fetch_seconds)
                    ):
                        last_fetch = time.perf_counter()
                        sums, count, bad, bad_obj = jax.device_get(
                            (state["sums"], state["n"], state["bad"], state["bad_objective"])
                        )
                        if log_steps and rows is not None:  # the chunk's steps, each as it counted
                            ran = bi + 1 - b0
                            for j, row in enumerate(np.asarray(jax.device_get(rows), np.float64)[:ran]):
                                if row[-1] > 0:
                                    _log_step(loggers, step - ran + 1 + j, stat_names, row[:-1], shown)
                        elif log_steps and bad < 0 and int(count) > seen_count:
                            # the sums are the epoch's so far: their growth since the last fetch is this step's
                            per_step = (np.asarray(sums, np.float64) - seen_sums) / (int(count) - seen_count)
                            _log_step(loggers, step, stat_names, per_step, shown)
                        seen_sums, seen_count = np.asarray(sums, np.float64), int(count)
                        if bad >= 0:
                            rates = [
                                ("" if single else p.objective.name, f)
                                for p, f in zip(plans, lr_fns, strict=True)
                            ]
                            divergence = dataclasses.replace(
                                _diagnose(
                                    config,
                                    graph,
                                    gd_train,
                                    state,
                                    train_ds,
                                    batch,
                                    epoch,
                                    int(bad),
                                    epoch_start_step,
                                    feed,
                                    splits.shuffle,
                                    plans[int(bad_obj)].objective,
                                ),
                                rate=_blamed_rate(rates, state["opt"], int(bad)),
                            )
                            status, stop = "diverged", True
                            break
                        reporter.advance(
                            bi + 1,
                            "  ".join(
                                f"{k} {_fmt(float(v) / max(int(count), 1))}"
                                for k, v in zip(stat_names, sums, strict=True)
                                if k in shown
                            ),
                        )
                    if interrupt.requested:
                        status, stop = "interrupted", True
                        break
            finally:
                source.close()  # stops the prefetching thread
            if stop and (status == "diverged" or bi + 1 < steps_per_epoch):
                reporter.end_epoch("")
                if status == "interrupted":
                    save(epoch, bi + 1)
                break
            sums, count = jax.device_get((state["sums"], state["n"]))
            seconds = time.perf_counter() - t0
            record: dict[str, float] = {"epoch": epoch + 1}
            if len(run_stages) > 1:
                record["stage"] = stage_index + 1
            count = max(int(count), 1)
            for k, v in zip(stat_names, sums, strict=True):
                if k in shown:
                    record[k] = float(v) / count
            record["time"] = round(seconds, 4)
            for i in stage.objectives:
                lr_fn = lr_fns[i]
                lr = float(lr_fn(jnp.int32(epoch_start_step))) if callable(lr_fn) else lr_fn
                record["lr" if single else f"lr_{plans[i].objective.name}"] = lr
            if val_ds is not None:
                vals = _evaluate(eval_jit, state, val_ds, batch, feed, mesh, n_stats)
                for k, v in zip(stat_names, vals, strict=True):
                    record[f"val_{k}"] = v
            state["sums"] = mesh.replicate(np.zeros((n_stats,), np.float32))
            state["n"] = mesh.replicate(np.int32(0))
            history.append(record)
            lines = ""
            if log_gradients:
                names_of = [p.objective.name for p in plans]
                lines = _gradient_lines(
                    epoch + 1, stage.objectives, jax.device_get(state["grads"]), names_of, grad_names
                )
                state["grads"] = mesh.replicate(tuple(jnp.zeros_like(g) for g in state["grads"]))
            if primary:
                try:
                    with open(metrics_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
                    if lines:
                        with open(gradients_path, "a", encoding="utf-8") as f:
                            f.write(lines)
                except OSError as e:
                    raise _run_error(f"cannot write {metrics_path}: {e.strerror or e}") from None
            kept = {k: v for k, v in state.items() if k != "grads"}
            host_state = functools.cache(functools.partial(jax.device_get, kept))
            try:
                for logger in loggers:  # TensorBoard, the best checkpoint (specc/train/loggers.py)
                    logger.epoch(record, host_state)
            except CheckpointError as e:
                checkpoints.close()
                raise _save_failed(e) from None
            except OSError as e:
                raise _run_error(f"cannot write the run's logs in {workdir}: {e.strerror or e}") from None
            reporter.end_epoch(_summary(record, epochs_total))
            epoch += 1
            start_batch = 0
            stopped = _early_stop(config, record, early)
            if stopped:
                # early stopping ends the stage; the next stage (if any) starts afresh
                nxt = stage_at(run_stages, epoch)
                while nxt is not None and nxt[0] == stage_index:
                    epoch += 1
                    nxt = stage_at(run_stages, epoch)
                early = {"best": None, "bad_epochs": early["bad_epochs"]}
            last_epoch = stage_at(run_stages, epoch) is None
            if (
                status == "interrupted"
                or last_epoch
                or (config.checkpoint_every and epoch % config.checkpoint_every == 0)
            ):
                save(epoch, 0)
            if status == "interrupted":
                break
            if stopped:
                reporter.say(
                    f"early stop: {config.early_stop['metric'] if config.early_stop else ''} has not "
                    f"improved for {early['bad_epochs']} epochs"
                )
                early["bad_epochs"] = 0
                if last_epoch:
                    status = "early_stop"
                    break
    # A Ctrl-C while the last checkpoints and curves.png are written is held until they are (a second one
    # interrupts at once): raised at once, it left best/ empty and no line said so.
    with _Interrupt(after=interrupt) as finishing:
        try:
            params, note = _finish(config, graph, history, primary, workdir, loggers, saver, state, drawer)
        except Stopped as e:
            e.note = (
                f"at step {step}, without waiting for its checkpoints to be written; --resume continues from the "
                f"last whole one in {ckpt_dir}"
            )
            raise
    if status == "interrupted":  # said once the checkpoint is written: a second Ctrl-C may abandon it
        reporter.say(f"interrupted at step {step}; checkpoint saved in {ckpt_dir} (continue with --resume)")
    if note:
        notes.append(note)
        reporter.say(note)
    if finishing.requested or (interrupt.requested and status != "interrupted"):  # after the last step
        late = finishing.signum if finishing.requested else interrupt.signum
        what = "Ctrl-C" if late == signal.SIGINT else signal.Signals(late).name
        reporter.say(f"{what} after the last step: the run's checkpoints were finished first ({ckpt_dir})")
    return TrainResult(status, history, step, workdir, params, divergence, notes, interrupt.signum)


def _finish(
    config: TrainConfig,
    graph: Any,
    history: Sequence[Mapping[str, float]],
    primary: bool,
    workdir: Path,
    loggers: Sequence[Any],
    saver: _Saver,
    state: Mapping[str, Any],
    drawer: CurvesDrawer | None = None,
) -> tuple[Any, str | None]:
    """The end of a run: curves.png drawn (by `drawer`'s helper process where there is one) while the best and the
    last checkpoints are written, every writer closed. Returns the parameters on the host and the drawing's note
    (None: drawn)."""
    drawing = None
    if history and primary:  # matplotlib's drawing overlaps the last checkpoint's writing
        pool = ThreadPoolExecutor(1, thread_name_prefix="specc-curves")
        title = f"{graph.model}: {config.spec_path.name}"
        drawing = pool.submit(write_curves, list(history), workdir / "curves.png", title, drawer)
        pool.shutdown(wait=False)
    elif drawer is not None:
        drawer.close()
    # The best checkpoint is written when the loggers close, once. In one process that happens while the saver
    # thread writes the last (two Orbax saves of ~0.4 s each, mostly waiting on files); with several processes in
    # turn, as each must (Orbax's saves are collective).
    together = jax.process_count() == 1
    try:
        if together:
            _close_loggers(loggers)
        saver.wait()
    finally:
        saver.close()
    if not together:
        _close_loggers(loggers)
    params = jax.device_get(state["params"])
    return params, drawing.result() if drawing is not None else None


_HELPED: list[bool] = []  # a curves helper was started in this process


def _curves_drawer(short_run: bool) -> CurvesDrawer | None:
    """For a short run (`execution.SHORT_RUN_S`), curves.png's helper process, started now: it imports matplotlib
    (≈ 0.9 s) on the other core while the run compiles and trains, where the run's end waited for it before
    (`specc train specs/digits_mlp.net`, whole process, warm cache: see docs/benchmarks.md). Once a process: one
    that trains again (a sweep, a notebook, the tests) imports matplotlib itself, once, rather than in a new helper
    every run. A longer run draws in its own process at the end, as before: its compilation needs both cores.
    None where no helper could start."""
    if not short_run or _HELPED or not sys.executable:  # an embedding interpreter may have no executable
        return None
    _HELPED.append(True)
    try:
        return CurvesDrawer()
    except OSError:
        return None


class _Saver:
    """Checkpoints written by a thread while training goes on, one at a time and in order; a failed save is the
    run's error at the next save, or at the end (`wait`)."""

    def __init__(self, checkpoints: Any):
        self.checkpoints = checkpoints
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="specc-checkpoint")
        self._pending: list[Any] = []

    def wait(self) -> None:
        from .checkpoint import CheckpointError

        while self._pending:
            try:
                self._pending.pop().result()
            except CheckpointError as e:
                self.checkpoints.close()
                raise _save_failed(e) from None

    def save(self, step: int, host: Any, record: Mapping[str, Any]) -> None:
        self.wait()
        self._pending.append(self._pool.submit(self.checkpoints.save, step, host, record))

    def close(self) -> None:
        """Stop the thread once its saves are done, then close the checkpoints (call `wait` first for errors)."""
        self._pool.shutdown(wait=True)
        self.checkpoints.close()


def _close_loggers(loggers: Sequence[Any]) -> None:
    from .checkpoint import CheckpointError

    try:
        for logger in loggers:
            logger.close()
    except CheckpointError as e:
        raise _save_failed(e) from None


class _Sampler:
    """Samples the drawn inputs inside the jitted step: shapes from the fed inputs' sizes (the batch symbol N),
    keys folded from the seed, the step and the update (training) or the batch index (evaluation)."""

    def __init__(self, graph: Any, drawn: Mapping[str, Any], fed: Sequence[str], seed: int, mesh: Any = None):
        self.drawn = dict(drawn)
        self.seed = seed % 2**32
        # a split batch: each device draws its own rows (threefry's partitionable counting gives every row the
        # value the whole draw would). Unconstrained, XLA drew them whole on every device, and every layer they
        # feed ran on the whole batch there: a DCGAN's generator and its discriminator on the fakes, on 2
        # devices 2x and on 4 devices 4x one device's epoch.
        self.mesh = mesh
        self.binders = [
            (name, axis, sym)
            for name, nid in graph.inputs
            if name in fed
            for axis, d in enumerate(graph.nodes[nid].type.dims)
            if (sym := d.as_symbol()) is not None
        ]

    def train_key(self, step: Any, update: int) -> Any:
        base = jax.random.fold_in(jax.random.key(self.seed), 1)
        return jax.random.fold_in(jax.random.fold_in(base, step), update)

    def eval_key(self, index: Any) -> Any:
        return jax.random.fold_in(jax.random.fold_in(jax.random.key(self.seed), 2), index)

    def __call__(self, key: Any, fed: Mapping[str, Any]) -> dict[str, Any]:
        env = {sym: int(fed[name].shape[axis]) for name, axis, sym in self.binders}
        batch = next((int(v.shape[0]) for v in fed.values()), 1)
        out = {}
        for i, (name, node) in enumerate(self.drawn.items()):
            shape = []
            for axis, d in enumerate(node.type.dims):
                if d.is_const:
                    shape.append(int(d.value))
                else:
                    size = d.subst(env).as_int() if env else None
                    shape.append(size if size is not None else batch if axis == 0 else 1)
            fn = node.attr["draw"]
            kw = dict(fn.kwargs)
            k = jax.random.fold_in(key, i)
            dtype = jnp.dtype(JNP_NAMES[node.type.dtype])
            if fn.name == "normal":
                value = kw["mean"] + kw["std"] * draws.normal(k, shape, dtype)
            else:
                value = draws.uniform(k, shape, dtype, kw["low"], kw["high"])
            out[name] = self._split(value, node)
        return out

    def _split(self, value: Any, node: Any) -> Any:
        """A drawn value whose first axis is the batch, split over the mesh's devices as the fed inputs are."""
        if self.mesh is None or not node.type.dims or node.type.dims[0].is_const:
            return value
        if value.shape[0] % self.mesh.size:
            return value
        from jax.sharding import NamedSharding, PartitionSpec

        return jax.lax.with_sharding_constraint(value, NamedSharding(self.mesh, PartitionSpec("batch")))


def _banner(
    config: TrainConfig,
    graph: Any,
    plans: Sequence[Any],
    train_ds: DataSet,
    val_ds: DataSet | None,
    batch: int,
    steps: int,
    mesh: _Mesh,
    plan: Any = None,
) -> str:
    """What is about to run: model, parameters, data and split, batch, devices and XLA's threads, the execution
    strategy, objectives."""
    from ..backend.flax import layer_keys

    keys = layer_keys(graph)
    trained = frozenset().union(*(p.keys for p in plans))
    frozen = graph.total_params - sum(n.param_count for n in graph.nodes if keys[n.id] in trained)
    devices = jax.devices()[: mesh.n]
    kinds = sorted({d.platform for d in devices})
    lines = [
        f"training {graph.model} ({config.spec_path.name}): {graph.total_params:,} parameters"
        + (f", {frozen:,} of them frozen" if frozen else ""),
        f"data {config.data.name}: {len(train_ds):,} training"
        + (f" / {len(val_ds):,} validation" if val_ds is not None else ", no validation")
        + f" examples; batch {batch}, {steps} steps an epoch",
        f"devices: {mesh.n} × {'/'.join(kinds)}" + (f" ({_cpu_threads()})" if "cpu" in kinds else ""),
    ]
    from .execution import cores, split_made

    made, asked = split_made()
    if kinds == ["cpu"] and mesh.n > 1 and made == mesh.n:
        if asked:
            lines.append(f"the CPU is split into {mesh.n} devices (--devices {mesh.n}), data-parallel")
        else:
            two = " (two a core: a long step's devices fill each other's waits)" if mesh.n > cores() else ""
            lines.append(
                f"the CPU is split into {mesh.n} devices{two}, data-parallel: XLA:CPU runs a convolution's"
                " gradients on about one core (--devices 1 keeps one)"
            )
    if plan is not None:
        lines.append(plan.describe())
    from ..backend.reroll import describe_runs

    lines += [f"rolled: {line}" for line in describe_runs(graph)]
    if len(plans) > 1:
        lines.append("objectives: " + ", ".join(p.objective.name for p in plans))
    return "\n".join(lines)


def _cpu_threads() -> str:
    """XLA:CPU's threads as set: its intra-op pool has one thread per core it may run on (no flag changes that;
    `--xla_cpu_multi_thread_eigen=false` in XLA_FLAGS makes its Eigen ops single-threaded)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    eigen = "false" not in os.environ.get("XLA_FLAGS", "").partition("xla_cpu_multi_thread_eigen=")[2][:5]
    from ..malloc import huge_pages_on

    return (
        f"{cores} CPU cores, XLA:CPU {cores} intra-op threads"
        + ("" if eigen else ", Eigen single-threaded")
        + (", malloc in huge pages" if huge_pages_on() else "")
    )


def _selector(keys: frozenset[str]) -> Callable[[Any, Any], bool]:
    """An nnx filter for the parameters of the layers `keys` (paths are ('layers', key, ...))."""

    def select(path: tuple[Any, ...], _: Any) -> bool:
        return len(path) > 1 and str(path[1]) in keys

    return select


def _check_memory(config: TrainConfig, graph: Any, batch_per_device: int) -> None:
    """Refuse, before any allocation, a model whose parameters, optimizer state and activations cannot fit."""
    from ..passes.memory import check_memory

    opt = config.objectives[0].optimizer
    try:
        check_memory(graph, batch_per_device, opt.name, optimizer_args=dict(opt.args))
    except SpecError as e:
        raise e.with_sources(dict(config.sources)) from None


def _batches(
    ds: DataSet, batch: int, rng: np.random.Generator | None, skip: int, feed: Sequence[str]
) -> Iterator[dict[str, np.ndarray]]:
    sub = ds.select(feed)  # keeps the training split's augmentation (data.py `augment=[...]`)
    for i, b in enumerate(sub.batches(batch, rng=rng, drop_last=True)):
        if i >= skip:
            yield b


def _execution_plan(
    requested: str,
    graph: Any,
    ds: DataSet,
    feed: Sequence[str],
    batch: int,
    steps_per_epoch: int,
    mesh: _Mesh,
) -> Any:
    from .execution import choose_execution, flops_per_example

    flops = flops_per_example(graph, batch, {k: ds.fields[k].shape for k in feed})
    per_example = sum(ds.fields[k].dtype.itemsize * math.prod(ds.fields[k].shape[1:]) for k in feed)
    return choose_execution(
        requested,
        flops_per_example=flops,
        batch=batch,
        batch_bytes=per_example * batch,
        steps_per_epoch=steps_per_epoch,
        devices=mesh.n,
        processes=jax.process_count(),
        platform=jax.devices()[0].platform,
        ops=frozenset(n.op for n in graph.nodes),
    )


def _units(
    plan: Any, batches: Iterator[dict[str, np.ndarray]], start: int, mesh: _Mesh
) -> Generator[tuple[int, int, Any], None, None]:
    """What each device call takes, as (first batch index, batches, input): a batch (step, prefetch) or a
    stacked chunk and its length (scan). Prefetch and scan prepare and send the next one from a thread."""
    from .execution import prefetched, stack_chunk

    if plan.mode == "step":
        return ((start + i, 1, mesh.batch(b)) for i, b in enumerate(batches))
    if plan.mode == "prefetch":
        items = ((start + i, 1, jax.device_put(mesh.batch(b))) for i, b in enumerate(batches))
        return prefetched(items)

    def chunks() -> Generator[tuple[int, int, Any], None, None]:
        index = start
        while group := list(itertools.islice(batches, plan.chunk)):
            chunk = jax.device_put(stack_chunk(group, plan.chunk))
            yield index, len(group), (chunk, np.int32(len(group)))
            index += len(group)

    return prefetched(chunks())


def _layer_keys_of(params: Any) -> list[str]:
    """The layer keys of a parameter state's leaves (paths ('layers', key, ...)), each once, in order."""
    from .checkpoint import _key_name

    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    return list(dict.fromkeys(_key_name(p[1]) for p, _ in paths if len(p) > 1))


def _layer_norms(grads: Any, keys: Sequence[str]) -> Any:
    """Each layer's gradient L2 norm (all its parameter leaves together), in the order of `keys`."""
    from .checkpoint import _key_name

    squares: dict[str, Any] = {}
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        k = _key_name(path[1])
        squares[k] = squares.get(k, 0.0) + jnp.sum(jnp.square(g.astype(jnp.float32)))
    return jnp.stack([jnp.sqrt(squares[k]) for k in keys]) if keys else jnp.zeros((0,), jnp.float32)


def _log_step(
    loggers: Sequence[Any], step: int, names: Sequence[str], values: Any, shown: Sequence[str]
) -> None:
    """One step's losses and metrics to the loggers that take steps (TensorBoard with --log-steps)."""
    record = {k: float(v) for k, v in zip(names, values, strict=True) if k in shown}
    for logger in loggers:
        if hasattr(logger, "step"):
            logger.step(step, record)


def _truncate_gradients(path: Path, epochs: int) -> None:
    """Keep gradients.jsonl's lines of the first `epochs` epochs (a resumed run continues its history)."""
    kept = []
    if epochs and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line)["epoch"]) <= epochs:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
    write_atomic(path, "".join(kept).encode())


def _gradient_lines(
    epoch: int,
    stage_objectives: Sequence[int],
    sums: Sequence[Any],
    objectives: Sequence[str],
    layers: Sequence[Sequence[str]],
) -> str:
    """gradients.jsonl's lines of one epoch: per objective of the stage, each layer's mean gradient norm over the
    epoch's good steps (sums[i]: the norms' sums, then the count)."""
    out = []
    for i in stage_objectives:
        row = np.asarray(sums[i], np.float64)
        count = max(float(row[-1]), 1.0)
        means = {name: float(v / count) for name, v in zip(layers[i], row[:-1], strict=True)}
        out.append(json.dumps({"epoch": epoch, "objective": objectives[i], "layers": means}) + "\n")
    return "".join(out)


def stat_names_of(objectives: Sequence[Any], metrics: Sequence[Any]) -> list[str]:
    """The names of what a step sums: each objective's loss ("loss" when there is one), then the metrics."""
    losses = ["loss"] if len(objectives) == 1 else [f"loss_{o.name}" for o in objectives]
    return [*losses, *(m.name for m in metrics)]


def model_values(
    gd: Any,
    params: Any,
    rest: Any,
    batch: Mapping[str, Any],
    input_names: Sequence[str],
    names: Sequence[str],
    draw: _Sampler,
    key: Any = None,
) -> tuple[Any, Any]:
    """The named values the losses and metrics read, and the updated non-parameter state."""
    # Fresh Variables at this trace level (inside grad), so batch statistics and RNG counts can be updated.
    m = nnx.merge(gd, *jax.tree.map(lambda x: x, (params, rest)))
    inputs = {k: batch[k] for k in input_names}
    if draw.drawn:
        inputs.update(draw(key, inputs))
    vals = m.values(inputs, names)
    _, _, new_rest = nnx.split(m, nnx.Param, ...)  # type: ignore[misc]  # flax's variadic return type
    return vals, new_rest


def make_eval_step(
    gd_eval: Any,
    objectives: Sequence[Any],
    metric_calls: Sequence[Any],
    input_names: Sequence[str],
    names: Sequence[str],
    draw: _Sampler,
) -> Callable[..., Any]:
    """The validation step: adds each objective's loss and each metric, weighted by the examples, to `sums`."""

    def eval_step(
        params: Any, rest: Any, sums: Any, batch: Mapping[str, Any], weights: Any, index: Any
    ) -> Any:
        key = draw.eval_key(index) if draw.drawn else None
        vals, _ = model_values(gd_eval, params, rest, batch, input_names, names, draw, key)
        stats = [total_loss(o.terms, vals, params, weights) for o in objectives]
        stats += [metric_value(c, vals, weights) for c in metric_calls]
        vec = jnp.stack([jnp.asarray(x, jnp.float32) for x in stats])
        w = jnp.sum(weights)
        return sums + jnp.concatenate([vec * w, w[None]])

    return eval_step


def evaluate_model(model: Any, config: TrainConfig, graph: Any, ds: DataSet, batch: int) -> dict[str, float]:
    """The spec's losses and metrics of `model` over `ds` in eval mode, exactly as the trainer validates."""
    from .objectives import plan_objectives

    objectives = [p.objective for p in plan_objectives(config, graph, getattr(config, "freeze", ()))]
    drawn = drawn_inputs(graph)
    input_names = tuple(n for n, _, _ in config.inputs if n not in drawn)
    draw = _Sampler(graph, drawn, input_names, config.seed)
    from ..backend.flax import forward_graphdef, graph_compiler_options

    model.eval()
    _, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]  # flax's variadic return type
    gd = forward_graphdef(model)  # as the trainer's validation
    metric_calls = tuple(m.call for m in config.metrics)
    step = make_eval_step(gd, objectives, metric_calls, input_names, config.value_names, draw)
    names = stat_names_of(objectives, config.metrics)
    state = {"params": params, "rest": rest}
    options = graph_compiler_options(graph)
    jitted = jax.jit(step, donate_argnums=2, compiler_options=options)
    vals = _evaluate(jitted, state, ds, batch, input_names, _Mesh(1), len(names))
    return dict(zip(names, vals, strict=True))


def _evaluate(
    eval_jit: Any,
    state: dict[str, Any],
    ds: DataSet,
    batch: int,
    feed: Sequence[str],
    mesh: _Mesh,
    n_stats: int,
) -> list[float]:
    """Loss and metrics over the whole split: the last batch padded to full size with zero weights."""
    sums = mesh.replicate(np.zeros((n_stats + 1,), np.float32))  # numpy: no program compiled for zeros
    sub = DataSet({k: ds.fields[k] for k in feed})
    for index, b in enumerate(sub.batches(batch)):
        n = next(iter(b.values())).shape[0]
        w = np.ones((batch,), np.float32)
        if n < batch:
            b = {k: np.concatenate([v, np.zeros((batch - n, *v.shape[1:]), v.dtype)]) for k, v in b.items()}
            w[n:] = 0
        sums = eval_jit(
            state["params"], state["rest"], sums, mesh.batch(b), mesh.batch({"w": w})["w"], np.int32(index)
        )
        mesh.settle(sums)
    host = np.asarray(jax.device_get(sums), np.float64)
    total = host[-1]
    return [float(np.float32(v / total)) for v in host[:-1]]


def _summary(record: Mapping[str, float], epochs: int) -> str:
    parts = [f"epoch {int(record['epoch'])}/{epochs}"]
    parts += [
        f"{k} {_fmt(v)}"
        for k, v in record.items()
        if k not in ("epoch", "time", "stage") and not k.startswith("lr")
    ]
    parts.append(f"{record['time']:.2f}s")
    return "  ".join(parts)


def _early_stop(config: TrainConfig, record: Mapping[str, float], early: dict[str, Any]) -> bool:
    es = config.early_stop
    if es is None:
        return False
    name = es["metric"]
    if name not in record:
        return False
    mode = es["mode"]
    if mode == "auto":
        mode = "max" if any(w in name for w in ("accuracy", "acc")) else "min"
    v = record[name]
    best = early["best"]
    better = best is None or (v < best - es["min_delta"] if mode == "min" else v > best + es["min_delta"])
    if better:
        early["best"], early["bad_epochs"] = v, 0
        return False
    early["bad_epochs"] += 1
    return bool(early["bad_epochs"] >= es["patience"])


def _blamed_rate(
    rates: Sequence[tuple[str, Any]], opt_states: Sequence[Any], bad_step: int
) -> tuple[str, float, int | None] | None:
    """The first non-finite, else the largest above LR_TOO_LARGE, learning rate of the updates applied before
    the bad step: (objective, rate, update index; None for a constant rate); None when every rate was sane.
    An optimizer's own `count` says how many updates it applied (a scheduled one always keeps one; the global
    step stands in for a constant rate without state)."""
    blamed: tuple[str, float, int | None] | None = None
    for (name, lr), opt in zip(rates, opt_states, strict=True):
        counts = optax.tree_utils.tree_get_all_with_path(opt, "count")
        applied = int(jax.device_get(counts[0][1])) if counts else bad_step
        if applied <= 0:
            continue  # no update of this objective ran: its rate cannot have done it
        if callable(lr):
            values = np.asarray(jax.device_get(lr(jnp.arange(applied, dtype=jnp.int32))), np.float64).ravel()
        else:
            values = np.array([float(lr)])
        bad = ~np.isfinite(values)
        k = int(np.argmax(bad)) if bad.any() else int(np.argmax(values))
        if not bad.any() and values[k] <= LR_TOO_LARGE:
            continue
        here = (name, float(values[k]), k if callable(lr) else None)
        if blamed is None or _severity(here[1]) > _severity(blamed[1]):
            blamed = here
    return blamed


def _severity(lr: float) -> tuple[bool, float]:
    """Non-finite rates first, then the larger."""
    return (not math.isfinite(lr), lr if math.isfinite(lr) else 0.0)


def _diagnose(
    config: TrainConfig,
    graph: Any,
    gd: Any,
    state: dict[str, Any],
    ds: DataSet,
    batch: int,
    epoch: int,
    bad_step: int,
    epoch_start_step: int,
    feed: Sequence[str],
    shuffle: bool,
    objective: Any = None,
) -> Divergence:
    """Re-run the offending batch outside jit on the state just before it; name the first non-finite node (the
    learning rate to blame, if any, is _blamed_rate's)."""
    index = bad_step - epoch_start_step
    rng = np.random.default_rng([config.seed, epoch]) if shuffle else None
    b = next(_batches(ds, batch, rng, index, feed))
    params, rest = jax.device_get((state["params"], state["rest"]))
    model = nnx.merge(gd, params, rest)
    values = model.trace(b)
    named = {k: values.get(graph.nodes[r.node].name) for k, r in graph.values}
    named = {
        k: (v[graph.value_map[k].index] if isinstance(v, tuple) else v)
        for k, v in named.items()
        if v is not None
    }
    try:
        loss = float(total_loss(objective.terms, named, params))
    except KeyError:
        loss = float("nan")
    for node in graph.nodes:
        v = values.get(node.name)
        if v is None:
            continue
        parts = v if isinstance(v, tuple) else (v,)
        if any(
            jnp.issubdtype(jnp.asarray(p).dtype, jnp.inexact) and not bool(jnp.all(jnp.isfinite(p)))
            for p in parts
        ):
            return Divergence(bad_step, epoch, loss, node.name, node.op, node.span)
    for _, call in objective.terms:
        t = term_value(call, named, params)
        if not bool(jnp.isfinite(t)):
            where = f" at {call.span}" if call.span.line > 0 else ""
            return Divergence(bad_step, epoch, float(t), term=f"{call.name}{where}")
    return Divergence(bad_step, epoch, loss)


def write_curves(
    history: Sequence[Mapping[str, float]], path: Path, title: str = "", drawer: CurvesDrawer | None = None
) -> str | None:
    """Plot loss and metrics per epoch to `path` (atomically); a note instead when matplotlib is missing.
    `drawer`: the helper process started with a short run, which has matplotlib imported already; where it
    fails, this process draws."""
    png = drawer.render(history, title) if drawer is not None else None
    if png is None:
        try:
            png = render_curves(history, title, import_module)
        except ImportError:
            return MISSING
    write_atomic(path, png)
    return None
