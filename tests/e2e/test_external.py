"""A server published beyond the cluster (spec.service.externalURL), with the real kopia.

The VM here sits outside the cluster: its /etc/hosts sends the external host name to the
server's address, as a LoadBalancer's DNS record or a passthrough Ingress would. It
connects with its bundle's own connect-linux.sh to the bundle's endpoint (the external
URL) and verifies the certificate for that host; a name the certificate does not carry
is refused before any credential leaves the VM.
"""

from __future__ import annotations

import pathlib

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster, hosts_text
from tests.e2e.kopia import make_tree, tree
from tests.e2e.stack import Stack, stand_up
from tests.e2e.vm import VM, new_vm

ALICE = "alice@vm-alice"
EXTERNAL = "backups.example.test"
URL = f"https://{EXTERNAL}:51515"  # the Service's port: the harness forwards it as is


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    del tenant_secrets
    bsls = helpers.example("bsls.yaml")
    bsls["spec"]["service"] = {"type": "LoadBalancer", "externalURL": URL}
    return stand_up(
        cluster,
        helpers.example("bslr.yaml"),
        bsls,
        clock,
        tmp_path_factory.mktemp("clients"),
    )


@pytest.fixture(scope="module")
def outside(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The DNS of a machine outside the cluster: the external names, no cluster names."""
    address = stack.cluster.service_ip(stack.namespace, "vm-backups")
    path = tmp_path_factory.mktemp("outside") / "hosts"
    path.write_text(hosts_text({address: [EXTERNAL, "not-in-the-certificate.example.test"]}))
    return path


def vm(stack: Stack, outside: pathlib.Path, root: pathlib.Path) -> VM:
    machine = new_vm(stack, ALICE, root)
    machine.hosts = outside
    return machine


def test_the_bundle_hands_out_the_external_url_and_the_status_says_it(stack: Stack) -> None:
    assert stack.server.status["externalEndpoint"] == URL
    creds = stack.credentials(ALICE)
    assert creds["endpoint"] == URL
    assert creds["cluster-endpoint"] == "https://vm-backups.team-a.svc:51515"


def test_a_vm_outside_the_cluster_connects_backs_up_and_restores(
    stack: Stack, outside: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    machine = vm(stack, outside, tmp_path / "vm")
    done = machine.connect()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"bsls-{EXTERNAL}.crt" in machine.ssl_cert_file
    data = make_tree(tmp_path / "data", "published beyond the cluster")
    created = machine.kopia("snapshot", "create", str(data))
    assert created.returncode == 0, created.stderr
    restored = machine.kopia("snapshot", "restore", f"{data}", str(tmp_path / "back"))
    assert restored.returncode == 0, restored.stderr
    assert tree(tmp_path / "back") == tree(data)


def test_a_name_the_certificate_does_not_carry_is_refused(
    stack: Stack, outside: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Same address, another name: the client verifies the host, not just the CA."""
    machine = vm(stack, outside, tmp_path / "vm")
    done = machine.run(
        ["/bin/sh", str(machine.bundle / "connect-linux.sh")],
        BSLS_ENDPOINT="https://not-in-the-certificate.example.test:51515",
    )
    assert done.returncode != 0
    assert "x509: certificate is valid for" in done.stderr, done.stderr
    assert "not not-in-the-certificate.example.test" in done.stderr


def test_inside_the_cluster_the_service_url_still_works(
    stack: Stack, tmp_path: pathlib.Path
) -> None:
    machine = new_vm(stack, ALICE, tmp_path / "vm")  # the cluster's DNS, no external name
    done = machine.run(
        ["/bin/sh", str(machine.bundle / "connect-linux.sh")],
        BSLS_ENDPOINT=(machine.bundle / "cluster-endpoint").read_text(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = machine.kopia("snapshot", "list")
    assert listed.returncode == 0, listed.stderr
