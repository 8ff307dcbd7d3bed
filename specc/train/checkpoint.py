"""Checkpoints of a training run with Orbax: the train state under its named paths plus a JSON record.

Leaves are stored by their pytree path (`params/layers/c1/kernel`, `rest/layers/bn/mean`,
`opt/0/trace/layers/c1/kernel`), so a checkpoint reads without the trainer's private pytree. Orbax writes each
checkpoint into a temporary folder and renames it when complete, so a crash leaves either the previous checkpoint or
the new one, never half of one. PRNG keys are stored as their raw key data. A checkpoint that cannot be read
(truncated, bit-flipped, a missing part) is a CheckpointError naming the step and the reason, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .io import import_module

# orbax names a step folder by its number; its temporary folders carry this marker until they are renamed
_STEP_DIR = re.compile(r"^\d+$")
_TMP_MARK = ".orbax-checkpoint-tmp"
_STEP_METADATA = "_CHECKPOINT_METADATA"  # the file Orbax writes into every step folder it finishes


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read: `step` (None: the folder as a whole) and why."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.message = message
        self.step = step


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def leaf_paths(tree: Any) -> list[tuple[str, Any]]:
    """(path, leaf) pairs in flatten order; the path joins the pytree keys with '/' (`params/layers/c1/kernel`).

    nnx Variables flatten to a trailing `.value`, which adds nothing to a name and is dropped.
    """
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = [_key_name(k) for k in path]
        if len(parts) > 1 and parts[-1] == "value":
            parts.pop()
        out.append(("/".join(parts), leaf))
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, v in flat.items():
        node = root
        parts = path.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return root


def _flatten(nested: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(nested, dict):
        return {prefix: nested}
    out: dict[str, Any] = {}
    for k, v in nested.items():
        out.update(_flatten(v, f"{prefix}/{k}" if prefix else str(k)))
    return out


def _host(x: Any) -> np.ndarray:
    return np.asarray(jax.random.key_data(x)) if _is_key(x) else np.asarray(x)


class Checkpoints:
    """The checkpoints of one run, in `directory`, named by global step; keeps the newest `keep`."""

    def __init__(self, directory: Path, keep: int = 2):
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._manager: Any = None

    @property
    def _ocp(self) -> Any:
        return import_module("orbax.checkpoint")

    @property
    def _mngr(self) -> Any:
        """Orbax's manager, made on first use: importing Orbax costs ~0.8 s, and a fresh run saves only at the end."""
        if self._manager is None:
            ocp = self._ocp
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=self.keep, create=True, enable_async_checkpointing=False
                ),
            )
        return self._manager

    def steps(self) -> list[int]:
        return sorted(self._mngr.all_steps())

    def latest(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, state: Any, record: dict[str, Any]) -> None:
        """Save `state` (any pytree of arrays) and a JSON-able `record` as checkpoint `step` (replacing it).

        Raises CheckpointError when the disk refuses (full, read-only); the previous checkpoint stays whole.
        """
        ocp = self._ocp
        named = leaf_paths(state)
        keys = {p: str(jax.random.key_impl(x)) for p, x in named if _is_key(x)}
        tree = _nest({p: _host(x) for p, x in named})
        try:
            if step in self._mngr.all_steps():
                self._mngr.delete(step)
            self._mngr.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(tree), record=ocp.args.JsonSave({**record, "_keys": keys})
                ),
            )
            self._mngr.wait_until_finished()
        except (OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"could not save checkpoint {step} in {self.directory}: {_reason(e)}", step
            ) from None

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state saved at `step` (default: the latest), shaped like the pytree `like`, and its record.

        Raises CheckpointError when the checkpoint is missing, unreadable, or holds other leaves than `like`.
        """
        ocp = self._ocp
        step = self.latest() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        named = leaf_paths(like)
        target = _nest({p: np.zeros(_host(x).shape, _host(x).dtype) for p, x in named})
        try:
            got = self._mngr.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), record=ocp.args.JsonRestore()
                ),
            )
            record = dict(got["record"])
            flat = _flatten(dict(got["state"]))
        except Exception as e:  # orbax, tensorstore and json raise many kinds for a damaged folder
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} is unreadable: {_reason(e)}", step
            ) from None
        keys = record.pop("_keys", {})
        out = []
        for p, x in named:
            if p not in flat:
                raise CheckpointError(f"checkpoint {step} in {self.directory} has no value '{p}'", step)
            a = np.asarray(flat[p])
            want = _host(x)
            if a.shape != want.shape or a.dtype != want.dtype:
                raise CheckpointError(
                    f"checkpoint {step}: '{p}' is {a.dtype}{list(a.shape)}, the model needs "
                    f"{want.dtype}{list(want.shape)}",
                    step,
                )
            if p in keys:
                # jax annotates key_bits as Array, but any array-like works
                out.append(jax.random.wrap_key_data(a, impl=keys[p]))  # type: ignore[arg-type]
            else:
                out.append(a)
        return jax.tree.unflatten(jax.tree.structure(like), out), record

    def restore_named(self, step: int | None = None) -> dict[str, np.ndarray]:
        """Every leaf of a checkpoint by its path name (`params/layers/c1/kernel`), without the trainer's
        pytree: for loading a run's weights into another model."""
        ocp = self._ocp
        step = self.latest() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            got = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
            return {k: np.asarray(v) for k, v in _flatten(dict(got["state"])).items()}
        except Exception as e:  # a damaged folder raises many kinds
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} is unreadable: {_reason(e)}", step
            ) from None

    def restore_leaves(self, step: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
        """Every leaf of checkpoint `step` (default: the latest) by its path, without the trainer's pytree,
        its record (with `_keys`: path → PRNG impl for key leaves) and the step. Raises CheckpointError."""
        ocp = self._ocp
        step = self.latest() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            got = self._mngr.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(), record=ocp.args.JsonRestore()),
            )
            flat = {p: np.asarray(v) for p, v in _flatten(dict(got["state"])).items()}
            return flat, dict(got["record"]), step
        except Exception as e:  # see restore
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} is unreadable: {_reason(e)}", step
            ) from None

    def restore_newest_readable(self, like: Any) -> tuple[Any, dict[str, Any], list[str]]:
        """Restore the newest checkpoint that reads; notes say which newer ones were skipped and why."""
        notes: list[str] = []
        errors: list[CheckpointError] = []
        for step in reversed(self.steps()):
            try:
                state, record = self.restore(like, step)
            except CheckpointError as e:
                errors.append(e)
                notes.append(f"skipped {e.message}")
                continue
            return state, record, notes
        if errors:
            raise errors[0]
        raise CheckpointError(f"no checkpoint in {self.directory}")

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, json.JSONDecodeError):
        return f"its record is not valid JSON ({e.msg})"
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__


def has_steps(directory: Path) -> bool:
    """Whether `directory` holds a finished step folder (a run with no best epoch leaves `best/` empty)."""
    directory = Path(directory)
    return directory.is_dir() and any(
        _STEP_DIR.match(c.name) and c.is_dir() and not c.is_symlink() for c in directory.iterdir()
    )


def is_orbax_step(folder: Path) -> bool:
    """Whether `folder` is a step folder Orbax wrote: named by its step and holding the `_CHECKPOINT_METADATA` it
    writes in every step (or still empty), or one of its temporaries (`3.orbax-checkpoint-tmp-...`). A user's
    folder that merely has a number for a name is not one, and is never deleted."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if _TMP_MARK in folder.name and _STEP_DIR.match(folder.name.split(".")[0]):
        return True
    if not _STEP_DIR.match(folder.name):
        return False
    marker = folder / _STEP_METADATA
    return (marker.is_file() and not marker.is_symlink()) or not any(folder.iterdir())


def _entries(directory: Path) -> list[Path]:
    """What a checkpoint folder holds, sorted; nothing when it is missing or a symbolic link (never followed)."""
    directory = Path(directory)
    if not directory.is_dir() or directory.is_symlink():
        return []
    return sorted(directory.iterdir())


def orbax_steps(directory: Path) -> list[Path]:
    """The step folders Orbax wrote in `directory` (and its unfinished temporaries), nothing else."""
    return [c for c in _entries(directory) if is_orbax_step(c)]


def foreign_steps(directory: Path) -> list[Path]:
    """What in `directory` has a step's name (a number) but is not a step folder Orbax wrote: Orbax would take it
    for a checkpoint (and then skip saving the steps before it), and specc may not delete it."""
    return [c for c in _entries(directory) if _STEP_DIR.match(c.name) and not is_orbax_step(c)]


def remove_unfinished(directory: Path) -> None:
    """Remove the temporaries of saves Orbax never finished in `directory` (`88.orbax-checkpoint-tmp`): a run
    killed while it saved (SIGKILL, the machine lost) leaves one, which Orbax skips but does not delete (a
    model's size each, one more for every save so killed), and which it warned of when the step was saved again.
    Call it only where no other process can be saving into `directory` (a resumed run holding its folder)."""
    import shutil

    for step in orbax_steps(directory):
        if _TMP_MARK in step.name:
            shutil.rmtree(step)


def remove_steps(directory: Path) -> None:
    """Remove the step folders Orbax wrote in `directory` (and its unfinished temporaries); nothing else."""
    import shutil

    for step in orbax_steps(directory):
        shutil.rmtree(step)
