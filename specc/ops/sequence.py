"""Sequence ops on [N, T, F]: embed, recurrent layers (rnn, lstm, gru), self-attention, positional encodings."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ..ir.dims import Dim, fmt_dims, product
from ..ir.types import TensorType
from ._registry import Arg, Inferred, Lowering, OpCall, OpDef, call_layer, register
from .elementwise import INT_BOUNDS

I32_MAX = INT_BOUNDS["i32"][1]  # the largest i32 token id

# ---- embed -----------------------------------------------------------------------------------------


def _embed(c: OpCall) -> Inferred:
    if not c.x.is_int:
        raise c.fail(
            f"embed looks up integer token ids, got a {c.x.dtype} input {c.x}",
            "feed it the token ids (i32); for float features use `dense(...)` instead",
            kind="type error",
        )
    if c.x.rank == 0:  # nnx.Embed cannot look up a scalar id
        raise c.fail(
            f"embed expects token ids with at least a batch axis, got {c.x}",
            "one id per example is [N]; a sequence of ids is [N, T]",
        )
    vocab, feat = c["vocab"], c["features"]
    if (
        vocab > I32_MAX
    ):  # the lookup bounds the i32 ids by vocab, which JAX refuses beyond i32: exit 3 before this
        raise c.fail(
            f"embed(vocab={vocab:,}) has more ids than an i32 token id can name ({I32_MAX:,})",
            f"a vocabulary is at most {I32_MAX:,} ids; this table alone would hold {vocab * feat:,} parameters",
            kind="value error",
        )
    out = TensorType("f32", (*c.x.dims, Dim.const(feat)))
    # a table lookup: no arithmetic
    return Inferred((out,), params={"embedding": (vocab, feat)})


def _embed_build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
    # no init given: Flax's own embedding default (normal with std 1/sqrt(features)), not a weight-matrix one
    kw = {} if a["init"] is None else {"embedding_init": ctx.init(a["init"])}
    return ctx.nnx.Embed(a["vocab"], a["features"], rngs=ctx.rngs, **kw)


register(
    OpDef(
        name="embed",
        family="sequence",
        tensors=1,
        args=(Arg("vocab", "int", min=1), Arg("features", "int", min=1), Arg("init", "init", None)),
        infer=_embed,
        lowerings=(Lowering("reference", apply=call_layer, build=_embed_build),),
        label=lambda a: f"embed {a['vocab']}→{a['features']}",
        doc="looks up a learned vector of `features` floats for each integer id below `vocab`",
    )
)


# ---- recurrent layers ------------------------------------------------------------------------------

# Gate count per cell: how many H-wide blocks its input and hidden projections produce.
GATES = {"simple": 1, "lstm": 4, "gru": 3}


def cell_params(cell: str, fin: int, h: int) -> dict[str, tuple[int, ...]]:
    """Parameters of one Flax NNX cell (SimpleCell, OptimizedLSTMCell, GRUCell), named as nnx names them.

    Flax gives each cell ONE bias per gate, where PyTorch's nn.RNN/LSTM/GRU have two (b_ih and b_hh):
      simple: dense_i has the bias, dense_h none:  F*H + H*H + H       (PyTorch F*H + H*H + 2H)
      lstm:   dense_h has the bias, dense_i none:  4*(F*H + H*H + H)   (PyTorch 4*(F*H + H*H + 2H); Keras = Flax)
      gru:    dense_i has the bias, dense_h none:  3*(F*H + H*H + H)   (PyTorch and Keras' reset_after=True
              GRU have 3*(F*H + H*H + 2H): the candidate gate's hidden bias sits inside r * (W_hn h + b_hn))
    """
    g = GATES[cell]
    params: dict[str, tuple[int, ...]] = {"dense_i.kernel": (fin, g * h), "dense_h.kernel": (h, g * h)}
    params["dense_h.bias" if cell == "lstm" else "dense_i.bias"] = (g * h,)
    return params


# The state a cell carries from step to step, named as PyTorch's nn.LSTM names it (h, c), in its order: a spec
# writes `x -> lstm(h0, c0, 128)` and `y, h, c = x -> lstm(128, return_state=true)`. Flax's LSTM carry is (c, h).
STATE = {"simple": ("h",), "lstm": ("h", "c"), "gru": ("h",)}


def _initial_state(c: OpCall, cell: str, h: int) -> None:
    """The state tensors after x, if any: every one of the cell's, each [N, H] in x's dtype and batch."""
    given, names = c.inputs[1:], STATE[cell]
    if not given:
        return
    call = f"{c.op.name}(cell={cell})" if c.op.name == "rnn" else c.op.name
    want = ", ".join(f"{k}0" for k in names)
    if len(given) != len(names):
        raise c.fail(
            f"{call} starts from its state ({want}): {len(names)} tensor(s) after the input, got {len(given)}",
            f"write `x -> {c.op.name}({want}, {h})`, or give no state to start from zeros",
            kind="argument error",
        )
    if c["bidirectional"]:
        raise c.fail(
            f"{call}(bidirectional=true) runs two directions, each from its own state; specc takes an initial "
            "state for a one-directional layer only",
            "drop bidirectional=true, or the initial state (each direction then starts from zeros)",
            arg="bidirectional",
            kind="argument error",
        )
    n = c.x.dims[0]
    for k, t in zip(names, given, strict=True):
        what = f"{call}'s initial state {k}0"
        if t.dtype != c.x.dtype:
            raise c.fail(
                f"{what} is {t} but the input is {c.x}: the state must have the input's dtype {c.x.dtype}",
                f"cast it: `-> cast({c.x.dtype})`",
                kind="type error",
            )
        if t.rank != 2 or t.dims[0] != n or t.dims[1] != Dim.const(h):
            raise c.fail(
                f"{what} must be [N, H] = {fmt_dims((n, Dim.const(h)))} (the input's batch, {h} features), got {t}",
                f"a layer of {h} features starts from a [N, {h}] state; an encoder's final state seeds a decoder "
                f"of the same width: `_, h, c = x -> lstm({h}, return=last, return_state=true)`",
            )


def _recurrent(c: OpCall, cell: str) -> Inferred:
    c.need_rank(3, what=" [N, T, features]", hint="a recurrent layer runs over the time axis T of [N, T, F]")
    c.need_float()
    fin = c.known(c.x.dims[2], "the feature axis (the last)")
    h = c["features"]
    bi = c["bidirectional"]
    _initial_state(c, cell, h)
    if bi and c["return_state"]:
        raise c.fail(
            f"{c.op.name}(bidirectional=true) ends with two states, one per direction; specc returns the final "
            "state of a one-directional layer only",
            "drop return_state=true, or bidirectional=true",
            arg="return_state",
            kind="argument error",
        )
    cp = cell_params(cell, fin, h)
    # paths as in nnx.RNN(cell) and nnx.Bidirectional(forward_rnn, backward_rnn)
    dirs = ("forward_rnn.", "backward_rnn.") if bi else ("",)
    params = {f"{d}cell.{k}": v for d in dirs for k, v in cp.items()}
    n, t, _ = c.x.dims
    if c["return"] == "last" and t == Dim.const(0):
        raise c.fail(
            f"{c.op.name}(return=last) returns the last of T steps, but {c.x} has T = 0",
            "give it a sequence of at least one step",
            arg="return",
        )
    hout = Dim.const(h * len(dirs))
    out = (n, t, hout) if c["return"] == "sequence" else (n, hout)
    outputs: tuple[TensorType, ...] = (c.x.with_dims(out),)
    if c["return_state"]:  # the final h (and c): [N, H] each, after the output
        outputs += tuple(c.x.with_dims((n, Dim.const(h))) for _ in STATE[cell])
    # the input and hidden matmuls of every step, every direction; bias adds and gate nonlinearities are small
    flops = n * t * (2 * GATES[cell] * h * (fin + h) * len(dirs))
    return Inferred(outputs, params=params, flops=flops)


CELLS = {"simple": "SimpleCell", "lstm": "OptimizedLSTMCell", "gru": "GRUCell"}


def _recurrent_lowering(cell: str | None) -> Lowering:
    """nnx.RNN over a Flax cell (nnx.Bidirectional of two when bidirectional); `cell` None reads attrs["cell"]."""

    def build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
        nnx = ctx.nnx
        cls = getattr(nnx, CELLS[cell or a["cell"]])
        fin = types[0].dims[2].value

        def rnn() -> Any:
            # no half-precision dtype=: Flax keeps the carry in f32, and a bf16 cell output would not match it
            c = cls(fin, a["features"], kernel_init=ctx.init(None), rngs=ctx.rngs)
            return nnx.RNN(c)

        return nnx.Bidirectional(rnn(), rnn()) if a["bidirectional"] else rnn()

    def apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
        x = xs[0]
        lstm = (cell or a["cell"]) == "lstm"
        kw: dict[str, Any] = {}
        if len(xs) > 1:  # Flax keeps the carry in the parameters' dtype (f32); its LSTM carry is (c, h)
            state = [s.astype(ctx.jnp.float32) for s in xs[1:]]
            kw["initial_carry"] = (state[1], state[0]) if lstm else state[0]
        carry = None
        if a["return_state"]:
            carry, y = m(x, return_carry=True, **kw)
            carry = (carry[1], carry[0]) if lstm else (carry,)
        else:
            y = m(x, **kw)
        return _recurrent_result(a, x, y, carry, ctx.jnp)

    return Lowering("reference", apply=apply, build=build)


def _recurrent_result(a: Mapping[str, Any], x: Any, y: Any, final: tuple[Any, ...] | None, jnp: Any) -> Any:
    """What a recurrent op gives from its layer's outputs y [N, T, H or 2H] (time order) and, with
    return_state, its final state (h, c for an LSTM)."""
    y = y.astype(x.dtype)  # the shape rule gives the input's dtype
    if a["return"] == "sequence":
        out = y
    elif not a["bidirectional"]:
        out = y[:, -1]
    else:
        h = a["features"]  # the backward direction ends at step 0 (Bidirectional keeps time order)
        out = jnp.concatenate([y[:, -1, :h], y[:, 0, h:]], axis=-1)
    if final is None:
        return out
    return (out, *(s.astype(x.dtype) for s in final))


@functools.cache
def lstm_sequence(jax: Any) -> Callable[..., Any]:
    """The LSTM over a time-major sequence, with its backward pass written out: (x [T, N, F], h0, c0 [N, H],
    Wi [F, 4H], Wh [H, 4H], b [4H]) → (hs [T, N, H], h, c), Flax's OptimizedLSTMCell step for step (gates i, f,
    g, o; sigmoid, tanh). Autodiff of the scan accumulates the weight gradients inside the loop, step by step (28
    small matmuls and adds each); here the backward scan only carries dh, dc and keeps each step's gate
    gradients, and the weight, bias and input gradients are one matmul each over all steps."""
    jnp = jax.numpy

    def cell(xw: Any, h: Any, c: Any, wh: Any, b: Any) -> tuple[Any, Any, tuple[Any, ...]]:
        i, f, g, o = jnp.split(xw + h @ wh + b, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c2 = f * c + i * g
        tc = jnp.tanh(c2)
        return o * tc, c2, (i, f, g, o, tc)

    def run(x: Any, h0: Any, c0: Any, wi: Any, wh: Any, b: Any, keep: bool) -> Any:
        def step(carry: Any, x_t: Any) -> Any:
            h, c = carry
            h2, c2, acts = cell(x_t @ wi, h, c, wh, b)
            return (h2, c2), ((h2, h, c, acts) if keep else h2)

        return jax.lax.scan(step, (h0, c0), x)

    @jax.custom_vjp
    def lstm(x: Any, h0: Any, c0: Any, wi: Any, wh: Any, b: Any) -> Any:
        (h, c), hs = run(x, h0, c0, wi, wh, b, False)
        return hs, h, c

    def forward(x: Any, h0: Any, c0: Any, wi: Any, wh: Any, b: Any) -> Any:
        (h, c), (hs, h_before, c_before, acts) = run(x, h0, c0, wi, wh, b, True)
        return (hs, h, c), (x, h_before, c_before, acts, wi, wh)

    def backward(res: Any, grads: Any) -> Any:
        x, h_before, c_before, (i, f, g, o, tc), wi, wh = res
        d_hs, d_h, d_c = grads

        def step(carry: Any, t: Any) -> Any:
            dh_next, dc_next = carry
            dh_out, i_, f_, g_, o_, tc_, c_ = t
            dh = dh_out + dh_next
            dc = dc_next + dh * o_ * (1 - tc_ * tc_)
            d_gates = jnp.concatenate(
                [
                    dc * g_ * i_ * (1 - i_),
                    dc * c_ * f_ * (1 - f_),
                    dc * i_ * (1 - g_ * g_),
                    dh * tc_ * o_ * (1 - o_),
                ],
                axis=-1,
            )
            return (d_gates @ wh.T, dc * f_), d_gates

        (dh0, dc0), d_gates = jax.lax.scan(step, (d_h, d_c), (d_hs, i, f, g, o, tc, c_before), reverse=True)
        rows = d_gates.shape[0] * d_gates.shape[1]
        dg = d_gates.reshape(rows, -1)
        dx = (dg @ wi.T).reshape(x.shape)
        dwi = x.reshape(rows, -1).T @ dg
        dwh = h_before.reshape(rows, -1).T @ dg
        return dx, dh0, dc0, dwi, dwh, dg.sum(axis=0)

    lstm.defvjp(forward, backward)
    return lstm


def _lstm_vjp_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """The LSTM's `vjp` lowering: the parameters of the reference's nnx.RNN (or nnx.Bidirectional) layer, run by
    lstm_sequence."""
    jnp = ctx.jnp
    x = xs[0]
    run = lstm_sequence(ctx.jax)
    h = a["features"]

    def direction(rnn: Any, seq: Any, state: list[Any]) -> tuple[Any, Any, Any]:
        c = rnn.cell
        if not state:
            state = [jnp.zeros((seq.shape[0], h), jnp.float32)] * 2
        wi, wh, b = c.dense_i.kernel[...], c.dense_h.kernel[...], c.dense_h.bias[...]
        hs, hn, cn = run(jnp.swapaxes(seq.astype(jnp.float32), 0, 1), *state, wi, wh, b)
        return jnp.swapaxes(hs, 0, 1), hn, cn

    state = [s.astype(jnp.float32) for s in xs[1:]]
    if a["bidirectional"]:  # the backward direction reads the sequence reversed, given back in time order
        y_f = direction(m.forward_rnn, x, state)[0]
        y_b = direction(m.backward_rnn, jnp.flip(x, axis=1), state)[0]
        return _recurrent_result(a, x, jnp.concatenate([y_f, jnp.flip(y_b, axis=1)], axis=-1), None, jnp)
    y, hn, cn = direction(m, x, state)
    return _recurrent_result(a, x, y, (hn, cn) if a["return_state"] else None, jnp)


def _is_lstm(a: Mapping[str, Any]) -> bool:
    return a.get("cell", "lstm") == "lstm"


# An LSTM's backward written out: measured on the CPU (`python -m bench.step_time --models lstm`), so the rule
# takes it there; GPUs keep the reference unless measured faster. The same for the GRU (its gate gradients kept,
# the weight gradients one matmul each) was 8 % slower than autodiff of Flax's GRUCell on the CPU: not kept.
LSTM_VJP = Lowering(
    "vjp",
    apply=_lstm_vjp_apply,
    when=lambda a, types, platform: platform == "cpu" and _is_lstm(a),
    applies=lambda a, types: _is_lstm(a),
)


def _rnn_label(cell: str, a: Mapping[str, Any]) -> str:
    state = f" → {', '.join(STATE[cell])}" if a["return_state"] else ""
    return f"{'bi' if a['bidirectional'] else ''}{cell} {a['features']}{state}"


def _cell_label(cell: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda a: _rnn_label(cell, a)


def _cell_infer(cell: str) -> Callable[[OpCall], Inferred]:
    return lambda c: _recurrent(c, cell)


_RECURRENT_ARGS = (
    Arg("features", "int", min=1, doc="hidden size H"),
    Arg(
        "return",
        "enum",
        "sequence",
        choices=("sequence", "last"),
        doc="every step [N, T, H] or the last [N, H]",
    ),
    Arg("bidirectional", "bool", False, doc="run both directions and concatenate: 2*H features"),
    Arg(
        "return_state",
        "bool",
        False,
        doc="also return the final state after the output: h [N, H] (and c for an LSTM), "
        "`y, h, c = x -> lstm(H, return_state=true)`",
    ),
)


def _doc(name: str, state: tuple[str, ...]) -> str:
    given = " and ".join(f"{k} [N, H]" for k in state)
    return f"over the time axis of x [N, T, F], from zeros or from a given {given}: `x -> {name}({', '.join(state)}, H)`"


register(
    OpDef(
        name="rnn",
        family="sequence",
        tensors=(1, 3),
        tensor_names=("x", "h0", "c0"),
        args=(_RECURRENT_ARGS[0], Arg("cell", "enum", "simple", choices=tuple(GATES)), *_RECURRENT_ARGS[1:]),
        infer=lambda c: _recurrent(c, c["cell"]),
        lowerings=(_recurrent_lowering(None), LSTM_VJP),
        label=lambda a: _rnn_label(a["cell"], a),
        doc="recurrent layer with a simple, LSTM or GRU cell "
        + _doc("rnn", ("h0",))
        + " (an LSTM cell: h0, c0)",
    )
)
for _cell in ("lstm", "gru"):
    _state = tuple(f"{k}0" for k in STATE[_cell])
    register(
        OpDef(
            name=_cell,
            family="sequence",
            tensors=(1, 1 + len(_state)),
            tensor_names=("x", *_state),
            args=_RECURRENT_ARGS,
            infer=_cell_infer(_cell),
            lowerings=(_recurrent_lowering(_cell), *((LSTM_VJP,) if _cell == "lstm" else ())),
            label=_cell_label(_cell),
            doc=f"rnn with cell={_cell} " + _doc(_cell, _state),
        )
    )


# ---- attention -------------------------------------------------------------------------------------


def _memory(c: OpCall) -> TensorType:
    """attention's second input, checked against the query: [N, S, F_kv], its own length S and width F_kv."""
    q, m = c.inputs
    where = "attention's memory (its second input, which keys and values are computed from)"
    if m.rank != 3:
        raise c.fail(
            f"{where} must be [N, S, features], got {m}",
            "cross-attention reads a sequence: `dec -> attention(enc, heads)` with enc [N, S, F]",
        )
    if m.dtype != q.dtype:
        raise c.fail(
            f"{where} is {m.dtype} but the query is {q.dtype}: {m} against {q}",
            f"cast one to the other's dtype: `-> cast({q.dtype})`",
            kind="type error",
        )
    if m.dims[0] != q.dims[0]:
        raise c.fail(
            f"{where} has batch {m.dims[0]} but the query has batch {q.dims[0]}: {m} against {q}",
            "each example's queries attend to that example's memory: both need the same batch axis",
        )
    f = m.dims[2].as_int()
    if f is None or f == 0:
        raise c.fail(
            f"attention needs the memory's feature axis to be a known, non-zero number to size the key and value "
            f"projections, got {m.dims[2]} in {m}",
            "declare that axis with a number in the memory's type",
        )
    return m


def _attention(c: OpCall) -> Inferred:
    hint = "attention mixes the time axis T of [N, T, F]"
    c.need_rank(3, what=" [N, T, features]", hint=hint)
    c.need_float()
    fin = c.known(c.x.dims[2], "the feature axis (the last)")
    mem = _memory(c) if len(c.inputs) == 2 else c.x
    fkv = mem.dims[2].value
    heads = c["heads"]
    qkv = fin if c["features"] is None else c["features"]
    if qkv % heads:
        raise c.fail(
            f"attention splits {qkv} features into {heads} heads, but {qkv} is not divisible by {heads} "
            f"(input {c.x})",
            "choose heads that divide the features, or set features= to a multiple of heads",
            arg="heads",
            kind="argument error",
        )
    n, t, _ = c.x.dims
    s = mem.dims[1]
    if c["causal"] and s != t:
        raise c.fail(
            f"attention(causal=true) lets query step i see memory steps up to i, which needs the memory's length "
            f"to be the query's; here the query has T = {t} and the memory S = {s} ({c.x} against {mem})",
            "a decoder's cross-attention is not causal (every step may read the whole encoding): drop causal=true; "
            "the decoder's self-attention is the causal one",
            arg="causal",
            kind="argument error",
        )
    hd = qkv // heads
    # nnx.MultiHeadAttention: LinearGeneral projections to (heads, head_dim) — the query from the query's F,
    # key and value from the memory's F_kv (in_kv_features) — and the out projection back to the query's F
    params: dict[str, tuple[int, ...]] = {"query.kernel": (fin, heads, hd), "query.bias": (heads, hd)}
    for proj in ("key", "value"):
        params[f"{proj}.kernel"] = (fkv, heads, hd)
        params[f"{proj}.bias"] = (heads, hd)
    params["out.kernel"] = (heads, hd, fin)
    params["out.bias"] = (fin,)
    # q and out projections per query step (2 * F*qkv), k and v per memory step (2 * F_kv*qkv), then the T×S
    # scores q·k and the weighted sum of v (qkv each); a causal mask still computes every score: same cost
    flops = n * t * (2 * 2 * fin * qkv) + n * s * (2 * 2 * fkv * qkv) + n * t * s * (2 * 2 * qkv)
    return Inferred((c.x,), params=params, flops=flops)


def _attention_build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
    fin = types[0].dims[2].value
    return ctx.nnx.MultiHeadAttention(
        num_heads=a["heads"],
        in_features=fin,
        qkv_features=a["features"] or fin,
        out_features=fin,
        in_kv_features=types[-1].dims[2].value,  # the memory's width (the query's for self-attention)
        kernel_init=ctx.init(None),
        decode=False,
        rngs=ctx.rngs,
    )


def _attention_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x, mem = xs[0], xs[-1]
    mask = ctx.nnx.make_causal_mask(x[..., 0]) if a["causal"] else None
    # computed in f32 (XLA:CPU has no f16 x f16 → f32 dot), returned in the input's dtype as the rule says
    return m(x, mem, mask=mask).astype(x.dtype)  # Flax takes the values from the keys' input


def _attention_fused_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    """attention's `fused` lowering: the reference's parameters (nnx.MultiHeadAttention's query, key, value and out
    LinearGeneral layers), the projections of one input as one matmul — q, k and v of a self-attention read x with
    one [F, 3·qkv] kernel, k and v of a cross-attention the memory with one [F_kv, 2·qkv] — and the heads merged
    into the output projection's contraction. Then Flax's dot_product_attention's arithmetic: q scaled by
    1/sqrt(head width), masked scores at the dtype's minimum, softmax over the memory steps."""
    jnp = ctx.jnp
    x, mem = xs[0], xs[-1]
    heads = m.num_heads
    dtype = jnp.result_type(
        x.dtype, m.query.kernel[...].dtype
    )  # as Flax's promote_dtype: float16 x → float32
    width = m.query.kernel.shape[-1]  # a head's width

    def project(inp: Any, layers: tuple[Any, ...]) -> list[Any]:
        """[N, T, F] through the layers' kernels [F, heads, width] as one matmul: per layer [N, T, heads, width]."""
        k = jnp.concatenate([lay.kernel[...].reshape(inp.shape[-1], -1) for lay in layers], axis=1)
        b = jnp.concatenate([lay.bias[...].reshape(-1) for lay in layers])
        rows = inp.reshape(-1, inp.shape[-1]).astype(dtype) @ k.astype(dtype) + b.astype(dtype)
        split = jnp.split(rows, len(layers), axis=1)
        return [r.reshape(*inp.shape[:-1], heads, width) for r in split]

    if mem is x:
        q, k, v = project(x, (m.query, m.key, m.value))
    else:
        (q,) = project(x, (m.query,))
        k, v = project(mem, (m.key, m.value))
    q = q / jnp.sqrt(width).astype(dtype)
    scores = jnp.einsum("nqhd,nkhd->nhqk", q, k)
    if a["causal"]:
        t, s = scores.shape[-2:]
        scores = jnp.where(jnp.tril(jnp.ones((t, s), bool)), scores, jnp.finfo(dtype).min)
    weights = ctx.jax.nn.softmax(scores).astype(dtype)
    o = jnp.einsum("nhqk,nkhd->nqhd", weights, v)
    out = m.out.kernel[...]
    y = o.reshape(-1, heads * width) @ out.reshape(heads * width, -1).astype(dtype) + m.out.bias[...].astype(
        dtype
    )
    return y.reshape(*x.shape[:-1], -1).astype(x.dtype)


# The projections as one matmul: measured on the CPU (`python -m bench.step_time --models transformer`), so the
# rule takes it there; GPUs keep the reference unless measured faster.
ATTENTION_FUSED = Lowering(
    "fused",
    apply=_attention_fused_apply,
    when=lambda a, types, platform: platform == "cpu",
    applies=lambda a, types: True,
)


register(
    OpDef(
        name="attention",
        family="sequence",
        tensors=(1, 2),
        tensor_names=("x", "memory"),
        args=(
            Arg("heads", "int", min=1),
            Arg("features", "int", None, min=1, doc="q/k/v width; default F (the query's)"),
            Arg("causal", "bool", False, doc="step i attends to steps up to i only"),
        ),
        infer=_attention,
        lowerings=(Lowering("reference", apply=_attention_apply, build=_attention_build), ATTENTION_FUSED),
        label=lambda a: f"{'causal ' if a['causal'] else ''}attention ×{a['heads']}",
        doc="multi-head attention over the time axis of x [N, T, F]: self-attention, or with a memory [N, S, F_kv] "
        "cross-attention (queries from x, keys and values from the memory); output [N, T, F]",
    )
)


# ---- positional encodings --------------------------------------------------------------------------


def _positional(c: OpCall) -> Inferred:
    c.need_rank(3, what=" [N, T, features]", hint="positions index the time axis T of [N, T, F]")
    c.need_float()
    _, t, f = c.x.dims
    max_len = c["max_len"]
    tn = t.as_int()
    if max_len is not None and tn is not None and tn > max_len:
        raise c.fail(
            f"positional(max_len={max_len}) covers {max_len} positions, but the input has T = {tn}: {c.x}",
            f"raise max_len to at least {tn}",
            arg="max_len",
        )
    params: dict[str, tuple[int, ...]] = {}
    if c["kind"] == "learned":
        fn = c.known(f, "the feature axis (the last)")
        length: int | None = max_len if max_len is not None else tn
        if length is None:
            raise c.fail(
                f"positional(kind=learned) learns one vector per position, so it needs the sequence "
                f"length to be a number, got T = {t} in {c.x}",
                "give max_len=... (the longest sequence), or declare T with a number",
                arg="kind",
            )
        params["embedding"] = (length, fn)
    # one add per element
    return Inferred((c.x,), params=params, flops=product(c.x.dims))


def sinusoids(t: int, f: int, jnp: Any) -> Any:
    """The transformer's table: sin(p / 10000^(2i/F)) on even features 2i, cos on odd ones, [T, F]."""
    pos = jnp.arange(t, dtype=jnp.float32)[:, None]
    i = jnp.arange(f)
    angle = pos / jnp.power(10000.0, (2 * (i // 2)).astype(jnp.float32) / f)
    return jnp.where(i % 2 == 0, jnp.sin(angle), jnp.cos(angle))


def _positional_build(a: dict[str, Any], types: tuple[TensorType, ...], ctx: Any) -> Any:
    if a["kind"] != "learned":
        return None  # fixed sinusoids: nothing to learn
    _, t, f = types[0].dims
    size = a["max_len"] if a["max_len"] is not None else t.value
    return ctx.nnx.Embed(size, f.value, embedding_init=ctx.init(None, "normal"), rngs=ctx.rngs)


def _positional_apply(m: Any, a: dict[str, Any], xs: list[Any], ctx: Any) -> Any:
    x = xs[0]
    _, t, f = x.shape
    table = sinusoids(t, f, ctx.jnp) if m is None else m.embedding[...][:t]
    return x + table.astype(x.dtype)


register(
    OpDef(
        name="positional",
        family="sequence",
        tensors=1,
        args=(
            Arg("max_len", "int", None, min=1),
            Arg("kind", "enum", "sinusoidal", choices=("sinusoidal", "learned")),
        ),
        infer=_positional,
        lowerings=(Lowering("reference", apply=_positional_apply, build=_positional_build),),
        label=lambda a: f"positional {a['kind']}",
        doc="adds a position encoding (fixed sinusoids or a learned table) to [N, T, F]",
    )
)
