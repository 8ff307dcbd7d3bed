"""Find runs of identical consecutive segments in a lowered plan, so the module can run them as one `lax.scan`
over stacked parameters: the segment is traced and compiled once, not once per copy.

A run is k copies of a segment of L steps, each copy the same ops with the same arguments, lowerings and types as
the first. A copy reads only its own values, the previous copy's values at fixed positions (the carry: for the
first copy, the values just before the run) and values from before the run that every copy shares. Only the last
copy's carried values may be read after the run. `repeat(n, Block())` gives such runs; so does a long chain written
out by hand, whatever produced it: detection looks at the plan, not at how the spec was written.

Whether a run is worth rolling is a rule (`should_roll`): a scan saves compile time in proportion to the nodes it
folds, and costs a little each step (stacking parameters, the loop), and much more on XLA:CPU for convolutions,
which run slower inside a device loop.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from ..ir.graph import path_between

if TYPE_CHECKING:
    from ..ir.graph import Graph

# Roll a run only when it folds at least this many nodes: below, XLA compiles the unrolled copies in well under a
# second and the step is as fast or faster without the loop.
ROLL_MIN_NODES = 200
ROLL_MIN_COPIES = 4
# Convolutions and windowed pooling are several times slower inside XLA:CPU's while loop (execution.py): on the CPU
# such runs are rolled only when unrolling them would take minutes to compile.
ROLL_MIN_NODES_SLOW_CPU = 2000
# Convolutions and windowed pooling run slower inside XLA:CPU's device loop (a `lax.scan` or `fori_loop`): LeNet-5
# trained 2.6x slower scanned over batches, a small ResNet 8.1x (execution.py's rule uses the same list).
LOOP_SLOW_CPU_OPS = frozenset(
    {
        "conv",
        "conv_transpose",
        "convolve",
        "locally_connected",
        "avgpool",
        "maxpool",
        "adaptive_avgpool",
        "upsample",
    }
)
# Longest segment looked for (a transformer layer is ~40 nodes).
MAX_SEGMENT = 256

# where a segment step's input comes from
INTERNAL, CARRY, SHARED = 0, 1, 2


class StepLike(Protocol):
    @property
    def refs(self) -> tuple[tuple[int, int], ...]: ...


@dataclass(frozen=True)
class Run:
    """k copies of a segment of L steps starting at step `start`.

    sources[j][slot] says where input `slot` of the segment's step j comes from: (INTERNAL, position in the
    segment), (CARRY, index into `carried`) or (SHARED, node id before the run). carried[i] is the position in the
    segment whose value the next copy reads; carry_in[i] is the node the first copy reads in its place.
    """

    start: int
    length: int
    copies: int
    sources: tuple[tuple[tuple[int, int], ...], ...]
    carried: tuple[int, ...]
    carry_in: tuple[int, ...]

    @property
    def end(self) -> int:
        return self.start + self.length * self.copies

    @property
    def nodes(self) -> int:
        return self.length * self.copies

    def copy_of(self, node: int) -> tuple[int, int]:
        """(copy, position in the segment) of a node inside the run."""
        return divmod(node - self.start, self.length)

    def exported(self) -> frozenset[int]:
        """The node ids whose values the run leaves behind: the last copy's carried positions."""
        return self._exported

    @cached_property
    def _exported(self) -> frozenset[int]:
        last = self.start + self.length * (self.copies - 1)
        return frozenset(last + p for p in self.carried)


def run_index(runs: Sequence[Run], n: int) -> list[int]:
    """For each of n nodes, the index of the run it belongs to in `runs`, -1 outside any."""
    out = [-1] * n
    for k, run in enumerate(runs):
        out[run.start : run.end] = [k] * run.nodes
    return out


def should_roll(run: Run, ops: Sequence[str]) -> bool:
    """The rule: at least ROLL_MIN_COPIES copies folding ROLL_MIN_NODES nodes; a segment with a convolution or
    windowed pooling only from ROLL_MIN_NODES_SLOW_CPU nodes. ops[i]: node i's op name.

    The rule reads the graph only, never the platform: the rolled layout (one stacked parameter per segment
    position) is what checkpoints hold, so a run trained on a GPU loads on a CPU.
    """
    if run.copies < ROLL_MIN_COPIES:
        return False
    slow = any(ops[i] in LOOP_SLOW_CPU_OPS for i in range(run.start, run.start + run.length))
    return run.nodes >= (ROLL_MIN_NODES_SLOW_CPU if slow else ROLL_MIN_NODES)


def copy_index(graph: Graph, roll: bool | None = None) -> dict[int, int]:
    """Each rolled node's copy: its index on the leading axis of its stacked layer's variables."""
    return {
        nid: (nid - r.start) // r.length for r in graph_runs(graph, roll) for nid in range(r.start, r.end)
    }


def describe_runs(graph: Graph) -> list[str]:
    """One line per rolled run, for `specc compile` and the train banner."""
    out = []
    for r in graph_runs(graph):
        first, last = graph.nodes[r.start].name, graph.nodes[r.start + r.length - 1].name
        span = first if r.length == 1 else f"{first} … {last}"
        out.append(f"{span}: {r.copies:,} copies of {r.length} node(s) run as one scan (compiled once)")
    return out


@dataclass(frozen=True)
class _NodeRefs:
    refs: tuple[tuple[int, int], ...]


def _hashable(x: Any) -> Any:
    try:
        hash(x)
    except TypeError:
        return repr(x)
    return x


_CACHE: dict[tuple[int, bool | None], tuple[Graph, tuple[Run, ...]]] = {}


def graph_runs(graph: Graph, roll: bool | None = None) -> tuple[Run, ...]:
    """The runs a model lowers as scans (node ids = positions): by the rule when roll is None, every run of two or
    more copies when True, none when False. Copies must agree in op, arguments, types and named instance; a run
    whose layers another node shares (a named instance applied again) stays unrolled."""
    if roll is False:
        return ()
    hit = _CACHE.get((id(graph), roll))
    if hit is not None and hit[0] is graph:
        return hit[1]
    nodes = graph.nodes
    items = [
        _NodeRefs(tuple((r.node, -1 if len(nodes[r.node].outputs) == 1 else r.index) for r in n.inputs))
        for n in nodes
    ]
    shared = sorted({n.shares for n in nodes if n.shares is not None})
    rerun = rerun_nodes(graph)
    sigs = [
        None
        if n.op == "input" or n.shares is not None or n.id in rerun
        else (n.op, _hashable(n.attrs), tuple(graph.type_of(r) for r in n.inputs), n.outputs, n.instance)
        for n in nodes
    ]
    ops = [n.op for n in nodes]

    def keep(run: Run) -> bool:
        if any(run.start <= s < run.end for s in shared):
            return False
        return run.copies >= 2 if roll else should_roll(run, ops)

    runs = tuple(find_runs(items, sigs, keep))
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[(id(graph), roll)] = (graph, runs)
    return runs


def rerun_nodes(graph: Graph) -> frozenset[int]:
    """The nodes an op runs again (`grad(y, x)`: the path from x to y, and the grad itself), which stay unrolled:
    the lowering re-evaluates them one by one, and x's value must exist on its own, not inside a loop."""
    from ..ops._registry import get_op

    out: set[int] = set()
    for n in graph.nodes:
        op = get_op(n.op) if n.op not in ("input", "param") else None
        if op is not None and op.reruns is not None:
            x, y = op.reruns(n.inputs)
            out.add(n.id)
            out.update(path_between(graph.nodes, x, y) or ())
    return frozenset(out)


def find_runs(steps: Sequence[StepLike], signatures: Sequence[Any], keep: Callable[[Run], bool]) -> list[Run]:
    """Non-overlapping runs, left to right, each the shortest segment at its start that `keep` accepts.

    signatures[i] is hashable and equal for steps that may be copies of each other (None: never part of a run);
    steps[i].refs: its inputs as (step, output index or -1 for a single-output step).
    """
    n = len(steps)
    ids: dict[Any, int] = {}
    sig: list[int] = []
    for i, k in enumerate(signatures):
        sig.append(-1 - i if k is None else ids.setdefault(k, len(ids)))
    next_same = [n] * n
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        next_same[i] = last.get(sig[i], n)
        last[sig[i]] = i
    # a period that failed at some start: skip its run instead of re-checking every start inside it
    dead: dict[int, int] = {}
    runs: list[Run] = []
    i = 0
    while i < n:
        found: Run | None = None
        j = next_same[i]
        while j < n and j - i <= MAX_SEGMENT and found is None:
            L = j - i
            if dead.get(L, -1) <= i:
                seg, k = sig[i:j], 1
                while i + (k + 1) * L <= n and sig[i + k * L : i + (k + 1) * L] == seg:
                    k += 1
                if k >= 2:
                    run = _wire(steps, i, L, k)
                    if run is not None and keep(run):
                        found = run
                    else:
                        dead[L] = i + k * L
            j = next_same[j]
        if found is None:
            i += 1
        else:
            runs.append(found)
            i = found.end
    return runs


def _wire(steps: Sequence[StepLike], start: int, L: int, k: int) -> Run | None:
    """The run's wiring, with k cut down to the copies that wire alike (None if fewer than two do)."""
    first, second = start, start + L
    sources: list[tuple[tuple[int, int], ...]] = []
    carried: dict[int, int] = {}  # position → carry index
    carry_in: list[int] = []
    for j in range(L):
        s0, s1 = steps[first + j], steps[second + j]
        row = []
        for (r0, i0), (r1, i1) in zip(s0.refs, s1.refs, strict=True):
            if i0 != -1 or i1 != -1:
                return None  # a multi-output node's element: not carried (LSTM states stay unrolled)
            if r1 >= second:
                if r0 - first != r1 - second:
                    return None
                row.append((INTERNAL, r1 - second))
            elif r1 >= first:
                if r0 >= first:
                    return None
                p = r1 - first
                if p not in carried:
                    carried[p] = len(carry_in)
                    carry_in.append(r0)
                elif carry_in[carried[p]] != r0:
                    return None
                row.append((CARRY, carried[p]))
            else:
                if r0 != r1:
                    return None
                row.append((SHARED, r1))
        sources.append(tuple(row))
    # every later copy wires the same way
    copies = 2
    positions = tuple(carried)
    while copies < k and _wires_alike(steps, start + copies * L, L, sources, positions):
        copies += 1
    run = Run(start, L, copies, tuple(sources), tuple(carried), tuple(carry_in))
    # nothing after the run reads a value inside it other than the last copy's carried ones
    exported = run.exported()
    for s in steps[run.end :]:
        for r, _ in s.refs:
            if start <= r < run.end and r not in exported:
                return None
    return run


def _wires_alike(
    steps: Sequence[StepLike],
    base: int,
    L: int,
    sources: Sequence[tuple[tuple[int, int], ...]],
    carried: Sequence[int],
) -> bool:
    prev = base - L
    for j in range(L):
        for (r, _), (kind, v) in zip(steps[base + j].refs, sources[j], strict=True):
            if kind == INTERNAL:
                ok = r == base + v
            elif kind == SHARED:
                ok = r == v
            else:
                ok = r == prev + carried[v]
            if not ok:
                return False
    return True


_IDENT = re.compile(r"\W")


def layer_keys(graph: Graph, roll: bool | None = None, avoid: frozenset[str] = frozenset()) -> dict[int, str]:
    """A Python identifier per node with parameters, state or RNG (`stage1.0/conv` → `stage1_0_conv`), unique,
    none of `avoid` (the Flax module's own attribute names: backend.flax.layer_keys; `specc check`, which imports
    no JAX, checks the train section with keys that may differ from those in a name nnx.Dict has).

    The copies of a rolled run (`roll` as for build_module) share one key per segment position, their stacked
    layer's: the first copy's with the number of copies (`y_Unit_0_h_dense_x500`).
    """
    first: dict[int, int] = {}  # a rolled node → the first copy's node at its position
    copies: dict[int, int] = {}  # a first copy's node → the run's copies
    for run in graph_runs(graph, roll):
        for nid in range(run.start, run.end):
            first[nid] = run.start + (nid - run.start) % run.length
        for nid in range(run.start, run.start + run.length):
            copies[nid] = run.copies
    out: dict[int, str] = {}
    used: set[str] = set()
    # not Python keywords, the names emitted Flax source uses (emit_flax.py), nor the module's own (`avoid`)
    reserved = (
        set(avoid)
        | set(keyword.kwlist)
        | {"jax", "jnp", "nnx", "self", "rngs", "sinusoids", "adaptive_avgpool"}
    )
    for n in graph.nodes:
        if first.get(n.id, n.id) != n.id:
            out[n.id] = out[first[n.id]]
            continue
        base = _IDENT.sub("_", n.name)
        if not base or base[0].isdigit() or base.startswith("_") or base in reserved:
            base = f"n_{base}"
        if n.id in copies:
            base = f"{base}_x{copies[n.id]}"
        key, k = base, 2
        while key in used:
            key, k = f"{base}_{k}", k + 1
        used.add(key)
        out[n.id] = key
    return out
