"""How the `specc` command starts (its console script and `python -m specc`): re-executed first where glibc's
huge-page tunable makes XLA:CPU's large buffers cheaper (malloc.py), before the front end and the CLI are imported,
so the re-execution costs an interpreter start, not their import; then `cli.main`, with Ctrl-C raised only where
Python cannot lose it."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any


def run() -> None:
    from .malloc import reexec_tuned

    if sys.platform != "win32":
        # held from here, through a re-execution (a blocked signal stays pending across execve), until _CtrlC
        # can take it: only the first interpreter's start is left to Python's handler
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    reexec_tuned()
    try:
        _CtrlC()  # raises one that came since run() began
        from .cli import main
    except KeyboardInterrupt:
        sys.stderr.write("specc: interrupted\n")
        sys.exit(130)
    try:
        main(prog_name="specc")
    finally:
        # a Ctrl-C held as the command ends (an error right after an import): its timer, due after Python has
        # put SIGALRM's default action back, killed the process with SIGALRM (exit 142)
        if sys.platform != "win32":
            signal.setitimer(signal.ITIMER_REAL, 0)


class _CtrlC:
    """SIGINT raises KeyboardInterrupt, as Python's own handler does, but never where it is lost. Raised in a gc
    callback (JAX's `_xla_gc_callback` runs at every collection, and importing JAX collects often) or a `__del__`,
    Python printed "Exception ignored in …" and the run trained to the end, exiting 0; raised while a module was
    imported, a C extension's initialisation failed ("ImportError: Encountered an error while initializing the
    extension") or aborted the process; raised in click's parsing of the command line, click said "Aborted!" and
    exited 1. Such a Ctrl-C is held and delivered again 10 ms later (SIGALRM: no thread, as a handler that starts
    one can deadlock on threading's locks), until it lands past the import, the callback or the parsing, in the
    command, which says `specc: interrupted` and exits 130. The trainer installs its own handler while
    it runs (loop._Interrupt) and puts this one back; a Ctrl-C delivered again goes to the handler installed then."""

    def __init__(self) -> None:
        self._signum: int = signal.SIGINT  # the signal delivered again
        if sys.platform == "win32" or not _in_main_thread():
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGALRM, self._again)
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._on_unraisable
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one that came since run() began: now

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if _held_at(frame):
            self._signum = signum
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        raise KeyboardInterrupt

    def _again(self, signum: int, frame: FrameType | None) -> None:
        signal.raise_signal(self._signum)  # runs its handler now, here

    def _on_unraisable(self, unraisable: Any) -> None:
        # handlers run in the main thread only: another thread's KeyboardInterrupt is no Ctrl-C
        if issubclass(unraisable.exc_type, KeyboardInterrupt) and _in_main_thread():
            # a second SIGTERM in a run (loop.Stopped) is SIGTERM again
            self._signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        self._previous_hook(unraisable)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _held_at(frame: FrameType | None) -> bool:
    """Whether the interrupted code runs inside an import (a module's body or a C extension's initialisation) or
    in click before the command's own code (which reports a KeyboardInterrupt: cli_common.reports_spec_errors)."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        if code.co_qualname == "Context.invoke":  # click calls the command
            return False
        if code.co_name == "main" and code.co_filename.endswith(os.path.join("click", "core.py")):
            return True
        frame = frame.f_back
    return False
