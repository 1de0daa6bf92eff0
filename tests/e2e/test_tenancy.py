"""Tenant probing with the real client: what a connected user can and cannot do.

Bob is a legitimate user of the same server as alice. Each test is one thing he tries;
it asserts the outcome docs/security.md states. The whole module runs once for each
access mode bob can have (full, append, restore; alice is full, or append when bob
is): the access rules the sync Job installs (function/access.py) must close everything
kopia's built-in rules closed, in every mode. A user reaches the snapshots and policies
labelled with their own identity (as far as the mode allows), may read the global
policy and their host's policy, and nothing else among the manifests: no account, no
password, no access rule. Content is shared and addressed by hash: that limit is
recorded here too, so the docs cannot drift from what kopia does.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster
from tests.e2e.kopia import Client, make_tree, tree
from tests.e2e.stack import Stack, stand_up
from tests.e2e.test_access import with_access

ALICE = "alice@vm-alice"
BOB = "bob@vm-bob"


@pytest.fixture(scope="module", params=["full", "append", "restore"])
def mode(request: pytest.FixtureRequest) -> str:
    """Bob's access mode."""
    return request.param


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    tmp_path_factory: pytest.TempPathFactory,
    mode: str,
) -> Stack:
    """The example server with bob in `mode`, alone on a repository of its own."""
    del tenant_secrets
    bslr = helpers.example("bslr.yaml")
    # One repository per mode: each on a claim of its own, on one stand-in cluster.
    bslr["metadata"]["name"] = f"repo-{mode}"
    bslr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]["claimName"] = f"pvc-{mode}"
    [claim] = helpers.load("claim.yaml")
    claim["metadata"]["name"] = f"pvc-{mode}"
    cluster.apply(claim)
    bsls = helpers.example("bsls.yaml")
    bsls["metadata"]["name"] = f"vm-backups-{mode}"
    bsls["spec"]["repositoryRef"]["name"] = f"repo-{mode}"
    alice_mode = "append" if mode == "append" else "full"
    bsls = with_access(bsls, {ALICE: alice_mode, BOB: mode})
    return stand_up(cluster, bslr, bsls, clock, tmp_path_factory.mktemp(f"clients-{mode}"))


@pytest.fixture(scope="module")
def alice(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Client, dict]:
    """Alice, connected, with one snapshot (its manifest as kopia lists it)."""
    client = stack.connected(ALICE)
    client.snapshot(make_tree(tmp_path_factory.mktemp("alice-data"), seed="alice"))
    [snapshot] = client.snapshots()
    return client, snapshot


@pytest.fixture(scope="module")
def bob(stack: Stack) -> Client:
    return stack.connected(BOB)


def refused(done, *reasons: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert any(r.lower() in output.lower() for r in reasons), output
    print(f"refused as expected: {output.strip().splitlines()[-1]}")
    return output


def test_bob_cannot_list_alices_snapshots(alice, bob: Client) -> None:
    assert bob.snapshots() == []
    done = bob.run("snapshot", "list", "alice@vm-alice:/", "--json", check=False)
    assert done.returncode != 0 or json.loads(done.stdout or "[]") == []


def test_bob_cannot_restore_alices_snapshot_by_its_id(
    alice, bob: Client, tmp_path: pathlib.Path
) -> None:
    _, snapshot = alice
    done = bob.run("snapshot", "restore", snapshot["id"], str(tmp_path / "r"), check=False)
    refused(done, "not found", "access denied", "unable to")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_bob_cannot_delete_alices_snapshot(alice, bob: Client) -> None:
    client, snapshot = alice
    done = bob.run("snapshot", "delete", snapshot["id"], "--delete", check=False)
    refused(done, "not found", "access denied", "unable to", "permission")
    assert [s["id"] for s in client.snapshots()] == [snapshot["id"]]


def test_bob_cannot_write_a_policy_for_alice(alice, bob: Client) -> None:
    done = bob.run("policy", "set", ALICE, "--keep-latest=1", check=False)
    refused(done, "access denied", "permission", "not allowed", "unable to")
    client, _ = alice
    shown = json.loads(client.run("policy", "show", ALICE, "--json").stdout)
    assert shown.get("retention", {}).get("keepLatest") != 1


def test_bob_cannot_change_the_global_policy(bob: Client) -> None:
    done = bob.run("policy", "set", "--global", "--keep-latest=1", check=False)
    refused(done, "access denied", "permission", "not allowed", "unable to")
    shown = json.loads(bob.run("policy", "show", "--global", "--json").stdout)
    assert shown.get("retention", {}).get("keepLatest") != 1


def test_bob_sets_his_own_policy_only_with_full_access(bob: Client, mode: str) -> None:
    done = bob.run("policy", "set", BOB, "--keep-latest=3", check=False)
    if mode != "full":
        refused(done, "access denied")
        return
    assert done.returncode == 0, done.stdout + done.stderr
    shown = json.loads(bob.run("policy", "show", BOB, "--json").stdout)
    assert shown["retention"]["keepLatest"] == 3


def test_bob_cannot_change_his_own_password(stack: Stack, bob: Client) -> None:
    """kopia's default ACLs (`server acl enable`) would allow it; the built-in rules and
    the function's rules do not: the Secret stays the only source of a password."""
    done = bob.run("server", "users", "set", BOB, "--user-password=bobs-own-now", check=False)
    refused(done, "not found", "access denied")
    _, done = stack.connect(BOB, "bobs-own-now")
    assert done.returncode != 0
    _, done = stack.connect(BOB)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bob_reads_no_account_and_no_access_rule(bob: Client) -> None:
    assert bob.run("server", "users", "list").stdout.strip() == ""
    assert bob.run("server", "acl", "list").stdout.strip() == ""
    listed = bob.run("manifest", "list", "--json").stdout
    types = {m["labels"]["type"] for m in json.loads(listed or "[]")}
    assert types <= {"policy", "snapshot"}, types


def test_bob_cannot_write_access_control_entries(bob: Client) -> None:
    done = bob.run(
        "server",
        "acl",
        "add",
        "--user=bob@vm-bob",
        "--target=type=snapshot",
        "--access=FULL",
        check=False,
    )
    refused(done, "direct", "not supported", "access denied", "unable to", "error")
    assert bob.snapshots() == []


def test_bob_cannot_log_in_as_the_control_user(stack: Stack) -> None:
    control = stack.cluster.secret_data(
        stack.namespace, stack.server.desired["control"]["metadata"]["name"]
    )
    assert control is not None
    username, password = control["username"].decode(), control["password"].decode()
    # Even with the control password in hand, the control user is no repository user.
    for override in ([username, "vm-bob"], [username.lower(), "bsls-system"]):
        client = stack.client("control")
        client.trust(stack.ca_bundle())
        done = client.connect_server(stack.server.status["endpoint"], *override, password)
        refused(done, "access denied", "unauthenticated", "invalid", "permission")


def test_bob_cannot_reach_the_control_api(stack: Stack, bob: Client) -> None:
    bob_password = stack.credentials(BOB)["password"]
    done = bob.run(
        "server",
        "status",
        f"--address={stack.server.status['endpoint']}",
        f"--server-control-username={BOB}",
        f"--server-control-password={bob_password}",
        check=False,
    )
    refused(done, "401", "403", "unauthorized", "forbidden", "access is denied")


def test_content_is_shared_by_object_id_as_documented(
    alice, bob: Client, tmp_path: pathlib.Path
) -> None:
    """The known limit (docs/security.md): content is deduplicated across users.

    Bob cannot find alice's snapshots, but a root object ID, if he learns one, opens
    her files. This test pins that behaviour so the security model stays accurate.
    """
    _, snapshot = alice
    root = snapshot["rootEntry"]["obj"]
    target = tmp_path / "by-object-id"
    done = bob.run("restore", root, str(target), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree(target)
    shutil.rmtree(target)


def test_sessions_are_logged_for_the_audit_trail(stack: Stack, alice, bob: Client) -> None:
    """docs/operations.md: who connected, from where, as JSON lines on stdout."""
    pod = stack.cluster.server_pod(stack.namespace, stack.deployment["metadata"]["name"])
    assert pod.process is not None
    lines = [json.loads(line) for line in pod.process.logs().splitlines() if line.startswith("{")]
    sessions = [line["m"] for line in lines if line.get("n") == "kopia/server"]
    assert any(
        m.startswith('starting session for user "alice@vm-alice" from 127.') for m in sessions
    )
    assert any(m.startswith('starting session for user "bob@vm-bob" from') for m in sessions)
