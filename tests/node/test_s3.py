"""The S3 backend on the real node: moto's S3 server on the node's address, which pods
reach like any S3 endpoint in the cluster network (plain HTTP, as the example says).

Here the app team applies its BSLR and BSLS together and waits, as a user does: nobody
touches the BSLS, so it sees its repository Ready at Crossplane's next poll.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.node import tenant
from tests.node.tenant import MILESTONES, POLL, T, Tenant, Vm

TEAM = "team-s3"
ALICE = "alice@vm-alice"
CAROL = "carol@vm-carol"
SOURCE = "/home/vm/data"


@pytest.fixture(scope="module")
def s3(node) -> Iterator[dict]:
    """moto's S3 server on the node's address, for this module alone."""
    with tenant.moto_s3(node) as found:
        yield found


@pytest.fixture(scope="module")
def stack(node, established, s3: dict) -> dict:
    """The example S3 BSLR and the example BSLS, applied together, until both are Ready."""
    team = Tenant(node, TEAM).create()
    bslr = tenant.example("bslr-s3.yaml", TEAM)[0]
    backend = bslr["spec"]["backend"]["s3"]
    backend["endpoint"] = s3["endpoint"]  # the one thing this cluster differs in
    s3["client"].create_bucket(Bucket=backend["bucket"])
    bsls = tenant.example("bsls.yaml", TEAM)[0]
    bsls["spec"]["repositoryRef"]["name"] = bslr["metadata"]["name"]
    start = time.monotonic()
    bslr = team.apply(bslr)
    bsls = team.apply(bsls)
    bslr = team.wait_xr(bslr, "Ready")
    MILESTONES["s3: BSLR Ready (after it was applied)"] = round(time.monotonic() - start, 1)

    def server_available() -> bool:
        found = team.composed(bsls).get("server")
        got = found and team.kube.reload(found)
        return bool(got) and tenant.condition(got, "Available").get("status") == "True"

    tenant.wait(server_available, POLL, "the server Deployment to be available", interval=1)
    MILESTONES["s3: server available (no touch: Crossplane's poll)"] = round(
        time.monotonic() - start, 1
    )
    ready = team.wait_xr(bsls, "Ready", timeout=POLL)
    MILESTONES["s3: users synced, BSLS Ready (no touch)"] = round(time.monotonic() - start, 1)
    server = team.kube.reload(team.composed(ready)["server"])
    pods = {p["metadata"]["uid"] for p in team.pods_of(server)}
    return {
        "team": team,
        "bslr": bslr,
        "bsls": ready,
        "backend": backend,
        "pods": pods,
        "applied": start,
    }


def test_alice_backs_up_to_s3_and_restores_byte_identical(stack: dict, s3: dict) -> None:
    team: Tenant = stack["team"]
    bsls = stack["bsls"]
    for typ in ("RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable"):
        assert tenant.is_true(bsls, typ), tenant.condition(bsls, typ)
    assert stack["bslr"]["status"]["backend"] == "s3"
    files = tenant.make_tree("s3")
    vm = Vm(team, "vm-alice", team.credentials(bsls, ALICE)).start()
    other = None
    try:
        vm.connect()
        start = time.monotonic()
        vm.put(SOURCE, files)
        snapshot = vm.snapshot(SOURCE)
        done = time.monotonic()
        MILESTONES["s3: first backup (3 MB, from the VM)"] = round(done - start, 1)
        MILESTONES["s3: apply of BSLR and BSLS to the VM's first snapshot"] = round(
            done - stack["applied"], 1
        )
        other = Vm(team, "vm-alice-2", vm.bundle).start()
        other.connect()
        listed = other.snapshots()
        assert [s["id"] for s in listed] == [snapshot], listed
        # The server that was Ready served it all: no roll-out, no restart since.
        server = team.kube.reload(team.composed(bsls)["server"])
        assert {p["metadata"]["uid"] for p in team.pods_of(server)} == stack["pods"]
        other.kopia("snapshot", "restore", snapshot, "/home/vm/restored")
        assert other.tree("/home/vm/restored") == tenant.manifest(files)
    finally:
        vm.stop()
        if other is not None:
            other.stop()
    # Everything kopia wrote is under the BSLR's prefix.
    keys = objects(s3, stack["backend"])
    prefix = stack["backend"]["prefix"]
    assert f"{prefix}kopia.repository" in keys
    assert all(k.startswith(prefix) for k in keys)


def test_a_user_added_to_the_spec_can_log_in(stack: dict) -> None:
    """carol is added with a generated password; her VM connects once the sync Job ran."""
    team: Tenant = stack["team"]
    bsls = stack["bsls"]
    start = time.monotonic()
    users = [*bsls["spec"]["users"], {"username": "carol", "hostname": "vm-carol"}]
    team.kube.patch(bsls, {"spec": {"users": users}})

    def bundle() -> str | None:
        try:
            return team.credentials(bsls, CAROL)
        except KeyError:
            return None

    secret = tenant.wait(bundle, POLL, "carol's credentials Secret in the status", interval=1)
    vm = Vm(team, "vm-carol", secret).start()
    try:
        tenant.wait(
            lambda: vm.connect(check=False).returncode == 0,
            POLL,
            "carol's VM to connect with her bundle",
            interval=1,
        )
        MILESTONES["s3: a new user can log in (after the spec change)"] = round(
            time.monotonic() - start, 1
        )
        assert vm.snapshots() == []  # her own view: nothing of alice's
    finally:
        vm.stop()


def test_deleting_the_bsls_and_the_bslr_leaves_the_data_in_the_bucket(
    stack: dict, s3: dict
) -> None:
    team: Tenant = stack["team"]
    before = objects(s3, stack["backend"])
    for xr in (stack["bsls"], stack["bslr"]):
        composed = team.composed(xr)
        assert composed
        team.delete(xr)
        tenant.wait(
            lambda xr=xr: not team.composed(xr),
            T,
            f"what the {xr['kind']} composed to be collected",
        )
    after = objects(s3, stack["backend"])
    assert f"{stack['backend']['prefix']}kopia.repository" in after
    assert set(before) <= set(after)


def objects(s3: dict, backend: dict) -> list[str]:
    """The keys in the BSLR's bucket."""
    listed = s3["client"].list_objects_v2(Bucket=backend["bucket"])
    return [o["Key"] for o in listed.get("Contents", [])]
