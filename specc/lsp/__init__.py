"""`specc lsp`: the checker as a language server for editors (diagnostics, hover, completion, definition).

This module holds only the command; the server (pygls, an optional dependency: `pip install 'specc[lsp]'`) is
imported when the command runs, so `specc --help` stays fast and works without it.
"""

from __future__ import annotations

import click


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise click.BadParameter(f"expected HOST:PORT, e.g. 127.0.0.1:2087, got {value!r}")
    return f"{host or '127.0.0.1'}:{port}"


@click.command()
@click.option(
    "--tcp", metavar="HOST:PORT", callback=_address, help="Listen on TCP instead of stdio (debugging)."
)
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout: the default (some clients pass it).")
def lsp(tcp: str | None, stdio: bool) -> None:
    """Run the language server on stdio: diagnostics as you type, hover shapes, completion, definitions."""
    if tcp and stdio:
        raise click.UsageError("--tcp and --stdio exclude each other")
    try:
        from .server import serve
    except ImportError as e:
        raise click.UsageError(
            f"specc lsp needs pygls ({e}); install it with: pip install 'specc[lsp]'"
        ) from None
    serve(tcp)
