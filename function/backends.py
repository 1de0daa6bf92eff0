"""Storage backends: one entry each, with its model, its storage flags and its location.

A BSLR names exactly one backend (`spec.backend.<name>`). Each entry here says what the
backend's spec may hold (a pydantic model), how a pod opens it (`kopia repository
connect <flags>`, with credentials by reference only, never as literal values) and how
the BSLR's status shows where it is. Adding a backend means adding one entry here, its
section of the BSLR's XRD (apis/bslr/definition.yaml; a test checks the two agree) and
its test.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from pydantic import Field, create_model, field_validator, model_validator

from function.kube import ObjectName, SecretKeyName, SecretKeyRef, Strict

# Where Secret files are mounted in pods that open the repository.
GCS_CREDENTIALS_DIR = "/etc/bsls/gcs"
S3_CA_DIR = "/etc/bsls/s3-ca"
REPOSITORY_PATH_ENV = "BSLS_REPOSITORY_PATH"


@dataclasses.dataclass
class Parts:
    """How a pod opens one backend: its flags, its env, its volumes, its location."""

    args: list[str]
    location: str  # for display: s3://bucket/prefix, pvc://claim/path, ...
    env: list[dict] = dataclasses.field(default_factory=list)
    volumes: list[dict] = dataclasses.field(default_factory=list)
    mounts: list[dict] = dataclasses.field(default_factory=list)
    claim: str | None = None  # the PersistentVolumeClaim every pod mounts, if any

    def mount(self, volume: tuple[dict, dict]) -> None:
        """Add a volume and its mount."""
        self.volumes.append(volume[0])
        self.mounts.append(volume[1])


def secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> dict:
    """An env var from a Secret key, by reference."""
    ref: dict = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def secret_file(volume: str, secret: str, key: str, path: str, mount: str) -> tuple[dict, dict]:
    """One Secret key as a read-only file: the volume and its mount."""
    return (
        {
            "name": volume,
            "secret": {
                "secretName": secret,
                "items": [{"key": key, "path": path}],
                "defaultMode": 0o440,
            },
        },
        {"name": volume, "mountPath": mount, "readOnly": True},
    )


# ---------------------------------------------------------------------------- S3


class CABundleRef(SecretKeyRef):
    """A Secret key holding a PEM CA bundle."""

    key: SecretKeyName = "ca.crt"


class CredentialsRef(Strict):
    """A Secret holding S3 keys; the key names can be overridden."""

    name: ObjectName
    accessKeyIDKey: SecretKeyName = "AWS_ACCESS_KEY_ID"
    secretAccessKeyKey: SecretKeyName = "AWS_SECRET_ACCESS_KEY"
    sessionTokenKey: SecretKeyName | None = None


class S3Backend(Strict):
    """An S3 or S3-compatible bucket."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")
    prefix: str = Field(default="", max_length=512)
    region: str = Field(default="", max_length=64, pattern=r"^[a-z0-9-]*$")
    endpoint: str = Field(default="", max_length=512)
    insecureSkipTLSVerify: bool = False
    caBundleSecretRef: CABundleRef | None = None
    credentialsSecretRef: CredentialsRef | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        """host[:port] for HTTPS (https:// is accepted and dropped), http://host[:port]."""
        if not value:
            return value
        value = value.removeprefix("https://")
        host = value.removeprefix("http://")
        if "://" in host:
            msg = (
                f"{value!r} has a scheme kopia cannot use: give host[:port] or "
                "https://host[:port] for HTTPS, or http://host[:port] for plain HTTP"
            )
            raise ValueError(msg)
        if not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
            msg = f"{value!r} is not host[:port] (no path, no spaces)"
            raise ValueError(msg)
        return value


def _s3(s3: S3Backend) -> Parts:
    host = s3.endpoint.removeprefix("http://")
    parts = Parts(
        ["s3", f"--bucket={s3.bucket}"], f"s3://{host + '/' if host else ''}{s3.bucket}/{s3.prefix}"
    )
    if s3.prefix:
        parts.args.append(f"--prefix={s3.prefix}")
    if s3.region:
        parts.args.append(f"--region={s3.region}")
    if host:
        parts.args.append(f"--endpoint={host}")
    if s3.endpoint.startswith("http://"):
        parts.args.append("--disable-tls")
    if s3.insecureSkipTLSVerify:
        parts.args.append("--disable-tls-verification")
    if (ca := s3.caBundleSecretRef) is not None:
        parts.mount(secret_file("s3-ca", ca.name, ca.key, "ca.crt", S3_CA_DIR))
        parts.args.append(f"--root-ca-pem-path={S3_CA_DIR}/ca.crt")
    if (creds := s3.credentialsSecretRef) is not None:
        parts.env += [
            secret_env("AWS_ACCESS_KEY_ID", creds.name, creds.accessKeyIDKey),
            secret_env("AWS_SECRET_ACCESS_KEY", creds.name, creds.secretAccessKeyKey),
            # The session token is optional unless a key name for it was given.
            secret_env(
                "AWS_SESSION_TOKEN",
                creds.name,
                creds.sessionTokenKey or "AWS_SESSION_TOKEN",
                optional=creds.sessionTokenKey is None,
            ),
        ]
    return parts


# ---------------------------------------------------------------------------- GCS


class GCSCredentialsRef(SecretKeyRef):
    """A Secret key holding a GCS service account key file."""

    key: SecretKeyName = "service-account.json"


class GCSBackend(Strict):
    """A Google Cloud Storage bucket."""

    bucket: str = Field(min_length=3, max_length=222, pattern=r"^[a-z0-9][a-z0-9._\-]*[a-z0-9]$")
    prefix: str = Field(default="", max_length=512)
    # Absent only with spec.cloudIdentity: kopia then uses Google's default credentials
    # (GKE workload identity's metadata server).
    credentialsSecretRef: GCSCredentialsRef | None = None


def _gcs(gcs: GCSBackend) -> Parts:
    parts = Parts(["gcs", f"--bucket={gcs.bucket}"], f"gs://{gcs.bucket}/{gcs.prefix}")
    if gcs.prefix:
        parts.args.append(f"--prefix={gcs.prefix}")
    if (ref := gcs.credentialsSecretRef) is not None:
        parts.mount(
            secret_file(
                "gcs-credentials", ref.name, ref.key, "credentials.json", GCS_CREDENTIALS_DIR
            )
        )
        parts.args.append(f"--credentials-file={GCS_CREDENTIALS_DIR}/credentials.json")
    return parts


# ---------------------------------------------------------------------------- Azure


class AzureCredentialsRef(SecretKeyRef):
    """A Secret key holding an Azure storage account key."""

    key: SecretKeyName = "AZURE_STORAGE_KEY"


class AzureBackend(Strict):
    """An Azure Blob Storage container."""

    container: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9](-?[a-z0-9])*$")
    prefix: str = Field(default="", max_length=512)
    storageAccount: str = Field(min_length=3, max_length=24, pattern=r"^[a-z0-9]+$")
    # Absent only with spec.cloudIdentity: kopia then reads AZURE_CLIENT_ID,
    # AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, which Azure workload identity's
    # webhook sets in pods labelled for it.
    credentialsSecretRef: AzureCredentialsRef | None = None


def _azure(azure: AzureBackend) -> Parts:
    parts = Parts(
        ["azure", f"--container={azure.container}", f"--storage-account={azure.storageAccount}"],
        f"azure://{azure.storageAccount}/{azure.container}/{azure.prefix}",
    )
    if azure.prefix:
        parts.args.append(f"--prefix={azure.prefix}")
    if (ref := azure.credentialsSecretRef) is not None:
        parts.env.append(secret_env("AZURE_STORAGE_KEY", ref.name, ref.key))
    return parts


# ---------------------------------------------------------------------------- filesystem


class PVCRef(Strict):
    """A PersistentVolumeClaim in the same namespace."""

    claimName: ObjectName


class FilesystemBackend(Strict):
    """A folder on a PersistentVolumeClaim, mounted into every pod that opens the repository."""

    path: str = Field(default="/repository", pattern=r"^/[^\s]*$", max_length=256)
    persistentVolumeClaim: PVCRef


def _filesystem(fs: FilesystemBackend) -> Parts:
    # Kubernetes expands $(VAR) in args from the container's env; taking the path from
    # env lets anything that runs the manifest relocate it in one place.
    parts = Parts(
        ["filesystem", f"--path=$({REPOSITORY_PATH_ENV})"],
        f"pvc://{fs.persistentVolumeClaim.claimName}{fs.path}",
        env=[{"name": REPOSITORY_PATH_ENV, "value": fs.path}],
    )
    claim = {"claimName": fs.persistentVolumeClaim.claimName}
    parts.claim = fs.persistentVolumeClaim.claimName
    parts.mount(
        (
            {"name": "repository", "persistentVolumeClaim": claim},
            {"name": "repository", "mountPath": fs.path},
        )
    )
    return parts


# ---------------------------------------------------------------------------- the registry


@dataclasses.dataclass(frozen=True)
class Entry:
    """One backend: what its spec holds and how a pod opens it."""

    model: type[Strict]
    parts: Callable[..., Parts]
    prefixed: bool  # whether it has a `prefix`, which must end with '/'


BACKENDS: dict[str, Entry] = {
    "s3": Entry(S3Backend, _s3, prefixed=True),
    "gcs": Entry(GCSBackend, _gcs, prefixed=True),
    "azure": Entry(AzureBackend, _azure, prefixed=True),
    "filesystem": Entry(FilesystemBackend, _filesystem, prefixed=False),
}


class _OneBackend(Strict):
    """Exactly one of the registered backends."""

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneBackend:
        chosen = [name for name in BACKENDS if getattr(self, name) is not None]
        if len(chosen) != 1:
            got = ", ".join(chosen) if chosen else "none"
            *others, last = BACKENDS
            msg = f"set exactly one of {', '.join(others)} or {last} (got {got})"
            raise ValueError(msg)
        for name in chosen:
            prefix = getattr(getattr(self, name), "prefix", "")
            if BACKENDS[name].prefixed and prefix and not prefix.endswith("/"):
                msg = f"{name}.prefix {prefix!r} must end with '/' (e.g. {prefix}/)"
                raise ValueError(msg)
        return self

    @property
    def name(self) -> str:
        """Which backend is set."""
        return next(n for n in BACKENDS if getattr(self, n) is not None)

    @property
    def static_credentials(self) -> bool:
        """Whether the chosen backend names a credentials Secret (a filesystem needs none)."""
        return getattr(self.chosen, "credentialsSecretRef", None) is not None

    @property
    def chosen(self) -> Strict:
        """The chosen backend's settings."""
        return getattr(self, self.name)

    def parts(self) -> Parts:
        """How a pod opens the chosen backend."""
        return BACKENDS[self.name].parts(self.chosen)


Backend = create_model(
    "Backend",
    __base__=_OneBackend,
    __doc__="Exactly one storage backend.",
    **{name: (entry.model | None, None) for name, entry in BACKENDS.items()},  # type: ignore[call-overload]
)
