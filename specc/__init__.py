"""specc: a declarative model-spec compiler for deep learning (.net / YAML → checked IR → Flax/Optax, DOT).

The public API; importing it does not import JAX (lowering and training import it when used).
"""

from .errors import Diagnostic as Diagnostic
from .errors import SpecError as SpecError
from .ir.dims import Dim as Dim
from .ir.graph import Graph as Graph
from .ir.graph import Node as Node
from .ir.types import TensorType as TensorType
from .spec import Spec as Spec
from .spec import load as load
from .train.artifact import Run as Run
from .train.artifact import load_run as load_run

__version__ = "0.1.0"


def check(path: str, model: str | None = None) -> dict[str, object]:
    """Parse and check a spec file; the summary `specc check --json` prints. Raises SpecError."""
    return load(path, model).check()
