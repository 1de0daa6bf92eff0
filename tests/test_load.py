"""Load: the real gRPC server answers every call of many concurrent callers, in bounded memory.

LOAD_REQUESTS (default 10,000) calls from 64 threads, a mix of settled servers with 10
users, invalid specs, and settled servers with the most users allowed (500). Every
response must be valid, no call may fail in transport, and resident memory must not
grow between the first and the second half of the run (compared by median: the
highest sample is whenever several large calls were in flight).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

import grpc
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from function.models import MAX_USERS
from tests import helpers as h
from tests import procs

REQUESTS = int(os.environ.get("LOAD_REQUESTS", "10000"))
CALLERS = 64
MB = 1024 * 1024


def settled_request(users: int) -> fnv1.RunFunctionRequest:
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = [{"username": f"u{i}", "hostname": f"vm-{i}"} for i in range(users)]
    runner = h.FunctionRunner(clock=h.Clock())
    first = h.reconcile(xr, runner=runner)
    observed = h.as_observed(first)
    pool = h.required_pool()
    probe = runner.run(h.request(xr, observed=observed))
    required = {n: h.select(pool, sel) for n, sel in probe.requirements.resources.items()}
    return h.request(xr, observed=observed, required=required)


def invalid_request() -> fnv1.RunFunctionRequest:
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = [{"username": "Not Valid", "hostname": 7}]
    return h.request(xr)


def test_many_concurrent_calls() -> None:
    address, proc = procs.start_function_process()
    kinds = {
        "small": settled_request(10),
        "invalid": invalid_request(),
        "large": settled_request(MAX_USERS),
    }
    assert kinds["large"].ByteSize() < 4 * MB
    # 1 in 100 calls carries the most users allowed; a third of the rest are invalid.
    plan = [
        "large" if i % 100 == 0 else ("invalid" if i % 3 == 0 else "small") for i in range(REQUESTS)
    ]
    local = threading.local()
    errors: list[str] = []
    samples: list[tuple[int, int]] = []  # (call index, RSS KiB), every 100 calls

    def call(i: int) -> str:
        if not hasattr(local, "stub"):
            channel = grpc.insecure_channel(
                address,
                options=[
                    ("grpc.max_receive_message_length", 4 * MB),
                    ("grpc.max_send_message_length", 4 * MB),
                ],
            )
            local.stub = grpcv1.FunctionRunnerServiceStub(channel)
        kind = plan[i]
        req = fnv1.RunFunctionRequest()
        req.CopyFrom(kinds[kind])
        req.meta.tag = f"call-{i}"  # every request differs, as resource versions do
        rsp = local.stub.RunFunction(req, timeout=60)
        if rsp.meta.tag != req.meta.tag:
            errors.append(f"call {i}: tag {rsp.meta.tag!r}")
        fatal = [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
        if kind == "invalid":
            if len(fatal) != 1 or "spec.users[0].username" not in fatal[0].message:
                errors.append(f"call {i}: invalid spec answered {rsp.results}")
        elif fatal or len(rsp.desired.resources) < (10 if kind == "small" else MAX_USERS):
            errors.append(f"call {i}: {kind} answered {len(rsp.desired.resources)} resources")
        if i % 100 == 0:
            samples.append((i, procs.rss_kib(proc.pid)))
        return kind

    start = procs.rss_kib(proc.pid)
    with concurrent.futures.ThreadPoolExecutor(CALLERS) as pool:
        done = list(pool.map(call, range(REQUESTS)))
    assert len(done) == REQUESTS
    assert errors == []
    # Flat: memory that leaks grows with the calls, so the typical (median) RSS of the
    # second half of the calls is no more than 10% (plus 4 MiB) above the first half's.
    # The highest is printed but not compared: it is whichever moment several of the
    # large calls happened to be in flight at once.
    first = sorted(kib for i, kib in samples if i < REQUESTS // 2)
    second = sorted(kib for i, kib in samples if i >= REQUESTS // 2)
    median_first, median_second = first[len(first) // 2], second[len(second) // 2]
    print(
        f"\nload: {REQUESTS} calls from {CALLERS} callers, RSS KiB at start {start}; "
        f"first half median {median_first}, highest {first[-1]}; "
        f"second half median {median_second}, highest {second[-1]}"
    )
    assert median_second <= median_first * 1.10 + 4096, (median_first, median_second)
