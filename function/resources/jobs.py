"""Jobs: the user sync of a server and the initialisation of a repository."""

from __future__ import annotations

import hashlib

from function import failures, names, pods
from function.connection import Connection
from function.placement import PodPlacement
from function.resources.meta import labels, metadata

USERS_DIR = "/etc/bsls/users"
SERVER_CA_DIR = pods.SERVER_CA_DIR
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
    pod_labels: tuple[tuple[str, str], ...] = (),
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
                "metadata": {
                    "labels": {
                        **dict(pod_labels),
                        **labels(owner, component),
                        **placement.labels(),
                    }
                },
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
        volumes=[users_volume(sources), pods.server_ca_volume(ca_bundle)],
        resources_=JOB_RESOURCES,
        restart_policy="Never",
        placement=placement,
    )
    name = failures.attempt_name(owner, "user-sync", digest, attempt)
    return _job(
        name,
        namespace,
        owner,
        "user-sync",
        pod,
        digest[:16],
        attempt,
        placement,
        connection.pod_labels,
    )


def cronjob(
    *,
    owner: str,
    namespace: str,
    component: str,
    schedule: str,
    pod: dict,
    pod_labels: dict[str, str],
    starting_deadline: int,
    backoff_limit: int,
    active_deadline: int,
) -> dict:
    """A CronJob of ours: UTC, one run at a time, the last run kept (and three failed)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(names.cronjob(owner, component), namespace, owner, component),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": starting_deadline,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": backoff_limit,
                    "activeDeadlineSeconds": active_deadline,
                    "template": {"metadata": {"labels": pod_labels}, "spec": pod},
                }
            },
        },
    }


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
    return cronjob(
        owner=owner,
        namespace=namespace,
        component="retention",
        schedule=schedule,
        pod=pod,
        pod_labels={
            **dict(connection.pod_labels),
            **labels(owner, "retention"),
            **placement.labels(),
        },
        starting_deadline=3600,
        backoff_limit=2,
        active_deadline=ACTIVE_DEADLINE_SECONDS,
    )


# The repository's Jobs: what each is called and which script it runs.
REPOSITORY_JOBS = {
    "repository-init": ("init", "repository-init.sh"),
    "repository-check": ("check", "repository-check.sh"),
    "password-change": ("password", "change-password.sh"),
}


def repository_job(
    *,
    component: str,
    owner: str,
    namespace: str,
    digest: str,
    attempt: int,
    image: str,
    uid: int,
    connection: Connection,
    env: tuple[dict, ...],
    notes: tuple[tuple[str, str], ...],
    scripts_config_map: str,
    placement: PodPlacement,
) -> dict:
    """One of the repository's Jobs (REPOSITORY_JOBS), for one attempt at `digest`.

    They connect as the maintenance identity. `env` holds what the script applies
    (settings.env, the maintenance due, a rotation's new password by reference);
    `notes` are annotations the function reads back from the observed Job.
    """
    suffix, script_name = REPOSITORY_JOBS[component]
    pod = pods.kopia_pod(
        uid=uid,
        name=component,
        image=image,
        script_name=script_name,
        scripts_config_map=scripts_config_map,
        connection=connection,
        identity=names.MAINTENANCE_IDENTITY,
        storage=pods.JOB_STORAGE,
        env=list(env),
        mounts=[],
        volumes=[],
        resources_=JOB_RESOURCES,
        restart_policy="Never",
        placement=placement,
    )
    name = failures.attempt_name(owner, suffix, digest, attempt)
    job = _job(
        name,
        namespace,
        owner,
        component,
        pod,
        digest[:16],
        attempt,
        placement,
        connection.pod_labels,
    )
    job["metadata"]["annotations"].update(dict(notes))
    return job


def init_digest(connection: Connection, image: str, settings_digest: str) -> str:
    """What the init Job applies: storage, passwords, settings and image; a change runs it."""
    return hashlib.sha256(f"{connection.digest}:{image}:{settings_digest}".encode()).hexdigest()


def deny_ingress(owner: str, namespace: str, name: str, components: tuple[str, ...]) -> dict:
    """A NetworkPolicy that admits no connection to some components' pods (they serve none)."""
    full = labels(owner, components[0])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(names.owned(owner, name), namespace, owner, "network-policy"),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": full["app.kubernetes.io/instance"]},
                "matchExpressions": [
                    {"key": names.LABEL_COMPONENT, "operator": "In", "values": list(components)}
                ],
            },
            # No ingress rules at all: admits nothing. (An empty list would be dropped
            # by the API server, and every apply would then write the object again.)
            "policyTypes": ["Ingress"],
        },
    }
