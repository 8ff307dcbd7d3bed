"""Named instances that start from an earlier run (`T = Teacher() from "runs/Teacher"`): the run's trained
parameters and state are copied into the instance's layers, matched in order, shapes checked, before training.

Fine-tuning (with `freeze`) and a frozen teacher (in no objective) are this plus the trainer's parameter sets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..errors import SpecError
from ..source import Span
from .checkpoint import CheckpointError, Checkpoints, leaf_paths
from .rundir import CONFIG_FILE, read_run


def _owners(graph: Any, instance: str | None) -> list[Any]:
    return [
        n
        for n in graph.nodes
        if (n.params or n.state) and n.shares is None and (instance is None or n.instance == instance)
    ]


def _weights(n: Any) -> list[tuple[str, tuple[int, ...]]]:
    return [*n.params, *n.state]


def load_pretrained(graph: Any, base_dir: Path, params: Any, rest: Any) -> tuple[Any, Any, list[str]]:
    """Copy each pretrained instance's weights from its run into `params`/`rest` (nnx States of the model)."""
    if not graph.pretrained:
        return params, rest, []
    from ..backend.flax import layer_keys
    from ..backend.reroll import copy_index
    from ..spec import load

    keys, copy = layer_keys(graph), copy_index(graph)
    # a leaf path → its value, or {copy: value} for one copy of a rolled run's stacked layer
    values: dict[str, Any] = {}
    notes = []
    for inst, path, span in graph.pretrained:
        # relative to the spec's folder, like data paths; else to the working directory, where runs/ usually is
        run_dir = Path(path) if Path(path).is_absolute() else Path(base_dir) / path
        if read_run(run_dir) is None and not Path(path).is_absolute() and read_run(Path(path)) is not None:
            run_dir = Path(path)
        record = read_run(run_dir)
        if record is None:
            raise _error(f'no specc run at "{path}" ({run_dir}: no run.json)', span, "train that model first")
        try:
            src_graph = load(run_dir / record["spec"], record.get("model")).graph()
        except SpecError as e:
            raise _error(
                f'the run at "{path}" holds a spec that no longer checks: {e.diagnostics[0].message}', span
            ) from None
        except (OSError, KeyError, TypeError) as e:
            raise _error(f'the run at "{path}" is incomplete ({type(e).__name__}: {e})', span) from None
        try:
            cdir = json.loads((run_dir / CONFIG_FILE).read_text()).get("checkpoint_dir", "checkpoints")
        except (OSError, ValueError):
            cdir = "checkpoints"
        try:
            ck = Checkpoints(run_dir / cdir)
            saved = ck.restore_named()
            ck.close()
        except (CheckpointError, OSError, ValueError) as e:
            raise _error(f'cannot read the weights of the run at "{path}": {e}', span) from None
        src_keys, src_copy = layer_keys(src_graph), copy_index(src_graph)
        mine = _owners(graph, inst)
        # the run's instance of the same name (a body inside a bigger model), else the run's whole model
        theirs = _owners(src_graph, inst) or _owners(src_graph, None)
        if [_weights(n) for n in mine] != [_weights(n) for n in theirs]:
            detail = (
                f"{inst} has {len(mine)} layers with weights, the run's "
                + (f"{inst}" if _owners(src_graph, inst) else f"model {src_graph.model}")
                + f" has {len(theirs)}"
                if len(mine) != len(theirs)
                else next(
                    f"{a.name} needs {_fmt(a)}, the run's {b.name} has {_fmt(b)}"
                    for a, b in zip(mine, theirs, strict=True)
                    if _weights(a) != _weights(b)
                )
            )
            # instances are matched by name: one of another name with the same layers is surely the one meant
            wanted = [_weights(n) for n in mine]
            others = sorted({n.instance for n in src_graph.nodes if n.instance and n.instance != inst})
            alike = [a for a in others if [_weights(n) for n in _owners(src_graph, a)] == wanted]
            raise _error(
                f'{inst} cannot start from the run at "{path}": {detail}',
                span,
                f"the run's instance {alike[0]} has these layers: name this instance {alike[0]} "
                f'(`{alike[0]} = ... from "{path}"`), as the run does'
                if alike
                else f"{inst} must be the same network as the run's instance {inst} (or its whole model), layer "
                "for layer",
            )
        for a, b in zip(mine, theirs, strict=True):
            for part, names in (("params", a.params), ("rest", a.state)):
                for name, _ in names:
                    got = saved[f"{part}/layers/{src_keys[b.id]}/{name}"]
                    if b.id in src_copy:
                        got = np.asarray(got)[src_copy[b.id]]
                    where = f"layers/{keys[a.id]}/{name}"
                    if a.id in copy:
                        values.setdefault(where, {})[copy[a.id]] = got
                    else:
                        values[where] = got
        notes.append(f"{inst}: {sum(n.param_count for n in mine):,} parameters from {path}")
    return _assign(params, values), _assign(rest, values), notes


def _assign(state: Any, values: dict[str, Any]) -> Any:
    names = [p for p, _ in leaf_paths(state)]
    leaves, treedef = jax.tree.flatten(state)
    out = []
    for n, x in zip(names, leaves, strict=True):
        v = values.get(n)
        if isinstance(v, dict):  # some copies of a stacked layer
            stack = np.array(x)
            for c, got in v.items():
                stack[c] = got
            v = stack
        out.append(x if v is None else np.asarray(v, dtype=np.asarray(x).dtype))
    return jax.tree.unflatten(treedef, out)


def _fmt(n: Any) -> str:
    return " ".join(f"{k}{list(s)}" for k, s in _weights(n))


def _error(message: str, span: Span, hint: str = "") -> SpecError:
    return SpecError.one("value error", message, span, hint)
