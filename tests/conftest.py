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


# XLA:CPU's LLVM loop emitters, which specc itself compiles conv models and initialisers with, unless XLA_FLAGS
# says otherwise: the suite is mostly compiling small programs, and these compile them in about half the time of
# the fusion emitters, at about the same step times (docs/benchmarks.md). Measured on 2 cores: test_lower.py and
# test_reroll.py 145-151 s of CPU -> 127 s; the lowering, encoder-decoder, lecture and objective files 329 -> 279 s
# (190 -> 162 s wall); the files that mostly run `specc train` in subprocesses, unchanged.
# specc's own per-model choices (backend/flax.py's compiler_options) still apply over it.
SUITE_XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


def pytest_configure(config: pytest.Config) -> None:
    """Compiled programs go to a folder of this session's (inherited by subprocesses), never to ~/.cache; XLA
    compiles with SUITE_XLA_FLAG (set before any test starts JAX's CPU client, also inherited)."""
    folder = Path(tempfile.mkdtemp(prefix="specc-test-jax-cache-"))
    config.stash[_CACHE] = folder
    os.environ["SPECC_CACHE_DIR"] = str(folder)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SUITE_XLA_FLAG}".strip()


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
