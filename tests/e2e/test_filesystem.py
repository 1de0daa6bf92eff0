"""End to end on a filesystem repository: the rendered pods run with the real kopia.

The tests share one cluster and run in file order as one story: each leaves the cluster
as the next expects (alice's password changes, bob leaves, the leaf is renewed, the
server is killed). Every assertion is on what a user sees: restored bytes, listed
snapshots, refused connections, the XR's status.
"""

from __future__ import annotations

import copy
import dataclasses
import pathlib
import secrets
import ssl

import pytest
from cryptography import x509

from tests import helpers
from tests.e2e.kopia import make_tree, tree
from tests.e2e.stack import Stack, repository_password, with_password

ALICE = "alice@vm-alice"
BOB = "bob@vm-bob"
ALICE_EXAMPLE_PASSWORD = "alice-correct-horse-battery"  # examples/required/secrets.yaml
TLS_DIGEST = "dataprotection.bsls.dev/tls-digest"


@dataclasses.dataclass(frozen=True)
class Backup:
    """A snapshot alice took, and what its folder held."""

    snapshot_id: str
    source: pathlib.Path
    tree: dict[str, str]


@pytest.fixture(scope="module")
def alice_backup(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Backup:
    """Alice snapshots a folder of varied files through the server."""
    source = make_tree(tmp_path_factory.mktemp("alice-data"), seed="alice")
    alice = stack.connected(ALICE)
    return Backup(alice.snapshot(source), source, tree(source))


def server_pid(stack: Stack) -> int:
    pod = stack.cluster.server_pod(stack.namespace, stack.deployment["metadata"]["name"])
    assert pod.process is not None
    assert pod.process.running
    return pod.process.popen.pid


def server_logs(stack: Stack) -> str:
    pod = stack.cluster.server_pod(stack.namespace, stack.deployment["metadata"]["name"])
    assert pod.process is not None
    return pod.process.logs()


def served_leaf(stack: Stack) -> x509.Certificate:
    """The certificate the server presents right now, at its Service's address."""
    service = stack.server.desired["service"]
    address = stack.cluster.service_ip(stack.namespace, service["metadata"]["name"])
    pem = ssl.get_server_certificate((address, int(service["spec"]["ports"][0]["port"])))
    return x509.load_pem_x509_certificate(pem.encode())


def leaf_in(stack: Stack) -> x509.Certificate:
    """The first certificate of the rendered tls-server Secret (the leaf)."""
    name = stack.server.desired["tls-server"]["metadata"]["name"]
    data = stack.cluster.secret_data(stack.namespace, name)
    assert data is not None
    return x509.load_pem_x509_certificates(data["tls.crt"])[0]


def refused(output: str, why: str) -> None:
    assert why in output, output


# ---------------------------------------------------------------------------- 1


def test_alice_backs_up_and_restores_through_the_server(
    stack: Stack, alice_backup: Backup, tmp_path: pathlib.Path
) -> None:
    # The XR reports a working server, and the credentials Secret is what alice needs.
    assert stack.server.ready
    for condition in ("RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable"):
        assert stack.server.conditions[condition][0] == "True", stack.server.conditions
    fingerprint = stack.server.status["tlsFingerprint"]
    creds = stack.credentials(ALICE)
    assert creds["password"] == ALICE_EXAMPLE_PASSWORD
    assert creds["fingerprint"] == fingerprint
    assert creds["endpoint"] == stack.server.status["endpoint"]
    assert creds["ca.crt"] == stack.ca_bundle()
    assert "--server-cert-fingerprint" not in creds["connect-linux.sh"]
    # The sync Job added both users and made the running server re-read them.
    sync = stack.job_run().logs
    assert "added alice@vm-alice" in sync
    assert "added bob@vm-bob" in sync
    assert "the server re-read its users" in sync
    # The server serves the rendered leaf.
    assert served_leaf(stack) == leaf_in(stack)

    # A second VM of alice's (a fresh client) sees the snapshot and restores it.
    alice = stack.connected(ALICE)
    listed = alice.snapshots()
    assert [s["id"] for s in listed] == [alice_backup.snapshot_id]
    assert listed[0]["source"] == {
        "host": "vm-alice",
        "userName": "alice",
        "path": str(alice_backup.source),
    }
    alice.restore(alice_backup.snapshot_id, tmp_path / "restored")
    assert tree(tmp_path / "restored") == alice_backup.tree


# ---------------------------------------------------------------------------- 2


def test_bob_sees_none_of_alices_snapshots(
    stack: Stack, alice_backup: Backup, tmp_path: pathlib.Path
) -> None:
    creds = stack.credentials(BOB)
    assert len(creds["password"]) >= 24  # generated: bob has no passwordSecretRef
    assert creds["password"] != ALICE_EXAMPLE_PASSWORD
    bob = stack.connected(BOB)
    assert bob.snapshots() == []

    own = bob.snapshot(make_tree(tmp_path / "bob-data", seed="bob"))
    listed = bob.snapshots()
    assert [s["id"] for s in listed] == [own]
    assert {(s["source"]["userName"], s["source"]["host"]) for s in listed} == {("bob", "vm-bob")}
    text = bob.run("snapshot", "list", "--all").stdout
    assert ALICE not in text
    assert alice_backup.snapshot_id not in text
    # Nor can he open alice's snapshot by its ID.
    denied = bob.run(
        "snapshot", "restore", alice_backup.snapshot_id, str(tmp_path / "x"), check=False
    )
    assert denied.returncode != 0
    assert not (tmp_path / "x" / "notes.txt").exists()


# ---------------------------------------------------------------------------- 3


def test_a_client_that_does_not_trust_the_ca_is_refused(stack: Stack) -> None:
    client, done = stack.connect(ALICE, trust=False)
    assert done.returncode != 0
    refused(done.stderr, "x509: certificate signed by unknown authority")
    assert not client.config.exists()


def test_a_wrong_password_is_refused_by_the_server(stack: Stack) -> None:
    client, done = stack.connect(ALICE, password="not-" + stack.credentials(ALICE)["password"])
    assert done.returncode != 0
    refused(done.stderr, "access denied for alice@vm-alice")
    assert not client.config.exists()


# ---------------------------------------------------------------------------- 9


def test_the_repositorys_check_owns_and_runs_maintenance(stack: Stack) -> None:
    password = repository_password(stack.cluster, stack.repository.xr)
    operator = stack.direct_client(password)
    info = operator.run("maintenance", "info").stdout
    assert "Owner: maintenance@bsls-system" in info, info

    # The first check ran both kinds, as the owner, whether or not a server runs.
    [check] = [run for (ns, name), run in stack.cluster.jobs.items() if "-check-" in name]
    assert check.succeeded, check.logs
    assert "the storage answers, the repository opens and its password works" in check.logs
    assert "Finished quick maintenance." in check.logs, check.logs
    assert "Finished full maintenance." in check.logs, check.logs
    assert "SUCCESS" in info.split("Recent Maintenance Runs:", 1)[1], info

    stack.repository.reconcile()
    status = stack.repository.status
    assert status["health"]["lastValidationResult"] == "Succeeded"
    assert status["health"]["lastValidationJob"] == check.name
    assert status["maintenance"]["owner"] == "maintenance@bsls-system"
    assert status["maintenance"]["lastQuick"] == status["maintenance"]["lastFull"]
    assert stack.repository.conditions["RepositoryHealthy"][1] == "Validated"
    assert stack.repository.conditions["MaintenanceOnSchedule"][1] == "OnSchedule"
    # The server is not the owner any more: it runs none.
    assert "Finished quick maintenance." not in server_logs(stack)


# ---------------------------------------------------------------------------- 4


def test_a_password_change_applies_without_restarting_the_server(stack: Stack) -> None:
    old_password = stack.credentials(ALICE)["password"]
    old_job = stack.sync_job()["metadata"]["name"]
    old_deployment = copy.deepcopy(stack.deployment)
    old_fingerprint = stack.server.status["tlsFingerprint"]
    pid = server_pid(stack)

    new_password = f"alice-new-{secrets.token_urlsafe(12)}"
    (alice_secret,) = helpers.load("required/secrets.yaml")
    stack.cluster.apply(with_password(alice_secret, new_password))
    restarted, runs = stack.converge()

    new_job = stack.sync_job()["metadata"]["name"]
    assert new_job != old_job
    assert [r.name for r in runs] == [new_job]
    assert "the server re-read its users" in runs[0].logs
    assert restarted == []
    assert server_pid(stack) == pid
    assert stack.deployment == old_deployment
    assert stack.server.status["tlsFingerprint"] == old_fingerprint
    assert stack.server.conditions["UsersSynced"][0] == "True"
    assert stack.credentials(ALICE)["password"] == new_password

    _, done = stack.connect(ALICE, password=old_password)
    assert done.returncode != 0
    refused(done.stderr, "access denied for alice@vm-alice")
    stack.connected(ALICE)


# ---------------------------------------------------------------------------- 5


def test_a_removed_user_can_no_longer_connect(stack: Stack) -> None:
    bob_password = stack.credentials(BOB)["password"]
    stack.connected(BOB)

    stack.server.xr["spec"]["users"] = [
        u for u in stack.server.xr["spec"]["users"] if u["username"] != "bob"
    ]
    restarted, runs = stack.converge()

    assert restarted == []
    assert len(runs) == 1
    assert "deleted bob@vm-bob" in runs[0].logs
    assert "the server re-read its users" in runs[0].logs
    assert f"user-{BOB}" not in stack.server.desired
    assert [u["identity"] for u in stack.server.status["users"]] == [ALICE]
    _, done = stack.connect(BOB, password=bob_password)
    assert done.returncode != 0
    refused(done.stderr, "access denied for bob@vm-bob")
    stack.connected(ALICE)


# ---------------------------------------------------------------------------- 6


def test_a_renewed_leaf_keeps_verifying_clients_working(
    stack: Stack, clock: helpers.Clock, alice_backup: Backup, tmp_path: pathlib.Path
) -> None:
    pinned = stack.connected(ALICE)  # trusts the CA in its bundle
    before = copy.deepcopy(stack.server.desired)
    fingerprint = stack.server.status["tlsFingerprint"]
    not_after = stack.server.status["certificateNotAfter"]
    old_leaf = served_leaf(stack)

    # The leaf is valid 365 days and renewed in its last third.
    clock.advance(days=250)
    restarted, _ = stack.converge()

    after = stack.server.desired
    assert after["tls-ca"] == before["tls-ca"]
    assert after["tls-server"]["data"] != before["tls-server"]["data"]
    annotations = [
        d["server"]["spec"]["template"]["metadata"]["annotations"] for d in (before, after)
    ]
    assert annotations[0][TLS_DIGEST] != annotations[1][TLS_DIGEST]
    assert stack.server.status["tlsFingerprint"] == fingerprint
    assert stack.server.status["certificateNotAfter"] > not_after
    assert stack.server.status["certificateNotAfter"] in stack.server.conditions["TLSReady"][2]
    # The Deployment rolled: the new pod serves the new leaf.
    assert restarted == [stack.deployment["metadata"]["name"]]
    assert served_leaf(stack) == leaf_in(stack) != old_leaf

    # The client connected before the renewal, untouched, still lists and restores.
    assert alice_backup.snapshot_id in [s["id"] for s in pinned.snapshots()]
    pinned.restore(alice_backup.snapshot_id, tmp_path / "restored")
    assert tree(tmp_path / "restored") == alice_backup.tree


# ---------------------------------------------------------------------------- 7


def test_a_killed_server_comes_back_with_its_users(
    stack: Stack, alice_backup: Backup, tmp_path: pathlib.Path
) -> None:
    name = stack.deployment["metadata"]["name"]
    old_pod = stack.cluster.server_pod(stack.namespace, name)
    deployment = copy.deepcopy(stack.deployment)
    stack.cluster.kill_pod(stack.namespace, name)
    _, done = stack.connect(ALICE)
    assert done.returncode != 0  # nobody answers

    restarted, runs = stack.converge()

    assert restarted == [name]
    assert runs == []  # users live in the repository: no sync is needed
    assert stack.deployment == deployment
    new_pod = stack.cluster.server_pod(stack.namespace, name)
    assert new_pod.dir != old_pod.dir  # fresh emptyDirs: the config was made anew
    assert "connecting to the repository as server@bsls-system" in server_logs(stack)
    assert stack.server.conditions["ServerAvailable"][0] == "True"

    alice = stack.connected(ALICE)
    alice.restore(alice_backup.snapshot_id, tmp_path / "restored")
    assert tree(tmp_path / "restored") == alice_backup.tree
