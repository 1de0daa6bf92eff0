"""Backup and restore through the BSLS server against kopia straight to the same storage.

For each backend (a filesystem claim; S3 on moto) and each data set, on the same
machine in one run, with the same data for both paths:

- **through the server**: the rendered server Deployment on the stand-in cluster, a
  VM client connected with verified TLS (its bundle's endpoint and `ca.crt`);
- **direct**: the stock client connected straight to a second repository on the same
  storage, created by the same rendered repository-init Job.

Per repetition the data sets are generated afresh (same shape, new random bytes), so
no path deduplicates against an earlier one. Operations: a first backup, a backup of
the unchanged data again (incremental), and a restore into an empty folder by a fresh
client (a new connection with an empty cache, as after losing the VM's disk). Each is
timed wall-clock, with the CPU seconds of the client, the server and the S3 server.
The order of the paths rotates between repetitions.

Two CPU placements: **split** puts every client on CPU 0 and the cluster side (server
pod, Jobs, S3 server) on CPU 1 (a VM and a cluster are different machines); **shared**
(filesystem only) lets everything share both cores, so the server path's two processes
compete for the CPU the direct client has alone. Bench variants (`bench/variants.py`)
run in the split placement beside the shipped defaults, each on a tenant of its own, in
the same repetitions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import random
import shutil
import time
from collections.abc import Callable

from bench import common, profile
from bench.tenant import Tenant, Variant, VMClient
from tests.procs import free_port

MiB = 1 << 20
OPS = ("backup", "incremental", "restore")
TARGETS = {"backup": 0.8, "incremental": 0.9, "restore": 0.8}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set: many small files, or a few large ones."""

    name: str
    files: int
    min_size: int
    max_size: int
    per_dir: int = 100

    @property
    def label(self) -> str:
        """What it is, in words."""
        if self.min_size == self.max_size:
            return f"{self.files} files of {self.max_size // MiB} MiB"
        return (
            f"{self.files:,} files of {self.min_size // 1024}-{self.max_size // 1024} KiB "
            f"in {max(1, self.files // self.per_dir)} folders"
        )

    def generate(self, folder: pathlib.Path, seed: int) -> int:
        """Write the data set (random, incompressible bytes); returns its size in bytes."""
        rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
        total = 0
        for i in range(self.files):
            path = folder / f"d{i // self.per_dir:03}" / f"f{i:06}.dat"
            path.parent.mkdir(parents=True, exist_ok=True)
            size = rnd.randint(self.min_size, self.max_size)
            with path.open("wb") as f:
                left = size
                while left:
                    n = min(left, 16 * MiB)
                    f.write(rnd.randbytes(n))
                    left -= n
            total += size
        return total


def datasets(quick: bool, backend: str = "filesystem") -> tuple[Dataset, ...]:
    """The two data sets (smaller with --quick).

    On S3 the small set has fewer files: moto spends about 7 ms of CPU per request, so a
    restore of many small files measures moto more than kopia.
    """
    small = 1000 if quick else 5000
    if backend == "s3":
        small //= 2.5
    if quick:
        return (Dataset("small", int(small), 0, 16 * 1024), Dataset("large", 2, 32 * MiB, 32 * MiB))
    return (
        Dataset("small", int(small), 0, 16 * 1024),
        Dataset("large", 3, 128 * MiB, 128 * MiB, per_dir=1),
    )


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the client and the cluster side run, and which backends run there."""

    name: str
    client_cpus: str | None
    cluster_cpus: frozenset[int] | None
    label: str
    backends: tuple[str, ...]


PLACEMENTS = (
    Placement(
        "split",
        "0",
        frozenset({1}),
        "every client on CPU 0, the server, its Jobs and the S3 server on CPU 1, as a VM "
        "and a cluster are different machines",
        ("filesystem", "s3"),
    ),
    Placement(
        "shared",
        None,
        None,
        "client, server and storage share both cores: the server path's two kopia "
        "processes compete for the CPU the direct client has to itself",
        ("filesystem",),
    ),
)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed operation."""

    wall: float
    client_cpu: float
    server_cpu: float
    storage_cpu: float
    client_rss_mib: float


@dataclasses.dataclass
class Cell:
    """Every sample of one (placement, backend, data set, operation, path)."""

    samples: list[Sample] = dataclasses.field(default_factory=list)

    def wall(self) -> common.Spread:
        """Wall seconds."""
        return common.Spread.of([s.wall for s in self.samples])

    def cpu(self, field: str) -> float:
        """Median CPU seconds of one process kind."""
        return common.Spread.of([getattr(s, field) for s in self.samples]).median


Key = tuple[str, str, str, str, str]  # placement, backend, dataset, op, path


@dataclasses.dataclass
class Result:
    """Everything the throughput section measured."""

    cells: dict[Key, Cell] = dataclasses.field(default_factory=dict)
    sizes: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    server_peak_rss: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    profiles: dict[tuple[str, str, str], dict[str, dict[str, float]]] = dataclasses.field(
        default_factory=dict
    )
    load: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    fsync: list[common.Spread] = dataclasses.field(default_factory=list)

    def add(self, key: Key, sample: Sample) -> None:
        """Record a sample."""
        self.cells.setdefault(key, Cell()).samples.append(sample)

    def ratio(self, placement: str, backend: str, dataset: str, op: str) -> float:
        """Throughput through the server over direct: direct time / server time (medians)."""
        server = self.cells[(placement, backend, dataset, op, "server")].wall().median
        direct = self.cells[(placement, backend, dataset, op, "direct")].wall().median
        return direct / server


def timed(
    tenant: Tenant, client: VMClient, *args: str, check: bool = True
) -> tuple[Sample, common.Run]:
    """Run one client command; its wall time and the CPU of every process on the path."""
    server0, storage0 = tenant.server_cpu(), tenant.storage_cpu()
    done = client.run(*args, check=check)
    sample = Sample(
        wall=done.wall,
        client_cpu=done.cpu,
        server_cpu=tenant.server_cpu() - server0,
        storage_cpu=tenant.storage_cpu() - storage0,
        client_rss_mib=done.peak_rss_mib,
    )
    return sample, done


def same_tree(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Same relative paths and sizes (a cheap check that a restore is complete)."""

    def shape(root: pathlib.Path) -> dict[str, int]:
        return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    return shape(a) == shape(b)


@dataclasses.dataclass(frozen=True)
class Path:
    """One way to the storage: direct, or through one tenant's server (shipped or a variant)."""

    name: str  # "direct", "server" (shipped defaults) or "server: <variant>"
    tenant: Tenant
    direct: bool = False

    def client(self) -> VMClient:
        """A fresh client on this path."""
        return self.tenant.direct() if self.direct else self.tenant.vm()

    def args(self, op: str) -> list[str]:
        """The variant's extra flags for a VM's snapshot or restore."""
        if self.direct:
            return []
        v = self.tenant.variant
        return (v.snapshot_args if op == "snapshot" else v.restore_args).split()


def one_path(
    path: Path,
    source: pathlib.Path,
    work: pathlib.Path,
    record: Callable[[str, Sample], None],
) -> None:
    """Backup, incremental backup and restore of one data set on one path."""
    client = path.client()
    snap = ["snapshot", "create", str(source), "--json", *path.args("snapshot")]
    sample, done = timed(path.tenant, client, *snap)
    record("backup", sample)
    snapshot = json.loads(done.stdout)["id"]
    sample, _ = timed(path.tenant, client, *snap)
    record("incremental", sample)
    fresh = path.client()
    target = work / "restore"
    restore = ["snapshot", "restore", snapshot, str(target), *path.args("restore")]
    sample, _ = timed(path.tenant, fresh, *restore)
    if not same_tree(source, target):
        msg = f"{path.name}: the restore of {source} is not the same tree"
        raise RuntimeError(msg)
    record("restore", sample)
    shutil.rmtree(target)


@dataclasses.dataclass
class Recorder:
    """Records one path's samples of one data set under their key, and logs them."""

    result: Result
    where: tuple[str, str, str]  # placement, backend, data set
    path: str
    log: Callable[[str], None]

    def __call__(self, op: str, s: Sample) -> None:
        """Record one operation's sample."""
        placement, backend, dataset = self.where
        self.result.add((placement, backend, dataset, op, self.path), s)
        self.log(
            f"  {placement:6} {backend:10} {dataset:5} {op:11} {self.path[:28]:28} "
            f"{s.wall:6.2f} s  cpu client {s.client_cpu:5.2f} "
            f"server {s.server_cpu:5.2f} storage {s.storage_cpu:5.2f}"
        )


def measure(
    work: pathlib.Path,
    *,
    reps: int,
    quick: bool,
    placements: tuple[Placement, ...] = PLACEMENTS,
    variants: tuple[Variant, ...] = (),
    log: Callable[[str], None] = print,
) -> Result:
    """Run the whole section: every placement and backend on tenants of their own.

    `variants` are measured too, in the first placement only, each on a tenant of its
    own, interleaved with the shipped defaults and direct access (same data, rotating
    order), so that the before/after comparison sees the same machine.
    """
    result = Result()
    result.fsync.append(common.fsync_ms(work / "fsync"))
    for i, placement in enumerate(placements):
        for backend in placement.backends:
            with common.LoadWatch() as load:
                one_setting(
                    result,
                    work / f"{placement.name}-{backend}",
                    placement,
                    backend,
                    reps=reps,
                    quick=quick,
                    variants=variants if i == 0 else (),
                    log=log,
                )
            result.load[(placement.name, backend)] = load.summary()
    result.fsync.append(common.fsync_ms(work / "fsync"))
    return result


def one_setting(
    result: Result,
    root: pathlib.Path,
    placement: Placement,
    backend: str,
    *,
    reps: int,
    quick: bool,
    variants: tuple[Variant, ...],
    log: Callable[[str], None],
) -> None:
    """Every repetition of every data set on every path, on fresh tenants."""
    tenants: list[Tenant] = []
    try:
        for i, variant in enumerate((Variant(), *variants)):
            tenant = Tenant(
                root / f"tenant-{i}",
                backend,
                variant=variant,
                client_cpus=placement.client_cpus,
                cluster_cpus=placement.cluster_cpus,
            )
            tenants.append(tenant)
            tenant.up()
            common.reset_peak_rss(tenant.server_pid)
        paths = [
            Path("direct", tenants[0], direct=True),
            Path("server", tenants[0]),
            *(Path(f"server: {t.variant.name}", t) for t in tenants[1:]),
        ]
        for rep in range(reps):
            for ds in datasets(quick, backend):
                source = root / "data" / f"{ds.name}-{rep}"
                result.sizes[(backend, ds.name)] = ds.generate(source, seed=rep * 1000 + ds.files)
                shift = rep % len(paths)
                for path in paths[shift:] + paths[:shift]:
                    where = (placement.name, backend, ds.name)
                    one_path(path, source, root, Recorder(result, where, path.name, log))
                shutil.rmtree(source)
        result.server_peak_rss[(placement.name, backend)] = common.peak_rss_mib(
            tenants[0].server_pid
        )
    finally:
        for tenant in tenants:
            tenant.down()
        shutil.rmtree(root, ignore_errors=True)


def profile_misses(
    work: pathlib.Path,
    result: Result,
    *,
    quick: bool,
    placement: Placement = PLACEMENTS[0],
    log: Callable[[str], None] = print,
) -> None:
    """For every missed target of `placement`, one profiled run of both paths.

    The server listens for pprof on loopback (`--metrics-listen-addr --enable-pprof`,
    hidden flags of kopia v0.23.1: an observation, not a variant) and is profiled over
    the operation alone (a CPU profile samples only while the process runs); each
    client runs with `--profile-cpu`.
    """
    misses = sorted(
        {
            (backend, dataset, op)
            for (pl, backend, dataset, op, path) in result.cells
            if pl == placement.name
            and path == "server"
            and result.ratio(pl, backend, dataset, op) < TARGETS[op]
        }
    )
    # The filesystem shows what the server path itself costs; S3 only where it differs.
    misses = [m for m in misses if m[0] == "filesystem" or ("filesystem", *m[1:]) not in misses]
    if not misses or profile.go() is None:
        return
    for backend in sorted({m[0] for m in misses}):
        sets = {ds.name: ds for ds in datasets(quick, backend)}
        root = work / f"profile-{backend}"
        port = free_port()
        variant = Variant(
            name="pprof", server_args=f"--metrics-listen-addr=127.0.0.1:{port} --enable-pprof"
        )
        tenant = Tenant(
            root,
            backend,
            variant=variant,
            client_cpus=placement.client_cpus,
            cluster_cpus=placement.cluster_cpus,
        )
        try:
            tenant.up()
            for _, dataset, op in [m for m in misses if m[0] == backend]:
                log(f"  profiling {backend} {dataset} {op}")
                seconds = result.cells[(placement.name, backend, dataset, op, "server")]
                window = math.ceil(2 * seconds.wall().hi + 2)
                result.profiles[(backend, dataset, op)] = profile_one(
                    tenant, port, window, sets[dataset], op, work=root / f"{dataset}-{op}"
                )
        finally:
            tenant.down()
            shutil.rmtree(root, ignore_errors=True)


def profile_one(
    tenant: Tenant, port: int, window: int, ds: Dataset, op: str, *, work: pathlib.Path
) -> dict[str, dict[str, float]]:
    """CPU categories of the server, the VM client and the direct client for one op."""
    source = work / "data"
    ds.generate(source, seed=int(time.time()))
    prof = work / "pprof"
    out: dict[str, dict[str, float]] = {}
    for path in (Path("server", tenant), Path("direct", tenant, direct=True)):
        client = path.client()
        diag = ["--profile-cpu", f"--diagnostics-output-directory={prof}/{path.name}-client"]
        snapshot_id = None
        if op != "backup":
            snapshot_id = client.snapshot(source)[0]
        if op == "restore":
            client = path.client()
        server_profile = (
            profile.Fetch(port, window, prof / "server.pprof") if not path.direct else None
        )
        if op == "restore":
            assert snapshot_id is not None
            client.run(
                "snapshot", "restore", snapshot_id, str(work / f"restore-{path.name}"), *diag
            )
        else:
            client.run("snapshot", "create", str(source), *diag)
        found = profile.find(prof / f"{path.name}-client")
        if found:
            out[f"{path.name} path: client"] = profile.categorise(found)
        if server_profile is not None and (got := server_profile.wait()) is not None:
            out["server path: server"] = profile.categorise(got)
    shutil.rmtree(work, ignore_errors=True)
    return out


# ----------------------------------------------------------------------- report


def render(result: Result, quick: bool, reps: int) -> tuple[str, list[tuple[str, str, bool]]]:
    """The section's Markdown and its targets as (what, result, met)."""
    sets = datasets(quick)
    described = sorted({(b, d) for (b, d) in result.sizes})
    lines = [
        "Data sets (random, incompressible bytes, generated afresh for every repetition): "
        + "; ".join(
            f"**{d}** on {b}: {ds.label}, {result.sizes[(b, d)] / MiB:.0f} MiB"
            for b, d in described
            for ds in datasets(quick, b)
            if ds.name == d
        )
        + f". {reps} repetitions; times are median (min-max) seconds, wall clock. "
        "The disk here: writing and fsyncing an 8 KiB file took "
        + " ms, then ".join(f.fmt(1) for f in result.fsync)
        + " ms at the start and at the end of the section (kopia fsyncs every file it "
        "writes to a repository or a cache).",
        "",
    ]
    targets: list[tuple[str, str, bool]] = []
    placements = sorted({k[0] for k in result.cells}, key=[p.name for p in PLACEMENTS].index)
    for pl in placements:
        label = next(p.label for p in PLACEMENTS if p.name == pl)
        lines += [f"**{pl}**: {label}.", ""]
        rows, found = shipped_rows(result, pl, sets)
        targets += found
        lines.append(
            common.table(
                (
                    "backend",
                    "data",
                    "operation",
                    "server s",
                    "direct s",
                    "MiB/s server / direct",
                    "server/direct",
                    "CPU s server path (client + server [+ S3])",
                    "CPU s direct (client [+ S3])",
                    "target",
                ),
                rows,
                align="lllrrrrrrl",
            )
        )
        loads = "; ".join(f"{b}: {result.load[(p, b)]}" for (p, b) in result.load if p == pl)
        rss = ", ".join(
            f"{b} {result.server_peak_rss[(p, b)]:.0f} MiB"
            for (p, b) in result.server_peak_rss
            if p == pl
        )
        lines += ["", f"Server peak RSS over these runs: {rss}. Load average (1 min): {loads}.", ""]
        lines += variant_lines(result, pl, sets)
    lines += profile_lines(result)
    return "\n".join(lines), targets


def cpu_cell(cell: Cell, backend: str, direct: bool = False) -> str:
    """Median CPU seconds: client (+ server) (+ S3 server)."""
    out = f"{cell.cpu('client_cpu'):.2f}"
    if not direct:
        out += f" + {cell.cpu('server_cpu'):.2f}"
    if backend == "s3":
        out += f" + {cell.cpu('storage_cpu'):.2f}"
    return out


def shipped_rows(
    result: Result, pl: str, sets: tuple[Dataset, ...]
) -> tuple[list[tuple], list[tuple[str, str, bool]]]:
    """The shipped server against direct: rows and targets."""
    rows = []
    targets = []
    for backend in ("filesystem", "s3"):
        for ds in sets:
            for op in OPS:
                key = (pl, backend, ds.name, op)
                if (*key, "server") not in result.cells:
                    continue
                server = result.cells[(*key, "server")]
                direct = result.cells[(*key, "direct")]
                ratio = result.ratio(*key)
                size = result.sizes.get((backend, ds.name), 0) / MiB
                mbps = (
                    f"{size / server.wall().median:.0f} / {size / direct.wall().median:.0f}"
                    if op != "incremental"
                    else "-"
                )
                ok = ratio >= TARGETS[op]
                rows.append(
                    (
                        backend,
                        ds.name,
                        op,
                        server.wall().fmt(),
                        direct.wall().fmt(),
                        mbps,
                        f"{ratio:.2f}",
                        cpu_cell(server, backend),
                        cpu_cell(direct, backend, direct=True),
                        f">= {TARGETS[op]} {common.verdict(ok)}",
                    )
                )
                targets.append(
                    (
                        f"{op} {backend} {ds.name} ({pl}) >= {TARGETS[op]}x direct",
                        f"{ratio:.2f}x",
                        ok,
                    )
                )
    return rows, targets


def variant_lines(result: Result, pl: str, sets: tuple[Dataset, ...]) -> list[str]:
    """Bench variants beside the shipped defaults, measured interleaved in the same run."""
    names = sorted({k[4] for k in result.cells if k[0] == pl and k[4].startswith("server: ")})
    if not names:
        return []
    rows = []
    for backend in ("filesystem", "s3"):
        for ds in sets:
            for op in OPS:
                key = (pl, backend, ds.name, op)
                if (*key, "server") not in result.cells:
                    continue
                shipped = result.cells[(*key, "server")].wall().median
                direct = result.cells[(*key, "direct")].wall().median
                row = [backend, ds.name, op, f"{shipped:.2f} ({direct / shipped:.2f})"]
                for name in names:
                    cell = result.cells.get((*key, name))
                    if cell is None:
                        row.append("-")
                        continue
                    v = cell.wall().median
                    row.append(
                        f"{cell.wall().fmt()} ({direct / v:.2f}; {100 * (v / shipped - 1):+.0f} %, "
                        f"CPU {cpu_cell(cell, backend)})"
                    )
                rows.append(row)
    return [
        f"Bench variants ({pl}), interleaved with the shipped defaults and direct access in "
        "the same repetitions: seconds, (server/direct ratio; change against the shipped "
        "defaults, CPU s):",
        "",
        common.table(
            ("backend", "data", "operation", "shipped s (ratio)", *[n[8:] for n in names]),
            rows,
            align="lllr" + "r" * len(names),
        ),
        "",
    ]


def profile_lines(result: Result) -> list[str]:
    """Where the CPU goes in the runs that missed a target."""
    if not result.profiles:
        return []
    rows = []
    for (backend, dataset, op), parts in sorted(result.profiles.items()):
        for who, cats in parts.items():
            rows.append(
                (backend, dataset, op, who, f"{sum(cats.values()):.2f}", profile.summary(cats))
            )
    return [
        "Where the CPU goes in the runs that missed a target (split placement, one profiled "
        "run each: the server over the operation alone through its pprof endpoint, each "
        "client with kopia's `--profile-cpu`; stacks grouped by `bench/profile.py`):",
        "",
        common.table(
            ("backend", "data", "operation", "process", "CPU s", "largest parts"),
            rows,
            align="lllllr",
        ),
        "",
    ]
