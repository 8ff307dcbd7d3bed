"""Data sets for `specc train`: embedded generators, file loaders, splits, normalisation and batching (NumPy only)."""

from __future__ import annotations

import contextlib
import csv as csvlib
import difflib
import gzip
import importlib
import io
import math
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as _dc_field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..errors import Diagnostic, SpecError, takes_positional
from ..ir.dims import integral

if TYPE_CHECKING:
    import numpy as np

    from ..source import Source
else:

    class _DeferredNumpy:
        """Stands for numpy until a loader first uses it: `specc check` validates data arguments without the
        60 ms import (its whole budget is 300 ms)."""

        def __getattr__(self, name: str) -> Any:
            import numpy

            globals()["np"] = numpy
            return getattr(numpy, name)

    np = _DeferredNumpy()

__all__ = [
    "AUGMENTATIONS",
    "COMMON_OPTIONS",
    "DATASETS",
    "Augmentation",
    "DataError",
    "DataSet",
    "DatasetInfo",
    "Param",
    "Splits",
    "check_fields",
    "load_data",
]

_DATA_DIR = Path(__file__).resolve().with_name("_data")


class DataError(SpecError):
    """A data-set problem a user can fix: missing file, wrong format, bad option or argument, field mismatch. A
    SpecError (with no place in a spec: the trainer locates it at the `data =` line, `data_error`), so that code
    calling `load_data` itself (examples/use_in_flax.py) catches it as the library's every other mistake.

    Attributes:
        message: what was expected and what was found, in one sentence (also `str(err)`).
        hint: how to fix it, or "".
        field: the data field or model input concerned, if any.
        kind: "file error" for unreadable/missing files, else "data error" (the kinds of `specc.errors`).
    """

    def __init__(
        self, message: str, hint: str = "", field: str | None = None, kind: str = "data error"
    ) -> None:
        super().__init__([Diagnostic(kind, message, None, hint)])
        self.message = message
        self.hint = hint
        self.field = field
        self.kind = kind

    def with_sources(self, sources: Mapping[str, Source]) -> SpecError:
        return SpecError(self.diagnostics, {**sources, **self.sources})


# --------------------------------------------------------------------------------------------------------------
# DataSet / Splits


def _dtype_name(dt: np.dtype) -> str:
    if dt == np.bool_:
        return "bool"
    if dt.kind in "fiu":
        return f"{dt.kind}{dt.itemsize * 8}"
    return str(dt)


def _canonical(name: str, arr: np.ndarray) -> np.ndarray:
    """f64 -> f32 and wide integers -> i32, as JAX runs in 32-bit mode by default."""
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu" and (arr.dtype.itemsize > 4 or arr.dtype == np.uint32):
        if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
            raise DataError(f"field '{name}' holds integers outside the i32 range", field=name)
        return arr.astype(np.int32)
    if arr.dtype.kind not in "fiub":
        raise DataError(
            f"field '{name}' has dtype {arr.dtype}; only numbers and booleans can be fed to a model",
            hint="store numeric arrays (class names as integer indices)",
            field=name,
        )
    return arr


@dataclass(frozen=True)
class DataSet:
    """One split: named arrays sharing their leading (example) axis.

    Construction converts f64 to f32 and i64 to i32 and stores read-only views, so a DataSet never changes.
    `augment`, on a training split with `augment=[...]`, transforms each shuffled batch (see `batches`).
    """

    fields: Mapping[str, np.ndarray]
    augment: Augmentation | None = _dc_field(default=None, compare=False)
    # field -> the data's own name for it, for fields `rename` gave another name: check_fields words its
    # errors with both (`as {x: y}` feeds y to x)
    renamed: Mapping[str, str] = _dc_field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.fields:
            raise DataError("a data set needs at least one field")
        canon: dict[str, np.ndarray] = {}
        first: tuple[str, int] | None = None
        for name, value in self.fields.items():
            arr = _canonical(name, np.asarray(value))
            if arr.ndim == 0:
                raise DataError(
                    f"field '{name}' is a scalar; every field needs a leading example axis", field=name
                )
            if first is None:
                first = (name, arr.shape[0])
            elif arr.shape[0] != first[1]:
                raise DataError(
                    f"fields have different lengths: '{first[0]}' has {first[1]} examples, "
                    f"'{name}' has {arr.shape[0]}",
                    field=name,
                )
            # A view, so the caller's own array keeps its write flag.
            view = arr.view()
            view.flags.writeable = False
            canon[name] = view
        object.__setattr__(self, "fields", MappingProxyType(canon))

    def __len__(self) -> int:
        return int(next(iter(self.fields.values())).shape[0])

    def num_batches(self, batch_size: int, *, drop_last: bool = False) -> int:
        """How many batches one epoch of `batches(batch_size, drop_last=...)` yields."""
        _check_batch_size(batch_size)
        return len(self) // batch_size if drop_last else -(-len(self) // batch_size)

    def batches(
        self, batch_size: int, *, rng: np.random.Generator | None = None, drop_last: bool = False
    ) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of batches; a permutation from `rng` when given, else the stored order.

        Only one batch is materialised at a time: slices are views, shuffled batches are gathers of batch size.
        With `augment` and an `rng`, batch i is augmented with a generator seeded by (a number drawn from `rng`
        after the permutation, i): the same for a given `rng` seed whichever batches are skipped, so a resumed
        epoch sees the same images. Without `rng` the batches are the stored data as is.
        """
        _check_batch_size(batch_size)
        return self._batches(batch_size, rng, drop_last)

    def _batches(
        self, batch_size: int, rng: np.random.Generator | None, drop_last: bool
    ) -> Iterator[dict[str, np.ndarray]]:
        n = len(self)
        order = rng.permutation(n) if rng is not None else None
        # Drawn after the permutation, so augmentation never changes the order of an un-augmented run.
        aug_seed = int(rng.integers(2**63)) if rng is not None and self.augment is not None else None
        stop = n - n % batch_size if drop_last else n
        for i, start in enumerate(range(0, stop, batch_size)):
            end = min(start + batch_size, n)
            if order is None:
                yield {k: v[start:end] for k, v in self.fields.items()}
            else:
                idx = order[start:end]
                b = {k: v[idx] for k, v in self.fields.items()}
                if self.augment is not None and aug_seed is not None:
                    b = self.augment(b, np.random.default_rng([aug_seed, i]))
                yield b

    def select(self, names: Sequence[str]) -> DataSet:
        """Only the fields `names` (views, no copy), keeping the augmentation."""
        return DataSet({k: self.fields[k] for k in names}, self.augment)

    def with_augment(self, augment: Augmentation | None) -> DataSet:
        return DataSet(self.fields, augment)

    def take(self, indices: np.ndarray) -> DataSet:
        """The examples at `indices`, in that order."""
        return DataSet({k: v[indices] for k, v in self.fields.items()})

    def rename(self, mapping: Mapping[str, str]) -> DataSet:
        """Fields renamed for a model: `mapping` is model_input_name -> data_field_name.

        Fields not mentioned keep their names unless a renamed field takes the name; one data field may feed
        several inputs.
        """
        out: dict[str, np.ndarray] = {}
        for new, old in mapping.items():
            if old not in self.fields:
                raise DataError(
                    f"the data has no field '{old}' to rename to '{new}'",
                    hint=_available_hint(old, self.fields),
                    field=old,
                )
            out[new] = self.fields[old]
        used = set(mapping.values())
        for name, arr in self.fields.items():
            if name not in used and name not in out:
                out[name] = arr
        return DataSet(out, self.augment, {new: old for new, old in mapping.items() if new != old})


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")


@dataclass(frozen=True)
class Splits:
    """What `load_data` returns.

    Attributes:
        train: the training examples.
        val: the validation examples, or None without a split.
        shuffle: whether the training loop should reshuffle `train` every epoch.
        stats: for `normalize=true`, field -> (mean, std) computed on `train` and applied to both splits
            (shaped to broadcast against one example, e.g. [64] or [1, 1, 3]), so predictions can reuse them.
        class_names: y's class names in index order (a csv's text labels, CIFAR-10's and Fashion-MNIST's
            classes), after `classes=[...]`; empty where the data has none.
    """

    train: DataSet
    val: DataSet | None
    shuffle: bool
    stats: Mapping[str, tuple[np.ndarray, np.ndarray]] = _dc_field(default_factory=dict)
    class_names: tuple[str, ...] = ()  # the name of each class index of y, where the data names them

    @property
    def augment(self) -> Augmentation | None:
        """The training batches' augmentation (`augment=[...]`), applied by `train.batches(..., rng=...)`."""
        return self.train.augment


# --------------------------------------------------------------------------------------------------------------
# Registry

ParamKind = Literal["int", "float", "number", "bool", "str", "path", "ints", "augment"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: object = _Required()


@dataclass(frozen=True)
class Param:
    """One argument of a data set: its name, kind, default (REQUIRED if none) and constraints."""

    name: str
    kind: ParamKind
    default: object = REQUIRED
    doc: str = ""
    positional: bool = True
    low: float | None = None  # inclusive lower bound for int/float/number
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def show(self) -> str:
        if self.required:
            return self.name
        d = self.default
        shown = (
            "none"
            if d is None
            else (
                "true"
                if d is True
                else "false"
                if d is False
                else f'"{d}"'
                if isinstance(d, str)
                else repr(d)
            )
        )
        return f"{self.name}={shown}"


Loader = Callable[..., "dict[str, np.ndarray]"]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered data set: `loader(rng, **params)` returns its fields before split/normalisation."""

    name: str
    loader: Loader
    params: tuple[Param, ...]
    kind: Literal["embedded", "file"]
    fields: tuple[str, ...]  # the fields it yields; () when the file decides (npz)
    doc: str
    targets: tuple[str, ...] = ("y", "t")  # never standardised by normalize=true; permuted by labels=shuffled
    classes: int | None = None  # labels y are 0..classes-1 whatever the arguments (checked without loading)

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.show() for p in self.params)})"


COMMON_OPTIONS: tuple[Param, ...] = (
    Param(
        "split",
        "number",
        None,
        "fraction (float in (0, 1]) or count (int) of examples kept for training; the rest is validation",
        positional=False,
    ),
    Param(
        "normalize",
        "bool",
        False,
        "standardise float input fields with the training split's mean/std",
        positional=False,
    ),
    Param("shuffle", "bool", True, "reshuffle the training split every epoch", positional=False),
    Param(
        "classes",
        "ints",
        None,
        "keep only these classes of the labels y, relabelled 0..k-1 in the order given, e.g. [3, 8]",
        positional=False,
        low=0,
    ),
    Param(
        "labels",
        "str",
        None,
        "shuffled: the training labels (y, t) become a random permutation of themselves, seeded by the run's "
        "seed; validation labels stay true",
        positional=False,
        choices=("shuffled",),
    ),
    Param(
        "augment",
        "augment",
        None,
        "training batches only, drawn anew every epoch: [random_crop(pad=4), flip_lr(p=0.5)] on image fields "
        "[n, H, W, C]",
        positional=False,
    ),
)


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def _available_hint(word: str, fields: Mapping[str, object]) -> str:
    names = ", ".join(sorted(fields))
    dym = _did_you_mean(word, list(fields))
    return f"{dym + ' ' if dym else ''}available fields: {names}"


def _describe(v: object) -> str:
    if isinstance(v, bool):
        return f"boolean {'true' if v else 'false'}"
    if isinstance(v, str):
        return f'string "{v}"'
    return f"{type(v).__name__} {v!r}"


_KIND_WORDS: dict[str, str] = {
    "int": "an integer",
    "float": "a number",
    "number": "a number",
    "bool": "true or false",
    "str": "a string",
    "path": "a path string",
    "ints": "a list of integers like [0, 1]",
    "augment": "a list of augmentations like [random_crop(pad=4), flip_lr]",
}


def _coerce(ds: str, p: Param, v: object) -> object:
    if v is None and p.default is None:
        return None
    info = DATASETS.get(ds)
    usage = f"usage: {info.signature()}; `specc data {ds}` describes it" if info is not None else ""
    bad = DataError(
        f"{ds}: argument '{p.name}' must be {_KIND_WORDS[p.kind]}, got {_describe(v)}", usage, field=p.name
    )
    out: object
    if p.kind == "int":
        v = integral(v)  # `n=1e3` is written as a float but means an integer
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
        out = v
    elif p.kind in ("float", "number"):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad
        out = float(v) if p.kind == "float" else v
    elif p.kind == "bool":
        if not isinstance(v, bool):
            raise bad
        out = v
    elif p.kind == "ints":
        return _coerce_ints(ds, p, v, bad)
    elif p.kind == "augment":
        return _coerce_augment(ds, v, bad)
    elif p.kind == "str":
        if not isinstance(v, str):
            raise bad
        if p.choices and v not in p.choices:
            dym = _did_you_mean(v, p.choices)
            raise DataError(
                f"{ds}: argument '{p.name}' must be one of {', '.join(p.choices)}, got \"{v}\"",
                hint=dym or usage,
                field=p.name,
            )
        out = v
    else:
        if not isinstance(v, str | os.PathLike):
            raise bad
        out = Path(v)
    if p.low is not None and isinstance(out, int | float) and not isinstance(out, bool) and out < p.low:
        low = int(p.low) if float(p.low).is_integer() and p.kind == "int" else p.low
        raise DataError(f"{ds}: argument '{p.name}' must be at least {low}, got {out}", usage, field=p.name)
    return out


def _bind(
    info: DatasetInfo, args: Sequence[object], kwargs: Mapping[str, object]
) -> tuple[dict[str, object], dict[str, object]]:
    usage = f"usage: {info.signature()} with options {', '.join(p.show() for p in COMMON_OPTIONS)}"
    positional = [p for p in info.params if p.positional]
    if len(args) > len(positional):
        raise DataError(takes_positional(info.name, [p.name for p in positional], len(args)), hint=usage)
    given: dict[str, object] = {p.name: a for p, a in zip(positional, args, strict=False)}
    known = {p.name: p for p in info.params}
    common = {p.name: p for p in COMMON_OPTIONS}
    opts_given: dict[str, object] = {}
    for key, value in kwargs.items():
        if key in known and key in common and isinstance(value, list | tuple):
            raise DataError(
                f"{info.name}: argument '{key}' is {known[key].doc} here, not the option {key}=[...]",
                hint=f"{info.name} generates the classes it is asked for: e.g. {info.name}({key}=2)",
                field=key,
            )
        if key in known:
            if key in given:
                raise DataError(f"{info.name}: argument '{key}' given twice", hint=usage, field=key)
            given[key] = value
        elif key in common:
            opts_given[key] = value
        else:
            valid = [*known, *common]
            dym = _did_you_mean(key, valid)
            raise DataError(
                f"{info.name}: unknown option '{key}'; valid options: {', '.join(valid)}",
                hint=dym or usage,
                field=key,
            )
    values: dict[str, object] = {}
    for p in info.params:
        if p.name in given:
            values[p.name] = _coerce(info.name, p, given[p.name])
        elif p.required:
            raise DataError(f"{info.name} needs argument '{p.name}'", hint=usage, field=p.name)
        else:
            values[p.name] = p.default
    opts = {
        p.name: _coerce(info.name, p, opts_given[p.name]) if p.name in opts_given else p.default
        for p in COMMON_OPTIONS
    }
    _check_classes_statically(info, opts["classes"])
    if opts["split"] is not None:
        _check_split_statically(info.name, opts["split"])
    if isinstance(values.get("delimiter"), str):
        values["delimiter"] = _delimiter(info.name, str(values["delimiter"]))
    return values, opts


def _delimiter(ds: str, text: str) -> str:
    """A csv's cell separator: one character; `"\\t"` as written in a spec (a backslash and a t: strings have no
    escapes) is a tab. Python's csv module raised a TypeError at training on anything else."""
    if text in ("\\t", "tab"):
        return "\t"
    if len(text) != 1 or text in ('"', "\n", "\r"):
        shown = "an empty string" if not text else repr(text)
        raise DataError(
            f"{ds}: delimiter={shown}: the cell separator is one character (not a quote or a line break)",
            hint='e.g. delimiter=";" or delimiter="\\t" for a tab',
            field="delimiter",
        )
    return text


def _check_split_statically(ds: str, split: object) -> None:
    """What `split=` may be whatever the data hold, so `specc check` reports it without loading: a fraction in
    (0, 1] or a count of at least 2."""
    if isinstance(split, float) and not 0.0 < split <= 1.0:
        raise DataError(
            f"{ds}: split={split} must be a fraction in (0, 1] or an integer count",
            hint="e.g. split=0.8 keeps 80% for training",
            field="split",
        )
    if isinstance(split, int) and split == 1:
        raise DataError(
            f"{ds}: split=1 keeps a single training example",
            hint="write split=1.0 to train on everything, or a count of at least 2",
            field="split",
        )
    if isinstance(split, int) and split < 1:
        raise DataError(
            f"{ds}: split={split} asks for {split} training examples",
            hint="use a count of at least 2, or a fraction like 0.8",
            field="split",
        )


def _check_classes_statically(info: DatasetInfo, classes: object) -> None:
    """`classes=[...]` against what a data set is known to hold, so `specc check` reports it without loading."""
    if classes is None:
        return
    assert isinstance(classes, tuple)
    if info.classes is not None:
        out = [c for c in classes if c >= info.classes]
        if out:
            raise DataError(
                f"{info.name}: classes={_show_list(classes)}: {info.name} has classes 0..{info.classes - 1}",
                hint=f"class {out[0]} does not exist",
                field="classes",
            )
    elif info.kind == "embedded":
        raise DataError(
            f"{info.name}: classes=[...] selects class labels y, and {info.name} has none",
            hint="classes= applies to classification data: digits, mnist, cifar10, csv with integer labels, ...",
            field="classes",
        )


def _show_list(values: Sequence[object]) -> str:
    return f"[{', '.join(map(str, values))}]"


def _coerce_ints(ds: str, p: Param, v: object, bad: DataError) -> tuple[int, ...]:
    if not isinstance(v, list | tuple) or not v:
        raise DataError(
            f"{ds}: argument '{p.name}' must be {_KIND_WORDS[p.kind]}, got {_describe(v)}",
            hint=f"e.g. {p.name}=[0, 1]",
            field=p.name,
        )
    out: list[int] = []
    for item in v:
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            raise DataError(
                f"{ds}: argument '{p.name}' must be {_KIND_WORDS[p.kind]}, got {_describe(item)} in the list",
                field=p.name,
            )
        if p.low is not None and item < p.low:
            raise DataError(
                f"{ds}: argument '{p.name}': class {item} is negative; classes are 0, 1, 2, ...", field=p.name
            )
        if item in out:
            raise DataError(f"{ds}: argument '{p.name}' names class {item} twice", field=p.name)
        out.append(item)
    return tuple(out)


# --------------------------------------------------------------------------------------------------------------
# Augmentation of training batches (`augment=[random_crop(pad=4), flip_lr]`)


def _image_fields(batch: Mapping[str, np.ndarray]) -> list[str]:
    return [k for k, v in batch.items() if v.ndim == 4 and v.dtype.kind == "f"]


def _random_crop(batch: dict[str, np.ndarray], rng: np.random.Generator, pad: int) -> dict[str, np.ndarray]:
    """Zero-pad H and W by `pad`, then crop each example back to H x W at a random offset (one per example,
    shared by all image fields)."""
    names = _image_fields(batch)
    if not names or pad == 0:
        return batch
    b = batch[names[0]].shape[0]
    dy = np.asarray(rng.integers(0, 2 * pad + 1, size=b))
    dx = np.asarray(rng.integers(0, 2 * pad + 1, size=b))
    out = dict(batch)
    for k in names:
        x = batch[k]
        _, h, w, c = x.shape
        padded = np.zeros((b, h + 2 * pad, w + 2 * pad, c), x.dtype)
        padded[:, pad : pad + h, pad : pad + w] = x
        rows = (dy[:, None] + np.arange(h))[:, :, None]
        cols = (dx[:, None] + np.arange(w))[:, None, :]
        out[k] = padded[np.arange(b)[:, None, None], rows, cols]
    return out


def _flip_lr(batch: dict[str, np.ndarray], rng: np.random.Generator, p: float) -> dict[str, np.ndarray]:
    """Mirror each example left-right (the W axis) with probability p, the same examples in all image fields."""
    names = _image_fields(batch)
    if not names:
        return batch
    flip = np.asarray(rng.random(batch[names[0]].shape[0])) < p
    out = dict(batch)
    for k in names:
        out[k] = np.where(flip[:, None, None, None], batch[k][:, :, ::-1], batch[k])
    return out


@dataclass(frozen=True)
class _AugmentFn:
    params: tuple[Param, ...]
    fn: Callable[..., dict[str, np.ndarray]]
    doc: str

    def signature(self, name: str) -> str:
        return f"{name}({', '.join(p.show() for p in self.params)})"


AUGMENTATIONS: Mapping[str, _AugmentFn] = MappingProxyType(
    {
        "random_crop": _AugmentFn(
            (Param("pad", "int", 4, "zero padding on each side of H and W", low=0),),
            _random_crop,
            "a random H x W crop of the image zero-padded by `pad`",
        ),
        "flip_lr": _AugmentFn(
            (Param("p", "float", 0.5, "probability of mirroring an example", low=0),),
            _flip_lr,
            "mirror left-right with probability p",
        ),
    }
)


@dataclass(frozen=True)
class Augmentation:
    """The `augment=[...]` steps, applied in order to one batch: `aug(batch, rng) -> batch` (NumPy, host side)."""

    steps: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]

    def __call__(self, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        for name, args in self.steps:
            batch = AUGMENTATIONS[name].fn(batch, rng, **dict(args))
        return batch


_AUG_TEXT = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", re.DOTALL)


def _augment_item(item: object) -> tuple[str, list[object], dict[str, object]] | None:
    """(name, positional, keyword) of one `augment` entry: a string `"random_crop(pad=4)"` / `"flip_lr"`, or a
    call bound by the spec checker (anything with `name` and `args` pairs, "*" holding the positional ones)."""
    if isinstance(item, str):
        m = _AUG_TEXT.fullmatch(item)
        if m is None:
            return None
        pos: list[object] = []
        kw: dict[str, object] = {}
        for part in filter(None, (x.strip() for x in (m.group(2) or "").split(","))):
            key, eq, text = part.partition("=")
            raw = text.strip() if eq else key.strip()
            value: object = raw
            for conv in (int, float):
                try:
                    value = conv(raw)
                    break
                except ValueError:
                    continue
            if eq:
                kw[key.strip()] = value
            else:
                pos.append(value)
        return m.group(1), pos, kw
    name, args = getattr(item, "name", None), getattr(item, "args", None)
    if isinstance(name, str) and isinstance(args, tuple):
        pairs = dict(args)
        return name, list(pairs.pop("*", ())), pairs
    return None


def _coerce_augment(ds: str, v: object, bad: DataError) -> Augmentation:
    items = list(v) if isinstance(v, list | tuple) else [v]
    usage = "e.g. augment=[random_crop(pad=4), flip_lr]; augmentations: " + ", ".join(
        f.signature(n) for n, f in AUGMENTATIONS.items()
    )
    if not items:
        raise DataError(f"{ds}: augment=[] lists no augmentation", hint=usage, field="augment")
    steps: list[tuple[str, tuple[tuple[str, object], ...]]] = []
    for item in items:
        parsed = _augment_item(item)
        if parsed is None:
            raise DataError(
                f"{ds}: augment: {_describe(item)} is not an augmentation", hint=usage, field="augment"
            )
        name, pos, kw = parsed
        fn = AUGMENTATIONS.get(name)
        if fn is None:
            raise DataError(
                f"{ds}: unknown augmentation '{name}'; augmentations: {', '.join(AUGMENTATIONS)}",
                hint=_did_you_mean(name, list(AUGMENTATIONS)) or usage,
                field="augment",
            )
        where = f"{ds}: augment {name}"
        sig = fn.signature(name)
        if len(pos) > len(fn.params):
            raise DataError(f"{where} takes at most {len(fn.params)} argument(s)", hint=sig, field="augment")
        given = {p.name: a for p, a in zip(fn.params, pos, strict=False)}
        for key, value in kw.items():
            if key not in {p.name for p in fn.params} or key in given:
                what = "given twice" if key in given else "unknown argument"
                raise DataError(f"{where}: {what} '{key}'", hint=f"usage: {sig}", field="augment")
            given[key] = value
        args: list[tuple[str, object]] = []
        for p in fn.params:
            try:
                value = _coerce(where, p, given[p.name]) if p.name in given else p.default
            except DataError as e:
                raise DataError(e.message, hint=f"usage: {sig}", field="augment") from None
            if name == "flip_lr" and isinstance(value, float) and value > 1:
                raise DataError(f"{where}: p={value} is a probability, at most 1", field="augment")
            args.append((p.name, value))
        steps.append((name, tuple(args)))
    return Augmentation(tuple(steps))


def load_data(
    name: str, args: Sequence[object], kwargs: Mapping[str, object], *, base_dir: Path, seed: int
) -> Splits:
    """Load data set `name(*args, **kwargs)`, split and normalise it; deterministic for a given `seed`.

    Arguments are those of `DATASETS[name].params` plus the options common to all (COMMON_OPTIONS):
      split=     absent or 1.0: everything is training data, val is None. A float f in (0, 1): after a shuffle
                 seeded by `seed`, the first floor(f * n) examples train, the rest validate. An int k (at least 2):
                 the first k shuffled examples train, the remaining n - k validate (MNIST t10k with split=8000:
                 8,000 / 2,000, the same examples for the same seed).
      normalize= true: every float field except the targets y/t is standardised with the training split's
                 mean and std, per feature (last axis; so per channel for images); constant features are left
                 at 0. The statistics are returned in Splits.stats.
      shuffle=   (default true) only recorded in Splits.shuffle for the training loop.
      classes=   [c0, c1, ...]: only the examples whose label y is one of these, before the split; y becomes the
                 index in the list (and t, where it is y as f32[n, 1], follows).
      labels=    shuffled: after the split, the training targets (y and t) are permuted together by a third
                 stream of `seed`; the inputs and the validation split keep their true labels.
      augment=   [random_crop(pad=4), flip_lr(p=0.5)]: recorded on the training DataSet (`Splits.augment`) and
                 applied by `train.batches(rng=...)` to its image fields [n, H, W, C], after normalisation.
    Generators take their points from a stream of `seed` separate from the split's, so the split never changes
    the points. xor without n= is the exact 4 corners (noise ignored); with n= it is n points drawn evenly from
    the corners plus Gaussian noise of std `noise`.

    Relative paths resolve against `base_dir` (the spec file's folder). Raises DataError.
    """
    info = DATASETS.get(name)
    if info is None:
        dym = _did_you_mean(name, list(DATASETS))
        raise DataError(f"unknown data set '{name}'; valid data sets: {', '.join(DATASETS)}", hint=dym)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    values, opts = _bind(info, args, kwargs)
    for p in info.params:
        v = values[p.name]
        if p.kind == "path" and isinstance(v, Path):
            v = v.expanduser()
            values[p.name] = v if v.is_absolute() else Path(base_dir) / v
    # Separate streams so that changing the split never changes the generated points, and vice versa; spawn(3)
    # begins with the same two children as spawn(2) did, so the labels' stream changed neither.
    gen_seq, split_seq, label_seq = np.random.SeedSequence(int(seed)).spawn(3)
    raw = info.loader(np.random.default_rng(gen_seq), **values)
    names = tuple(str(n) for n in raw.get(CLASS_NAMES, ()))  # not a field: one entry a class, not an example
    full = DataSet({k: v for k, v in raw.items() if k != CLASS_NAMES})
    if info.kind == "file":
        _check_file_values(info.name, full)
    classes = opts["classes"]
    if classes is not None:
        assert isinstance(classes, tuple)
        full = _keep_classes(info.name, full, classes)
        names = tuple(names[c] for c in classes) if names else ()
    split = opts["split"]
    assert split is None or isinstance(split, int | float)
    train, val = _split(info.name, full, split, np.random.default_rng(split_seq))
    if opts["labels"] == "shuffled":
        train = _shuffle_labels(info, train, np.random.default_rng(label_seq))
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if opts["normalize"]:
        train, val, stats = _normalize(train, val, info.targets)
    augment = opts["augment"]
    if augment is not None:
        assert isinstance(augment, Augmentation)
        train = train.with_augment(_check_augment(info.name, train, augment, bool(opts["shuffle"])))
    return Splits(
        train=train, val=val, shuffle=bool(opts["shuffle"]), stats=MappingProxyType(stats), class_names=names
    )


# A loader may return its classes' names under this key beside its fields (an array of strings, one a class)
CLASS_NAMES = "class_names"
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
)  # fmt: skip


def _show_classes(present: np.ndarray) -> str:
    labels = [int(c) for c in present]
    if labels == list(range(len(labels))) and len(labels) > 2:
        return f"0..{len(labels) - 1}"
    return ", ".join(map(str, labels[:20])) + (", ..." if len(labels) > 20 else "")


def _keep_classes(ds: str, full: DataSet, classes: tuple[int, ...]) -> DataSet:
    y = full.fields.get("y")
    if y is None or y.dtype.kind not in "iu" or y.ndim != 1:
        found = "no field y" if y is None else f"y {_dtype_name(y.dtype)}{list(y.shape)}"
        raise DataError(
            f"{ds}: classes=[...] selects integer class labels y[n], and this data has {found}",
            hint="classes= applies to classification data (csv with integer or text labels, npz with y)",
            field="classes",
        )
    present = np.unique(y)
    missing = [c for c in classes if c not in set(present.tolist())]
    if missing:
        raise DataError(
            f"{ds}: classes={_show_list(classes)}: {ds} has classes {_show_classes(present)}",
            hint=f"class {missing[0]} does not occur in the labels",
            field="classes",
        )
    keep = np.isin(y, classes)
    relabel = np.zeros(int(present.max()) + 1, np.int32)
    relabel[list(classes)] = np.arange(len(classes), dtype=np.int32)
    fields = {k: v[keep] for k, v in full.fields.items()}
    fields["y"] = relabel[y[keep]]
    t = full.fields.get("t")
    # xor, moons and circles carry t = y as f32[n, 1]; it must follow the relabelling.
    if t is not None and t.shape == (len(full), 1) and np.array_equal(t[:, 0], y):
        fields["t"] = fields["y"].astype(np.float32)[:, None]
    return DataSet(fields)


def _shuffle_labels(info: DatasetInfo, train: DataSet, rng: np.random.Generator) -> DataSet:
    """The memorisation experiment (Zhang et al. 2017): the same inputs with the labels of other examples."""
    targets = [k for k in info.targets if k in train.fields]
    if not targets:
        raise DataError(
            f"{info.name}: labels=shuffled permutes the targets ({', '.join(info.targets)}), and this data has "
            f"fields {', '.join(train.fields)}",
            hint="rename a field to y with the data set's own options, or drop labels=shuffled",
            field="labels",
        )
    perm = rng.permutation(len(train))
    return DataSet({k: v[perm] if k in targets else v for k, v in train.fields.items()})


def _check_augment(ds: str, train: DataSet, augment: Augmentation, shuffle: bool) -> Augmentation:
    if not _image_fields(train.fields):
        shown = ", ".join(f"{k} {_dtype_name(v.dtype)}{list(v.shape)}" for k, v in train.fields.items())
        raise DataError(
            f"{ds}: augment=[...] transforms images [n, H, W, C], and this data has {shown}",
            hint="digits(image=true) gives x as [n, 8, 8, 1]" if ds == "digits" else "",
            field="augment",
        )
    if not shuffle:
        raise DataError(
            f"{ds}: augment=[...] draws its randomness with each epoch's shuffle, so it needs shuffle=true",
            hint="drop shuffle=false",
            field="augment",
        )
    return augment


def _check_file_values(ds: str, full: DataSet) -> None:
    """A file's data set has examples, and its float fields only finite numbers (a NaN label or input would only
    show up later as a diverged loss)."""
    if len(full) == 0:
        raise DataError(f"{ds}: the data holds no examples (every field has length 0)")
    for name, arr in full.fields.items():
        if arr.dtype.kind != "f":
            continue
        flat = arr.reshape(len(full), -1)
        # In slices of rows, so the check never allocates a mask the size of the data.
        step = max(1, (1 << 22) // max(1, flat.shape[1]))
        for start in range(0, len(full), step):
            finite = np.isfinite(flat[start : start + step]).all(axis=1)
            if not finite.all():
                row = start + int(np.argmin(finite))
                value = flat[row][~np.isfinite(flat[row])][0]
                raise DataError(
                    f"{ds}: field '{name}' holds {value} in example {row}; every number must be finite",
                    hint="fill or drop examples with missing values",
                    field=name,
                )


def _split(
    ds: str, full: DataSet, split: float | None, rng: np.random.Generator
) -> tuple[DataSet, DataSet | None]:
    n = len(full)
    if split is None:
        return full, None
    # a fraction outside (0, 1] or a count below 2 was refused when the call was bound (_bind)
    if isinstance(split, float):
        if split == 1.0:
            return full, None
        k = math.floor(split * n)
        if k == 0:
            raise DataError(f"{ds}: split={split} keeps no training example out of {n}", field="split")
        if k == n:
            raise DataError(
                f"{ds}: split={split} leaves no validation example out of {n}",
                hint="write split=1.0 (or leave it out) to train on everything",
                field="split",
            )
    else:
        k = int(split)
        if not 1 <= k <= n:
            raise DataError(
                f"{ds}: split={k} asks for {k} training examples but the data set has {n}",
                hint=f"use a count from 2 to {n}, or a fraction like 0.8",
                field="split",
            )
        if k == n:
            return full, None
    perm = rng.permutation(n)
    return full.take(perm[:k]), full.take(perm[k:])


def _normalize(
    train: DataSet, val: DataSet | None, targets: tuple[str, ...]
) -> tuple[DataSet, DataSet | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, arr in train.fields.items():
        if name in targets or arr.dtype.kind != "f":
            continue
        # Per feature (the last axis) for tables, per channel for images: every axis but the last is pooled.
        axes = tuple(range(arr.ndim - 1)) if arr.ndim > 1 else (0,)
        mean = arr.mean(axis=axes, dtype=np.float64, keepdims=True)
        std = arr.std(axis=axes, dtype=np.float64, keepdims=True)
        # Constant features (e.g. border pixels) stay constant at 0 instead of dividing by ~0.
        std = np.where(std < 1e-8, 1.0, std)
        stats[name] = (mean[0].astype(np.float32), std[0].astype(np.float32))

    def apply(ds: DataSet) -> DataSet:
        return DataSet(
            {
                k: ((v - stats[k][0]) / stats[k][1]).astype(np.float32) if k in stats else v
                for k, v in ds.fields.items()
            }
        )

    return apply(train), (apply(val) if val is not None else None), stats


# --------------------------------------------------------------------------------------------------------------
# Embedded data sets


@lru_cache(maxsize=1)
def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(_DATA_DIR / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = table[:, :64] / np.float32(16.0)
    y = table[:, 64].astype(np.int32)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _digits(rng: np.random.Generator, image: bool) -> dict[str, np.ndarray]:
    x, y = _digits_table()
    return {"x": x.reshape(-1, 8, 8, 1) if image else x, "y": y}


def _with_binary_target(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    # `t` is y as f32[n, 1], the shape binary_cross_entropy / mse want for a single-logit model.
    return {"x": x.astype(np.float32), "y": y.astype(np.int32), "t": y.astype(np.float32)[:, None]}


def _class_sizes(n: int, classes: int) -> list[int]:
    return [n // classes + (1 if k < n % classes else 0) for k in range(classes)]


def _xor(rng: np.random.Generator, n: int | None, noise: float) -> dict[str, np.ndarray]:
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    labels = np.array([0, 1, 1, 0], dtype=np.int32)
    if n is None:
        return _with_binary_target(corners, labels)
    idx = np.arange(n) % 4
    rng.shuffle(idx)
    x = corners[idx] + rng.normal(0.0, noise, size=(n, 2))
    return _with_binary_target(x, labels[idx])


def _moons(rng: np.random.Generator, n: int, noise: float) -> dict[str, np.ndarray]:
    # The construction of scikit-learn's make_moons: an upper half circle and a shifted lower one.
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)]
    )
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = rng.permutation(n)
    x = x[perm] + rng.normal(0.0, noise, size=x.shape)
    return _with_binary_target(x, y[perm])


def _circles(rng: np.random.Generator, n: int, noise: float, factor: float) -> dict[str, np.ndarray]:
    if not 0.0 < factor < 1.0:
        raise DataError(
            f"circles: factor={factor} must be between 0 and 1 (exclusive)",
            hint="factor is the inner circle's radius relative to the outer one",
            field="factor",
        )
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)]
    )
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = rng.permutation(n)
    x = x[perm] + rng.normal(0.0, noise, size=x.shape)
    return _with_binary_target(x, y[perm])


def _spirals(rng: np.random.Generator, classes: int, n: int, noise: float) -> dict[str, np.ndarray]:
    # The CS231n spiral: radius grows 0..1 while the angle turns 4 rad; arms start evenly around the circle.
    xs, ys = [], []
    for k, m in enumerate(_class_sizes(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(0.0, 4.0, m) + 2 * np.pi * k / classes + rng.normal(0.0, noise, size=m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(m, k, np.int32))
    perm = rng.permutation(n)
    return {"x": np.concatenate(xs)[perm].astype(np.float32), "y": np.concatenate(ys)[perm]}


def _blobs(rng: np.random.Generator, classes: int, dim: int, n: int, std: float) -> dict[str, np.ndarray]:
    centers = rng.uniform(-10.0, 10.0, size=(classes, dim))
    y = np.concatenate([np.full(m, k, np.int32) for k, m in enumerate(_class_sizes(n, classes))])
    y = y[rng.permutation(n)]
    x = centers[y] + rng.normal(0.0, std, size=(n, dim))
    return {"x": x.astype(np.float32), "y": y}


def _sine(rng: np.random.Generator, n: int, noise: float) -> dict[str, np.ndarray]:
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(x) + rng.normal(0.0, noise, size=(n, 1)) if noise > 0 else np.sin(x)
    return {"x": x.astype(np.float32), "y": y.astype(np.float32)}


def _sine_windows(
    rng: np.random.Generator, n: int, window: int, period: float, noise: float
) -> dict[str, np.ndarray]:
    # Each example is its own stretch of the wave (a random phase), so a split never shares values between
    # training and validation windows; t is the value one step after the window, noise included.
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    s = np.sin(2 * np.pi * np.arange(window + 1) / period + phase)
    if noise > 0:
        s = s + rng.normal(0.0, noise, size=s.shape)
    return {"x": s[:, :window, None].astype(np.float32), "t": s[:, window:].astype(np.float32)}


def _reversal(rng: np.random.Generator, n: int, length: int, vocab: int) -> dict[str, np.ndarray]:
    # A sequence-to-sequence toy (Sutskever et al. 2014 reversed their sources): symbols 1..vocab-1, 0 the start
    # token; the decoder reads the answer so far (teacher forcing), so tgt_in is tgt shifted right behind a 0.
    src = rng.integers(1, vocab, size=(n, length))
    tgt = src[:, ::-1]
    tgt_in = np.concatenate([np.zeros((n, 1), src.dtype), tgt[:, :-1]], axis=1)
    return {k: v.astype(np.int32) for k, v in {"src": src, "tgt_in": tgt_in, "tgt": tgt}.items()}


# --------------------------------------------------------------------------------------------------------------
# File loaders

_PATH_HINT = "a relative path starts from the spec file's folder (given by --data, from the current folder)"


def _need_exists(ds: str, path: Path) -> None:
    if not path.exists():
        raise DataError(f"{ds}: no such file or directory: {path}", hint=_PATH_HINT, kind="file error")


def _need_file(ds: str, path: Path) -> None:
    _need_exists(ds, path)
    if path.is_dir():
        raise DataError(f"{ds}: {path} is a directory, a file was expected", kind="file error")


# Decompressing a small file can produce gigabytes (a "gzip bomb"), so every loader reads through a counter that
# stops at this many bytes of (decompressed) data per data set, and sizes that a header announces are checked
# against it before anything is read. Documented in docs/training.md ("Data-file limits").
MAX_DATA_BYTES = 4 << 30
_MAX_DATA_ENV = "SPECC_MAX_DATA_BYTES"


def max_data_bytes() -> int:
    """The most bytes of (decompressed) data one data set may hold: MAX_DATA_BYTES, or $SPECC_MAX_DATA_BYTES."""
    raw = os.environ.get(_MAX_DATA_ENV, "").strip()
    if not raw:
        return MAX_DATA_BYTES
    if not raw.isascii() or not raw.isdigit() or len(raw) > 30 or int(raw) < 1:
        raise DataError(
            f"{_MAX_DATA_ENV}={raw[:40]!r} is not a positive number of bytes",
            hint=f"e.g. {_MAX_DATA_ENV}={8 << 30} for 8 GiB",
        )
    return int(raw)


def _show_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _over_limit(ds: str, name: str, what: str, limit: int) -> DataError:
    return DataError(
        f"{ds}: {name}: {what}, more than the limit of {_show_bytes(limit)} ({limit} bytes) of data per data set",
        hint=f"a corrupt or hostile file (a compression bomb)? If the data is real, raise the limit with "
        f"{_MAX_DATA_ENV}=<bytes>",
    )


class _CappedReader(io.RawIOBase):
    """A read-only stream over `raw` that raises a DataError once more than `limit` bytes have been read."""

    def __init__(self, raw: io.BufferedIOBase, ds: str, name: str, limit: int) -> None:
        super().__init__()
        self._raw, self._ds, self._name, self._limit = raw, ds, name, limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # Never ask for more than one byte past the limit, so a bomb is never decompressed beyond it.
        want = min(len(view), self._limit - self.count + 1)
        data = self._raw.read(want) if want > 0 else b""
        view[: len(data)] = data
        self.count += len(data)
        if self.count > self._limit:
            raise _over_limit(
                self._ds,
                self._name,
                f"holds more than {_show_bytes(self._limit)} when decompressed",
                self._limit,
            )
        return len(data)


_GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def _open_data(ds: str, path: Path, limit: int | None = None) -> Iterator[io.BufferedReader]:
    """The bytes of a data file, gunzipped when it starts with the gzip magic, through a `_CappedReader`.

    I/O and decompression errors while reading become DataErrors naming the file.
    """
    limit = max_data_bytes() if limit is None else limit
    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") if gz else contextlib.nullcontext(raw) as inner:
                capped = _CappedReader(inner, ds, path.name, limit)
                yield io.BufferedReader(capped, buffer_size=1 << 16)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"{ds}: {path.name}: corrupt gzip file ({e})", hint="the file is truncated or corrupt"
        ) from e
    except OSError as e:
        raise DataError(f"{ds}: cannot read {path}: {e.strerror or e}", kind="file error") from e


def _read_bytes(ds: str, path: Path) -> bytes:
    with _open_data(ds, path) as f:
        return f.read()


def _npz(rng: np.random.Generator, path: Path) -> dict[str, np.ndarray]:
    _need_file("npz", path)
    hint = "save with np.savez(path, x=..., y=...); object arrays are refused"
    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"npz: cannot read {path}: {e.strerror or e}", kind="file error") from e
    if not head:
        raise DataError(f"npz: {name} is empty (0 bytes)", hint=hint)
    if head == b"\x93NUMPY":
        raise DataError(f"npz: {name}: a single .npy array, not an .npz archive of named arrays", hint=hint)
    try:
        with zipfile.ZipFile(path) as archive:
            fields = _npz_members("npz", name, archive, hint)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error) as e:
        raise DataError(f"npz: {name}: not a readable .npz archive ({e})", hint=hint) from e
    except OSError as e:
        raise DataError(f"npz: cannot read {path}: {e.strerror or e}", kind="file error") from e
    if not fields:
        raise DataError(f"npz: {name} holds no arrays", hint=hint)
    lengths = {k: (v.shape[0] if v.ndim else None) for k, v in fields.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {'scalar' if n is None else n}" for k, n in lengths.items())
        raise DataError(f"npz: {name}: arrays must share their first (example) dimension; found {shown}")
    return fields


def _npz_members(ds: str, name: str, archive: zipfile.ZipFile, hint: str) -> dict[str, np.ndarray]:
    """Each .npy member as an array, reading no more than its header announces.

    A zip entry states its uncompressed size and zipfile never inflates past it (and checks the CRC), so the
    announced sizes are checked against the limit, and against each .npy header, before anything is inflated.
    """
    members = [i for i in archive.infolist() if not i.is_dir()]
    limit = max_data_bytes()
    total = sum(i.file_size for i in members)
    if total > limit:
        raise _over_limit(ds, name, f"its arrays announce {_show_bytes(total)}", limit)
    fields: dict[str, np.ndarray] = {}
    for info in members:
        key = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy"):
            raise DataError(f"{ds}: {name}: member '{info.filename}' is not an .npy array", hint=hint)
        with archive.open(info) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            except ValueError as e:
                raise DataError(
                    f"{ds}: {name}: member '{key}' has no valid .npy header ({e})", hint=hint
                ) from e
            if dtype.hasobject:
                raise DataError(f"{ds}: {name}: array '{key}' holds Python objects", hint=hint, field=key)
            size = math.prod(shape) * dtype.itemsize
            if f.tell() + size != info.file_size:
                raise DataError(
                    f"{ds}: {name}: array '{key}' announces shape {list(shape)} ({size} bytes of "
                    f"{dtype}) but its archive entry holds {info.file_size - f.tell()} bytes of data",
                    hint="the file is truncated or corrupt",
                    field=key,
                )
            data = f.read(size)
        arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        fields[key] = arr
    return fields


def _parse_float(s: str) -> float | None:
    """A cell's number as a CSV writer spells it; None for text, and for Python's own spellings (`1_000`)."""
    if "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _is_int(s: str) -> bool:
    if "_" in s:
        return False
    try:
        int(s)
    except ValueError:
        return False
    return True


_F32_MAX = 3.4028234663852886e38  # np.finfo(np.float32).max, without importing NumPy here


def _csv(
    rng: np.random.Generator, path: Path, target: str, delimiter: str, dtype: str | None = None
) -> dict[str, np.ndarray]:
    _need_file("csv", path)
    name = path.name
    with _open_data("csv", path) as raw:
        try:
            f = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            # strict: an unclosed quote is an error, not a cell that silently swallows the rest of the file.
            reader = csvlib.reader(f, delimiter=delimiter, strict=True)
            header: list[str] | None = None
            rows: list[list[str]] = []
            lines: list[int] = []  # the file line of each data row, for messages
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                if header is None:
                    header = [c.strip() for c in row]
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"csv: {name}:{reader.line_num}: expected {len(header)} cells as in the "
                        f"header, found {len(row)}"
                    )
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
        except UnicodeDecodeError as e:
            raise DataError(f"csv: {name}: not a UTF-8 text file ({e.reason})") from e
        except csvlib.Error as e:
            raise DataError(f"csv: {name}:{reader.line_num}: malformed CSV ({e})") from e
    if header is None:
        raise DataError(f"csv: {name} is empty", hint="the first line must name the columns, e.g. x1,x2,y")
    if all(_parse_float(c) is not None for c in header):
        raise DataError(
            f"csv: {name}: the first line ({','.join(header[:4])}...) is numbers, not a header row",
            hint="add a first line naming the columns, e.g. x1,x2,y",
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(f"csv: {name}: duplicate column name(s) {', '.join(dupes)}")
    if target not in header:
        dym = _did_you_mean(target, header)
        # a header of one column holding another separator: the file's cells are not split by `delimiter`
        spelled = {";": '";"', "\t": '"\\t"', "|": '"|"'}
        other = next((d for d in spelled if d != delimiter and len(header) == 1 and d in header[0]), None)
        raise DataError(
            f"csv: {name} has no column '{target}'; columns: {', '.join(header)}",
            hint=f"the header reads as one column: give delimiter={spelled[other]}"
            if other
            else dym or 'choose the label column with target="..."',
            field="target",
        )
    if not rows:
        raise DataError(f"csv: {name} has a header but no data rows")
    columns = list(zip(*rows, strict=True))
    features: list[np.ndarray] = []
    y: np.ndarray | None = None
    text_classes: list[str] = []  # the target's text labels, sorted (their index is y); empty: numbers
    missing_hint = "fill or drop rows with missing values"
    for col_name, cells in zip(header, columns, strict=True):
        where = f"csv: {name}: column '{col_name}'"
        parsed = [_parse_float(c) for c in cells]
        if all(v is not None for v in parsed):
            bad = next((i for i, v in enumerate(parsed) if not math.isfinite(v or 0.0)), None)
            if bad is not None:
                raise DataError(
                    f"{where} holds {cells[bad]} at line {lines[bad]}; every number must be finite",
                    hint=missing_hint,
                )
            # read as f32, a larger number is inf (and the finite check on the examples named no line)
            big = next((i for i, v in enumerate(parsed) if abs(v or 0.0) > _F32_MAX), None)
            if big is not None and not (col_name == target and all(_is_int(c) for c in cells)):
                raise DataError(
                    f"{where} holds {cells[big]} at line {lines[big]}, too large for f32 (|x| ≤ 3.4e38)",
                    hint="rescale the column (e.g. to its logarithm, or to other units)",
                )
            if col_name == target:
                ints = [int(c) for c in cells] if all(_is_int(c) for c in cells) else None
                if ints is not None and not all(-(2**31) <= v < 2**31 for v in ints):
                    i = next(i for i, v in enumerate(ints) if not -(2**31) <= v < 2**31)
                    raise DataError(
                        f"{where}: the integer label at line {lines[i]} is outside the i32 range",
                        hint="labels are class indices (0, 1, 2, ...)",
                    )
                y = np.array(ints, dtype=np.int32) if ints is not None else np.array(parsed, dtype=np.float32)
            else:
                features.append(np.array(parsed, dtype=np.float32))
            continue
        missing = [i for i, c in enumerate(cells) if c == ""]
        if missing and all(v is not None for v, c in zip(parsed, cells, strict=True) if c != ""):
            raise DataError(
                f"{where} has an empty cell in data row {missing[0] + 1} (line {lines[missing[0]]})",
                hint=missing_hint,
            )
        numbers = [i for i, v in enumerate(parsed) if v is not None and math.isfinite(v)]
        if numbers:
            # Numbers and words in one column are a typo or a missing value, not a text column: a column is
            # skipped (or read as class names) only when none of its cells is a number.
            word = next(i for i, c in enumerate(cells) if parsed[i] is None and c != "")
            raise DataError(
                f"{where} mixes numbers and text: line {lines[numbers[0]]} holds {cells[numbers[0]]}, "
                f"line {lines[word]} holds {cells[word]!r}",
                hint="a column is all numbers (a feature) or all text (an id, skipped; or class names for "
                "the target)",
            )
        if col_name == target:
            # Text labels become class indices in sorted order of the label strings.
            text_classes = sorted(set(cells))
            lookup = {c: i for i, c in enumerate(text_classes)}
            y = np.array([lookup[c] for c in cells], dtype=np.int32)
        # Other text columns (ids, names) are not features and are skipped.
    if not features:
        raise DataError(f"csv: {name}: no numeric column besides the target '{target}'")
    assert y is not None
    x = np.stack(features, axis=1)
    if dtype == "f32":
        if text_classes:
            raise DataError(
                f"csv: {name}: dtype=f32 reads column '{target}' as numbers, and it holds text",
                hint="drop dtype=f32 to read text labels as class indices",
                field="dtype",
            )
        return {"x": x, "t": y.astype(np.float32)[:, None]}
    if dtype == "i32" and y.dtype.kind == "f":
        i = next(i for i, c in enumerate(columns[header.index(target)]) if not _is_int(c))
        raise DataError(
            f"csv: {name}: dtype=i32 needs integer labels in column '{target}'; line {lines[i]} holds "
            f"{columns[header.index(target)][i]}",
            hint="drop dtype=i32, or dtype=f32 for a regression target",
            field="dtype",
        )
    if text_classes:
        return {"x": x, "y": y, CLASS_NAMES: np.array(text_classes)}
    return {"x": x, "y": y}


_IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS = 0x00000801  # unsigned bytes, 1 dimension


def _read_idx(ds: str, path: Path, magic: int) -> np.ndarray:
    what = "image" if magic == _IDX_IMAGES else "label"
    ndim = magic & 0xFF
    limit = max_data_bytes()
    with _open_data(ds, path) as f:
        raw = f.read(4)
        found = int.from_bytes(raw, "big") if len(raw) == 4 else None
        if found != magic:
            shown = f"0x{found:08x}" if found is not None else f"only {len(raw)} bytes"
            other = {_IDX_IMAGES: "an IDX image file", _IDX_LABELS: "an IDX label file"}.get(found or -1)
            hint = (
                f"this is {other}; the images are *-images-idx3-ubyte, the labels *-labels-idx1-ubyte"
                if other
                else "expected the MNIST IDX files train-images-idx3-ubyte[.gz] / t10k-images-idx3-ubyte[.gz] "
                "and their *-labels-idx1-ubyte[.gz]"
            )
            raise DataError(
                f"{ds}: {path.name}: not an IDX {what} file (magic 0x{magic:08x} expected, found {shown})",
                hint=hint,
            )
        head = f.read(4 * ndim)
        if len(head) < 4 * ndim:
            raise DataError(f"{ds}: {path.name}: truncated IDX header")
        dims = [int.from_bytes(head[4 * i : 4 + 4 * i], "big") for i in range(ndim)]
        size = math.prod(dims)
        announced = f"IDX header announces {'x'.join(map(str, dims))} = {size} bytes of data"
        if size > limit:
            raise _over_limit(ds, path.name, announced, limit)
        # One byte more than announced tells a longer file (or a decompression bomb) without reading the rest.
        data = f.read(size + 1)
    if len(data) != size:
        holds = f"{len(data)}" if len(data) < size else "more (reading stopped one byte past it)"
        raise DataError(
            f"{ds}: {path.name}: {announced}, the file holds {holds}",
            hint="the file is truncated or corrupt",
        )
    return np.frombuffer(data, dtype=np.uint8, count=size).reshape(dims)


def _idx_candidates(folder: Path, stem: str) -> list[Path]:
    # Some mirrors write `train-images.idx3-ubyte`; either may be gzipped.
    names = [stem, stem.replace("-idx", ".idx")]
    return [folder / f"{n}{ext}" for n in names for ext in ("", ".gz")]


def _first_existing(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _idx_pair(ds: str, path: Path, subset: str | None) -> tuple[Path, Path]:
    _need_exists(ds, path)
    if path.is_dir():
        prefixes = ["train", "t10k"] if subset is None else ["train" if subset == "train" else "t10k"]
        for prefix in prefixes:
            images = _first_existing(_idx_candidates(path, f"{prefix}-images-idx3-ubyte"))
            if images is None:
                continue
            labels = _first_existing(_idx_candidates(path, f"{prefix}-labels-idx1-ubyte"))
            if labels is None:
                raise DataError(
                    f"{ds}: found {images.name} but no {prefix}-labels-idx1-ubyte[.gz] in {path}",
                    kind="file error",
                )
            return images, labels
        looked = " or ".join(f"{p}-images-idx3-ubyte[.gz]" for p in prefixes)
        raise DataError(
            f"{ds}: no {looked} in {path}",
            hint="point at the folder holding the IDX files or at an images file",
            kind="file error",
        )
    name = path.name
    if "images" not in name:
        raise DataError(
            f"{ds}: {name}: cannot tell the labels file for it (expected a name like "
            "t10k-images-idx3-ubyte.gz)",
            hint="pass the folder holding both IDX files",
        )
    base = name.replace("images", "labels").replace("idx3", "idx1")
    base = base.removesuffix(".gz")
    labels = _first_existing([path.with_name(base), path.with_name(base + ".gz")])
    if labels is None:
        raise DataError(f"{ds}: no labels file {path.with_name(base)}[.gz] beside {name}", kind="file error")
    return path, labels


def _mnist_like(ds: str, names: tuple[str, ...] = ()) -> Loader:
    def load(rng: np.random.Generator, path: Path, subset: str | None) -> dict[str, np.ndarray]:
        images_path, labels_path = _idx_pair(ds, path, subset)
        images = _read_idx(ds, images_path, _IDX_IMAGES)
        labels = _read_idx(ds, labels_path, _IDX_LABELS)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{ds}: {images_path.name} holds {images.shape[0]} images but {labels_path.name} "
                f"holds {labels.shape[0]} labels"
            )
        x = images.astype(np.float32)[..., None]
        x /= np.float32(255.0)
        if labels.size and int(labels.max()) > 9:  # the class check downstream hinted at widening the model
            i = int(np.argmax(labels > 9))
            raise DataError(
                f"{ds}: {labels_path.name} holds the label {int(labels[i])} (label {i}); {ds} has classes 0..9",
                hint="the label file is damaged or not one of this data set's",
            )
        out = {"x": x, "y": labels.astype(np.int32)}
        return {**out, CLASS_NAMES: np.array(names)} if names else out

    return load


def _numpy_global(module: str, name: str) -> object | None:
    # numpy 2 moved numpy.core to numpy._core; importing the old name there only warns, so try the new one first.
    for mod in (f"numpy._core.{module}", f"numpy.core.{module}"):
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    return None


@lru_cache(maxsize=1)
def _pickle_allowed() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs_encode,
        ("builtins", "bytes"): _empty_bytes,
        ("__builtin__", "bytes"): _empty_bytes,
    }
    for module, name in (
        ("multiarray", "_reconstruct"),
        ("multiarray", "scalar"),
        ("numeric", "_frombuffer"),
    ):
        obj = _numpy_global(module, name)
        if obj is not None:
            for prefix in ("numpy.core", "numpy._core"):
                allowed[(f"{prefix}.{module}", name)] = obj
    return allowed


def _codecs_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # What Python 3 protocol-2 pickles call to rebuild `bytes`; a pure function, safe to allow.
    return obj.encode(encoding, errors)


def _empty_bytes() -> bytes:
    # Protocol-2 pickles spell b"" as a call to bytes(); only the no-argument form is allowed.
    return b""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10 batches only.

    Unpickling can run arbitrary code, and pickles are accepted here solely because CIFAR-10 ships as Python
    pickles. Only the globals needed to rebuild dicts of NumPy arrays are allowed; anything else is refused.
    """

    def find_class(self, module: str, name: str) -> object:
        obj = _pickle_allowed().get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR-10 batch")
        return obj


def _cifar_batch(ds: str, label: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # a malformed pickle can raise almost anything; all mean "not a batch"
        raise DataError(
            f"{ds}: {label}: not a CIFAR-10 python batch ({type(e).__name__}: {e})",
            hint="expected data_batch_1..5 / test_batch from cifar-10-python.tar.gz",
        ) from e
    if not isinstance(obj, dict):
        raise DataError(f"{ds}: {label}: not a CIFAR-10 python batch (a {type(obj).__name__}, not a dict)")
    entries = {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}
    if "data" not in entries or "labels" not in entries:
        raise DataError(
            f"{ds}: {label}: not a CIFAR-10 python batch (keys {sorted(entries)}, expected data and labels)"
        )
    data = np.asarray(entries["data"])
    labels = np.asarray(entries["labels"])
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels.shape != (data.shape[0],)
    ):
        raise DataError(
            f"{ds}: {label}: expected data u8[n, 3072] and n labels, found data "
            f"{_dtype_name(data.dtype)}{list(data.shape)} and {labels.shape[0] if labels.ndim else 0} "
            "labels"
        )
    return data, labels.astype(np.int32)


_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def _cifar10(rng: np.random.Generator, path: Path, subset: str | None) -> dict[str, np.ndarray]:
    ds = "cifar10"
    _need_exists(ds, path)
    wanted = (*_CIFAR_TRAIN, "test_batch")
    blobs: dict[str, bytes] = {}
    if path.is_file() and not tarfile.is_tarfile(path):
        # One batch file: loaded whatever its name, subset does not apply.
        names: tuple[str, ...] = (path.name,)
        blobs[path.name] = _read_bytes(ds, path)
    else:
        if path.is_dir():
            if (path / "cifar-10-batches-py").is_dir():
                path = path / "cifar-10-batches-py"
            blobs = {n: _read_bytes(ds, path / n) for n in wanted if (path / n).is_file()}
        else:
            # The downloaded cifar-10-python.tar.gz is read in place, without unpacking it to disk.
            # Streamed through the capped reader, so a compressed bomb stops at the data-size limit.
            try:
                with _open_data(ds, path) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                    for member in tar:
                        base = member.name.rsplit("/", 1)[-1]
                        f = tar.extractfile(member) if member.isfile() and base in wanted else None
                        if f is not None:
                            blobs[base] = f.read()
            except tarfile.TarError as e:
                raise DataError(f"{ds}: {path.name}: unreadable tar archive ({e})") from e
        train_names = tuple(n for n in _CIFAR_TRAIN if n in blobs)
        if subset is None:
            subset = "train" if train_names else "test"
        names = train_names if subset == "train" else tuple(n for n in ("test_batch",) if n in blobs)
        if not names:
            want = "data_batch_1..5" if subset == "train" else "test_batch"
            raise DataError(
                f"{ds}: no {want} in {path}",
                hint="point at the cifar-10-batches-py folder, the .tar.gz, or one batch file",
                kind="file error",
            )
    parts = [_cifar_batch(ds, n, blobs[n]) for n in names]
    data = np.concatenate([p[0] for p in parts])
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32, order="C")
    x /= np.float32(255.0)
    return {"x": x, "y": np.concatenate([p[1] for p in parts]), CLASS_NAMES: np.array(CIFAR10_CLASSES)}


# --------------------------------------------------------------------------------------------------------------
# The registry

_SUBSET = Param(
    "subset",
    "str",
    None,
    "train or test files; default train when present, else test",
    positional=False,
    choices=("train", "test"),
)

DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(
    {
        info.name: info
        for info in (
            DatasetInfo(
                "digits",
                _digits,
                (Param("image", "bool", False, "x as f32[n, 8, 8, 1] instead of [n, 64]", positional=False),),
                "embedded",
                ("x", "y"),
                "8x8 handwritten digits (UCI, via scikit-learn): x f32[1797, 64] in [0, 1], y i32 0..9",
                classes=10,
            ),
            DatasetInfo(
                "xor",
                _xor,
                (
                    Param("n", "int", None, "sample n noisy points instead of the 4 corners", low=1),
                    Param("noise", "float", 0.1, "std of the Gaussian noise added when n is given", low=0),
                ),
                "embedded",
                ("x", "y", "t"),
                "XOR: the 4 corners of the unit square, y = x1 xor x2; with n=, n points from the corners "
                "(balanced) plus noise. t is y as f32[n, 1]",
                classes=2,
            ),
            DatasetInfo(
                "moons",
                _moons,
                (
                    Param("n", "int", 1000, "number of points", low=2),
                    Param("noise", "float", 0.1, "std of the Gaussian noise", low=0),
                ),
                "embedded",
                ("x", "y", "t"),
                "two interleaving half circles, 2 classes; t is y as f32[n, 1]",
                classes=2,
            ),
            DatasetInfo(
                "circles",
                _circles,
                (
                    Param("n", "int", 1000, "number of points", low=2),
                    Param("noise", "float", 0.05, "std of the Gaussian noise", low=0),
                    Param("factor", "float", 0.5, "inner radius / outer radius"),
                ),
                "embedded",
                ("x", "y", "t"),
                "two concentric circles, 2 classes; t is y as f32[n, 1]",
                classes=2,
            ),
            DatasetInfo(
                "spirals",
                _spirals,
                (
                    Param("classes", "int", 3, "number of spiral arms", low=1),
                    Param("n", "int", 1000, "number of points in all", low=1),
                    Param("noise", "float", 0.2, "std of the angle noise (rad)", low=0),
                ),
                "embedded",
                ("x", "y"),
                "interleaved spiral arms, one class each (CS231n)",
            ),
            DatasetInfo(
                "blobs",
                _blobs,
                (
                    Param("classes", "int", 3, "number of clusters", low=1),
                    Param("dim", "int", 2, "number of features", low=1),
                    Param("n", "int", 1000, "number of points in all", low=1),
                    Param("std", "float", 1.0, "cluster standard deviation", low=0),
                ),
                "embedded",
                ("x", "y"),
                "Gaussian clusters with centres uniform in [-10, 10]^dim",
            ),
            DatasetInfo(
                "sine",
                _sine,
                (
                    Param("n", "int", 1000, "number of points", low=1),
                    Param("noise", "float", 0.0, "std of the noise added to y", low=0),
                ),
                "embedded",
                ("x", "y"),
                "regression: x f32[n, 1] uniform in [-pi, pi], y = sin(x) f32[n, 1]",
            ),
            DatasetInfo(
                "sine_windows",
                _sine_windows,
                (
                    Param("n", "int", 1000, "number of windows", low=1),
                    Param("window", "int", 32, "values per window (T)", low=1),
                    Param("period", "float", 16.0, "steps per period of the wave", low=2),
                    Param("noise", "float", 0.05, "std of the Gaussian noise added to every value", low=0),
                ),
                "embedded",
                ("x", "t"),
                "next-value forecasting: x f32[n, window, 1] a stretch of a noisy sine at a random phase, "
                "t f32[n, 1] the value that follows it",
            ),
            DatasetInfo(
                "reversal",
                _reversal,
                (
                    Param("n", "int", 4000, "number of sequences", low=1),
                    Param("length", "int", 6, "symbols per sequence (T)", low=1),
                    Param("vocab", "int", 10, "token ids: 0 the start token, 1..vocab-1 the symbols", low=2),
                ),
                "embedded",
                ("src", "tgt_in", "tgt"),
                "sequence to sequence: src i32[n, length] random symbols, tgt the same reversed, tgt_in the "
                "decoder's input (0, then tgt without its last symbol)",
            ),
            DatasetInfo(
                "npz",
                _npz,
                (Param("path", "path", doc="an .npz archive (np.savez)"),),
                "file",
                (),
                "the named arrays of an .npz archive, one field each",
            ),
            DatasetInfo(
                "csv",
                _csv,
                (
                    Param("path", "path", doc="a CSV file with a header row"),
                    Param("target", "str", "y", "the label column"),
                    Param(
                        "delimiter",
                        "str",
                        ",",
                        'cell separator, one character ("\\t": a tab)',
                        positional=False,
                    ),
                    Param(
                        "dtype",
                        "str",
                        None,
                        "f32: the target is a regression target t f32[n, 1] (no y); i32: integer labels y, "
                        "refused otherwise; default: i32 if all integers, else f32",
                        positional=False,
                        choices=("f32", "i32"),
                    ),
                ),
                "file",
                ("x", "y"),
                "x f32[n, k]: the other numeric columns; y: the target column, i32 if all integers (text "
                "labels become indices in sorted order, their names kept for predict), else f32; with "
                "dtype=f32, t f32[n, 1] instead of y",
            ),
            DatasetInfo(
                "mnist",
                _mnist_like("mnist"),
                (Param("path", "path", doc="IDX folder or images file"), _SUBSET),
                "file",
                ("x", "y"),
                "MNIST IDX files: x f32[n, 28, 28, 1] in [0, 1], y i32 0..9",
                classes=10,
            ),
            DatasetInfo(
                "fashion_mnist",
                _mnist_like("fashion_mnist", FASHION_CLASSES),
                (Param("path", "path", doc="IDX folder or images file"), _SUBSET),
                "file",
                ("x", "y"),
                "Fashion-MNIST IDX files: x f32[n, 28, 28, 1] in [0, 1], y i32 0..9",
                classes=10,
            ),
            DatasetInfo(
                "cifar10",
                _cifar10,
                (Param("path", "path", doc="batches folder, .tar.gz or one batch"), _SUBSET),
                "file",
                ("x", "y"),
                "CIFAR-10 python batches: x f32[n, 32, 32, 3] in [0, 1], y i32 0..9",
                classes=10,
            ),
        )
    }
)


# --------------------------------------------------------------------------------------------------------------
# Matching fields to model inputs

_DTYPE_KINDS: dict[str, str] = {
    "f16": "float",
    "bf16": "float",
    "f32": "float",
    "f64": "float",
    "i8": "int",
    "i16": "int",
    "i32": "int",
    "i64": "int",
    "u8": "int",
    "u16": "int",
    "u32": "int",
    "u64": "int",
    "bool": "bool",
}


def _value_kind(dt: np.dtype) -> str:
    return "bool" if dt == np.bool_ else "float" if dt.kind == "f" else "int"


def _show_input(dtype: str, dims: tuple[int | str | None, ...]) -> str:
    shown = [("N" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(dims)]
    return f"{dtype}[{', '.join(shown)}]"


def check_fields(ds: DataSet, inputs: Mapping[str, tuple[str, tuple[int | str | None, ...]]]) -> None:
    """Check that every model input has a data field of a compatible dtype kind and shape.

    `inputs` maps input name -> (dtype string, dims); a dim is an int, or None (or a symbol name) for a free one.
    The first dim is the batch and is not compared. Extra data fields are allowed.
    """
    for name, (dtype, dims) in inputs.items():
        arr = ds.fields.get(name)
        want = _show_input(dtype, tuple(dims))
        if arr is None:
            raise DataError(
                f"the data has no field '{name}' for input {name}: {want}",
                hint=f"{_available_hint(name, ds.fields)}; rename with `data = ... as {{...}}`",
                field=name,
            )
        kind = _DTYPE_KINDS.get(dtype)
        if kind is None:
            raise DataError(f"input {name} has unknown dtype '{dtype}'", field=name)
        suggest = f"`input {name}: {_dtype_name(arr.dtype)}[{', '.join(['N', *map(str, arr.shape[1:])])}]`"
        # a field renamed by `as {x: y}` is the data's y: say so, as the mapping may be what is wrong
        source = ds.renamed.get(name)
        field = (
            f"field '{name}'"
            if source is None
            else f"the data's field '{source}', fed to {name} by `as {{...}}`,"
        )
        mapping = (
            ""
            if source is None
            else f"check the mapping: `as {{{name}: {source}}}` feeds the data's '{source}' to input {name} "
            "(it maps INPUT: FIELD); or "
        )
        if _value_kind(arr.dtype) != kind:
            raise DataError(
                f"{field} is {_dtype_name(arr.dtype)} ({_value_kind(arr.dtype)}) but input "
                f"{name} is {want} ({kind})",
                hint=f"{mapping}declare {suggest} to match the data",
                field=name,
            )
        rest = tuple(dims)[1:]
        if len(dims) != arr.ndim or any(
            isinstance(d, int) and d != s for d, s in zip(rest, arr.shape[1:], strict=False)
        ):
            per_example = math.prod(arr.shape[1:])
            hint = f"declare {suggest} to match the data"
            fixed = [d for d in rest if isinstance(d, int)]
            if rest and len(fixed) == len(rest) and math.prod(fixed) == per_example:
                hint += f", or reshape in the model: the sizes agree ({per_example} values per example)"
            raise DataError(
                f"{field} has shape {list(arr.shape)} but input {name} is {want}",
                hint=mapping + hint,
                field=name,
            )
