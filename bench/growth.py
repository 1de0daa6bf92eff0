"""The server and its Jobs as the repository grows: memory, start time, sync time.

One filesystem tenant on the stand-in cluster grows in stages (users, snapshots,
files). Each stage is reached the way a cluster gets there:

- **users**: the BSLS spec lists more users and, in the same change, alice's password
  Secret gets a new password; the function renders a new user-sync Job, which runs as
  rendered (the shipped script sets every listed user). Measured: the Job's wall time
  and the peak RSS of its processes (wait4), and, from the moment of the change, when
  the newest user can log in and when alice's new password works (the stand-in's
  reconcile is immediate: on a cluster add the Crossplane poll, see below);
- **snapshots and files**: an operator's client connected straight to the repository
  writes one snapshot of a tree of small files and many snapshots of tiny folders (the
  server loads every manifest and the whole content index).

Then the server is restarted (a new pod with empty emptyDirs) and measured: seconds
to listen, seconds to the first successful login, RSS when listening and when idle,
then the peak RSS over a VM's backup and restore (2,000 small files and two of 64 MiB)
and a burst of logins from several VMs at once. Full
maintenance, which the server (the owner) runs every 24 h, is run once per stage from
the same identity in its own process, to see its time and peak RSS.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import random
import secrets
import shutil
import time
from collections.abc import Callable

from bench import common
from bench.tenant import ALICE, NAMESPACE, Tenant, VMClient
from tests import helpers
from tests.e2e.cluster import JobRun
from tests.e2e.stack import repository_password, with_password


@dataclasses.dataclass(frozen=True)
class Stage:
    """A size of the repository."""

    users: int
    snapshots: int  # snapshots of tiny folders, beyond the VM's
    files: int  # small files in one snapshot tree (each one content)


def stages(quick: bool) -> tuple[Stage, ...]:
    """The stages (smaller with --quick)."""
    if quick:
        return (Stage(10, 10, 1_000), Stage(50, 50, 5_000))
    return (Stage(10, 10, 5_000), Stage(100, 100, 50_000), Stage(500, 1_000, 200_000))


BURST = 8  # VMs logging in at the same moment
LARGE = 64 << 20  # bytes in each of the VM's two large files


@dataclasses.dataclass
class StageResult:
    """What one stage measured."""

    stage: Stage
    repo_mib: float = 0.0
    contents: int = 0
    sync_s: float = 0.0
    sync_rss_mib: float = 0.0
    new_user_s: float = 0.0
    rotated_s: float = 0.0
    changed_only_sync_s: float | None = None  # the bench variant: only changed users set
    changed_only_rotated_s: float | None = None
    listen_s: float = 0.0
    first_login_s: float = 0.0
    listening_rss_mib: float = 0.0  # when it starts listening, before any login
    idle_rss_mib: float = 0.0  # a few seconds after the first login
    peak_rss_mib: float = 0.0
    burst_login: common.Spread | None = None
    maintenance_s: float = 0.0
    maintenance_rss_mib: float = 0.0
    load: str = ""


def run_jobs_measured(tenant: Tenant) -> list[tuple[JobRun, common.Run]]:
    """Run every new Job like the cluster does, measuring each pod (wall, CPU, peak RSS)."""
    cluster = tenant.cluster
    out = []
    for (kind, namespace, name), job in list(cluster.objects.items()):
        if kind != "Job" or (namespace, name) in cluster.jobs:
            continue
        with common.pinned(tenant.cluster_cpus):
            pod = cluster.pod(namespace, name, job["spec"]["template"])
            start = time.monotonic()
            process = pod.start()
            _, status, usage = os.wait4(process.popen.pid, 0)
        process.popen.returncode = os.waitstatus_to_exitcode(status)
        measured = common.Run(
            wall=time.monotonic() - start,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_rss_mib=usage.ru_maxrss / 1024,
            returncode=process.popen.returncode,
            stdout=process.logs(),
            stderr="",
        )
        run = JobRun(name, pod.name, process.popen.returncode, process.logs())
        if not run.succeeded:
            msg = f"Job {name} failed:\n{run.logs}"
            raise RuntimeError(msg)
        cluster.jobs[(namespace, name)] = run
        out.append((run, measured))
    return out


def converge_measured(
    tenant: Tenant, patch: Callable[[Tenant], None] | None = None
) -> list[tuple[JobRun, common.Run]]:
    """One reconcile, the controllers, and a reconcile to observe (Stack.converge).

    `patch` may change the stored objects after the reconcile applied them (a variant).
    """
    assert tenant.stack is not None
    tenant.stack.server.reconcile()
    if patch is not None:
        patch(tenant)
    with common.pinned(tenant.cluster_cpus):
        tenant.cluster.roll_out()
    runs = run_jobs_measured(tenant)
    tenant.stack.server.reconcile()
    return runs


def login(tenant: Tenant, identity: str, password: str | None = None) -> bool:
    """Whether `identity` can connect through the server now."""
    assert tenant.stack is not None
    _, done = tenant.stack.connect(identity, password)
    return done.returncode == 0


def until(check: Callable[[], bool], timeout: float = 600, period: float = 0.2) -> float:
    """Seconds until `check()` is true."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            msg = f"not true within {timeout}s"
            raise RuntimeError(msg)
        time.sleep(period)
    return time.monotonic() - start


def operator(tenant: Tenant, identity: tuple[str, str] = ("operator", "bench")) -> VMClient:
    """A client connected straight to the server's repository (a filesystem claim)."""
    assert tenant.stack is not None
    client = tenant.stack.client(identity[0])
    client.password = repository_password(tenant.cluster, tenant.stack.repository.xr)
    claim = tenant.stack.repository.xr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]
    path = tenant.cluster.claim(NAMESPACE, claim["claimName"])
    client.run(
        "repository",
        "connect",
        "filesystem",
        f"--path={path}",
        f"--override-username={identity[0]}",
        f"--override-hostname={identity[1]}",
    )
    return VMClient(client, tenant.client_cpus)


def small_tree(folder: pathlib.Path, files: int, seed: int, size: int = 1024) -> None:
    """`files` random files of `size` bytes, 1,000 per folder."""
    rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
    for i in range(files):
        path = folder / f"d{i // 1000:04}" / f"f{i:07}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(size))


def grow_data(tenant: Tenant, work: pathlib.Path, have: Stage, want: Stage) -> None:
    """Write snapshots and files straight into the repository up to `want`."""
    op = operator(tenant)
    if want.files > have.files:
        tree = work / f"tree-{want.files}"
        small_tree(tree, want.files - have.files, seed=want.files)
        op.run("snapshot", "create", str(tree))
        shutil.rmtree(tree)
    if want.snapshots > have.snapshots:
        tiny = work / "tiny"
        folders = []
        for i in range(have.snapshots, want.snapshots):
            folder = tiny / f"s{i:05}"
            folder.mkdir(parents=True)
            (folder / "file").write_text(f"snapshot {i}\n")
            folders.append(str(folder))
        for batch in range(0, len(folders), 200):
            op.run("snapshot", "create", *folders[batch : batch + 200])
        shutil.rmtree(tiny)


def repository_size(tenant: Tenant) -> tuple[float, int]:
    """The claim's size in MiB and the number of contents kopia lists."""
    assert tenant.stack is not None
    claim = tenant.stack.repository.xr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]
    path = tenant.cluster.claim(NAMESPACE, claim["claimName"])
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / (1 << 20)
    stats = operator(tenant).run("content", "stats", "--raw").stdout
    count = 0
    for line in stats.splitlines():
        if line.strip().startswith("Count:"):
            count = int(line.split(":")[1].strip())
            break
    return size, count


def grow_users(tenant: Tenant, want: int, result: StageResult) -> None:
    """Spec change to `want` users with alice's password changed at the same moment."""
    assert tenant.stack is not None
    server = tenant.stack.server
    users = server.xr["spec"]["users"]
    users += [{"username": f"u{i}", "hostname": f"vm-{i}"} for i in range(len(users), want)]
    newest = f"{users[-1]['username']}@{users[-1]['hostname']}"
    new_password = f"alice-{secrets.token_urlsafe(12)}"
    (alice_secret,) = helpers.load("required/secrets.yaml")
    start = time.monotonic()
    tenant.cluster.apply(with_password(alice_secret, new_password))
    runs = converge_measured(tenant)
    sync = [m for r, m in runs if "user-sync" in r.name]
    if len(sync) != 1:
        msg = f"expected one user-sync Job, ran {[r.name for r, _ in runs]}"
        raise RuntimeError(msg)
    result.sync_s = sync[0].wall
    result.sync_rss_mib = sync[0].peak_rss_mib

    def since_start(check: Callable[[], bool]) -> float:
        until(check)
        return time.monotonic() - start

    # Both checks at once, so that neither waits for the other's connect.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        new_user = pool.submit(since_start, lambda: login(tenant, newest))
        rotated = pool.submit(since_start, lambda: login(tenant, ALICE, new_password))
        result.new_user_s, result.rotated_s = new_user.result(), rotated.result()
    if login(tenant, ALICE, "alice-correct-horse-battery"):
        msg = "alice's old password still works after the sync"
        raise RuntimeError(msg)


# A bench variant of the shipped user-sync.sh (never shipped): a user that already
# exists is set only when listed in BSLS_BENCH_CHANGED, as a script would behave if the
# function told the Job which users' passwords changed. Users are still added and
# deleted as the shipped script does.
SYNC_ANCHOR = 'identity=$(basename "$file")\n'
SYNC_SKIP = (
    'if [ -n "${BSLS_BENCH_CHANGED+x}" ] && is_existing "$identity" && '
    "! printf '%s\\n' $BSLS_BENCH_CHANGED | grep -qxF -- \"$identity\"; then continue; fi\n"
)


def changed_only(changed: list[str]) -> Callable[[Tenant], None] | None:
    """A patch that makes the stored scripts ConfigMap's user-sync.sh set only `changed`."""

    def patch(tenant: Tenant) -> None:
        assert tenant.stack is not None
        cm = tenant.stack.server.desired["scripts"]
        stored = tenant.cluster.get("ConfigMap", NAMESPACE, cm["metadata"]["name"])
        assert stored is not None
        script = stored["data"]["user-sync.sh"]
        if SYNC_ANCHOR not in script:
            msg = "user-sync.sh changed: the change-only variant cannot be applied"
            raise LookupError(msg)
        stored["data"]["user-sync.sh"] = script.replace(SYNC_ANCHOR, SYNC_ANCHOR + SYNC_SKIP, 1)
        env = tenant.cluster.extra_env.setdefault("user-sync", {})
        env["BSLS_BENCH_CHANGED"] = " ".join(changed)

    return patch


def rotate_changed_only(tenant: Tenant, result: StageResult) -> None:
    """A second rotation of alice's password, with the change-only sync variant."""
    new_password = f"alice-{secrets.token_urlsafe(12)}"
    (alice_secret,) = helpers.load("required/secrets.yaml")
    start = time.monotonic()
    tenant.cluster.apply(with_password(alice_secret, new_password))
    try:
        runs = converge_measured(tenant, changed_only([ALICE]))
    except LookupError:
        return
    finally:
        tenant.cluster.extra_env.get("user-sync", {}).pop("BSLS_BENCH_CHANGED", None)
    sync = [m for r, m in runs if "user-sync" in r.name]
    result.changed_only_sync_s = sync[0].wall if sync else None
    until(lambda: login(tenant, ALICE, new_password))
    result.changed_only_rotated_s = time.monotonic() - start
    # The scripts ConfigMap is the shipped one again at the next reconcile.
    assert tenant.stack is not None
    tenant.stack.server.reconcile()


def measure_server(tenant: Tenant, work: pathlib.Path, result: StageResult) -> None:
    """Restart the server; start time, idle RSS, then peak RSS under a VM and a burst."""
    assert tenant.stack is not None
    start = time.monotonic()
    pod = tenant.restart_server()
    result.listen_s = time.monotonic() - start
    result.listening_rss_mib = common.proc_status_kib(tenant.server_pid, "VmRSS") / 1024
    result.first_login_s = result.listen_s + until(lambda: login(tenant, ALICE), period=0.1)
    pid = tenant.server_pid
    time.sleep(2)
    result.idle_rss_mib = common.proc_status_kib(pid, "VmRSS") / 1024
    data = work / "vm-data"
    seed = len(tenant.stack.server.xr["spec"]["users"])
    small_tree(data, 2_000, seed=seed, size=8192)
    rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
    for i in range(2):  # and two large files: the server then holds whole packs
        (data / f"large-{i}.bin").write_bytes(rnd.randbytes(LARGE))
    vm = tenant.vm()
    snapshot, _ = vm.snapshot(data)
    tenant.vm().run("snapshot", "restore", snapshot, str(work / "vm-restore"))
    shutil.rmtree(data)
    shutil.rmtree(work / "vm-restore")
    # A burst: BURST VMs, already connected, list their snapshots at the same moment.
    users = tenant.stack.server.xr["spec"]["users"][1 : BURST + 1]
    clients = [tenant.vm(f"{u['username']}@{u['hostname']}") for u in users]
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        runs = list(pool.map(lambda c: c.run("snapshot", "list"), clients))
    result.burst_login = common.Spread.of([r.wall for r in runs])
    result.peak_rss_mib = common.peak_rss_mib(pid)
    del pod


def maintenance(tenant: Tenant, result: StageResult) -> None:
    """Full maintenance as the owner (the server's identity), in its own process."""
    owner = operator(tenant, ("server", "bsls-system"))
    done = owner.run("maintenance", "run", "--full")
    result.maintenance_s = done.wall
    result.maintenance_rss_mib = done.peak_rss_mib


def measure(
    work: pathlib.Path, *, quick: bool, log: Callable[[str], None] = print
) -> list[StageResult]:
    """Grow one tenant through the stages."""
    plan = stages(quick)
    tenant = Tenant(work / "tenant", "filesystem", users=2).up()
    results = []
    try:
        have = Stage(2, 0, 0)
        for stage in plan:
            result = StageResult(stage)
            with common.LoadWatch() as load:
                grow_data(tenant, work, have, stage)
                grow_users(tenant, stage.users, result)
                rotate_changed_only(tenant, result)
                result.repo_mib, result.contents = repository_size(tenant)
                measure_server(tenant, work, result)
                maintenance(tenant, result)
            result.load = load.summary()
            log(
                f"  stage {stage}: sync {result.sync_s:.1f} s ({result.sync_rss_mib:.0f} MiB), "
                f"start {result.listen_s:.1f}/{result.first_login_s:.1f} s, "
                f"RSS idle {result.idle_rss_mib:.0f} peak {result.peak_rss_mib:.0f} MiB, "
                f"maintenance {result.maintenance_s:.1f} s {result.maintenance_rss_mib:.0f} MiB"
            )
            results.append(result)
            have = stage
    finally:
        tenant.down()
    return results


def render(results: list[StageResult]) -> str:
    """The section's tables."""
    rows = []
    for r in results:
        s = r.stage
        assert r.burst_login is not None
        rows.append(
            (
                s.users,
                s.snapshots,
                f"{s.files:,}",
                f"{r.contents:,}",
                f"{r.repo_mib:.0f}",
                f"{r.listen_s:.1f}",
                f"{r.first_login_s:.1f}",
                f"{r.listening_rss_mib:.0f} / {r.idle_rss_mib:.0f}",
                f"{r.peak_rss_mib:.0f}",
                r.burst_login.fmt(1),
                f"{r.maintenance_s:.1f}",
                f"{r.maintenance_rss_mib:.0f}",
                f"{r.sync_s:.1f}",
                f"{r.sync_rss_mib:.0f}",
            )
        )
    head = (
        "users",
        "extra snapshots",
        "files",
        "contents",
        "repository MiB",
        "server listens s",
        "first login s",
        "server RSS MiB: listening / idle after a login",
        f"server peak RSS MiB (a VM's backup and restore, {BURST} logins at once)",
        f"{BURST} logins at once: s each",
        "full maintenance s",
        "maintenance peak RSS MiB",
        "user-sync Job s",
        "user-sync peak RSS MiB",
    )
    loads = "; ".join(f"stage {i + 1}: {r.load}" for i, r in enumerate(results))
    return common.table(head, rows) + f"\n\nLoad average (1 min) per stage: {loads}."


@dataclasses.dataclass(frozen=True)
class Latency:
    """How long a change takes to work, at one user count."""

    users: int
    sync_s: float  # the shipped user-sync Job
    new_user_s: float  # the newest user can log in, after the change
    rotated_s: float  # alice's new password works, after the change
    changed_only_sync_s: float | None  # the bench variant's Job (only alice set)
    changed_only_rotated_s: float | None


def latencies(results: list[StageResult]) -> list[Latency]:
    """Per stage: the shipped sync, and the change-only variant."""
    return [
        Latency(
            r.stage.users,
            r.sync_s,
            r.new_user_s,
            r.rotated_s,
            r.changed_only_sync_s,
            r.changed_only_rotated_s,
        )
        for r in results
    ]
