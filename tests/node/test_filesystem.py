"""The team-a story on the real node, filesystem backend, one step per test, in file order.

The app team's claim is not provisioned yet when it creates its BSLR and BSLS: the
init Job's pod waits for the claim and the BSLS for its repository. Then the volume
appears and everything runs for real: the init Job, the server Deployment, the sync
Job, VMs that back up and restore, a password rotation, a removed user, and finally
the BSLS's deletion, which the garbage collector carries out while the repository and
its data stay.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.node import tenant
from tests.node.tenant import BSLR, BSLS, MILESTONES, POLL, T, Tenant, Vm

TEAM = "team-a"
REPO = "team-a-repo"
SERVER = "vm-backups"
CLAIM = "team-a-backups"
ALICE = "alice@vm-alice"
BOB = "bob@vm-bob"
ALICE_PASSWORD = "alice-correct-horse-battery"  # examples/secrets.yaml
SOURCE = "/home/vm/data"


# --- fixtures: the story ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def team(node, established) -> Tenant:
    """team-a: the namespace (restricted) and the example Secrets."""
    return Tenant(node, TEAM).create()


@pytest.fixture(scope="module")
def waiting(team: Tenant) -> dict:
    """The claim (not bound: no volume yet), the BSLR, and the BSLS created right after."""
    team.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": TEAM},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "resources": {"requests": {"storage": "2Gi"}},
                "volumeName": f"{TEAM}-{CLAIM}",
            },
        }
    )
    bslr = team.apply(tenant.example("bslr.yaml", TEAM)[0])
    job = tenant.wait(lambda: team.job(bslr, "repository-init"), T, "the repository-init Job")
    bsls = team.apply(tenant.example("bsls.yaml", TEAM)[0])
    xr = team.wait_xr(bsls, "RepositoryReady", "False", "NotReady")
    return {"bslr": bslr, "job": job, "bsls": xr}


@pytest.fixture(scope="module")
def provisioned(team: Tenant, waiting: dict) -> dict:
    """The volume appears; the init Job runs; the BSLR turns Ready; the server comes up."""
    start = time.monotonic()
    folder = team.claim(CLAIM)
    bslr = team.wait_xr(waiting["bslr"], "Ready", timeout=T)
    MILESTONES["filesystem: BSLR Ready (after its volume appeared)"] = round(
        time.monotonic() - start, 1
    )
    # The BSLR is a required resource of the BSLS, which Crossplane does not watch: touch
    # the BSLS instead of waiting for its poll (test_s3 waits for it).
    bsls = team.wait_xr(waiting["bsls"], "RepositoryReady", touch=True)
    objects = tenant.wait(
        lambda: (o := team.composed(bsls)) and "server" in o and o, T, "the server"
    )
    node = team.node
    node.wait_available(TEAM, objects["server"]["metadata"]["name"], T)
    MILESTONES["filesystem: server available (after its volume appeared)"] = round(
        time.monotonic() - start, 1
    )
    sync = tenant.wait(lambda: team.job(bsls, "user-sync"), T, "the user-sync Job")
    team.wait_job_complete(sync)
    ready = team.wait_xr(bsls, "Ready")
    MILESTONES["filesystem: users synced, BSLS Ready (after its volume appeared)"] = round(
        time.monotonic() - start, 1
    )
    return {"folder": folder, "bslr": bslr, "bsls": ready, "sync": sync}


@pytest.fixture(scope="module")
def alice_vm(team: Tenant, provisioned: dict) -> Vm:
    """Alice's VM, with her credentials bundle mounted, connected."""
    vm = Vm(team, "vm-alice", team.credentials(provisioned["bsls"], ALICE)).start()
    vm.connect()
    return vm


@pytest.fixture(scope="module")
def alice_backup(alice_vm: Vm) -> dict:
    """Alice backs up a folder of varied files; the files and the snapshot ID."""
    files = tenant.make_tree("alice")
    start = time.monotonic()
    alice_vm.put(SOURCE, files)
    snapshot = alice_vm.snapshot(SOURCE)
    MILESTONES["filesystem: first backup (3 MB, from the VM)"] = round(time.monotonic() - start, 1)
    return {"files": files, "id": snapshot}


@pytest.fixture(scope="module")
def bob_vm(team: Tenant, provisioned: dict) -> Vm:
    """Bob's VM (his password was generated), connected."""
    vm = Vm(team, "vm-bob", team.credentials(provisioned["bsls"], BOB)).start()
    vm.connect()
    return vm


# --- 1. the repository first -----------------------------------------------------------------


def test_a_bsls_waits_for_its_repository_and_composes_no_server(
    team: Tenant, waiting: dict
) -> None:
    # The init Job's pod cannot start: its claim has no volume yet.
    pods = team.pods_of(waiting["job"])
    assert pods, "the Job controller made no pod"
    assert all(p["status"]["phase"] == "Pending" for p in pods)
    assert tenant.condition(pods[0], "PodScheduled").get("reason") == "Unschedulable"
    # The BSLS says why it waits, composes no server and is not Ready, however often
    # Crossplane reconciles it.
    bsls = waiting["bsls"]
    assert "not Ready" in tenant.condition(bsls, "RepositoryReady")["message"]
    reconcile(team, bsls, 3)
    assert "server" not in team.composed(bsls)
    assert not tenant.is_true(team.get(BSLS, SERVER), "Ready")
    assert not tenant.is_true(team.get(BSLR, REPO), "Ready")


def test_the_init_job_runs_once_the_volume_exists_and_the_bslr_turns_ready(
    team: Tenant, waiting: dict, provisioned: dict
) -> None:
    job = team.kube.reload(waiting["job"])
    assert tenant.is_true(job, "Complete")  # written by the Job controller
    assert job["status"]["succeeded"] == 1
    assert "created" in team.job_log(job).lower() or "connected" in team.job_log(job).lower()
    bslr = provisioned["bslr"]
    assert bslr["status"]["backend"] == "filesystem"
    assert tenant.is_true(bslr, "Initialized")
    # The repository is on the volume, as kopia writes it.
    assert (provisioned["folder"] / "kopia.repository.f").is_file()


def test_the_server_becomes_available_and_the_sync_job_adds_the_users(
    team: Tenant, provisioned: dict
) -> None:
    bsls = provisioned["bsls"]
    for typ in ("RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable", "Ready"):
        assert tenant.is_true(bsls, typ), tenant.condition(bsls, typ)
    log = team.job_log(provisioned["sync"])
    assert "added alice@vm-alice" in log
    assert "added bob@vm-bob" in log
    assert "the server re-read its users" in log
    status = bsls["status"]
    assert status["endpoint"] == f"https://{SERVER}.{TEAM}.svc:51515"
    assert sorted(u["identity"] for u in status["users"]) == [ALICE, BOB]
    # The published fingerprint is the SHA-256 of the CA certificate the bundle trusts.
    bundle = team.secret(team.credentials(bsls, ALICE))
    ca = x509.load_pem_x509_certificate(bundle["ca.crt"].encode())
    assert (
        hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
        == status["tlsFingerprint"]
    )
    assert bundle["endpoint"] == status["endpoint"]
    assert "--server-cert-fingerprint" not in bundle["connect-linux.sh"]


# --- 2. the pods as they run -----------------------------------------------------------------


def test_the_pods_run_as_their_manifests_say(team: Tenant, provisioned: dict) -> None:
    namespace = team.kube.get("v1", "Namespace", TEAM)
    assert namespace["metadata"]["labels"][tenant.RESTRICTED] == "restricted"
    objects = team.composed(provisioned["bsls"])
    deployment = team.kube.reload(objects["server"])
    [pod] = [p for p in team.pods_of(deployment) if not p["metadata"].get("deletionTimestamp")]
    # Probes passed on the server's cold start: ready, never restarted.
    [status] = pod["status"]["containerStatuses"]
    assert status["ready"], status
    assert status["restartCount"] == 0, status
    # Requests and limits let it run: not throttled into a restart, not evicted.
    assert pod["status"]["qosClass"] == "Burstable"
    assert pod["status"]["phase"] == "Running"
    # The restricted security context holds inside the container.
    name = pod["metadata"]["name"]
    seen = team.node.kubectl(
        "exec",
        "-n",
        TEAM,
        name,
        "--",
        "/bin/sh",
        "-c",
        "id -u; id -g; touch /written 2>/dev/null && echo writable || echo read-only; "
        "ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null || echo no-token; "
        "grep CapEff /proc/self/status",
    ).stdout.split("\n")
    assert seen[:4] == ["65532", "65532", "read-only", "no-token"], seen
    assert seen[4].split()[1] == "0000000000000000"  # no capabilities
    # The Jobs ran to completion under the same restrictions.
    for job in (o for o in objects.values() if o["kind"] == "Job"):
        assert tenant.is_true(team.kube.reload(job), "Complete")
    # No liveness probe ever failed (a readiness probe may, while the server starts: it
    # only keeps the pod out of the Service until it listens), nothing was killed,
    # evicted or kept from starting.
    bad = {"BackOff", "OOMKilling", "Evicted", "FailedMount", "FailedCreate", "Killing"}
    events = [
        e
        for e in team.kube.list("v1", "Event", TEAM)
        if not e["involvedObject"]["name"].startswith("virt-launcher-")
        and (
            e.get("reason") in bad
            or (e.get("reason") == "Unhealthy" and not e.get("message", "").startswith("Readiness"))
        )
    ]
    assert not events, [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in events]


def test_admission_refuses_a_pod_that_is_not_restricted(team: Tenant, provisioned: dict) -> None:
    del provisioned
    pod = Vm(team, "vm-eve", "unused").manifest()
    # What a pod gets without saying anything: root, privilege escalation, capabilities.
    pod["spec"]["securityContext"] = {}
    pod["spec"]["containers"][0]["securityContext"] = {}
    with pytest.raises(tenant.api_error()) as refused:
        team.kube.create(pod)
    assert refused.value.status == 403
    message = refused.value.message
    assert 'violates PodSecurity "restricted:latest"' in message
    for rule in (
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "runAsNonRoot != true",
        "seccompProfile",
    ):
        assert rule in message, message


# --- 3. VM owners ----------------------------------------------------------------------------


def test_alice_backs_up_from_her_vm_and_restores_byte_identical_on_another(
    team: Tenant, provisioned: dict, alice_vm: Vm, alice_backup: dict
) -> None:
    listed = alice_vm.snapshots()
    assert [s["id"] for s in listed] == [alice_backup["id"]]
    assert listed[0]["source"] == {"host": "vm-alice", "userName": "alice", "path": SOURCE}
    # A second VM of alice's, with the same bundle, connects and restores.
    other = Vm(team, "vm-alice-2", alice_vm.bundle).start()
    try:
        other.connect()
        assert [s["id"] for s in other.snapshots()] == [alice_backup["id"]]
        other.kopia("snapshot", "restore", alice_backup["id"], "/home/vm/restored")
        assert other.tree("/home/vm/restored") == tenant.manifest(alice_backup["files"])
    finally:
        other.stop()


def test_the_vm_verifies_the_server_by_its_name_and_the_bundles_ca(
    team: Tenant, provisioned: dict, alice_vm: Vm
) -> None:
    url = provisioned["bsls"]["status"]["endpoint"]
    # Without the CA the bundle carries, the server is a stranger.
    done = alice_vm.try_connect(url, ALICE, ALICE_PASSWORD, trust=False)
    assert done.returncode != 0
    assert "x509: certificate signed by unknown authority" in done.stderr
    # With the CA but by the Service's address instead of its name, the name check fails.
    service = team.kube.get("v1", "Service", SERVER, TEAM)
    by_ip = url.replace(f"{SERVER}.{TEAM}.svc", service["spec"]["clusterIP"])
    done = alice_vm.try_connect(by_ip, ALICE, ALICE_PASSWORD)
    assert done.returncode != 0
    assert "doesn't contain any IP SANs" in done.stderr
    # By its name, with the CA, it is the server.
    assert alice_vm.try_connect(url, ALICE, ALICE_PASSWORD).returncode == 0


def test_bob_sees_nothing_of_alice(team: Tenant, alice_backup: dict, bob_vm: Vm) -> None:
    bundle = team.secret(bob_vm.bundle)
    assert len(bundle["password"]) >= 24
    assert bundle["password"] != ALICE_PASSWORD
    assert bob_vm.snapshots() == []
    listed = bob_vm.kopia("snapshot", "list", "--all").stdout
    assert ALICE not in listed
    assert alice_backup["id"] not in listed
    bob_vm.put("/home/vm/bob", {"mine.txt": b"bob's\n"})
    own = bob_vm.snapshot("/home/vm/bob")
    assert {(s["id"], s["source"]["userName"]) for s in bob_vm.snapshots()} == {(own, "bob")}
    denied = bob_vm.kopia("snapshot", "restore", alice_backup["id"], "/home/vm/x", check=False)
    assert denied.returncode != 0
    assert bob_vm.sh("ls /home/vm/x 2>/dev/null | wc -l").stdout.strip() == "0"


# --- 3b. who has backed up lately ------------------------------------------------------------


def _freshness_jobs(team: Tenant) -> str:
    """The freshness Jobs' logs, for a failure message."""
    jobs = team.kube.list(
        "batch/v1", "Job", TEAM, labels={"app.kubernetes.io/component": "freshness"}
    )
    return "\n".join(f"{j['metadata']['name']}: {team.job_log(j)}" for j in jobs)


def test_freshness_shows_who_backed_up_and_who_stopped(
    team: Tenant, provisioned: dict, alice_vm: Vm, alice_backup: dict, bob_vm: Vm
) -> None:
    """The composed CronJob runs for real (the CronJob and Job controllers, a token of its
    own ServiceAccount, curl to the API server): users who stop backing up turn stale
    after the threshold, one who backs up turns fresh again."""
    bsls = provisioned["bsls"]
    spec = tenant.example("bsls.yaml", TEAM)[0]
    spec["spec"]["freshness"] = {"schedule": "* * * * *", "staleAfterMinutes": 2}
    team.apply(spec)
    start = time.monotonic()

    def both_stale() -> dict | None:
        # One read: a current report (not one outdated by the new threshold, nor one from
        # before their backups) that finds both stale.
        got = team.kube.reload(bsls) or {}
        users = {u["identity"]: u for u in (got.get("status") or {}).get("users", [])}
        ok = tenant.condition(got, "BackupsFresh").get("reason") == "Stale" and all(
            users.get(i, {}).get("stale") is True and users.get(i, {}).get("snapshots", 0) >= 1
            for i in (ALICE, BOB)
        )
        return got if ok else None

    try:
        got = tenant.wait(both_stale, 4 * 60, "alice and bob stale (no snapshot in 2 min)", 2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{_freshness_jobs(team)}") from None
    MILESTONES["filesystem: first freshness report, users stale after 2 min"] = round(
        time.monotonic() - start, 1
    )
    users = {u["identity"]: u for u in got["status"]["users"]}
    assert got["status"]["staleUsers"] == 2
    assert users[ALICE]["snapshots"] == 1
    assert users[ALICE]["lastBackupBytes"] == sum(
        len(v) for k, v in alice_backup["files"].items() if not k.endswith("/")
    )
    c = tenant.condition(got, "BackupsFresh")
    assert (c["status"], c["reason"]) == ("False", "Stale"), c
    assert ALICE in c["message"]
    assert BOB in c["message"]
    # The server's time of storing: within the minute of her backup, never the VM's word.
    stored = datetime.datetime.fromisoformat(users[ALICE]["lastBackup"])
    taken = max(datetime.datetime.fromisoformat(s["endTime"]) for s in alice_vm.snapshots())
    assert abs((stored - taken).total_seconds()) < 60

    # Alice backs up again: she turns fresh at the next report; bob stays stale.
    alice_vm.put("/home/vm/today", {"today.txt": b"fresh\n"})
    today = alice_vm.snapshot("/home/vm/today")
    start = time.monotonic()

    def alice_fresh() -> dict | None:
        got = team.kube.reload(bsls) or {}
        users = {u["identity"]: u for u in (got.get("status") or {}).get("users", [])}
        alice = users.get(ALICE, {})
        return got if alice.get("stale") is False and alice.get("snapshots") == 2 else None

    got = tenant.wait(alice_fresh, 3 * 60, "alice fresh after her backup", 2)
    MILESTONES["filesystem: a backup shows as fresh (CronJob every minute)"] = round(
        time.monotonic() - start, 1
    )
    users = {u["identity"]: u for u in got["status"]["users"]}
    assert users[BOB]["stale"] is True
    assert got["status"]["staleUsers"] == 1
    c = tenant.condition(got, "BackupsFresh")
    assert c["reason"] == "Stale", c
    assert BOB in c["message"]
    assert ALICE not in c["message"]

    # What the reader can and cannot do, tried with its password from bob's VM: it sees
    # every user's snapshot records, and opens none of their content.
    reader = team.secret(f"{SERVER}-freshness-reader")["password"]
    url = bsls["status"]["endpoint"]
    tried = bob_vm.sh(
        tenant.WITH_ENV + "export KOPIA_CONFIG_PATH=/tmp/reader/repository.config"
        ' KOPIA_CACHE_DIRECTORY=/tmp/reader/cache KOPIA_PASSWORD="$(cat)"; '
        f"kopia repository connect server --url={url} --override-username=freshness"
        " --override-hostname=bsls-system >/dev/null"
        " && kopia manifest list --filter=type:snapshot"
        f" && ! kopia snapshot restore {alice_backup['id']} /tmp/reader/out 2>/tmp/reader/err"
        " && grep -c 'access denied' /tmp/reader/err && ls /tmp/reader/out 2>/dev/null | wc -l",
        stdin=reader.encode(),
    ).stdout
    assert "username:alice" in tried
    assert "username:bob" in tried
    assert tried.split()[-1] == "0"  # nothing restored

    # The CronJob's ServiceAccount may read and patch its report, and nothing else.
    kubectl = tenant.node_module().tool("kubectl")
    who = f"system:serviceaccount:{TEAM}:{SERVER}-freshness"

    def can(*args: str) -> str:
        done = subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={team.node.kubeconfig}",
                "auth",
                "can-i",
                f"--as={who}",
                "-n",
                TEAM,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    assert can("patch", f"configmap/{SERVER}-freshness") == "yes"
    assert can("get", f"configmap/{SERVER}-freshness") == "yes"
    assert can("patch", f"configmap/{SERVER}-scripts") == "no"
    assert can("list", "configmaps") == "no"
    assert can("get", "secrets") == "no"
    assert can("create", "pods") == "no"
    # No password in any freshness Job's log.
    logs = _freshness_jobs(team)
    assert "reported" in logs
    assert reader not in logs

    # Alice's extra snapshot goes (the story after this expects one), and the app team
    # puts the spec back: every ten minutes, 26 hours.
    alice_vm.kopia("snapshot", "delete", today, "--delete")
    team.apply(tenant.example("bsls.yaml", TEAM)[0])


# --- 4. users change -------------------------------------------------------------------------


def test_a_rotated_password_works_and_the_old_one_is_refused(
    team: Tenant, provisioned: dict, alice_vm: Vm, alice_backup: dict
) -> None:
    bsls = provisioned["bsls"]
    before = team.kube.reload(team.composed(bsls)["server"])
    server_pods = {p["metadata"]["uid"] for p in team.pods_of(before)}
    old_sync = team.job(bsls, "user-sync")["metadata"]["name"]
    new = f"alice-rotated-{secrets.token_urlsafe(12)}"
    start = time.monotonic()
    # The app team rotates the password in alice's Secret, and does nothing else: the
    # Secret is a required resource, which Crossplane reads again at its next poll.
    team.kube.apply(tenant.password_secret("alice-kopia", TEAM, new))
    sync = tenant.wait(
        lambda: (j := team.job(bsls, "user-sync")) and j["metadata"]["name"] != old_sync and j,
        POLL,
        "a new user-sync Job after the password changed",
        interval=1,
    )
    team.wait_job_complete(sync)
    team.wait_xr(bsls, "UsersSynced")
    MILESTONES["filesystem: rotated password in effect (no touch: Crossplane's poll)"] = round(
        time.monotonic() - start, 1
    )
    # Alice, bob and the freshness reader (whose password stays as it was).
    assert "users in sync: 0 added, 3 updated, 0 deleted" in team.job_log(sync)
    assert team.secret(alice_vm.bundle)["password"] == new
    # The kubelet brings the new bundle into the running VM.
    tenant.wait(
        lambda: alice_vm.sh("cat /bundle/password").stdout == new,
        T,
        "the VM's mounted bundle to carry the new password",
        interval=1,
    )
    # The server was not restarted for it.
    assert {p["metadata"]["uid"] for p in team.pods_of(before)} == server_pods
    url = bsls["status"]["endpoint"]
    old = alice_vm.try_connect(url, ALICE, ALICE_PASSWORD)
    assert old.returncode != 0
    assert "access denied for alice@vm-alice" in old.stderr
    alice_vm.connect()
    assert [s["id"] for s in alice_vm.snapshots()] == [alice_backup["id"]]


def test_a_removed_user_is_refused(team: Tenant, provisioned: dict, bob_vm: Vm) -> None:
    bsls = provisioned["bsls"]
    bob_secret = bob_vm.bundle
    password = team.secret(bob_secret)["password"]
    old_sync = team.job(bsls, "user-sync")["metadata"]["name"]
    spec = tenant.example("bsls.yaml", TEAM)[0]
    spec["spec"]["users"] = [u for u in spec["spec"]["users"] if u["username"] != "bob"]
    team.apply(spec)
    sync = tenant.wait(
        lambda: (j := team.job(bsls, "user-sync")) and j["metadata"]["name"] != old_sync and j,
        T,
        "a new user-sync Job without bob",
    )
    team.wait_job_complete(sync)
    assert "deleted bob@vm-bob" in team.job_log(sync)
    # Crossplane deletes the Job it replaced (foreground: the garbage collector removes
    # its pods first, then the Job).
    tenant.wait(
        lambda: team.kube.get("batch/v1", "Job", old_sync, TEAM) is None,
        T,
        "the replaced user-sync Job to be deleted",
    )
    tenant.wait(
        lambda: team.kube.get("v1", "Secret", bob_secret, TEAM) is None,
        T,
        "bob's credentials Secret to go",
    )
    xr = team.wait_xr(bsls, "UsersSynced")
    assert [u["identity"] for u in xr["status"]["users"]] == [ALICE]
    done = bob_vm.try_connect(xr["status"]["endpoint"], BOB, password)
    assert done.returncode != 0
    assert "access denied for bob@vm-bob" in done.stderr


# --- 5. a quiet, stable server ---------------------------------------------------------------


def reconcile(team: Tenant, xr: dict, times: int) -> None:
    """Make Crossplane reconcile `xr` `times` times, each seen by the function (its log).

    Paced: Crossplane's watch circuit breaker would otherwise drop the XR's events.
    """
    namespace, name = xr["metadata"]["namespace"], xr["metadata"]["name"]
    for _ in range(times):
        target = tenant.function_calls(team.node, namespace, name) + 1
        team.touch(xr)
        try:
            tenant.wait(
                lambda t=target: tenant.function_calls(team.node, namespace, name) >= t,
                T,
                f"a reconcile of {name}",
            )
        except AssertionError as e:
            responsive = tenant.condition(team.kube.reload(xr), "Responsive")
            raise AssertionError(f"{e}; Responsive: {responsive.get('message')}") from None
        time.sleep(1)


def written_by_crossplane(composed: dict[str, dict]) -> dict[str, str]:
    """What changes when Crossplane writes a composed object, by composition-resource-name.

    Others write two of them, so for those what Crossplane writes is compared: the
    freshness CronJob's status (its controller, at every run) by the spec's generation,
    and not the report, whose data the CronJob's pod writes.
    """
    out = {}
    for key, obj in composed.items():
        if key == "freshness-report":
            continue
        meta = obj["metadata"]
        out[key] = str(meta["generation"]) if key == "freshness" else meta["resourceVersion"]
    return out


def test_reconciles_that_change_nothing_rewrite_nothing_and_an_idle_xr_stays_idle(
    team: Tenant, provisioned: dict
) -> None:
    """An apply that never converges rewrites the object on every reconcile; each write
    is a watch event that reconciles the XR again, until Crossplane's circuit breaker
    opens and the XR stops reacting to real changes for minutes."""
    for xr in (team.get(BSLS, SERVER), team.get(BSLR, REPO)):
        before = written_by_crossplane(team.composed(xr))
        fingerprint = (xr.get("status") or {}).get("tlsFingerprint")
        reconcile(team, xr, 3)
        after = written_by_crossplane(team.composed(xr))
        assert after == before, (
            f"{xr['kind']} rewrote {sorted(k for k in before if after.get(k) != before[k])}"
        )
        assert (team.kube.reload(xr).get("status") or {}).get("tlsFingerprint") == fingerprint
        time.sleep(2)  # let the last touch settle
        ns, name = xr["metadata"]["namespace"], xr["metadata"]["name"]
        calls = tenant.function_calls(team.node, ns, name)
        time.sleep(5)
        extra = tenant.function_calls(team.node, ns, name) - calls
        assert extra <= 2, f"{extra} calls in 5 s for an idle {xr['kind']} {name}: a hot loop"


def test_an_invalid_edit_never_tears_down_a_working_server(team: Tenant, provisioned: dict) -> None:
    bsls = provisioned["bsls"]
    before = team.composed(bsls)
    spec = tenant.example("bsls.yaml", TEAM)[0]
    spec["spec"]["users"] = [u for u in spec["spec"]["users"] if u["username"] != "bob"]
    spec["spec"]["tls"]["additionalIPAddresses"] = ["999.0.0.1"]
    rejected_or_reported(team, spec, ("additionalIPAddresses", "999.0.0.1"))
    after = team.composed(bsls)
    assert {k: o["metadata"]["uid"] for k, o in after.items()} == {
        k: o["metadata"]["uid"] for k, o in before.items()
    }
    team.node.wait_available(TEAM, after["server"]["metadata"]["name"], T)
    # The app team puts the spec back as it was.
    spec["spec"]["tls"].pop("additionalIPAddresses")
    team.apply(spec)
    team.wait_xr(bsls, "Synced")


def rejected_or_reported(team: Tenant, obj: dict, words: tuple[str, ...]) -> str:
    """Apply `obj`: the API server's 422 or the XR's Synced=False message naming `words`."""
    rejected = None
    try:
        applied = team.apply(obj)
    except tenant.api_error() as e:
        rejected = e
    if rejected is not None:
        assert rejected.status == 422, rejected  # Unprocessable: the XRD's validation
        return str(rejected)

    def reported() -> str | None:
        c = tenant.condition(team.kube.reload(applied), "Synced")
        message = c.get("message", "")
        return message if c.get("status") == "False" and any(w in message for w in words) else None

    return tenant.wait(reported, T, f"Synced=False naming {' or '.join(words)}")


# --- 6. the server goes, the repository stays ------------------------------------------------


def test_deleting_the_bsls_collects_what_it_composed_and_keeps_the_repository(
    team: Tenant, provisioned: dict, alice_vm: Vm, alice_backup: dict, bob_vm: Vm
) -> None:
    bob_vm.stop()
    bsls = team.get(BSLS, SERVER)
    composed = team.composed(bsls)
    assert {"server", "service", "tls-ca", "tls-server", "control"} <= set(composed)
    # The platform's deletion guard (deploy/deletion-guard.yaml) refuses a plain delete.
    with pytest.raises(tenant.api_error()) as refused:
        team.kube.delete(bsls)
    assert refused.value.status == 403
    assert "is protected" in refused.value.message
    assert team.kube.reload(bsls) is not None
    team.delete(bsls)  # annotated first: on purpose
    # The garbage collector removes everything that named the BSLS as its owner.
    tenant.wait(lambda: not team.composed(bsls), T, "the composed objects to be collected")
    for obj in composed.values():
        assert team.kube.reload(obj) is None, (
            f"{obj['kind']} {obj['metadata']['name']} is still there"
        )
    # And, down the owner chain, the ReplicaSet and the server's pod.
    tenant.wait(
        lambda: (
            not [
                p
                for p in team.kube.list("v1", "Pod", TEAM)
                if p["metadata"]["name"].startswith(SERVER)
            ]
        ),
        T,
        "the server's pods to be gone",
    )
    # The repository, its claim and its data stay.
    assert tenant.is_true(team.get(BSLR, REPO), "Ready")
    assert (provisioned["folder"] / "kopia.repository.f").is_file()
    # A new server on the same repository still has alice's account and snapshot.
    spec = tenant.example("bsls.yaml", TEAM)[0]
    spec["spec"]["users"] = [u for u in spec["spec"]["users"] if u["username"] != "bob"]
    again = team.apply(spec)
    again = team.wait_xr(again, "Ready", timeout=T, touch=True)
    vm = Vm(team, "vm-alice-3", team.credentials(again, ALICE)).start()
    try:
        vm.connect()
        assert [s["id"] for s in vm.snapshots()] == [alice_backup["id"]]
        vm.kopia("snapshot", "restore", alice_backup["id"], "/home/vm/restored")
        assert vm.tree("/home/vm/restored") == tenant.manifest(alice_backup["files"])
    finally:
        vm.stop()
        alice_vm.stop()
