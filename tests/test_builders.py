"""Unit tests for the pure builders: repository mapping, pods, users, names, models."""

from __future__ import annotations

import base64
import re

import pytest

from function import names, pods, repository, users
from function.models import DNS_SUBDOMAIN, BSLRSpec, BSLSSpec, FunctionInput, User
from function.resources import jobs, server

# ---------------------------------------------------------------------------- repository


def conn(backend: dict, password: dict | None = None) -> repository.Connection:
    return repository.connection(
        BSLRSpec.model_validate(
            {"passwordSecretRef": password or {"name": "repo-pw"}, "backend": backend}
        )
    )


def env_refs(c: repository.Connection) -> dict[str, tuple[str, str]]:
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in c.env
        if "valueFrom" in e
    }


def test_s3_with_everything() -> None:
    c = conn(
        {
            "s3": {
                "bucket": "backups",
                "prefix": "bsls/team-a/",
                "region": "eu-west-1",
                "endpoint": "http://minio.storage.svc:9000",
                "insecureSkipTLSVerify": True,
                "caBundleSecretRef": {"name": "s3-ca"},
                "credentialsSecretRef": {"name": "s3-creds", "sessionTokenKey": "TOKEN"},
            }
        }
    )
    assert c.backend == "s3"
    assert c.args == (
        "s3",
        "--bucket=backups",
        "--prefix=bsls/team-a/",
        "--region=eu-west-1",
        "--endpoint=minio.storage.svc:9000",
        "--disable-tls",
        "--disable-tls-verification",
        "--root-ca-pem-path=/etc/bsls/s3-ca/ca.crt",
    )
    assert env_refs(c) == {
        "KOPIA_PASSWORD": ("repo-pw", "password"),
        "AWS_ACCESS_KEY_ID": ("s3-creds", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("s3-creds", "AWS_SECRET_ACCESS_KEY"),
        "AWS_SESSION_TOKEN": ("s3-creds", "TOKEN"),
    }
    token = next(e for e in c.env if e["name"] == "AWS_SESSION_TOKEN")
    assert "optional" not in token["valueFrom"]["secretKeyRef"]
    assert c.volumes[0]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert c.location == "s3://minio.storage.svc:9000/backups/bsls/team-a/"


def test_s3_minimal_has_an_optional_session_token() -> None:
    c = conn({"s3": {"bucket": "backups", "credentialsSecretRef": {"name": "k"}}})
    assert c.args == ("s3", "--bucket=backups")
    token = next(e for e in c.env if e["name"] == "AWS_SESSION_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["optional"] is True


def test_gcs_mounts_the_key_file() -> None:
    c = conn({"gcs": {"bucket": "b-gcs", "prefix": "p/", "credentialsSecretRef": {"name": "sa"}}})
    assert c.args == (
        "gcs",
        "--bucket=b-gcs",
        "--prefix=p/",
        "--credentials-file=/etc/bsls/gcs/credentials.json",
    )
    assert c.volumes[0]["secret"] == {
        "secretName": "sa",
        "items": [{"key": "service-account.json", "path": "credentials.json"}],
        "defaultMode": 0o440,
    }
    assert c.mounts[0]["readOnly"] is True


def test_azure_takes_the_key_from_env() -> None:
    c = conn(
        {
            "azure": {
                "container": "backups",
                "storageAccount": "acct",
                "credentialsSecretRef": {"name": "az"},
            }
        }
    )
    assert c.args == ("azure", "--container=backups", "--storage-account=acct")
    assert env_refs(c)["AZURE_STORAGE_KEY"] == ("az", "AZURE_STORAGE_KEY")


def test_filesystem_takes_the_path_from_env_and_mounts_the_claim() -> None:
    c = conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}, "path": "/data"}})
    assert c.args == ("filesystem", "--path=$(BSLS_REPOSITORY_PATH)")
    assert {"name": "BSLS_REPOSITORY_PATH", "value": "/data"} in c.env
    assert c.volumes == ({"name": "repository", "persistentVolumeClaim": {"claimName": "repo"}},)
    assert c.mounts == ({"name": "repository", "mountPath": "/data"},)


def test_connection_digest_follows_settings_not_time() -> None:
    a = conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}})
    b = conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}})
    c = conn({"filesystem": {"persistentVolumeClaim": {"claimName": "other"}}})
    assert a.digest == b.digest != c.digest


def test_no_credential_is_ever_a_literal() -> None:
    c = conn({"s3": {"bucket": "backups", "credentialsSecretRef": {"name": "k"}}})
    for e in c.env:
        if e["name"].startswith(("AWS_", "KOPIA_PASSWORD")):
            assert "value" not in e


# ---------------------------------------------------------------------------- pods


def spec(**kwargs: object) -> BSLSSpec:
    return BSLSSpec.model_validate({"repositoryRef": {"name": "repo"}, **kwargs})


def deployment(**kwargs: object) -> dict:
    append_ca = bool(kwargs.pop("append_ca", False))
    return server.deployment(
        xr="srv",
        namespace="ns",
        spec=spec(**kwargs),
        image="kopia/kopia:0.23.1",
        uid=65532,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        tls_secret="srv-tls",
        append_ca=append_ca,
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
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
    assert res["limits"] == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}
    assert res["requests"] == server.DEFAULT_RESOURCES["requests"]


def test_server_image_override_and_rollout_annotations() -> None:
    d = deployment(server={"image": "mirror.local/kopia:0.23.1"})
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.local/kopia:0.23.1"
    assert d["spec"]["template"]["metadata"]["annotations"] == {
        "dataprotection.bsls.dev/tls-digest": "abc"
    }
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_service_exposes_only_the_kopia_port() -> None:
    svc = server.service("srv", "ns", spec(service={"type": "LoadBalancer", "port": 443}), 443)
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [
        {"name": "kopia", "port": 443, "targetPort": "kopia", "protocol": "TCP"}
    ]


def test_network_policy_admits_the_kopia_port_from_the_given_peers() -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"vms": "true"}}},
        {"ipBlock": {"cidr": "10.0.0.0/8"}},
    ]
    np = server.network_policy("srv", "ns", spec(networkPolicy={"from": peers}))
    [rule] = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": server.CONTAINER_PORT, "protocol": "TCP"}]
    sync_pods = {
        "app.kubernetes.io/instance": "srv",
        "app.kubernetes.io/component": "user-sync",
    }
    assert rule["from"] == [*peers, {"podSelector": {"matchLabels": sync_pods}}]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    open_np = server.network_policy("srv", "ns", spec())
    assert "from" not in open_np["spec"]["ingress"][0]


# ---------------------------------------------------------------------------- users


def resolved(identity: str, password: str) -> users.Resolved:
    u, h = identity.split("@")
    return users.Resolved(User(username=u, hostname=h), f"srv-{u}-{h}", password)


def test_sync_digest_changes_with_any_input_and_hides_passwords() -> None:
    base = [resolved("a@h", "pw-1"), resolved("b@h", "pw-2")]
    d = users.sync_digest("key", base, {"endpoint": "e"})
    assert d == users.sync_digest("key", list(reversed(base)), {"endpoint": "e"})
    assert d != users.sync_digest("key", [resolved("a@h", "pw-X"), base[1]], {"endpoint": "e"})
    assert d != users.sync_digest("key", base[:1], {"endpoint": "e"})
    assert d != users.sync_digest("key", base, {"endpoint": "f"})
    assert d != users.sync_digest("other-key", base, {"endpoint": "e"})


def test_sync_job_mounts_passwords_as_files_and_has_no_ttl() -> None:
    job = jobs.user_sync(
        xr="srv",
        namespace="ns",
        digest="0123456789abcdef",
        image="kopia/kopia:0.23.1",
        uid=65532,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        sources=(("srv-a-h", "a@h"),),
        endpoint="https://srv.ns.svc:51515",
        ca_bundle="srv-ca-bundle",
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
    )
    assert job["metadata"]["name"] == "srv-user-sync-0123456789"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert "pw-1" not in str(job)
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "users")
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "srv-a-h", "items": [{"key": "password", "path": "a@h"}]}}
    ]


def test_sync_job_verifies_the_server_with_the_ca_bundle_never_a_fingerprint() -> None:
    job = jobs.user_sync(
        xr="srv",
        namespace="ns",
        digest="0123456789abcdef",
        image="kopia/kopia:0.23.1",
        uid=65532,
        connection=conn({"filesystem": {"persistentVolumeClaim": {"claimName": "repo"}}}),
        sources=(),
        endpoint="https://srv.ns.svc:51515",
        ca_bundle="srv-ca-bundle",
        control_secret="srv-control",
        control_username="BSLS-CONTROL",
        scripts_config_map="srv-scripts",
    )
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["SSL_CERT_FILE"] == "/etc/bsls/server-ca/ca.crt"
    assert env["BSLS_SERVER_URL"] == "https://srv.ns.svc:51515"
    assert not any("FINGERPRINT" in name for name in env)
    ca = next(v for v in pod["volumes"] if v["name"] == "server-ca")
    assert ca["configMap"]["name"] == "srv-ca-bundle"
    assert "--server-cert-fingerprint" not in pods.script("user-sync.sh")


def test_generated_passwords_are_strong_and_url_safe() -> None:
    seen = {users.generate_password() for _ in range(100)}
    assert len(seen) == 100
    for p in seen:
        assert len(p) == 32
        assert set(p) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_corrupted_generated_password_is_replaced() -> None:
    user = User(username="bob", hostname="vm")
    observed = {"bob@vm": {"data": {"password": base64.b64encode(b" bad ").decode()}}}
    [r] = users.resolve([user], xr="srv", observed_credentials=observed, required_secrets={})
    assert r.generated
    assert r.password != " bad "


# ---------------------------------------------------------------------------- names


def test_names_are_valid_and_stable_even_when_long() -> None:
    long = "x" * 200
    assert len(names.server(long)) <= 63
    assert names.server(long) == names.server(long)
    assert len(names.job(long, "user-sync", "f" * 64)) <= 63
    cred = names.credentials(long, "u" * 64, "h" * 128)
    assert len(cred) <= 253
    assert DNS_SUBDOMAIN.match(cred)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a-b", "c"), ("a", "b-c")),  # the same words, split elsewhere
        (("a_b", "h"), ("a-b", "h")),  # '_' cannot be in a name
        (("a.b", "h"), ("a-b", "h")),  # nor can every '.'
        (("x", "y.z"), ("x.y", "z")),
    ],
)
def test_look_alike_identities_never_share_a_credentials_secret(a, b) -> None:
    assert names.credentials("srv", *a) != names.credentials("srv", *b)


@pytest.mark.parametrize(
    ("username", "hostname"),
    [("tls", "ca"), ("ca", "bundle"), ("control", "x"), ("x", "control"), ("a..b", "c-.d")],
)
def test_a_credentials_secret_never_takes_a_system_name(username: str, hostname: str) -> None:
    name = names.credentials("srv", username, hostname)
    assert DNS_SUBDOMAIN.match(name), name
    system = {names.secret("srv", s) for s in ("tls-ca", "tls", "control", "scripts")}
    assert name not in system
    # By construction: a credentials Secret's last segment is 12 hex digits, and no
    # system Secret's is (whatever the XR is called).
    assert re.fullmatch(r"[0-9a-f]{12}", name.rsplit("-", 1)[1])
    assert not any(re.fullmatch(r"[0-9a-f]{12}", s.rsplit("-", 1)[1]) for s in system)


# ---------------------------------------------------------------------------- input


def test_input_defaults_are_usable() -> None:
    inp = FunctionInput.model_validate({})
    assert inp.kopiaImage == "kopia/kopia:0.23.1"
    assert inp.servicePort == 51515
    assert inp.renew_before_days == 121
    assert inp.repositoryKind == "BackupStorageLocationRepository"


def test_renewal_window_must_fit_the_lifetime() -> None:
    with pytest.raises(ValueError, match="must be shorter"):
        FunctionInput.model_validate({"certificateValidityDays": 10, "renewBeforeDays": 10})
