"""The persistent compilation cache: where it lives, and that a second `specc train` of a spec loads its programs
from it (JAX's own cache-hit log) instead of compiling them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from specc.train.compile_cache import cache_dir

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "specs_train" / "tiny_dropout.net"


def test_the_cache_folder_follows_the_environment() -> None:
    assert cache_dir({"SPECC_CACHE_DIR": "/x/y"}) == Path("/x/y")
    assert cache_dir({"SPECC_CACHE_DIR": ""}) is None  # set and empty: disabled
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/specc/jax")
    assert cache_dir({}) == Path.home() / ".cache" / "specc" / "jax"


def test_conftest_keeps_the_tests_cache_out_of_home() -> None:
    folder = cache_dir()
    assert folder is not None and Path.home() / ".cache" not in folder.parents


def _train(cache: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPECC_CACHE_DIR": str(cache), "JAX_DEBUG_LOG_MODULES": "jax._src.compiler"}
    return subprocess.run(
        [sys.executable, "-m", "specc.cli", "train", str(TINY), "--epochs", "1", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_second_run_of_a_spec_loads_its_programs_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _train(cache, tmp_path / "run1")
    assert first.returncode == 0, first.stderr
    assert "Persistent compilation cache hit" not in first.stderr
    assert any(cache.iterdir()), "the first run wrote nothing to the cache"
    steps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir() if "step" in p.name}
    assert steps, sorted(p.name for p in cache.iterdir())  # the train and validation steps were written
    second = _train(cache, tmp_path / "run2")
    assert second.returncode == 0, second.stderr
    # JAX writes a program only when it missed it in the cache: the steps' entries are the first run's, untouched
    # (its "Persistent compilation cache hit" log line is not always written: absent when pytest runs in one process)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir() if "step" in p.name} == steps


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")
def test_compiler_options_leave_out_what_xla_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    from specc.backend import flax as backend

    known = {"xla_cpu_use_fusion_emitters": False}
    monkeypatch.setattr(backend, "CPU_COMPILER_OPTIONS", {**known, "xla_cpu_no_such_option": True})
    assert backend.compiler_options(["conv", "relu"]) == known  # an older XLA would refuse the whole compile
    assert backend.compiler_options(["dense", "relu"]) is None  # no conv: XLA's defaults
    assert backend.compiler_options(once=True) == {**known, "xla_backend_optimization_level": 0}


@pytest.mark.parametrize(("command", "runs"), [(["train"], 1), (["sweep", "--set", "seed=0,1"], 2)])
def test_training_freezes_the_heap_while_it_trains_and_thaws_it_after(
    command: list[str], runs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is alive when a run starts is frozen (the collector's full passes during set-up skip it), and thawed
    when it ends: a sweep's next point, or a caller that trains again in the same process, still collects it."""
    import gc

    from click.testing import CliRunner

    from specc.cli import main
    from specc.train import loop

    seen: list[int] = []
    real = loop.train_and_evaluate

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.get_freeze_count())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "train_and_evaluate", spy)
    before = gc.get_freeze_count()
    args = [command[0], str(TINY), *command[1:], "--epochs", "1", "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert len(seen) == runs  # the sweep: one run per point
    assert all(n > before + 10_000 for n in seen)  # JAX, Flax, the graph: hundreds of thousands of objects
    assert gc.get_freeze_count() == before


@pytest.mark.parametrize("seed", [0, 7, -1, 2**31 - 1, 2**32 + 5])
def test_seeded_rngs_are_the_streams_of_nnx_rngs(seed: int) -> None:
    """build_module's streams come from one small program instead of three eager ones: the same keys and counters."""
    import numpy as np
    from flax import nnx

    from specc.backend.flax import seeded_rngs

    def leaves(rngs: nnx.Rngs) -> list[tuple[str, list[int]]]:
        out = []
        for x in jax.tree.leaves(nnx.state(rngs)):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                out.append((str(jax.random.key_impl(x)), np.asarray(jax.random.key_data(x)).tolist()))
            else:
                out.append((str(x.dtype), np.asarray(x).tolist()))
        return out

    made, eager = seeded_rngs(seed), nnx.Rngs(seed)
    assert leaves(made) == leaves(eager)
    assert (
        np.asarray(jax.random.key_data(made.params())).tolist()
        == np.asarray(jax.random.key_data(eager.params())).tolist()
    )  # and the next draws too
