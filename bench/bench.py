"""Benchmark function-bsls against the SDK floor, over real gRPC, in one run.

For 1, 10, 100 and 1,000 users it measures, for this function and for a no-op function
on the same SDK, with byte-identical requests:
- warm: a settled reconcile (everything observed, nothing to generate);
- cold: the first reconcile (requirements resolved, nothing observed: keys, certificates
  and passwords are generated);
sequential latency (p50, p99), throughput with 16 concurrent callers, and peak RSS.
Each request differs from the previous one (the tag and the XR's resourceVersion change),
as in a cluster, so nothing can be served from a cache of whole requests.

Usage: python -m bench.bench [--quick] [--write docs/performance.md]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import threading
import time

import grpc
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from tests import helpers as h
from tests import procs

ROOT = pathlib.Path(__file__).resolve().parent.parent
MB = 1024 * 1024
USERS = (1, 10, 100, 1000)
CONCURRENCY = 16


def xr_with(users: int) -> dict:
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = [{"username": f"u{i}", "hostname": f"vm-{i}"} for i in range(users)]
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

    def __init__(self, name: str, module: str) -> None:
        self.name = name
        port = procs.free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--insecure", f"--address=127.0.0.1:{port}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.wait_for_port(port, self.proc)
        self.address = f"127.0.0.1:{port}"
        self.local = threading.local()

    def stub(self) -> grpcv1.FunctionRunnerServiceStub:
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
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
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


def call(target: Target, payload: bytes) -> None:
    req = fnv1.RunFunctionRequest.FromString(payload)
    rsp = target.stub().RunFunction(req, timeout=120)
    if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
        msg = f"{target.name}: FATAL {rsp.results}"
        raise RuntimeError(msg)


def latency(target: Target, req: fnv1.RunFunctionRequest, n: int) -> tuple[float, float]:
    payloads = [varied(req) for _ in range(n)]
    times = []
    for payload in payloads:
        t = time.perf_counter()
        call(target, payload)
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times) * 1000, times[
        min(len(times) - 1, int(len(times) * 0.99))
    ] * 1000


def throughput(target: Target, req: fnv1.RunFunctionRequest, n: int) -> float:
    payloads = [varied(req) for _ in range(n)]
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda p: call(target, p), payloads))
    return n / (time.perf_counter() - t)


def machine() -> str:
    cpu = "unknown CPU"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    parser.add_argument("--write", help="write the table into this Markdown file")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0

    fn, floor = Target("function-bsls", "function.main"), Target("no-op", "bench.noop")
    rows = []
    try:
        for users in USERS:
            reqs = requests_for(users)
            size = reqs["warm"].ByteSize()
            n = max(10, int((400 if users <= 10 else 120 if users <= 100 else 40) * scale))
            for phase in ("warm", "cold"):
                req = reqs[phase]
                for target in (fn, floor):  # warm both up once
                    call(target, varied(req))
                f50, f99 = latency(fn, req, n)
                b50, b99 = latency(floor, req, n)
                ft = throughput(fn, req, n * 2)
                bt = throughput(floor, req, n * 2)
                rows.append((users, phase, size, f50, f99, b50, b99, ft, bt))
                print(
                    f"{users:>5} {phase:>4}: p50 {f50:7.2f} ms "
                    f"(floor {b50:6.2f}, x{f50 / b50:4.1f}) p99 {f99:7.2f} ms "
                    f"{ft:7.0f}/s (floor {bt:6.0f}/s)",
                    flush=True,
                )
        rss = (fn.peak_rss_mib(), floor.peak_rss_mib())
    finally:
        fn.stop()
        floor.stop()
    sequential = sequential_rss(1000, 20)

    table = render(rows, rss, sequential)
    print(table)
    if args.write:
        write(pathlib.Path(args.write), table)
    return 0


def sequential_rss(users: int, calls: int) -> tuple[float, float]:
    """Peak RSS of fresh processes answering one caller: warm, then cold, reconciles."""
    reqs = requests_for(users)
    out = []
    for module in ("function.main", "bench.noop"):
        target = Target(module, module)
        try:
            for phase in ("warm", "cold"):
                for _ in range(calls):
                    call(target, varied(reqs[phase]))
            out.append(target.peak_rss_mib())
        finally:
            target.stop()
    return out[0], out[1]


def render(rows: list[tuple], rss: tuple[float, float], sequential: tuple[float, float]) -> str:
    lines = [
        "| users | reconcile | request KiB | p50 ms | p99 ms | floor p50 ms | x floor | "
        f"calls/s ({CONCURRENCY} callers) | floor calls/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for users, phase, size, f50, f99, b50, _b99, ft, bt in rows:
        lines.append(
            f"| {users} | {phase} | {size / 1024:.0f} | {f50:.2f} | {f99:.2f} | {b50:.2f} | "
            f"{f50 / b50:.2f} | {ft:.0f} | {bt:.0f} |"
        )
    lines.append("")
    lines.append(
        f"Peak RSS with 1,000 users and one caller (fresh processes, 20 warm then 20 cold "
        f"calls): function-bsls {sequential[0]:.0f} MiB, no-op floor {sequential[1]:.0f} MiB."
    )
    lines.append("")
    lines.append(
        f"Peak RSS over the whole run above, {CONCURRENCY} concurrent callers included: "
        f"function-bsls {rss[0]:.0f} MiB, no-op floor {rss[1]:.0f} MiB."
    )
    return "\n".join(lines)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write(path: pathlib.Path, table: str) -> None:
    """Replace the generated part of the performance doc, keeping the prose around it."""
    text = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    body = f"{BEGIN}\nMeasured {stamp} with `make bench` on {machine()}.\n\n{table}\n{END}"
    path.write_text(head + body + tail)


if __name__ == "__main__":
    sys.exit(main())
