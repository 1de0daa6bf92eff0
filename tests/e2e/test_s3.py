"""End to end on S3: the same flow against a real S3-protocol server on loopback (moto)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster, free_port
from tests.e2e.kopia import make_tree, tree
from tests.e2e.stack import Stack, stand_up

ALICE = "alice@vm-alice"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3 server on 127.0.0.1, stopped on teardown."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.fail(
            "moto's server mode is missing: install the dev dependencies "
            "(`make venv`, which installs moto[server])",
            pytrace=False,
        )
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    del tenant_secrets
    import boto3

    bslr = helpers.example("bslr-s3.yaml")
    s3 = bslr["spec"]["backend"]["s3"]
    s3["endpoint"] = s3_endpoint  # the one thing a cluster would differ in
    keys = cluster.secret_data(bslr["metadata"]["namespace"], s3["credentialsSecretRef"]["name"])
    assert keys is not None
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=s3["region"],
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"].decode(),
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"].decode(),
    ).create_bucket(Bucket=s3["bucket"])

    bsls = helpers.example("bsls.yaml")
    bsls["spec"]["repositoryRef"]["name"] = bslr["metadata"]["name"]
    return stand_up(cluster, bslr, bsls, clock, tmp_path_factory.mktemp("clients"))


def test_alice_backs_up_and_restores_on_s3(
    stack: Stack, s3_endpoint: str, tmp_path: pathlib.Path
) -> None:
    import boto3

    for condition in ("RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable"):
        assert stack.server.conditions[condition][0] == "True", stack.server.conditions
    assert stack.repository.status["backend"] == "s3"
    # The pods reached the bucket over plain HTTP at the BSLR's endpoint.
    args = stack.deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--endpoint={s3_endpoint.removeprefix('http://')}" in args
    assert "--disable-tls" in args

    source = make_tree(tmp_path / "data", seed="s3")
    alice = stack.connected(ALICE)
    snapshot_id = alice.snapshot(source)
    again = stack.connected(ALICE)
    assert [s["id"] for s in again.snapshots()] == [snapshot_id]
    again.restore(snapshot_id, tmp_path / "restored")
    assert tree(tmp_path / "restored") == tree(source)

    # Everything kopia wrote is under the BSLR's prefix.
    s3 = stack.repository.xr["spec"]["backend"]["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=s3["region"],
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3["bucket"]).get("Contents", [])]
    assert f"{s3['prefix']}kopia.repository" in keys
    assert all(k.startswith(s3["prefix"]) for k in keys)
