"""Symbolic dimensions: integer polynomials over named sizes (N, H, ...) with exact floor division.

A Dim is kept in a canonical form, so `(H - 5)/1 + 1` and `H - 4` are the same value and compare equal;
two different symbols are never assumed equal. Division that cannot be done exactly on symbols is kept
as a floor-division atom (`(H - 1)/2`), which is what a strided convolution really computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_DIM = 2**31 - 1  # one tensor axis; XLA's CPU/GPU kernels index with 32-bit ints in places


def integral(v: object) -> object:
    """`v`, or the int a float argument means when it is a whole number within int64 (`n=1e3` is 1000); a larger
    one (`1e300`) stays a float, which argument checks then refuse as "an integer" instead of carrying a
    300-digit size into messages."""
    if isinstance(v, float) and v.is_integer() and abs(v) <= 2**63 - 1:
        return int(v)
    return v


class DimError(ValueError):
    """An operation on dims that has no exact integer meaning (reported by the caller with a span)."""


@dataclass(frozen=True)
class FloorDiv:
    """floor(num / den) for a non-constant `num` that `den` does not divide."""

    num: Dim
    den: int

    def __str__(self) -> str:
        n = str(self.num)
        return f"({n})/{self.den}" if len(self.num.terms) > 1 else f"{n}/{self.den}"


Atom = str | FloorDiv
Mono = tuple[Atom, ...]


def _atom_key(a: Atom) -> tuple[int, str]:
    return (0, a) if isinstance(a, str) else (1, str(a))


def _mono_key(m: Mono) -> tuple[int, list[tuple[int, str]]]:
    return (len(m), [_atom_key(a) for a in m])


class Dim:
    """A dimension: sum of coeff * product-of-atoms, terms sorted, no zero coefficients.

    A plain slotted class rather than a frozen dataclass: graphs of 100k nodes create millions of these.
    """

    __slots__ = ("_hash", "is_const", "terms")
    terms: tuple[tuple[Mono, int], ...]
    is_const: bool

    def __init__(self, terms: tuple[tuple[Mono, int], ...]):
        self.terms = terms
        self.is_const = all(m == () for m, _ in terms)
        self._hash: int | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.terms)
        return self._hash

    def __reduce__(self) -> tuple[type, tuple[tuple[tuple[Mono, int], ...]]]:
        return (Dim, (self.terms,))

    # ---- construction
    @staticmethod
    def const(v: int) -> Dim:
        return Dim((((), v),)) if v else Dim(())

    @staticmethod
    def sym(name: str) -> Dim:
        return Dim((((name,), 1),))

    @staticmethod
    def _from(acc: Mapping[Mono, int]) -> Dim:
        items = [(m, c) for m, c in acc.items() if c != 0]
        items.sort(key=lambda mc: _mono_key(mc[0]))
        return Dim(tuple(items))

    @staticmethod
    def of(x: int | Dim) -> Dim:
        return x if isinstance(x, Dim) else Dim.const(int(x))

    # ---- queries
    @property
    def value(self) -> int:
        if not self.is_const:
            raise DimError(f"{self} is not a known number")
        return self.terms[0][1] if self.terms else 0

    def as_int(self) -> int | None:
        return self.value if self.is_const else None

    def as_symbol(self) -> str | None:
        """The symbol's name if this is exactly one symbol (`N`, not `2*N` or `N//2`), else None."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and len(self.terms[0][0]) == 1:
            a = self.terms[0][0][0]
            return a if isinstance(a, str) else None
        return None

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for m, _ in self.terms:
            for a in m:
                out |= {a} if isinstance(a, str) else a.num.symbols()
        return out

    def known_nonpositive(self) -> bool:
        return self.is_const and self.value <= 0

    # ---- arithmetic
    def __add__(self, other: int | Dim) -> Dim:
        o = Dim.of(other)
        if not o.terms:
            return self
        if not self.terms:
            return o
        acc: dict[Mono, int] = dict(self.terms)
        for m, c in o.terms:
            acc[m] = acc.get(m, 0) + c
        return Dim._from(acc)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return Dim(tuple((m, -c) for m, c in self.terms))

    def __sub__(self, other: int | Dim) -> Dim:
        return self + (-Dim.of(other))

    def __rsub__(self, other: int | Dim) -> Dim:
        return Dim.of(other) - self

    def __mul__(self, other: int | Dim) -> Dim:
        # fast paths: scaling by a number keeps the canonical order (big graphs multiply sizes a lot)
        k: int | None
        if isinstance(other, int):
            k = other
        elif not other.terms:
            k = 0
        else:
            k = other.terms[0][1] if other.is_const else None
        if k is not None:
            return Dim(tuple((m, c * k) for m, c in self.terms)) if k else Dim(())
        other = Dim.of(other)  # a Dim that is not a constant
        if self.is_const:
            return other * (self.terms[0][1] if self.terms else 0)
        acc: dict[Mono, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2, key=_atom_key))
                acc[m] = acc.get(m, 0) + c1 * c2
        return Dim._from(acc)

    __rmul__ = __mul__

    def floordiv(self, den: int | Dim) -> Dim:
        """floor(self / den), exact on the canonical form: `(2H + 3)/2` is `H + 3/2` → `H + 1`."""
        d = Dim.of(den)
        if not d.is_const:
            raise DimError(f"cannot divide {self} by the unknown size {d}")
        k = d.value
        if k == 0:
            raise DimError(f"division of {self} by zero")
        if k < 0:
            return (-self).floordiv(-k)
        if k == 1:
            return self
        quot: dict[Mono, int] = {}
        rem: dict[Mono, int] = {}
        for m, c in self.terms:
            if m == ():
                continue
            q, r = divmod(c, k)
            if q:
                quot[m] = q
            if r:
                rem[m] = r
        const = dict(self.terms).get((), 0)
        rest = Dim._from(rem)
        if rest.is_const:  # everything symbolic divided exactly
            quot[()] = quot.get((), 0) + const // k
            return Dim._from(quot)
        # floor((k*q + rest + const)/k) = q + floor((rest + const)/k); keep const in [0, k) inside the atom
        cq, cr = divmod(const, k)
        inner = rest + cr
        atom = FloorDiv(inner, k)
        out = Dim._from(quot) + cq
        return out + Dim((((atom,), 1),))

    def exact_div(self, den: int | Dim) -> Dim:
        """self / den where it must divide exactly (reshape, split, groups); DimError when provably not."""
        d = Dim.of(den)
        if d.is_const and self.is_const:
            if d.value == 0 or self.value % d.value:
                raise DimError(f"{self} is not divisible by {d}")
            return Dim.const(self.value // d.value)
        if d.is_const:
            k = d.value
            if k != 0 and all(c % k == 0 for _, c in self.terms):
                return Dim(tuple((m, c // k) for m, c in self.terms))
            return self.floordiv(k)
        # symbolic divisor: only the trivial case x*d / d
        q, ok = _divide_mono(self, d)
        if ok:
            return q
        raise DimError(f"cannot prove that {self} is divisible by {d}")

    def subst(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace symbols by dims (e.g. bind N=32), re-normalising floor divisions."""
        out = Dim.const(0)
        for m, c in self.terms:
            term = Dim.const(c)
            for a in m:
                if isinstance(a, str):
                    term = term * Dim.of(env[a]) if a in env else term * Dim.sym(a)
                else:
                    term = term * a.num.subst(env).floordiv(a.den)
            out = out + term
        return out

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts: list[str] = []
        for i, (m, c) in enumerate(self.terms[::-1]):  # highest-degree terms first
            mag = abs(c)
            # a floor inside a product is parenthesised: `4*(T/2)`, for `4*T/2` reads (4·T)/2 = 2·T, as the
            # language itself parses it
            alone = len(m) == 1 and mag == 1
            body = "*".join(str(a) if isinstance(a, str) or alone else f"({a})" for a in m)
            text = str(mag) if not body else (body if mag == 1 else f"{mag}*{body}")
            if i == 0:
                parts.append(text if c > 0 else f"-{text}")
            else:
                parts.append(f" + {text}" if c > 0 else f" - {text}")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"Dim({self})"


def _divide_mono(num: Dim, den: Dim) -> tuple[Dim, bool]:
    if len(den.terms) != 1:
        return num, False
    dm, dc = den.terms[0]
    out: dict[Mono, int] = {}
    for m, c in num.terms:
        rest = list(m)
        for a in dm:
            if a not in rest:
                return num, False
            rest.remove(a)
        if c % dc:
            return num, False
        out[tuple(rest)] = c // dc
    return Dim._from(out), True


def product(dims: Iterable[Dim]) -> Dim:
    out = Dim.const(1)
    for d in dims:
        out = out * d
    return out


def fmt_dims(dims: Iterable[Dim]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"
