"""How pods open each storage backend: flags, env and volumes (backends.py, connection.py)."""

from __future__ import annotations

from function import connection
from function.models import BSLRSpec


def conn(backend: dict, password: dict | None = None) -> connection.Connection:
    return connection.connect(
        BSLRSpec.model_validate(
            {"passwordSecretRef": password or {"name": "repo-pw"}, "backend": backend}
        ),
        "repo",
    )


def env_refs(c: connection.Connection) -> dict[str, tuple[str, str]]:
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


def test_an_https_endpoint_is_accepted_and_normalised() -> None:
    c = conn({"s3": {"bucket": "backups", "endpoint": "https://minio.storage.svc:9000"}})
    assert "--endpoint=minio.storage.svc:9000" in c.args
    assert "--disable-tls" not in c.args


def test_a_rotation_gives_both_passwords_by_reference_and_changes_the_digest() -> None:
    spec = BSLRSpec.model_validate(
        {"passwordSecretRef": {"name": "new"}, "backend": {"s3": {"bucket": "b1b"}}}
    )
    old = connection.connect(spec, "repo", in_force=spec.passwordSecretRef)
    rotating = connection.connect(
        spec,
        "repo",
        in_force=spec.passwordSecretRef.model_copy(update={"name": "old"}),
        pending=spec.passwordSecretRef,
    )
    assert env_refs(rotating)["KOPIA_PASSWORD"] == ("old", "password")
    assert env_refs(rotating)["BSLS_PENDING_PASSWORD"] == ("new", "password")
    assert "BSLS_PENDING_PASSWORD" not in env_refs(old)
    # Pods that open the repository run again; where it is has not changed.
    assert rotating.digest != old.digest
    assert rotating.storage_digest == old.storage_digest
