"""The read phase: everything one call needs from its request, as typed values.

`read` turns a RunFunctionRequest into a `Snapshot`: the XR (its identity in the
tenant's namespace, its spec and what its status said before), the function input,
what each composed object reports, and the required resources Crossplane returned.
Nothing after this phase touches the request. Observed and required objects come from
the cluster and can hold any JSON in any field, so they are read through named
accessors that check each type: a field of the wrong type reads as absent, never as a
crash, and no caller walks an arbitrary path into them.

Protobuf Structs are read in place: converting a Secret or a Job with hundreds of
entries to a dict is the costliest thing a call can do, and a call needs only a few
fields of each.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import re
from collections.abc import Mapping

import pydantic
from crossplane.function import request, resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import struct_pb2

from function import names
from function.conditions import JobProgress
from function.failures import Failure
from function.kube import M, SpecError, describe_error, parse
from function.memo import MEMO
from function.models import CROSSPLANE_SPEC_FIELDS, BSLRSpec, BSLSSpec, FunctionInput
from function.tenancy import (
    CLAIM_NAME_LABEL,
    CLAIM_NAMESPACE_LABEL,
    InputError,
    tenant_name,
    tenant_namespace,
)

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
# A repository's conditions that say why it cannot be used (a server quotes them).
REPOSITORY_HEALTH = ("Initialized", "RepositoryHealthy")

# Metadata the API server owns; never sent back as desired state.
SERVER_METADATA = (
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


def _fields(value: struct_pb2.Value | None) -> Mapping[str, struct_pb2.Value]:
    """The fields of a Struct value, or none when it is not a Struct."""
    if value is None or not value.HasField("struct_value"):
        return {}
    return value.struct_value.fields


def _string(fields: Mapping[str, struct_pb2.Value], key: str) -> str:
    value = fields.get(key)
    return value.string_value if value is not None and value.HasField("string_value") else ""


def _strings(value: struct_pb2.Value | None) -> dict[str, str]:
    """A map of strings (labels, annotations, a Secret's data); other entries are skipped."""
    return {k: v.string_value for k, v in _fields(value).items() if v.HasField("string_value")}


def _condition_true(status: Mapping[str, struct_pb2.Value], typ: str) -> bool:
    conditions = status.get("conditions")
    if conditions is None or not conditions.HasField("list_value"):
        return False
    for c in conditions.list_value.values:
        fields = _fields(c)
        if _string(fields, "type") == typ:
            return _string(fields, "status") == "True"
    return False


def decode(encoded: str | None) -> bytes | None:
    """A Secret value: None when absent, b"" when it is not valid base64 (unusable)."""
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return b""


@dataclasses.dataclass(frozen=True)
class PreviousStatus:
    """What the XR's status said after the last reconcile."""

    tls_fingerprint: str  # "" unless it is 64 lowercase hex digits
    certificate_not_after: str
    conditions: Mapping[str, tuple[str, str]]  # type -> (status, reason)
    # A repository's own record, carried from call to call (REPOSITORY_STATUS): what
    # its Jobs found and applied, which outlives the Jobs themselves.
    repository: Mapping[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Composite:
    """The observed XR: who it is, what it asks for, what it said before."""

    api_version: str
    kind: str
    name: str  # metadata.name
    namespace: str  # the tenant's: the XR's own, or its claim's
    tenant: str  # what composed names derive from: the XR's name, or its claim's
    namespaced: bool  # a v2 XR; False for a legacy XR bound to a claim
    created: str  # metadata.creationTimestamp
    status: PreviousStatus
    # A BSLR's `dataprotection.bsls.dev/check-requested` annotation ("" without one).
    check_requested: str = ""


class Observed:
    """What Crossplane observed of each composed resource, by composition-resource-name."""

    def __init__(
        self, resources: Mapping[str, fnv1.Resource], adopted: Mapping[str, dict] | None = None
    ) -> None:
        self._resources = resources
        self._identity: dict[str, tuple[str, str]] = {}  # key -> (kind, name), read once
        # Secrets this XR composed before it was deleted (and re-created): their values
        # are read as if observed, so the same CA and passwords come back (see `adoptable`).
        self._adopted = adopted or {}

    def __contains__(self, key: str) -> bool:
        return key in self._resources

    def keys(self, prefix: str = "") -> list[str]:
        """The composition-resource-names observed (those starting with `prefix`)."""
        return sorted(k for k in self._resources if k.startswith(prefix))

    def _top(self, key: str) -> Mapping[str, struct_pb2.Value]:
        found = self._resources.get(key)
        return found.resource.fields if found is not None else {}

    def _kind_and_name(self, key: str) -> tuple[str, str]:
        found = self._identity.get(key)
        if found is None:
            top = self._top(key)
            found = (_string(top, "kind"), _string(_fields(top.get("metadata")), "name"))
            self._identity[key] = found
        return found

    def name(self, key: str) -> str:
        """The object's metadata.name, or "" when it is not observed."""
        return self._kind_and_name(key)[1]

    def kind(self, key: str) -> str:
        """The object's kind."""
        return self._kind_and_name(key)[0]

    def annotations(self, key: str) -> dict[str, str]:
        """The object's string annotations."""
        return _strings(_fields(self._top(key).get("metadata")).get("annotations"))

    def secret_text(self, key: str, data_key: str) -> str | None:
        """`data[data_key]` of an observed (or adopted) Secret, still base64; None when absent."""
        if key not in self._resources and key in self._adopted:
            data = self._adopted[key].get("data")
            value = data.get(data_key) if isinstance(data, dict) else None
            return value if isinstance(value, str) else None
        data = _fields(self._top(key).get("data"))
        value = data.get(data_key)
        return value.string_value if value is not None and value.HasField("string_value") else None

    def config_text(self, key: str, data_key: str) -> str | None:
        """`data[data_key]` of an observed ConfigMap; None when it or the key is absent."""
        value = _fields(self._top(key).get("data")).get(data_key) if key in self else None
        return value.string_value if value is not None and value.HasField("string_value") else None

    def adopted(self, key: str) -> bool:
        """Whether `key` is read from a Secret this XR left behind, not an observed one."""
        return key not in self._resources and key in self._adopted

    def secret(self, key: str, *data_keys: str) -> tuple[bytes, ...] | None:
        """Decoded keys of an observed Secret; None when the Secret is not observed.

        A key that is missing or not valid base64 reads as b"": the Secret is there but
        unusable, which is not the same as absent.
        """
        if key not in self._resources and key not in self._adopted:
            return None
        return tuple(decode(self.secret_text(key, k)) or b"" for k in data_keys)

    def job(self, key: str, name: str) -> JobProgress:
        """Whether the Job `name` completed, failed, or still runs (or is not there yet).

        A Job that must run again has a new name; until Crossplane observes the new one,
        the old one's status says nothing about it.
        """
        if self.name(key) != name:
            return JobProgress.RUNNING
        status = _fields(self._top(key).get("status"))
        if _condition_true(status, "Complete"):
            return JobProgress.COMPLETE
        if _condition_true(status, "Failed"):
            return JobProgress.FAILED
        return JobProgress.RUNNING

    def job_failure(self, key: str) -> Failure | None:
        """Why and when an observed Job failed, or None when it has not."""
        listed = _fields(self._top(key).get("status")).get("conditions")
        for c in (
            listed.list_value.values if listed is not None and listed.HasField("list_value") else []
        ):
            fields = _fields(c)
            if _string(fields, "type") == "Failed" and _string(fields, "status") == "True":
                when = _string(fields, "lastTransitionTime")
                try:
                    at = datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(
                        tzinfo=datetime.UTC
                    )
                except ValueError:
                    at = None
                return Failure(at, _string(fields, "reason"), _string(fields, "message"))
        return None

    def job_finished(self, key: str) -> datetime.datetime | None:
        """When an observed Job completed (completionTime) or failed; None while it runs."""
        status = _fields(self._top(key).get("status"))
        when = _string(status, "completionTime")
        if not when:
            failure = self.job_failure(key)
            return failure.at if failure is not None else None
        return parse_time(when)

    def projected_paths(self, key: str, volume: str) -> tuple[str, ...]:
        """The paths a pod template's projected volume lays out (a sync Job's identities)."""
        spec = _fields(_fields(_fields(self._top(key).get("spec")).get("template")).get("spec"))
        listed = spec.get("volumes")
        paths: list[str] = []
        for v in (
            listed.list_value.values if listed is not None and listed.HasField("list_value") else []
        ):
            fields = _fields(v)
            if _string(fields, "name") != volume:
                continue
            sources = _fields(fields.get("projected")).get("sources")
            for src in (
                sources.list_value.values if sources and sources.HasField("list_value") else []
            ):
                items = _fields(_fields(src).get("secret")).get("items")
                for item in (
                    items.list_value.values if items and items.HasField("list_value") else []
                ):
                    paths.append(_string(_fields(item), "path"))
        return tuple(paths)

    def available(self, key: str) -> bool:
        """Whether an observed Deployment reports Available with an available replica."""
        status = _fields(self._top(key).get("status"))
        replicas = status.get("availableReplicas")
        count = replicas.number_value if replicas is not None else 0
        return _condition_true(status, "Available") and count >= 1

    def ready(self, key: str) -> bool:
        """Readiness by kind: a Deployment available, a Job complete, else observed."""
        kind = self.kind(key)
        if kind == "Deployment":
            return self.available(key)
        if kind == "Job":
            return self.job(key, self.name(key)) is JobProgress.COMPLETE
        return key in self._resources

    def kept(self, key: str) -> struct_pb2.Struct | None:
        """The object as desired state, exactly as it runs: no status, no server metadata."""
        found = self._resources.get(key)
        if found is None:
            return None
        kept = struct_pb2.Struct()
        kept.CopyFrom(found.resource)
        if "status" in kept.fields:
            del kept.fields["status"]
        meta = kept.fields.get("metadata")
        if meta is not None and meta.HasField("struct_value"):
            for field in SERVER_METADATA:
                if field in meta.struct_value.fields:
                    del meta.struct_value.fields[field]
        return kept


def parse_time(when: object) -> datetime.datetime | None:
    """An RFC 3339 time as Kubernetes writes it (seconds, Z), or None."""
    if not isinstance(when, str):
        return None
    try:
        return datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def _text(obj: object, *path: str) -> str:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, str) else ""


@dataclasses.dataclass(frozen=True)
class RequiredRepository:
    """A BSLR the server names, as Crossplane returned it."""

    spec: dict
    ready: bool
    ready_message: str
    status: dict = dataclasses.field(default_factory=dict)
    tenant: str = ""  # its name, or a legacy XR's claim's: what its objects derive from
    # Why it is not Ready, in its own words: the message of a custom condition that
    # is False (Crossplane's Ready says only "Creating" when the function decides).
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class SiblingServer:
    """Another server (or this one) of the tenant."""

    name: str
    created: str
    tenant: str  # its namespace, or for a legacy XR its claim's
    repository: str  # the BSLR it names


@dataclasses.dataclass(frozen=True)
class RequiredClaim:
    """A PersistentVolumeClaim, as far as placement cares."""

    access_modes: tuple[str, ...]
    phase: str  # Pending, Bound, Lost


class Required:
    """The required resources Crossplane returned, pinned to the tenant's namespace."""

    def __init__(self, req: fnv1.RunFunctionRequest, namespace: str) -> None:
        self._req = req
        self._namespace = namespace

    def resolved(self, name: str) -> bool:
        """Whether Crossplane has answered the requirement `name` (maybe with nothing)."""
        return name in self._req.required_resources

    def one(self, name: str) -> dict | None:
        """The first answer to requirement `name`, or None; never one of another namespace.

        Defence in depth: Crossplane does not restrict a selector's namespace.
        """
        found = request.get_required_resource(self._req, name)
        if found is None or _text(found, "metadata", "namespace") not in ("", self._namespace):
            return None
        return normalise(found)  # type: ignore[return-value]

    def adoptable(self, name: str) -> dict[str, dict]:
        """Secrets that answered requirement `name` and no object controls, by name.

        What a deleted XR of the same name left behind (deleted with --cascade=orphan,
        or restored from a backup): nothing else may be taken over.
        """
        out = {}
        for obj in request.get_required_resources(self._req, name):
            if _text(obj, "kind") != "Secret":
                continue
            if _text(obj, "metadata", "namespace") not in ("", self._namespace):
                continue
            owners = (obj.get("metadata") or {}).get("ownerReferences")
            if isinstance(owners, list) and any(
                isinstance(o, dict) and o.get("controller") is True for o in owners
            ):
                continue
            out[_text(obj, "metadata", "name")] = normalise(obj)
        return out

    def claim(self, name: str) -> RequiredClaim | None:
        """The PersistentVolumeClaim that answered requirement `name`.

        Its access modes are the bound volume's (status) once bound, else those asked for.
        """
        found = self.one(name)
        if found is None:
            return None
        modes: list = []
        for part in ("status", "spec"):
            section = found.get(part)
            listed = section.get("accessModes") if isinstance(section, dict) else None
            if isinstance(listed, list) and listed:
                modes = listed
                break
        return RequiredClaim(
            tuple(m for m in modes if isinstance(m, str)), _text(found, "status", "phase")
        )

    def repository(self, name: str) -> RequiredRepository | None:
        """The BSLR that answered requirement `name`."""
        found = self.one(name)
        if found is None:
            return None
        spec = found.get("spec")
        ready, message = False, ""
        status = found.get("status")
        listed = status.get("conditions") if isinstance(status, dict) else None
        problem = ""
        for c in listed if isinstance(listed, list) else []:
            if not isinstance(c, dict):
                continue
            if c.get("type") == "Ready":
                ready, message = c.get("status") == "True", _text(c, "message")
            elif c.get("status") == "False" and c.get("type") in REPOSITORY_HEALTH and not problem:
                problem = f"{c.get('type')} is False ({_text(c, 'reason')}): {_text(c, 'message')}"
        meta = found.get("metadata") if isinstance(found.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        tenant = (
            _text(found, "metadata", "name")
            if _text(found, "metadata", "namespace")
            else labels.get(CLAIM_NAME_LABEL) or _text(found, "metadata", "name")
        )
        return RequiredRepository(
            spec if isinstance(spec, dict) else {},
            ready,
            message,
            status if isinstance(status, dict) else {},
            tenant if isinstance(tenant, str) else "",
            problem,
        )

    def servers(self, name: str) -> list[SiblingServer]:
        """Every XR that answered requirement `name`."""
        out = []
        for obj in request.get_required_resources(self._req, name):
            tenant = _text(obj, "metadata", "namespace") or _text(
                obj, "metadata", "labels", CLAIM_NAMESPACE_LABEL
            )
            out.append(
                SiblingServer(
                    name=_text(obj, "metadata", "name"),
                    created=_text(obj, "metadata", "creationTimestamp"),
                    tenant=tenant,
                    repository=_text(obj, "spec", "repositoryRef", "name"),
                )
            )
        return out


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything one call reads."""

    xr: Composite
    input: FunctionInput
    observed: Observed
    required: Required


@dataclasses.dataclass(frozen=True)
class ServerSnapshot(Snapshot):
    """A call for a BackupStorageLocationServer."""

    spec: BSLSSpec


@dataclasses.dataclass(frozen=True)
class RepositorySnapshot(Snapshot):
    """A call for a BackupStorageLocationRepository."""

    spec: BSLRSpec


def user_spec(data: object) -> object:
    """An XR's spec without the fields Crossplane writes into it (validated by Crossplane)."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in normalise(data).items() if k not in CROSSPLANE_SPEC_FIELDS}  # type: ignore[union-attr]


def _parse_input(raw: bytes) -> FunctionInput:
    data = normalise(resource.struct_to_dict(struct_pb2.Struct.FromString(raw)))
    try:
        return FunctionInput.model_validate(data)
    except pydantic.ValidationError as e:
        msg = f"invalid function input in the Composition: {describe_error(e, 'input')}"
        raise InputError(msg) from None


def _spec_data(raw: bytes) -> object:
    if not raw:
        return {}
    return user_spec(resource.struct_to_dict(struct_pb2.Value.FromString(raw).struct_value))


def _xr_spec(model: type[M], raw: bytes) -> M:
    """An XR's spec as `model`, or InputError naming the kind and every wrong field."""
    try:
        return parse(model, _spec_data(raw), "spec")
    except SpecError as e:
        kind = {
            BSLSSpec: "BackupStorageLocationServer",
            BSLRSpec: "BackupStorageLocationRepository",
        }
        msg = f"invalid {kind[model]}: {e}"
        raise InputError(msg) from None


def _required_repository_spec(raw: bytes) -> BSLRSpec:
    return parse(BSLRSpec, user_spec(json.loads(raw)), "spec")


def repository_spec(bslr: RequiredRepository) -> BSLRSpec:
    """A required BSLR's spec, validated once per distinct spec; SpecError if invalid."""
    raw = json.dumps(bslr.spec, sort_keys=True).encode()
    return MEMO.value(_required_repository_spec, raw)


def _previous(status: Mapping[str, struct_pb2.Value]) -> PreviousStatus:
    fingerprint = _string(status, "tlsFingerprint")
    conditions: dict[str, tuple[str, str]] = {}
    listed = status.get("conditions")
    if listed is not None and listed.HasField("list_value"):
        for c in listed.list_value.values:
            fields = _fields(c)
            if typ := _string(fields, "type"):
                conditions[typ] = (_string(fields, "status"), _string(fields, "reason"))
    repository = {
        key: normalise(resource.struct_to_dict(status[key].struct_value))
        if status[key].HasField("struct_value")
        else status[key].string_value
        for key in REPOSITORY_STATUS
        if key in status
        and (status[key].HasField("struct_value") or status[key].HasField("string_value"))
    }
    return PreviousStatus(
        tls_fingerprint=fingerprint if _FINGERPRINT.match(fingerprint) else "",
        certificate_not_after=_string(status, "certificateNotAfter"),
        conditions=conditions,
        repository=repository,
    )


# A new value asks for a repository check now, whatever the schedule (steps/check.py).
CHECK_REQUESTED = "dataprotection.bsls.dev/check-requested"

# The status fields of a repository that carry what its Jobs did from call to call.
REPOSITORY_STATUS = ("settings", "health", "maintenance", "passwordSecretRef", "passwordChangedAt")


def read(req: fnv1.RunFunctionRequest) -> ServerSnapshot | RepositorySnapshot:
    """The read phase. Raises InputError for an input or XR that cannot be composed."""
    raw_input = req.input.SerializeToString(deterministic=True) if req.HasField("input") else b""
    inp = MEMO.value(_parse_input, raw_input)
    fields = req.observed.composite.resource.fields
    meta = _fields(fields.get("metadata"))
    name, own_namespace = _string(meta, "name"), _string(meta, "namespace")
    labels = _strings(meta.get("labels"))
    namespace = tenant_namespace(own_namespace, labels)
    spec = fields.get("spec")
    xr = Composite(
        api_version=_string(fields, "apiVersion"),
        kind=_string(fields, "kind"),
        name=name,
        namespace=namespace,
        tenant=tenant_name(name, own_namespace, labels),
        namespaced=bool(own_namespace),
        created=_string(meta, "creationTimestamp"),
        status=_previous(_fields(fields.get("status"))),
        check_requested=_strings(meta.get("annotations")).get(CHECK_REQUESTED, "")[:253],
    )
    required = Required(req, namespace)
    raw = spec.SerializeToString(deterministic=True) if spec is not None else b""
    what = inp.compose
    if what == "auto":
        what = "repository" if xr.kind == inp.repositoryKind else "server"
    if what == "repository":
        bslr = MEMO.value(_xr_spec, BSLRSpec, raw)
        return RepositorySnapshot(xr, inp, Observed(req.observed.resources), required, bslr)
    bsls = MEMO.value(_xr_spec, BSLSSpec, raw)
    adopted = _adopted(required.adoptable(names.REQ_ADOPT), xr.tenant, bsls)
    observed = Observed(req.observed.resources, adopted)
    return ServerSnapshot(xr, inp, observed, required, bsls)


def _adopted(found: dict[str, dict], owner: str, spec: BSLSSpec) -> dict[str, dict]:
    """The Secrets a server of this name left behind, by the key they were composed under."""
    if not found:
        return {}
    by_name = {
        names.owned(owner, "tls-ca"): names.TLS_CA,
        names.owned(owner, "tls"): names.TLS_SERVER,
        names.owned(owner, "control"): names.CONTROL,
        names.owned(owner, "freshness-reader"): names.FRESHNESS_READER,
    }
    for user in spec.users:
        secret = names.credentials(owner, user.username, user.hostname)
        by_name[secret] = names.credentials_key(user.identity)
    return {by_name[n]: obj for n, obj in found.items() if n in by_name}
