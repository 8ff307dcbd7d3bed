"""Imports every op family so each registers its ops; the registry loads this on first use."""

from . import (  # noqa: F401
    activation,
    conv,
    elementwise,
    linear,
    norm,
    pooling,
    reduction,
    sampling,
    sequence,
    shape,
)
