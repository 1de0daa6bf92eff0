"""Validated models of what the function reads: its input, the BSLS spec and the BSLR spec.

The base types (strict models, object names, Secret references, error sentences) are in
`kube.py`; the storage backends a BSLR can name are in `backends.py`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from function.backends import Backend
from function.kube import DNS_LABEL, DNS_SUBDOMAIN, LocalRef, ObjectName, SecretKeyRef, Strict
from function.placement import Placement

DEFAULT_API_VERSION = "dataprotection.bsls.dev/v1alpha1"
DEFAULT_KOPIA_IMAGE = "kopia/kopia:0.23.1"
DEFAULT_PORT = 51515
MAX_USERS = 500

# Kopia's own rule for server user names (user@host).
IDENTITY_PART = re.compile(r"^[a-z0-9\-_.]+$")
# The hostname reserved for the identities the function itself uses in the repository.
SYSTEM_HOSTNAME = "bsls-system"
# The label KubeVirt puts on every VM's pod (virt-launcher), whose IP the VM's traffic
# leaves from on the pod network.
KUBEVIRT_APP = "kubevirt.io"
IMAGE = re.compile(r"^[^\s]+$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


# ---------------------------------------------------------------------------- input


class FunctionInput(Strict):
    """The function's input (`package/input`): platform-wide settings with defaults."""

    apiVersion: str = "bsls.fn.dataprotection.bsls.dev/v1alpha1"
    kind: str = "Input"
    metadata: dict[str, object] | None = None
    kopiaImage: str = Field(default=DEFAULT_KOPIA_IMAGE, pattern=IMAGE.pattern, max_length=512)
    servicePort: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    caValidityDays: int = Field(default=3650, ge=30, le=36500)
    certificateValidityDays: int = Field(default=365, ge=2, le=3650)
    renewBeforeDays: int | None = Field(default=None, ge=1, le=3649)
    # A CA rollover: the next CA is handed to clients this many days before it signs.
    caRolloverDays: int | None = Field(default=None, ge=1, le=18249)
    repositoryApiVersion: str = Field(
        default=DEFAULT_API_VERSION, pattern=r"^[a-z0-9.-]+/[a-z0-9]+$"
    )
    # What to compose: "auto" composes a repository for an XR of repositoryKind and a
    # server for any other; the legacy (claim) Compositions say it explicitly.
    compose: Literal["auto", "server", "repository"] = "auto"
    repositoryKind: str = Field(
        default="BackupStorageLocationRepository", pattern=r"^[A-Z][A-Za-z0-9]*$"
    )
    controlUsername: str = Field(
        default="BSLS-CONTROL", pattern=r"^[A-Za-z0-9_.@-]+$", max_length=64
    )
    runAsUser: int = Field(default=65532, ge=1, le=2147483647)
    # How soon Crossplane calls again (the response TTL). Required resources (a user's
    # password Secret, the BSLR) are not watched: a change is seen at the next call.
    pollSeconds: int = Field(default=20, ge=1, le=3600)
    pollInFlightSeconds: int = Field(default=5, ge=1, le=3600)
    # Where every pod runs (nodeSelector, tolerations, ...); tenants add to it.
    placement: Placement = Field(default_factory=Placement)

    @field_validator("controlUsername")
    @classmethod
    def _control_user_not_tenant(cls, value: str) -> str:
        if "@" in value and all(IDENTITY_PART.match(p) for p in value.split("@", 1)):
            msg = (
                f"{value!r} could be a tenant identity (user@host in lowercase); "
                "use a name with an uppercase letter, such as BSLS-CONTROL"
            )
            raise ValueError(msg)
        if value.lower() == value and IDENTITY_PART.match(value):
            # A name without '@' is no tenant identity, but keep it visibly distinct.
            msg = f"{value!r} must contain an uppercase letter so no tenant can ever take it"
            raise ValueError(msg)
        return value

    @property
    def renew_before_days(self) -> int:
        """Days before expiry at which the serving certificate is re-issued."""
        if self.renewBeforeDays is not None:
            return self.renewBeforeDays
        return max(1, self.certificateValidityDays // 3)

    @property
    def ca_rollover_days(self) -> int:
        """Days a next CA is trusted by clients before it signs (a tenth of its life)."""
        if self.caRolloverDays is not None:
            return self.caRolloverDays
        return max(1, self.caValidityDays // 10)

    @model_validator(mode="after")
    def _rollover_inside_lifetime(self) -> FunctionInput:
        if self.caRolloverDays is not None and 2 * self.caRolloverDays >= self.caValidityDays:
            msg = (
                f"caRolloverDays ({self.caRolloverDays}) must be less than half of "
                f"caValidityDays ({self.caValidityDays}): the next CA is generated two "
                "rollover periods before the current one expires"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _renewal_inside_lifetime(self) -> FunctionInput:
        if (
            self.renewBeforeDays is not None
            and self.renewBeforeDays >= self.certificateValidityDays
        ):
            msg = (
                f"renewBeforeDays ({self.renewBeforeDays}) must be shorter than "
                f"certificateValidityDays ({self.certificateValidityDays})"
            )
            raise ValueError(msg)
        return self


# ---------------------------------------------------------------------------- BSLS


class User(Strict):
    """One Kopia identity `<username>@<hostname>` served by the BSLS."""

    username: str = Field(min_length=1, max_length=64)
    hostname: str = Field(min_length=1, max_length=128)
    passwordSecretRef: SecretKeyRef | None = None
    # What the identity may do with its own snapshots (function/access.py): full (add,
    # change, delete), append (add and restore; the server expires them by
    # spec.retention), restore (list and restore only).
    access: Literal["full", "append", "restore"] = "full"

    @field_validator("username", "hostname")
    @classmethod
    def _kopia_rule(cls, value: str) -> str:
        if not IDENTITY_PART.match(value):
            msg = (
                f"{value!r} does not match Kopia's rule ^[a-z0-9\\-_.]+$: "
                "use lowercase letters, digits, '-', '_' and '.'"
            )
            raise ValueError(msg)
        return value

    @field_validator("hostname")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == SYSTEM_HOSTNAME:
            msg = f"the hostname {SYSTEM_HOSTNAME!r} is reserved for the server's own identities"
            raise ValueError(msg)
        return value

    @functools.cached_property
    def identity(self) -> str:
        """The Kopia identity, `username@hostname`."""
        return f"{self.username}@{self.hostname}"


class TLSSpec(Strict):
    """Serving certificate options."""

    secretRef: LocalRef | None = None
    additionalDNSNames: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list, max_length=64
    )
    additionalIPAddresses: list[Annotated[str, Field(max_length=45)]] = Field(
        default_factory=list, max_length=64
    )

    @field_validator("additionalDNSNames")
    @classmethod
    def _dns_names(cls, values: list[str]) -> list[str]:
        for value in values:
            name = value[2:] if value.startswith("*.") else value
            if len(value) > 253 or not DNS_SUBDOMAIN.match(name):
                msg = f"{value!r} is not a DNS name (lowercase labels separated by dots)"
                raise ValueError(msg)
        return values

    @field_validator("additionalIPAddresses")
    @classmethod
    def _ip_addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                msg = f"{value!r} is not an IPv4 or IPv6 address"
                raise ValueError(msg) from None
        return values


def external_url(value: str) -> tuple[str, int]:
    """The host and port of an external URL, `https://host[:port]`; ValueError if not one."""
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme != "https":
        msg = f"{value!r} must start with https:// (kopia clients only speak TLS to a server)"
        raise ValueError(msg)
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.username:
        msg = f"{value!r} must be https://host or https://host:port, without a path"
        raise ValueError(msg)
    try:
        port = parsed.port or 443
    except ValueError:
        msg = f"{value!r} has a port that is not a number from 1 to 65535"
        raise ValueError(msg) from None
    host = parsed.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not DNS_SUBDOMAIN.match(host):
            msg = f"{value!r}: {host!r} is not a DNS name or an IP address"
            raise ValueError(msg) from None
    return host, port


class ServiceSpec(Strict):
    """How the server is exposed: the Service, and an address beyond the cluster."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int | None = Field(default=None, ge=1, le=65535)
    nodePort: int | None = Field(default=None, ge=1, le=65535)
    # For a load balancer controller (an address pool, an internal load balancer, ...).
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    # Where clients outside the cluster reach the server (a LoadBalancer's address, a
    # node's NodePort, a TLS-passthrough Route or Ingress): the leaf names its host, the
    # status and every credentials bundle hand it out.
    externalURL: str | None = Field(default=None, max_length=300)

    @field_validator("externalURL")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, port = external_url(value)
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}"  # kopia needs the port spelled out

    @model_validator(mode="after")
    def _node_port(self) -> ServiceSpec:
        if self.nodePort is not None and self.type == "ClusterIP":
            msg = "nodePort needs type NodePort or LoadBalancer"
            raise ValueError(msg)
        return self

    @property
    def external_host(self) -> str | None:
        """The host name or IP address in externalURL."""
        return external_url(self.externalURL)[0] if self.externalURL else None


class PeerSpec(Strict):
    """Who may connect, in NetworkPolicy terms."""

    podSelector: dict[str, object] | None = None
    namespaceSelector: dict[str, object] | None = None
    ipBlock: dict[str, object] | None = None


class NetworkPolicySpec(Strict):
    """The NetworkPolicy that admits clients to the Kopia port only."""

    enabled: bool = True
    # Empty means: any source may reach the Kopia port (and nothing else).
    from_: list[PeerSpec] = Field(default_factory=list, alias="from", max_length=32)
    # Shorthands, added to `from`: KubeVirt's VM pods in the namespace, and every pod of
    # the named namespaces.
    virtualMachines: bool = False
    namespaces: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list, max_length=32
    )

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            if not DNS_LABEL.match(value):
                msg = f"{value!r} is not a namespace name (a DNS label: a-z, 0-9 and '-')"
                raise ValueError(msg)
        return values

    @property
    def peers(self) -> tuple[PeerSpec, ...]:
        """Every peer admitted: `from`, then the shorthands' (none at all admits any source)."""
        out = list(self.from_)
        if self.virtualMachines:
            out.append(PeerSpec(podSelector={"matchLabels": {KUBEVIRT_APP: "virt-launcher"}}))
        if self.namespaces:
            selector = {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": list(self.namespaces),
                    }
                ]
            }
            out.append(PeerSpec(namespaceSelector=selector))
        return tuple(out)


class Resources(Strict):
    """Compute resources of the server container."""

    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None

    @field_validator("requests", "limits")
    @classmethod
    def _quantities(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        for name, quantity in (values or {}).items():
            if not QUANTITY.match(quantity):
                msg = f"{name}: {quantity!r} is not a Kubernetes quantity such as 500m or 1Gi"
                raise ValueError(msg)
        return values


class CacheVolume(Strict):
    """A volume of its own for the server's cache, instead of the pod's ephemeral storage."""

    size: str = Field(pattern=QUANTITY.pattern, max_length=32)
    storageClassName: str | None = Field(default=None, max_length=253)


class CacheSpec(Strict):
    """kopia's local cache of repository data (kopia's own default is 5,000 MB twice)."""

    sizeMB: int = Field(default=2048, ge=64, le=1_048_576)
    volume: CacheVolume | None = None


class ServerSpec(Strict):
    """Overrides for the server Deployment."""

    image: str | None = Field(default=None, pattern=IMAGE.pattern, max_length=512)
    resources: Resources | None = None
    logLevel: Literal["debug", "info", "warning", "error"] = "info"
    cache: CacheSpec = Field(default_factory=CacheSpec)


class MetricsSpec(Strict):
    """The server's Prometheus endpoint: off unless asked for."""

    enabled: bool = False
    # Who may scrape it, as NetworkPolicy peers; empty admits any source to that port.
    from_: list[PeerSpec] = Field(default_factory=list, alias="from", max_length=32)
    # Compose a Prometheus Operator PodMonitor for the server.
    podMonitor: bool = False

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _monitor_needs_metrics(self) -> MetricsSpec:
        if self.podMonitor and not self.enabled:
            msg = "podMonitor needs the endpoint: set metrics.enabled to true as well"
            raise ValueError(msg)
        return self


# Five fields of a cron schedule (or a macro such as @hourly), as a CronJob takes it.
CRON = re.compile(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$")


class RetentionSpec(Strict):
    """The retention the server enforces for users with access `append`.

    An append-only user cannot delete, and kopia's own retention is switched off for it
    (a client could defeat it by dating snapshots into the future): a CronJob of the
    server deletes its snapshots stored more than keepDays ago, past its keepLatest
    newest. Users with access full keep their own kopia policies.
    """

    keepDays: int = Field(default=30, ge=1, le=36500)
    keepLatest: int = Field(default=1, ge=0, le=100000)
    schedule: str = Field(default="17 * * * *", pattern=CRON.pattern, max_length=64)


class FreshnessSpec(Strict):
    """Per-user backup freshness on the server's status (function/steps/freshness.py).

    A CronJob of the server lists every snapshot record as `freshness@bsls-system`, an
    identity that reads snapshot records and no content, and writes one report
    ConfigMap; a user whose newest snapshot was stored more than staleAfterMinutes ago
    (or who has none) is stale.
    """

    enabled: bool = True
    # 26 hours: a daily backup, with two hours to spare.
    staleAfterMinutes: int = Field(default=1560, ge=2, le=525600)
    schedule: str = Field(default="*/10 * * * *", pattern=CRON.pattern, max_length=64)


# username@hostname, each part as kopia allows it (User).
IDENTITY_PATTERN = f"^{IDENTITY_PART.pattern[1:-1]}@{IDENTITY_PART.pattern[1:-1]}$"


class ReportedUser(Strict):
    """One identity's line of the report."""

    identity: str = Field(pattern=IDENTITY_PATTERN, max_length=193)
    lastBackup: str = Field(max_length=32)
    lastBackupBytes: int = Field(ge=0)
    snapshots: int = Field(ge=1)


class FreshnessReport(Strict):
    """What freshness.sh writes to `report.json`."""

    reportedAt: str = Field(max_length=32)
    users: list[ReportedUser] = Field(max_length=100_000)


class RepositoryRef(LocalRef):
    """The BSLR a server serves; `confirmChange` is for the API server's transition rule."""

    confirmChange: ObjectName | None = None


class BSLSSpec(Strict):
    """The spec of a BackupStorageLocationServer."""

    repositoryRef: RepositoryRef
    # Crossplane takes a function's answer up to gRPC's default 4 MiB. Each user adds a
    # credentials Secret of about 4 KiB (6 KiB with the longest identities during a CA
    # rollover): 500 users stay under 3.5 MB in the worst case (tests/test_fn.py).
    users: list[User] = Field(default_factory=list, max_length=MAX_USERS)
    tls: TLSSpec = Field(default_factory=TLSSpec)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    networkPolicy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    server: ServerSpec = Field(default_factory=ServerSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    freshness: FreshnessSpec = Field(default_factory=FreshnessSpec)
    # Where the server and its user-sync Jobs run, added to the platform's placement.
    placement: Placement = Field(default_factory=Placement)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[User]) -> list[User]:
        seen: dict[str, int] = {}
        for index, user in enumerate(users):
            if user.identity in seen:
                first = seen[user.identity]
                msg = (
                    f"entry {index} repeats the identity {user.identity!r} of entry {first}; "
                    "each username@hostname may appear once"
                )
                raise ValueError(msg)
            seen[user.identity] = index
        return users


# ---------------------------------------------------------------------------- BSLR


# kopia 0.23.1's choices, checked in its source: repo/encryption, repo/hashing,
# repo/splitter and repo/compression register them; `kopia repository create` and
# `kopia policy set` accept exactly these (plus deprecated ones left out here).
ENCRYPTIONS = ("AES256-GCM-HMAC-SHA256", "CHACHA20-POLY1305-HMAC-SHA256")
HASHES = (
    "BLAKE2B-256",
    "BLAKE2B-256-128",
    "BLAKE2S-128",
    "BLAKE2S-256",
    "BLAKE3-256",
    "BLAKE3-256-128",
    "HMAC-SHA224",
    "HMAC-SHA256",
    "HMAC-SHA256-128",
    "HMAC-SHA3-224",
    "HMAC-SHA3-256",
)
SPLITTERS = (
    "DYNAMIC",
    *(
        f"DYNAMIC-{size}-{kind}"
        for size in ("128K", "1M", "256K", "2M", "4M", "512K", "8M")
        for kind in ("BUZHASH", "RABINKARP")
    ),
    "FIXED",
    *(f"FIXED-{size}" for size in ("128K", "1M", "256K", "2M", "4M", "512K", "8M")),
)
# Not offered: lz4 (kopia 0.23 registers it only to refuse it: "LZ4 compressor is not
# supported in recent versions of kopia") and zstd-best-compression (deprecated).
COMPRESSIONS = (
    "none",
    "deflate-best-compression",
    "deflate-best-speed",
    "deflate-default",
    "gzip",
    "gzip-best-compression",
    "gzip-best-speed",
    "pgzip",
    "pgzip-best-compression",
    "pgzip-best-speed",
    "s2-better",
    "s2-default",
    "s2-parallel-4",
    "s2-parallel-8",
    "zstd",
    "zstd-better-compression",
    "zstd-fastest",
)


class ErrorCorrection(Strict):
    """Kopia's error correction (experimental in kopia 0.23): extra space per blob."""

    algorithm: Literal["REED-SOLOMON-CRC32"] = "REED-SOLOMON-CRC32"
    overheadPercent: int = Field(ge=1, le=50)


# What `kopia repository create` picks when a flag is not given (kopia 0.23.1:
# encryption.DefaultAlgorithm, hashing.DefaultAlgorithm, splitter.DefaultAlgorithm).
DEFAULT_ENCRYPTION = "AES256-GCM-HMAC-SHA256"
DEFAULT_HASH = "BLAKE2B-256-128"
DEFAULT_SPLITTER = "DYNAMIC-4M-BUZHASH"


class RepositoryFormat(Strict):
    """How the repository stores data: chosen when it is created, fixed afterwards.

    Absent fields take kopia's defaults. The init Job checks that a repository that
    already exists has exactly this format (with kopia's defaults for absent fields)
    and fails, naming the field, when it does not.
    """

    encryption: Literal[ENCRYPTIONS] | None = None  # type: ignore[valid-type]
    hash: Literal[HASHES] | None = None  # type: ignore[valid-type]
    splitter: Literal[SPLITTERS] | None = None  # type: ignore[valid-type]
    errorCorrection: ErrorCorrection | None = None

    def effective(self) -> dict[str, object]:
        """The format the repository has: these fields, kopia's defaults for the rest."""
        out: dict[str, object] = {
            "encryption": self.encryption or DEFAULT_ENCRYPTION,
            "hash": self.hash or DEFAULT_HASH,
            "splitter": self.splitter or DEFAULT_SPLITTER,
        }
        if self.errorCorrection is not None:
            out["errorCorrection"] = {
                "algorithm": self.errorCorrection.algorithm,
                "overheadPercent": self.errorCorrection.overheadPercent,
            }
        return out

    def create_flags(self) -> tuple[str, ...]:
        """The flags of `kopia repository create` (every field, defaults spelled out)."""
        fmt = self.effective()
        out = [
            f"--encryption={fmt['encryption']}",
            f"--block-hash={fmt['hash']}",
            f"--object-splitter={fmt['splitter']}",
        ]
        if self.errorCorrection is not None:
            out.append(f"--ecc={self.errorCorrection.algorithm}")
            out.append(f"--ecc-overhead-percent={self.errorCorrection.overheadPercent}")
        return tuple(out)


_KEEP = Field(ge=0, le=100_000)


class SnapshotRetention(Strict):
    """How many snapshots of each kind every source keeps (kopia's defaults)."""

    keepLatest: Annotated[int, _KEEP] = 10
    keepHourly: Annotated[int, _KEEP] = 48
    keepDaily: Annotated[int, _KEEP] = 7
    keepWeekly: Annotated[int, _KEEP] = 4
    keepMonthly: Annotated[int, _KEEP] = 24
    keepAnnual: Annotated[int, _KEEP] = 3


class GlobalPolicy(Strict):
    """The repository's global policy: the defaults every user's snapshots inherit.

    Users may set their own policies over it, but cannot change it. The repository's
    Jobs make its global policy match this whenever it changes, and at every check.
    """

    compression: Literal[COMPRESSIONS] = "none"  # type: ignore[valid-type]
    retention: SnapshotRetention = Field(default_factory=SnapshotRetention)
    # kopia's ignore rules (gitignore syntax), one per entry.
    ignore: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64
    )

    @field_validator("ignore")
    @classmethod
    def _one_line_each(cls, values: list[str]) -> list[str]:
        for value in values:
            if "\n" in value or "\r" in value or value != value.strip():
                msg = f"{value!r}: an ignore rule is one line without leading or trailing spaces"
                raise ValueError(msg)
        return values


class ObjectLock(Strict):
    """S3 object lock: every blob kopia writes is locked for `periodDays`.

    GOVERNANCE: a user with s3:BypassGovernanceRetention may still delete; COMPLIANCE:
    nobody can, not even the bucket's owner, until the period ends. The bucket must
    have been created with object lock enabled.
    """

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    periodDays: int = Field(ge=2, le=36500)


class HealthSpec(Strict):
    """The periodic check: storage reachable, repository opens, password still works."""

    validationIntervalMinutes: int = Field(default=60, ge=5, le=10080)


class MaintenanceSpec(Strict):
    """How often the repository's checks run kopia's quick and full maintenance."""

    quickIntervalMinutes: int = Field(default=60, ge=15, le=10080)
    fullIntervalHours: int = Field(default=24, ge=1, le=2160)


_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# Label prefixes the function sets itself: a cloud identity may not take them over.
_OWN_PREFIXES = ("app.kubernetes.io/", "dataprotection.bsls.dev/", "crossplane.io/")


class CloudIdentity(Strict):
    """The platform's workload identity instead of static keys, for the repository's pods.

    The function composes a ServiceAccount with these annotations and labels (for
    example `eks.amazonaws.com/role-arn` for AWS IRSA, `iam.gke.io/gcp-service-account`
    for GKE, `azure.workload.identity/client-id` for Azure) and runs every pod that
    opens the repository (its Jobs, the server, the user-sync Jobs) under it, with
    `podLabels` on those pods only (`azure.workload.identity/use: "true"`).
    """

    serviceAccountAnnotations: dict[str, str] = Field(default_factory=dict, max_length=32)
    serviceAccountLabels: dict[str, str] = Field(default_factory=dict, max_length=32)
    podLabels: dict[str, str] = Field(default_factory=dict, max_length=32)

    @field_validator("serviceAccountLabels", "podLabels")
    @classmethod
    def _labels(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in values.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                msg = f"{key}: {value!r} is not a Kubernetes label (prefix/name: value)"
                raise ValueError(msg)
            if key.startswith(_OWN_PREFIXES):
                msg = f"{key}: labels under {', '.join(_OWN_PREFIXES)} are the function's own"
                raise ValueError(msg)
        return values

    @field_validator("serviceAccountAnnotations")
    @classmethod
    def _annotations(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in values.items():
            if not _LABEL_KEY.match(key) or len(value) > 4096:
                msg = f"{key}: not an annotation key (prefix/name), or a value over 4096 bytes"
                raise ValueError(msg)
        return values


class BSLRSpec(Strict):
    """The spec of a BackupStorageLocationRepository."""

    passwordSecretRef: SecretKeyRef
    backend: Backend  # type: ignore[valid-type]
    format: RepositoryFormat = Field(default_factory=RepositoryFormat)
    policy: GlobalPolicy = Field(default_factory=GlobalPolicy)
    objectLock: ObjectLock | None = None
    health: HealthSpec = Field(default_factory=HealthSpec)
    maintenance: MaintenanceSpec = Field(default_factory=MaintenanceSpec)
    cloudIdentity: CloudIdentity | None = None

    @model_validator(mode="after")
    def _credentials(self) -> BSLRSpec:
        name = self.backend.name
        if name == "filesystem":
            if self.cloudIdentity is not None:
                msg = "cloudIdentity: a filesystem repository has no cloud storage to sign in to"
                raise ValueError(msg)
            return self
        static = self.backend.static_credentials
        if static and self.cloudIdentity is not None:
            msg = (
                f"backend.{name}.credentialsSecretRef and cloudIdentity exclude each other: "
                "static keys, or the platform's workload identity"
            )
            raise ValueError(msg)
        if not static and self.cloudIdentity is None and name != "s3":
            msg = (
                f"backend.{name}.credentialsSecretRef is required unless cloudIdentity is set "
                "(the platform's workload identity)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _object_lock(self) -> BSLRSpec:
        lock = self.objectLock
        if lock is None:
            return self
        if self.backend.name != "s3":
            msg = (
                f"objectLock: only the s3 backend has object lock in kopia 0.23 "
                f"(this repository is on {self.backend.name}); remove objectLock"
            )
            raise ValueError(msg)
        # kopia refuses a period that is not a day longer than the full maintenance
        # interval (maintenance.CheckExtendRetention): full maintenance extends the
        # locks of the blobs still in use, and must do it before they expire.
        full = self.maintenance.fullIntervalHours
        if lock.periodDays * 24 - full < 24:
            msg = (
                f"objectLock.periodDays ({lock.periodDays}) must be at least a day longer "
                f"than maintenance.fullIntervalHours ({full}): raise periodDays to "
                f"{(full + 24 + 23) // 24} or shorten the full maintenance interval"
            )
            raise ValueError(msg)
        return self


# Fields Crossplane itself writes into an XR's (or claim's) spec: not the user's input.
CROSSPLANE_SPEC_FIELDS = frozenset(
    {
        "crossplane",  # v2 XRs
        "claimRef",
        "compositionRef",
        "compositionSelector",
        "compositionRevisionRef",
        "compositionRevisionSelector",
        "compositionUpdatePolicy",
        "compositeDeletePolicy",
        "resourceRef",
        "resourceRefs",
        "environmentConfigRefs",
        "writeConnectionSecretToRef",
        "publishConnectionDetailsTo",
    }
)
