"""How fast `specc check` is: cold start of the whole process on a small spec, and scaling with graph size.

Usage: python bench/check_speed.py [--reps 5]
Prints a markdown table (paste into docs/benchmarks.md). Targets (issue 3): cold check of a 20-line spec < 0.3 s;
a 10,000-node graph < 1 s; time linear in size. Issue 8: a pipeline of 30,000 and of 160,000 `->relu` stages (the
latter the largest file specc reads, 1 MB) scale linearly — stage naming was quadratic (25 s, and over 600 s); and
the abstract Flax lowering plus a trace of a 10,000-node graph (once a timed test, now only measured here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GENERATED = """
block Unit(c) {{
  input x: [N, C]
  h = x -> dense(c) -> relu
  y = h -> dense(c) -> relu
  output y
}}

model Deep {{
  input x: f32[N, 32]
  y = x -> repeat({n}, Unit(32)) -> dense(10)
  output y
}}
"""


# "Cold" means a fresh process, as a user typing the command gets; Python's bytecode cache may exist (pip
# writes it at install time), so PYTHONDONTWRITEBYTECODE, set in some sandboxes, is dropped and one warm-up run
# fills the cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold_check(spec: Path, reps: int) -> float:
    cmd = [sys.executable, "-m", "specc.cli", "check", str(spec)]
    subprocess.run(cmd, check=True, capture_output=True, env=ENV)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    print("| case | nodes | median seconds |")
    print("|---|---:|---:|")
    mlp = ROOT / "specs" / "mlp.net"
    print(f"| `specc check specs/mlp.net`, whole process, cold | 5 | {cold_check(mlp, args.reps):.3f} |")
    python_only = statistics.median([_time([sys.executable, "-c", "pass"]) for _ in range(args.reps)])
    print(f"| python -c pass (interpreter start-up, for reference) | – | {python_only:.3f} |")
    with tempfile.TemporaryDirectory() as d:
        for units in (250, 2500, 25000):
            spec = Path(d) / f"deep{units}.net"
            spec.write_text(GENERATED.format(n=units))
            import specc

            t = time.perf_counter()
            g = specc.load(spec).graph()
            build = time.perf_counter() - t
            whole = cold_check(spec, max(1, args.reps // 2))
            print(
                f"| repeat({units}, Unit) — in-process check / whole process | {len(g.nodes):,} | "
                f"{build:.3f} / {whole:.3f} |"
            )
        pipelines(Path(d))
        lower_and_trace(Path(d))


PIPELINE = "model P {{\n  input x: f32[N, 4]\n  y = x{stages}\n  output y\n}}\n"

DEEP_UNIT = """
block Unit() {{
  input x: [N, 8]
  y = x -> dense(8) -> relu
  z = y + x
  output z
}}
model Deep {{
  input x: f32[N, 8]
  y = x -> repeat({n}, Unit())
  output y
}}
"""


def pipelines(d: Path) -> None:
    """Every front-end pass on one long pipeline: parse, build (stage naming), verify, count, IR dump, fmt."""
    import specc
    from specc.frontend.fmt import format_module
    from specc.ir.printer import format_graph
    from specc.passes.count import count
    from specc.passes.verify import verify

    for n in (30_000, 160_000):
        spec = d / f"pipeline{n}.net"
        spec.write_text(PIPELINE.format(stages="->relu" * n))
        size = spec.stat().st_size
        t = time.perf_counter()
        s = specc.load(spec)
        g = s.graph()
        check = time.perf_counter() - t
        t = time.perf_counter()
        verify(g)
        count(g)
        format_graph(g)
        format_module(s.program.module)
        passes = time.perf_counter() - t
        whole = cold_check(spec, 1)
        print(
            f"| pipeline of {n:,} `->relu` ({size / 1e6:.2f} MB) — in-process check / verify+count+dump+fmt / "
            f"whole process | {len(g.nodes):,} | {check:.2f} / {passes:.2f} / {whole:.2f} |"
        )


def lower_and_trace(d: Path) -> None:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import specc
    from specc.backend.flax import build_module

    spec = d / "deep_unit.net"
    spec.write_text(DEEP_UNIT.format(n=2500))
    g = specc.load(spec).graph()
    t = time.perf_counter()
    graphdef, state = nnx.split(build_module(g, abstract=True))
    jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x=x), state, jax.ShapeDtypeStruct((2, 8), jnp.float32))
    print(
        f"| repeat(2500, Unit) — abstract Flax module + jax.eval_shape trace | {len(g.nodes):,} | "
        f"{time.perf_counter() - t:.2f} |"
    )


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
