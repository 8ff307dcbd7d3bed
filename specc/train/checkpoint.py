"""Checkpoints of a training run with Orbax: the whole train state as numbered leaves plus a JSON record.

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a crash leaves either the
previous checkpoint or the new one, never half of one. PRNG keys are stored as their raw key data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


class Checkpoints:
    """The checkpoints of one run, in `directory`, named by global step; keeps the newest `keep`."""

    def __init__(self, directory: Path, keep: int = 2):
        import orbax.checkpoint as ocp

        self.directory = Path(directory).resolve()
        self._ocp = ocp
        self._mngr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=False
            ),
        )

    def latest(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, state: Any, record: dict[str, Any]) -> None:
        """Save `state` (any pytree of arrays) and a JSON-able `record` as checkpoint `step` (replacing it)."""
        ocp = self._ocp
        leaves = jax.tree.leaves(state)
        keys = {str(i): str(jax.random.key_impl(x)) for i, x in enumerate(leaves) if _is_key(x)}
        flat = {
            f"{i:05d}": np.asarray(jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)
        }
        if step in self._mngr.all_steps():
            self._mngr.delete(step)
        self._mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(flat), record=ocp.args.JsonSave({**record, "_keys": keys})
            ),
        )
        self._mngr.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state saved at `step` (default: the latest), shaped like the pytree `like`, and its record."""
        ocp = self._ocp
        step = self.latest() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        leaves, treedef = jax.tree.flatten(like)
        target = {}
        for i, x in enumerate(leaves):
            a = np.asarray(jax.random.key_data(x)) if _is_key(x) else np.asarray(x)
            target[f"{i:05d}"] = np.zeros(a.shape, a.dtype)
        got = self._mngr.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(target), record=ocp.args.JsonRestore()),
        )
        record = dict(got["record"])
        keys = record.pop("_keys", {})
        flat = got["state"]
        out = []
        for i in range(len(leaves)):
            a = np.asarray(flat[f"{i:05d}"])
            if str(i) in keys:
                # jax annotates key_bits as Array, but any array-like works
                out.append(jax.random.wrap_key_data(a, impl=keys[str(i)]))  # type: ignore[arg-type]
            else:
                out.append(a)
        return jax.tree.unflatten(treedef, out), record

    def close(self) -> None:
        self._mngr.close()


def clear(directory: Path) -> None:
    """Remove a run's old checkpoints (a fresh run must not resume from, or be confused with, an older one)."""
    directory = Path(directory)
    if directory.is_dir():
        shutil.rmtree(directory)
