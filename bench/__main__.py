"""`python -m bench`: the training suite — specc vs hand-written Flax NNX + Optax vs PyTorch eager on the CPU, one
process per contender, interleaved in rounds; prints a table and writes its section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from .models import MNIST, MODELS, ROOT, mnist_present
from .report import load_average, markdown, print_table, write_docs
from .suite import CONTENDERS, ModelResult, run_suite, torch_available


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated, of specc, flax, torch"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds of every contender on every model (default 3)"
    )
    ap.add_argument("--epochs", type=int, default=4, help="epochs per process; the first is reported apart")
    ap.add_argument(
        "--quick", action="store_true", help="1 round of 2 epochs on the embedded digits; no docs"
    )
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the file to update")
    ap.add_argument("--no-docs", action="store_true", help="print the table only")
    ap.add_argument("--json", type=Path, help="also write the raw summaries here")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model '{m}'; models: {', '.join(MODELS)}")
    for c in contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender '{c}'; contenders: {', '.join(CONTENDERS)}")
    if args.rounds < 1 or args.epochs < 1:
        ap.error("--rounds and --epochs must be at least 1")
    rounds, epochs = (1, 2) if args.quick else (args.rounds, args.epochs)
    if "torch" in contenders and not torch_available():
        print("PyTorch skipped: not installed (pip install -e '.[bench]' adds it)")
        contenders.remove("torch")
    data = "mnist"
    if args.quick:
        data = "digits"
    elif not mnist_present():
        print(f"no MNIST t10k files at {MNIST}: running on the embedded digits scaled to 28×28 (a smoke run)")
        data = "digits"
    load_before = load_average()
    print(
        f"load average {load_before}; {models} × {contenders} × {rounds} round(s) × {epochs} epochs",
        flush=True,
    )
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    write = not args.no_docs and not args.quick and data == "mnist"

    def section(results: list[ModelResult]) -> str:
        return markdown(results, command.strip(), load_before, load_average(), rounds, epochs, data)

    def partial(results: list[ModelResult]) -> None:
        if write:  # rewritten after every model: a run stopped early keeps its table
            write_docs(args.docs, section(results))

    results = run_suite(
        models, contenders, rounds, epochs, data, say=lambda line: print(line, flush=True), on_model=partial
    )
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if write:
        write_docs(args.docs, section(results))
        print(f"wrote {args.docs}")
    else:
        print(section(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
