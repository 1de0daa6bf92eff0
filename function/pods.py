"""What every kopia pod shares: restricted security, writable scratch space, the scripts.

The kopia image runs as root with a writable root filesystem by default. Our pods run
as a fixed non-root UID with a read-only root filesystem, so every path kopia writes
(config, cache, logs, HOME, /tmp) is an emptyDir.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from function.connection import Connection
from function.memo import MEMO

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
SERVER_SCRIPTS = ("server.sh", "user-sync.sh")
REPOSITORY_SCRIPTS = ("repository-init.sh",)


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


def pod_security_context(uid: int) -> dict:
    """The pod-level half of the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
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


def scratch_volumes() -> list[dict]:
    """One emptyDir per writable path, plus the scripts ConfigMap."""
    return [{"name": name, "emptyDir": {}} for name in SCRATCH]


def scratch_mounts() -> list[dict]:
    """Mounts for the writable paths and the scripts."""
    mounts = [{"name": name, "mountPath": path} for name, path in SCRATCH.items()]
    mounts.append({"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True})
    return mounts


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
        "env": kopia_env(*identity) + list(connection.env) + env,
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
    env: list[dict],
    mounts: list[dict],
    volumes: list[dict],
    resources_: dict,
    restart_policy: str,
) -> dict:
    """A restricted pod that runs one of our scripts against the repository.

    Its volumes: the scratch emptyDirs, the scripts, `volumes`, then the repository's.
    """
    container = kopia_container(
        name=name,
        image=image,
        script_name=script_name,
        connection=connection,
        identity=identity,
        env=env,
        mounts=mounts,
        resources_=resources_,
    )
    return pod_spec(
        uid=uid,
        containers=[container],
        volumes=[
            *scratch_volumes(),
            scripts_volume(scripts_config_map),
            *volumes,
            *connection.volumes,
        ],
        restart_policy=restart_policy,
    )


def pod_spec(*, uid: int, containers: list[dict], volumes: list[dict], restart_policy: str) -> dict:
    """A restricted pod spec without a service-account token."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        "restartPolicy": restart_policy,
        "containers": containers,
        "volumes": volumes,
    }
