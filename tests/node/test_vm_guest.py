"""Real guests inside launcher pods on the real node: VM -> Service -> server pod.

The VM suite's guest (tests/vm: hack/guest.py's Debian image under qemu, software
emulation) runs in a pod labelled as KubeVirt's virt-launcher pods are, in team-a's
namespace (Pod Security "restricted"), with the user's credentials Secret as a Secret
volume that the launcher turns into KubeVirt's Secret disk (tests/vm/pod.py). qemu's
user-mode network forwards the guest's connections to `vm-backups.team-a.svc:51515`,
which the pod resolves through the cluster's DNS: the server the function composed,
behind its Service, as Crossplane and the kubelet run it.

Alice's guest follows docs/vm-user-guide.md as written, from mounting the bundle to
restoring a deleted folder (the guide's profile line names team-a's endpoint, so this
runs in team-a, after test_filesystem.py's story has ended with the BSLS deleted: the
BSLR and its data stay, the BSLS is applied again). Bob's guest, in a pod of its own,
sees none of alice's snapshots.
"""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from tests.e2e.kopia import make_tree, tree
from tests.node import tenant
from tests.node.tenant import MILESTONES, T, Tenant
from tests.vm import guest, pod
from tests.vm.guest import Forward, Guest, Run, forwarded, tar_of
from tests.vm.server import ALICE, BOB, other_user_plan, owner_plan

TEAM = "team-a"
CLAIM = "team-a-backups"


@pytest.fixture(scope="module")
def team(node, established) -> Tenant:
    """team-a: the namespace (restricted) and the example Secrets."""
    return Tenant(node, TEAM).create()


@pytest.fixture(scope="module")
def server(team: Tenant) -> dict:
    """The examples' repository and server in team-a, Ready."""
    team.claim(CLAIM)
    team.wait_xr(team.apply(tenant.example("bslr.yaml", TEAM)[0]), "Ready", timeout=T)
    bsls = team.apply(tenant.example("bsls.yaml", TEAM)[0])
    return team.wait_xr(bsls, "Ready", timeout=2 * T, touch=True)


@pytest.fixture(scope="module")
def launcher(node) -> str:
    """The launcher image, in the node's containerd."""
    start = time.monotonic()
    image = pod.launcher_image(node)
    MILESTONES["vm: launcher image built or cached, imported"] = round(time.monotonic() - start, 1)
    return image


@pytest.fixture(scope="module")
def image_claim(team: Tenant) -> str:
    """The guest image's folder as a read-only claim (built first if the cache lacks it)."""
    builder = guest.load_builder()
    folder = builder.build()
    return pod.static_claim(team, pod.GUEST_IMAGE_CLAIM, folder, read_only=True)


def endpoint(server: dict) -> tuple[str, int]:
    url = server["status"]["endpoint"]
    host, _, port = url.removeprefix("https://").partition(":")
    return host, int(port)


def in_pod(
    team: Tenant, server: dict, launcher: str, image_claim: str, vm: str, identity: str,
    plan: list, work: pathlib.Path, files: dict[str, bytes] | None = None,
) -> Run:  # fmt: skip
    """One guest in one launcher pod, forwarded to the server's Service by name."""
    host, port = endpoint(server)
    g = Guest(
        pathlib.Path("/nonexistent"),  # the image is the pod's claim
        work,
        plan,
        host,
        [Forward(forwarded(0), port, host, port)],  # socat in the pod resolves the Service
        None,  # the launcher builds the bundle disk from the pod's Secret volume
        files or {},
    )
    secret = team.credentials(server, identity)
    return pod.LauncherPod(team, vm, g, secret, launcher, image_claim).run()


@pytest.fixture(scope="module")
def alice_files(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return make_tree(tmp_path_factory.mktemp("alice") / "projects", seed="pod")


@pytest.fixture(scope="module")
def alice_run(
    team: Tenant,
    server: dict,
    launcher: str,
    image_claim: str,
    alice_files: pathlib.Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    run = in_pod(
        team, server, launcher, image_claim, "vm-alice", ALICE, owner_plan(),
        tmp_path_factory.mktemp("pod-alice"), {"data.tar": tar_of(alice_files, "projects")},
    )  # fmt: skip
    MILESTONES["vm: alice's guest in a pod, boot to the plan's start"] = round(
        run.ready_after or 0.0, 1
    )
    for key in ("connect", "backup", "restore"):
        if run.step(key).ended is not None:
            MILESTONES[f"vm: alice's guest in a pod, {key}"] = round(run.step(key).seconds, 1)
    MILESTONES["vm: alice's guest in a pod, pod created to gone"] = round(run.wall, 1)
    return run


def test_the_guest_in_a_launcher_pod_follows_the_guide_through_the_service(
    alice_run: Run, team: Tenant, server: dict, alice_files: pathlib.Path
) -> None:
    assert alice_run.done_rc == 0, alice_run.summary()
    for step in alice_run.steps:
        assert step.rc == 0, f"{step.name} exited {step.rc}:\n{step.log}"
    assert "Connected to repository API Server." in alice_run.ok("connect").log
    assert "Created snapshot" in alice_run.ok("schedule-log").log  # the timer's backup
    assert tree(alice_run.out / "restored") == tree(alice_files)
    snapshots = json.loads(alice_run.text("snapshots.json"))
    assert [s["source"]["path"] for s in snapshots].count("/home/alice") == 2, snapshots
    password = team.secret(team.credentials(server, ALICE))["password"]
    assert all(password not in step.log for step in alice_run.steps)


def test_the_launcher_built_the_secret_disk_from_the_kubelets_secret_volume(
    alice_run: Run,
) -> None:
    launcher_log = (alice_run.console.parent / "launcher.log").read_text()
    assert "..data" in launcher_log  # the kubelet's layout, listed as virt-launcher does
    listed = alice_run.ok("mount-bundle").log.split()
    assert {"ca.crt", "connect-linux.sh", "endpoint", "password"} <= set(listed)


@pytest.fixture(scope="module")
def bob_run(
    team: Tenant,
    server: dict,
    launcher: str,
    image_claim: str,
    alice_run: Run,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    alices = json.loads(alice_run.text("snapshots.json"))
    return in_pod(
        team, server, launcher, image_claim, "vm-bob", BOB,
        other_user_plan("bob", alices[0]["id"]), tmp_path_factory.mktemp("pod-bob"),
    )  # fmt: skip


def test_a_second_guest_of_another_user_in_its_own_pod_sees_none_of_alices(
    bob_run: Run, alice_run: Run
) -> None:
    assert bob_run.done_rc == 0, bob_run.summary()
    assert "Connected to repository API Server." in bob_run.ok("connect").log
    bob_run.ok("list-all")
    # team-a's repository is shared with the other node stories, where bob backed up too:
    # what he lists is his own and nothing of alice's.
    listed = json.loads(bob_run.text("all.out"))
    owners = {(s["source"]["userName"], s["source"]["host"]) for s in listed}
    assert owners <= {("bob", "vm-bob")}, owners
    alices = {s["id"] for s in json.loads(alice_run.text("snapshots.json"))}
    assert alices
    assert not alices & {s["id"] for s in listed}
    bob_run.failed("restore-alices")
