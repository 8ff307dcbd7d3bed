"""specc: a declarative model-spec compiler for deep learning (.net / YAML → checked IR → Flax/Optax, DOT).

The public API; importing it does not import JAX (lowering and training import it when used).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import Diagnostic as Diagnostic
    from .errors import SpecError as SpecError
    from .ir.dims import Dim as Dim
    from .ir.graph import Graph as Graph
    from .ir.graph import Node as Node
    from .ir.types import TensorType as TensorType
    from .spec import Spec as Spec
    from .spec import load as load
    from .train.artifact import Run as Run

__version__ = "0.1.0"

# each public name's module, imported on first use: `import specc` loads neither the front end (~0.1 s) nor NumPy
# and JAX, so the `specc` command can re-execute itself before paying for them (launch.py)
_PUBLIC = {
    "Diagnostic": ".errors",
    "SpecError": ".errors",
    "Dim": ".ir.dims",
    "Graph": ".ir.graph",
    "Node": ".ir.graph",
    "TensorType": ".ir.types",
    "Spec": ".spec",
    "load": ".spec",
    "Run": ".train.artifact",
}


def load_run(directory: str, checkpoint: str = "best") -> Any:
    """A trained run folder as a `specc.train.artifact.Run`: its spec, the model with the trained parameters and
    state, `predict(**inputs)` and `evaluate()`. Imports JAX (and NumPy) only when called."""
    from .train.artifact import load_run as _load_run

    return _load_run(directory, checkpoint)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'specc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


# `Run` is left out: a star import stays free of JAX, as `import specc` is
__all__ = [*(name for name in _PUBLIC if name != "Run"), "check", "load_run"]


def check(path: str, model: str | None = None) -> dict[str, object]:
    """Parse and check a spec file; the summary `specc check --json` prints. Raises SpecError."""
    from .spec import load

    return load(path, model).check()
