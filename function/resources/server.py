"""The Kopia server: its Deployment, Service and NetworkPolicy."""

from __future__ import annotations

from function import names, pods
from function.models import BSLSSpec
from function.repository import Connection
from function.resources.meta import labels, metadata

CONTAINER_PORT = 51515
METRICS_PORT = 51516
TLS_DIR = "/etc/bsls/tls"
ANNOTATION_PREFIX = "dataprotection.bsls.dev/"

DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
    "limits": {"cpu": "2", "memory": "2Gi", "ephemeral-storage": "10Gi"},
}


def selector(xr: str, component: str = "server") -> dict[str, str]:
    """The labels that select one component's pods."""
    full = labels(xr, component)
    return {k: full[k] for k in ("app.kubernetes.io/instance", names.LABEL_COMPONENT)}


def resources_for(spec: BSLSSpec) -> dict:
    """The server's compute resources: the defaults, overridden field by field."""
    out = {k: dict(v) for k, v in DEFAULT_RESOURCES.items()}
    if (res := spec.server.resources) is not None:
        out["requests"].update(res.requests or {})
        out["limits"].update(res.limits or {})
    return out


def deployment(
    *,
    xr: str,
    namespace: str,
    spec: BSLSSpec,
    image: str,
    uid: int,
    connection: Connection,
    tls_secret: str,
    append_ca: bool,
    control_secret: str,
    control_username: str,
    scripts_config_map: str,
    rollout: dict[str, str],
) -> dict:
    """The server Deployment.

    `rollout` holds digests of everything the server reads only at start (the served
    certificate, the scripts, the repository settings); they go into the pod template
    so a change rolls the pod. With `append_ca` (a brought Secret in cert-manager's
    shape) the server serves `tls.crt` followed by the Secret's `ca.crt`.
    """
    env = [
        {"name": "BSLS_LISTEN_ADDRESS", "value": f"0.0.0.0:{CONTAINER_PORT}"},
        {"name": "BSLS_TLS_DIR", "value": TLS_DIR},
        {"name": "BSLS_CONTROL_USERNAME", "value": control_username},
        {
            "name": "KOPIA_SERVER_CONTROL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": control_secret, "key": "password"}},
        },
        {"name": "BSLS_LOG_LEVEL", "value": spec.server.logLevel},
    ]
    tls_items = [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
    if append_ca:
        env.append({"name": "BSLS_TLS_APPEND_CA", "value": "true"})
        tls_items.append({"key": "ca.crt", "path": "ca.crt"})
    container = pods.kopia_container(
        name="kopia",
        image=spec.server.image or image,
        script_name="server.sh",
        connection=connection,
        identity=names.SERVER_IDENTITY,
        env=env,
        mounts=[{"name": "tls", "mountPath": TLS_DIR, "readOnly": True}],
        resources_=resources_for(spec),
    )
    container["ports"] = [{"name": "kopia", "containerPort": CONTAINER_PORT, "protocol": "TCP"}]
    if spec.metrics.enabled:
        container["env"].append(
            {"name": "BSLS_METRICS_ADDRESS", "value": f"0.0.0.0:{METRICS_PORT}"}
        )
        container["ports"].append(
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
        )
    probe = {"tcpSocket": {"port": "kopia"}, "periodSeconds": 10}
    container["readinessProbe"] = {**probe, "initialDelaySeconds": 2}
    container["livenessProbe"] = {**probe, "initialDelaySeconds": 30, "failureThreshold": 6}
    volumes = [
        *pods.scratch_volumes(),
        pods.scripts_volume(scripts_config_map),
        {
            "name": "tls",
            "secret": {"secretName": tls_secret, "items": tls_items, "defaultMode": 0o440},
        },
        *connection.volumes,
    ]
    pod_labels = labels(xr, "server")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names.server(xr), namespace, xr, "server"),
        "spec": {
            "replicas": 1,
            # Never two servers at once: they would both run maintenance as the owner.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(xr)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {ANNOTATION_PREFIX + k: v for k, v in sorted(rollout.items())},
                },
                "spec": pods.pod_spec(
                    uid=uid, containers=[container], volumes=volumes, restart_policy="Always"
                ),
            },
        },
    }


def service(xr: str, namespace: str, spec: BSLSSpec, port: int) -> dict:
    """The Service: the Kopia port and nothing else."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(names.server(xr), namespace, xr, "server"),
        "spec": {
            "type": spec.service.type,
            "selector": selector(xr),
            "ports": [{"name": "kopia", "port": port, "targetPort": "kopia", "protocol": "TCP"}],
        },
    }


def network_policy(xr: str, namespace: str, spec: BSLSSpec) -> dict:
    """Admit traffic to the Kopia port only, from the configured sources (any if none).

    When sources are listed, the server's own user-sync pods are admitted too: they ask
    the server to re-read its users after every sync.
    """
    rule: dict = {"ports": [{"port": CONTAINER_PORT, "protocol": "TCP"}]}
    peers = [peer.model_dump(exclude_none=True, by_alias=True) for peer in spec.networkPolicy.from_]
    if peers:
        rule["from"] = [*peers, {"podSelector": {"matchLabels": selector(xr, "user-sync")}}]
    rules = [rule]
    if spec.metrics.enabled:
        metrics: dict = {"ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}
        scrapers = [p.model_dump(exclude_none=True, by_alias=True) for p in spec.metrics.from_]
        if scrapers:
            metrics["from"] = scrapers
        rules.append(metrics)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(names.server(xr), namespace, xr, "network-policy"),
        "spec": {
            # The server and its sync Jobs; the Jobs listen on nothing, so the one rule
            # admits connections to the server only.
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": names.label(xr)},
                "matchExpressions": [
                    {
                        "key": names.LABEL_COMPONENT,
                        "operator": "In",
                        "values": ["server", "user-sync"],
                    }
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def pod_monitor(xr: str, namespace: str) -> dict:
    """A Prometheus Operator PodMonitor that scrapes the server's metrics port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata(names.server(xr), namespace, xr, "metrics"),
        "spec": {
            "selector": {"matchLabels": selector(xr)},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "60s"}],
        },
    }


def endpoint_host(xr: str, namespace: str) -> str:
    """The host name in the endpoint: the Service's in-cluster name, which the leaf names."""
    return f"{names.server(xr)}.{namespace}.svc"


def endpoint(xr: str, namespace: str, port: int) -> str:
    """The URL VM owners pass to `--url`."""
    return f"https://{endpoint_host(xr, namespace)}:{port}"


def dns_names(xr: str, namespace: str) -> list[str]:
    """Every name the Service answers to inside the cluster."""
    svc = names.server(xr)
    return [
        f"{svc}.{namespace}.svc",
        svc,
        f"{svc}.{namespace}",
        f"{svc}.{namespace}.svc.cluster.local",
    ]
