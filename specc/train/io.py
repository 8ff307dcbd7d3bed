"""Atomic file writes (every file specc produces appears whole or not at all, with the user's umask), and imports
from the run's threads."""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from pathlib import Path
from types import ModuleType

_IMPORTING = threading.Lock()


def import_module(name: str) -> ModuleType:
    """importlib.import_module, one thread at a time: the run's end imports Orbax and matplotlib from several
    threads (the saver, the curves), and two threads importing a package whose modules import each
    other can find it half made (ImportError: partially initialized module)."""
    with _IMPORTING:
        return importlib.import_module(name)


def write_output(path: Path, data: bytes, mode: int | None = None) -> None:
    """write_atomic to a path the user named (`-o`, an --emit folder, a file `specc fmt` rewrites): one that cannot
    be written (a folder that cannot be made, a read-only one, a device) is a usage error naming it, not a
    crash."""
    from ..errors import UsageError

    try:
        write_atomic(path, data, mode)
    except OSError as e:
        raise UsageError.of(
            f"cannot write {path}: {e.strerror or e}", "give a path in a folder you can write to"
        ) from None


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it (atomic on POSIX).

    The file gets `mode`, or what `open()` would give a new file (0o666 less the umask): mkstemp's 0600 would make
    every output private.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
