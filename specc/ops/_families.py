"""Imports every op family so each registers its ops; the registry loads this on first use."""

from . import (  # noqa: F401
    activation,
    autodiff,
    constant,
    conv,
    convolve,
    elementwise,
    linear,
    local,
    lrn,
    norm,
    padding,
    pooling,
    reduction,
    sampling,
    sequence,
    shape,
)
