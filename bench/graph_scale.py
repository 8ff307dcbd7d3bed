"""How build, trace and compile scale with graph size (issue 12, part 4): generated specs of 1k / 10k / 100k nodes,
each phase timed on its own in one process.

Usage: python bench/graph_scale.py [--sizes 1000,10000,100000] [--shapes chain,residual,random] [--phases ...]
       python bench/graph_scale.py --profile build --sizes 2000   # cProfile of one phase, top 25 by own time

Phases: check (parse + IR + shape check), build (the abstract Flax module: what `specc compile` lowers),
init (concrete parameters, as `specc train` makes them), trace (jax.jit(...).lower: Flax
module → StableHLO), compile (XLA). Prints a markdown table (paste into docs/benchmarks.md); `--cli` also times
the whole `specc compile FILE` process (cold, persistent compilation cache off).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# a deep MLP chain: `x -> dense(16) -> relu -> dense(16) -> relu ...`, 2 nodes a layer
CHAIN = """model Chain {{
  input x: f32[N, 16]
  y = x{stages} -> dense(10)
  output y
}}
"""

# `random`: the chain with each layer's width drawn from 8-40 and its activation from relu / tanh / sigmoid (seeded)

# a repeat of a residual block: dense, relu, add — 3 nodes a copy
RESIDUAL = """block Unit() {{
  input x: [N, 16]
  h = x -> dense(16) -> relu
  y = h + x
  output y
}}

model Residual {{
  input x: f32[N, 16]
  y = x -> repeat({n}, Unit()) -> dense(10)
  output y
}}
"""


def spec_text(shape: str, nodes: int) -> str:
    if shape == "chain":
        return CHAIN.format(stages=" -> dense(16) -> relu" * (nodes // 2))
    if shape == "random":  # no two neighbouring layers alike, so nothing rolls: one long XLA program
        r = random.Random(0)
        acts = ("relu", "tanh", "sigmoid")
        return CHAIN.format(
            stages="".join(f" -> dense({r.randint(8, 40)}) -> {r.choice(acts)}" for _ in range(nodes // 2))
        )
    return RESIDUAL.format(n=nodes // 3)


PHASES = ("check", "build", "init", "trace", "compile")


def run_phases(path: Path, phases: tuple[str, ...], profile: str | None) -> tuple[int, dict[str, float]]:
    """Each phase's seconds; the later phases take what the earlier ones produced."""
    import jax
    from flax import nnx

    import specc
    from specc.backend.compile import abstract_inputs, bind_sizes
    from specc.backend.flax import build_module

    got: dict[str, Any] = {}

    def check() -> None:
        got["graph"] = specc.load(path).graph()

    def build() -> None:
        model = build_module(got["graph"], abstract=True)
        model.eval()
        got["model"] = model

    def init() -> None:
        jax.block_until_ready(nnx.state(build_module(got["graph"], seed=0)))

    def trace() -> None:
        g = got["graph"]
        graphdef, state = nnx.split(got["model"])

        def forward(state: Any, inputs: Any) -> Any:
            return nnx.merge(graphdef, state)(inputs)

        got["lowered"] = jax.jit(forward).lower(state, abstract_inputs(g, bind_sizes(g, 32)))

    def compile_() -> None:
        got["lowered"].compile()

    fns: dict[str, Callable[[], None]] = {
        "check": check,
        "build": build,
        "init": init,
        "trace": trace,
        "compile": compile_,
    }
    needs = {"build": "check", "init": "check", "trace": "build", "compile": "trace"}
    wanted: list[str] = []
    for p in phases:  # each phase brings what it needs
        chain = [p]
        while chain[-1] in needs:
            chain.append(needs[chain[-1]])
        for q in reversed(chain):
            if q not in wanted:
                wanted.append(q)
    times: dict[str, float] = {}
    for p in PHASES:
        if p not in wanted:
            continue
        prof = cProfile.Profile() if p == profile else None
        t = time.perf_counter()
        if prof is not None:
            prof.runcall(fns[p])
        else:
            fns[p]()
        times[p] = time.perf_counter() - t
        if prof is not None:
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return len(got["graph"].nodes), {p: times[p] for p in phases}


def whole_compile(path: Path) -> float:
    """`specc compile FILE` as a fresh process, with JAX's persistent cache off (so XLA really compiles)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SPECC_CACHE_DIR"] = ""
    cmd = [sys.executable, "-m", "specc.cli", "compile", str(path), "--json"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--shapes", default="chain,residual")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--profile", choices=PHASES, default=None)
    ap.add_argument("--cli", action="store_true", help="also time the whole `specc compile` process")
    ap.add_argument("--one", nargs=3, metavar=("SHAPE", "NODES", "PHASES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # a child: one spec, one fresh process (caches of an earlier size must not help a later one)
        shape, nodes, phases = args.one
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"{shape}{nodes}.net"
            path.write_text(spec_text(shape, int(nodes)))
            n, times = run_phases(path, tuple(phases.split(",")), args.profile)
        print(n, *(f"{p}={s:.3f}" for p, s in times.items()))
        return
    phases = tuple(args.phases.split(","))
    cols = [*phases, *(["specc compile (process)"] if args.cli else [])]
    print("| graph | nodes | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * len(cols))
    for shape in args.shapes.split(","):
        for size in map(int, args.sizes.split(",")):
            cmd = [sys.executable, __file__, "--one", shape, str(size), ",".join(phases)]
            if args.profile:
                cmd += ["--profile", args.profile]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if args.profile:
                sys.stderr.write(out.stderr)
            if out.returncode != 0:  # e.g. the 100k chain's text is over the 1 MB spec-file cap
                why = (out.stderr.strip().splitlines() or ["failed"])[-1]
                print(f"| {shape} | ~{size:,} | {why} |", flush=True)
                continue
            n, *pairs = out.stdout.split()
            secs = [f"{float(p.split('=')[1]):.2f}" for p in pairs]
            if args.cli:
                with tempfile.TemporaryDirectory() as d:
                    path = Path(d) / f"{shape}{size}.net"
                    path.write_text(spec_text(shape, size))
                    secs.append(f"{whole_compile(path):.2f}")
            print(f"| {shape} | {int(n):,} | " + " | ".join(secs) + " |", flush=True)


if __name__ == "__main__":
    main()
