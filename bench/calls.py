"""function-bsls beside two floors on the same SDK, over real gRPC, with the same requests.

- **no-op** (`bench/noop.py`): echoes the desired state it was given (nothing): what any
  Python function pays for gRPC and parsing the request;
- **echo** (`bench/echo.py`): returns every observed composed resource as desired, the
  least any function must do to give the same answer as a settled reconcile.

For 10, 100 and 500 users (500 is the most a server accepts), each target answers:

- **warm**: a settled reconcile: every composed resource observed, nothing to generate;
- **cold**: the first reconcile: requirements resolved, nothing observed, so the CA, the
  serving certificate and every password are generated and every manifest is built.

Every request differs from the one before (the tag and the XR's resourceVersion
change), as in a cluster. The targets are called in rounds, interleaved, so that a
change in the machine's load hits all three alike; each round gives a p50 and a p99,
and the table shows the median round with the range over rounds. Peak RSS: fresh
processes at 500 users answering one caller, warm then cold calls.

With **baselines** (`--baseline REV ...`), the function as it was at earlier commits runs
as further targets in the same rounds, each from a detached git worktree of its commit:
the before and after of a change, beside the same floors, in one run.
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import pathlib
import pstats
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import grpc
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from bench import common
from bench.echo import EchoRunner
from tests import helpers as h
from tests import procs

MB = 1024 * 1024
USERS = (10, 100, 500)
TARGETS = (("function-bsls", "function.main"), ("no-op", "bench.noop"), ("echo", "bench.echo"))


def xr_with(users: int) -> dict:
    """The example BSLS with `users` users (the first keeps alice's password Secret)."""
    xr = h.example("bsls.yaml")
    first = xr["spec"]["users"][0]
    xr["spec"]["users"] = [first] + [
        {"username": f"u{i}", "hostname": f"vm-{i}"} for i in range(1, users)
    ]
    return xr


def requests_for(users: int) -> dict[str, fnv1.RunFunctionRequest]:
    """The last request of a first reconcile (cold) and of a settled one (warm)."""
    xr = xr_with(users)
    runner = h.FunctionRunner(clock=h.Clock())
    pool = h.required_pool()
    probe = runner.run(h.request(xr))
    required = {n: h.select(pool, sel) for n, sel in probe.requirements.resources.items()}
    cold = h.request(xr, required=required)
    first = runner.run(cold)
    sync = h.key(first, "user-sync")
    observed = h.as_observed(first, server=h.DEPLOYMENT_AVAILABLE, **{sync: h.JOB_COMPLETE})
    warm = h.request(xr, observed=observed, required=required)
    return {"cold": cold, "warm": warm}


class Target:
    """A function server process and a channel to it."""

    def __init__(self, name: str, module: str, root: pathlib.Path = common.ROOT) -> None:
        self.name = name
        port = procs.free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--insecure", f"--address=127.0.0.1:{port}"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.wait_for_port(port, self.proc)
        self.address = f"127.0.0.1:{port}"
        self.local = threading.local()

    def stub(self) -> grpcv1.FunctionRunnerServiceStub:
        """A stub on a channel of this thread's own."""
        if not hasattr(self.local, "stub"):
            opts = [
                ("grpc.max_receive_message_length", 8 * MB),
                ("grpc.max_send_message_length", 8 * MB),
            ]
            self.local.stub = grpcv1.FunctionRunnerServiceStub(
                grpc.insecure_channel(self.address, options=opts)
            )
        return self.local.stub

    def peak_rss_mib(self) -> float:
        """The process's peak RSS."""
        return common.peak_rss_mib(self.proc.pid)

    def stop(self) -> None:
        """Stop the process this object started."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


_counter = [0]
_lock = threading.Lock()


def varied(req: fnv1.RunFunctionRequest) -> bytes:
    """The request with a new tag and XR resourceVersion, serialized."""
    with _lock:
        _counter[0] += 1
        n = _counter[0]
    out = fnv1.RunFunctionRequest()
    out.CopyFrom(req)
    out.meta.tag = f"bench-{n}"
    meta = out.observed.composite.resource.fields["metadata"].struct_value
    meta.fields["resourceVersion"].string_value = str(n)
    return out.SerializeToString()


def call(target: Target, payload: bytes) -> int:
    """One call; the size of the answer in bytes."""
    req = fnv1.RunFunctionRequest.FromString(payload)
    rsp = target.stub().RunFunction(req, timeout=120)
    if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
        msg = f"{target.name}: FATAL {rsp.results}"
        raise RuntimeError(msg)
    return rsp.ByteSize()


def latencies(target: Target, req: fnv1.RunFunctionRequest, n: int) -> tuple[float, float, int]:
    """p50 and p99 of n sequential calls, in ms, and the answer's size."""
    payloads = [varied(req) for _ in range(n)]
    times = []
    size = 0
    for payload in payloads:
        t = time.perf_counter()
        size = call(target, payload)
        times.append(time.perf_counter() - t)
    return (
        common.percentile(times, 50) * 1000,
        common.percentile(times, 99) * 1000,
        size,
    )


@dataclasses.dataclass
class Row:
    """One (users, reconcile) line: per target, p50s and p99s over rounds."""

    users: int
    phase: str
    request_kib: float
    answer_kib: dict[str, float] = dataclasses.field(default_factory=dict)
    p50: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    p99: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def spread(self, which: str, target: str) -> common.Spread:
        """The rounds' p50s (or p99s) of one target."""
        return common.Spread.of((self.p50 if which == "p50" else self.p99)[target])


@dataclasses.dataclass
class Result:
    """The section's measurements."""

    rows: list[Row]
    rss: dict[str, float]
    load: str
    profiles: list[Profile] = dataclasses.field(default_factory=list)
    baselines: list[str] = dataclasses.field(default_factory=list)


def calls_for(users: int, quick: bool) -> int:
    """Calls per round."""
    n = 200 if users <= 10 else 80 if users <= 100 else 30
    return max(10, n // 4) if quick else n


def measure(
    *,
    quick: bool,
    rounds: int = 3,
    baselines: dict[str, pathlib.Path] | None = None,
    log: Callable[[str], None] = print,
) -> Result:
    """Run the whole section (with each baseline tree's function as a target of its own)."""
    rows = []
    with common.LoadWatch() as load:
        targets = [Target(name, module) for name, module in TARGETS]
        targets += [Target(n, "function.main", t) for n, t in (baselines or {}).items()]
        try:
            for users in USERS:
                reqs = requests_for(users)
                for phase in ("warm", "cold"):
                    req = reqs[phase]
                    row = Row(users, phase, req.ByteSize() / 1024)
                    for t in targets:  # warm every process up once
                        call(t, varied(req))
                    for _ in range(rounds):
                        for t in targets:
                            p50, p99, size = latencies(t, req, calls_for(users, quick))
                            row.p50.setdefault(t.name, []).append(p50)
                            row.p99.setdefault(t.name, []).append(p99)
                            row.answer_kib[t.name] = size / 1024
                    rows.append(row)
                    log(
                        f"  {users:>4} {phase}: "
                        + ", ".join(
                            f"{t.name} p50 {row.spread('p50', t.name).median:.2f} ms"
                            for t in targets
                        )
                    )
        finally:
            for t in targets:
                t.stop()
        rss = peak_rss(max(USERS), 10 if quick else 20)
        profiles = [profile_warm(users, 10 if quick else 30) for users in USERS]
    return Result(rows, rss, load.summary(), profiles, list(baselines or {}))


def peak_rss(users: int, calls: int) -> dict[str, float]:
    """Peak RSS of fresh processes answering one caller: warm, then cold, reconciles."""
    reqs = requests_for(users)
    out = {}
    for name, module in TARGETS:
        target = Target(name, module)
        try:
            for phase in ("warm", "cold"):
                for _ in range(calls):
                    call(target, varied(reqs[phase]))
            out[name] = target.peak_rss_mib()
        finally:
            target.stop()
    return out


WARM_VS_ECHO = 1.3
COLD_MS_AT_100 = 20.0
RSS_MB = 100.0


def render(result: Result) -> tuple[str, list[tuple[str, str, bool]]]:
    """The section's Markdown table and its targets."""
    rows = []
    for r in result.rows:
        fn = r.spread("p50", "function-bsls")
        echo = r.spread("p50", "echo")
        rows.append(
            (
                r.users,
                r.phase,
                f"{r.request_kib:.0f}",
                f"{r.answer_kib['function-bsls']:.0f} / {r.answer_kib['echo']:.0f}",
                fn.fmt(),
                r.spread("p99", "function-bsls").fmt(),
                r.spread("p50", "no-op").fmt(),
                echo.fmt(),
                r.spread("p99", "echo").fmt(),
                f"{fn.median / echo.median:.2f}",
            )
        )
    table = common.table(
        (
            "users",
            "reconcile",
            "request KiB",
            "answer KiB (function / echo)",
            "function p50 ms",
            "function p99 ms",
            "no-op p50 ms",
            "echo p50 ms",
            "echo p99 ms",
            "function / echo (p50)",
        ),
        rows,
        align="rlrrrrrrrr",
    )
    rss = result.rss
    max_users = max(USERS)
    text = (
        table + f"\n\n{max_users} users is the most a server accepts (the API's maximum: every "
        "credentials Secret carries the CA and the connect scripts, and the answer must fit "
        "Crossplane's 4 MiB), so it stands for the issue's 1,000 users. "
        f"Peak RSS at {max_users} users, fresh processes, one caller (warm then cold "
        f"calls): function-bsls {rss['function-bsls']:.0f} MiB, echo {rss['echo']:.0f} MiB, "
        f"no-op {rss['no-op']:.0f} MiB. Load average (1 min): {result.load}."
        "\n\nWhere a warm call's time goes (the handler timed in this process, without "
        "gRPC; the rest of the round trip is the gRPC server, parsing the request and "
        "serializing the answer, the same work the echo does):\n\n"
        + render_profiles(result.profiles, result.rows)
        + render_baseline(result)
    )
    targets = []
    for r in result.rows:
        if r.phase == "warm":
            ratio = r.spread("p50", "function-bsls").median / r.spread("p50", "echo").median
            targets.append(
                (
                    f"function warm p50 at {r.users} users <= {WARM_VS_ECHO}x echo",
                    f"{ratio:.2f}x",
                    ratio <= WARM_VS_ECHO,
                )
            )
        if r.phase == "cold" and r.users == 100:
            cold = r.spread("p50", "function-bsls").median
            targets.append(
                (
                    f"function cold p50 at 100 users < {COLD_MS_AT_100:.0f} ms",
                    f"{cold:.1f} ms",
                    cold < COLD_MS_AT_100,
                )
            )
    mb = rss["function-bsls"] * MB / 1e6
    targets.append(
        (
            f"function peak RSS at {max_users} users (the maximum) < {RSS_MB:.0f} MB",
            f"{mb:.0f} MB",
            mb < RSS_MB,
        )
    )
    return text, targets


def render_baseline(result: Result) -> str:
    """Before and after: each baseline commit's function beside this one, same rounds."""
    if not result.baselines:
        return ""
    names = [*result.baselines, "function-bsls"]

    def ratio(r: Row, a: str, b: str) -> str:
        return f"{r.spread('p50', a).median / r.spread('p50', b).median:.2f}"

    table = common.table(
        (
            "users",
            "reconcile",
            *(f"{n if n != 'function-bsls' else 'this tree'} p50 ms" for n in names),
            "echo p50 ms",
            *(f"this tree / {n}" for n in result.baselines),
            *(f"{n if n != 'function-bsls' else 'this tree'} / echo" for n in names),
        ),
        [
            (
                r.users,
                r.phase,
                *(r.spread("p50", n).fmt() for n in names),
                r.spread("p50", "echo").fmt(),
                *(ratio(r, "function-bsls", n) for n in result.baselines),
                *(ratio(r, n, "echo") for n in names),
            )
            for r in result.rows
        ],
        align="rl" + "r" * (2 * len(names) + len(result.baselines) + 1),
    )
    return (
        "\n\nBefore and after (`--baseline`): the function at "
        + ", ".join(result.baselines)
        + ", each run from a git worktree of that commit as a target of its own in the same "
        "rounds:\n\n" + table
    )


def write_requests(folder: pathlib.Path) -> None:
    """Keep the requests for a profiler (not used by `make bench`)."""
    for users in USERS:
        for phase, req in requests_for(users).items():
            (folder / f"{users}-{phase}.bin").write_bytes(req.SerializeToString())


# --------------------------------------------------------------- where the time goes


@dataclasses.dataclass(frozen=True)
class Profile:
    """A warm call taken apart: the handler in-process, and what cProfile sees in it."""

    users: int
    handler_ms: float  # function-bsls' handler, in-process, no gRPC
    echo_handler_ms: float  # the echo's handler, in-process
    parts: dict[str, float]  # share of the handler's time per area


AREAS = (
    (
        "protobuf (Struct reads, copies, merges)",
        ("google/protobuf", "google._upb", "<built-in method"),
    ),
    ("function-bsls", ("function/",)),
    ("Crossplane SDK", ("crossplane/",)),
    ("pydantic", ("pydantic",)),
    ("cryptography", ("cryptography",)),
)


def handler_ms(runner: object, req: fnv1.RunFunctionRequest, n: int) -> float:
    """Median in-process time of `runner.RunFunction(req)` (each call on a new request)."""
    payloads = [fnv1.RunFunctionRequest.FromString(varied(req)) for _ in range(n)]
    loop = asyncio.new_event_loop()
    times = []
    try:
        for p in payloads:
            start = time.perf_counter()
            loop.run_until_complete(runner.RunFunction(p, None))  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
    finally:
        loop.close()
    return common.percentile(times, 50) * 1000


def profile_warm(users: int, n: int = 30) -> Profile:
    """Time the warm handler of function-bsls and of the echo in-process, and profile it."""
    from function.fn import FunctionRunner  # noqa: PLC0415 - the bench's own process

    req = requests_for(users)["warm"]
    runner = FunctionRunner()
    handler_ms(runner, req, 3)  # caches warm, as in a long-running process
    fn_ms = handler_ms(runner, req, n * 3)
    echo_ms = handler_ms(EchoRunner(), req, n * 3)
    prof = cProfile.Profile()
    payloads = [fnv1.RunFunctionRequest.FromString(varied(req)) for _ in range(n)]
    loop = asyncio.new_event_loop()
    try:
        prof.enable()
        for p in payloads:
            loop.run_until_complete(runner.RunFunction(p, None))
        prof.disable()
    finally:
        loop.close()
    stats = pstats.Stats(prof)
    total = 0.0
    parts: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{name}"
        area = next((a for a, marks in AREAS if any(m in where for m in marks)), "other")
        parts[area] = parts.get(area, 0.0) + tottime
        total += tottime
    return Profile(users, fn_ms, echo_ms, {k: v / total for k, v in parts.items()})


def render_profiles(profiles: list[Profile], rows: list[Row]) -> str:
    """Where a warm call's time goes, against the gRPC round trip."""
    out = []
    for p in profiles:
        row = next(r for r in rows if r.users == p.users and r.phase == "warm")
        fn = row.spread("p50", "function-bsls").median
        echo = row.spread("p50", "echo").median
        parts = ", ".join(
            f"{area} {100 * share:.0f} %"
            for area, share in sorted(p.parts.items(), key=lambda kv: -kv[1])
        )
        out.append(
            (
                p.users,
                f"{fn:.2f} / {echo:.2f}",
                f"{p.handler_ms:.2f} / {p.echo_handler_ms:.2f}",
                f"{max(0.0, fn - p.handler_ms):.2f} / {max(0.0, echo - p.echo_handler_ms):.2f}",
                parts,
            )
        )
    return common.table(
        (
            "users",
            "gRPC p50 ms (function / echo)",
            "handler in-process ms (function / echo)",
            "rest: gRPC, parsing, serializing ms (function / echo)",
            "the function's handler time by area (cProfile, own time)",
        ),
        out,
        align="rrrrl",
    )
