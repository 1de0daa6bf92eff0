"""The builders of composed resources: restricted pods, the server, the Service, the
NetworkPolicy and the Jobs (resources/, pods.py)."""

from __future__ import annotations

import pytest

from function import pods
from function.models import BSLSSpec
from function.placement import PodPlacement
from function.resources import jobs, server
from tests.test_connection import conn


def spec(**kwargs: object) -> BSLSSpec:
    return BSLSSpec.model_validate({"repositoryRef": {"name": "repo"}, **kwargs})


def deployment(**kwargs: object) -> dict:
    append_ca = bool(kwargs.pop("append_ca", False))
    s = spec(**kwargs)
    storage = server.storage_for(s.server.cache)
    return server.deployment(
        owner="srv",
        namespace="ns",
        image=s.server.image or "kopia/kopia:0.23.1",
        uid=65532,
        log_level=s.server.logLevel,
        resources=server.resources_for(s.server.resources, storage),
        storage=storage,
        metrics=s.metrics.enabled,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        tls_secret="srv-tls",
        append_ca=append_ca,
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
        placement=PodPlacement(),
        rollout={"tls-digest": "abc"},
    )


def test_server_pod_is_restricted() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["memory"]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/app/config", "/app/cache", "/app/logs", "/home/kopia", "/tmp"} <= mounted


def test_server_never_gets_a_ui_password_and_mounts_no_ca_key() -> None:
    d = deployment()
    env = {e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "KOPIA_SERVER_PASSWORD" not in env
    assert "KOPIA_SERVER_CONTROL_PASSWORD" in env
    tls = next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert [i["key"] for i in tls["secret"]["items"]] == ["tls.crt", "tls.key"]
    assert "--no-ui" in pods.script("server.sh")


def test_a_brought_cert_manager_secret_is_served_with_its_ca_appended() -> None:
    container = deployment(append_ca=True)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "BSLS_TLS_APPEND_CA", "value": "true"} in container["env"]
    pod = deployment(append_ca=True)["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert [i["key"] for i in tls["secret"]["items"]] == ["tls.crt", "tls.key", "ca.crt"]


def test_server_resources_merge_over_defaults() -> None:
    d = deployment(server={"resources": {"limits": {"memory": "4Gi"}}})
    res = d["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "3327Mi"}
    assert res["requests"] == {
        **server.DEFAULT_RESOURCES["requests"],
        "ephemeral-storage": "1408Mi",
    }
    spelled = deployment(server={"resources": {"limits": {"ephemeral-storage": "20Gi"}}})
    limits = spelled["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["ephemeral-storage"] == "20Gi"


def env_of(d: dict) -> dict[str, str]:
    return {
        e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
    }


@pytest.mark.parametrize("size", [64, 2048, 50_000])
def test_the_cache_and_the_logs_always_fit_under_the_ephemeral_limit(size: int) -> None:
    """kopia's hard cache limits plus both log folders, with room to spare, in one place."""
    d = deployment(server={"cache": {"sizeMB": size}})
    env = env_of(d)
    cache = int(env["BSLS_CONTENT_CACHE_LIMIT_MB"]) + int(env["BSLS_METADATA_CACHE_LIMIT_MB"])
    logs = int(env["KOPIA_LOG_DIR_MAX_SIZE_MB"]) + int(env["KOPIA_CONTENT_LOG_DIR_MAX_SIZE_MB"])
    limit = d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limit["ephemeral-storage"].removesuffix("Mi")) >= cache + logs + 256
    assert int(env["BSLS_CONTENT_CACHE_MB"]) + int(env["BSLS_METADATA_CACHE_MB"]) == size
    for script in ("server.sh", "user-sync.sh", "repository-init.sh"):
        assert '--content-cache-size-limit-mb="${BSLS_CONTENT_CACHE_LIMIT_MB:?}"' in pods.script(
            script
        )


def test_the_cache_can_live_on_a_volume_of_its_own() -> None:
    d = deployment(server={"cache": {"sizeMB": 40_000, "volume": {"size": "50Gi"}}})
    pod = d["spec"]["template"]["spec"]
    [cache] = [v for v in pod["volumes"] if v["name"] == "cache"]
    claim = cache["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    limit = pod["containers"][0]["resources"]["limits"]["ephemeral-storage"]
    assert limit == "768Mi"  # logs and room only: the cache is not ephemeral storage


def test_a_start_never_re_owns_the_repository_and_a_cold_start_is_not_killed() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    container = pod["containers"][0]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    assert "initialDelaySeconds" not in container["livenessProbe"]


def test_server_image_override_and_rollout_annotations() -> None:
    d = deployment(server={"image": "mirror.local/kopia:0.23.1"})
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.local/kopia:0.23.1"
    assert d["spec"]["template"]["metadata"]["annotations"] == {
        "dataprotection.bsls.dev/tls-digest": "abc"
    }
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_service_exposes_only_the_kopia_port() -> None:
    svc = server.service("srv", "ns", "LoadBalancer", 443)
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [
        {"name": "kopia", "port": 443, "targetPort": "kopia", "protocol": "TCP"}
    ]


def test_network_policy_admits_the_kopia_port_from_the_given_peers() -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"vms": "true"}}},
        {"ipBlock": {"cidr": "10.0.0.0/8"}},
    ]
    np_spec = spec(networkPolicy={"from": peers})
    np = server.network_policy("srv", "ns", tuple(np_spec.networkPolicy.from_), False, ())
    [rule] = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": server.CONTAINER_PORT, "protocol": "TCP"}]
    sync_pods = {
        "app.kubernetes.io/instance": "srv",
        "app.kubernetes.io/component": "user-sync",
    }
    freshness_pods = {**sync_pods, "app.kubernetes.io/component": "freshness"}
    assert rule["from"] == [
        *peers,
        {"podSelector": {"matchLabels": sync_pods}},
        {"podSelector": {"matchLabels": freshness_pods}},
    ]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    open_np = server.network_policy("srv", "ns", (), False, ())
    assert "from" not in open_np["spec"]["ingress"][0]


def test_sync_job_mounts_passwords_as_files_and_has_no_ttl() -> None:
    job = jobs.user_sync(
        owner="srv",
        namespace="ns",
        digest="0123456789abcdef",
        attempt=0,
        image="kopia/kopia:0.23.1",
        uid=65532,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        sources=(("srv-a-h", "a@h", "append"),),
        endpoint="https://srv.ns.svc:51515",
        ca_bundle="srv-ca-bundle",
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
        access_rules="* READ type=content\n",
        placement=PodPlacement(),
    )
    assert job["metadata"]["name"] == "srv-user-sync-0123456789"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert "pw-1" not in str(job)
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "users")
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "srv-a-h", "items": [{"key": "password", "path": "append/a@h"}]}}
    ]


def test_sync_job_verifies_the_server_with_the_ca_bundle_never_a_fingerprint() -> None:
    job = jobs.user_sync(
        owner="srv",
        namespace="ns",
        digest="0123456789abcdef",
        attempt=0,
        image="kopia/kopia:0.23.1",
        uid=65532,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        sources=(),
        endpoint="https://srv.ns.svc:51515",
        ca_bundle="srv-ca-bundle",
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
        access_rules="* READ type=content\n",
        placement=PodPlacement(),
    )
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["SSL_CERT_FILE"] == "/etc/bsls/server-ca/ca.crt"
    assert env["BSLS_SERVER_URL"] == "https://srv.ns.svc:51515"
    assert not any("FINGERPRINT" in name for name in env)
    ca = next(v for v in pod["volumes"] if v["name"] == "server-ca")
    assert ca["configMap"]["name"] == "srv-ca-bundle"
    assert "--server-cert-fingerprint" not in pods.script("user-sync.sh")
