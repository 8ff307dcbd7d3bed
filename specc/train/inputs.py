"""`specc predict`'s inputs: an .npz's arrays or a .csv's rows, checked against the model's input signature (kind of
number, rank, fixed sizes, one value per size name) and cast to its dtypes before JAX sees them, so that a wrong file
is a run error naming the input, what the model takes and what was found — not a TypeError from a dot_general.
"""

from __future__ import annotations

import csv as csvlib
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..ir.dims import Dim
from ..ir.types import JNP_NAMES
from .artifact import _run_error

# One input of the model's signature (specc.train.export.signature): name, dtype, dims (ints, size names, or the
# Dim of a size computed from names: `2*P`).
Input = tuple[str, str, tuple[int | str | Dim, ...]]

# What an array of a numpy kind that no model input takes holds, in words.
_KIND_WORDS = {
    "c": "complex numbers",
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "V": "records",
    "M": "dates",
    "m": "time spans",
}
_NUMPY_NAMES = {v: k for k, v in JNP_NAMES.items()}


def input_type(inp: Input) -> str:
    """`x: f32[N, 64]`, as the spec declares the input."""
    name, dtype, dims = inp
    return f"{name}: {dtype}[{', '.join(str(d) for d in dims)}]"


def _found(a: np.ndarray) -> str:
    """An array's dtype and shape in the spec's notation (`f32[5, 63]`), to set beside what the model takes."""
    return f"{_NUMPY_NAMES.get(a.dtype.name, a.dtype.name)}[{', '.join(str(n) for n in a.shape)}]"


def read_input_file(
    needed: Sequence[Input],
    path: Path,
    ids: Sequence[tuple[str, int, str]] = (),
    allow_nonfinite: bool = False,
    drawn: Mapping[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """A predict file's arrays by model input name, checked and cast: an .npz's members, or a .csv (one row an
    example, a header row optional) for a model whose outputs need one input, reshaped to its example shape.
    A NaN or ±inf (as read, or a number too large for the input's dtype) is a run error unless
    `allow_nonfinite` (`specc predict --allow-nonfinite`: a mask of -inf is one an attention model may take)."""
    path = Path(path)
    suffix = path.suffix.lower()
    lines: Sequence[int] = ()
    if suffix == ".npz":
        arrays = _read_npz(needed, path, drawn or {})
    elif suffix == ".csv":
        arrays, lines = _read_csv(needed, path)
    elif suffix == ".npy":
        arrays = _read_npy(needed, path)
    else:
        raise _run_error(
            f"{path}: expected an .npz, a .csv or (for a model of one input) an .npy file",
            f"write the inputs with {_savez(needed)}",
        )
    out = conform_inputs(needed, arrays, str(path), ids)
    if not allow_nonfinite:
        for name, a in out.items():
            _check_finite(name, np.asarray(arrays[name]), a, str(path), lines)
    return out


def _check_finite(name: str, read: np.ndarray, cast: np.ndarray, source: str, lines: Sequence[int]) -> None:
    """Refuse NaN and ±inf in an input as cast (`read`: as the file holds it): the model's outputs would be NaN
    with exit 0. Names how many there are and the first, by index (by line and column for a .csv's `lines`)."""
    if cast.dtype.kind not in "fV":
        return
    bad = ~np.isfinite(cast)
    n = int(np.count_nonzero(bad))
    if not n:
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    value = read[first].item()
    where = f"{name}[{', '.join(map(str, first))}]"
    if lines:  # a .csv: row `first[0]` of the data, its values in order
        column = int(np.ravel_multi_index(first[1:], cast.shape[1:])) + 1 if cast.ndim > 1 else 1
        where += f" (line {lines[first[0]]}, column {column})"
    dtype = _NUMPY_NAMES.get(cast.dtype.name, cast.dtype.name)
    what = f"{value!r}, too large for {dtype}" if math.isfinite(value) else repr(value)
    raise _run_error(
        f"{source}: {name} holds {n} value{'s' if n > 1 else ''} that {'are' if n > 1 else 'is'} not finite "
        f"(NaN or ±inf) as {dtype}; the first is {what}, at {where}",
        "the model's outputs would be NaN: fill or drop them (e.g. np.nan_to_num), or give --allow-nonfinite "
        "to run the model on them as they are",
    )


def _savez(needed: Sequence[Input]) -> str:
    """The call that writes a predict file of these inputs: `np.savez(path, x=..., mask=...)`."""
    return "np.savez(path, " + ", ".join(f"{n}=..." for n, _, _ in needed) + ")"


def _read_npy(needed: Sequence[Input], path: Path) -> dict[str, np.ndarray]:
    """An .npy's one array, as the model's one input (np.save's file: the array has no name to match)."""
    hint = f"write them with {_savez(needed)}"
    if len(needed) != 1:
        names = ", ".join(n for n, _, _ in needed)
        raise _run_error(f"{path}: an .npy holds one unnamed array, but the model takes {names}", hint)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        name = needed[0][0]
        if isinstance(e, ValueError) and "Object arrays" in str(e):
            raise _run_error(
                f"{path}: an array of Python objects (pickled), which specc does not load",
                f"save numbers: np.save(path, np.asarray({name}, np.float32))",
            ) from None
        if isinstance(e, ValueError) and "pickled" in str(e):  # no .npy header: numpy took it for a pickle
            raise _run_error(
                f"{path}: not an .npy file (numpy would read it as a pickle, which specc does not load)", hint
            ) from None
        raise _run_error(f"{path}: not a readable .npy file ({_npz_reason(e)})", hint) from None
    if not isinstance(a, np.ndarray):  # an .npz under another name
        a.close()
        raise _run_error(f"{path} is an .npz of named arrays, not an .npy", "name it .npz")
    return {needed[0][0]: a}


def conform_inputs(
    needed: Sequence[Input],
    arrays: Mapping[str, Any],
    source: str,
    ids: Sequence[tuple[str, int, str]] = (),
) -> dict[str, np.ndarray]:
    """The inputs `needed`, from `arrays` (from `source`, for messages), each checked against its declared type
    and cast to its dtype. A batch axis of any size is fine, as is any other size name's (a sequence length `T`)
    but 0, and one size name has one value across the inputs: JAX would fail on those mismatches deep in an op.
    `ids`: the inputs an `embed` looks up (name, vocab, where), whose ids must lie in [0, vocab): JAX's lookup
    gives NaN for an id past the table and wraps a negative one, silently."""
    missing = [inp[0] for inp in needed if inp[0] not in arrays]
    if missing:
        raise _run_error(
            f"{source}: no value for the input(s) {', '.join(missing)}",
            "the model's outputs need " + ", ".join(input_type(inp) for inp in needed),
        )
    sizes: dict[str, tuple[int, str]] = {}  # size name → its value and the input that set it
    # the axes of computed sizes (2*P), checked once every size name has its value
    computed: list[tuple[Input, np.ndarray, int]] = []
    out = {}
    for inp in needed:
        name = inp[0]
        try:
            a = np.asarray(arrays[name])
        except (ValueError, TypeError) as e:
            raise _run_error(f"{source}: {name} is not an array ({e})", "give a numpy array") from None
        _check_kind(inp, a, source)
        _check_shape(inp, a, source, sizes)
        computed += [(inp, a, axis) for axis, d in enumerate(inp[2]) if isinstance(d, Dim)]
        out[name] = _cast(inp, a, source)
    for inp, a, axis in computed:
        _check_computed(inp, a, axis, source, sizes)
    for name, vocab, where in ids:
        a = out[name]
        bad = a[(a < 0) | (a >= vocab)]
        if bad.size:
            raise _run_error(
                f"{source}: {name} holds the token id {bad.flat[0].item()}, but the embed at {where} looks up "
                f"ids 0 to {vocab - 1}",
                f"give ids below the vocabulary of {vocab} (the model was trained on those)",
            )
    return out


def _check_kind(inp: Input, a: np.ndarray, source: str) -> None:
    """Booleans, integers and floats only: text or complex numbers have no place in a model's input. A bfloat16
    array (numpy's kind "V", as ml_dtypes defines it) is one of the spec's dtypes: what `read_input_file` cast for
    a bf16 input comes through `Run.predict`'s check again."""
    if a.dtype.kind in "biuf" or a.dtype.name in _NUMPY_NAMES:
        return
    words = _KIND_WORDS.get(a.dtype.kind, "values that are not numbers")
    hint = "give real numbers, e.g. its real part or magnitude" if a.dtype.kind == "c" else "give numbers"
    raise _run_error(
        f"{source}: {inp[0]} holds {words} ({a.dtype}), but the model takes {input_type(inp)}", hint
    )


def _check_shape(inp: Input, a: np.ndarray, source: str, sizes: dict[str, tuple[int, str]]) -> None:
    """Rank and fixed sizes as declared; a size name (N, T) takes the first value an input gives it."""
    name, _, dims = inp
    found = f"a single number ({_found(a)})" if a.ndim == 0 else _found(a)
    where = f"{source}: {name} is {found}, but the model takes {input_type(inp)}"
    if a.ndim != len(dims):
        raise _run_error(f"{where} ({len(dims)} axes, not {a.ndim})", _rank_hint(inp, a.shape))
    for axis, (d, n) in enumerate(zip(dims, a.shape, strict=True)):
        if isinstance(d, int) and n != d:
            raise _run_error(f"{where} (axis {axis} must have {d} entries)", _rank_hint(inp, a.shape))
        if isinstance(d, str) and axis > 0 and n == 0:
            raise _run_error(
                f"{where} (axis {axis}, {d}, has no entries)",
                f"give {name} at least one entry on its axis {axis}; only the examples may be none",
            )
        if isinstance(d, str):
            size, other = sizes.setdefault(d, (n, name))
            if size != n:
                what = "examples" if axis == 0 else f"entries on its axis {axis} ({d})"
                raise _run_error(
                    f"{where}: it has {n} {what}, and {other} has {d} = {size}",
                    f"the inputs share the size {d}: give them the same {d}",
                )


def _check_computed(
    inp: Input, a: np.ndarray, axis: int, source: str, sizes: dict[str, tuple[int, str]]
) -> None:
    """An axis of a size computed from names (`x: f32[2*P, 64]`) must be a value the formula takes for whole
    sizes, else the model fails inside an op (an odd batch in `split(x, 2)`). A formula of one unknown name is
    solved for it; one of several, or one that does not grow with its name, is left to the model."""
    name, _, dims = inp
    d = dims[axis]
    assert isinstance(d, Dim)
    n = a.shape[axis]
    known = {k: v for k, (v, _) in sizes.items()}
    unknown = sorted(d.symbols() - known.keys())
    if len(unknown) > 1:
        return
    what = "examples" if axis == 0 else f"entries on its axis {axis}"

    def at(v: int) -> int:
        value = d.subst({**known, **dict.fromkeys(unknown, v)}).as_int()
        assert value is not None
        return value

    if not unknown:
        if at(0) != n:
            given = ", ".join(f"{k} = {known[k]} (from {sizes[k][1]})" for k in sorted(d.symbols()))
            raise _run_error(
                f"{source}: {name} is {_found(a)}, but the model takes {input_type(inp)}: it has {n} {what}, "
                f"and with {given}, {d} = {at(0)}",
                f"give {name} {at(0)} {what}",
            )
        return
    high = 1
    while at(high) < n and high < 2**62:
        high *= 2
    if at(high) < n or at(1) < at(0):
        return
    low = 0  # the smallest v with at(v) >= n
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if at(mid) < n else (low, mid)
    if at(low) == n:
        sizes[unknown[0]] = (low, name)
        return
    fits = sorted({v for v in (at(low - 1) if low > 0 else 0, at(low)) if v > 0})
    raise _run_error(
        f"{source}: {name} is {_found(a)}, but the model takes {input_type(inp)}: no whole {unknown[0]} gives "
        f"{d} = {n} (axis {axis})",
        f"give {name} {' or '.join(str(v) for v in fits)} {what}" if fits else f"give {name} as {d} {what}",
    )


def _rank_hint(inp: Input, shape: tuple[int, ...]) -> str:
    """How to give the input: a reshape when the examples hold the right number of values, else the shape."""
    name, _, dims = inp
    example = [d for d in dims[1:] if isinstance(d, int)]
    batched = bool(dims) and not isinstance(dims[0], int)
    if shape and batched and len(example) == len(dims) - 1 and math.prod(shape[1:]) == math.prod(example):
        return f"reshape it: {name}.reshape({', '.join(str(n) for n in (shape[0], *example))})"
    batch = f", {dims[0]} the number of examples" if batched else ""
    return f"give {name} as an array of shape ({', '.join(str(d) for d in dims)}){batch}"


def _cast(inp: Input, a: np.ndarray, source: str) -> np.ndarray:
    """`a` as the input's dtype: ints and booleans become floats as they are; an integer or boolean input takes
    only the values its dtype holds exactly (no 0.5 or 300 silently made an id 0 or 44)."""
    import jax.numpy as jnp

    name, dtype, _ = inp
    target = np.dtype(jnp.dtype(JNP_NAMES[dtype]))
    if a.dtype == target:
        return a
    with np.errstate(invalid="ignore", over="ignore"):
        cast = a.astype(target)
        exact = cast.astype(a.dtype) == a if target.kind in "biu" else np.True_
    if not np.all(exact):
        bad = a[~exact].flat[0].item()
        raise _run_error(
            f"{source}: {name} holds {bad!r}, which {dtype} cannot hold exactly; the model takes {input_type(inp)}",
            "give True/False or 0/1" if dtype == "bool" else f"give whole numbers in {dtype}'s range",
        )
    return cast


# ---- the files ------------------------------------------------------------------------------------------------


def _read_npz(needed: Sequence[Input], path: Path, drawn: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The needed members of an .npz (others are not read: an extra object array is no matter)."""
    import zipfile

    hint = f"write it with {_savez(needed)}"
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise _run_error(f"{path}: not a readable .npz file ({_npz_reason(e)})", hint) from None
    if not isinstance(z, np.lib.npyio.NpzFile):  # an .npy under another name
        raise _run_error(f"{path} holds one unnamed array, not an .npz of named ones", hint)
    with z:
        missing = [n for n, _, _ in needed if n not in z.files]
        if missing:
            why = "name the arrays as the model's inputs: " + hint.removeprefix("write it with ")
            sampled = [n for n in missing if n in drawn]
            if sampled:  # the trainer drew it; predict takes every input from the file, as an export does
                n = sampled[0]
                why += (
                    f"; {n} is drawn in training ({drawn[n]}), and predict reads it like any input: give the "
                    f"values to run the model on (zeros for none, or draws of your own)"
                )
            raise _run_error(
                f"{path} has no array named {', '.join(missing)} (it has {', '.join(z.files) or 'none'})", why
            )
        return {n: _member(z, n, path) for n, _, _ in needed}


def _npz_reason(e: BaseException) -> str:
    """Why np.load failed, in the user's terms: numpy takes any file that is not a zip or .npy for a pickle."""
    if isinstance(e, EOFError):
        return "it is empty"
    if isinstance(e, ValueError) and "pickled" in str(e):
        return "it is neither a zip of arrays (np.savez) nor an .npy"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def _member(z: Any, name: str, path: Path) -> np.ndarray:
    import zipfile
    import zlib

    try:
        return np.asarray(z[name])
    except ValueError as e:
        if "Object arrays" in str(e):
            raise _run_error(
                f"{path}: {name} is an array of Python objects (pickled), which specc does not load",
                f"save numbers: np.savez(path, {name}=np.asarray({name}, np.float32))",
            ) from None
        raise _run_error(f"{path}: cannot read its array {name} ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _run_error(f"{path}: cannot read its array {name} ({e})") from None


def _read_csv(needed: Sequence[Input], path: Path) -> tuple[dict[str, np.ndarray], list[int]]:
    """One example a row, its values in the order of the input's example shape (a row of 64 for f32[N, 64], of
    T·3 for f32[N, T, 3]); every row the same length. Also each row's line number."""
    if len(needed) != 1:
        raise _run_error(
            f"a .csv holds one input, but the model's outputs need {', '.join(n for n, _, _ in needed)}",
            "give an .npz with one array per input",
        )
    inp = needed[0]
    name, _, dims = inp
    example = dims[1:]
    free = [d for d in example if not isinstance(d, int)]
    if len(free) > 1:
        raise _run_error(
            f"{path}: a .csv row is one example of {input_type(inp)}, and a row cannot give the sizes "
            + ", ".join(str(d) for d in free),
            f"give an .npz: np.savez(path, {name}=...)",
        )
    per_step = math.prod(d for d in example if isinstance(d, int))
    rows, lines = _csv_rows(path)
    width = len(rows[0]) if free else per_step
    for row, line in zip(rows, lines, strict=True):
        if len(row) != width:
            ruled = f"line {lines[0]} has {width}" if free else f"{input_type(inp)} takes {width}"
            raise _run_error(
                f"{path}:{line}: {len(row)} values in this row, but a row is one example, and {ruled}",
                "give every row as many values, or an .npz"
                if free
                else "one value more than the input takes: is it the training csv, its label column kept? drop it"
                if len(row) == width + 1
                else f"give each row {width} numbers separated by commas; a header row is optional",
            )
    if free and width % per_step:
        raise _run_error(
            f"{path}:{lines[0]}: {width} values a row, not a multiple of {per_step}, the values of one "
            f"{free[0]} step of {input_type(inp)}"
        )
    values = np.array(
        [[_number(c, path, line, j) for j, c in enumerate(r, 1)] for r, line in zip(rows, lines, strict=True)]
    )
    shape = tuple(d if isinstance(d, int) else -1 for d in example)
    return {name: values.reshape((len(rows), *shape))}, lines


def _csv_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """The data rows of a predict .csv (blank lines and a header row dropped) and their line numbers."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise _run_error(
            f"{path}:{line}: not a UTF-8 text file ({e.reason}, byte {raw[e.start]:#04x})", "save it as UTF-8"
        ) from None
    reader = csvlib.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if any(c.strip() for c in row):
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
    except csvlib.Error as e:
        raise _run_error(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    if rows and _is_header(rows[0]):
        rows, lines = rows[1:], lines[1:]
    if not rows:
        raise _run_error(f"{path} has no data rows", "one example a row, its values separated by commas")
    return rows, lines


def _is_header(row: Sequence[str]) -> bool:
    try:
        float(row[0])
    except ValueError:
        return True
    return False


def _number(cell: str, path: Path, line: int, column: int) -> float:
    try:
        return float(cell)
    except ValueError:
        what = "an empty cell" if not cell else f"{cell[:40]!r}"
        raise _run_error(f"{path}:{line}: column {column} holds {what}, not a number") from None
