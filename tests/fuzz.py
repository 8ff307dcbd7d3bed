"""The fuzzer: random specs through `specc check` and, for those that check, XLA — every outcome a clean check or
located SpecErrors, never another exception, an unlocated error or a case over the time limit.

Cases come from three sources, drawn in turn:
- programs generated from the grammar's structure (models, blocks, lets, imports, named instances, drawn inputs,
  `from "runs/..."`, train and objective sections with random data, losses, optimizers, schedules, metrics, early
  stopping and checkpoints), most of them well-typed, some with random op calls from the registry;
- mutants of specs/*.net (tokens deleted, duplicated, swapped; numbers made huge, negative or fractional; Unicode
  look-alikes, control characters);
- the YAML twin of a generated program (`specc convert --to yaml`), as is or mutated.

Every case runs in-process with a hard per-case timeout: what `specc check` runs (load, graph, check_spec), then —
for every `--compile-every`-th case that checks — lowering and `jax.jit(...).lower(...).compile()` at small
concrete sizes, as `specc compile` does. Findings (input + traceback) are written to `--out`.

    python -m tests.fuzz --minutes 30 [--seed S] [--out fuzz-findings]

Case i of seed S is always the same input: `--seed S --first i --cases 1` replays it. See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_T: Any = None  # specc.train.spec.REQUIRED, set on first use (importing specc is not free)
SPECS = sorted((ROOT / "specs").glob("*.net"))
CASE_LIMIT_S = 10.0
# compiled only below these (the zoo's big CNNs take XLA longer than CASE_LIMIT_S on a busy 2-core machine)
MAX_COMPILE_NODES = 300
MAX_COMPILE_FLOPS = 200_000_000
# the no-position kinds a diagnostic may have (errors.py: "None only for problems with no place in a file")
NO_POSITION_KINDS = ("file error",)


# ---- outcomes ---------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One input: `text` as the content of a file named `name` (suffix .net or .yaml) in specs/."""

    index: int
    source: str  # program | mutant:<spec> | yaml | yaml-mutant
    name: str
    text: str


@dataclass
class Finding:
    case: Case
    what: str  # the kind of failure, one line
    detail: str  # the traceback or the offending diagnostic

    def signature(self) -> str:
        """Findings with the same signature are one bug: the exception type and the innermost specc frame."""
        frames = [ln for ln in self.detail.splitlines() if "/specc/" in ln and ln.strip().startswith("File")]
        return f"{self.what.split(':')[0]} @ {frames[-1].strip() if frames else ''}"


@dataclass
class Stats:
    cases: int = 0
    checked: int = 0
    compiled: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


class CaseTimeout(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_case(case: Case, compile: bool, limit_s: float = CASE_LIMIT_S) -> tuple[str, Finding | None]:
    """Check the case as `specc check` does, then compile it when asked and it checks.

    Returns ("error" | "ok" | "compiled", finding or None).
    """
    from specc.errors import SpecError

    start = time.perf_counter()
    outcome = "error"
    try:
        with deadline(limit_s):
            try:
                spec = _check(case)
                outcome = "ok"
                if compile:
                    _compile(spec)
                    outcome = "compiled"
            except SpecError as e:
                problem = _unlocated(e)
                if problem:
                    return outcome, Finding(case, "unlocated error", problem)
    except CaseTimeout as e:
        return outcome, Finding(case, f"timeout: {e}", f"stopped while in stage after '{outcome}'")
    except Exception as e:  # anything but a SpecError is a bug in specc (exit 3)
        return outcome, Finding(case, f"{type(e).__name__}: {str(e)[:200]}", traceback.format_exc())
    seconds = time.perf_counter() - start
    if seconds > limit_s:  # a C extension (XLA) can outlast the alarm
        return outcome, Finding(case, f"timeout: took {seconds:.1f} s", "")
    return outcome, None


def _check(case: Case) -> Any:
    """Exactly what `specc check FILE` calls (cli.py): load, then the model and its train sections in one pass."""
    import specc
    from specc.train.spec import check_spec

    spec = specc.load(ROOT / "specs" / case.name, text=case.text)
    check_spec(spec)
    return spec


def _compile(spec: Any) -> None:
    """`specc compile` at small sizes: the batch 2, every other free size 3; then lowering and XLA."""
    from specc.backend.compile import compile_graph
    from specc.passes.count import batch_symbols, total_flops

    g = spec.graph()
    if len(g.nodes) > MAX_COMPILE_NODES or (total_flops(g) or 0) > MAX_COMPILE_FLOPS:
        return  # XLA needs tens of seconds for ResNet-50 at 224x224: a slow compile, not a finding
    free = {s for _, nid in g.inputs for d in g.nodes[nid].type.dims for s in d.symbols()}
    compile_graph(g, batch=2, bind={s: 3 for s in free - set(batch_symbols(g))}, compile=True)


def _unlocated(e: Any) -> str:
    """'' when every diagnostic is located (or has a no-position kind) and renders; else what is wrong."""
    rendered = e.render()
    for d in e.diagnostics:
        if d.span is None and d.kind not in NO_POSITION_KINDS:
            return f"{d.kind}: {d.message} (no position)\n\n{rendered}"
        if d.span is not None and (d.span.line < 1 or d.span.col < 1):
            return f"{d.span}: {d.kind}: {d.message} (line or column < 1)\n\n{rendered}"
        if not d.message or not d.kind:
            return f"empty message or kind: {d!r}"
    return ""


# ---- generated programs -----------------------------------------------------------------------------------------

UNARY = ("relu", "tanh", "sigmoid", "gelu", "elu", "softmax", "layernorm", "dropout(0.1)", "leaky_relu(0.2)")
DTYPES = ("f32", "f32", "f32", "f16", "bf16", "i32", "u8", "bool", "f64", "i64")
NUMBERS = ("0", "1", "2", "3", "0.5", "1e-3", "-1", "64", "2**10", "1e40", "-3.5", "2**62", "10**18", "0.0")


class ProgramGen:
    """A random, mostly well-typed program from the grammar's structure: values carry a known shape so that the
    ops applied to them fit, and a small share of statements are random registry calls or deliberate slips."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.lines: list[str] = []
        self.values: dict[str, tuple[str, list[str]]] = {}  # name -> (dtype, dims)
        self.n = 0
        self.inst_in: dict[str, str] = {}  # a named instance's input width, fixed by its first use
        self.inst_out: dict[str, str | None] = {}
        self.logits = "x"
        # half the programs are meant to check (slips off), so that compile and the train checks see them
        self.clean = rng.random() < 0.5

    def slip(self, p: float) -> bool:
        """True with probability p, never in a clean program."""
        return not self.clean and self.r.random() < p

    def fresh(self, stem: str = "h") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def pick(self, *options: Any) -> Any:
        return self.r.choice(options)

    def number(self, good: str = "1") -> str:
        return self.r.choice(NUMBERS) if self.slip(0.5) else good

    def size(self) -> str:
        return self.pick(
            "1", "2", "3", "4", "8", "16", "N", "T", "D", "2*D", "C + 1", "0", "-2", "7/2", "H/2"
        )

    # -- the model body --

    def model(self, name: str, blocks: list[tuple[str, int]]) -> str:
        r = self.r
        self.lines, self.values = [], {}
        ins = 1 if self.clean else r.randint(1, 3)
        if self.clean:  # the digits' fields: x and integer labels y
            self.lines.append("input y: i32[N]")
            self.values["y"] = ("i32", ["N"])
        for i in range(ins):
            rank = self.pick(2, 2, 2, 3, 4, 1)
            dims = ["N"] + [self.pick("4", "8", "16", "3", "T", "D") for _ in range(rank - 1)]
            if self.clean:
                dims = self.pick(["N", "64"], ["N", "8", "8", "1"], ["N", "4", "16"])
            if self.slip(0.05):
                dims = [self.size() for _ in range(rank)]
            dt = "f32" if i == 0 or r.random() < 0.6 else self.pick(*DTYPES)
            nm = "x" if i == 0 else self.pick("y", "z", "m", f"x{i}")
            if nm in self.values:
                continue
            drawn = (
                f" = {self.pick('normal()', 'uniform()', 'normal(2)', 'bernoulli(0.5)', 'zeros')}"
                if (i > 0 and r.random() < 0.2)
                else ""
            )
            if self.clean and r.random() < 0.2:  # a drawn input beside the data's
                self.lines.append("input z: f32[N, 16] = normal()")
                self.values["z"] = ("f32", ["N", "16"])
            self.lines.append(f"input {nm}: {dt}[{', '.join(dims)}]{drawn}")
            self.values[nm] = (dt, dims)
        if r.random() < 0.2:
            self.lines.append(f"let k{self.n} = {self.number()}")
        if r.random() < 0.15:
            self.lines.append(
                f"default init = {self.pick('he_normal', 'zeros', 'glorot_uniform', 'normal(0.02)')}"
            )
        instances: list[str] = []
        if r.random() < 0.3:
            inst = self.pick("L", "D", "Enc")
            call = self.pick("dense(8)", "dense(4)", *(f"{b}({'8' if p else ''})" for b, p in blocks), "relu")
            if self.clean:
                call = self.pick("dense(8)", *(f"{b}({', '.join(['8', 'k=3'][:p])})" for b, p in blocks))
            self.inst_out[inst] = "8" if "8" in call else None
            src = f' from "runs/{self.pick("x", "nope", "..", "")}"' if self.slip(0.2) else ""
            self.lines.append(f"{inst} = {call}{src}")
            instances.append(inst)
        for _ in range(r.randint(1, 6)):
            self.statement(blocks, instances)
        if self.clean:  # the digits' ten classes
            last = self.fresh()
            flat = [
                v for v, (d, dims) in self.values.items() if len(dims) == 2 and d == "f32" and dims[0] == "N"
            ]
            self.lines.append(f"{last} = {r.choice(flat) if flat else 'x -> flatten'} -> dense(10)")
            self.values[last] = ("f32", ["N", "10"])
            self.lines.append(f"output {last}")
            self.logits = last
            return f"model {name} {{\n  " + "\n  ".join(self.lines) + "\n}"
        if r.random() < 0.1:
            self.lines.append(
                f"param w{self.n}: [{self.size()}, {self.size()}] = {self.pick('zeros', 'normal(0.1)')}"
            )
        outs = [v for v in self.values if v not in ("x", "y", "z", "m")] or ["x"]
        k = r.randint(1, min(2, len(outs)))
        self.lines.append(f"output {', '.join(r.sample(outs, k))}")
        sep = self.pick("\n  ", "\n  ", "; ")
        return f"model {name} {{\n  " + sep.join(self.lines) + "\n}"

    def clean_statement(self, blocks: list[tuple[str, int]], instances: list[str]) -> None:
        """A statement that checks: every stage fits the shape its input is known to have."""
        r = self.r
        src = r.choice([v for v, (d, _) in self.values.items() if d == "f32"])
        dims = list(self.values[src][1])
        head = src
        same = [v for v, (d, s2) in self.values.items() if s2 == dims and d == "f32" and v != src]
        roll = r.random()
        if roll < 0.15 and same:
            head = f"{src} {self.pick('+', '-', '*')} {r.choice(same)}"
        elif roll < 0.25:
            head = f"0.5 * {src}"
        elif roll < 0.35 and same:
            head = f"concat({src}, {r.choice(same)}, axis=-1)"
            dims[-1] = str(2 * int(dims[-1]))
        stages: list[str] = []
        for _ in range(r.randint(1, 3)):
            roll = r.random()
            if roll < 0.3 and len(dims) in (2, 3):
                k = self.pick(4, 8, 16)
                stages.append(self.pick(f"dense({k})", f"repeat(2, dense({k}))"))
                dims[-1] = str(k)
            elif roll < 0.5:
                stages.append(self.pick(*UNARY, "repeat(2, relu)"))
            elif roll < 0.6 and len(dims) == 4:
                k = self.pick(4, 8)
                stages.append(f"conv({k}, 3, padding=same)")
                dims[-1] = str(k)
            elif roll < 0.68 and len(dims) == 4 and all(int(d) % 2 == 0 for d in dims[1:3]):
                stages.append("maxpool(2)")
                dims[1:3] = [str(int(d) // 2) for d in dims[1:3]]
            elif roll < 0.75 and len(dims) >= 3:
                stages.append("flatten")
                size = 1
                for d in dims[1:]:
                    size *= int(d)
                dims = ["N", str(size)]
            elif roll < 0.85 and blocks and len(dims) in (2, 3):
                b, params = r.choice(blocks)
                stages.append(f"{b}({', '.join(['8', 'k=3'][:params])})")
                dims[-1] = "8" if params else dims[-1]
            elif roll < 0.95 and instances and len(dims) in (2, 3):
                inst = r.choice(instances)
                if self.inst_in.setdefault(inst, dims[-1]) == dims[-1]:  # one set of weights: one input width
                    stages.append(inst)
                    dims[-1] = self.inst_out[inst] or dims[-1]
            if stages and r.random() < 0.1:  # a shape assertion in the middle of the pipeline, as on slides
                stages[-1] += f" : [{', '.join(dims)}]"
        if not stages:
            stages.append("relu")
        target = self.fresh()
        assert_ = f" : [{', '.join(dims)}]" if r.random() < 0.2 else ""
        self.lines.append(
            f"{target} = {self.pick(' -> ', chr(10) + '    -> ').join([head, *stages])}{assert_}"
        )
        self.values[target] = ("f32", dims)

    def statement(self, blocks: list[tuple[str, int]], instances: list[str]) -> None:
        if self.clean:
            return self.clean_statement(blocks, instances)
        r = self.r
        src = r.choice(list(self.values))
        dt, dims = self.values[src]
        stages: list[str] = []
        new_dims = list(dims)
        for _ in range(r.randint(1, 4)):
            roll = r.random()
            if roll < 0.25 and len(new_dims) >= 2:
                k = self.pick(4, 8, 16, 3)
                stages.append(f"dense({k})")
                new_dims[-1] = str(k)
            elif roll < 0.45:
                stages.append(self.pick(*UNARY))
            elif roll < 0.52 and len(new_dims) == 4:
                c = self.pick(4, 8)
                stages.append(f"conv({c}, 3, padding=same)")
                new_dims[-1] = str(c)
            elif roll < 0.57 and len(new_dims) == 4:
                stages.append("maxpool(2)")
                new_dims[1:3] = [f"{d}/2" for d in new_dims[1:3]]
            elif roll < 0.62 and len(new_dims) >= 3:
                stages.append("flatten")
                new_dims = [new_dims[0], "*".join(f"({d})" for d in new_dims[1:])]
            elif roll < 0.68 and blocks:
                b, params = r.choice(blocks)
                stages.append(
                    f"{b}({', '.join(self.pick('8', '4', 'c=8', '2.5', 'true') for _ in range(params))})"
                )
                new_dims[-1] = "?"
            elif roll < 0.73 and instances:
                stages.append(r.choice(instances))
                new_dims[-1] = "?"
            elif roll < 0.78:
                stages.append(f"repeat({self.pick(1, 2, 3, 0, -1, 10**9)}, {self.pick('relu', 'dense(8)')})")
                new_dims[-1] = "?" if "dense" in stages[-1] else new_dims[-1]
            elif roll < 0.88:
                stages.append(self.random_op_call())
                new_dims[-1] = "?"
            else:
                stages.append(
                    self.pick("cast(f32)", "cast(i32)", "one_hot(10)", "mean(axis=-1)", "sum(axis=0)")
                )
                new_dims[-1] = "?"
        head = src
        roll = r.random()
        others = [v for v, (d2, s2) in self.values.items() if s2 == dims and d2 == dt and v != src]
        if roll < 0.15 and others:
            head = f"{src} {self.pick('+', '-', '*', '/')} {r.choice(others)}"
        elif roll < 0.25:
            head = f"{self.number()} * {src}"
        elif roll < 0.3:
            head = f"{src}[{self.pick(':, 0:2', '..., -1', ':, ::2', '0', ':, None', ':, 5')}]"
        elif roll < 0.35 and others:
            head = f"concat({src}, {r.choice(others)}, axis=-1)"
        arrow = self.pick(" -> ", " -> ", "\n    -> ")
        target = self.fresh()
        assert_ = ""
        if r.random() < 0.15 and "?" not in new_dims:
            assert_ = f" : [{', '.join(new_dims)}]"
        elif r.random() < 0.05:
            assert_ = f" : [{', '.join(self.size() for _ in new_dims)}]"
        self.lines.append(f"{target} = {arrow.join([head, *stages]).lstrip(' ->')}{assert_}")
        if "?" not in new_dims:
            self.values[target] = (dt, new_dims)
        else:
            self.values.setdefault(target, (dt, new_dims))

    def random_op_call(self) -> str:
        """A registry op with random arguments of its kinds (mostly plausible, sometimes odd)."""
        from specc.ops._registry import REQUIRED, all_ops

        op = self.r.choice(sorted(all_ops().values(), key=lambda o: o.name))
        args = []
        for a in op.args:
            if a.default is not REQUIRED and self.r.random() < 0.6:
                continue
            values = _ARG_VALUES.get(a.kind, _ARG_VALUES["int"]).split() + list(a.choices)
            args.append(f"{a.name}={self.r.choice(values)}")
        # an op that takes more tensors than the piped one (a memory, a recurrent state, a kernel) gets some
        # of the values defined so far, well-typed or not
        most = op.tensors if isinstance(op.tensors, int) else (op.tensors[1] or 3)
        if most > 1 and self.values and self.r.random() < 0.5:
            names = sorted(self.values)
            args[:0] = [self.r.choice(names) for _ in range(self.r.randint(1, most - 1))]
        return f"{op.name}({', '.join(args)})"

    def block(self, name: str) -> tuple[str, int]:
        params = self.r.randint(0, 2)
        ps = ["c", "k=2"][:params]
        dims = self.pick("[N, D]", "[N, 8]", "[N, T, D]", "", "[N, H, W, C]")
        typ = f": {dims}" if dims else ""
        out = self.pick("x -> dense(c) -> relu", "x -> relu", "x * k", "x -> dense(8)", "x -> Nope(1)")
        if self.clean:  # any input; `c` sets the width
            typ, out = "", "x -> dense(c) -> relu" if params else "x -> relu"
        if "c" not in ps and "c)" in out:
            out = out.replace("(c)", "(4)")
        if "k" not in " ".join(ps) and "* k" in out:
            out = "x -> tanh"
        body = f"  input x{typ}\n  o = {out}\n  output o"
        return f"block {name}({', '.join(ps)}) {{\n{body}\n}}", params

    def sig_call(self, sig: Any, values: tuple[str, ...] = ()) -> str:
        """A call of a train-section signature with its required arguments filled by kind (slips aside)."""
        good = {"float": "0.1", "int": "10", "lr": "0.1", "str": '"a"', "bool": "true", "numbers": "[10, 20]"}
        args, vals = [], list(values)
        for a in sig.args:
            if a.default is not REQUIRED_T and not self.slip(0.2):
                continue
            if a.kind == "value":
                v = vals.pop(0) if vals else "y"
            else:
                v = a.choices[0] if a.choices else good.get(a.kind, "1")
                v = self.number(v) if a.kind in ("float", "int", "lr") else v
            args.append(f"{a.name}={v}" if self.r.random() < 0.3 and a.kind != "value" else v)
        return f"{sig.name}({', '.join(args)})"

    def train_section(self, values: list[str]) -> str:
        from specc.train.spec import train_tables

        r = self.r
        losses, metrics, optimizers, schedules = train_tables()
        pred = self.logits if self.clean else r.choice(values) if values else "x"
        data = self.pick("digits", "digits(split=0.8)")
        if not self.clean:
            data = self.pick(
                data, "xor", "moons(n=200)", "blobs", "spirals", "sine", 'npz("nope.npz")', "mnist",
                "digits(split=1.5)", "nope", "digits(split=0.8, classes=[0, 1])", "digits(split=10**400)",
            )  # fmt: skip
        entries = [f"data = {data}"]
        if self.clean:
            loss = (
                "cross_entropy(" + pred + ", y)"
                if r.random() < 0.7
                else self.sig_call(r.choice([*losses.values()]), (pred, "y"))
            )
        else:
            loss = f"{r.choice(sorted(losses))}({pred}, {self.pick('y', 'x', pred, '1', '0.5')})"
        if r.random() < 0.2:
            loss += f" + {self.number('0.01')} * l2({self.number('1e-4')})"
        entries.append(f"loss = {loss}")
        if r.random() < 0.7:
            opt = self.sig_call(r.choice([*optimizers.values()]))
            if r.random() < 0.3:
                opt = opt.replace("(0.1", "(" + self.sig_call(r.choice([*schedules.values()])), 1)
            entries.append(f"optimizer = {opt}")
        if r.random() < 0.2:
            entries.append(f"schedule = {self.sig_call(r.choice([*schedules.values()]))}")
        for key, good in (("batch", "16"), ("epochs", "2"), ("seed", "7")):
            if r.random() < 0.4:
                entries.append(f"{key} = {self.number(good)}")
        if r.random() < 0.5:
            ms = ", ".join(
                self.sig_call(r.choice([*metrics.values()]), (pred, "y")) for _ in range(r.randint(0, 2))
            )
            entries.append(f"metrics = [{ms}]")
        if r.random() < 0.2:
            metric = self.pick("val_loss", "loss") if self.clean else self.pick("val_loss", "loss", "nope")
            entries.append(f"early_stop(patience={self.number('3')}, metric={metric})")
        if r.random() < 0.2:
            folder = "ck" if self.clean else self.pick("ck", ".", "", "../up", "a/b", "/tmp")
            entries.append(f'checkpoint(every={self.number("1")}, dir="{folder}")')
        if r.random() < 0.1 and not self.clean:
            entries.append(f"freeze = [{self.pick('L', 'D', 'x', 'nope')}]")
        return "train {\n  " + "\n  ".join(entries) + "\n}"

    def objective(self, name: str, values: list[str], others: list[str]) -> str:
        from specc.train.spec import train_tables

        r = self.r
        losses = sorted(train_tables()[0])
        pred = r.choice(values) if values else "x"
        entries = [f"loss = {r.choice(losses)}({pred}, {self.pick('y', '1', '0')})"]
        entries.append(f"optimizer = {self.pick('adam', 'sgd')}(lr={self.number()})")
        if r.random() < 0.5:
            entries.append(f"params = {self.pick('L', 'D', pred, 'nope', '[L, D]')}")
        if r.random() < 0.3:
            entries.append(f"steps = {self.number()}")
        if r.random() < 0.3 and others:
            entries.append(f"after = {r.choice(others)}")
        if r.random() < 0.2:
            entries.append(f"epochs = {self.number()}")
        return f"objective {name} {{\n  " + "\n  ".join(entries) + "\n}"

    def program(self) -> str:
        r = self.r
        items: list[str] = []
        if self.slip(0.2):
            items.append(f'import "{self.pick("nothing.net", "mlp.net", "", "../x.net", "/dev/null")}"')
        if r.random() < 0.3:
            items.append(
                f"let {self.pick('H', 'D', 'C', 'width')} = {self.pick('8', '16', '2*4', '3.5', '-1')}"
            )
        blocks: list[tuple[str, int]] = []
        for i in range(r.randint(0, 2)):
            text, params = self.block(f"B{i}")
            items.append(text)
            blocks.append((f"B{i}", params))
        items.append(self.model(self.pick("M", "Net", "MLP"), blocks))
        values = [v for v in self.values if v not in ("y",)]
        if r.random() < 0.6:
            items.append(self.train_section(values))
        objectives = [f"o{i}" for i in range(r.randint(0, 2) if self.slip(0.3) else 0)]
        for o in objectives:
            items.append(self.objective(o, values, [p for p in objectives if p != o]))
        return "\n\n".join(items) + "\n"


# spec literals an op argument of each kind may receive (the reverse oracle of tests/test_lower.py uses the like)
_ARG_VALUES: dict[str, str] = {
    "int": '1 2 3 4 0 -1 2.5 "a" true [2,2] 99999999999',
    "float": "0.5 1.0 2 0.1 0 -1.0 true 1e308",
    "number": "2 0.5 -1 3 0 (1,3) [2]",
    "bool": "true false 1",
    "str": 'a "a" 1',
    "enum": "nope 1",
    "window": "1 2 3 (1,2) [2,2] (2,2,2) 0 2.5",
    "padding": "valid same 1 full 0 (1,1) [(0,1),(1,0)] -1",
    "axis": "-1 0 1 2 -2 5 1.5",
    "axes": "-1 1 [0,1] 0 [1,1] [] 5",
    "ints": "[0,1] [1,0] 0 [0,0]",
    "dims": "[-1] [2,-1] [N,-1] [4] [0] [-1,-1]",
    "init": "glorot_uniform normal(0.1) zeros nope",
    "bias_init": "zeros normal(0.1) ones",
    "dtype": "f32 i32 bool bf16 nope",
    "parts": "2 [1,3] 3 [2,2] 2.5 -1 0 []",
    "index": "-1 [2,2] 2",
    "any": '[[1,0,-1],[1,0,-1]] [1,2] 3 [[0.5]] [[1],[1,2]] [] "a" 300',
}


# ---- mutants ----------------------------------------------------------------------------------------------------

_TOKEN = __import__("re").compile(
    r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|->|\*\*|\.\.\.|\"[^\"\n]*\"|#[^\n]*|\s+|."
)
_NOISE = [
    *["(", ")", "[", "]", "{", "}", ",", ":", "=", "->", ";", "-", "*", "/", "**", "@", '"', "#", "0", "-1", "...", "model", "block", "input", "output", "repeat", "true", "import", "let"],
    *["train", "objective", "from", "as", "param", "default", "None", "none"],
    "\n", "\t", "\r", " ", "\ufeff", "\u2192", "\u200b", "\u2028", "\x00", "\x0b", "\uff11\uff10", "\u0661", "é",
    "\U0001f600", "\\",
]  # fmt: skip
_HUGE = ("1e308", "1e309", "9223372036854775807", "9223372036854775808", "2**63", "10**400", "4294967296",
         "2147483648", "1" * 30, "0.0000001", "1e-320", "2**31", "2**10**10")  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    """One to three edits: tokens deleted, duplicated, swapped or replaced; numbers perturbed; noise inserted."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        toks = _TOKEN.findall(text) or [""]
        i = rng.randrange(len(toks))
        kind = rng.randrange(9)
        if kind == 0:
            del toks[i]
        elif kind == 1:
            toks.insert(i, toks[i])
        elif kind == 2:
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif kind == 3:
            toks[i] = rng.choice(toks)
        elif kind == 4:
            toks.insert(i, rng.choice(_NOISE))
        elif kind in (5, 6):  # a number perturbed: huge, negative, zero, fractional
            nums = [k for k, t in enumerate(toks) if t[:1].isdigit()]
            if nums:
                k = rng.choice(nums)
                toks[k] = rng.choice(
                    (
                        *_HUGE,
                        "-" + toks[k],
                        "0",
                        toks[k] + ".5",
                        f"{float(toks[k]) * 1000:g}",
                    )
                )
        elif kind == 7:  # a line deleted or duplicated
            lines = "".join(toks).split("\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k]) if rng.random() < 0.5 else lines.pop(k)
            toks = ["\n".join(lines)]
        else:  # a character replaced by a look-alike or a control character
            joined = "".join(toks)
            if joined:
                k = rng.randrange(len(joined))
                joined = (
                    joined[:k]
                    + rng.choice(("\u00a0", "\u2212", "\u037e", "\x0c", "\x1b", "\u00ad", "ı"))
                    + joined[k + 1 :]
                )
            toks = [joined]
        text = "".join(toks)
    return text


_YAML_NOISE = ["!!int", "!!float", "!!bool", "&a", "*a", "- ", ": ", "{", "[", "'", "? ", "|", ">", "%YAML 1.1",
               "---", "...", "<<: *a", "!!python/object:os.system", "\t", "0x1F", "0o17", ".inf", "~", "null"]  # fmt: skip


def mutate_yaml(text: str, rng: random.Random) -> str:
    """A YAML text edited by line (indentation, deletion, duplication) or token, with YAML's own noise."""
    lines = text.split("\n")
    for _ in range(rng.choice((1, 1, 2))):
        k = rng.randrange(len(lines))
        kind = rng.randrange(5)
        if kind == 0:
            lines[k] = (" " * rng.choice((1, 2, 4))) + lines[k] if rng.random() < 0.5 else lines[k].lstrip()
        elif kind == 1:
            lines.insert(k, lines[k]) if rng.random() < 0.5 else lines.pop(k)
        elif kind == 2:
            words = lines[k].split(" ")
            j = rng.randrange(len(words))
            words.insert(j, rng.choice(_YAML_NOISE))
            lines[k] = " ".join(words)
        else:
            lines[k] = mutate(lines[k], rng)
        if not lines:
            lines = [""]
    return "\n".join(lines)


def to_yaml(text: str) -> str | None:
    """`specc convert --to yaml` of a .net text, or None when it does not convert (a SpecError: not a finding)."""
    from specc.errors import SpecError
    from specc.frontend.convert import convert_file

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "p.net"
        f.write_text(text, encoding="utf-8")
        try:
            return convert_file(f, "yaml")
        except SpecError:
            return None


# ---- the case stream --------------------------------------------------------------------------------------------


def make_case(seed: int, index: int, spec_texts: dict[str, str]) -> tuple[Case, Finding | None]:
    """Case `index` of `seed`, the same on every run. Converting to YAML may itself fail: that is a finding."""
    global REQUIRED_T
    if REQUIRED_T is None:
        from specc.train.spec import REQUIRED

        REQUIRED_T = REQUIRED
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choices(("program", "mutant", "yaml", "yaml-mutant"), weights=(5, 3, 1, 1))[0]
    if kind == "mutant":
        name = rng.choice(sorted(spec_texts))
        return Case(index, f"mutant:{name}", "_fuzz.net", mutate(spec_texts[name], rng)), None
    text = ProgramGen(rng).program()
    if kind == "program":
        return Case(index, "program", "_fuzz.net", text), None
    try:
        with deadline(CASE_LIMIT_S):
            yaml_text = to_yaml(text)
    except Exception as e:
        case = Case(index, "convert", "_fuzz.net", text)
        return case, Finding(case, f"convert: {type(e).__name__}: {str(e)[:200]}", traceback.format_exc())
    if yaml_text is None:
        return Case(index, "program", "_fuzz.net", text), None
    if kind == "yaml-mutant":
        yaml_text = mutate_yaml(yaml_text, rng)
    return Case(index, kind, "_fuzz.yaml", yaml_text), None


def fuzz(
    seed: int,
    cases: int | None = None,
    minutes: float | None = None,
    compile_every: int = 10,
    limit_s: float = CASE_LIMIT_S,
    first: int = 0,
    max_compiles: int | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    progress: Callable[[Stats], None] | None = None,
) -> Stats:
    """Run cases first, first+1, ... until `cases` ran or `minutes` passed; every compile_every-th case that checks
    is also compiled (0: never), at most max_compiles of them."""
    spec_texts = {p.name: p.read_text(encoding="utf-8") for p in SPECS}
    if compile_every > 0:  # JAX's start-up and first compile are not any case's time
        run_case(
            Case(
                -1,
                "warm-up",
                "_fuzz.net",
                "model W {\n  input x: f32[N, 4]\n  h = x -> dense(2)\n  output h\n}\n",
            ),
            True,
            600,
        )
    stats = Stats()
    stop = time.monotonic() + minutes * 60 if minutes else None
    i = first
    while (cases is None or stats.cases < cases) and (stop is None or time.monotonic() < stop):
        case, finding = make_case(seed, i, spec_texts)
        i += 1
        if finding is None:
            do_compile = compile_every > 0 and i % compile_every == 0
            do_compile = do_compile and (max_compiles is None or stats.compiled < max_compiles)
            outcome, finding = run_case(case, do_compile, limit_s)
            stats.checked += outcome in ("ok", "compiled")
            stats.compiled += outcome == "compiled"
        stats.cases += 1
        stats.by_source[case.source.split(":")[0]] = stats.by_source.get(case.source.split(":")[0], 0) + 1
        if finding is not None:
            stats.findings.append(finding)
            if on_finding:
                on_finding(finding)
        if progress and stats.cases % 100 == 0:
            progress(stats)
    return stats


def save_finding(out: Path, seed: int, f: Finding, seen: set[str]) -> bool:
    """Write the input and its traceback under `out`, once per signature; False for a repeat."""
    sig = f.signature()
    if sig in seen:
        return False
    seen.add(sig)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{len(seen):03d}-{hashlib.sha1(sig.encode()).hexdigest()[:8]}"
    suffix = Path(f.case.name).suffix
    (out / f"{stem}{suffix}").write_text(f.case.text, encoding="utf-8", errors="surrogateescape")
    (out / f"{stem}.txt").write_text(
        f"{f.what}\nseed {seed}, case {f.case.index} ({f.case.source}); replay: "
        f"python -m tests.fuzz --seed {seed} --first {f.case.index} --cases 1\n\n{f.detail}\n",
        encoding="utf-8",
    )
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=None, help="run this long (default: until --cases)")
    p.add_argument("--cases", type=int, default=None, help="run this many cases")
    p.add_argument("--seed", type=int, default=None, help="default: random, printed so it can be replayed")
    p.add_argument("--first", type=int, default=0, help="the first case index (replay one with --cases 1)")
    p.add_argument(
        "--compile-every", type=int, default=5, help="compile every n-th case that checks (0: never)"
    )
    p.add_argument("--timeout", type=float, default=CASE_LIMIT_S, help="seconds a case may take")
    p.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="folder for findings")
    a = p.parse_args(argv)
    if a.minutes is None and a.cases is None:
        a.minutes = 1.0
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"fuzzing with seed {seed} ({a.minutes or '-'} min, {a.cases or '-'} cases) -> {a.out}", flush=True)
    seen: set[str] = set()

    def found(f: Finding) -> None:
        if save_finding(a.out, seed, f, seen):
            print(f"  finding #{len(seen)} (case {f.case.index}, {f.case.source}): {f.what}", flush=True)

    def progress(s: Stats) -> None:
        print(
            f"  {s.cases} cases, {s.checked} checked, {s.compiled} compiled, {len(s.findings)} findings",
            flush=True,
        )

    start = time.monotonic()
    stats = fuzz(seed, a.cases, a.minutes, a.compile_every, a.timeout, a.first, None, found, progress)
    print(
        f"done in {time.monotonic() - start:.0f} s: {stats.cases} cases ({stats.by_source}), {stats.checked} checked, "
        f"{stats.compiled} compiled; {len(stats.findings)} findings, {len(seen)} distinct (in {a.out})"
    )
    return 1 if stats.findings else 0


if __name__ == "__main__":
    sys.exit(main())
