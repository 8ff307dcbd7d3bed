"""`python -m specc …`: the `specc` command."""

from .launch import run

run()
