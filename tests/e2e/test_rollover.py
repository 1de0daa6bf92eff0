"""A planned CA rollover with the real kopia: a VM that takes its refreshed bundle keeps
working across the switch; one that does not is refused, never silently trusted.

The periods are short (a 40-day CA that rolls over 10 days ahead) so that every
certificate a client checks is valid at the real time, which kopia verifies against:
the function's clock starts 30 days ago and ends an hour ago.
"""

from __future__ import annotations

import datetime
import pathlib

import pytest
from cryptography import x509

from tests import helpers
from tests.e2e.cluster import Cluster
from tests.e2e.kopia import make_tree, tree
from tests.e2e.stack import Stack, stand_up
from tests.e2e.vm import VM, new_vm

ALICE = "alice@vm-alice"
INPUT = {
    "apiVersion": "bsls.fn.dataprotection.bsls.dev/v1alpha1",
    "kind": "Input",
    "caValidityDays": 40,
    "caRolloverDays": 10,
    "certificateValidityDays": 35,
}
START = datetime.timedelta(days=30, hours=1)  # before now


@pytest.fixture(scope="module")
def clock() -> helpers.Clock:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return helpers.Clock(now - START)


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
        helpers.example("bsls.yaml"),
        clock,
        tmp_path_factory.mktemp("clients"),
        inp=INPUT,
    )


@pytest.fixture(scope="module")
def vms(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, VM]:
    """Two VMs of alice's, connected before the rollover starts."""
    out = {}
    for name in ("refreshes", "never-refreshes"):
        vm = new_vm(stack, ALICE, tmp_path_factory.mktemp(name))
        done = vm.connect()
        assert done.returncode == 0, done.stderr
        out[name] = vm
    return out


@pytest.fixture(scope="module")
def backup(vms: dict[str, VM], tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    source = make_tree(tmp_path_factory.mktemp("data"), seed="rollover")
    done = vms["refreshes"].kopia("snapshot", "create", str(source))
    assert done.returncode == 0, done.stderr
    return source


def cas(stack: Stack) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(stack.credentials(ALICE)["ca.crt"].encode())


def test_the_next_ca_is_handed_out_before_it_signs(
    stack: Stack, vms: dict[str, VM], backup: pathlib.Path, clock: helpers.Clock, tmp_path
) -> None:
    [current] = cas(stack)
    fingerprint = stack.server.status["tlsFingerprint"]
    clock.advance(days=20, minutes=1)  # the CA has less than two rollover periods left
    restarted, _ = stack.converge()

    status, reason, message = stack.server.conditions["TLSReady"]
    assert (status, reason) == ("True", "CARolloverPending")
    assert "signs the serving certificate from" in message
    assert restarted == []  # the current CA still signs: nothing to roll yet
    bundle = cas(stack)
    assert bundle[0] == current
    assert len(bundle) == 2
    assert stack.ca_bundle() == stack.credentials(ALICE)["ca.crt"]
    assert stack.server.status["tlsFingerprint"] == fingerprint

    # One VM owner takes the refreshed bundle and runs its connect script again.
    refreshed = vms["refreshes"]
    stack.bundle(ALICE, refreshed.bundle)
    done = refreshed.connect()
    assert done.returncode == 0, done.stderr
    for vm in vms.values():
        listed = vm.kopia("snapshot", "list")
        assert listed.returncode == 0, listed.stderr


def test_after_the_switch_the_refreshed_vm_works_and_the_other_is_refused(
    stack: Stack, vms: dict[str, VM], backup: pathlib.Path, clock: helpers.Clock, tmp_path
) -> None:
    old_fingerprint = stack.server.status["tlsFingerprint"]
    next_ca = cas(stack)[1]
    clock.advance(days=10, minutes=1)  # the next CA has been handed out for a period
    restarted, _ = stack.converge()

    status, reason, message = stack.server.conditions["TLSReady"]
    assert (status, reason) == ("True", "CARolledOver")
    assert old_fingerprint in message
    assert restarted == [stack.deployment["metadata"]["name"]]
    assert cas(stack) == [next_ca]
    assert stack.server.status["tlsFingerprint"] != old_fingerprint

    refreshed = vms["refreshes"]
    restored = refreshed.kopia("snapshot", "restore", str(backup), str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    assert tree(tmp_path / "restored") == tree(backup)

    stale = vms["never-refreshes"]
    refused = stale.kopia("snapshot", "list")
    assert refused.returncode != 0
    assert "x509: certificate signed by unknown authority" in refused.stderr
    # Taking the current bundle fixes it.
    stack.bundle(ALICE, stale.bundle)
    assert stale.connect().returncode == 0
    assert stale.kopia("snapshot", "list").returncode == 0
