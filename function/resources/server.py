"""The Kopia server: its Deployment, Service and NetworkPolicy."""

from __future__ import annotations

from collections.abc import Mapping

from function import names, pods
from function.connection import Connection
from function.models import CacheSpec, PeerSpec, Resources
from function.placement import PodPlacement
from function.resources.meta import labels, metadata

CONTAINER_PORT = 51515
METRICS_PORT = 51516
TLS_DIR = "/etc/bsls/tls"
ANNOTATION_PREFIX = "dataprotection.bsls.dev/"

# CPU and memory; ephemeral storage follows from the cache (pods.Storage).
DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "2", "memory": "2Gi"},
}


def selector(owner: str, component: str = "server") -> dict[str, str]:
    """The labels that select one component's pods."""
    full = labels(owner, component)
    return {k: full[k] for k in ("app.kubernetes.io/instance", names.LABEL_COMPONENT)}


def storage_for(cache: CacheSpec) -> pods.Storage:
    """What the server may write: its cache as the spec sizes it, and its logs."""
    volume = cache.volume
    return pods.Storage(
        cache_mb=cache.sizeMB,
        cache_volume=volume.size if volume else None,
        cache_storage_class=volume.storageClassName if volume else None,
    )


def resources_for(overrides: Resources | None, storage: pods.Storage) -> dict[str, dict[str, str]]:
    """The server's compute resources: the defaults, overridden field by field."""
    out = {k: dict(v) for k, v in DEFAULT_RESOURCES.items()}
    out["requests"]["ephemeral-storage"] = storage.ephemeral_request
    out["limits"]["ephemeral-storage"] = storage.ephemeral_limit
    if overrides is not None:
        out["requests"].update(overrides.requests or {})
        out["limits"].update(overrides.limits or {})
    return out


def deployment(
    *,
    owner: str,
    namespace: str,
    image: str,
    uid: int,
    log_level: str,
    resources: Mapping[str, Mapping[str, str]],
    storage: pods.Storage,
    metrics: bool,
    connection: Connection,
    tls_secret: str,
    append_ca: bool,
    control_secret: str,
    control_username: str,
    scripts_config_map: str,
    rollout: Mapping[str, str],
    placement: PodPlacement,
) -> dict:
    """The server Deployment.

    `rollout` holds digests of everything the server reads only at start (the served
    certificate, the scripts, the repository settings); they go into the pod template
    so a change rolls the pod. With `append_ca` (a brought Secret in cert-manager's
    shape) the server serves `tls.crt` followed by the Secret's `ca.crt`.
    """
    env = [
        # Every address of every family the pod has (IPv4, IPv6 or both).
        {"name": "BSLS_LISTEN_ADDRESS", "value": f":{CONTAINER_PORT}"},
        {"name": "BSLS_TLS_DIR", "value": TLS_DIR},
        {"name": "BSLS_CONTROL_USERNAME", "value": control_username},
        {
            "name": "KOPIA_SERVER_CONTROL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": control_secret, "key": "password"}},
        },
        {"name": "BSLS_LOG_LEVEL", "value": log_level},
    ]
    tls_items = [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
    if append_ca:
        env.append({"name": "BSLS_TLS_APPEND_CA", "value": "true"})
        tls_items.append({"key": "ca.crt", "path": "ca.crt"})
    if metrics:
        env.append({"name": "BSLS_METRICS_ADDRESS", "value": f":{METRICS_PORT}"})
    pod = pods.kopia_pod(
        uid=uid,
        name="kopia",
        image=image,
        script_name="server.sh",
        scripts_config_map=scripts_config_map,
        connection=connection,
        identity=names.SERVER_IDENTITY,
        storage=storage,
        env=env,
        mounts=[{"name": "tls", "mountPath": TLS_DIR, "readOnly": True}],
        volumes=[
            {
                "name": "tls",
                "secret": {"secretName": tls_secret, "items": tls_items, "defaultMode": 0o440},
            }
        ],
        resources_={k: dict(v) for k, v in resources.items()},
        restart_policy="Always",
        placement=placement,
    )
    [container] = pod["containers"]
    container["ports"] = [{"name": "kopia", "containerPort": CONTAINER_PORT, "protocol": "TCP"}]
    if metrics:
        container["ports"].append(
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
        )
    probe = {"tcpSocket": {"port": "kopia"}, "periodSeconds": 10}
    # A cold start opens the repository first (a large one takes minutes): the liveness
    # probe only starts once the startup probe passed, up to 30 minutes after the start.
    container["startupProbe"] = {**probe, "periodSeconds": 5, "failureThreshold": 360}
    container["readinessProbe"] = {**probe, "periodSeconds": 5}
    container["livenessProbe"] = {**probe, "failureThreshold": 6}
    pod_labels = {**dict(connection.pod_labels), **labels(owner, "server"), **placement.labels()}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names.server(owner), namespace, owner, "server"),
        "spec": {
            "replicas": 1,
            # Never two servers at once: they would both run maintenance as the owner.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(owner)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {ANNOTATION_PREFIX + k: v for k, v in sorted(rollout.items())},
                },
                "spec": pod,
            },
        },
    }


def service(
    owner: str,
    namespace: str,
    service_type: str,
    port: int,
    *,
    node_port: int | None = None,
    annotations: tuple[tuple[str, str], ...] = (),
) -> dict:
    """The Service: the Kopia port and nothing else, on every IP family the cluster has."""
    kopia: dict = {"name": "kopia", "port": port, "targetPort": "kopia", "protocol": "TCP"}
    if node_port is not None:
        kopia["nodePort"] = node_port
    meta = metadata(names.server(owner), namespace, owner, "server")
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": service_type,
            # Both families on a dual-stack cluster; a single-stack one gives its own.
            "ipFamilyPolicy": "PreferDualStack",
            "selector": selector(owner),
            "ports": [kopia],
        },
    }


def network_policy(
    owner: str,
    namespace: str,
    peers: tuple[PeerSpec, ...],
    metrics: bool,
    scrapers: tuple[PeerSpec, ...],
) -> dict:
    """Admit traffic to the Kopia port only, from `peers` (any source if none).

    When peers are listed, the server's own user-sync and freshness pods are admitted
    too: the first ask the server to re-read its users after every sync, the second
    read the snapshot records. With `metrics` the metrics port
    is admitted from `scrapers` (any source if none).
    """
    rule: dict = {"ports": [{"port": CONTAINER_PORT, "protocol": "TCP"}]}
    admitted = [peer.model_dump(exclude_none=True, by_alias=True) for peer in peers]
    if admitted:
        rule["from"] = [
            *admitted,
            {"podSelector": {"matchLabels": selector(owner, "user-sync")}},
            {"podSelector": {"matchLabels": selector(owner, "freshness")}},
        ]
    rules = [rule]
    if metrics:
        scrape: dict = {"ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}
        if scrapers:
            scrape["from"] = [p.model_dump(exclude_none=True, by_alias=True) for p in scrapers]
        rules.append(scrape)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(names.server(owner), namespace, owner, "network-policy"),
        "spec": {
            # The server and its Jobs; the Jobs listen on nothing, so the one rule
            # admits connections to the server only.
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": names.label(owner)},
                "matchExpressions": [
                    {
                        "key": names.LABEL_COMPONENT,
                        "operator": "In",
                        "values": ["server", "user-sync", "freshness"],
                    }
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def pod_monitor(owner: str, namespace: str) -> dict:
    """A Prometheus Operator PodMonitor that scrapes the server's metrics port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata(names.server(owner), namespace, owner, "metrics"),
        "spec": {
            "selector": {"matchLabels": selector(owner)},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "60s"}],
        },
    }


def endpoint_host(owner: str, namespace: str) -> str:
    """The host name in the endpoint: the Service's in-cluster name, which the leaf names."""
    return f"{names.server(owner)}.{namespace}.svc"


def endpoint(owner: str, namespace: str, port: int) -> str:
    """The URL VM owners pass to `--url`."""
    return f"https://{endpoint_host(owner, namespace)}:{port}"


def dns_names(owner: str, namespace: str) -> list[str]:
    """Every name the Service answers to inside the cluster."""
    svc = names.server(owner)
    return [
        f"{svc}.{namespace}.svc",
        svc,
        f"{svc}.{namespace}",
        f"{svc}.{namespace}.svc.cluster.local",
    ]
