"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

import specc
from specc.errors import SpecError
from specc.ir.printer import format_graph

IrDumps = Callable[..., "dict[str, str] | list[str]"]


def pytest_configure(config: pytest.Config) -> None:
    """Compiled programs go to a folder of this session's (inherited by subprocesses), never to ~/.cache."""
    folder = Path(tempfile.mkdtemp(prefix="specc-test-jax-cache-"))
    config.stash[_CACHE] = folder
    os.environ["SPECC_CACHE_DIR"] = str(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_CACHE, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


_CACHE = pytest.StashKey[Path]()


# The suite's longest files, longest first (`pytest --durations=0` on the 2-core CI machine, 2026-12-02: 119 s
# down to 24 s of test time each). xdist hands out whole files (`--dist loadfile`); started first, these leave
# the many short files to fill the workers' ends, instead of one worker running a long file alone at the end
# (longest processing time first). Files not named keep their collection order, after these.
LONGEST_FIRST = (
    "test_lowering_alternatives.py",
    "test_lower.py",
    "test_train.py",
    "test_execution.py",
    "test_encoder_decoder.py",
    "test_lecture_training.py",
    "test_distributed.py",
    "test_objectives.py",
    "test_tuning.py",
    "test_reroll.py",
    "test_export.py",
    "test_bad_input.py",
    "test_grad.py",
    "test_rundir.py",
    "test_compile.py",
    "test_compile_cache.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: a worker more than the cores (pyproject caps it at 4). The tests wait part of the time (for
    subprocesses, signals, a helper's pipe), so 3 workers kept a 2-core machine busier than 2: the suite took
    564 s instead of 631 s, at 195 % CPU."""
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files in LONGEST_FIRST's order, then the others (pyproject's `--no-loadscope-reorder` keeps this order
    in xdist's queue, which would otherwise sort files by their number of tests)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # stable: each file's tests keep their order
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def _compile_cache() -> None:
    """JAX's persistent cache on in the test process as `specc train` turns it on in its own: a model trained again
    by a later test (and its subprocesses) loads its programs from this session's folder instead of compiling them."""
    from specc.train.compile_cache import enable_compile_cache

    enable_compile_cache()


def _ir_dumps(path: Path, text: str | None = None) -> dict[str, str] | list[str]:
    """The IR dump of every model of a spec, or its error messages when it does not check."""
    try:
        spec = specc.load(path, text=text)
        return {name: format_graph(spec.graph(name)) for name in spec.program.models}
    except SpecError as e:
        return [f"{d.kind}: {d.message}" for d in e.diagnostics]


@pytest.fixture
def ir_dumps() -> IrDumps:
    return _ir_dumps
