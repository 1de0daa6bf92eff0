"""Jobs: the user sync of a server and the initialisation of a repository."""

from __future__ import annotations

import hashlib

from function import failures, names, pods
from function.connection import Connection
from function.placement import PodPlacement
from function.resources.meta import labels, metadata

USERS_DIR = "/etc/bsls/users"
SERVER_CA_DIR = "/etc/bsls/server-ca"
# CPU and memory; ephemeral storage follows from pods.JOB_STORAGE.
JOB_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
# Kopia opens the repository once per user command; leave room for large user lists.
ACTIVE_DEADLINE_SECONDS = 3600


CONTENT = "dataprotection.bsls.dev/content"


def _job(  # noqa: PLR0917
    name: str,
    namespace: str,
    owner: str,
    component: str,
    pod: dict,
    content: str,
    attempt: int,
    placement: PodPlacement,
) -> dict:
    """A Job for one attempt of what `content` (a digest of what it applies) names.

    No ttlSecondsAfterFinished: Crossplane would re-create a Job that deleted itself.
    Exit codes with a known cause fail it at once (failures.py); others are retried.
    """
    meta = metadata(name, namespace, owner, component)
    meta["annotations"] = {CONTENT: content, failures.ATTEMPT: str(attempt)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
            "podFailurePolicy": failures.pod_failure_policy(pod["containers"][0]["name"]),
            "template": {
                "metadata": {"labels": {**labels(owner, component), **placement.labels()}},
                "spec": pod,
            },
        },
    }


def users_volume(sources: tuple[tuple[str, str, str], ...]) -> dict:
    """One file per identity holding its password, in a folder per access mode.

    The files (`full/alice@vm-alice`) are projected from the credentials Secrets.
    `sources` lists (credentials Secret name, identity, mode) triples.
    """
    if not sources:
        return {"name": "users", "emptyDir": {}}
    projected = [
        {"secret": {"name": secret, "items": [{"key": "password", "path": f"{mode}/{identity}"}]}}
        for secret, identity, mode in sources
    ]
    return {"name": "users", "projected": {"sources": projected, "defaultMode": 0o440}}


def user_sync(
    *,
    owner: str,
    namespace: str,
    digest: str,
    attempt: int,
    image: str,
    uid: int,
    connection: Connection,
    sources: tuple[tuple[str, str, str], ...],
    endpoint: str,
    ca_bundle: str,
    control_secret: str,
    control_username: str,
    scripts_config_map: str,
    access_rules: str,
    placement: PodPlacement,
) -> dict:
    """The Job that makes the repository's users and access rules match the spec.

    Then it refreshes the server, so both take effect at once.
    The refresh verifies the server as VM owners do: the CA bundle and the Service's
    host name, never a fingerprint (which a machine in the middle could satisfy).
    """
    env = [
        {"name": "BSLS_USERS_DIR", "value": USERS_DIR},
        {"name": "BSLS_ACCESS_RULES", "value": access_rules},
        {"name": "BSLS_SERVER_URL", "value": endpoint},
        # Go (kopia) reads the CA it trusts from here, beside the system roots.
        {"name": "SSL_CERT_FILE", "value": f"{SERVER_CA_DIR}/ca.crt"},
        {"name": "BSLS_CONTROL_USERNAME", "value": control_username},
        {
            # On a client, KOPIA_SERVER_PASSWORD is the control user's password.
            "name": "KOPIA_SERVER_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": control_secret, "key": "password"}},
        },
    ]
    server_ca = {
        "name": "server-ca",
        "configMap": {
            "name": ca_bundle,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "defaultMode": 0o444,
        },
    }
    pod = pods.kopia_pod(
        uid=uid,
        name="user-sync",
        image=image,
        script_name="user-sync.sh",
        scripts_config_map=scripts_config_map,
        connection=connection,
        identity=names.SYNC_IDENTITY,
        storage=pods.JOB_STORAGE,
        env=env,
        mounts=[
            {"name": "users", "mountPath": USERS_DIR, "readOnly": True},
            {"name": "server-ca", "mountPath": SERVER_CA_DIR, "readOnly": True},
        ],
        volumes=[users_volume(sources), server_ca],
        resources_=JOB_RESOURCES,
        restart_policy="Never",
        placement=placement,
    )
    name = failures.attempt_name(owner, "user-sync", digest, attempt)
    return _job(name, namespace, owner, "user-sync", pod, digest[:16], attempt, placement)


def retention(
    *,
    owner: str,
    namespace: str,
    image: str,
    uid: int,
    connection: Connection,
    keep_days: int,
    keep_latest: int,
    schedule: str,
    scripts_config_map: str,
    placement: PodPlacement,
) -> dict:
    """The CronJob that expires append-only users' snapshots (retention.sh).

    It connects straight to the repository (it must delete what no client may), as
    `retention@bsls-system`, which is not the maintenance owner. One run at a time.
    """
    pod = pods.kopia_pod(
        uid=uid,
        name="retention",
        image=image,
        script_name="retention.sh",
        scripts_config_map=scripts_config_map,
        connection=connection,
        identity=names.RETENTION_IDENTITY,
        storage=pods.JOB_STORAGE,
        env=[
            {"name": "BSLS_RETENTION_KEEP_DAYS", "value": str(keep_days)},
            {"name": "BSLS_RETENTION_KEEP_LATEST", "value": str(keep_latest)},
        ],
        mounts=[],
        volumes=[],
        resources_=JOB_RESOURCES,
        restart_policy="Never",
        placement=placement,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(names.owned(owner, "retention"), namespace, owner, "retention"),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {
                            "labels": {**labels(owner, "retention"), **placement.labels()}
                        },
                        "spec": pod,
                    },
                }
            },
        },
    }


def repository_init(
    *,
    owner: str,
    namespace: str,
    attempt: int,
    image: str,
    uid: int,
    connection: Connection,
    scripts_config_map: str,
    placement: PodPlacement,
) -> dict:
    """The Job that connects to the repository or creates it on empty storage."""
    pod = pods.kopia_pod(
        uid=uid,
        name="repository-init",
        image=image,
        script_name="repository-init.sh",
        scripts_config_map=scripts_config_map,
        connection=connection,
        identity=names.SERVER_IDENTITY,
        storage=pods.JOB_STORAGE,
        env=[],
        mounts=[],
        volumes=[],
        resources_=JOB_RESOURCES,
        restart_policy="Never",
        placement=placement,
    )
    digest = init_digest(connection, image)
    name = failures.attempt_name(owner, "init", digest, attempt)
    return _job(name, namespace, owner, "repository-init", pod, digest[:16], attempt, placement)


def init_digest(connection: Connection, image: str) -> str:
    """What the init Job applies: it runs again when the storage settings or the image change."""
    return hashlib.sha256(f"{connection.digest}:{image}".encode()).hexdigest()


def deny_ingress(owner: str, namespace: str, component: str) -> dict:
    """A NetworkPolicy that admits no connection to one component's pods (they serve none)."""
    full = labels(owner, component)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(names.owned(owner, component), namespace, owner, "network-policy"),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    k: full[k] for k in ("app.kubernetes.io/instance", names.LABEL_COMPONENT)
                }
            },
            # No ingress rules at all: admits nothing. (An empty list would be dropped
            # by the API server, and every apply would then write the object again.)
            "policyTypes": ["Ingress"],
        },
    }
