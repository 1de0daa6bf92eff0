"""Trust that holds against a machine in the middle, with the real kopia client.

A "VM" here is a home folder, the user's credentials Secret as files (a Secret volume)
and a private mount namespace whose /etc/hosts says where the endpoint's host name
points: at the genuine server's Service, or at a fake that poses as it. The VM runs the
bundle's own `connect-linux.sh`, then kopia commands with the SSL_CERT_FILE the script
recorded, exactly as docs/vm-user-guide.md tells a VM owner to.

Every fake is refused during the TLS handshake, so no credential ever leaves the VM;
the same fakes, met by a client pinned with `--server-cert-fingerprint` (kopia's own
pinning, which the first version of this product used), get the password in clear.
"""

from __future__ import annotations

import base64
import copy
import pathlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests import helpers
from tests.e2e.cluster import hosts_text
from tests.e2e.kopia import make_tree, tree
from tests.e2e.mitm import FakeServer, issue, pem
from tests.e2e.stack import Stack
from tests.e2e.vm import VM, new_vm

ALICE = "alice@vm-alice"
HOST = "vm-backups.team-a.svc"
PORT = 51515


@pytest.fixture(scope="module")
def vms(stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    """New VMs of alice's, each with the bundle as its credentials Secret holds it now."""

    return lambda name: new_vm(stack, ALICE, tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def vm(vms) -> VM:
    """The VM that connects to the genuine server and keeps its configuration."""
    return vms("vm")


def poisoned(folder: pathlib.Path, address: str) -> pathlib.Path:
    """An /etc/hosts that sends the endpoint's host name to `address`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hosts"
    path.write_text(hosts_text({address: [HOST, f"{HOST}.cluster.local"]}))
    return path


def our_ca(stack: Stack) -> x509.Certificate:
    return x509.load_pem_x509_certificate(stack.credentials(ALICE)["ca.crt"].encode())


def our_leaf(stack: Stack) -> x509.Certificate:
    data = stack.cluster.secret_data(
        stack.namespace, stack.server.desired["tls-server"]["metadata"]["name"]
    )
    assert data is not None
    return x509.load_pem_x509_certificates(data["tls.crt"])[0]


def fake_chain(kind: str, stack: Stack):
    """(chain PEM, key) of a fake that poses as the server."""
    if kind == "own leaf + our CA":
        leaf, key = issue(HOST, dns=[HOST])
        return pem(leaf, our_ca(stack)), key
    if kind == "own leaf + our leaf":
        leaf, key = issue(HOST, dns=[HOST])
        return pem(leaf, our_leaf(stack)), key
    assert kind == "another CA"
    other = issue("another CA", ca=True)
    leaf, key = issue(HOST, dns=[HOST], issuer=other)
    return pem(leaf, other[0]), key


FAKES = ["own leaf + our CA", "own leaf + our leaf", "another CA"]


def fake(stack: Stack, kind: str, folder: pathlib.Path) -> tuple[FakeServer, pathlib.Path]:
    """A fake server of `kind` on a spare address, and the hosts file that leads to it."""
    chain, key = fake_chain(kind, stack)
    address = stack.cluster.spare_ip()
    return FakeServer(folder, chain, key, address, PORT), poisoned(folder, address)


def refused_in_the_handshake(done: subprocess.CompletedProcess[str], server: FakeServer) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "x509: certificate" in done.stderr or "failed to verify" in done.stderr, done.stderr
    # The client did reach the fake (not a DNS or routing failure), and refused it there.
    assert server.refusals, "the client never reached the fake"
    assert server.handshakes == 0
    assert server.captured == []
    assert server.leaked == []


# ----------------------------------------------------------------------- the genuine server


def test_the_bundles_connect_script_connects_with_verified_tls(
    stack: Stack, vm: VM, tmp_path: pathlib.Path
) -> None:
    done = vm.connect()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SSL_CERT_FILE" in done.stdout
    assert pathlib.Path(vm.ssl_cert_file).read_text() == stack.credentials(ALICE)["ca.crt"]
    # The password never appears in what the script printed.
    assert stack.credentials(ALICE)["password"] not in done.stdout + done.stderr

    source = make_tree(tmp_path / "data", seed="trust")
    created = vm.kopia("snapshot", "create", str(source), "--json")
    assert created.returncode == 0, created.stderr
    listed = vm.kopia("snapshot", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    restored = vm.kopia("snapshot", "restore", str(source), str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    assert tree(tmp_path / "restored") == tree(source)


def test_without_the_bundles_ca_the_server_is_not_trusted(vm: VM) -> None:
    done = vm.run(["kopia", "snapshot", "list"])  # no SSL_CERT_FILE
    assert done.returncode != 0
    assert "x509: certificate signed by unknown authority" in done.stderr


# ------------------------------------------------------------------- machines in the middle


@pytest.mark.parametrize("kind", FAKES)
def test_a_fake_server_is_refused_before_any_credential_leaves_the_vm(
    stack: Stack, vms, kind: str, tmp_path: pathlib.Path
) -> None:
    new_vm = vms("new-vm")
    server, hosts = fake(stack, kind, tmp_path / "fake")
    with server:
        done = new_vm.connect(hosts)
    refused_in_the_handshake(done, server)
    assert not (new_vm.home / ".config" / "kopia" / "repository.config").exists()


@pytest.mark.parametrize("kind", FAKES)
def test_a_connected_vm_refuses_a_fake_server_on_later_commands(
    stack: Stack, vm: VM, kind: str, tmp_path: pathlib.Path
) -> None:
    server, hosts = fake(stack, kind, tmp_path / "fake")
    with server:
        done = vm.kopia("snapshot", "list", hosts=hosts)
    refused_in_the_handshake(done, server)


@pytest.mark.parametrize(
    ("kind", "pin"),
    [("own leaf + our CA", "ca"), ("own leaf + our leaf", "leaf")],
)
def test_a_fingerprint_pin_hands_the_password_to_a_fake(
    stack: Stack, tmp_path: pathlib.Path, kind: str, pin: str
) -> None:
    """Why the bundle never uses --server-cert-fingerprint: kopia's check is this weak."""
    server, hosts = fake(stack, kind, tmp_path / "fake")
    pinned = our_ca(stack) if pin == "ca" else our_leaf(stack)
    fingerprint = pinned.fingerprint(hashes.SHA256()).hex()
    password = stack.credentials(ALICE)["password"]
    client = stack.client("pinned", hosts)
    with server:
        done = client.connect_server(
            stack.server.status["endpoint"], "alice", "vm-alice", password, fingerprint
        )
    assert done.returncode != 0  # the fake answers nothing useful...
    assert server.leaked == [password]  # ...but it has the password


# ---------------------------------------------------------------------------- the sync Job


def _sync_pod(stack: Stack, hosts: pathlib.Path):
    job = stack.sync_job()
    pod = stack.cluster.pod(stack.namespace, job["metadata"]["name"], job["spec"]["template"])
    pod.hosts = hosts
    return pod


def test_the_sync_jobs_refresh_never_hands_the_control_password_to_a_fake(
    stack: Stack, tmp_path: pathlib.Path
) -> None:
    server, hosts = fake(stack, "own leaf + our CA", tmp_path / "fake")
    with server:
        run = _sync_pod(stack, hosts).run()
    assert run.returncode == 20, run.logs  # the cause the Job names: TLS
    assert "x509: certificate" in run.logs
    assert "did not verify against the CA bundle" in run.logs
    assert "users in sync" in run.logs  # the users were applied; only the refresh failed
    assert server.refusals
    assert server.handshakes == 0
    assert server.leaked == []


def test_a_refused_control_password_fails_the_sync_with_its_own_cause(stack: Stack) -> None:
    """The genuine server, a control Secret that no longer matches it: exit 21, not a hang."""
    name = stack.server.desired["control"]["metadata"]["name"]
    original = copy.deepcopy(stack.cluster.get("Secret", stack.namespace, name))
    assert original is not None
    wrong = copy.deepcopy(original)
    wrong["data"]["password"] = base64.b64encode(b"not-the-control-password").decode()
    stack.cluster.apply(wrong)
    try:
        run = _sync_pod(stack, stack.cluster.hosts).run()
    finally:
        stack.cluster.apply(original)
    assert run.returncode == 21, run.logs
    assert "the server refused the control password" in run.logs
    assert "not-the-control-password" not in run.logs


def test_a_pinned_refresh_would_have_handed_it_over(stack: Stack, tmp_path: pathlib.Path) -> None:
    control = stack.cluster.secret_data(
        stack.namespace, stack.server.desired["control"]["metadata"]["name"]
    )
    assert control is not None
    server, hosts = fake(stack, "own leaf + our CA", tmp_path / "fake")
    client = stack.client("control", hosts)
    with server:
        done = client.run(
            "server",
            "refresh",
            f"--address={stack.server.status['endpoint']}",
            f"--server-cert-fingerprint={stack.server.status['tlsFingerprint']}",
            f"--server-control-username={control['username'].decode()}",
            password=None,
            check=False,
            extra_env={"KOPIA_SERVER_PASSWORD": control["password"].decode()},
        )
    assert done.returncode != 0
    assert server.leaked == [control["password"].decode()]


# -------------------------------------------------------------------------- after a renewal


def test_after_a_leaf_renewal_the_same_vm_still_works_and_still_refuses_fakes(
    stack: Stack, vm: VM, clock: helpers.Clock, tmp_path: pathlib.Path
) -> None:
    before = our_leaf(stack)
    clock.advance(days=250)
    restarted, _ = stack.converge()
    assert restarted == [stack.deployment["metadata"]["name"]]
    assert our_leaf(stack) != before
    assert stack.server.conditions["TLSReady"][1] == "Renewed"

    listed = vm.kopia("snapshot", "list", "--json")  # nothing changed inside the VM
    assert listed.returncode == 0, listed.stderr
    for kind in FAKES:
        server, hosts = fake(stack, kind, tmp_path / kind.replace(" ", "-"))
        with server:
            done = vm.kopia("snapshot", "list", hosts=hosts)
        refused_in_the_handshake(done, server)
