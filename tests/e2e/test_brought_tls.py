"""A certificate brought in cert-manager's shape, served to the real kopia client.

cert-manager writes `tls.crt` = the leaf (and any intermediates) and `ca.crt` = the CA,
which it leaves out of `tls.crt` on purpose, and an app team cannot edit a Secret that
cert-manager owns. The server serves `tls.crt` followed by `ca.crt`, and VMs trust the
`ca.crt` of their bundle.
"""

from __future__ import annotations

import base64
import datetime
import pathlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from tests import helpers
from tests.e2e.cluster import Cluster
from tests.e2e.kopia import make_tree, tree
from tests.e2e.mitm import issue, pem
from tests.e2e.stack import Stack, stand_up
from tests.e2e.vm import VM, new_vm

ALICE = "alice@vm-alice"
HOST = "vm-backups.team-a.svc"


def tls_secret(chain: bytes, key, ca: bytes) -> dict:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "vm-backups-cert", "namespace": "team-a"},
        "data": {
            k: base64.b64encode(v).decode()
            for k, v in {"tls.crt": chain, "tls.key": key_pem, "ca.crt": ca}.items()
        },
    }


@pytest.fixture(scope="module")
def clock() -> helpers.Clock:
    """The real time: the brought certificates are issued now."""
    return helpers.Clock(datetime.datetime.now(datetime.UTC))


@pytest.fixture(scope="module")
def root():
    return issue("team-a root CA", ca=True)


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    root,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    """A server whose certificate cert-manager issued straight from the root: leaf only."""
    del tenant_secrets
    leaf, key = issue(HOST, dns=[HOST], issuer=root)
    cluster.apply(tls_secret(pem(leaf), key, pem(root[0])))
    bsls = helpers.example("bsls.yaml")
    bsls["spec"]["tls"] = {"secretRef": {"name": "vm-backups-cert"}}
    return stand_up(
        cluster,
        helpers.example("bslr.yaml"),
        bsls,
        clock,
        tmp_path_factory.mktemp("clients"),
    )


@pytest.fixture(scope="module")
def vm(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> VM:
    return new_vm(stack, ALICE, tmp_path_factory.mktemp("vm"))


def test_a_leaf_only_secret_is_served_with_its_ca_and_a_vm_connects(
    stack: Stack, vm: VM, root, tmp_path: pathlib.Path
) -> None:
    assert stack.server.conditions["TLSReady"][:2] == ("True", "Provided")
    assert stack.credentials(ALICE)["ca.crt"].encode() == pem(root[0])
    assert stack.server.status["tlsFingerprint"] == root[0].fingerprint(hashes.SHA256()).hex()
    done = vm.connect()
    assert done.returncode == 0, done.stderr
    source = make_tree(tmp_path / "data", seed="cert-manager")
    assert vm.kopia("snapshot", "create", str(source)).returncode == 0
    restored = vm.kopia("snapshot", "restore", str(source), str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    assert tree(tmp_path / "restored") == tree(source)
    # The root is in the served chain: a client pinning it finds it there.
    pinned = stack.client("pinned")
    fingerprint = stack.server.status["tlsFingerprint"]
    password = stack.credentials(ALICE)["password"]
    connected = pinned.connect_server(
        stack.server.status["endpoint"], "alice", "vm-alice", password, fingerprint
    )
    assert connected.returncode == 0, connected.stderr


def test_a_reissued_certificate_with_an_intermediate_keeps_the_vm_working(
    stack: Stack, vm: VM, root
) -> None:
    """cert-manager re-issues through an intermediate: tls.crt = leaf + intermediate."""
    intermediate = issue("team-a issuing CA", ca=True, issuer=root)
    leaf, key = issue(HOST, dns=[HOST], issuer=intermediate)
    stack.cluster.apply(tls_secret(pem(leaf, intermediate[0]), key, pem(root[0])))
    restarted, _ = stack.converge()
    assert restarted == [stack.deployment["metadata"]["name"]]
    assert stack.server.conditions["TLSReady"][:2] == ("True", "Provided")
    listed = vm.kopia("snapshot", "list")  # nothing changed inside the VM
    assert listed.returncode == 0, listed.stderr


def test_a_certificate_for_another_host_is_refused_and_the_server_kept(
    stack: Stack, vm: VM, root
) -> None:
    deployment = stack.deployment
    leaf, key = issue("elsewhere.example.com", dns=["elsewhere.example.com"], issuer=root)
    stack.cluster.apply(tls_secret(pem(leaf), key, pem(root[0])))
    restarted, _ = stack.converge()
    status, reason, message = stack.server.conditions["TLSReady"]
    assert (status, reason) == ("False", "InvalidCertificate")
    assert HOST in message
    assert restarted == []
    assert stack.deployment == deployment
    assert vm.kopia("snapshot", "list").returncode == 0
