"""Large XLA:CPU buffers in huge pages: glibc's `glibc.malloc.hugetlb=1` tunable, set by re-executing the command.

XLA:CPU allocates each program call's temporary buffer afresh and frees it when the call ends. glibc serves a
buffer over its mmap threshold (at most 32 MiB) with a fresh mapping and unmaps it when it is freed, so every train
step of a model with large activations touches all of its buffer's pages for the first time again: ResNet-50 at
batch 16 on 2 devices took 575,000 page faults and 0.9 s of system time a step (4.2 s a step). Where the kernel
gives transparent huge pages on request only (`madvise`, Debian's and Ubuntu's default), `glibc.malloc.hugetlb=1`
has malloc request them: 2,300 faults, 0.33 s, 3.9 s a step; ResNet-18 1.50 → 1.39 s (docs/benchmarks.md). The
suite's MNIST-sized models, whose buffers stay under the threshold, ran as before, and so did `specc train
specs/digits_mlp.net` as a whole (time and peak memory).

glibc reads its tunables once, when the process starts, so `specc` re-executes itself with the tunable added before
it does anything else, for the commands that run XLA programs. `SPECC_MALLOC=keep`, or a GLIBC_TUNABLES that already
names the tunable, leaves the process as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb"
# glibc 2.35 added the tunable
GLIBC_SINCE = (2, 35)
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
# the subcommands that compile and run XLA programs
XLA_COMMANDS = frozenset({"train", "sweep", "evaluate", "predict", "export", "compile", "plot"})


def thp_mode(path: Path = THP_MODE) -> str | None:
    """The kernel's transparent huge page mode ("always", "madvise", "never"), None where unknown."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def glibc_version() -> tuple[int, ...] | None:
    """The C library's version where it is glibc ("glibc 2.36" → (2, 36)), else None."""
    try:
        lib, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (ValueError, OSError, AttributeError):  # not a GNU system
        return None
    try:
        return tuple(int(p) for p in version.split(".")) if lib == "glibc" else None
    except ValueError:
        return None


def tuned_environment(
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
    thp: str | None,
    glibc: tuple[int, ...] | None,
) -> dict[str, str] | None:
    """The environment to re-execute `argv` (sys.argv: the program, then the subcommand and its arguments; None:
    any program) in, or None to run as it is: not Linux's glibc ≥ 2.35, transparent huge pages not `madvise`, a
    subcommand that runs no XLA program (check, dot, fmt, …: they start fast and allocate little),
    SPECC_MALLOC=keep, or the tunable already given."""
    if glibc is None or glibc < GLIBC_SINCE or thp != "madvise" or environ.get("SPECC_MALLOC") == "keep":
        return None
    command = None if argv is None else next((a for a in argv[1:] if not a.startswith("-")), None)
    if argv is not None and command not in XLA_COMMANDS:
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables:
        return None
    env = dict(environ)
    env["GLIBC_TUNABLES"] = f"{tunables}:{TUNABLE}=1" if tunables else f"{TUNABLE}=1"
    return env


def train_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment a `specc train` started in `environ` runs in (the bench's processes that stand for it)."""
    tuned = tuned_environment(("specc", "train"), environ, thp_mode(), glibc_version())
    return dict(environ) if tuned is None else tuned


def huge_pages_on(environ: Mapping[str, str] = os.environ, thp: str | None = None) -> bool:
    """Whether this process's malloc gets huge pages, for the start banner: the tunable 2 (hugetlbfs pages), or 1
    where the kernel's transparent huge pages (`thp`, default: read) are not off."""
    for item in environ.get("GLIBC_TUNABLES", "").split(":"):
        name, _, value = item.partition("=")
        if name == TUNABLE:
            return value == "2" or (value == "1" and (thp or thp_mode()) in ("always", "madvise"))
    return False


def reexec_tuned(always: bool = False) -> None:
    """Re-execute this process with the tunable (`tuned_environment`; `always`: whatever its arguments, for a
    bench script); returns only where nothing is to change or the re-execution fails (then it runs as it is)."""
    if sys.platform != "linux" or getattr(sys, "frozen", False) or not getattr(sys, "orig_argv", None):
        return
    if not sys.executable:
        return
    env = tuned_environment(None if always else sys.argv, os.environ, thp_mode(), glibc_version())
    if env is None:
        return
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError:
        return
