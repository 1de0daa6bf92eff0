"""The composition function: read the request, compose a server or a repository, answer.

Every failure becomes a result on the XR; nothing escapes to gRPC. An invalid input or
spec is a FATAL result, which makes Crossplane apply nothing (and so delete nothing).
Problems with inputs that can be fixed later (a missing BSLR, a missing Secret) are
conditions, and whatever already runs is kept as it is.
"""

from __future__ import annotations

import pathlib
import traceback

import grpc
from crossplane.function import logging, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from function import bslr, bsls
from function.clock import Clock, system_clock
from function.entropy import Entropy, system_entropy
from function.respond import respond
from function.snapshot import RepositorySnapshot, read
from function.tenancy import InputError


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Serves RunFunction for BackupStorageLocationServers and -Repositories."""

    def __init__(self, clock: Clock = system_clock, entropy: Entropy = system_entropy) -> None:
        self.log = logging.get_logger()
        self.clock = clock
        self.entropy = entropy

    async def RunFunction(  # noqa: N802 - the gRPC method name
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None = None
    ) -> fnv1.RunFunctionResponse:
        """Compose the XR in the request."""
        return self.run(req)

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        """Compose the XR in the request (synchronously)."""
        rsp = response.to(req)
        try:
            s = read(req)
            if isinstance(s, RepositorySnapshot):
                composition = bslr.compose(s, self.clock())
            else:
                composition = bsls.compose(s, self.clock(), self.entropy)
            respond(rsp, s, composition)
            log = self.log.bind(kind=s.xr.kind, namespace=s.xr.namespace, name=s.xr.name)
            log.debug("composed", resources=len(rsp.desired.resources))
        except InputError as e:
            response.fatal(rsp, str(e))
        except Exception as e:  # the last line of defence: never fail the RPC
            # Where it happened and its type, not its text, which could quote a Secret.
            frame = traceback.extract_tb(e.__traceback__)[-1]
            self.log.error(
                "unexpected error",
                error=type(e).__name__,
                at=f"{pathlib.Path(frame.filename).name}:{frame.lineno} in {frame.name}",
            )
            response.fatal(
                rsp, f"function-bsls hit an unexpected error ({type(e).__name__}); see its logs"
            )
        return rsp
