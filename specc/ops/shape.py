"""Shape ops: flatten, reshape, broadcast_to, transpose, concat, stack, split, slicing, cast, one_hot."""

from __future__ import annotations

from typing import Any

from ..ir.dims import Dim, DimError, fmt_dims, product
from ..ir.types import JNP_NAMES, TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, register


def _jax(f: Any) -> tuple[Lowering, ...]:
    """A stateless reference lowering from (attrs, inputs, ctx) → output(s)."""
    return (Lowering("reference", apply=lambda m, a, xs, ctx: f(a, xs, ctx)),)


def _flatten(c: OpCall) -> Inferred:
    start = c["start"]
    if not 0 <= start < max(c.x.rank, 1):
        raise c.fail(f"flatten start={start} is out of range for {c.x}", arg="start")
    out = (*c.x.dims[:start], product(c.x.dims[start:]))
    return Inferred((c.x.with_dims(out),))


register(
    OpDef(
        name="flatten",
        family="shape",
        tensors=1,
        args=(Arg("start", "int", 1, min=0),),
        infer=_flatten,
        # the whole shape, not -1: a -1 cannot be resolved when the input has no elements
        lowerings=_jax(lambda a, xs, ctx: xs[0].reshape(ctx.shape(ctx.out_type))),
        doc="merge the axes from `start` (default: all but the batch) into one",
    )
)


def _reshape(c: OpCall) -> Inferred:
    target: tuple[Any, ...] = c["shape"]
    holes = [i for i, d in enumerate(target) if d == -1]
    if len(holes) > 1:
        raise c.fail(
            f"reshape can infer at most one axis (-1), got {len(holes)} in {_fmt(target)}",
            "give every size but one; -1 stands for the one left over, as in reshape([N, -1])",
            arg="shape",
        )
    total = product(c.x.dims)
    if holes:
        known = product(d for d in target if d != -1)
        if total == Dim.const(0) or known == Dim.const(0):
            raise c.fail(
                f"reshape cannot infer -1 in {_fmt(target)} from {c.x}: with no elements any size fits",
                "give every size of the new shape",
                arg="shape",
            )
        try:
            fill = total.exact_div(known)
        except DimError:
            raise c.fail(
                f"reshape cannot fill -1 in {_fmt(target)} from {c.x}: {total} elements are not divisible by {known}",
                arg="shape",
            ) from None
        target = tuple(fill if d == -1 else d for d in target)
    dims = tuple(target)
    if product(dims) != total:
        raise c.fail(
            f"reshape to {fmt_dims(dims)} needs {product(dims)} elements per tensor, but {c.x} has {total}",
            "the product of the new sizes must equal the old one; use -1 for the axis to infer",
        )
    return Inferred((c.x.with_dims(dims),))


def _fmt(target: tuple[Any, ...]) -> str:
    return "[" + ", ".join(str(d) for d in target) + "]"


register(
    OpDef(
        name="reshape",
        family="shape",
        tensors=1,
        args=(Arg("shape", "dims"),),
        infer=_reshape,
        lowerings=_jax(lambda a, xs, ctx: xs[0].reshape(ctx.shape(ctx.out_type))),
        label=lambda a: f"reshape {_fmt(a['shape'])}",
        doc="same elements, new shape (the batch axis included: reshape([N, 28, 28, 1]))",
    )
)


def _broadcast_to(c: OpCall) -> Inferred:
    """NumPy's broadcast_to (PyTorch's expand): the input's axes, aligned to the right of the new shape, must be 1
    or equal the new size; -1 keeps the input's size there (`cls -> broadcast_to([N, -1, -1])` for a ViT's class
    token [1, 1, D])."""
    target = list(c["shape"])
    x = c.x
    if len(target) < x.rank:
        raise c.fail(
            f"broadcast_to {_fmt(tuple(target))} has {len(target)} axes, fewer than the {x.rank} of {x}",
            "give at least one size per axis of the input",
            arg="shape",
        )
    lead = len(target) - x.rank
    for i, d in enumerate(target):
        if i < lead:
            if d == -1:
                raise c.fail(
                    f"broadcast_to {_fmt(tuple(target))}: -1 at axis {i} has no axis of {x} to keep",
                    "give the new leading axes their sizes",
                    arg="shape",
                )
            continue
        old = x.dims[i - lead]
        if d == -1:
            target[i] = old
        elif old != Dim.const(1) and old != d:
            raise c.fail(
                f"broadcast_to {_fmt(tuple(target))}: axis {i - lead} of {x} has size {old}, which broadcasts "
                f"only to itself, not to {d}",
                "only axes of size 1 stretch; keep a size with -1",
                arg="shape",
            )
    return Inferred((x.with_dims(tuple(target)),))


register(
    OpDef(
        name="broadcast_to",
        family="shape",
        tensors=1,
        args=(Arg("shape", "dims"),),
        infer=_broadcast_to,
        lowerings=_jax(lambda a, xs, ctx: ctx.jnp.broadcast_to(xs[0], ctx.shape(ctx.out_type))),
        label=lambda a: f"broadcast {_fmt(a['shape'])}",
        doc="stretch axes of size 1 to the given sizes, as NumPy's broadcast_to / PyTorch's expand; -1 keeps a "
        "size (a ViT's class token: `param cls: [1, 1, D]`, `cls -> broadcast_to([N, -1, -1])`)",
    )
)


def _transpose(c: OpCall) -> Inferred:
    perm = c["perm"]
    r = c.x.rank
    if sorted(p % r if -r <= p < r else p for p in perm) != list(range(r)):
        swap = [*range(r - 2), r - 1, r - 2] if r >= 2 else list(range(r))
        raise c.fail(
            f"transpose perm {list(perm)} is not a permutation of the {r} axes of {c.x}",
            f"list each of the {r} axes once, the batch axis included: transpose({swap}) swaps the last two",
            arg="perm",
        )
    return Inferred((c.x.with_dims(tuple(c.x.dims[p] for p in perm)),))


register(
    OpDef(
        name="transpose",
        family="shape",
        tensors=1,
        args=(Arg("perm", "ints"),),
        infer=_transpose,
        lowerings=_jax(lambda a, xs, ctx: ctx.jnp.transpose(xs[0], a["perm"])),
        label=lambda a: f"transpose {list(a['perm'])}",
        doc="permute axes",
    )
)


def _same_dtype(c: OpCall) -> str:
    dtypes = {t.dtype for t in c.inputs}
    if len(dtypes) > 1:
        raise c.fail(
            f"{c.op.name} needs tensors of one dtype, got {', '.join(str(t) for t in c.inputs)}",
            kind="type error",
        )
    return c.inputs[0].dtype


def _concat(c: OpCall) -> Inferred:
    dtype = _same_dtype(c)
    r = c.x.rank
    ranks = {t.rank for t in c.inputs}
    if len(ranks) > 1:
        raise c.fail(
            f"concat needs tensors of one rank, got {', '.join(str(t) for t in c.inputs)}",
            "give them the same axes first (`-> flatten`, or `-> reshape([...])`); all axes but the joined one "
            "must match",
        )
    ax = c.axis("axis")
    for t in c.inputs[1:]:
        for i in range(r):
            if i != ax and t.dims[i] != c.x.dims[i]:
                raise c.fail(
                    f"concat along axis {c['axis']}: axis {i} differs ({c.x.dims[i]} vs {t.dims[i]}) between "
                    f"{c.x} and {t}",
                    "all axes but the concatenated one must match",
                )
    size = Dim.const(0)
    for t in c.inputs:
        size = size + t.dims[ax]
    dims = (*c.x.dims[:ax], size, *c.x.dims[ax + 1 :])
    return Inferred((TensorType(dtype, dims),))


register(
    OpDef(
        name="concat",
        family="shape",
        tensors=(1, None),
        args=(Arg("axis", "axis", -1),),
        infer=_concat,
        lowerings=_jax(lambda a, xs, ctx: ctx.jnp.concatenate(xs, axis=a["axis"])),
        doc="join tensors along an existing axis",
    )
)


def _stack(c: OpCall) -> Inferred:
    dtype = _same_dtype(c)
    for t in c.inputs[1:]:
        if t.dims != c.x.dims:
            raise c.fail(
                f"stack needs tensors of one shape, got {c.x} and {t}",
                "stack joins tensors of one shape along a new axis; concat joins them along an existing one",
            )
    ax = c.axis("axis", rank=c.x.rank + 1)
    dims = (*c.x.dims[:ax], Dim.const(len(c.inputs)), *c.x.dims[ax:])
    return Inferred((TensorType(dtype, dims),))


register(
    OpDef(
        name="stack",
        family="shape",
        tensors=(1, None),
        args=(Arg("axis", "axis", 0),),
        infer=_stack,
        lowerings=_jax(lambda a, xs, ctx: ctx.jnp.stack(xs, axis=a["axis"])),
        doc="join tensors of one shape along a new axis",
    )
)


def _split(c: OpCall) -> Inferred:
    ax = c.axis("axis")
    size = c.x.dims[ax]
    parts = c["parts"]
    if isinstance(parts, int):
        try:
            each = size.exact_div(parts)
            if each * parts != size:  # a symbolic size not provably a multiple: N/3 would floor at run time
                raise DimError(f"cannot prove that {size} is divisible by {parts}")
        except DimError:
            raise c.fail(
                f"split into {parts} equal parts: axis {c['axis']} of {c.x} has size {size}, not divisible by {parts}",
                "give the sizes instead: split([a, b], axis=...)",
                arg="parts",
            ) from None
        sizes = [each] * parts
    else:
        sizes = [Dim.const(p) for p in parts]
        if Dim.const(sum(parts)) != size:
            raise c.fail(
                f"split sizes {list(parts)} add up to {sum(parts)} but axis {c['axis']} of {c.x} has size {size}",
                arg="parts",
            )
    outs = tuple(c.x.with_dims((*c.x.dims[:ax], s, *c.x.dims[ax + 1 :])) for s in sizes)
    return Inferred(outs)


def _split_apply(a: dict[str, Any], xs: list[Any], ctx: Any) -> tuple[Any, ...]:
    x = xs[0]
    parts = a["parts"]
    if isinstance(parts, int):
        return tuple(ctx.jnp.split(x, parts, axis=a["axis"]))
    cuts, at = [], 0
    for p in parts[:-1]:
        at += p
        cuts.append(at)
    return tuple(ctx.jnp.split(x, cuts, axis=a["axis"]))


register(
    OpDef(
        name="split",
        family="shape",
        tensors=1,
        args=(Arg("parts", "parts"), Arg("axis", "axis", -1)),
        infer=_split,
        lowerings=_jax(_split_apply),
        doc="cut along an axis into n equal parts or parts of given sizes (several outputs)",
    )
)


def _index(c: OpCall) -> Inferred:
    """`x[...]` with items ("i", k) | ("s", lo, hi, step) | ("e",) | ("n",) — NumPy basic indexing (None adds an
    axis of size 1), static bounds."""
    items = c["items"]
    n_ell = sum(1 for it in items if it[0] == "e")
    if n_ell > 1:
        raise c.fail("an index can hold at most one '...'")
    used = sum(1 for it in items if it[0] in ("i", "s"))
    if used > c.x.rank:
        raise c.fail(
            f"too many indices ({used}) for {c.x} of rank {c.x.rank}",
            f"give at most {c.x.rank} indices or slices, one per axis, the batch axis first",
        )
    expanded: list[Any] = []
    for it in items:
        if it[0] == "e":
            expanded.extend([("s", None, None, None)] * (c.x.rank - used))
        else:
            expanded.append(it)
    expanded.extend([("s", None, None, None)] * (c.x.rank + expanded.count(("n",)) - len(expanded)))
    out: list[Dim] = []
    axis = 0
    for it in expanded:
        if it[0] == "n":
            out.append(Dim.const(1))
            continue
        d = c.x.dims[axis]
        if it[0] == "i":
            k = it[1]
            if d.is_const and not -d.value <= k < d.value:
                raise c.fail(f"index {k} is out of range for axis {axis} of {c.x} (size {d})")
            axis += 1
            continue
        _, lo, hi, step = it
        step = 1 if step is None else step
        if step <= 0:
            raise c.fail("slice steps must be positive")
        out.append(_slice_len(d, lo, hi, step, c, axis))
        axis += 1
    return Inferred((c.x.with_dims(tuple(out)),))


def _slice_len(d: Dim, lo: int | None, hi: int | None, step: int, c: OpCall, axis: int) -> Dim:
    if d.is_const:
        n = len(range(*slice(lo, hi, step).indices(d.value)))
        if n == 0:
            raise c.fail(
                f"slice {lo if lo is not None else ''}:{hi if hi is not None else ''} of axis {axis} of {c.x} is empty",
                "a slice keeps at least one element: check its bounds against the axis size",
            )
        return Dim.const(n)
    # symbolic size: only bounds that do not depend on it are representable exactly
    if lo is None and hi is None:
        return d.floordiv(step) if step == 1 else (d + (step - 1)).floordiv(step)
    if (lo is None or lo >= 0) and hi is not None and hi >= 0:
        return Dim.const(len(range(lo or 0, hi, step)))
    if lo is not None and lo >= 0 and hi is None:
        return (d - lo + (step - 1)).floordiv(step)
    if lo is not None and lo < 0 and hi is None:
        return Dim.const(len(range(0, -lo, step)))
    if (lo is None or lo >= 0) and hi is not None and hi < 0:
        return (d + hi - (lo or 0) + (step - 1)).floordiv(step)
    raise c.fail(f"cannot size the slice {lo}:{hi} of axis {axis} of {c.x} while that axis is symbolic")


register(
    OpDef(
        name="index",
        family="shape",
        tensors=1,
        args=(Arg("items", "index"),),
        infer=_index,
        lowerings=_jax(lambda a, xs, ctx: xs[0][index_key(a["items"])]),
        label=lambda a: "[" + ", ".join(_fmt_item(i) for i in a["items"]) + "]",
        doc="NumPy basic indexing and slicing: x[:, 0:1]; None adds an axis: x[:, None]",
    )
)


def index_key(items: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """The items as a NumPy index: ints, slices, Ellipsis and None."""
    return tuple(
        it[1]
        if it[0] == "i"
        else Ellipsis
        if it[0] == "e"
        else None
        if it[0] == "n"
        else slice(it[1], it[2], it[3])
        for it in items
    )


def _fmt_item(it: tuple[Any, ...]) -> str:
    if it[0] == "i":
        return str(it[1])
    if it[0] == "e":
        return "..."
    if it[0] == "n":
        return "None"
    _, lo, hi, step = it
    s = f"{'' if lo is None else lo}:{'' if hi is None else hi}"
    return s + (f":{step}" if step is not None else "")


def _cast(c: OpCall) -> Inferred:
    return Inferred((c.x.with_dtype(c["dtype"]),))


register(
    OpDef(
        name="cast",
        family="shape",
        tensors=1,
        args=(Arg("dtype", "dtype"),),
        infer=_cast,
        lowerings=_jax(lambda a, xs, ctx: xs[0].astype(JNP_NAMES[a["dtype"]])),
        label=lambda a: f"cast {a['dtype']}",
        doc="convert to another dtype (cast(f32))",
    )
)


def _one_hot(c: OpCall) -> Inferred:
    if not c.x.is_int:
        raise c.fail(
            f"one_hot expects integer class labels, got {c.x}",
            "one_hot takes class indices; whole numbers stored as floats become them with `-> cast(i32)`",
            kind="type error",
        )
    return Inferred((TensorType("f32", (*c.x.dims, Dim.const(c["classes"]))),))


register(
    OpDef(
        name="one_hot",
        family="shape",
        tensors=1,
        args=(Arg("classes", "int", min=1),),
        infer=_one_hot,
        lowerings=_jax(lambda a, xs, ctx: ctx.jax.nn.one_hot(xs[0], a["classes"], dtype=ctx.jnp.float32)),
        label=lambda a: f"one_hot {a['classes']}",
        doc="integer labels → one-hot float vectors",
    )
)
