"""Where one train step's time goes, operation by operation: specc's jitted step (batch 100, SGD momentum), run as
`specc train` runs it (split over the CPU devices it makes for the model, compiled with the model's XLA options),
traced by JAX's profiler; each XLA operation's time per device and step, and what it computes (the fusion's root
in the optimized HLO). The profiles in docs/benchmarks.md were read this way; `bench.step_time` times whole steps.

    .venv/bin/python -m bench.profile_step [--models convnet,resnet] [--steps 10] [--top 25]

An all-reduce's time includes its wait for the other devices: a device that arrives first waits there.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gzip
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from .models import BATCH, MODELS, SEED
from .step_time import _jax_step, _spec_logits, prepare

# Trace events that are the runtime's, not an XLA operation's: dispatch, argument handling, the executor's own
# spans, host-to-device copies, Python frames ("$file:line"), waits at a rendezvous or for the thread pool, and
# the executor's "end: NAME" mark at an operation's completion (no operation; under load it can last a millisecond).
RUNTIME = re.compile(
    r"Execute|Pjit|Rendezvous|Wait|Await|ParseArguments|LaunchOnDevice|Dispatch|DevicePut|^\$|^\[\d+\]|^end: "
)


def op_times(trace_dir: Path) -> tuple[collections.Counter[str], float]:
    """Microseconds per XLA operation name, summed over a trace's events (every device and step), and the busy
    time of all of them: per thread, the union of their spans, so that a loop's body does not count twice (once
    in the `while` that contains it)."""
    totals: collections.Counter[str] = collections.Counter()
    spans: dict[tuple[Any, Any], list[tuple[float, float]]] = collections.defaultdict(list)
    for path in trace_dir.rglob("*.trace.json.gz"):
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
        for e in events:
            if e.get("ph") == "X" and not RUNTIME.search(e["name"]):
                totals[e["name"]] += e["dur"]
                spans[e["pid"], e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    busy = 0.0
    for intervals in spans.values():
        end = -math.inf
        for start, stop in sorted(intervals):
            busy += max(0.0, stop - max(start, end))
            end = max(end, stop)
    return totals, busy


def describe(hlo: str, name: str) -> str:
    """What the operation `name` computes: its result type and, for a fusion, its called computation's root."""
    line = re.search(rf"^\s*(?:ROOT )?%{re.escape(name)} = (.*)$", hlo, re.M)
    if line is None:
        return ""
    m = re.match(r"(\(.*?\)|\S+) ([\w-]+)\(", line.group(1))
    if m is None:
        return ""
    result, op = m.groups()
    called = re.search(r"calls=%([\w.-]+)", line.group(1))
    if called is not None:
        body = re.search(rf"^%{re.escape(called.group(1))} .*?\n(.*?)\n}}", hlo, re.S | re.M)
        root = re.search(r"ROOT %\S+ = (?:\(.*?\)|\S+) ([\w-]+)\((.*)", body.group(1)) if body else None
        if root is not None:
            window = re.search(r"window=\{[^}]*\}", root.group(2))
            op = root.group(1) + (" " + window.group(0) if window else "")
    return f"{result} {op}"


def main(argv: list[str] | None = None) -> int:
    import jax

    from specc.backend.flax import build_module, graph_compiler_options

    ap = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="convnet", help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--steps", type=int, default=10, help="traced steps, after three untraced")
    ap.add_argument("--top", type=int, default=25, help="operations shown per model")
    args = ap.parse_args(argv)
    graphs, splits, (x, y) = prepare(args.models.split(","))
    for name, graph in graphs.items():
        devices = splits[name]
        module = build_module(graph, seed=SEED)
        logits = functools.partial(_spec_logits, output=graph.outputs[0][0])
        run: Any = _jax_step(module, logits, graph_compiler_options(graph), devices)
        for _ in range(3):  # compiled and warm
            run(x, y)
        with tempfile.TemporaryDirectory() as d:
            with jax.profiler.trace(d):
                for _ in range(args.steps):
                    run(x, y)
            totals, busy = op_times(Path(d))
        hlo = run.hlo(x, y)
        per = args.steps * devices * 1e3  # µs summed over steps and devices → ms per device and step
        print(
            f"\n{name}: batch {BATCH} on {devices} device(s); ms per device and step, {args.steps} steps traced"
        )
        print(f"  {'busy, all operations':34s} {busy / per:7.2f}")
        for op, us in totals.most_common(args.top):
            what = describe(hlo, op)
            if (kind := what.rsplit(" ", 1)[-1]) in ("while", "conditional", "call"):
                what = f"{kind}, its body's operations also listed: {what}"
            print(f"  {op[:34]:34s} {us / per:7.2f}  {what[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
