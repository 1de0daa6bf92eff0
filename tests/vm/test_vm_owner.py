"""The VM owner, for real: a Debian guest backs up through the server from its bundle.

The guest (hack/guest.py's image under qemu, software emulation) gets alice's
credentials Secret the way KubeVirt hands a Secret to a VM: a disk built from its keys
(kubevirt.py). It runs the steps of docs/vm-user-guide.md as written: mount the disk,
the bundle's connect script (verified TLS against the bundle's CA), the profile line,
the first backup, the listing, the guide's systemd units (a drop-in makes the timer
fire in 2 s instead of daily), the restore of a deleted folder. The server is the
stand-in cluster's (tests/e2e): the rendered Deployment as a process on its Service's
loopback address, which qemu forwards the guest's connections to.

Before it ever reaches the server, the same guest meets three machines in the middle
(tests/e2e's mitm.py, the fakes of test_trust.py: `[own leaf, our CA]`, `[own leaf, our
leaf]` and a leaf from another CA, each for the endpoint's host name): its /etc/hosts
points that name at each fake in turn, as a poisoned DNS or a hijacked route would. The
guide's connect is refused by each in the TLS handshake and writes no connection; each
fake sees its handshake fail and captures nothing. Once connected to the genuine
server, the guest's later commands refuse the fakes too.

A second guest, bob's, connects with his own bundle and sees none of alice's snapshots.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import Iterator

import pytest

from tests.e2e.kopia import make_tree, tree
from tests.e2e.mitm import FakeServer
from tests.e2e.stack import Stack
from tests.e2e.test_trust import FAKES, fake_chain
from tests.vm import kubevirt
from tests.vm.guest import Forward, Guest, Run, forwarded, tar_of
from tests.vm.server import ALICE, BOB, bundle, endpoint, other_user_plan, owner_plan, to_server


@pytest.fixture(scope="module")
def alice_files(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Alice's files in her home: text, binary, empty, nested, unicode names."""
    return make_tree(tmp_path_factory.mktemp("alice") / "projects", seed="guest")


@pytest.fixture(scope="module")
def fakes(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FakeServer]]:
    """The three fakes, on spare loopback addresses, listening for the guest's whole run."""
    _, port = endpoint(stack)
    with contextlib.ExitStack() as running:
        servers = []
        for kind in FAKES:
            chain, key = fake_chain(kind, stack)
            folder = tmp_path_factory.mktemp("fake")
            server = FakeServer(folder, chain, key, stack.cluster.spare_ip(), port)
            servers.append(running.enter_context(server))
        yield servers


@pytest.fixture(scope="module")
def alice_run(
    stack: Stack,
    guest_image: pathlib.Path,
    alice_files: pathlib.Path,
    fakes: list[FakeServer],
    tmp_path_factory: pytest.TempPathFactory,
    figures: dict[str, float],
) -> Run:
    """Alice's guest: the fakes refused, then the guide from the connect to the restore."""
    host, port = endpoint(stack)
    fake_addresses = tuple(forwarded(n) for n in range(1, len(fakes) + 1))
    forwards = [to_server(stack)]
    forwards += [
        Forward(a, port, f.address, f.port) for a, f in zip(fake_addresses, fakes, strict=True)
    ]
    vm = Guest(
        guest_image,
        tmp_path_factory.mktemp("vm-alice"),
        owner_plan(fakes=fake_addresses),
        host,
        forwards,
        bundle(stack, ALICE),
        {"data.tar": tar_of(alice_files, "projects")},
    )
    run = vm.run()
    figures["alice: qemu start to the plan's start (boot)"] = run.ready_after or 0.0
    figures["alice: the guest's uptime then"] = run.ready_uptime or 0.0
    for key, label in [
        ("connect-fake-1", "alice: connect refused by a fake"),
        ("connect", "alice: connect-linux.sh, verified TLS"),
        ("backup", "alice: first backup (3 MB, 12 files)"),
        ("await-timer", "alice: the timer fires, its backup ends"),
        ("restore", "alice: restore of the deleted folder"),
    ]:
        step = run.step(key)
        if step.ended is not None:
            figures[label] = step.seconds
    figures["alice: qemu start to exit"] = run.wall
    return run


def test_every_step_of_the_guide_ran_in_the_guest(alice_run: Run) -> None:
    assert alice_run.done_rc == 0, alice_run.summary()
    assert len(alice_run.steps) == len(alice_run.plan), alice_run.summary()
    for planned, step in zip(alice_run.plan, alice_run.steps, strict=True):
        if planned.stop:
            assert step.rc == 0, f"{step.name} exited {step.rc}:\n{step.log}"


def test_the_bundle_arrives_as_kubevirts_secret_disk(alice_run: Run, stack: Stack) -> None:
    listed = alice_run.ok("mount-bundle").log.split()
    for key in stack.credentials(ALICE):
        assert key in listed, (key, listed)
    assert "..data" not in listed  # `ls` hides the dot folders; they are on the disk


def test_the_guest_connects_with_verified_tls_and_never_shows_the_password(
    alice_run: Run, stack: Stack
) -> None:
    connect = alice_run.ok("connect").log
    assert "Connected to repository API Server." in connect
    assert "SSL_CERT_FILE=/home/alice/.config/kopia/bsls-vm-backups.team-a.svc.crt" in connect
    password = stack.credentials(ALICE)["password"]
    assert all(password not in step.log for step in alice_run.steps)


def test_the_first_backup_and_the_timers_backup_are_alices_snapshots(
    alice_run: Run, stack: Stack
) -> None:
    assert "Created snapshot" in alice_run.ok("backup").log
    assert "Created snapshot" in alice_run.ok("schedule-log").log  # the timer's run
    snapshots = json.loads(alice_run.text("snapshots.json"))
    assert len(snapshots) == 2, snapshots
    assert {(s["source"]["userName"], s["source"]["host"], s["source"]["path"])
            for s in snapshots} == {("alice", "vm-alice", "/home/alice")}  # fmt: skip
    # The server agrees: a client of alice's elsewhere lists the same two.
    listed = stack.connected(ALICE).snapshots()
    assert sorted(s["id"] for s in listed) == sorted(s["id"] for s in snapshots)


def test_the_deleted_folder_is_restored_byte_identical(
    alice_run: Run, alice_files: pathlib.Path
) -> None:
    alice_run.ok("lose-files")
    alice_run.ok("restore")
    assert tree(alice_run.out / "restored") == tree(alice_files)


def test_the_example_vm_attaches_alices_credentials_secret(stack: Stack) -> None:
    secret, label, serial = kubevirt.example_bundle_disk()
    users = {u["identity"]: u["credentialsSecretName"] for u in stack.server.status["users"]}
    assert secret == users[ALICE]
    assert label == serial == "kopia-bundle"  # what the guide mounts


# ------------------------------------------------------------------- machines in the middle


def refused_in_the_handshake(log: str, server: FakeServer) -> None:
    assert "x509: certificate" in log or "failed to verify" in log, log
    assert server.refusals, "the guest never reached the fake"
    assert server.handshakes == 0
    assert server.captured == []
    assert server.leaked == []


@pytest.mark.parametrize("n", range(1, len(FAKES) + 1), ids=FAKES)
def test_the_guides_connect_is_refused_by_a_fake_and_hands_it_nothing(
    alice_run: Run, fakes: list[FakeServer], n: int
) -> None:
    connect = alice_run.failed(f"connect-fake-{n}")
    alice_run.ok(f"no-config-fake-{n}")  # no connection was written
    refused_in_the_handshake(connect.log, fakes[n - 1])


@pytest.mark.parametrize("n", range(1, len(FAKES) + 1), ids=FAKES)
def test_the_connected_guest_refuses_a_fake_on_later_commands(
    alice_run: Run, fakes: list[FakeServer], n: int
) -> None:
    later = alice_run.failed(f"later-fake-{n}")
    refused_in_the_handshake(later.log, fakes[n - 1])


# --------------------------------------------------------------------------- another user


@pytest.fixture(scope="module")
def bob_run(
    stack: Stack,
    guest_image: pathlib.Path,
    alice_run: Run,
    tmp_path_factory: pytest.TempPathFactory,
    figures: dict[str, float],
) -> Run:
    """Bob's guest, after alice's: his bundle, the guide's connect, then a look around."""
    host, _ = endpoint(stack)
    alices = json.loads(alice_run.text("snapshots.json"))[0]
    vm = Guest(
        guest_image,
        tmp_path_factory.mktemp("vm-bob"),
        other_user_plan("bob", alices["id"]),
        host,
        [to_server(stack)],
        bundle(stack, BOB),
    )
    run = vm.run()
    figures["bob: qemu start to exit"] = run.wall
    return run


def test_a_second_guest_of_another_user_sees_none_of_alices_snapshots(bob_run: Run) -> None:
    assert "Connected to repository API Server." in bob_run.ok("connect").log
    bob_run.ok("list-all")
    assert json.loads(bob_run.text("all.out")) == []
    bob_run.failed("restore-alices")
