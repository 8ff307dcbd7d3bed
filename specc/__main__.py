"""`python -m specc …`: the `specc` command."""

from .cli import main

main(prog_name="specc")
