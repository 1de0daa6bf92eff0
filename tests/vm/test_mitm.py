"""The same guest against a machine in the middle: refused, and nothing handed over.

Alice's guest (her bundle on KubeVirt's Secret disk, the guide's steps as written) has
qemu forwards to the genuine server and to three fakes that pose as it (tests/e2e's
mitm.py, the fakes of test_trust.py): `[own leaf, our CA]`, `[own leaf, our leaf]`, and
a leaf from another CA, each for the endpoint's host name. The guest's /etc/hosts
points that name at one fake after another, as a poisoned DNS or a hijacked route
would. The bundle's connect script is refused by each in the TLS handshake and leaves
no connection behind; each fake sees the handshake fail and captures nothing. Then the
guest connects to the genuine server, and its later kopia commands refuse the fakes
too.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

import pytest

from tests.e2e.mitm import FakeServer
from tests.e2e.stack import Stack
from tests.e2e.test_trust import FAKES, fake_chain
from tests.vm.guest import Forward, Guest, Run, Step, forwarded
from tests.vm.server import ALICE, bundle, endpoint, to_server


@pytest.fixture(scope="module")
def fakes(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FakeServer]]:
    """The three fakes, listening on spare loopback addresses for the guest's whole run."""
    _, port = endpoint(stack)
    with contextlib.ExitStack() as running:
        servers = {}
        for kind in FAKES:
            chain, key = fake_chain(kind, stack)
            folder = tmp_path_factory.mktemp("fake")
            server = FakeServer(folder, chain, key, stack.cluster.spare_ip(), port)
            servers[kind] = running.enter_context(server)
        yield servers


@pytest.fixture(scope="module")
def mitm_run(
    stack: Stack,
    guest_image: pathlib.Path,
    fakes: dict[str, FakeServer],
    tmp_path_factory: pytest.TempPathFactory,
    figures: dict[str, float],
) -> Run:
    host, port = endpoint(stack)
    a = "alice"
    forwards = [to_server(stack)]
    plan = [Step("root", "setup", (a,)), Step(a, "mount-bundle")]
    for n, kind in enumerate(FAKES, start=1):
        server = fakes[kind]
        forwards.append(Forward(forwarded(n), port, server.address, server.port))
        plan += [
            Step("root", "point-at", (forwarded(n),)),
            Step(a, "connect", stop=False),
            Step(a, "no-config"),
        ]
    plan += [
        Step("root", "point-at", (forwarded(0),)),
        Step(a, "connect"),
        Step(a, "profile"),
        Step(a, "kopia", ("genuine", "snapshot", "list")),
    ]
    for n, _ in enumerate(FAKES, start=1):
        plan += [
            Step("root", "point-at", (forwarded(n),)),
            Step(a, "kopia", (f"fake-{n}", "snapshot", "list"), stop=False),
        ]
    vm = Guest(
        guest_image,
        tmp_path_factory.mktemp("vm-mitm"),
        plan,
        host,
        forwards,
        bundle(stack, ALICE),
    )
    run = vm.run()
    refused = [run.step("connect", n) for n in range(len(FAKES))]
    if all(s.ended is not None for s in refused):
        figures["connect refused by a fake (mean of 3)"] = sum(s.seconds for s in refused) / 3
    figures["the machine-in-the-middle guest, qemu start to exit"] = run.wall
    return run


def refused(step_log: str) -> bool:
    return "x509: certificate" in step_log or "failed to verify" in step_log


@pytest.mark.parametrize("kind", FAKES)
def test_the_guides_connect_is_refused_by_a_fake_and_hands_it_nothing(
    mitm_run: Run, fakes: dict[str, FakeServer], kind: str
) -> None:
    n = FAKES.index(kind)
    connect = mitm_run.step("connect", n)
    assert connect.rc not in (0, None), connect.log
    assert refused(connect.log), connect.log
    mitm_run.ok("no-config", n)  # no connection was written
    server = fakes[kind]
    assert server.refusals, "the guest never reached the fake"
    assert server.handshakes == 0
    assert server.captured == []
    assert server.leaked == []


def test_the_genuine_server_is_trusted_by_the_same_guest(mitm_run: Run) -> None:
    connect = mitm_run.ok("connect", len(FAKES))
    assert "Connected to repository API Server." in connect.log
    mitm_run.ok("kopia", 0)


@pytest.mark.parametrize("kind", FAKES)
def test_a_connected_guest_refuses_a_fake_on_later_commands(
    mitm_run: Run, fakes: dict[str, FakeServer], kind: str
) -> None:
    n = FAKES.index(kind)
    later = mitm_run.step("kopia", n + 1)
    assert later.rc not in (0, None), later.log
    assert refused(later.log), later.log
    server = fakes[kind]
    assert server.handshakes == 0
    assert server.captured == []
    assert server.leaked == []


def test_the_password_never_left_the_guest_for_a_fake(mitm_run: Run, stack: Stack) -> None:
    assert mitm_run.done_rc == 0, mitm_run.summary()
    password = stack.credentials(ALICE)["password"]
    assert all(password not in s.log for s in mitm_run.steps)
