"""specc: a declarative model-spec compiler for deep learning (.net / YAML → checked IR → Flax/Optax, DOT).

The public API; importing it does not import JAX (lowering and training import it when used).
"""

from typing import Any

from .errors import Diagnostic as Diagnostic
from .errors import SpecError as SpecError
from .ir.dims import Dim as Dim
from .ir.graph import Graph as Graph
from .ir.graph import Node as Node
from .ir.types import TensorType as TensorType
from .spec import Spec as Spec
from .spec import load as load

__version__ = "0.1.0"


def load_run(directory: str, checkpoint: str = "best") -> Any:
    """A trained run folder as a `specc.train.artifact.Run`: its spec, the model with the trained parameters and
    state, `predict(**inputs)` and `evaluate()`. Imports JAX (and NumPy) only when called."""
    from .train.artifact import load_run as _load_run

    return _load_run(directory, checkpoint)


def __getattr__(name: str) -> Any:
    if name == "Run":  # the class, imported on first use so `import specc` stays free of NumPy and JAX
        from .train.artifact import Run

        return Run
    raise AttributeError(f"module 'specc' has no attribute {name!r}")


def check(path: str, model: str | None = None) -> dict[str, object]:
    """Parse and check a spec file; the summary `specc check --json` prints. Raises SpecError."""
    return load(path, model).check()
