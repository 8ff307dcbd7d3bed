"""Epoch times of `specc train` per execution strategy (`--exec step|prefetch|scan`), in one process, the
strategies interleaved in rounds so a shared machine's load falls on all of them alike. Prints the first epoch
(compilation included) and the median steady epoch per strategy, and each one's ratio to `step`.

    .venv/bin/python bench/exec_speed.py [--models digits,convnet] [--epochs 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import specc
from specc.train.loop import train_and_evaluate
from specc.train.spec import build_config

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"digits": ROOT / "specs" / "digits_mlp.net", "convnet": ROOT / "specs" / "mnist_convnet.net"}
MODES = ("step", "prefetch", "scan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits,convnet")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    for name in args.models.split(","):
        spec = specc.load(MODELS[name])
        graph = spec.graph()
        config = build_config(spec, graph, [f"epochs={args.epochs}"])
        first: dict[str, list[float]] = {m: [] for m in MODES}
        steady: dict[str, list[float]] = {m: [] for m in MODES}
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else reversed(MODES):
                with tempfile.TemporaryDirectory() as out:
                    t = time.perf_counter()
                    result = train_and_evaluate(config, Path(out), verbose=False, graph=graph, execution=mode)
                    wall = time.perf_counter() - t
                times = [h["time"] for h in result.history]
                first[mode].append(times[0])
                steady[mode] += times[1:]
                print(
                    f"{name} {mode:8s} round {r + 1}: first {times[0]:.3f} s, steady "
                    f"{statistics.median(times[1:]):.3f} s, run {wall:.1f} s, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        base = statistics.median(steady["step"])
        print(f"\n{name}: strategy | first epoch | steady epoch (median) | steady / step")
        for mode in MODES:
            s = statistics.median(steady[mode])
            print(f"{name}: {mode} | {statistics.median(first[mode]):.3f} s | {s:.3f} s | {s / base:.2f}")
        print()


if __name__ == "__main__":
    main()
