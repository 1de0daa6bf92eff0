"""Reading a RunFunctionRequest: the XR, what was composed before, what was required.

Converting protobuf Structs to dicts is the costliest step of a call, so the function
converts only the parts it reads, once, on first use; hot fields (a Secret's password)
are read from the Struct directly.
"""

from __future__ import annotations

import base64
import binascii

import crossplane.function.proto.v1.run_function_pb2 as fnv1
from crossplane.function import request, resource
from google.protobuf import json_format, struct_pb2

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


def _plain(value: struct_pb2.Value) -> object:
    """A protobuf Value as plain data (a dict for a Struct)."""
    return json_format.MessageToDict(value)


class Observed:
    """Lazy, cached access to the observed and required resources of one request."""

    def __init__(self, req: fnv1.RunFunctionRequest) -> None:
        self._req = req
        self._resources: dict[str, dict | None] = {}
        self._xr: dict | None = None

    @property
    def xr(self) -> dict:
        """The observed composite resource, without its spec (see `xr_spec`)."""
        if self._xr is None:
            fields = self._req.observed.composite.resource.fields
            self._xr = {
                k: _plain(fields[k])
                for k in ("apiVersion", "kind", "metadata", "status")
                if k in fields
            }
        return self._xr

    def xr_spec_bytes(self) -> bytes:
        """The XR's spec, serialized deterministically: a cache key for its validation."""
        fields = self._req.observed.composite.resource.fields
        if "spec" not in fields:
            return b""
        return fields["spec"].SerializeToString(deterministic=True)

    def xr_spec(self) -> object:
        """The XR's spec as plain data."""
        fields = self._req.observed.composite.resource.fields
        return _plain(fields["spec"]) if "spec" in fields else {}

    def secret_value(self, key: str, data_key: str) -> str | None:
        """`data[data_key]` (still base64) of an observed Secret, read without converting it."""
        found = self._req.observed.resources.get(key)
        if found is None:
            return None
        fields = found.resource.fields
        if "data" not in fields or not fields["data"].HasField("struct_value"):
            return None
        data = fields["data"].struct_value.fields
        if data_key not in data or not data[data_key].HasField("string_value"):
            return None
        return data[data_key].string_value

    def exists(self, key: str) -> bool:
        """Whether a composed resource is observed under this composition-resource-name."""
        return key in self._req.observed.resources

    def annotations(self, key: str) -> dict[str, str]:
        """The string annotations of an observed composed resource."""
        found = self._req.observed.resources.get(key)
        if found is None or "metadata" not in found.resource.fields:
            return {}
        meta = found.resource.fields["metadata"].struct_value.fields
        if "annotations" not in meta:
            return {}
        fields = meta["annotations"].struct_value.fields
        return {k: v.string_value for k, v in fields.items() if v.HasField("string_value")}

    def secret_bytes(self, key: str, *data_keys: str) -> tuple[bytes, ...] | None:
        """Decoded keys of an observed Secret; None if it is not observed.

        A key that is missing or not valid base64 decodes to b"": the Secret is there
        but unusable, which is not the same as absent.
        """
        if not self.exists(key):
            return None
        out = []
        for data_key in data_keys:
            try:
                out.append(base64.b64decode(self.secret_value(key, data_key) or "", validate=True))
            except (binascii.Error, ValueError):
                out.append(b"")
        return tuple(out)

    def name(self, key: str) -> str:
        """The name of an observed composed resource, or an empty string."""
        found = self._req.observed.resources.get(key)
        if found is None or "metadata" not in found.resource.fields:
            return ""
        meta = found.resource.fields["metadata"].struct_value.fields
        return meta["name"].string_value if "name" in meta else ""

    def get(self, key: str) -> dict | None:
        """An observed composed resource by composition-resource-name, or None.

        Only what the function reads is converted: the name, namespace and annotations,
        the status, and a Secret's or ConfigMap's data. A Job's spec with a thousand
        volumes, or server-owned metadata such as managedFields, is never touched.
        `keep` returns the whole object.
        """
        if key not in self._resources:
            self._resources[key] = self._summary(key)
        return self._resources[key]

    def _summary(self, key: str) -> dict | None:
        found = self._req.observed.resources.get(key)
        if found is None:
            return None
        fields = found.resource.fields
        out: dict = {}
        for part in ("apiVersion", "kind", "type"):
            if part in fields:
                out[part] = fields[part].string_value
        if "metadata" in fields:
            meta = fields["metadata"].struct_value.fields
            out["metadata"] = {
                k: resource.struct_to_dict(meta[k].struct_value)
                if meta[k].HasField("struct_value")
                else meta[k].string_value
                for k in ("name", "namespace", "annotations")
                if k in meta
            }
        for part in ("status", "data"):
            if part in fields and fields[part].HasField("struct_value"):
                out[part] = resource.struct_to_dict(fields[part].struct_value)
        return out

    def keys(self, prefix: str = "") -> list[str]:
        """The composition-resource-names of everything observed (starting with `prefix`)."""
        return sorted(k for k in self._req.observed.resources if k.startswith(prefix))

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
        wrapped = self._req.observed.resources.get(key)
        if wrapped is None:
            return None
        found = resource.struct_to_dict(wrapped.resource)
        kept = {k: v for k, v in found.items() if k != "status"}
        meta = dict(found.get("metadata") or {})
        for field in _SERVER_METADATA:
            meta.pop(field, None)
        kept["metadata"] = meta
        return normalise(kept)  # type: ignore[return-value]
