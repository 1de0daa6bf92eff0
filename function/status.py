"""Readiness of composed resources and the custom conditions of the XRs.

Condition types and reasons are part of the API: docs/troubleshooting.md lists each
reason and what to do about it.
"""

from __future__ import annotations

import dataclasses

from crossplane.function import resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.resource import Condition

from function.observed import Observed
from function.safe import dig, text
from function.structs import Built

# Condition types.
REPOSITORY_READY = "RepositoryReady"
TLS_READY = "TLSReady"
USERS_SYNCED = "UsersSynced"
SERVER_AVAILABLE = "ServerAvailable"
INITIALIZED = "Initialized"


def _condition(obj: dict | None, typ: str) -> dict | None:
    conditions = dig(obj, "status", "conditions")
    for c in conditions if isinstance(conditions, list) else []:
        if isinstance(c, dict) and c.get("type") == typ:
            return c
    return None


def condition_true(obj: dict | None, typ: str) -> bool:
    """Whether the observed object has condition `typ` with status True."""
    c = _condition(obj, typ)
    return c is not None and c.get("status") == "True"


def condition_message(obj: dict | None, typ: str) -> str:
    """The message of condition `typ`, or an empty string."""
    c = _condition(obj, typ)
    return str(c.get("message", "")) if c else ""


def deployment_available(obj: dict | None) -> bool:
    """A Deployment is ready when it reports Available and has an available replica."""
    if not obj:
        return False
    available = dig(obj, "status", "availableReplicas")
    return (
        condition_true(obj, "Available") and isinstance(available, int | float) and available >= 1
    )


def job_complete(obj: dict | None) -> bool:
    """A Job is ready when it completed."""
    return condition_true(obj, "Complete")


def job_failed(obj: dict | None) -> bool:
    """A Job that gave up (backoff limit or deadline)."""
    return condition_true(obj, "Failed")


def observed_name(obj: dict | None) -> str:
    """The name of an observed object, or an empty string."""
    return text(obj, "metadata", "name")


def ready(kind: str, obj: dict | None) -> bool:
    """Readiness of a composed resource: objects without a status are ready once observed."""
    if obj is None:
        return False
    if kind == "Deployment":
        return deployment_available(obj)
    if kind == "Job":
        return job_complete(obj)
    return True


def emit(
    rsp: fnv1.RunFunctionResponse, observed: Observed, desired: dict[str, dict | Built]
) -> None:
    """Put the desired resources into the response and mark the ready ones.

    A resource is ready when the observed object has the desired name (a re-issued Job
    has a new one) and reports ready for its kind.
    """
    for key, manifest in desired.items():
        r = rsp.desired.resources[key]
        if isinstance(manifest, Built):
            r.resource.MergeFromString(manifest.struct)
            kind, name = manifest.kind, manifest.name
        else:
            resource.update(r, manifest)
            kind, name = manifest["kind"], manifest["metadata"]["name"]
        if observed.name(key) != name:
            continue
        if kind in ("Deployment", "Job") and not ready(kind, observed.get(key)):
            continue
        r.ready = fnv1.READY_TRUE


# Reasons that deserve a Warning even though their condition is True.
WARN_REASONS = frozenset({"CARegenerated", "CARolloverPending", "CARolledOver"})


def announce(rsp: fnv1.RunFunctionResponse, xr: dict, conditions: Conditions) -> None:
    """Emit a result for each condition whose status or reason changed since last time.

    The observed XR carries the conditions the previous reconcile set; a change becomes
    one Warning (something is wrong, or clients must act) or Normal result, so events
    mark transitions instead of repeating on every poll.
    """
    before = {}
    previous = dig(xr, "status", "conditions")
    for c in previous if isinstance(previous, list) else []:
        if isinstance(c, dict) and isinstance(c.get("type"), str):
            before[c["type"]] = (c.get("status"), c.get("reason"))
    for c in conditions.items:
        if before.get(c.typ) == (c.status, c.reason):
            continue
        text = f"{c.typ} is {c.status} ({c.reason}): {c.message}"
        if c.status == "False" or c.reason in WARN_REASONS:
            response.warning(rsp, text)
        else:
            response.normal(rsp, text)


@dataclasses.dataclass
class Conditions:
    """The custom conditions a call sets, in a stable order."""

    items: list[Condition] = dataclasses.field(default_factory=list)

    def set(self, typ: str, ok: bool | None, reason: str, message: str) -> None:
        """Set a condition; `ok` None means Unknown."""
        status = "Unknown" if ok is None else ("True" if ok else "False")
        self.items = [c for c in self.items if c.typ != typ]
        self.items.append(Condition(typ=typ, status=status, reason=reason, message=message))
