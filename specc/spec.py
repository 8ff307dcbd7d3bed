"""The public handle on a spec file: load, check, and (lazily, importing JAX) lower, train and draw."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .frontend.load import Program, load_program
from .ir.build import build_graph
from .ir.graph import Graph
from .passes.count import total_flops


@dataclass
class Spec:
    """A loaded spec: its program (all models, blocks, train sections) and checked graphs on demand.

    Args:
        program: the parsed file with its imports.
        model: the model used when a method is given none (default: the file's last model).
    """

    program: Program
    model: str | None = None
    _graphs: dict[str | None, Graph] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        return self.program.path

    def graph(self, model: str | None = None) -> Graph:
        """The checked, typed IR of one model; raises SpecError with every problem found."""
        key = model or self.model
        if key not in self._graphs:
            self._graphs[key] = build_graph(self.program, key)
        return self._graphs[key]

    def check(self, model: str | None = None) -> dict[str, Any]:
        """The summary `specc check --json` prints."""
        g = self.graph(model)
        return {
            "model": g.model,
            "inputs": {k: str(g.nodes[v].type) for k, v in g.inputs},
            "outputs": {k: str(g.type_of(r)) for k, r in g.outputs},
            "total_params": g.total_params,
            "total_state": g.total_state,
            "flops_per_example": total_flops(g),
        }

    def to_dot(self, model: str | None = None, **options: Any) -> str:
        from .backend.dot import DotOptions, to_dot

        return to_dot(self.graph(model), DotOptions(**options))

    def _repr_svg_(self) -> str | None:  # notebooks display a spec as its graph
        import shutil
        import subprocess

        if shutil.which("dot") is None:
            return None
        out = subprocess.run(["dot", "-Tsvg"], input=self.to_dot().encode(), capture_output=True, check=False)
        return out.stdout.decode() if out.returncode == 0 else None

    def build(self, rngs: Any = None, model: str | None = None, **kwargs: Any) -> Any:
        """The model as an ordinary flax.nnx.Module (imports JAX); `rngs` an nnx.Rngs, or an int seed."""
        from flax import nnx

        from .backend.flax import build_module

        if isinstance(rngs, int) and not isinstance(rngs, bool):
            rngs, kwargs = None, {**kwargs, "seed": rngs}
        elif rngs is not None and not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"build(rngs=...) takes an nnx.Rngs or an int seed, got {type(rngs).__name__}")
        return build_module(self.graph(model), rngs=rngs, **kwargs)

    def dumps(self, model: str | None = None) -> str:
        return json.dumps(self.check(model), indent=2)


def load(
    path: str | Path, model: str | None = None, text: str | None = None, keep_going: bool = False
) -> Spec:
    """Read and parse a .net or .yaml spec (and its imports). Raises SpecError on syntax or import errors, and on
    a name defined twice unless `keep_going` (then `check_spec` reports it with the rest of the file's problems)."""
    return Spec(load_program(path, text, keep_going), model)
