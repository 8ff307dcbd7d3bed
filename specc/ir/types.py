"""Tensor types: a dtype and a tuple of symbolic dims."""

from __future__ import annotations

from dataclasses import dataclass

from .dims import Dim, fmt_dims

DTYPES = ("f32", "f16", "bf16", "f64", "i32", "i64", "u8", "bool")
FLOAT_DTYPES = frozenset({"f32", "f16", "bf16", "f64"})
INT_DTYPES = frozenset({"i32", "i64", "u8"})
# the jax.numpy names, for lowering and for messages that compare with JAX
JNP_NAMES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i32": "int32",
    "i64": "int64",
    "u8": "uint8",
    "bool": "bool",
}


@dataclass(frozen=True)
class TensorType:
    """The static type of a value.

    Args:
        dtype: one of DTYPES.
        dims: one Dim per axis, batch first (channels-last layout).
    """

    dtype: str
    dims: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_int(self) -> bool:
        return self.dtype in INT_DTYPES

    def with_dims(self, dims: tuple[Dim, ...]) -> TensorType:
        return TensorType(self.dtype, dims)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(dtype, self.dims)

    def concrete(self) -> tuple[int, ...] | None:
        """The shape as ints when every dim is known."""
        out = []
        for d in self.dims:
            v = d.as_int()
            if v is None:
                return None
            out.append(v)
        return tuple(out)

    def __str__(self) -> str:
        return f"{self.dtype}{fmt_dims(self.dims)}"


def tensor(dtype: str, *dims: int | str | Dim) -> TensorType:
    """Convenience for tests: tensor("f32", "N", 28, 28, 1)."""
    return TensorType(dtype, tuple(Dim.sym(d) if isinstance(d, str) else Dim.of(d) for d in dims))
