"""How the `specc` command starts (its console script and `python -m specc`): re-executed first where glibc's
huge-page tunable makes XLA:CPU's large buffers cheaper (malloc.py), before the front end and the CLI are imported,
so the re-execution costs an interpreter start, not their import; then `cli.main`."""

from __future__ import annotations


def run() -> None:
    from .malloc import reexec_tuned

    reexec_tuned()
    from .cli import main

    main(prog_name="specc")
