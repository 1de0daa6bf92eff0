"""What every kopia pod shares: restricted security, writable scratch space, the scripts.

The kopia image runs as root with a writable root filesystem by default. Our pods run
as a fixed non-root UID with a read-only root filesystem, so every path kopia writes
(config, cache, logs, HOME, /tmp) is an emptyDir, or for the cache a volume of its own.

What kopia may write is bounded in one place, `Storage`: its cache (kopia's default is
5,000 MB of contents and 5,000 MB of metadata, far more than an emptyDir should hold)
and its rotating logs. The pod's ephemeral-storage request and limit follow from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources

from function.connection import Connection
from function.memo import MEMO
from function.placement import PodPlacement

SCRIPTS_DIR = "/scripts"
CONFIG_DIR = "/app/config"
SCRATCH = {
    "config": CONFIG_DIR,
    "cache": "/app/cache",
    "logs": "/app/logs",
    "home": "/home/kopia",
    "tmp": "/tmp",  # noqa: S108 - a private emptyDir, not the node's /tmp
}
# The scripts each kind of XR ships to its pods (in its scripts ConfigMap).
SERVER_SCRIPTS = (
    "server.sh",
    "user-sync.sh",
    "retention.sh",
    "freshness.sh",
    "storage-errors.sh",
    "repository-lib.sh",
)
# What the server's own pod runs: a change to these (and only these) restarts it.
SERVER_POD_SCRIPTS = ("server.sh", "repository-lib.sh")
REPOSITORY_SCRIPTS = (
    "repository-init.sh",
    "repository-check.sh",
    "change-password.sh",
    "storage-errors.sh",
    "repository-lib.sh",
)


def _read(name: str) -> str:
    return resources.files("function").joinpath("scripts", name).read_text(encoding="utf-8")


def script(name: str) -> str:
    """The text of a script shipped in the package (`function/scripts`), read once."""
    return MEMO.value(_read, name)


def _digest(script_names: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in sorted(script_names):
        h.update(name.encode() + b"\0" + script(name).encode() + b"\0")
    return h.hexdigest()[:16]


def scripts_digest(script_names: tuple[str, ...]) -> str:
    """A digest of some of the pod scripts: what a pod runs changes exactly when it does."""
    return MEMO.value(_digest, script_names)


# kopia's rotating logs: each of its two log folders keeps at most this much.
LOG_DIR_MB = 128
# Config, HOME, /tmp and what the cache may briefly exceed its hard limit by.
HEADROOM_MB = 512


@dataclasses.dataclass(frozen=True)
class Storage:
    """What kopia may write in a pod: its cache, its logs, and the room that follows."""

    cache_mb: int  # the soft size of kopia's cache, contents and metadata together
    cache_volume: str | None = None  # the cache's own volume size (a quantity), if any
    cache_storage_class: str | None = None

    @property
    def content_mb(self) -> int:
        """Two thirds of the cache hold contents."""
        return self.cache_mb * 2 // 3

    @property
    def metadata_mb(self) -> int:
        """One third holds metadata (indexes, manifests, directories)."""
        return self.cache_mb - self.content_mb

    @property
    def cache_limit_mb(self) -> int:
        """Kopia's hard limits: a quarter over the soft sizes, then it evicts at once."""
        return self.content_mb * 5 // 4 + self.metadata_mb * 5 // 4

    @property
    def ephemeral_limit(self) -> str:
        """The pod's ephemeral-storage limit: cache (unless on its own volume), logs, room."""
        cache = 0 if self.cache_volume else self.cache_limit_mb
        return f"{cache + 2 * LOG_DIR_MB + HEADROOM_MB}Mi"

    @property
    def ephemeral_request(self) -> str:
        """What the scheduler reserves: half the cache, the logs, a little room."""
        cache = 0 if self.cache_volume else self.cache_mb // 2
        return f"{cache + 2 * LOG_DIR_MB + HEADROOM_MB // 4}Mi"

    def env(self) -> list[dict]:
        """The cache sizes the scripts pass to kopia, and kopia's log retention."""
        return [
            {"name": "BSLS_CONTENT_CACHE_MB", "value": str(self.content_mb)},
            {"name": "BSLS_CONTENT_CACHE_LIMIT_MB", "value": str(self.content_mb * 5 // 4)},
            {"name": "BSLS_METADATA_CACHE_MB", "value": str(self.metadata_mb)},
            {"name": "BSLS_METADATA_CACHE_LIMIT_MB", "value": str(self.metadata_mb * 5 // 4)},
            {"name": "KOPIA_LOG_DIR_MAX_SIZE_MB", "value": str(LOG_DIR_MB)},
            {"name": "KOPIA_CONTENT_LOG_DIR_MAX_SIZE_MB", "value": str(LOG_DIR_MB)},
        ]

    def cache(self) -> dict:
        """The cache volume: an emptyDir, or a generic ephemeral volume of its own."""
        if self.cache_volume is None:
            return {"name": "cache", "emptyDir": {}}
        spec: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": self.cache_volume}},
        }
        if self.cache_storage_class:
            spec["storageClassName"] = self.cache_storage_class
        return {"name": "cache", "ephemeral": {"volumeClaimTemplate": {"spec": spec}}}


# The Jobs read little: a small cache is plenty.
JOB_STORAGE = Storage(cache_mb=256)


def pod_security_context(uid: int) -> dict:
    """The pod-level half of the restricted Pod Security Standard.

    `OnRootMismatch`: a start re-owns a volume only when its root is not the pod's group
    already, never every file of a repository on a claim.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict:
    """The container-level half of the restricted Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def kopia_env(username: str, hostname: str) -> list[dict]:
    """Where kopia keeps its state, and the identity a pod connects as."""
    return [
        {"name": "KOPIA_CONFIG_PATH", "value": f"{CONFIG_DIR}/repository.config"},
        {"name": "KOPIA_CACHE_DIRECTORY", "value": SCRATCH["cache"]},
        {"name": "KOPIA_LOG_DIR", "value": SCRATCH["logs"]},
        {"name": "KOPIA_CHECK_FOR_UPDATES", "value": "false"},
        {"name": "HOME", "value": SCRATCH["home"]},
        {"name": "TMPDIR", "value": SCRATCH["tmp"]},
        {"name": "BSLS_IDENTITY_USERNAME", "value": username},
        {"name": "BSLS_IDENTITY_HOSTNAME", "value": hostname},
    ]


def scratch_volumes(storage: Storage) -> list[dict]:
    """One emptyDir per writable path; the cache as `storage` says."""
    return [
        storage.cache() if name == "cache" else {"name": name, "emptyDir": {}} for name in SCRATCH
    ]


def scratch_mounts() -> list[dict]:
    """Mounts for the writable paths and the scripts."""
    mounts = [{"name": name, "mountPath": path} for name, path in SCRATCH.items()]
    mounts.append({"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True})
    return mounts


# Where a client pod of the server (user-sync, freshness) finds the CA it trusts.
SERVER_CA_DIR = "/etc/bsls/server-ca"


def server_ca_volume(ca_bundle: str) -> dict:
    """The server's CA bundle ConfigMap, for a pod that verifies the server as VMs do."""
    return {
        "name": "server-ca",
        "configMap": {
            "name": ca_bundle,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "defaultMode": 0o444,
        },
    }


def scripts_volume(config_map: str) -> dict:
    """The ConfigMap holding the pod scripts, mounted read-only."""
    return {"name": "scripts", "configMap": {"name": config_map, "defaultMode": 0o555}}


def kopia_container(
    *,
    name: str,
    image: str,
    script_name: str,
    connection: Connection,
    identity: tuple[str, str],
    storage: Storage,
    env: list[dict],
    mounts: list[dict],
    resources_: dict,
) -> dict:
    """A container that runs one of our scripts with the repository's storage flags."""
    return {
        "name": name,
        "image": image,
        # Always: a node must not hand an image pulled with another tenant's credentials
        # to this pod; the check is cheap for a tag that is already present.
        "imagePullPolicy": "Always",
        "command": ["/bin/sh", f"{SCRIPTS_DIR}/{script_name}"],
        "args": list(connection.args),
        "env": kopia_env(*identity) + storage.env() + list(connection.env) + env,
        "volumeMounts": scratch_mounts() + list(connection.mounts) + mounts,
        "securityContext": container_security_context(),
        "resources": resources_,
    }


def kopia_pod(
    *,
    uid: int,
    name: str,
    image: str,
    script_name: str,
    scripts_config_map: str,
    connection: Connection,
    identity: tuple[str, str],
    storage: Storage,
    env: list[dict],
    mounts: list[dict],
    volumes: list[dict],
    resources_: dict,
    restart_policy: str,
    placement: PodPlacement,
) -> dict:
    """A restricted pod that runs one of our scripts against the repository.

    Its volumes: the scratch emptyDirs, the scripts, `volumes`, then the repository's.
    `resources_` holds CPU and memory; ephemeral storage follows from `storage` unless
    `resources_` names it.
    """
    derived = {
        "requests": {"ephemeral-storage": storage.ephemeral_request},
        "limits": {"ephemeral-storage": storage.ephemeral_limit},
    }
    merged = {k: {**derived.get(k, {}), **v} for k, v in resources_.items()}
    container = kopia_container(
        name=name,
        image=image,
        script_name=script_name,
        connection=connection,
        identity=identity,
        storage=storage,
        env=env,
        mounts=mounts,
        resources_=merged,
    )
    spec = pod_spec(
        uid=uid,
        service_account=connection.service_account,
        containers=[container],
        volumes=[
            *scratch_volumes(storage),
            scripts_volume(scripts_config_map),
            *volumes,
            *connection.volumes,
        ],
        restart_policy=restart_policy,
    )
    return placement.apply(spec)


def pod_spec(
    *,
    uid: int,
    containers: list[dict],
    volumes: list[dict],
    restart_policy: str,
    service_account: str | None = None,
) -> dict:
    """A restricted pod spec without a Kubernetes API token.

    With a cloud identity the pod runs under the repository's ServiceAccount. The
    platform's webhook (AWS IRSA, Azure workload identity) adds the audience-bound
    token it needs, or GKE's metadata server answers: none of them needs the API
    token, which stays unmounted.
    """
    spec: dict = {"serviceAccountName": service_account} if service_account else {}
    return spec | {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        "restartPolicy": restart_policy,
        "containers": containers,
        "volumes": volumes,
    }
