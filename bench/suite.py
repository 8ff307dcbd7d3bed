"""The suite's driver: one process per (model, contender), interleaved in rounds with the order rotated, records
gathered into per-model summaries (steady epoch median and spread, first epoch, peak RSS, accuracy, ratios)."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specc.malloc import train_environment

from .models import ROOT

CONTENDERS = ("specc", "flax", "torch")


@dataclass
class Summary:
    """One contender on one model, over every round: seconds, MiB, accuracy, and what each process reported."""

    contender: str
    steady: list[float]  # every epoch after the first, all rounds together
    first: list[float]  # the first epoch of each round (set-up and compilation included)
    rss_mb: float  # the largest peak RSS of its processes
    accuracy: float | None  # median over rounds
    params: int | None
    initial_loss: float | None
    threads: str
    process_s: list[float]  # whole-process wall time per round

    @property
    def median(self) -> float | None:
        return statistics.median(self.steady) if self.steady else None


@dataclass
class ModelResult:
    model: str
    params: int
    initial_loss: float | None
    contenders: dict[str, Summary] = field(default_factory=dict)

    def ratio(self, other: str) -> float | None:
        a, b = self.contenders.get("specc"), self.contenders.get(other)
        if a is None or b is None or a.median is None or b.median is None:
            return None
        return a.median / b.median


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _worker(
    contender: str, model: str, work: Path, epochs: int, data: str, threads: int, in_process: bool = False
) -> tuple[dict[str, Any], float]:
    out = work / f"{model}-{contender}.json"
    args = [contender, model, f"--epochs={epochs}", f"--data={data}", f"--init={work / (model + '.npz')}"]
    args += [f"--threads={threads}", f"--out={out}"]
    if in_process:  # the smoke test's cheap path: the same worker, no fresh interpreter
        from .worker import main

        t = time.perf_counter()
        main(args)
        return json.loads(out.read_text()), time.perf_counter() - t
    env = {**os.environ, "SPECC_CACHE_DIR": str(work / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if contender == "torch":
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # under load, busy-waiting OpenMP threads run 5-18x slower
    if contender == "specc":  # as the `specc` command re-executes itself (specc/malloc.py)
        env = train_environment(env)
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{contender} on {model} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(out.read_text()), wall


def run_suite(
    models: Sequence[str],
    contenders: Sequence[str],
    rounds: int,
    epochs: int,
    data: str,
    say: Callable[[str], None] = print,
    in_process: bool = False,
    on_model: Callable[[list[ModelResult]], None] | None = None,
) -> list[ModelResult]:
    """Train every model with every contender, `rounds` times; within a round each model's contenders run one
    after another in an order rotated every round, so that load from other processes falls on all alike.
    `in_process`: call the workers in this process instead (a smoke test; the timings then mean little).
    `on_model`: called in the last round after each model, with the models finished so far (a long run that is
    stopped keeps what it measured)."""
    threads = os.cpu_count() or 1
    results: dict[str, ModelResult] = {}
    records: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = {}
    with tempfile.TemporaryDirectory(prefix="specc-bench-") as d:
        work = Path(d)
        for r in range(rounds):
            for i, m in enumerate(models):
                if m not in results:  # specc's initial parameters, for the hand-written models to load
                    init, _ = _worker("init", m, work, epochs, data, threads, in_process)
                    results[m] = ModelResult(m, init["params"], init.get("initial_val_loss"))
                k = (r + i) % len(contenders)
                for c in [*contenders[k:], *contenders[:k]]:
                    try:
                        rec, wall = _worker(c, m, work, epochs, data, threads, in_process)
                    except RuntimeError as e:  # one broken contender leaves the rest of a long run standing
                        say(f"round {r + 1}/{rounds}  {m:<11} {c:<5}  {e}")
                        continue
                    records.setdefault((m, c), []).append((rec, wall))
                    steady = ", ".join(f"{t:.2f}" for t in rec["epochs"][1:])
                    say(
                        f"round {r + 1}/{rounds}  {m:<11} {c:<5}  first {rec['first_epoch']:6.2f} s  "
                        f"then [{steady}] s  val acc {_acc(rec.get('val_accuracy'))}  process {wall:.1f} s"
                    )
                if on_model is not None and r == rounds - 1:
                    on_model(_summarise(results, records, models[: i + 1]))
    return _summarise(results, records, models)


def _summarise(
    results: dict[str, ModelResult],
    records: dict[tuple[str, str], list[tuple[dict[str, Any], float]]],
    models: Sequence[str],
) -> list[ModelResult]:
    for (m, c), recs in records.items():
        if m not in models:
            continue
        result = results[m]
        summary = Summary(
            contender=c,
            steady=[t for rec, _ in recs for t in rec["epochs"][1:]],
            first=[rec["first_epoch"] for rec, _ in recs],
            rss_mb=max(rec["peak_rss_mb"] for rec, _ in recs),
            accuracy=_median([rec["val_accuracy"] for rec, _ in recs if rec.get("val_accuracy") is not None]),
            params=recs[0][0].get("params", result.params if c == "specc" else None),
            initial_loss=recs[0][0].get("initial_val_loss"),
            threads=recs[0][0]["threads"],
            process_s=[wall for _, wall in recs],
        )
        if summary.params is not None and summary.params != result.params:
            raise RuntimeError(
                f"{c}'s {m} has {summary.params:,} parameters, the spec {result.params:,}: not the same model"
            )
        result.contenders[c] = summary
    return [results[m] for m in models]


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _acc(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"
