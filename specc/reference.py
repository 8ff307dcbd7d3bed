"""The reference, generated from the registries: `specc ops`, `specc data`, docs/ops.md and docs/data.md.

Each op's example is computed by its own shape rule on a sample input, so the reference cannot drift from the
checker. `python -m specc.reference` rewrites the two documents; `--check` exits 1 when they are stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ir.types import TensorType, tensor
from .ops._registry import REQUIRED, Arg, OpCall, OpDef, all_ops, bind_args

DOCS = Path(__file__).resolve().parent.parent / "docs"

# sample inputs an op's rule is tried on, in order: a feature vector, an image, a sequence
_SAMPLE_INPUTS = (
    tensor("f32", "N", 64),
    tensor("f32", "N", 28, 28, 3),
    tensor("f32", "N", "T", 64),
    tensor("i32", "N", "T"),
)

# a sample value for a required argument, by kind; distinct numbers so a parameter shape can name its sources
_SAMPLE_ARGS: dict[str, Any] = {
    "int": 16,
    "float": 0.5,
    "number": 2,
    "window": 3,
    "parts": 2,
    "axis": -1,
    "axes": -1,
    "ints": (0,),
    "dims": None,  # filled from the input: [N, -1]
    "dtype": "f32",
    "str": "x",
    "any": 1,
    "index": (("i", 0),),
}


@dataclass(frozen=True)
class OpExample:
    call: str  # as a spec writes it
    inputs: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    params: dict[str, tuple[int, ...]]


def signature(op: OpDef) -> str:
    lo, hi = op.tensor_range
    names = op.tensor_names
    tensors = list(names[:lo]) if names else ["x", "y", "z"][:lo] if lo <= 3 else [f"x{i}" for i in range(lo)]
    if hi is None:
        tensors.append("...")
    elif hi > lo:
        more = names[lo:hi] if names else [f"x{i}" for i in range(lo, hi)]
        tensors.append("[" + ", ".join(more) + "]")
    return f"{op.name}({', '.join([*tensors, *(_show_arg(a) for a in op.args)])})"


def _show_arg(a: Arg) -> str:
    if a.default is REQUIRED:
        return a.name
    d = a.default
    shown = (
        "none"
        if d is None
        else "true"
        if d is True
        else "false"
        if d is False
        else "|".join(a.choices)
        if a.kind == "enum" and a.choices and d == a.choices[0]
        else str(d)
    )
    return f"{a.name}={shown}"


def _sample(a: Arg, x: TensorType) -> Any:
    if a.kind == "enum":
        return a.choices[0]
    if a.kind == "dims":
        return [x.dims[0], -1]
    v = _SAMPLE_ARGS.get(a.kind, 1)
    return max(v, a.min) if isinstance(v, int | float) and a.min is not None else v


def example(op: OpDef) -> OpExample | None:
    """The op applied to the first sample input its rule accepts (None: it accepts none of them)."""
    lo, _ = op.tensor_range
    for x in _SAMPLE_INPUTS:
        required = [a for a in op.args if a.default is REQUIRED]
        positional = [_sample(a, x) for a in required]
        attrs, errors = bind_args(op, [], dict(zip((a.name for a in required), positional, strict=True)))
        if errors:
            continue
        _, hi = op.tensor_range
        for n in dict.fromkeys((lo, hi if hi is not None else lo)):
            inputs = (x,) * n
            try:
                inferred = op.infer(OpCall(op, attrs, inputs))
            except Exception:  # OpError or worse: this sample does not fit the op; try the next
                continue
            break
        else:
            continue
        shown = ", ".join(_literal(v) for v in positional)
        call = f"{op.name}({shown})" if shown else op.name
        return OpExample(call, inputs, tuple(inferred.outputs), dict(inferred.params))
    return None


def _literal(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, tuple):
        if v and isinstance(v[0], tuple):
            return "0"
        return "(" + ", ".join(_literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def _params_line(ex: OpExample) -> str:
    if not ex.params:
        return "none"
    total = 0
    parts = []
    for k, shape in ex.params.items():
        n = 1
        for d in shape:
            n *= d
        total += n
        parts.append(f"{k} [{', '.join(map(str, shape))}]")
    return f"{' + '.join(parts)} = {total:,}"


def op_text(op: OpDef) -> str:
    """One op's entry, as `specc ops NAME` prints it (Markdown, readable as plain text)."""
    lines = [f"### `{signature(op)}`", "", op.doc or "(no description)", ""]
    lines.append(f"- family: {op.family}")
    for a in op.args:
        extra = f" ({', '.join(a.choices)})" if a.choices else ""
        lines.append(f"- `{a.name}`: {a.kind}{extra}" + (f" — {a.doc}" if a.doc else ""))
    ex = example(op)
    if ex is not None:
        ins = ", ".join(map(str, ex.inputs))
        outs = ", ".join(map(str, ex.outputs))
        head = f"x -> {ex.call}" if ex.inputs else ex.call
        lines.append(f"- example: `{head}` on {ins or 'no input'} gives {outs}")
        lines.append(f"- parameters in the example: {_params_line(ex)}")
    return "\n".join(lines) + "\n"


def ops_markdown() -> str:
    ops = all_ops()
    out = [
        "# Ops",
        "",
        "Generated by `python -m specc.reference` from the op registry (`specc/ops/`); `specc ops NAME` prints one",
        "entry. Each example is computed by the op's own shape rule. Layout is channels-last; `N` is the batch.",
        "",
    ]
    by_family: dict[str, list[OpDef]] = {}
    for op in ops.values():
        by_family.setdefault(op.family, []).append(op)
    for family in sorted(by_family):
        out += [f"## {family}", ""]
        for op in sorted(by_family[family], key=lambda o: o.name):
            out.append(op_text(op))
    return "\n".join(out).rstrip("\n") + "\n"


def data_text(name: str) -> str:
    from .train.data import DATASETS

    info = DATASETS[name]
    lines = [f"### `{info.signature()}`", "", info.doc, ""]
    lines.append(f"- kind: {info.kind}; fields: {', '.join(info.fields) or 'as the file holds'}")
    if info.classes is not None:
        lines.append(f"- classes: {info.classes}")
    for p in info.params:
        lines.append(f"- `{p.show()}`: {p.kind}" + (f" — {p.doc}" if p.doc else ""))
    lines.append(f"- example: `data = {info.name}({_data_example(info)})`")
    return "\n".join(lines) + "\n"


def _data_example(info: Any) -> str:
    args = [f'"{p.name}/"' if p.kind == "path" else "" for p in info.params if p.required]
    return ", ".join([a for a in args if a] + ["split=0.8"])


def data_markdown() -> str:
    from .train.data import COMMON_OPTIONS, DATASETS

    out = [
        "# Data sets",
        "",
        "Generated by `python -m specc.reference` from the data registry (`specc/train/data.py`); `specc data NAME`",
        "prints one entry. A train section names one: `data = moons(n=500, split=0.8)`.",
        "",
        "## Options of every data set",
        "",
    ]
    out += [f"- `{p.show()}`: {p.doc}" for p in COMMON_OPTIONS]
    out += ["", "## Data sets", ""]
    out += [data_text(name) for name in DATASETS]
    return "\n".join(out).rstrip("\n") + "\n"


def documents() -> dict[Path, str]:
    return {DOCS / "ops.md": ops_markdown(), DOCS / "data.md": data_markdown()}


def main(argv: list[str]) -> int:
    stale = [p for p, text in documents().items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        for p in stale:
            print(f"{p}: stale; run `python -m specc.reference`", file=sys.stderr)
        return 1 if stale else 0
    for p, text in documents().items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
