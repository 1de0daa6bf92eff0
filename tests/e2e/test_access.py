"""Access modes with the real client: what an append-only or a restore-only VM can do.

One server, three users: alice `append`, bob `full`, carol `restore`. Each test is one
thing a compromised VM tries, through the stock kopia client, and asserts what
docs/security.md promises. The tests run in file order: alice's history grows, the
retention CronJob expires it, then alice is switched to `restore`.
"""

from __future__ import annotations

import copy
import datetime
import json
import pathlib

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster
from tests.e2e.kopia import Client, make_tree, tree
from tests.e2e.stack import Stack, repository_password, stand_up

ALICE = "alice@vm-alice"  # append
BOB = "bob@vm-bob"  # full
CAROL = "carol@vm-carol"  # restore


def with_access(bsls: dict, modes: dict[str, str]) -> dict:
    """The example server with these users (identity -> access mode)."""
    xr = copy.deepcopy(bsls)
    known = {f"{u['username']}@{u['hostname']}": u for u in xr["spec"]["users"]}
    users = []
    for identity, mode in modes.items():
        username, hostname = identity.split("@")
        user = dict(known.get(identity, {"username": username, "hostname": hostname}))
        user["access"] = mode
        users.append(user)
    xr["spec"]["users"] = users
    return xr


MODES = {ALICE: "append", BOB: "full", CAROL: "restore"}


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    del tenant_secrets
    return stand_up(
        cluster,
        helpers.example("bslr.yaml"),
        with_access(helpers.example("bsls.yaml"), MODES),
        clock,
        tmp_path_factory.mktemp("clients"),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return make_tree(tmp_path_factory.mktemp("alice-data"), seed="alice")


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Client:
    return stack.connected(ALICE)


def refused(done, *reasons: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert any(r.lower() in output.lower() for r in reasons), output
    print(f"refused as expected: {output.strip().splitlines()[-1]}")
    return output


def ids(client: Client) -> list[str]:
    return sorted(s["id"] for s in client.snapshots())


def test_the_status_lists_each_users_mode(stack: Stack) -> None:
    assert {u["identity"]: u["access"] for u in stack.server.status["users"]} == MODES
    assert stack.server.conditions["UsersSynced"][0] == "True"
    # The four shared rules, each user's mode's (append 2, full 3, restore 1), and the
    # freshness reader's one.
    assert "access rules in place: 11 added, 0 removed" in stack.job_run().logs


def test_append_user_backs_up_and_restores(alice: Client, data, tmp_path) -> None:
    snapshot = alice.snapshot(data)
    alice.restore(snapshot, tmp_path / "r")
    assert tree(tmp_path / "r") == tree(data)


def test_append_user_cannot_delete_a_snapshot(alice: Client) -> None:
    before = ids(alice)
    done = alice.run("snapshot", "delete", before[0], "--delete", check=False)
    refused(done, "access denied")
    done = alice.run("manifest", "rm", before[0], "--dangerous-commands=enabled", check=False)
    refused(done, "access denied")
    assert ids(alice) == before


def test_append_user_cannot_rewrite_a_snapshot(alice: Client) -> None:
    """A pin (or a description) rewrites a manifest: add the new one, delete the old."""
    before = ids(alice)
    done = alice.run("snapshot", "pin", "--add=mine", before[0], check=False)
    refused(done, "access denied")
    assert ids(alice) == before
    assert all(not s.get("pins") for s in alice.snapshots())


def test_append_user_cannot_write_any_policy(alice: Client, data) -> None:
    for target in ([ALICE], [f"{ALICE}:{data}"], ["--global"], ["@vm-alice"]):
        done = alice.run("policy", "set", *target, "--keep-latest=1", check=False)
        refused(done, "access denied")


def test_append_user_cannot_expire_its_own_history(alice: Client) -> None:
    before = ids(alice)
    alice.run("snapshot", "expire", "--all", "--delete")
    assert ids(alice) == before


def test_future_dated_snapshots_push_nothing_out(alice: Client, data) -> None:
    """The attack that defeats kopia's own retention for an append-only client.

    kopia measures its retention from the newest start time, which the client reports,
    and the server applies it when the client asks after each snapshot. Eleven
    snapshots dated 2099 would leave none of today's (seen here with the global
    policy's keep-latest 10 before the function held retention for append users).
    """
    before = ids(alice)
    for hour in range(11):
        start = f"2099-01-01 {hour:02d}:00:00 UTC"
        alice.run("snapshot", "create", str(data), f"--start-time={start}", "--json")
    after = ids(alice)
    assert set(before) <= set(after)
    assert len(after) == len(before) + 11


def test_append_user_cannot_change_its_password_or_read_accounts(
    stack: Stack, alice: Client
) -> None:
    done = alice.run("server", "users", "set", ALICE, "--user-password=mine-now", check=False)
    refused(done, "not found", "access denied")
    assert alice.run("server", "users", "list").stdout.strip() == ""
    assert alice.run("server", "acl", "list").stdout.strip() == ""
    _, done = stack.connect(ALICE)  # the password in the Secret still works
    assert done.returncode == 0, done.stdout + done.stderr


def test_restore_user_cannot_create_a_snapshot(stack: Stack, data) -> None:
    carol = stack.connected(CAROL)
    done = carol.run("snapshot", "create", str(data), check=False)
    refused(done, "access denied")
    assert carol.snapshots() == []


def test_full_user_still_manages_its_own(stack: Stack, data) -> None:
    bob = stack.connected(BOB)
    first = bob.snapshot(data)
    bob.run("policy", "set", BOB, "--keep-latest=3")
    bob.run("snapshot", "delete", first, "--delete")
    assert bob.snapshots() == []
    assert ALICE not in json.dumps(bob.snapshots())


def test_the_retention_cronjob_expires_append_history_by_server_time(
    stack: Stack, alice: Client
) -> None:
    """Kept keepDays after the server stored them, then gone but the newest keepLatest."""
    cronjob = stack.server.desired["retention"]
    assert cronjob["kind"] == "CronJob"
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert (env["BSLS_RETENTION_KEEP_DAYS"], env["BSLS_RETENTION_KEEP_LATEST"]) == ("30", "1")
    name = cronjob["metadata"]["name"]
    before = ids(alice)
    now = datetime.datetime.now(datetime.UTC)
    # Today: everything is younger than 30 days, nothing goes.
    run = stack.cluster.run_cronjob(stack.namespace, name)
    assert run.succeeded, run.logs
    assert "expired 0 snapshot(s) of 1 append-only user(s)" in run.logs
    # 31 days on: all but the newest the server stored.
    later = str(int((now + datetime.timedelta(days=31)).timestamp()))
    run = stack.cluster.run_cronjob(stack.namespace, name, {"BSLS_RETENTION_NOW": later})
    assert run.succeeded, run.logs
    assert f"expired {len(before) - 1} snapshot(s) of 1 append-only user(s)" in run.logs
    # The server sees the deletion once it refreshes; a direct listing sees it at once.
    operator = stack.direct_client(repository_password(stack.cluster, stack.repository.xr))
    left = [s for s in operator.snapshots() if s["source"]["userName"] == "alice"]
    assert len(left) == 1
    # The newest stored is the last one created (dated 2099 by the client, stored now).
    assert left[0]["startTime"].startswith("2099-01-01T10:00:00")


def test_switched_to_restore_alice_restores_but_writes_nothing(
    stack: Stack, data, tmp_path
) -> None:
    stack.server.xr = with_access(stack.server.xr, {**MODES, ALICE: "restore"})
    _, runs = stack.converge()
    assert [r.name for r in runs] == [stack.sync_job()["metadata"]["name"]]
    assert "retention" not in stack.server.desired  # no append user left
    alice = stack.connected(ALICE)
    [snapshot] = alice.snapshots()
    alice.restore(snapshot["id"], tmp_path / "r")
    assert tree(tmp_path / "r") == tree(data)
    done = alice.run("snapshot", "create", str(data), check=False)
    refused(done, "access denied")
