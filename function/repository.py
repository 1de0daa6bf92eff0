"""The one place that maps a BSLR to how a pod opens the Kopia repository.

The repository-init Job, the server and the user-sync Job all call
`kopia repository connect <args>` with the same storage flags, the same credential
environment and the same volumes; only the identity differs. Credentials always come
by reference (`secretKeyRef` or a Secret volume), never as literal values.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from function.models import (
    AzureBackend,
    BSLRSpec,
    FilesystemBackend,
    GCSBackend,
    S3Backend,
)

# Where Secret files are mounted in pods that open the repository.
GCS_CREDENTIALS_DIR = "/etc/bsls/gcs"
S3_CA_DIR = "/etc/bsls/s3-ca"
REPOSITORY_PATH_ENV = "BSLS_REPOSITORY_PATH"


@dataclasses.dataclass(frozen=True, eq=False)
class Connection:
    """Everything a container needs to connect to the repository directly.

    Two connections are equal when their settings are (see `digest`), so a Connection
    can key a cache.
    """

    backend: str
    args: tuple[str, ...]  # appended to `kopia repository connect`
    env: tuple[dict, ...]
    volumes: tuple[dict, ...]
    mounts: tuple[dict, ...]
    location: str  # for display: s3://bucket/prefix, /path on pvc, ...

    @functools.cached_property
    def digest(self) -> str:
        """A digest of the connection settings (names and references only, no secrets)."""
        doc = json.dumps(
            [self.args, self.env, self.volumes, self.mounts], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Connection) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


def _secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> dict:
    ref: dict = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _secret_volume(volume: str, secret: str, key: str, path: str, mount: str) -> tuple[dict, dict]:
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


@dataclasses.dataclass
class _Parts:
    args: list[str]
    location: str
    env: list[dict] = dataclasses.field(default_factory=list)
    volumes: list[dict] = dataclasses.field(default_factory=list)
    mounts: list[dict] = dataclasses.field(default_factory=list)

    def mount(self, volume: tuple[dict, dict]) -> None:
        self.volumes.append(volume[0])
        self.mounts.append(volume[1])


def _s3(s3: S3Backend) -> _Parts:
    host = s3.endpoint.removeprefix("http://")
    parts = _Parts(
        ["s3", f"--bucket={s3.bucket}"], f"s3://{host + '/' if host else ''}{s3.bucket}/{s3.prefix}"
    )
    if s3.prefix:
        parts.args.append(f"--prefix={s3.prefix}")
    if s3.region:
        parts.args.append(f"--region={s3.region}")
    if host:
        parts.args.append(f"--endpoint={host}")
    if s3.plain_http:
        parts.args.append("--disable-tls")
    if s3.insecureSkipTLSVerify:
        parts.args.append("--disable-tls-verification")
    if (ca := s3.caBundleSecretRef) is not None:
        parts.mount(_secret_volume("s3-ca", ca.name, ca.key, "ca.crt", S3_CA_DIR))
        parts.args.append(f"--root-ca-pem-path={S3_CA_DIR}/ca.crt")
    if (creds := s3.credentialsSecretRef) is not None:
        parts.env += [
            _secret_env("AWS_ACCESS_KEY_ID", creds.name, creds.accessKeyIDKey),
            _secret_env("AWS_SECRET_ACCESS_KEY", creds.name, creds.secretAccessKeyKey),
            # The session token is optional unless a key name for it was given.
            _secret_env(
                "AWS_SESSION_TOKEN",
                creds.name,
                creds.sessionTokenKey or "AWS_SESSION_TOKEN",
                optional=creds.sessionTokenKey is None,
            ),
        ]
    return parts


def _gcs(gcs: GCSBackend) -> _Parts:
    parts = _Parts(["gcs", f"--bucket={gcs.bucket}"], f"gs://{gcs.bucket}/{gcs.prefix}")
    if gcs.prefix:
        parts.args.append(f"--prefix={gcs.prefix}")
    ref = gcs.credentialsSecretRef
    parts.mount(
        _secret_volume(
            "gcs-credentials", ref.name, ref.key, "credentials.json", GCS_CREDENTIALS_DIR
        )
    )
    parts.args.append(f"--credentials-file={GCS_CREDENTIALS_DIR}/credentials.json")
    return parts


def _azure(azure: AzureBackend) -> _Parts:
    parts = _Parts(
        ["azure", f"--container={azure.container}", f"--storage-account={azure.storageAccount}"],
        f"azure://{azure.storageAccount}/{azure.container}/{azure.prefix}",
    )
    if azure.prefix:
        parts.args.append(f"--prefix={azure.prefix}")
    ref = azure.credentialsSecretRef
    parts.env.append(_secret_env("AZURE_STORAGE_KEY", ref.name, ref.key))
    return parts


def _filesystem(fs: FilesystemBackend) -> _Parts:
    # Kubernetes expands $(VAR) in args from the container's env; taking the path from
    # env lets anything that runs the manifest relocate it in one place.
    parts = _Parts(
        ["filesystem", f"--path=$({REPOSITORY_PATH_ENV})"],
        f"pvc://{fs.persistentVolumeClaim.claimName}{fs.path}",
        env=[{"name": REPOSITORY_PATH_ENV, "value": fs.path}],
    )
    claim = {"claimName": fs.persistentVolumeClaim.claimName}
    parts.mount(
        (
            {"name": "repository", "persistentVolumeClaim": claim},
            {"name": "repository", "mountPath": fs.path},
        )
    )
    return parts


def connection(spec: BSLRSpec) -> Connection:
    """Map a validated BSLR spec to kopia arguments, environment and volumes."""
    backend = spec.backend
    if backend.s3 is not None:
        parts = _s3(backend.s3)
    elif backend.gcs is not None:
        parts = _gcs(backend.gcs)
    elif backend.azure is not None:
        parts = _azure(backend.azure)
    else:
        assert backend.filesystem is not None  # noqa: S101 - Backend validates one is set
        parts = _filesystem(backend.filesystem)
    password = spec.passwordSecretRef
    return Connection(
        backend=backend.name,
        args=tuple(parts.args),
        env=(_secret_env("KOPIA_PASSWORD", password.name, password.key), *parts.env),
        volumes=tuple(parts.volumes),
        mounts=tuple(parts.mounts),
        location=parts.location,
    )
