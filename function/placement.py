"""Where the pods run: the platform's and the tenant's placement, and the shared claim.

Two sources set placement: the function input (`placement`, the platform engineers'
defaults for every pod) and a BSLS's `spec.placement` (the app team's, for its server
and its user-sync Jobs; a BSLR's init Job takes the platform's only). They merge so a
tenant cannot leave the platform's nodes: the platform's nodeSelector keys win, its
tolerations and image pull Secrets are kept, and the tenant adds to them; the tenant's
affinity (per kind: node, pod, pod anti-affinity) and priorityClassName replace the
platform's.

A filesystem repository lives on a PersistentVolumeClaim that the server, the user-sync
Jobs and the init Job all mount, often at the same time. A ReadWriteOnce claim can be
mounted on one node only, so every pod that mounts it carries the label
`dataprotection.bsls.dev/claim: <claim>` and a required pod affinity to pods with that
label on the same node (`kubernetes.io/hostname`). The first one may go anywhere (the
scheduler admits a pod whose affinity only it matches: interpodaffinity's
"first pod in a series"), every later one follows it, and finished Job pods do not
count (the scheduler does not see Succeeded or Failed pods).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from function.kube import DNS_SUBDOMAIN, LocalRef, ObjectName, Strict

CLAIM_LABEL = "dataprotection.bsls.dev/claim"
HOSTNAME = "kubernetes.io/hostname"
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
AFFINITY_KINDS = ("nodeAffinity", "podAffinity", "podAntiAffinity")


def _label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


class Toleration(Strict):
    """A Kubernetes toleration, as in a pod spec."""

    key: str | None = Field(default=None, max_length=317)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            msg = "operator Exists takes no value: remove value, or use operator Equal"
            raise ValueError(msg)
        if not self.key and self.operator != "Exists":
            msg = "a toleration without a key must use operator Exists (it tolerates every taint)"
            raise ValueError(msg)
        if self.key and not _label_key(self.key):
            msg = f"key {self.key!r} is not a valid taint key ([prefix/]name, as a label key)"
            raise ValueError(msg)
        if self.tolerationSeconds is not None and self.effect != "NoExecute":
            msg = "tolerationSeconds applies to effect NoExecute only"
            raise ValueError(msg)
        return self


class Placement(Strict):
    """Where pods may run: as the fields of the same name in a pod spec."""

    nodeSelector: dict[str, str] = Field(default_factory=dict, max_length=64)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    # Kubernetes validates the terms; here only the three kinds are checked.
    affinity: dict[str, object] | None = None
    priorityClassName: ObjectName | None = None
    imagePullSecrets: list[LocalRef] = Field(default_factory=list, max_length=16)

    @field_validator("nodeSelector")
    @classmethod
    def _labels(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in values.items():
            if not _label_key(key):
                msg = f"{key!r} is not a valid label key ([prefix/]name, name up to 63 characters)"
                raise ValueError(msg)
            if not _LABEL_VALUE.match(value):
                msg = f"{value!r} (for {key}) is not a valid label value (up to 63 characters)"
                raise ValueError(msg)
        return values

    @field_validator("affinity")
    @classmethod
    def _kinds(cls, value: dict[str, object] | None) -> dict[str, object] | None:
        for kind, terms in (value or {}).items():
            if kind not in AFFINITY_KINDS:
                msg = f"{kind!r} is not a kind of affinity: use {', '.join(AFFINITY_KINDS)}"
                raise ValueError(msg)
            if not isinstance(terms, dict):
                msg = f"{kind} must be an object, as in a pod spec"
                raise ValueError(msg)
        return value


@dataclasses.dataclass(frozen=True)
class PodPlacement:
    """The merged placement of one kind of pod, ready to write into its spec.

    Values are JSON text and tuples so it is hashable and pickles the same every time
    (it is part of a memo key).
    """

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: str = "[]"  # JSON
    affinity: str = "{}"  # JSON, without the claim's term
    priority_class: str | None = None
    pull_secrets: tuple[str, ...] = ()
    claim: str | None = None  # the RWO claim every pod that mounts it shares a node for

    def labels(self) -> dict[str, str]:
        """The labels the pod template carries for placement."""
        return {CLAIM_LABEL: claim_label(self.claim)} if self.claim else {}

    def apply(self, spec: dict) -> dict:
        """`spec` (a pod spec) with this placement written in."""
        out = dict(spec)
        if self.node_selector:
            out["nodeSelector"] = dict(self.node_selector)
        tolerations = json.loads(self.tolerations)
        if tolerations:
            out["tolerations"] = tolerations
        affinity = json.loads(self.affinity)
        if self.claim:
            pod_affinity = affinity.setdefault("podAffinity", {})
            required = pod_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
            required.append(
                {
                    "labelSelector": {"matchLabels": self.labels()},
                    "topologyKey": HOSTNAME,
                }
            )
        if affinity:
            out["affinity"] = affinity
        if self.priority_class:
            out["priorityClassName"] = self.priority_class
        if self.pull_secrets:
            out["imagePullSecrets"] = [{"name": n} for n in self.pull_secrets]
        return out


def claim_label(claim: str) -> str:
    """The claim's name as a label value (at most 63 characters; longer ones hashed)."""
    if len(claim) <= 63:
        return claim
    return f"{claim[:46]}-{hashlib.sha256(claim.encode()).hexdigest()[:16]}"


def merge(platform: Placement, tenant: Placement | None, claim: str | None) -> PodPlacement:
    """The platform's placement with the tenant's added as the module docstring says."""
    tenant = tenant or Placement()
    selector = {**tenant.nodeSelector, **platform.nodeSelector}
    tolerations = [t.model_dump(exclude_none=True) for t in platform.tolerations]
    tolerations += [
        t
        for t in (t.model_dump(exclude_none=True) for t in tenant.tolerations)
        if t not in tolerations
    ]
    affinity = {**(platform.affinity or {}), **(tenant.affinity or {})}
    secrets = [r.name for r in platform.imagePullSecrets]
    secrets += [r.name for r in tenant.imagePullSecrets if r.name not in secrets]
    return PodPlacement(
        node_selector=tuple(sorted(selector.items())),
        tolerations=json.dumps(tolerations, sort_keys=True),
        affinity=json.dumps(affinity, sort_keys=True),
        priority_class=tenant.priorityClassName or platform.priorityClassName,
        pull_secrets=tuple(secrets),
        claim=claim,
    )
