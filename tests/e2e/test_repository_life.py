"""A repository's life with the real kopia: settings, rotation, health, object lock.

Each story runs what the function renders for a BSLR (and a BSLS) on the stand-in
cluster, then checks the repository itself with an operator's kopia client connected
straight to the storage: what `kopia repository status` and `kopia policy show` say,
which password opens it, what the bucket holds. S3 runs on moto's server mode.
"""

from __future__ import annotations

import base64
import copy
import json
import pathlib
import secrets

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster, JobRun
from tests.e2e.composite import Composite
from tests.e2e.kopia import Client, make_tree, tree
from tests.e2e.stack import Stack, stand_up, succeeded
from tests.e2e.test_s3 import s3_endpoint  # noqa: F401 - the fixture

NS = "team-a"
ALICE = "alice@vm-alice"
REPOSITORY_PASSWORD = "change-me-repository-password"  # examples/secrets.yaml


def claim(cluster: Cluster, name: str) -> dict:
    """A PersistentVolumeClaim of its own (a repository folder of its own)."""
    [pvc] = helpers.load("claim.yaml")
    pvc = copy.deepcopy(pvc)
    pvc["metadata"]["name"] = name
    cluster.apply(pvc)
    return pvc


def fs_repository(cluster: Cluster, name: str, **spec: object) -> dict:
    """The example filesystem BSLR, renamed, on a claim of its own."""
    claim(cluster, f"{name}-claim")
    bslr = helpers.example("bslr.yaml")
    bslr["metadata"]["name"] = name
    bslr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]["claimName"] = f"{name}-claim"
    bslr["spec"].update(spec)
    return bslr


def mine(runs: list[JobRun], name: str) -> list[JobRun]:
    """The Job runs of one XR (its Jobs are named `<name>-...`)."""
    return [r for r in runs if r.name.startswith(f"{name}-")]


def secret(name: str, password: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


class Storage:
    """An operator's straight view of a repository's storage."""

    def __init__(self, cluster: Cluster, bslr: dict, home: pathlib.Path, s3_keys=None) -> None:
        self.cluster, self.bslr, self.home = cluster, bslr, home
        self.s3_keys = s3_keys or {}
        self._n = 0

    def _flags(self) -> list[str]:
        backend = self.bslr["spec"]["backend"]
        if "filesystem" in backend:
            claim_name = backend["filesystem"]["persistentVolumeClaim"]["claimName"]
            return ["filesystem", f"--path={self.cluster.claim(NS, claim_name)}"]
        s3 = backend["s3"]
        return [
            "s3",
            f"--bucket={s3['bucket']}",
            f"--prefix={s3.get('prefix', '')}",
            f"--endpoint={s3['endpoint'].removeprefix('http://')}",
            "--disable-tls",
        ]

    def connect(self, password: str) -> tuple[Client, int]:
        """A fresh client connected with `password`; its exit code."""
        self._n += 1
        client = Client(self.home / f"operator-{self._n}", self.cluster.hosts, password)
        done = client.run(
            "repository",
            "connect",
            *self._flags(),
            "--override-username=operator",
            "--override-hostname=e2e",
            check=False,
            extra_env=self.s3_keys,
        )
        return client, done.returncode

    def opened(self, password: str) -> Client:
        client, code = self.connect(password)
        assert code == 0, f"the repository did not open with {password[:4]}..."
        return client

    def run(self, client: Client, *args: str) -> str:
        return client.run(*args, extra_env=self.s3_keys).stdout


def initialise(cluster: Cluster, bslr: dict, clock: helpers.Clock) -> Composite:
    repository = Composite(cluster, bslr, clock)
    repository.reconcile()
    succeeded(mine(cluster.run_jobs(), bslr["metadata"]["name"]))
    repository.reconcile()
    return repository


# ---------------------------------------------------------------------------- settings


@pytest.mark.usefixtures("tenant_secrets")
def test_the_format_and_the_global_policy_are_the_specs(
    cluster: Cluster, clock: helpers.Clock, tmp_path: pathlib.Path
) -> None:
    bslr = fs_repository(
        cluster,
        "settings",
        format={
            "encryption": "CHACHA20-POLY1305-HMAC-SHA256",
            "hash": "BLAKE3-256",
            "splitter": "DYNAMIC-1M-BUZHASH",
            "errorCorrection": {"overheadPercent": 2},
        },
        policy={"compression": "zstd", "retention": {"keepLatest": 3}, "ignore": ["*.tmp"]},
    )
    repository = initialise(cluster, bslr, clock)
    assert repository.conditions["Initialized"][:2] == ("True", "Initialized")
    storage = Storage(cluster, bslr, tmp_path)
    operator = storage.opened(REPOSITORY_PASSWORD)
    status = json.loads(storage.run(operator, "repository", "status", "--json"))
    assert status["contentFormat"]["encryption"] == "CHACHA20-POLY1305-HMAC-SHA256"
    assert status["contentFormat"]["hash"] == "BLAKE3-256"
    assert status["contentFormat"]["ecc"] == "REED-SOLOMON-CRC32"
    assert status["contentFormat"]["eccOverheadPercent"] == 2
    assert status["objectFormat"]["splitter"] == "DYNAMIC-1M-BUZHASH"
    policy = json.loads(storage.run(operator, "policy", "show", "--global", "--json"))
    assert policy["compression"]["compressorName"] == "zstd"
    assert policy["retention"]["keepLatest"] == 3
    assert policy["files"]["ignore"] == ["*.tmp"]
    assert repository.status["settings"]["format"]["hash"] == "BLAKE3-256"

    # Someone with the repository password changes the global policy: the next check
    # puts the spec's back.
    storage.run(operator, "policy", "set", "--global", "--compression=gzip", "--keep-latest=99")
    [check] = [r for r in mine(cluster.run_jobs(), "settings") if "-check-" in r.name]
    assert check.succeeded, check.logs
    policy = json.loads(storage.run(operator, "policy", "show", "--global", "--json"))
    assert policy["compression"]["compressorName"] == "zstd"
    assert policy["retention"]["keepLatest"] == 3

    # A changed spec runs the init Job again, which applies it.
    repository.xr["spec"]["policy"] = {"compression": "s2-default", "ignore": []}
    repository.reconcile()
    [rerun] = succeeded(mine(cluster.run_jobs(), "settings-init"))
    assert repository.conditions["Initialized"][:2] == ("True", "Initialized")
    repository.reconcile()
    policy = json.loads(storage.run(operator, "policy", "show", "--global", "--json"))
    assert policy["compression"]["compressorName"] == "s2-default"
    assert policy["retention"]["keepLatest"] == 10  # kopia's default, as the spec says
    assert "ignore" not in policy.get("files", {})
    assert repository.status["settings"]["policy"]["compression"] == "s2-default"
    assert "connected to the existing repository" in rerun.logs
    assert "the repository has the format in the spec" in rerun.logs


@pytest.mark.usefixtures("tenant_secrets")
def test_an_existing_repository_of_another_format_is_refused_and_named(
    cluster: Cluster, clock: helpers.Clock
) -> None:
    first = fs_repository(cluster, "format-a", format={"hash": "BLAKE3-256"})
    initialise(cluster, first, clock)
    # A second BSLR on the same volume that asks for another hash.
    other = copy.deepcopy(first)
    other["metadata"]["name"] = "format-b"
    other["spec"]["format"] = {"hash": "HMAC-SHA256"}
    repository = Composite(cluster, other, clock)
    repository.reconcile()
    [run] = mine(cluster.run_jobs(), "format-b")
    repository.reconcile()
    assert run.returncode == 16, run.logs
    assert "created with another spec.format.hash" in run.logs
    status, reason, message = repository.conditions["Initialized"]
    assert (status, reason) == ("False", "InitFailed")
    assert "another format than spec.format" in message
    assert not repository.ready


# ---------------------------------------------------------------------------- rotation


def own_password(cluster: Cluster, bslr: dict) -> dict:
    """The BSLR with a password Secret of its own (holding the example's password)."""
    name = bslr["metadata"]["name"]
    cluster.apply(secret(f"{name}-password-1", REPOSITORY_PASSWORD))
    bslr["spec"]["passwordSecretRef"] = {"name": f"{name}-password-1", "key": "password"}
    return bslr


def rotate_and_prove(stack: Stack, storage: Storage, tmp_path: pathlib.Path) -> None:
    """Rotate the repository password of a running stack; prove no data and no start is lost."""
    alice = stack.connected(ALICE)
    source = make_tree(tmp_path / "data", seed="rotation")
    snapshot = alice.snapshot(source)
    deployment = stack.deployment["metadata"]["name"]
    name = stack.repository.xr["metadata"]["name"]

    new_password = f"rotated-{secrets.token_urlsafe(12)}"
    stack.cluster.apply(secret(f"{name}-password-2", new_password))
    stack.repository.xr["spec"]["passwordSecretRef"] = {
        "name": f"{name}-password-2",
        "key": "password",
    }
    stack.repository.reconcile()
    assert stack.repository.conditions["PasswordRotation"][1] == "Rotating"
    assert stack.repository.ready  # the old password keeps working meanwhile
    # The server learns the new password beside the one in force (a roll, on the old one).
    stack.server.reconcile()
    assert stack.cluster.roll_out() == [deployment]

    runs = succeeded(stack.cluster.run_jobs())  # the change, a check and a user sync
    [change] = [r for r in runs if "-password-" in r.name]
    assert change.succeeded, change.logs
    assert "changed the repository password" in change.logs
    assert "the new password opens the repository" in change.logs
    assert new_password not in change.logs
    assert REPOSITORY_PASSWORD not in change.logs
    # The repository has the new password; the function has not seen the Job complete
    # yet, so every pod still names the old one first. A server that restarts now opens
    # the repository with the new one: there is no moment it cannot start.
    assert storage.connect(REPOSITORY_PASSWORD)[1] != 0
    storage.opened(new_password)
    stack.cluster.kill_pod(stack.namespace, deployment)
    assert stack.cluster.roll_out() == [deployment]
    logs = stack.cluster.server_pod(stack.namespace, deployment).process.logs()
    assert "trying the one a rotation moves to" in logs, logs

    stack.repository.reconcile()
    assert stack.repository.conditions["PasswordRotation"][1] == "InForce"
    assert stack.repository.status["passwordSecretRef"]["name"] == f"{name}-password-2"
    assert stack.repository.status["passwordChangedAt"]
    assert not [k for k in stack.repository.desired if k.startswith("password-change-")]
    restarted, _ = stack.converge()
    assert restarted == [deployment]  # onto the new password alone
    env = stack.deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    names = {e["name"]: e for e in env}
    assert names["KOPIA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"{name}-password-2"
    assert "BSLS_PENDING_PASSWORD" not in names

    # The old Secret may go now: nothing needs it (a pod that referenced a missing
    # Secret would not start here), and nothing was lost.
    stack.cluster.delete("Secret", NS, f"{name}-password-1")
    stack.cluster.kill_pod(stack.namespace, deployment)
    stack.cluster.roll_out()
    alice = stack.connected(ALICE)
    target = tmp_path / "restored"
    alice.restore(snapshot, target)
    assert tree(target) == tree(source)
    stack.repository.clock.advance(hours=1)
    stack.repository.reconcile()
    [check] = [r for r in mine(stack.cluster.run_jobs(), name) if "-check-" in r.name]
    assert check.succeeded, check.logs
    stack.repository.reconcile()
    assert stack.repository.conditions["RepositoryHealthy"][1] == "Validated"


@pytest.mark.usefixtures("tenant_secrets")
def test_password_rotation_on_a_filesystem(
    cluster: Cluster, clock: helpers.Clock, tmp_path: pathlib.Path
) -> None:
    bslr = own_password(cluster, fs_repository(cluster, "rotate-fs"))
    bsls = helpers.example("bsls.yaml")
    bsls["metadata"]["name"] = "rotate-fs-server"
    bsls["spec"]["repositoryRef"]["name"] = "rotate-fs"
    stack = stand_up(cluster, bslr, bsls, clock, tmp_path / "clients")
    rotate_and_prove(stack, Storage(cluster, bslr, tmp_path / "operator"), tmp_path)


def s3_keys(cluster: Cluster, bslr: dict) -> dict[str, str]:
    ref = bslr["spec"]["backend"]["s3"]["credentialsSecretRef"]["name"]
    keys = cluster.secret_data(NS, ref)
    assert keys is not None
    return {k: keys[k].decode() for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}


def s3_repository(cluster: Cluster, endpoint: str, name: str, bucket: str, **create) -> dict:
    """The S3 example, renamed, on a fresh moto bucket."""
    import boto3

    bslr = helpers.example("bslr-s3.yaml")
    bslr["metadata"]["name"] = name
    s3 = bslr["spec"]["backend"]["s3"]
    s3["endpoint"], s3["bucket"] = endpoint, bucket
    keys = s3_keys(cluster, bslr)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=s3["region"],
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket, **create)
    return bslr


def boto(cluster: Cluster, bslr: dict):
    import boto3

    s3 = bslr["spec"]["backend"]["s3"]
    keys = s3_keys(cluster, bslr)
    return boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        region_name=s3["region"],
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.mark.usefixtures("tenant_secrets")
def test_password_rotation_on_s3(
    cluster: Cluster,
    clock: helpers.Clock,
    s3_endpoint: str,  # noqa: F811
    tmp_path: pathlib.Path,
) -> None:
    bslr = own_password(cluster, s3_repository(cluster, s3_endpoint, "rotate-s3", "rotate"))
    bsls = helpers.example("bsls.yaml")
    bsls["metadata"]["name"] = "rotate-s3-server"
    bsls["spec"]["repositoryRef"]["name"] = "rotate-s3"
    stack = stand_up(cluster, bslr, bsls, clock, tmp_path / "clients")
    storage = Storage(cluster, bslr, tmp_path / "operator", s3_keys(cluster, bslr))
    rotate_and_prove(stack, storage, tmp_path)


# ---------------------------------------------------------------------------- health


@pytest.mark.usefixtures("tenant_secrets")
def test_storage_that_is_gone_turns_the_repository_not_ready_and_the_server_keeps_running(
    cluster: Cluster,
    clock: helpers.Clock,
    s3_endpoint: str,  # noqa: F811
    tmp_path: pathlib.Path,
) -> None:
    bslr = s3_repository(cluster, s3_endpoint, "health-s3", "health")
    bsls = helpers.example("bsls.yaml")
    bsls["metadata"]["name"] = "health-server"
    bsls["spec"]["repositoryRef"]["name"] = "health-s3"
    stack = stand_up(cluster, bslr, bsls, clock, tmp_path / "clients")
    stack.repository.reconcile()
    assert stack.repository.conditions["RepositoryHealthy"][1] == "Validated"
    deployment = stack.deployment["metadata"]["name"]
    pid = stack.cluster.server_pod(NS, deployment).process.popen.pid

    # The bucket goes away (kept aside, to put it back).
    s3 = boto(cluster, bslr)
    kept = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="health"):
        for obj in page.get("Contents", []):
            kept[obj["Key"]] = s3.get_object(Bucket="health", Key=obj["Key"])["Body"].read()
            s3.delete_object(Bucket="health", Key=obj["Key"])
    s3.delete_bucket(Bucket="health")

    clock.advance(hours=1)  # the next check period
    stack.repository.reconcile()
    [check] = [r for r in mine(cluster.run_jobs(), "health-s3") if "-check-" in r.name]
    # kopia reads a missing bucket as storage without a repository.
    assert check.returncode == 15, check.logs
    stack.repository.reconcile()
    status, reason, message = stack.repository.conditions["RepositoryHealthy"]
    assert (status, reason) == ("False", "ValidationFailed")
    assert "holds no Kopia repository any more (its data or the bucket" in message
    assert "(exit code 15)" in message
    assert not stack.repository.ready
    assert "no Kopia repository" in stack.repository.status["health"]["lastValidationResult"]

    stack.server.reconcile()
    status, reason, message = stack.server.conditions["RepositoryReady"]
    assert (status, reason) == ("False", "NotReady")
    assert "RepositoryHealthy is False (ValidationFailed): Job" in message
    assert "no Kopia repository any more" in message
    assert "server" in stack.server.desired  # nothing is torn down
    assert stack.cluster.roll_out() == []
    assert stack.cluster.server_pod(NS, deployment).process.popen.pid == pid

    # The data comes back; the next attempt finds it, with no change to the spec.
    s3.create_bucket(Bucket="health")
    for key, body in kept.items():
        s3.put_object(Bucket="health", Key=key, Body=body)
    clock.advance(seconds=31)
    stack.repository.reconcile()
    [retry] = [r for r in mine(cluster.run_jobs(), "health-s3") if "-check-" in r.name]
    assert retry.succeeded, retry.logs
    stack.repository.reconcile()
    assert stack.repository.conditions["RepositoryHealthy"][1] == "Validated"
    assert stack.repository.ready
    stack.server.reconcile()
    assert stack.server.conditions["RepositoryReady"][0] == "True"


# ---------------------------------------------------------------------------- object lock


@pytest.mark.usefixtures("tenant_secrets")
def test_object_lock_keeps_blobs_from_deletion_and_maintenance_still_works(
    cluster: Cluster,
    clock: helpers.Clock,
    s3_endpoint: str,  # noqa: F811
    tmp_path: pathlib.Path,
) -> None:
    bslr = s3_repository(
        cluster, s3_endpoint, "locked-s3", "locked", ObjectLockEnabledForBucket=True
    )
    bsls = helpers.example("bsls.yaml")
    bsls["metadata"]["name"] = "locked-server"
    bsls["spec"]["repositoryRef"]["name"] = "locked-s3"
    stack = stand_up(cluster, bslr, bsls, clock, tmp_path / "clients")
    assert "objectLock" not in stack.repository.status["settings"]

    # Set later, on a repository that exists: set-parameters, then the server
    # reconnects (kopia asks every other client to).
    stack.repository.xr["spec"]["objectLock"] = {"mode": "GOVERNANCE", "periodDays": 2}
    stack.repository.reconcile()
    [init] = [r for r in mine(cluster.run_jobs(), "locked-s3") if "-init-" in r.name]
    assert init.succeeded, init.logs
    stack.repository.reconcile()
    restarted, _ = stack.converge()
    assert restarted == [stack.deployment["metadata"]["name"]]
    bslr = stack.repository.xr
    assert stack.repository.status["settings"]["objectLock"] == {
        "mode": "GOVERNANCE",
        "periodDays": 2,
    }
    storage = Storage(cluster, bslr, tmp_path / "operator", s3_keys(cluster, bslr))
    operator = storage.opened(REPOSITORY_PASSWORD)
    status = json.loads(storage.run(operator, "repository", "status", "--json"))
    assert status["blobRetention"]["retentionMode"] == "GOVERNANCE"

    alice = stack.connected(ALICE)
    alice.snapshot(make_tree(tmp_path / "data", seed="locked"))
    s3 = boto(cluster, bslr)
    versions = s3.list_object_versions(Bucket="locked")["Versions"]
    packs = [v for v in versions if v["Key"].split("/")[-1].startswith("p")]
    assert packs, [v["Key"] for v in versions]
    head = s3.head_object(Bucket="locked", Key=packs[0]["Key"], VersionId=packs[0]["VersionId"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket="locked", Key=packs[0]["Key"], VersionId=packs[0]["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # Full and quick maintenance still run (full maintenance extends the locks).
    clock.advance(hours=25)
    stack.repository.reconcile()
    [check] = [r for r in mine(cluster.run_jobs(), "locked-s3") if "-check-" in r.name]
    assert check.succeeded, check.logs
    assert "Finished full maintenance." in check.logs
    stack.repository.reconcile()
    assert stack.repository.conditions["MaintenanceOnSchedule"][1] == "OnSchedule"
    info = storage.run(operator, "maintenance", "info", "--json")
    assert json.loads(info)["extendObjectLocks"] is True


@pytest.mark.usefixtures("tenant_secrets")
def test_object_lock_on_a_bucket_without_it_is_refused_and_named(
    cluster: Cluster,
    clock: helpers.Clock,
    s3_endpoint: str,  # noqa: F811
) -> None:
    bslr = s3_repository(cluster, s3_endpoint, "unlocked-s3", "unlocked")
    bslr["spec"]["objectLock"] = {"mode": "COMPLIANCE", "periodDays": 7}
    repository = Composite(cluster, bslr, clock)
    repository.reconcile()
    [run] = mine(cluster.run_jobs(), "unlocked-s3")
    repository.reconcile()
    assert run.returncode == 17, run.logs
    status, reason, message = repository.conditions["Initialized"]
    assert (status, reason) == ("False", "InitFailed")
    assert "the bucket refused object lock" in message
