"""The function's entry point: the SDK's standard options, then serve until stopped.

A start-up failure (a port already in use, unreadable TLS certificates) exits non-zero
with the reason, so a crash-looping pod says why instead of exiting 0.
"""

from __future__ import annotations

import sys

import click
from crossplane.function import cli as sdkcli
from crossplane.function import logging, runtime

from function import fn

MB = 1024 * 1024


@click.command()
@sdkcli.standard_options
def cli(
    *,
    debug: bool,
    address: str,
    tls_certs_dir: str | None,
    insecure: bool,
    max_recv_message_size: int,
    max_send_message_size: int | None,
) -> None:
    """Serve function-bsls over gRPC."""
    logging.configure(level=logging.Level.DEBUG if debug else logging.Level.INFO)
    options = [
        ("grpc.max_receive_message_length", max_recv_message_size * MB),
        ("grpc.max_send_message_length", (max_send_message_size or max_recv_message_size) * MB),
        # gRPC shares ports by default (SO_REUSEPORT): a second copy would start "fine"
        # on a port that is already taken and never receive a call. Fail instead.
        ("grpc.so_reuseport", 0),
    ]
    try:
        runtime.serve(
            fn.FunctionRunner(),
            address,
            creds=runtime.load_credentials(tls_certs_dir),
            insecure=insecure,
            options=options,
        )
    except Exception as e:  # report any start-up failure, then exit non-zero
        click.echo(f"function-bsls could not start: {type(e).__name__}: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()
