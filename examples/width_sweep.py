"""Neyshabur, Tomioka & Srebro (2015), "In search of the real inductive bias": wider does not overfit.

Sweeps the hidden width of specs/width_sweep.net (one hidden layer, 300 training digits, trained far past zero
training error) with `specc sweep`, then draws the final training and test (validation) error against the width
from the sweep's summary.json. Run from the repository root:

    python examples/width_sweep.py [--out runs/width_sweep] [--seeds 0,1,2] [--figure figures/width_sweep.png]

A sweep already in --out is continued (`--resume`: finished runs are skipped), so a second call only redraws.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = "4,8,16,32,64,128,256,512,1024,2048"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/width_sweep"))
    ap.add_argument("--widths", default=WIDTHS)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    ap.add_argument("--figure", type=Path, default=Path("figures/width_sweep.png"))
    args = ap.parse_args()

    here = Path(sys.executable).parent / "specc"  # the venv's specc, else the one on PATH
    specc = str(here) if here.exists() else shutil.which("specc") or "specc"
    cmd = [specc, "sweep", str(ROOT / "specs" / "width_sweep.net")]
    cmd += ["--set", f"width={args.widths}", "--set", f"seed={args.seeds}", "--out", str(args.out)]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if (args.out / "sweep.json").exists():
        cmd.append("--resume")
    code = subprocess.run(cmd, check=False).returncode
    if code != 0:
        sys.exit(code)

    rows = json.loads((args.out / "summary.json").read_text(encoding="utf-8"))
    train, test = defaultdict(list), defaultdict(list)
    for r in rows:
        train[r["width"]].append(1 - r["accuracy"])
        test[r["width"]].append(1 - r["val_accuracy"])
    widths = sorted(train)
    mean = {name: [sum(d[w]) / len(d[w]) for w in widths] for name, d in (("train", train), ("test", test))}
    print("width  params   train error  test error")
    params = {r["width"]: r["params"] for r in rows}
    for i, w in enumerate(widths):
        print(f"{w:>5}  {params[w]:>7,}  {mean['train'][i]:>11.4f}  {mean['test'][i]:>10.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    ax.plot(widths, mean["train"], "o-", label="training error")
    ax.plot(widths, mean["test"], "s-", label="test error")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden units")
    ax.set_ylabel("error")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    n = max(len(v) for v in train.values())
    ax.set_title(
        f"one hidden layer, 300 digits: wider does not overfit ({n} seed{'s' if n > 1 else ''})", fontsize=10
    )
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
