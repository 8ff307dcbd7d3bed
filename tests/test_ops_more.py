"""Shape rules, parameter counts and error messages of the norm, sequence, reduction and sampling ops."""

from __future__ import annotations

import math
from typing import Any

import pytest

from specc.ir.dims import Dim
from specc.ir.types import TensorType, tensor
from specc.ops import norm, reduction, sampling, sequence  # noqa: F401  (registers the ops)
from specc.ops._registry import REGISTRY, Inferred, OpCall, OpError, bind_args

N, T = Dim.sym("N"), Dim.sym("T")


def infer(name: str, *inputs: TensorType, args: tuple[Any, ...] = (), **kw: Any) -> Inferred:
    op = REGISTRY[name]
    attrs, errors = bind_args(op, args, kw)
    if errors:
        raise errors[0]
    return op.infer(OpCall(op, attrs, inputs))


def fails(name: str, *inputs: TensorType, args: tuple[Any, ...] = (), **kw: Any) -> OpError:
    with pytest.raises(OpError) as e:
        infer(name, *inputs, args=args, **kw)
    return e.value


def shape(r: Inferred) -> str:
    return str(r.outputs[0])


def count(shapes: Any) -> int:
    return sum(math.prod(s) for s in shapes.values())


# ---- norm -------------------------------------------------------------------------------------------


def test_batchnorm_params_and_state_per_channel() -> None:
    r = infer("batchnorm", tensor("f32", "N", "H", "W", 16))
    assert shape(r) == "f32[N, H, W, 16]"
    assert dict(r.params) == {"scale": (16,), "bias": (16,)}
    assert dict(r.state) == {"mean": (16,), "var": (16,)}
    assert r.flops == N * Dim.sym("H") * Dim.sym("W") * 32


def test_batchnorm_other_axis() -> None:
    r = infer("batchnorm", tensor("f32", "N", 3, "W"), axis=1)
    assert dict(r.params) == {"scale": (3,), "bias": (3,)}


def test_batchnorm_errors() -> None:
    e = fails("batchnorm", tensor("f32", 5))
    assert e.kind == "shape error" and "rank 2 or more" in e.message and "f32[5]" in e.message
    e = fails("batchnorm", tensor("i32", "N", 5))
    assert e.kind == "type error" and "float input, got i32[N, 5]" in e.message
    e = fails("batchnorm", tensor("f32", "N", "C"))
    assert "known number" in e.message and "f32[N, C]" in e.message
    e = fails("batchnorm", tensor("f32", "N", 5), axis=2)
    assert "axis 2 is out of range for f32[N, 5] (rank 2" in e.message and e.arg == "axis"
    e = fails("batchnorm", tensor("f32", "N", 5), momentum=1.5)
    assert e.arg == "momentum" and "between 0 and 1, got 1.5" in e.message
    e = fails("batchnorm", tensor("f32", "N", 5), eps=0)
    assert e.arg == "eps" and "positive" in e.message


def test_layernorm_and_groupnorm() -> None:
    r = infer("layernorm", tensor("f32", "N", "T", 64))
    assert shape(r) == "f32[N, T, 64]" and count(r.params) == 128 and not r.state
    r = infer("groupnorm", tensor("f32", "N", 8, 8, 32), args=(4,))
    assert dict(r.params) == {"scale": (32,), "bias": (32,)}


def test_groupnorm_not_divisible_names_both() -> None:
    e = fails("groupnorm", tensor("f32", "N", 8, 8, 30), groups=4)
    assert e.arg == "groups"
    assert "30 channels into 4 groups" in e.message and "not divisible by 4" in e.message
    assert "f32[N, 8, 8, 30]" in e.message
    assert "1, 2, 3, 5, 6, 10, 15, 30" in e.hint


def test_dropout() -> None:
    r = infer("dropout", tensor("f32", "N", 10), args=(0.5,))
    assert shape(r) == "f32[N, 10]" and not r.params
    assert infer("dropout", tensor("f32", "N"), rate=0).outputs[0] == tensor("f32", "N")
    for bad in (1, 1.5, -0.1):
        e = fails("dropout", tensor("f32", "N", 10), rate=bad)
        assert e.arg == "rate" and "must be in [0, 1)" in e.message
    assert fails("dropout", tensor("i32", "N", 10), rate=0.1).kind == "type error"


# ---- embed ------------------------------------------------------------------------------------------


def test_embed_any_rank() -> None:
    r = infer("embed", tensor("i32", "N", "T"), args=(1000, 64))
    assert shape(r) == "f32[N, T, 64]"
    assert dict(r.params) == {"embedding": (1000, 64)}
    assert r.flops == Dim.const(0)
    assert shape(infer("embed", tensor("i64", "N"), vocab=10, features=3)) == "f32[N, 3]"


def test_embed_float_input_is_type_error() -> None:
    e = fails("embed", tensor("f32", "N", "T"), vocab=10, features=3)
    assert e.kind == "type error" and "integer token ids, got a f32 input f32[N, T]" in e.message
    assert "dense" in e.hint


# ---- recurrent --------------------------------------------------------------------------------------


def test_rnn_shapes_symbolic() -> None:
    x = tensor("f32", "N", "T", 8)
    assert shape(infer("rnn", x, args=(16,))) == "f32[N, T, 16]"
    assert shape(infer("rnn", x, args=(16,), **{"return": "last"})) == "f32[N, 16]"
    assert shape(infer("lstm", x, features=16, bidirectional=True)) == "f32[N, T, 32]"
    assert shape(infer("gru", x, features=16, bidirectional=True, **{"return": "last"})) == "f32[N, 32]"


def test_recurrent_param_counts_follow_flax() -> None:
    # Chollet, "Deep Learning with Python", IMDB with 32-wide embeddings: Keras' summary shows SimpleRNN(32)
    # 2,080 and LSTM(32) 8,320. Keras puts one bias per gate, as Flax does; PyTorch's nn.LSTM(32, 32) has two
    # (b_ih, b_hh) and counts 8,448 = 8,320 + 4*32.
    x = tensor("f32", "N", "T", 32)
    assert count(infer("rnn", x, features=32).params) == 2080
    assert count(infer("lstm", x, features=32).params) == 8320
    assert count(infer("rnn", x, features=32, cell="lstm").params) == 8320
    # Keras' GRU (reset_after=True) and PyTorch's nn.GRU(32, 32) count 6,336 = 3*(32*32 + 32*32 + 2*32);
    # Flax's GRUCell has no hidden-side bias: 6,336 - 3*32
    assert count(infer("gru", x, features=32).params) == 6240
    # keras.io "Bidirectional LSTM on IMDB": Bidirectional(LSTM(64)) over 128 features counts 98,816
    assert count(infer("lstm", tensor("f32", "N", "T", 128), features=64, bidirectional=True).params) == 98816


def test_recurrent_param_names_follow_nnx() -> None:
    r = infer("lstm", tensor("f32", "N", "T", 8), features=16)
    assert dict(r.params) == {
        "cell.dense_i.kernel": (8, 64),
        "cell.dense_h.kernel": (16, 64),
        "cell.dense_h.bias": (64,),
    }
    r = infer("gru", tensor("f32", "N", "T", 8), features=16, bidirectional=True)
    assert r.params["forward_rnn.cell.dense_i.bias"] == (48,)
    assert r.params["backward_rnn.cell.dense_h.kernel"] == (16, 48)


def test_recurrent_flops() -> None:
    r = infer("lstm", tensor("f32", "N", "T", 8), features=16)
    assert r.flops == N * T * (2 * 4 * 16 * (8 + 16))


def test_recurrent_errors() -> None:
    e = fails("rnn", tensor("f32", "N", 8), features=16)
    assert "rnn expects a rank 3 input [N, T, features], got f32[N, 8]" in e.message
    e = fails("lstm", tensor("i32", "N", "T", 8), features=16)
    assert e.kind == "type error" and "i32[N, T, 8]" in e.message
    e = fails("gru", tensor("f32", "N", "T", "F"), features=16)
    assert "known number" in e.message
    e = fails("rnn", tensor("f32", "N", "T", 8), features=16, cell="lstn")
    assert e.kind == "argument error" and e.arg == "cell" and "simple, lstm, gru" in e.message
    e = fails("lstm", tensor("f32", "N", "T", 8), features=16, cell="gru")
    assert "lstm has no parameter 'cell'" in e.message


# ---- attention --------------------------------------------------------------------------------------


def test_attention_params_match_transformer_base() -> None:
    # "Attention Is All You Need" base: d_model 512, 8 heads; PyTorch's nn.MultiheadAttention(512, 8) and
    # nnx.MultiHeadAttention(8, 512) both hold 4*512*512 + 4*512 = 1,050,624 parameters
    r = infer("attention", tensor("f32", "N", "T", 512), heads=8)
    assert shape(r) == "f32[N, T, 512]"
    assert count(r.params) == 1_050_624
    assert r.params["query.kernel"] == (512, 8, 64)
    assert r.params["key.bias"] == (8, 64)
    assert r.params["out.kernel"] == (8, 64, 512)
    assert r.params["out.bias"] == (512,)


def test_attention_features_and_flops() -> None:
    r = infer("attention", tensor("f32", "N", "T", 10), args=(2,), features=16, causal=True)
    assert shape(r) == "f32[N, T, 10]"
    assert count(r.params) == 3 * (10 * 16 + 16) + 16 * 10 + 10
    assert r.flops == N * T * (8 * 10 * 16) + N * T * T * (4 * 16)


def test_attention_errors() -> None:
    e = fails("attention", tensor("f32", "N", "T", 10), heads=4)
    assert e.arg == "heads" and "10 features into 4 heads" in e.message and "f32[N, T, 10]" in e.message
    e = fails("attention", tensor("f32", "N", 10), heads=2)
    assert "rank 3" in e.message and "f32[N, 10]" in e.message


# ---- positional -------------------------------------------------------------------------------------


def test_positional() -> None:
    r = infer("positional", tensor("f32", "N", "T", 16))
    assert shape(r) == "f32[N, T, 16]" and not r.params
    r = infer("positional", tensor("f32", "N", 20, 16), kind="learned")
    assert dict(r.params) == {"embedding": (20, 16)}
    r = infer("positional", tensor("f32", "N", "T", 16), max_len=100, kind="learned")
    assert dict(r.params) == {"embedding": (100, 16)}


def test_positional_errors() -> None:
    e = fails("positional", tensor("f32", "N", "T", 16), kind="learned")
    assert "T = T in f32[N, T, 16]" in e.message and "max_len" in e.hint
    e = fails("positional", tensor("f32", "N", 50, 16), max_len=20)
    assert e.arg == "max_len" and "T = 50" in e.message


# ---- reductions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({}, "f32[]"),
        ({"axis": 1}, "f32[N, 5]"),
        ({"axis": -1}, "f32[N, 4]"),
        ({"axis": [0, 2]}, "f32[4]"),
        ({"axis": (1, -1), "keepdims": True}, "f32[N, 1, 1]"),
        ({"keepdims": True}, "f32[1, 1, 1]"),
        ({"axis": []}, "f32[N, 4, 5]"),
    ],
)
def test_mean_shapes(kw: dict[str, Any], want: str) -> None:
    assert shape(infer("mean", tensor("f32", "N", 4, 5), **kw)) == want


def test_reduction_dtypes() -> None:
    assert shape(infer("mean", tensor("i32", "N", 4), axis=1)) == "f32[N]"
    assert shape(infer("sum", tensor("i32", "N", 4), axis=1)) == "i32[N]"
    assert shape(infer("sum", tensor("bool", "N", 4))) == "i32[]"
    assert shape(infer("max", tensor("u8", "N", 4), axis=0)) == "u8[4]"
    assert shape(infer("min", tensor("f16", "N", 4), axis=0, keepdims=True)) == "f16[1, 4]"
    assert shape(infer("norm", tensor("f32", "N", 3), axis=-1)) == "f32[N]"
    assert infer("sum", tensor("f32", "N", 4)).flops == N * 4


def test_argmax() -> None:
    assert shape(infer("argmax", tensor("f32", "N", 10))) == "i32[N]"
    assert shape(infer("argmax", tensor("f32", "N", 10), axis=0, keepdims=True)) == "i32[1, 10]"
    e = fails("argmax", tensor("f32", "N", 10), axis=2)
    assert "axis 2 is out of range for f32[N, 10] (rank 2: axes -2..1)" in e.message


def test_reduction_axis_errors() -> None:
    e = fails("mean", tensor("f32", "N", 4), axis=2)
    assert e.arg == "axis" and "axis 2 is out of range for f32[N, 4] (rank 2: axes -2..1)" in e.message
    e = fails("sum", tensor("f32", "N", 4), axis=[0, -3])
    assert "axis -3 is out of range" in e.message
    e = fails("max", tensor("f32", "N", 4, 5), axis=[1, -2])
    assert "max reduces axis 1 twice (as 1 and -2) in f32[N, 4, 5]" in e.message
    e = fails("min", tensor("f32", "N", 4), axis=[0, 0])
    assert "twice (as 0)" in e.message
    e = fails("mean", tensor("f32", "N", 4), axis=1.5)
    assert e.kind == "argument error" and "axis" in e.message
    e = fails("norm", tensor("f32", "N", 4), ord=0)
    assert e.arg == "ord" and "positive" in e.message


# ---- sampling ---------------------------------------------------------------------------------------


def test_sample_normal() -> None:
    x = tensor("f32", "N", 20)
    r = infer("sample_normal", x, x)
    assert shape(r) == "f32[N, 20]" and not r.params
    assert r.flops == N * 80


def test_sample_normal_errors() -> None:
    e = fails("sample_normal", tensor("f32", "N", 20), tensor("f32", 20))
    assert "same shape, got mu f32[N, 20] and logvar f32[20]" in e.message and "not broadcast" in e.hint
    e = fails("sample_normal", tensor("f32", "N", 20), tensor("i32", "N", 20))
    assert e.kind == "type error" and "i32[N, 20]" in e.message
    e = fails("sample_normal", tensor("f32", "N", 20), tensor("f16", "N", 20))
    assert e.kind == "type error" and "one dtype" in e.message
