"""The server as a guest reaches it on the stand-in cluster (tests/e2e), and the plans."""

from __future__ import annotations

import urllib.parse

from tests.e2e.stack import Stack
from tests.vm.guest import GUEST_ADDRESS, Forward, Step, forwarded

ALICE = "alice@vm-alice"
BOB = "bob@vm-bob"
TIMER_WAIT = "600"  # seconds the harness waits for the timer's backup to finish


def endpoint(stack: Stack) -> tuple[str, int]:
    """The host name and port of the server's endpoint, as the bundle has it."""
    url = urllib.parse.urlsplit(stack.server.status["endpoint"])
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port


def to_server(stack: Stack, n: int = 0) -> Forward:
    """The guest's n-th forwarded address, to the server's Service."""
    _, port = endpoint(stack)
    service = stack.server.desired["service"]["metadata"]["name"]
    return Forward(forwarded(n), port, stack.cluster.service_ip(stack.namespace, service), port)


def bundle(stack: Stack, identity: str) -> dict[str, bytes]:
    """The user's credentials Secret's data, as the cluster holds it."""
    return {k: v.encode() for k, v in stack.credentials(identity).items()}


def owner_plan(
    user: str = "alice", server: str = forwarded(0), fakes: tuple[str, ...] = ()
) -> list[Step]:
    """Alice's story: every marked step of docs/vm-user-guide.md, with the harness's
    steps between them (her account and files first, the timer's drop-in and the wait
    for it, the loss before the restore, what she sees at the end).

    With `fakes` (forwarded addresses of machines in the middle), the guide's connect
    first meets each fake (and must leave no connection behind), then the genuine
    server; at the end a later command meets each fake again.
    """
    steps = [
        Step("root", "network", (GUEST_ADDRESS,)),
        Step("root", "setup", (user,)),
        Step("root", "point-at", (server,)),
        Step(user, "user-files"),
        Step(user, "mount-bundle"),
    ]
    for n, fake in enumerate(fakes, start=1):
        steps += [
            Step("root", "point-at", (fake,), label=f"point-at-fake-{n}"),
            Step(user, "connect", stop=False, label=f"connect-fake-{n}"),
            Step(user, "no-config", label=f"no-config-fake-{n}"),
        ]
    if fakes:
        steps.append(Step("root", "point-at", (server,), label="point-at-server"))
    steps += [
        Step(user, "connect"),
        Step(user, "profile"),
        Step(user, "unmount-bundle"),
        Step(user, "backup"),
        Step(user, "list"),
        Step(user, "schedule-service"),
        Step(user, "schedule-timer"),
        Step(user, "timer-dropin"),
        Step(user, "schedule-enable"),
        Step(user, "await-timer", (TIMER_WAIT,)),
        Step(user, "schedule-log"),
        Step(user, "lose-files"),
        Step(user, "restore"),
        Step(user, "collect"),
    ]
    for n, fake in enumerate(fakes, start=1):
        steps += [
            Step("root", "point-at", (fake,), label=f"point-at-fake-{n}-again"),
            Step(user, "kopia", (f"fake-{n}", "snapshot", "list"), False, f"later-fake-{n}"),
        ]
    return steps


def other_user_plan(user: str, alices_snapshot: str, server: str = forwarded(0)) -> list[Step]:
    """Another user's guest: the guide's connect, then a look for alice's snapshots."""
    return [
        Step("root", "network", (GUEST_ADDRESS,)),
        Step("root", "setup", (user,)),
        Step("root", "point-at", (server,)),
        Step(user, "mount-bundle"),
        Step(user, "connect"),
        Step(user, "profile"),
        Step(user, "kopia", ("all", "snapshot", "list", "--all", "--json"), label="list-all"),
        Step(
            user,
            "kopia",
            ("steal", "snapshot", "restore", alices_snapshot, "/tmp/x"),
            False,
            "restore-alices",
        ),
    ]
