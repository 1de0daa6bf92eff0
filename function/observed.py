"""Reading a RunFunctionRequest: the XR, what was composed before, what was required.

Converting protobuf Structs to dicts is the costliest step of a call, so each observed
resource is converted once, on first use.
"""

from __future__ import annotations

import crossplane.function.proto.v1.run_function_pb2 as fnv1
from crossplane.function import request, resource

# Metadata the API server owns; never sent back as desired state.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "ownerReferences",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "generateName",
)


def normalise(value: object) -> object:
    """Turn whole floats back into ints (protobuf Structs carry every number as a double)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


class Observed:
    """Lazy, cached access to the observed and required resources of one request."""

    def __init__(self, req: fnv1.RunFunctionRequest) -> None:
        self._req = req
        self._resources: dict[str, dict | None] = {}

    @property
    def xr(self) -> dict:
        """The observed composite resource."""
        return resource.struct_to_dict(self._req.observed.composite.resource)

    def get(self, key: str) -> dict | None:
        """An observed composed resource by composition-resource-name, or None."""
        if key not in self._resources:
            found = self._req.observed.resources.get(key)
            self._resources[key] = (
                resource.struct_to_dict(found.resource) if found is not None else None
            )
        return self._resources[key]

    def keys(self) -> list[str]:
        """The composition-resource-names of everything observed."""
        return list(self._req.observed.resources.keys())

    def resolved(self, name: str) -> bool:
        """Whether Crossplane has answered the requirement `name`."""
        return name in self._req.required_resources

    def required(self, name: str) -> dict | None:
        """The first resource that answered requirement `name`, or None."""
        return request.get_required_resource(self._req, name)

    def required_all(self, name: str) -> list[dict]:
        """Every resource that answered requirement `name`."""
        return request.get_required_resources(self._req, name)

    def keep(self, key: str) -> dict | None:
        """An observed composed resource as desired state, exactly as it runs now.

        Used when an input the resource depends on is missing or invalid: returning the
        observed object keeps it (Crossplane deletes what a function leaves out) without
        changing it. Status and server-owned metadata are dropped.
        """
        found = self.get(key)
        if found is None:
            return None
        kept = {k: v for k, v in found.items() if k != "status"}
        meta = dict(found.get("metadata") or {})
        for field in _SERVER_METADATA:
            meta.pop(field, None)
        kept["metadata"] = meta
        return normalise(kept)  # type: ignore[return-value]
