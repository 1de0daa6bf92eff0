"""The composition function: validate the input, then compose a server or a repository.

Every failure becomes a result on the XR; nothing escapes to gRPC. An invalid spec is a
FATAL result, which makes Crossplane apply nothing (and so delete nothing). Problems
with inputs that can be fixed later (a missing BSLR, a missing Secret) are conditions,
and whatever already runs is kept as it is.
"""

from __future__ import annotations

import functools
import pathlib
import traceback

import grpc
import pydantic
from crossplane.function import logging, resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from google.protobuf import struct_pb2

from function import bslr, bsls
from function.clock import Clock, system_clock
from function.models import FunctionInput, describe_error
from function.observed import Observed, normalise
from function.safe import text
from function.tenancy import InputError, tenant_namespace


def function_input(req: fnv1.RunFunctionRequest) -> FunctionInput:
    """The validated function input (all fields default when there is none)."""
    raw = req.input.SerializeToString(deterministic=True) if req.HasField("input") else b""
    parsed = _parse_input(raw)
    if isinstance(parsed, str):
        raise InputError(parsed)
    return parsed


@functools.lru_cache(maxsize=64)
def _parse_input(raw: bytes) -> FunctionInput | str:
    """Validate an input once per distinct input (one per Composition, in practice)."""
    data = normalise(resource.struct_to_dict(struct_pb2.Struct.FromString(raw)))
    try:
        return FunctionInput.model_validate(data)
    except pydantic.ValidationError as e:
        return f"invalid function input in the Composition: {describe_error(e, 'input')}"


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Serves RunFunction for BackupStorageLocationServers and -Repositories."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.log = logging.get_logger()
        self.clock = clock

    async def RunFunction(  # noqa: N802 - the gRPC method name
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None = None
    ) -> fnv1.RunFunctionResponse:
        """Compose the XR in the request."""
        return self.run(req)

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        """Compose the XR in the request (synchronously)."""
        rsp = response.to(req)
        try:
            observed = Observed(req)
            xr = observed.xr
            inp = function_input(req)
            namespace = tenant_namespace(xr)
            name = text(xr, "metadata", "name")
            log = self.log.bind(kind=text(xr, "kind"), namespace=namespace, name=name)
            kind = inp.compose
            if kind == "auto":
                kind = "repository" if text(xr, "kind") == inp.repositoryKind else "server"
            if kind == "repository":
                bslr.compose(req, rsp, observed, inp, namespace)
            else:
                bsls.compose(req, rsp, observed, inp, namespace, self.clock())
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
