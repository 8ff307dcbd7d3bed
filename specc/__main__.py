"""`python -m specc …`: the `specc` command."""

from .cli import run

run()
