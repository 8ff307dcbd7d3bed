"""`specc compile --emit flax`: the model as readable, runnable Flax NNX source — a teaching aid.

One plain `class MODEL(nnx.Module)`: `__init__` creates the layers, `__call__` does the dataflow, with variables
named after the spec's values. Layers are written by running each op's own `build` against a recorder that prints
the calls it makes (so the emitted `nnx.Conv(...)` is the one `build_module` makes, argument for argument); the
stateless ops are written from the table below. Attribute names equal `SpecModule.layers` keys, so parameters
transfer one to one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ir.dims import Dim, FloorDiv
from ..ir.graph import Fn, Graph, Node, Ref, path_between
from ..ir.types import JNP_NAMES
from ..ops._registry import get_op
from ..ops.activation import ACTIVATIONS, activation_source
from ..ops.constant import plain
from ..ops.conv import lax_padding
from ..ops.elementwise import JNP_FUNCS
from ..ops.padding import widths
from ..ops.shape import index_key
from .flax import DEFAULT_WEIGHT_INIT, init_call, layer_keys

# ---- a recorder that turns build calls into source ----------------------------------------------


class Src:
    """A Python expression; attribute access, calls and indexing on it build longer expressions."""

    def __init__(self, text: str):
        self.text = text

    def __getattr__(self, name: str) -> Src:
        if name.startswith("__"):
            raise AttributeError(name)
        return Src(f"{self.text}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Src:
        parts = [lit(a) for a in args] + [f"{k}={lit(v)}" for k, v in kwargs.items()]
        return Src(f"{self.text}({', '.join(parts)})")

    def __getitem__(self, key: Any) -> Src:
        return Src(f"{self.text}[{lit(key)}]")

    def __repr__(self) -> str:
        return self.text


def lit(v: Any) -> str:
    """Python source for a value."""
    if isinstance(v, Src):
        return v.text
    if isinstance(v, tuple):
        return "(" + ", ".join(lit(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    if isinstance(v, slice):
        lo, hi, st = ("" if x is None else lit(x) for x in (v.start, v.stop, v.step))
        return f"{lo}:{hi}" + (f":{st}" if st else "")
    if v is Ellipsis:
        return "..."
    return repr(v)


def init_src(fn: Fn | str | None, default: str = DEFAULT_WEIGHT_INIT) -> Src:
    name, kwargs, factory = init_call(fn, default)
    if name == "uniform":  # U(−s, s) (backend.flax.symmetric_uniform); JAX's own draws in [0, s)
        s = kwargs.get("scale", 1e-2)
        return Src(
            f"(lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, {lit(-s)}, {lit(s)}))"
        )
    base = Src(f"jax.nn.initializers.{name}")
    return base(**kwargs) if factory else base


class RecordingContext:
    """Stands in for backend.flax.BuildContext: same names, but every call returns its source."""

    jax = Src("jax")
    jnp = Src("jnp")
    lax = Src("jax.lax")
    nnx = Src("nnx")
    # draws.Dropout is nnx.Dropout drawing its mask flat, the same masks: the source names Flax's own
    draws = Src("nnx")
    rngs = Src("rngs")

    @staticmethod
    def init(fn: Fn | None, default: str = DEFAULT_WEIGHT_INIT) -> Src:
        return init_src(fn, default)


# ---- stateless ops ----------------------------------------------------------------------------------

Emit = Callable[[dict[str, Any], list[str], Node, str | None], str]

_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


def _binary(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    sym = _OPERATORS.get(n.op)
    if len(xs) == 2:
        return f"{xs[0]} {sym} {xs[1]}" if sym else f"jnp.{JNP_FUNCS[n.op]}({xs[0]}, {xs[1]})"
    s = lit(a["scalar"])
    left, right = (s, xs[0]) if a["reverse"] else (xs[0], s)
    return f"{left} {sym} {right}" if sym else f"jnp.{JNP_FUNCS[n.op]}({left}, {right})"


def _pool(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    rank = n.type.rank - 2
    k = (a["window"],) * rank if isinstance(a["window"], int) else a["window"]
    s = a["stride"] if a["stride"] is not None else a["window"]
    s = (s,) * rank if isinstance(s, int) else s
    pad = lit(lax_padding(a["padding"], rank, k, s, 1))
    count_pad = a.get("count_pad", True)
    if a["ceil"]:
        kind = "max" if n.op == "maxpool" else "avg"
        return f"ceil_pool({xs[0]}, {kind!r}, {lit(k)}, {lit(s)}, {pad}, count_pad={count_pad})"
    fn = "nnx.max_pool" if n.op == "maxpool" else "nnx.avg_pool"
    tail = "" if count_pad else ", count_include_pad=False"
    return f"{fn}({xs[0]}, window_shape={lit(k)}, strides={lit(s)}, padding={pad}{tail})"


def _pad(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    w = [(0, 0), *widths(a["pad"], n.type.rank - 2), (0, 0)]
    if a["mode"] != "constant":
        return f"jnp.pad({xs[0]}, {lit(w)}, mode={a['mode']!r})"
    return f"jnp.pad({xs[0]}, {lit(w)}, constant_values={lit(a['value'])})"


def _locally_connected(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    bias = f"self.{key}['bias'][...]" if a["bias"] else "None"
    return f"locally_connected({xs[0]}, self.{key}['kernel'][...], {bias}, {lit(a['kernel'])}, {lit(a['stride'])})"


def _reduce(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    tail = f", axis={lit(a['axis'])}" + (", keepdims=True" if a["keepdims"] else "")
    if n.op == "norm":
        x = xs[0]
        p = a["ord"]
        if p == 2:
            return f"jnp.sqrt(jnp.sum({x} * {x}{tail}))"
        return f"jnp.sum(jnp.abs({x}) ** {p!r}{tail}) ** {1 / p!r}"
    if n.op == "argmax":
        return f"jnp.argmax({xs[0]}{tail})"
    return f"jnp.{n.op}({xs[0]}{tail})"


def _upsample(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    rank = n.type.rank - 2
    sc = (a["scale"],) * rank if isinstance(a["scale"], int) else a["scale"]
    x = xs[0]
    if a["method"] == "linear":
        dims = ", ".join(f"{x}.shape[{1 + i}] * {s}" for i, s in enumerate(sc))
        return f"jax.image.resize({x}, ({x}.shape[0], {dims}, {x}.shape[-1]), 'linear')"
    for i, s in enumerate(sc):
        x = f"jnp.repeat({x}, {s}, axis={1 + i})"
    return x


def _split(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    parts = a["parts"]
    if not isinstance(parts, int):
        cuts, at = [], 0
        for p in parts[:-1]:
            at += p
            cuts.append(at)
        parts = cuts
    return f"jnp.split({xs[0]}, {lit(parts)}, axis={a['axis']})"


def _recurrent(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    lstm = a.get("cell", n.op) == "lstm"
    kw = ""
    if len(xs) > 1:  # Flax keeps the carry in f32, and its LSTM carry is (c, h)
        state = [x if n.type.dtype == "f32" else f"{x}.astype(jnp.float32)" for x in xs[1:]]
        kw = f", initial_carry=({state[1]}, {state[0]})" if lstm else f", initial_carry={state[0]}"
    if a["return_state"]:
        y, call = "y", f"*self.{key}({xs[0]}, return_carry=True{kw})"
    else:
        y, call = f"self.{key}({xs[0]}{kw})", ""
    cast = "" if n.type.dtype == "f32" else f".astype(jnp.{JNP_NAMES[n.type.dtype]})"
    if a["return"] == "sequence":
        out = f"{y}{cast}"
    elif not a["bidirectional"]:
        out = f"{y}[:, -1]{cast}"
    else:
        h = a["features"]
        out = f"(lambda y: jnp.concatenate([y[:, -1, :{h}], y[:, 0, {h}:]], axis=-1))({y}){cast}"
    if not a["return_state"]:
        return out
    final = ["carry[1]", "carry[0]"] if lstm else ["carry"]
    return f"(lambda carry, y: ({out}, {', '.join(f'{s}{cast}' for s in final)}))({call})"


def _positional(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    x = xs[0]
    if key is None:
        return f"{x} + sinusoids({x}.shape[1], {x}.shape[2]).astype({x}.dtype)"
    return f"{x} + self.{key}.embedding[...][:{x}.shape[1]]"


def _layer(a: dict[str, Any], xs: list[str], n: Node, key: str | None) -> str:
    return f"self.{key}({xs[0]})"


def _activation(name: str) -> Emit:
    return lambda a, xs, n, k: activation_source(name, xs[0], a, lit)


def _global_pool(method: str) -> Emit:
    """global_avgpool / global_maxpool: `method` (mean, max) over every axis between the batch and channels."""
    return lambda a, xs, n, k: (
        f"{xs[0]}.{method}(axis=tuple(range(1, {xs[0]}.ndim - 1))"
        + (", keepdims=True)" if a.get("keepdims") else ")")
    )


def _join(fn: str) -> Emit:
    """concat / stack: a jnp function taking the list of inputs and an axis."""
    return lambda a, xs, n, k: f"jnp.{fn}([{', '.join(xs)}], axis={a['axis']})"


EMITTERS: dict[str, Emit] = {
    **{name: _activation(name) for name in ACTIVATIONS},
    **dict.fromkeys(JNP_FUNCS, _binary),
    "matmul": lambda a, xs, n, k: f"{xs[0]} @ {xs[1]}",
    **dict.fromkeys(
        ("dense", "conv", "conv_transpose", "batchnorm", "layernorm", "groupnorm", "dropout", "embed"), _layer
    ),
    "maxpool": _pool,
    "avgpool": _pool,
    "pad": _pad,
    "lrn": lambda a, xs, n, k: f"lrn({xs[0]}, {a['size']}, {a['alpha']!r}, {a['beta']!r}, {a['k']!r})",
    "locally_connected": _locally_connected,
    "convolve": lambda a, xs, n, k: (
        f"convolve({xs[0]}, {xs[1]}, {lit(a['stride'])}, {lit(a['padding'])}, {lit(a['dilation'])})"
    ),
    "const": lambda a, xs, n, k: f"jnp.asarray({lit(plain(a['values']))}, dtype=jnp.{JNP_NAMES[a['dtype']]})",
    "global_avgpool": _global_pool("mean"),
    "global_maxpool": _global_pool("max"),
    "adaptive_avgpool": lambda a, xs, n, k: f"adaptive_avgpool({xs[0]}, {lit(a['size'])})",
    "upsample": _upsample,
    "flatten": lambda a, xs, n, k: f"{xs[0]}.reshape(*{xs[0]}.shape[:{a['start']}], -1)",
    "reshape": lambda a, xs, n, k: f"{xs[0]}.reshape({', '.join(py_dim(d) for d in n.type.dims)})",
    "transpose": lambda a, xs, n, k: f"jnp.transpose({xs[0]}, {lit(a['perm'])})",
    "concat": _join("concatenate"),
    "stack": _join("stack"),
    "split": _split,
    "index": lambda a, xs, n, k: f"{xs[0]}[{', '.join(lit(i) for i in index_key(a['items']))}]",
    "cast": lambda a, xs, n, k: f"{xs[0]}.astype(jnp.{JNP_NAMES[a['dtype']]})",
    "one_hot": lambda a, xs, n, k: f"jax.nn.one_hot({xs[0]}, {a['classes']})",
    **dict.fromkeys(("mean", "sum", "max", "min", "norm", "argmax"), _reduce),
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "attention": lambda a, xs, n, k: (
        f"self.{k}({', '.join(xs)}, mask="
        + (f"nnx.make_causal_mask({xs[0]}[..., 0]))" if a["causal"] else "None)")
    ),
    "positional": _positional,
    "sample_normal": lambda a, xs, n, k: (
        f"{xs[0]} + jnp.exp({xs[1]} / 2) * jax.random.normal(self.{k}(), {xs[0]}.shape, {xs[0]}.dtype)"
    ),
}

HELPERS = {
    "ceil_pool": '''
def ceil_pool(x, kind, window, strides, padding, count_pad=True):
    """Caffe's ceil-mode pooling: ceil((in + lo + hi - k)/s) + 1 windows, the last one never starting in the
    padding; an average divides by the window clipped to the padded input (or by its real elements only)."""
    pads, keep = [], [slice(None)]
    for size, k, s, (lo, hi) in zip(x.shape[1:-1], window, strides, padding):
        out = -(-(size + lo + hi - k) // s) + 1
        out -= (out - 1) * s >= size + lo
        pads.append((lo, hi + max((out - 1) * s + k - (size + lo + hi), 0)))
        keep.append(slice(0, out))
    keep = (*keep, slice(None))
    dims, steps = (1, *window, 1), (1, *strides, 1)
    if kind == "max":
        low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
        return jax.lax.reduce_window(x, x.dtype.type(low), jax.lax.max, dims, steps, [(0, 0), *pads, (0, 0)])[keep]
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, steps, [(0, 0), *pads, (0, 0)])[keep]
    ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
    if count_pad:  # the declared padding counts, ceil mode's overhang does not
        ones = jnp.pad(ones, [(0, 0), *padding, (0, 0)], constant_values=1)
        pads = [(0, hi - p[1]) for (_, hi), p in zip(pads, padding)]
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, dims, steps, [(0, 0), *pads, (0, 0)])[keep]
    return total / count
''',
    "lrn": '''
def lrn(x, size, alpha, beta, k):
    """Local response normalisation across channels (AlexNet; Caffe's ACROSS_CHANNELS divides alpha by size)."""
    y = x.astype(jnp.float32)
    pad = [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)]
    energy = jax.lax.reduce_window(y * y, 0.0, jax.lax.add, (1,) * (x.ndim - 1) + (size,), (1,) * x.ndim, pad)
    return (y / (k + (alpha / size) * energy) ** beta).astype(x.dtype)
''',
    "convolve": '''
def convolve(x, k, stride, padding, dilation):
    """x [N, ..., C] convolved with a kernel tensor [k..., C_in, C_out], or [k...] applied to every channel."""
    n = x.ndim - 2
    groups = 1
    if k.ndim == n:
        groups = x.shape[-1]
        k = jnp.broadcast_to(k[..., None, None], (*k.shape, 1, groups))
    stride = (stride,) * n if isinstance(stride, int) else stride
    dilation = (dilation,) * n if isinstance(dilation, int) else dilation
    if isinstance(padding, int):
        padding = [(padding, padding)] * n
    elif isinstance(padding, str):
        padding = padding.upper()
    else:
        padding = [(p, p) if isinstance(p, int) else p for p in padding]
    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[n]
    return jax.lax.conv_general_dilated(
        x, k, stride, padding, rhs_dilation=dilation, dimension_numbers=spec, feature_group_count=groups
    )
''',
    "locally_connected": '''
def locally_connected(x, kernel, bias, window, strides):
    """A convolution without weight sharing: the patches at each output position against that position's kernel."""
    n = x.ndim - 2
    window = (window,) * n if isinstance(window, int) else window
    strides = (strides,) * n if isinstance(strides, int) else strides
    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[n]
    patches = jax.lax.conv_general_dilated_patches(x, window, strides, "VALID", dimension_numbers=spec)
    pos = "hw"[:n]
    y = jnp.einsum(f"n{pos}k,{pos}kf->n{pos}f", patches, kernel.astype(x.dtype))
    return y if bias is None else y + bias.astype(x.dtype)
''',
    "adaptive_avgpool": '''
def adaptive_avgpool(x, size):
    """Average into a fixed grid, as torch's AdaptiveAvgPool: bin i covers [i*n//size, ceil((i+1)*n/size))."""
    sizes = (size,) * (x.ndim - 2) if isinstance(size, int) else size
    for axis, out in enumerate(sizes, start=1):
        n = x.shape[axis]
        bins = [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]
        x = jnp.stack([jnp.take(x, jnp.arange(lo, hi), axis=axis).mean(axis=axis) for lo, hi in bins], axis=axis)
    return x
''',
    "positional": '''
def sinusoids(t, f):
    """The transformer's position table [t, f]: sin on even features, cos on odd ones."""
    pos = jnp.arange(t, dtype=jnp.float32)[:, None]
    i = jnp.arange(f)
    angle = pos / jnp.power(10000.0, (2 * (i // 2)).astype(jnp.float32) / f)
    return jnp.where(i % 2 == 0, jnp.sin(angle), jnp.cos(angle))
''',
}


def py_dim(d: Dim) -> str:
    """A Dim as a Python expression over the size variables bound at the top of __call__."""
    if d.is_const:
        return str(d.value)
    parts = []
    for mono, c in d.terms:
        # the floor in parentheses of its own: `4 * (T) // 2` is (4·T) // 2 in Python, not 4·(T // 2)
        atoms = [a if isinstance(a, str) else f"(({py_dim(a.num)}) // {a.den})" for a in mono]
        factors = ([str(abs(c))] if abs(c) != 1 or not atoms else []) + atoms
        parts.append(("-" if c < 0 else "+", " * ".join(factors)))
    text = "".join(f" {s} {t}" for s, t in parts).strip()
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _symbols(d: Dim) -> set[str]:
    out: set[str] = set()
    for mono, _ in d.terms:
        for a in mono:
            out |= {a} if isinstance(a, str) else _symbols(a.num) if isinstance(a, FloorDiv) else set()
    return out


# ---- the module -------------------------------------------------------------------------------------


def emit_flax(g: Graph) -> str:
    """Readable Flax NNX source for the model: a class named after it, with layers named after its values."""
    names = _variable_names(g)
    needed = _needed(g)
    init_lines: list[str] = []
    body: list[str] = []
    helpers: set[str] = set()
    rec = RecordingContext()
    syms_needed: set[str] = set()
    keys: dict[int, str | None] = {}
    for n in g.nodes:
        var = names[n.id]
        if n.op == "input":
            continue
        attrs = n.attr
        if n.op == "param":
            init_lines.append(
                f"self.{var} = nnx.Param({init_src(attrs.get('init')).text}"
                f"(rngs.params(), {lit(tuple(attrs['shape']))}, jnp.float32))"
            )
            continue
        op = get_op(n.op)
        assert op is not None and op.lowerings
        build = op.lowerings[0].build
        if n.shares is not None:  # a named instance applied again: its owner's layer, one set of weights
            keys[n.id] = names[n.shares]
        else:
            layer = build(attrs, tuple(g.type_of(r) for r in n.inputs), rec) if build is not None else None
            keys[n.id] = var if layer is not None else None
            if layer is not None:
                init_lines.append(f"self.{var} = {lit(layer)}")

    def statements(n: Node, alias: dict[Ref, str]) -> list[str]:
        """The lines that compute node n; `alias[ref]` is how a value is written where it is not its variable
        (x inside the function a grad differentiates)."""
        nonlocal syms_needed
        var, attrs = names[n.id], n.attr
        if n.op == "param":
            return [f"{var} = self.{var}[...]"]
        key = keys[n.id]
        if n.op in HELPERS and (n.op != "positional" or key is None):
            helpers.add(n.op)
        if n.op in ("maxpool", "avgpool") and attrs["ceil"]:
            helpers.add("ceil_pool")
        if n.op == "reshape":
            syms_needed |= {s for d in n.type.dims for s in _symbols(d)}
        args = [alias.get(r) or _ref_src(g, names, r) for r in n.inputs]
        op = get_op(n.op)
        if op is not None and op.reruns is not None:
            # grad(y, x): the path from x to y written again as a function of x, differentiated by jax.grad
            x, y = op.reruns(n.inputs)
            param = names[x.node] if len(g.nodes[x.node].outputs) == 1 else f"{names[x.node]}_{x.index}"
            inner = {**alias, x: param}
            lines = [f"def {var}_of({param}):"]
            for i in (path_between(g.nodes, x, y) or ())[1:]:
                lines += [f"    {line}" for line in statements(g.nodes[i], inner)]
            lines.append(f"    return jnp.sum({inner.get(y) or _ref_src(g, names, y)})")
            return [*lines, f"{var} = jax.grad({var}_of)({args[1]})"]
        return [f"{var} = {EMITTERS[n.op](attrs, args, n, key)}"]

    for n in g.nodes:
        if n.op != "input" and n.id in needed:
            body += statements(n, {})
    inputs = [(name, names[nid]) for name, nid in g.inputs]
    used_inputs = {nid for _, nid in g.inputs if nid in needed}
    binds = []
    for name, nid in g.inputs:
        for i, d in enumerate(g.nodes[nid].type.dims):
            s = d.as_symbol()
            if s is not None and s in syms_needed and nid in used_inputs:
                binds.append(f"{s} = {name}.shape[{i}]")
                syms_needed.discard(s)
    params = ", ".join(f"{name}" if nid in used_inputs else f"{name}=None" for name, nid in g.inputs)
    renames = [f"{var} = {name}" for name, var in inputs if var != name]
    outs = ", ".join(f"{name!r}: {_ref_src(g, names, r)}" for name, r in g.outputs)
    lines = [
        f'"""{g.model}: Flax NNX source generated by `specc compile --emit flax` from the spec.',
        "",
        f"    model = {g.model}(nnx.Rngs(0))",
        f"    outputs = model({', '.join(f'{name}=...' for name, nid in g.inputs if nid in used_inputs)})"
        "  # a dict: output name → array",
        '"""',
        "",
        "import jax",
        "import jax.numpy as jnp",
        "from flax import nnx",
        "",
    ]
    for h in sorted(helpers):
        lines += [HELPERS[h].strip("\n"), "", ""]
    lines += [
        "",
        f"class {g.model}(nnx.Module):",
        "    def __init__(self, rngs: nnx.Rngs):",
        *(f"        {line}" for line in init_lines or ["pass"]),
        "",
        f"    def __call__(self, *, {params}):" if params else "    def __call__(self):",
        *(f"        {line}" for line in [*renames, *binds, *body]),
        f"        return {{{outs}}}",
        "",
    ]
    return "\n".join(lines)


def _ref_src(g: Graph, names: dict[int, str], r: Ref) -> str:
    """A value as the emitted source names it: its node's variable, indexed for one output of several."""
    return names[r.node] if len(g.nodes[r.node].outputs) == 1 else f"{names[r.node]}[{r.index}]"


def _variable_names(g: Graph) -> dict[int, str]:
    """The layer keys of an unrolled SpecModule (so state transfers by name; the emitted source writes every copy
    of a `repeat` out, so it names them as build_module(..., roll=False) does)."""
    return layer_keys(g, roll=False)


def _needed(g: Graph) -> set[int]:
    need = {r.node for _, r in g.outputs}
    for n in reversed(g.nodes):
        if n.id in need:
            need |= {r.node for r in n.inputs}
    return need
