"""Faults, load and bad input on the real node: nothing lost, nobody let in, the server
keeps serving.

One S3 repository (moto behind a gate that can take the storage away) and one server
for alice, bob and twenty load users, with `networkPolicy.virtualMachines`: only the
namespace's KubeVirt VM pods (and the server's own sync Jobs) may connect, and
kube-router's policy controller on the node enforces it. In file order:

1. who reaches the server (another namespace: no; a VM pod: yes; a plain pod of the
   namespace: no) and the init Job's pod (nobody);
2. faults: the server pod killed mid-backup and mid-restore, the storage gone for a while,
   the sync Job's pod killed mid-sync, the function pod killed during a reconcile, kubelet
   and containerd restarted; after each, `kopia snapshot verify` reads every file and every
   snapshot reported complete restores byte-identical;
3. load: twenty VMs of twenty users back up at once, then restore at once;
4. bad input at the wire: garbage, slow clients holding connections, a flood of failed
   logins, while another user keeps working.
"""

from __future__ import annotations

import random
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.node import faults, tenant
from tests.node.tenant import MILESTONES, POLL, T, Tenant, Vm

TEAM = "team-faults"
OUTSIDERS = "team-outsiders"
ALICE = "alice@vm-alice"
BOB = "bob@vm-bob"
CAROL = "carol@vm-carol"
LOAD_USERS = [f"u{i:02d}@vm-u{i:02d}" for i in range(1, 21)]
SOURCE = "/home/vm/data"
PORT = 51515
# VM name -> what its source folder held when (faults.Ledger).
LEDGERS: dict[str, faults.Ledger] = {}


def big_tree(seed: str, files: int, size: int) -> dict[str, bytes]:
    """`files` random files of `size` bytes (incompressible: kopia uploads all of it)."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible on purpose
    return {f"part-{i:03d}.bin": rng.randbytes(size) for i in range(files)}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(node) -> Iterator[dict]:
    """moto's S3 server on a loopback port, reached by pods through a gate on the node's
    address (faults.Gate) that the storage-gone test closes and opens."""
    try:
        import boto3
        import moto.server  # noqa: F401 - the server below runs it
    except ImportError:
        pytest.fail("moto's server mode is missing: run `make venv` (moto[server])", pytrace=False)
    nodes = tenant.node_module()
    moto_port = nodes.free_port()
    log = (node.logs / "moto-faults.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=nodes.die_with_parent,  # noqa: PLW1509 - no threads start processes here
    )
    log.close()
    gate = faults.Gate(nodes.NODE_IP, nodes.free_port(nodes.NODE_IP), ("127.0.0.1", moto_port))
    gate.open()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{moto_port}",
        region_name="us-east-1",
        aws_access_key_id="change-me",
        aws_secret_access_key="change-me",
    )

    def answers() -> bool:
        try:
            client.list_buckets()
        except Exception:
            return False
        return True

    try:
        tenant.wait(answers, 30, "moto to serve")
        yield {"endpoint": f"http://{gate.host}:{gate.port}", "client": client, "gate": gate}
    finally:
        gate.close()
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def stack(node, established, storage: dict) -> dict:
    """The S3 BSLR and a BSLS for alice, bob and the load users, VM pods admitted only."""
    team = Tenant(node, TEAM).create()
    bslr = tenant.example("bslr-s3.yaml", TEAM)[0]
    bslr["spec"]["backend"]["s3"]["endpoint"] = storage["endpoint"]
    storage["client"].create_bucket(Bucket=bslr["spec"]["backend"]["s3"]["bucket"])
    bsls = tenant.example("bsls.yaml", TEAM)[0]
    bsls["spec"]["repositoryRef"]["name"] = bslr["metadata"]["name"]
    for identity in LOAD_USERS:
        username, hostname = identity.split("@")
        bsls["spec"]["users"].append({"username": username, "hostname": hostname})
    bsls["spec"]["networkPolicy"] = {"virtualMachines": True}
    start = time.monotonic()
    bslr = team.apply(bslr)
    bsls = team.apply(bsls)
    bslr = team.wait_xr(bslr, "Ready")
    team.wait_xr(bsls, "RepositoryReady", touch=True)
    ready = team.wait_xr(bsls, "Ready", timeout=POLL, touch=True)
    MILESTONES["faults: BSLS Ready with 22 users (S3)"] = round(time.monotonic() - start, 1)
    return {"team": team, "bslr": bslr, "bsls": ready}


@pytest.fixture(scope="module")
def alice(stack: dict) -> Vm:
    """Alice's VM, connected, with a folder of varied files backed up once."""
    team: Tenant = stack["team"]
    vm = Vm(team, "vm-alice", team.credentials(stack["bsls"], ALICE)).start()
    vm.connect()
    LEDGERS[vm.name] = faults.Ledger(vm, SOURCE)
    LEDGERS[vm.name].put(tenant.make_tree("faults-alice"))
    vm.snapshot(SOURCE)
    return vm


@pytest.fixture(scope="module")
def bob(stack: dict) -> Vm:
    """Bob's VM, connected: the other user who keeps working while alice's server suffers."""
    team: Tenant = stack["team"]
    vm = Vm(team, "vm-bob", team.credentials(stack["bsls"], BOB)).start()
    vm.connect()
    LEDGERS[vm.name] = faults.Ledger(vm, SOURCE)
    return vm


@pytest.fixture(scope="module")
def outsider(node, established) -> faults.Prober:
    """A pod in another namespace (its own team), with the kopia image."""
    other = Tenant(node, OUTSIDERS).create(secrets=False)
    return faults.Prober(other, "outsider", "").start()


# --- 1. who reaches the server -----------------------------------------------------------------


def test_only_the_namespaces_vm_pods_reach_the_server(
    stack: dict, alice: Vm, outsider: faults.Prober
) -> None:
    team: Tenant = stack["team"]
    pod = faults.server_pod(team, stack["bsls"])
    pod_ip = pod["status"]["podIP"]
    service = team.kube.reload(team.composed(stack["bsls"])["service"])
    cluster_ip = service["spec"]["clusterIP"]
    # The network works for the outsider: CoreDNS (no policy selects it) answers on TCP.
    dns = [
        p["status"]["podIP"]
        for p in team.kube.list("v1", "Pod", "kube-system", labels={"k8s-app": "kube-dns"})
    ]
    assert outsider.probe(dns[0], 53) == "open"
    # ...but not to the server, by pod address or by Service.
    for host in (pod_ip, cluster_ip):
        got = outsider.probe(host, PORT)
        assert got.startswith("closed"), f"a pod in {OUTSIDERS} reached {host}:{PORT}"
    # A pod of the namespace that is not a VM is refused too; the VM pod gets in.
    plain = faults.Prober(team, "not-a-vm", "", labels={"app": "curious"}).start()
    try:
        assert plain.probe(pod_ip, PORT).startswith("closed")
    finally:
        plain.stop()
    assert alice.sh(faults.probe_script(pod_ip, PORT)).stdout.strip() == "open"
    assert alice.snapshots(), "the VM sees its snapshot through the server"
    # The outsider with alice's own credentials still cannot log in: no packet gets there.
    bundle = team.secret(team.credentials(stack["bsls"], ALICE))
    tried = outsider.try_connect(bundle["endpoint"], ALICE, bundle["password"], trust=False)
    assert tried.returncode != 0
    assert "refused" in (tried.stdout + tried.stderr).lower()


def test_the_init_jobs_pod_accepts_no_connection(
    stack: dict, storage: dict, alice: Vm, outsider: faults.Prober
) -> None:
    """An init Job whose storage never answers keeps its pod running; a listener started
    in that pod is reached from the pod itself and from nowhere else."""
    team: Tenant = stack["team"]
    hole = faults.BlackHole(tenant.node_module().NODE_IP)  # its pod waits on it
    bslr = tenant.example("bslr-s3.yaml", TEAM)[0]
    bslr["metadata"]["name"] = "held-repo"
    bslr["spec"]["backend"]["s3"]["endpoint"] = f"http://{hole.host}:{hole.port}"
    bslr["spec"]["backend"]["s3"]["prefix"] = "held/"
    bslr = team.apply(bslr)
    try:
        job = tenant.wait(lambda: team.job(bslr, "repository-init"), T, "the init Job")
        pod = tenant.wait(
            lambda: next(
                (p for p in team.pods_of(job) if p["status"].get("phase") == "Running"), None
            ),
            T,
            "the init Job's pod to run",
        )
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        container = pod["spec"]["containers"][0]["name"]
        listen = (
            "perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,"
            'Listen=>16,ReuseAddr=>1) or die $!; while($c=$s->accept){print $c "hi\\n"; '
            "close $c}' >/dev/null 2>&1 &"
        )
        team.node.kubectl("exec", "-n", TEAM, name, "-c", container, "--", "sh", "-c", listen)
        inside = team.node.kubectl(
            "exec", "-n", TEAM, name, "-c", container, "--", "bash", "-c",
            faults.probe_script(ip, 8080),
        ).stdout.strip()  # fmt: skip
        assert inside == "open", "the listener in the init pod does not answer its own pod"
        assert alice.sh(faults.probe_script(ip, 8080)).stdout.strip().startswith("closed")
        assert outsider.probe(ip, 8080).startswith("closed")
    finally:
        team.delete(bslr)
        hole.close()


# --- 2. faults ---------------------------------------------------------------------------------


def test_server_killed_mid_backup_then_the_retry_completes(stack: dict, alice: Vm) -> None:
    team: Tenant = stack["team"]
    LEDGERS[alice.name].put(big_tree("mid-backup", 40, 1024 * 1024), "big")
    before = {s["id"] for s in alice.snapshots()}
    pod = faults.server_pod(team, stack["bsls"])
    faults.background(alice, "backup", f"kopia snapshot create {SOURCE}")
    # Kill the server once the upload is under way (kopia prints its progress).
    tenant.wait(
        lambda: faults.output(alice, "cat /tmp/backup.log 2>/dev/null || true"),
        60,
        "the backup to start",
        interval=0.2,
    )
    assert faults.finished(alice, "backup") is None, "the backup ended before the kill"
    faults.kill_pod(team, pod)
    code, out = tenant.wait(lambda: faults.finished(alice, "backup"), 300, "the backup to end")
    MILESTONES["faults: killed mid-backup, client's exit code"] = code
    new = faults.server_pod(team, stack["bsls"])
    assert new["metadata"]["uid"] != pod["metadata"]["uid"]
    start = time.monotonic()
    alice.snapshot(SOURCE)  # the retry
    MILESTONES["faults: backup retried after the kill (40 MB)"] = round(time.monotonic() - start, 1)
    ids = faults.verify_and_restore_all(LEDGERS[alice.name], "/home/vm/r-backup")
    assert len(set(ids) - before) >= 1, (code, out)


def test_server_killed_mid_restore_then_the_restore_is_byte_identical(
    stack: dict, alice: Vm
) -> None:
    team: Tenant = stack["team"]
    latest = max(alice.snapshots(), key=lambda s: s["startTime"])["id"]
    pod = faults.server_pod(team, stack["bsls"])
    # The restore writes a tar into a FIFO that nobody drains: once kopia has fetched the
    # snapshot's directories from the server and written its first bytes, it blocks with
    # at most a pipe's worth written, so the kill lands mid-restore whatever the speed.
    alice.sh("rm -f /tmp/r.tar /tmp/first && mkfifo /tmp/r.tar")
    faults.background(alice, "restore", f"kopia snapshot restore --parallel=1 {latest} /tmp/r.tar")
    faults.background(alice, "first-byte", "dd if=/tmp/r.tar of=/tmp/first bs=1 count=1")
    tenant.wait(
        lambda: faults.finished(alice, "first-byte"), 60, "the restore to start", interval=0.2
    )
    assert faults.finished(alice, "restore") is None, "the restore ended before the kill"
    faults.kill_pod(team, pod)
    faults.background(alice, "drain", "cat /tmp/r.tar >/dev/null")  # let kopia go on
    code, _ = tenant.wait(lambda: faults.finished(alice, "restore"), 300, "the restore to end")
    MILESTONES["faults: killed mid-restore, client's exit code"] = code
    faults.server_pod(team, stack["bsls"])
    alice.sh("rm -f /tmp/r.tar /tmp/first")
    faults.verify_and_restore_all(LEDGERS[alice.name], "/home/vm/r-restore")


def request_check(team: Tenant, bslr: dict, value: str) -> None:
    """What docs/platform-guide.md tells an app team to do to check now (kubectl
    annotate: a merge patch of the annotation)."""
    annotation = {"dataprotection.bsls.dev/check-requested": value}
    team.kube.patch(bslr, {"metadata": {"annotations": annotation}})


def test_storage_gone_for_a_while_tears_nothing_down_and_backups_resume(
    stack: dict, storage: dict, alice: Vm
) -> None:
    team: Tenant = stack["team"]
    composed = {k: o["metadata"]["uid"] for k, o in team.composed(stack["bsls"]).items()}
    pod = faults.server_pod(team, stack["bsls"])
    gate: faults.Gate = storage["gate"]
    LEDGERS[alice.name].put({"new.txt": b"written while the storage was gone\n"}, "while-gone")
    gate.close()
    try:
        start = time.monotonic()
        done = alice.kopia("snapshot", "create", SOURCE, check=False)
        MILESTONES["faults: storage gone, the backup fails after (s)"] = round(
            time.monotonic() - start, 1
        )
        assert done.returncode != 0, "a backup succeeded with the storage gone"
        # The app team asks for a check now (the scheduled one is up to an hour away):
        # the BSLR turns not Ready with the cause, and its server says so.
        start = time.monotonic()
        request_check(team, stack["bslr"], "storage-gone")
        bslr = team.wait_xr(
            stack["bslr"], "RepositoryHealthy", "False", "ValidationFailed", timeout=POLL
        )
        MILESTONES["faults: storage gone, a requested check finds it (s)"] = round(
            time.monotonic() - start, 1
        )
        assert not tenant.is_true(bslr, "Ready")
        cause = tenant.condition(bslr, "RepositoryHealthy")["message"]
        assert "storage" in cause, cause
        bsls = team.wait_xr(stack["bsls"], "RepositoryReady", "False", "NotReady", touch=True)
        # The server's condition quotes the repository's cause.
        said = tenant.condition(bsls, "RepositoryReady")["message"]
        assert "RepositoryHealthy is False (ValidationFailed)" in said, said
        # Nothing torn down: the same composed objects, the same server pod.
        assert {k: o["metadata"]["uid"] for k, o in team.composed(bsls).items()} == composed
        assert faults.server_pod(team, bsls)["metadata"]["uid"] == pod["metadata"]["uid"]
    finally:
        gate.open()
    # Storage back: a requested check finds it, and both turn Ready again.
    start = time.monotonic()
    request_check(team, stack["bslr"], "storage-back")
    team.wait_xr(stack["bslr"], "RepositoryHealthy", timeout=POLL)
    team.wait_xr(stack["bslr"], "Ready")
    team.wait_xr(stack["bsls"], "RepositoryReady", touch=True)
    MILESTONES["faults: storage back, BSLR and BSLS Ready again after (s)"] = round(
        time.monotonic() - start, 1
    )
    start = time.monotonic()
    tenant.wait(
        lambda: alice.kopia("snapshot", "create", SOURCE, check=False).returncode == 0,
        POLL,
        "a backup to succeed with the storage back",
        interval=2,
    )
    MILESTONES["faults: storage back, first good backup after (s)"] = round(
        time.monotonic() - start, 1
    )
    assert faults.server_pod(team, stack["bsls"])["metadata"]["uid"] == pod["metadata"]["uid"]
    faults.verify_and_restore_all(LEDGERS[alice.name], "/home/vm/r-storage")


def test_sync_job_pod_killed_mid_sync_then_the_next_attempt_converges(
    stack: dict, alice: Vm
) -> None:
    team: Tenant = stack["team"]
    bsls = team.kube.reload(stack["bsls"])
    old = {o["metadata"]["name"] for o in team.composed(bsls).values() if o["kind"] == "Job"}
    users = [*bsls["spec"]["users"], {"username": "carol", "hostname": "vm-carol"}]
    team.kube.patch(bsls, {"spec": {"users": users}})

    def new_sync_pod() -> dict | None:
        team.touch(bsls)
        job = team.job(bsls, "user-sync")
        if job is None or job["metadata"]["name"] in old:
            return None
        running = [p for p in team.pods_of(job) if p["status"].get("phase") == "Running"]
        return running[0] if running else None

    pod = tenant.wait(new_sync_pod, POLL, "the new sync Job's pod to run", interval=0.3)
    faults.kill_pod(team, pod)
    start = time.monotonic()
    ready = team.wait_xr(bsls, "UsersSynced", timeout=POLL, touch=True)
    MILESTONES["faults: sync pod killed, users synced after (s)"] = round(
        time.monotonic() - start, 1
    )
    # Every user logs in: carol (new), alice and bob (kept).
    carol = Vm(team, "vm-carol", team.credentials(ready, CAROL)).start()
    try:
        carol.connect()
        assert carol.snapshots() == []
    finally:
        carol.stop()
    assert alice.snapshots()
    faults.verify_and_restore_all(LEDGERS[alice.name], "/home/vm/r-sync")


def test_function_pod_killed_during_a_reconcile_changes_nothing_composed(
    stack: dict, alice: Vm
) -> None:
    team: Tenant = stack["team"]
    node = team.node
    bsls = team.kube.reload(stack["bsls"])
    fingerprint = bsls["status"]["tlsFingerprint"]

    def material() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, o in team.composed(bsls).items():
            if o["kind"] == "Secret":
                out[key] = o.get("data")
            elif o["kind"] == "Deployment":
                out[key] = o["spec"]["template"]
        return out

    before = material()
    server = faults.server_pod(team, bsls)["metadata"]["uid"]
    pods = node.function_pods()
    assert pods
    team.touch(bsls)
    for p in pods:
        node.kubectl(
            "delete", "pod", "-n", p["metadata"]["namespace"], p["metadata"]["name"],
            "--grace-period=0", "--force", "--wait=false",
        )  # fmt: skip
    old = {p["metadata"]["uid"] for p in pods}
    start = time.monotonic()
    tenant.wait(
        lambda: [p for p in node.function_pods() if p["metadata"]["uid"] not in old],
        T,
        "a new function pod",
    )
    after = team.wait_xr(bsls, "Ready", touch=True, timeout=POLL)
    MILESTONES["faults: function pod killed, BSLS Ready again after (s)"] = round(
        time.monotonic() - start, 1
    )
    assert after["status"]["tlsFingerprint"] == fingerprint
    assert material() == before, "a composed Secret or the server's pod template changed"
    assert faults.server_pod(team, bsls)["metadata"]["uid"] == server
    assert alice.snapshots()


def test_kubelet_and_containerd_restarted_the_pods_come_back_and_users_log_in(
    stack: dict, alice: Vm, bob: Vm
) -> None:
    team: Tenant = stack["team"]
    node = team.node
    server = faults.server_pod(team, stack["bsls"])
    MILESTONES["faults: containerd restart (s)"] = node.restart("containerd")
    MILESTONES["faults: kubelet restart (s)"] = node.restart("kubelet")
    after = faults.server_pod(team, stack["bsls"])
    assert after["metadata"]["uid"] == server["metadata"]["uid"]
    restarts = sum(c.get("restartCount", 0) for c in after["status"]["containerStatuses"])
    MILESTONES["faults: server container restarts after kubelet+containerd restart"] = restarts
    # A restarted kubelet serves exec into a pod once it has synced it again.
    tenant.wait(
        lambda: alice.sh("true", check=False).returncode == 0,
        T,
        "the restarted kubelet to serve exec into alice's VM",
        interval=1,
    )
    assert alice.snapshots()
    LEDGERS[bob.name].put(tenant.make_tree("faults-bob"))
    bob.snapshot(SOURCE)
    faults.verify_and_restore_all(LEDGERS[bob.name], "/home/vm/r-bob")


# --- 3. load ------------------------------------------------------------------------------------


def test_twenty_users_back_up_and_restore_at_once(stack: dict) -> None:
    team: Tenant = stack["team"]
    bsls = team.kube.reload(stack["bsls"])
    deployment = team.kube.reload(team.composed(bsls)["server"])
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    pod = faults.server_pod(team, bsls)
    restarts_before = sum(c.get("restartCount", 0) for c in pod["status"]["containerStatuses"])
    vms = [
        faults.light(Vm(team, f"vm-u{i + 1:02d}", team.credentials(bsls, identity)))
        for i, identity in enumerate(LOAD_USERS)
    ]
    trees = {vm.name: tenant.make_tree(f"load-{vm.name}") for vm in vms}
    try:
        started = faults.run_all([vm.start for vm in vms])
        assert all(isinstance(s, Vm) for s in started), started
        assert all(r is not None for r in faults.run_all([vm.connect for vm in vms]))
        faults.run_all([lambda vm=vm: vm.put(SOURCE, trees[vm.name]) for vm in vms])
        with faults.Sampler(team.node, TEAM, pod["metadata"]["name"]) as sampler:
            backup_s, ids = faults.timed(
                faults.run_all, [lambda vm=vm: vm.snapshot(SOURCE) for vm in vms]
            )
            failed = [
                (vm.name, i) for vm, i in zip(vms, ids, strict=True) if not isinstance(i, str)
            ]
            assert not failed, failed
            restore_s, trees_back = faults.timed(
                faults.run_all,
                [
                    lambda vm=vm, i=i: (
                        vm.kopia("snapshot", "restore", i, "/home/vm/restored"),
                        vm.tree("/home/vm/restored"),
                    )[1]
                    for vm, i in zip(vms, ids, strict=True)
                ],
            )
        wrong = [
            vm.name
            for vm, got in zip(vms, trees_back, strict=True)
            if got != tenant.manifest(trees[vm.name])
        ]
        assert not wrong, f"restored differently (or failed): {wrong} {trees_back}"
        # Each user sees only their own snapshot.
        assert [len(vm.snapshots()) for vm in vms[:3]] == [1, 1, 1]
    finally:
        faults.run_all([vm.stop for vm in vms])
    pod = faults.server_pod(team, bsls)
    restarts = sum(c.get("restartCount", 0) for c in pod["status"]["containerStatuses"])
    assert restarts == restarts_before, "the server restarted under load"
    assert sampler.memory_mib, "the kubelet reported nothing for the server pod"
    MILESTONES["load: 20 backups at once (3 MB each), wall"] = backup_s
    MILESTONES["load: 20 restores at once, wall"] = restore_s
    MILESTONES["load: server peak CPU (millicores)"] = round(max(sampler.cpu_millicores), 0)
    MILESTONES["load: server peak memory (MiB)"] = round(max(sampler.memory_mib), 1)
    print(f"\nserver resources: {limits}", file=sys.stderr)
    memory_limit = limits["limits"]["memory"]
    assert memory_limit.endswith("Gi") or memory_limit.endswith("Mi")
    limit_mib = float(memory_limit[:-2]) * (1024 if memory_limit.endswith("Gi") else 1)
    assert max(sampler.memory_mib) < limit_mib


# --- 4. bad input at the wire ------------------------------------------------------------------


def test_garbage_slow_clients_and_failed_logins_leave_the_server_serving(
    stack: dict, alice: Vm, bob: Vm
) -> None:
    team: Tenant = stack["team"]
    pod = faults.server_pod(team, stack["bsls"])
    ip = pod["status"]["podIP"]
    baseline, _ = faults.timed(bob.snapshots)
    # Garbage: 64 KiB of random bytes, 20 times, into the TLS port.
    garbage = (
        f"for i in $(seq 20); do timeout 5 bash -c 'head -c 65536 /dev/urandom"
        f" >/dev/tcp/{ip}/{PORT}' 2>/dev/null; done; echo done"
    )
    assert alice.sh(garbage).stdout.strip() == "done"
    after_garbage, _ = faults.timed(bob.snapshots)
    # Slow clients: 200 connections opened and held silent (a TLS handshake never sent).
    hold = (
        f'( for i in $(seq 200); do exec 3<>/dev/tcp/{ip}/{PORT} && eval "exec $((i+10))<&3";'
        " done; sleep 60 ) >/dev/null 2>&1 & echo $! >/tmp/slow.pid"
    )
    alice.sh(f"bash -c {shlex.quote(hold)}")
    tenant.wait(
        lambda: int(alice.sh("ls /proc/$(cat /tmp/slow.pid)/fd | wc -l").stdout) >= 200,
        60,
        "200 connections held open",
    )
    try:
        while_held, _ = faults.timed(bob.snapshots)
    finally:
        alice.sh("kill $(cat /tmp/slow.pid) 2>/dev/null || true")
    # A flood of failed logins: 30 wrong passwords for alice, five at a time.
    bundle = team.secret(team.credentials(stack["bsls"], ALICE))
    flood_s, tries = faults.timed(
        faults.run_all,
        [lambda: alice.try_connect(bundle["endpoint"], ALICE, "wrong-password") for _ in range(30)],
        5,
    )
    assert all(t.returncode != 0 for t in tries if not isinstance(t, Exception)), tries
    during_flood, _ = faults.timed(bob.snapshots)
    assert alice.snapshots(), "alice's right password still works after the flood"
    after = faults.server_pod(team, stack["bsls"])
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert sum(c.get("restartCount", 0) for c in after["status"]["containerStatuses"]) == sum(
        c.get("restartCount", 0) for c in pod["status"]["containerStatuses"]
    )
    MILESTONES["wire: bob's snapshot list, baseline (s)"] = baseline
    MILESTONES["wire: ... after 20 x 64 KiB garbage (s)"] = after_garbage
    MILESTONES["wire: ... with 200 silent connections held (s)"] = while_held
    MILESTONES["wire: 30 failed logins (s)"] = flood_s
    MILESTONES["wire: ... bob's snapshot list after the flood (s)"] = during_flood
    for took in (after_garbage, while_held, during_flood):
        assert took < max(10 * baseline, 10), "the server stopped serving others in time"
