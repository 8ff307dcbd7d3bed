"""JAX's persistent compilation cache for `specc train` and `specc compile`: a second run of the same spec loads its
XLA programs from disk instead of compiling them again (seconds to the first epoch)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """$SPECC_CACHE_DIR when set (set and empty: no cache), else $XDG_CACHE_HOME/specc/jax, else ~/.cache/specc/jax."""
    chosen = environ.get("SPECC_CACHE_DIR")
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "specc" / "jax"


def enable_compile_cache(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Turn the cache on before the first compilation; returns its folder, or None when disabled or unwritable
    (then everything compiles as before: a cache is never a reason to fail). A folder the user gave JAX itself
    (JAX_COMPILATION_CACHE_DIR) is kept."""
    import jax

    given = getattr(jax.config, "jax_compilation_cache_dir", None)
    if given:
        return Path(given)
    folder = cache_dir(environ)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # JAX's default keeps only programs that took ≥ 1 s: a small model's train step (0.2-0.5 s) would compile again
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder
