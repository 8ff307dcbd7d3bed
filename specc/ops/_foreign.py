"""Other libraries' names for specc's ops and arguments (PyTorch's nn, Keras's layers), for the hints of name errors:
a spec is often written from a PyTorch or Keras listing, and `Linear` or `kernel_size=` should say what to write."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry imports this module
    from ._registry import OpDef

# lower-cased foreign op name → what to write in a spec
OP_NAMES: dict[str, str] = {
    "linear": "dense",
    **dict.fromkeys(("conv1d", "conv2d", "conv3d", "convolution2d"), "conv"),
    **dict.fromkeys(
        (
            "convtranspose1d",
            "convtranspose2d",
            "convtranspose3d",
            "conv1dtranspose",
            "conv2dtranspose",
            "conv3dtranspose",
            "deconv",
            "deconvolution",
        ),
        "conv_transpose",
    ),
    **dict.fromkeys(("batchnorm1d", "batchnorm2d", "batchnorm3d", "batchnormalization"), "batchnorm"),
    "layernormalization": "layernorm",
    "groupnormalization": "groupnorm",
    **dict.fromkeys(
        ("maxpool1d", "maxpool2d", "maxpool3d", "maxpooling1d", "maxpooling2d", "maxpooling3d"), "maxpool"
    ),
    **dict.fromkeys(
        ("avgpool1d", "avgpool2d", "avgpool3d", "averagepooling1d", "averagepooling2d", "averagepooling3d"),
        "avgpool",
    ),
    **dict.fromkeys(("adaptiveavgpool1d", "adaptiveavgpool2d", "adaptiveavgpool3d"), "adaptive_avgpool"),
    **dict.fromkeys(
        ("globalaveragepooling1d", "globalaveragepooling2d", "globalaveragepooling3d", "globalavgpool2d"),
        "global_avgpool",
    ),
    **dict.fromkeys(("globalmaxpooling1d", "globalmaxpooling2d", "globalmaxpooling3d"), "global_maxpool"),
    "embedding": "embed",
    **dict.fromkeys(
        ("dropout1d", "dropout2d", "dropout3d", "spatialdropout1d", "spatialdropout2d", "spatialdropout3d"),
        "dropout(rate, per=channel)",
    ),
    **dict.fromkeys(("stochasticdepth", "droppath"), "dropout(rate, per=example)"),
    **dict.fromkeys(("zeropad2d", "zeropadding2d", "constantpad2d", "reflectionpad2d"), "pad"),
    **dict.fromkeys(("upsampling1d", "upsampling2d", "upsampling3d"), "upsample"),
    "multiheadattention": "attention",
    **dict.fromkeys(("cat", "concatenate"), "concat"),
    "leakyrelu": "leaky_relu",
    "logsoftmax": "log_softmax",
    "hardswish": "hard_swish",
    "hardsigmoid": "hard_sigmoid",
    "swish": "silu",
    "localresponsenorm": "lrn",
    "simplernn": "rnn",
    "view": "reshape",
    "permute": "transpose",
}

# foreign argument name → specc's, where the op has it (kernel_size is a conv's kernel but a pool's window)
ARG_NAMES: dict[str, tuple[str, ...]] = {
    "kernel_size": ("kernel", "window"),
    "pool_size": ("window",),
    "strides": ("stride",),
    **dict.fromkeys(
        ("out_channels", "out_features", "filters", "units", "hidden_size", "embedding_dim", "output_dim"),
        ("features",),
    ),
    **dict.fromkeys(("num_embeddings", "input_dim"), ("vocab",)),
    "num_heads": ("heads",),
    "p": ("rate",),
    "negative_slope": ("slope",),
    "use_bias": ("bias",),
    **dict.fromkeys(("kernel_initializer", "kernel_init", "weight_init"), ("init",)),
    "bias_initializer": ("bias_init",),
    "dim": ("axis",),
    "keepdim": ("keepdims",),
    "scale_factor": ("scale",),
    "dilation_rate": ("dilation",),
    "num_groups": ("groups",),
}

# arguments another library needs that specc reads from the input's type or writes otherwise
ARG_ADVICE: dict[str, str] = {
    **dict.fromkeys(
        (
            "in_channels",
            "in_features",
            "num_features",
            "normalized_shape",
            "input_size",
            "input_shape",
            "channels",
        ),
        "specc reads the input's sizes from its type: leave it out",
    ),
    "activation": "write the activation as the next stage: `dense(10) -> relu`",
    "batch_first": "the batch axis is always first: sequences are [N, T, F]",
    "return_sequences": "write return=sequence (every step) or return=last",
}


# lower-cased foreign initializer name (PyTorch's nn.init, Keras's initializers; `_` dropped) → specc's
INIT_NAMES: dict[str, str] = {
    **dict.fromkeys(("kaimingnormal", "henormal", "he", "kaiming", "msra"), "he_normal"),
    **dict.fromkeys(("kaiminguniform", "heuniform"), "he_uniform"),
    **dict.fromkeys(("xavier", "glorot", "xavieruniform", "glorotuniform"), "glorot_uniform"),
    **dict.fromkeys(("xaviernormal", "glorotnormal"), "glorot_normal"),
    **dict.fromkeys(("randomnormal", "normal", "gaussian"), "normal"),
    **dict.fromkeys(("randomuniform", "uniform"), "uniform"),
    **dict.fromkeys(("truncnormal", "truncatednormal"), "truncated_normal"),
    **dict.fromkeys(("zero", "zeros"), "zeros"),
    **dict.fromkeys(("one", "ones"), "ones"),
}


def init_hint(name: str) -> str:
    """`kaiming_normal_` → what to write instead, or ''."""
    target = INIT_NAMES.get(name.lower().replace("_", ""))
    return f"{name} (PyTorch/Keras) is `{target}` in specc" if target and target != name else ""


def op_hint(name: str) -> str:
    """`Linear` → what to write instead, or ''."""
    target = OP_NAMES.get(name.lower().replace("_", ""))
    return f"{name} (PyTorch/Keras) is `{target}` in specc; `specc ops` lists the ops" if target else ""


def arg_hint(op: OpDef, name: str) -> tuple[str, str]:
    """(specc's name for a foreign argument `name` of `op` or '', a hint or '')."""
    if name not in ARG_NAMES and name not in ARG_ADVICE and op.arg(name) is None:
        # a slip in a foreign name (`activaton=relu`): its advice all the same
        import difflib

        close = difflib.get_close_matches(name, [*ARG_NAMES, *ARG_ADVICE], n=1, cutoff=0.85)
        if close:
            return arg_hint(op, close[0])
    for target in ARG_NAMES.get(name, ()):
        if op.arg(target) is not None:
            return target, f"{name} (PyTorch/Keras) is `{target}` in specc"
    return "", ARG_ADVICE.get(name, "")
