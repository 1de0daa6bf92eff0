"""The floor: a function on the same SDK that only echoes the desired state.

Every Python function pays at least this per call: gRPC, parsing the request and
serializing the response. `make bench` runs it beside function-bsls with the same
requests.
"""

from __future__ import annotations

import click
from crossplane.function import cli as sdkcli
from crossplane.function import response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


class NoopRunner(grpcv1.FunctionRunnerServiceServicer):
    """Answers every call with the desired state it was given."""

    async def RunFunction(  # noqa: N802 - the gRPC method name
        self, req: fnv1.RunFunctionRequest, _: object = None
    ) -> fnv1.RunFunctionResponse:
        """Echo the desired state."""
        return response.to(req)


@click.command()
@sdkcli.standard_options
def cli(**kwargs: object) -> None:
    """Serve the no-op function."""
    sdkcli.run(NoopRunner(), **kwargs)  # type: ignore[arg-type]


if __name__ == "__main__":
    cli()
