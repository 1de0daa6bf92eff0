"""The function's entry point: the SDK's standard options, then serve until stopped.

A start-up failure (a port in use, unreadable TLS certificates) exits non-zero with the
reason, so a crash-looping pod says why instead of exiting 0.
"""

from __future__ import annotations

import sys

import click
from crossplane.function import cli as sdkcli

from function import fn


@click.command()
@sdkcli.standard_options
def cli(**kwargs: object) -> None:
    """Serve function-bsls over gRPC."""
    try:
        sdkcli.run(fn.FunctionRunner(), **kwargs)  # type: ignore[arg-type]
    except Exception as e:
        click.echo(f"function-bsls could not start: {type(e).__name__}: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()
