"""The echo floor: every observed composed resource returned as desired.

A function on the same SDK.
For a settled (warm) reconcile that is the same answer function-bsls gives (every
resource it composed, unchanged), with none of the work of deciding it: the least any
function must do, parse the request, build and serialize a response of the same size,
for the same answer. `make bench` runs it beside function-bsls and the no-op floor.
"""

from __future__ import annotations

import click
from crossplane.function import cli as sdkcli
from crossplane.function import response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1


class EchoRunner(grpcv1.FunctionRunnerServiceServicer):
    """Answers every call with its observed composed resources as the desired ones."""

    async def RunFunction(  # noqa: N802 - the gRPC method name
        self, req: fnv1.RunFunctionRequest, _: object = None
    ) -> fnv1.RunFunctionResponse:
        """Echo the observed composed resources."""
        rsp = response.to(req)
        for name, observed in req.observed.resources.items():
            rsp.desired.resources[name].resource.CopyFrom(observed.resource)
        return rsp


@click.command()
@sdkcli.standard_options
def cli(**kwargs: object) -> None:
    """Serve the echo function."""
    sdkcli.run(EchoRunner(), **kwargs)  # type: ignore[arg-type]


if __name__ == "__main__":
    cli()
