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
