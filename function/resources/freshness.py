"""Backup freshness: the CronJob that reports when each user last stored a snapshot.

Its pod is a client of the server, never of the storage: it connects as
`freshness@bsls-system`, which the access rules let read snapshot records and no
content (function/access.py), so it can see when and how much each user stored and
nothing of what. It writes one ConfigMap, `<xr>-freshness`, through the Kubernetes API
with a token of its own ServiceAccount, whose Role allows `get` and `patch` on that one
ConfigMap and nothing else. The function reads the report back as an observed composed
resource.
"""

from __future__ import annotations

from function import names, pods
from function.placement import PodPlacement
from function.resources import jobs
from function.resources.meta import b64, labels, metadata

REPORT_KEY = "report.json"
API_DIR = "/var/run/secrets/bsls/api"
SERVER_CA_DIR = pods.SERVER_CA_DIR
# The shortest lifetime the API server issues: the token outlives no run by much.
TOKEN_SECONDS = 600
# One run lists manifests and shows one per user: far less than a sync Job needs.
RESOURCES = {
    "requests": {"cpu": "20m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
# A run that takes longer than this is stuck (a server that accepts and never answers).
ACTIVE_DEADLINE_SECONDS = 900


def report_name(owner: str) -> str:
    """The report ConfigMap; also the ServiceAccount, the Role and its binding."""
    return names.owned(owner, "freshness")


def reader_secret(owner: str, namespace: str, password: str) -> dict:
    """The reader's password: the sync Job installs it, the CronJob logs in with it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.owned(owner, "freshness-reader"), namespace, owner, "freshness"),
        "type": "Opaque",
        "data": {"password": b64(password)},
    }


def report(owner: str, namespace: str) -> dict:
    """The report, without data: the CronJob's pod writes `data`, the function never does.

    Crossplane applies only the fields the function sets, so what the pod wrote stays.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(report_name(owner), namespace, owner, "freshness"),
    }


def service_account(owner: str, namespace: str) -> dict:
    """The CronJob pod's identity in the Kubernetes API; its token is mounted only there."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(report_name(owner), namespace, owner, "freshness"),
        "automountServiceAccountToken": False,
    }


def role(owner: str, namespace: str) -> dict:
    """Read and patch the report ConfigMap; nothing else (no list, no other object)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(report_name(owner), namespace, owner, "freshness"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [report_name(owner)],
                "verbs": ["get", "patch"],
            }
        ],
    }


def role_binding(owner: str, namespace: str) -> dict:
    """The Role, for the CronJob's ServiceAccount alone."""
    name = report_name(owner)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(name, namespace, owner, "freshness"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def _api_volume() -> dict:
    """A short-lived token of the CronJob's ServiceAccount, the API's CA, the namespace."""
    return {
        "name": "api",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def cronjob(
    *,
    owner: str,
    namespace: str,
    image: str,
    uid: int,
    endpoint: str,
    ca_bundle: str,
    schedule: str,
    scripts_config_map: str,
    placement: PodPlacement,
) -> dict:
    """The CronJob that writes the report (freshness.sh). One run at a time."""
    storage = pods.JOB_STORAGE
    env = [
        {"name": "BSLS_SERVER_URL", "value": endpoint},
        {"name": "SSL_CERT_FILE", "value": f"{SERVER_CA_DIR}/ca.crt"},
        {
            "name": "KOPIA_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {"name": names.owned(owner, "freshness-reader"), "key": "password"}
            },
        },
        {"name": "BSLS_REPORT_CONFIGMAP", "value": report_name(owner)},
        {"name": "BSLS_REPORT_KEY", "value": REPORT_KEY},
        {"name": "BSLS_API_DIR", "value": API_DIR},
    ]
    derived = {
        "requests": {"ephemeral-storage": storage.ephemeral_request},
        "limits": {"ephemeral-storage": storage.ephemeral_limit},
    }
    container = {
        "name": "freshness",
        "image": image,
        "imagePullPolicy": "Always",
        "command": ["/bin/sh", f"{pods.SCRIPTS_DIR}/freshness.sh"],
        "env": pods.kopia_env(*names.FRESHNESS_IDENTITY) + storage.env() + env,
        "volumeMounts": [
            *pods.scratch_mounts(),
            {"name": "server-ca", "mountPath": SERVER_CA_DIR, "readOnly": True},
            {"name": "api", "mountPath": API_DIR, "readOnly": True},
        ],
        "securityContext": pods.container_security_context(),
        "resources": {k: {**derived[k], **v} for k, v in RESOURCES.items()},
    }
    spec = pods.pod_spec(
        uid=uid,
        service_account=report_name(owner),
        containers=[container],
        volumes=[
            *pods.scratch_volumes(storage),
            pods.scripts_volume(scripts_config_map),
            pods.server_ca_volume(ca_bundle),
            _api_volume(),
        ],
        restart_policy="Never",
    )
    return jobs.cronjob(
        owner=owner,
        namespace=namespace,
        component="freshness",
        schedule=schedule,
        pod=placement.apply(spec),
        pod_labels={**labels(owner, "freshness"), **placement.labels()},
        starting_deadline=600,
        backoff_limit=1,
        active_deadline=ACTIVE_DEADLINE_SECONDS,
    )
