"""Writing a composition into the response: the one place that fills RunFunctionResponse.

Requirements first (Crossplane calls again until they settle), then every desired
resource (a recipe through the memo, or the observed object kept as it is) with its
readiness, then the XR's status, its conditions and an event for each condition that
changed since the last reconcile.
"""

from __future__ import annotations

from crossplane.function import response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function.conditions import announce
from function.memo import MEMO, Built, recipe
from function.snapshot import Snapshot
from function.step import Composition, Keep


def _status(fields: dict) -> dict:
    return {"status": fields}


def respond(rsp: fnv1.RunFunctionResponse, s: Snapshot, composition: Composition) -> None:
    """Write `composition` into `rsp`."""
    for r in composition.requirements:
        response.require_resources(
            rsp,
            r.name,
            r.api_version,
            r.kind,
            match_name=r.match_name,
            match_labels=dict(r.match_labels) if r.match_labels is not None else None,
            namespace=r.namespace,
        )
    if composition.ttl is not None:
        rsp.meta.ttl.FromTimedelta(composition.ttl)
    if composition.status is None:
        return  # waiting for requirements: nothing else is known yet
    observed_ready = composition.ready_when_observed
    for key, desired in composition.resources.items():
        target = rsp.desired.resources[key]
        if isinstance(desired, Keep):
            kept = s.observed.kept(key)
            assert kept is not None  # noqa: S101 - steps keep only what is observed
            target.resource.CopyFrom(kept)
            name = s.observed.name(key)
        else:
            built = desired if isinstance(desired, Built) else MEMO.built(desired)
            target.resource.MergeFromString(built.struct)
            name = built.name
        # Ready when the observed object is this one (a re-issued Job has a new name)
        # and it reports ready for its kind.
        if s.observed.name(key) == name and (key in observed_ready or s.observed.ready(key)):
            target.ready = fnv1.READY_TRUE
    if composition.ready is not None:
        # Explicit readiness supersedes what the composed resources say (Crossplane's
        # composite reconciler): a repository is Ready by its own record.
        rsp.desired.composite.ready = fnv1.READY_TRUE if composition.ready else fnv1.READY_FALSE
    # Through the memo too: a server's status lists every user.
    status = MEMO.built(recipe(_status, dict(composition.status)))
    rsp.desired.composite.resource.MergeFromString(status.struct)
    response.set_conditions(rsp, *(c.sdk() for c in composition.conditions))
    announce(rsp, s.xr.status.conditions, composition.conditions)
