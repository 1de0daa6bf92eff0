"""Helpers for the fault, load and wire tests on the real node: S3 storage that can go
away and come back, pods that probe a TCP port, a server pod killed for real, and the
server's resource use as the kubelet measures it.

Probes use what the kopia image has (Debian minbase): bash's /dev/tcp for a TCP connect
and perl (perl-base is in every Debian) for a listener. A refused connection and one a
policy REJECTs look alike to a client ("Connection refused"); a probe's control (the same
pod reaching something no policy guards, or the listener reached from its own pod) shows
the refusal is the policy's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import shlex
import socket
import threading
import time
from typing import Any

from tests.node import tenant
from tests.node.tenant import T, Tenant, Vm


class Gate:
    """A TCP forwarder on the node's address in front of moto: `close()` is the storage
    gone (new connections refused, open ones cut), `open()` brings it back. moto keeps its
    buckets in memory, so it cannot be stopped and started without losing them: the gate
    stands in for the storage endpoint going away and coming back."""

    def __init__(self, host: str, port: int, target: tuple[str, int]) -> None:
        self.host, self.port, self.target = host, port, target
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Listen and forward every connection to moto."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class BlackHole:
    """A TCP port that accepts connections and never answers: an S3 endpoint a client
    waits on (so a Job's pod that talks to it keeps running)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        """Stop and drop what it holds."""
        self.sock.close()
        for c in self.held:
            c.close()


# --- pods that probe ---------------------------------------------------------------------------


def probe_script(host: str, port: int, seconds: int = 5) -> str:
    """Shell that prints "open" if a TCP connect to host:port succeeds, else the error."""
    target = shlex.quote(f"/dev/tcp/{host}/{port}")
    return (
        f"if timeout {seconds} bash -c 'exec 3<>{target}' 2>/tmp/probe.err;"
        ' then echo open; else echo "closed: $(cat /tmp/probe.err)"; fi'
    )


@dataclasses.dataclass
class Prober(Vm):
    """A pod with the kopia image that probes ports, labelled as `labels` (not a VM
    unless its labels say so)."""

    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def pod(self) -> str:
        """The pod's name."""
        return self.name

    def manifest(self) -> dict:
        """A VM pod's manifest with this prober's name and labels, and no bundle."""
        m = super().manifest()
        m["metadata"]["labels"] = dict(self.labels)
        spec = m["spec"]
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "bundle"]
        c = spec["containers"][0]
        c["volumeMounts"] = [v for v in c["volumeMounts"] if v["name"] != "bundle"]
        c["resources"] = {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
        return m

    def probe(self, host: str, port: int) -> str:
        """ "open", or "closed: <why>"."""
        return self.sh(probe_script(host, port)).stdout.strip()


def light(vm: Vm) -> Vm:
    """A VM whose pod requests little, so twenty fit the node's two cores."""
    original = vm.manifest

    def manifest() -> dict:
        m = original()
        m["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "20m", "memory": "48Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }
        return m

    vm.manifest = manifest  # type: ignore[method-assign]
    return vm


# --- the server pod ---------------------------------------------------------------------------


def server_pod(team: Tenant, bsls: dict) -> dict:
    """The server's running pod (exactly one)."""
    deployment = team.composed(bsls)["server"]

    def one() -> dict | None:
        pods = [
            p
            for p in team.pods_of(deployment)
            if tenant.is_true(p, "Ready") and not p["metadata"].get("deletionTimestamp")
        ]
        return pods[0] if len(pods) == 1 else None

    return tenant.wait(one, T, "one Ready server pod")


def kill_pod(team: Tenant, pod: dict) -> None:
    """Kill a pod now: deleted with no grace, its containers SIGKILLed by the kubelet."""
    team.node.kubectl(
        "delete",
        "pod",
        "-n",
        team.namespace,
        pod["metadata"]["name"],
        "--grace-period=0",
        "--force",
        "--wait=false",
    )


def background(vm: Vm, name: str, command: str) -> None:
    """Start a kopia command in the VM in the background; its output in /tmp/<name>.log,
    its exit code in /tmp/<name>.rc once it ends."""
    vm.sh(
        f"rm -f /tmp/{name}.rc; ( {tenant.WITH_ENV}{command} >/tmp/{name}.log 2>&1;"
        f" echo $? >/tmp/{name}.rc ) >/dev/null 2>&1 &"
    )


def output(vm: Vm, script: str) -> str:
    """What a script prints in the VM, stripped."""
    return vm.sh(script).stdout.strip()


def finished(vm: Vm, name: str) -> tuple[int, str] | None:
    """(exit code, output) of a background command once it ended, else None."""
    done = vm.sh(f"cat /tmp/{name}.rc 2>/dev/null || true").stdout.strip()
    if not done:
        return None
    return int(done), vm.sh(f"cat /tmp/{name}.log").stdout


class Ledger:
    """What a VM's source folder held from when on: the content any snapshot of it that
    started later must restore to (the folder changes only through `put`)."""

    def __init__(self, vm: Vm, folder: str) -> None:
        self.vm, self.folder = vm, folder
        self.states: list[tuple[datetime.datetime, dict[str, str]]] = []

    def put(self, files: dict[str, bytes], under: str = "") -> None:
        """Write files into the folder (or a subfolder) and record what it holds now."""
        self.vm.put(f"{self.folder}/{under}".rstrip("/"), files)
        self.states.append((datetime.datetime.now(datetime.UTC), self.vm.tree(self.folder)))

    def at(self, start_time: str) -> dict[str, str]:
        """What the folder held when a snapshot that started at `start_time` read it."""
        started = datetime.datetime.fromisoformat(start_time[:26].rstrip("Z") + "+00:00")
        before = [tree for when, tree in self.states if when <= started]
        assert before, f"a snapshot started at {start_time}, before anything was put"
        return before[-1]


def verify_and_restore_all(ledger: Ledger, where: str) -> list[str]:
    """`kopia snapshot verify` reading every file, then restore every complete snapshot
    and compare it byte for byte with what its folder held; the snapshot IDs checked."""
    vm = ledger.vm
    vm.kopia("snapshot", "verify", "--verify-files-percent=100", "--file-parallelism=4")
    found = [s for s in vm.snapshots() if s["source"]["path"] == ledger.folder]
    assert found, "no complete snapshot to restore"
    for snapshot in found:
        target = f"{where}/{snapshot['id']}"
        vm.kopia("snapshot", "restore", snapshot["id"], target)
        assert vm.tree(target) == ledger.at(snapshot["startTime"]), (
            f"snapshot {snapshot['id']} ({snapshot['startTime']}) restored differently"
        )
        vm.sh(f"rm -rf {shlex.quote(target)}")
    return [s["id"] for s in found]


# --- measuring the server ---------------------------------------------------------------------


class Sampler:
    """The server pod's CPU and memory from the kubelet's /stats/summary (through the API
    server's node proxy), once a second, in a thread, until stopped."""

    def __init__(self, node: Any, namespace: str, pod: str) -> None:
        self.node, self.namespace, self.pod = node, namespace, pod
        self.cpu_millicores: list[float] = []
        self.memory_mib: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        name = tenant.node_module().NODE_NAME
        while not self._stop.wait(1):
            with contextlib.suppress(Exception):
                summary = self.node.kube.request(
                    "GET", f"/api/v1/nodes/{name}/proxy/stats/summary"
                ).json()
                for p in summary.get("pods", []):
                    ref = p["podRef"]
                    if ref["namespace"] == self.namespace and ref["name"] == self.pod:
                        cpu = (p.get("cpu") or {}).get("usageNanoCores")
                        mem = (p.get("memory") or {}).get("workingSetBytes")
                        if cpu is not None:
                            self.cpu_millicores.append(cpu / 1e6)
                        if mem is not None:
                            self.memory_mib.append(mem / 2**20)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """(seconds, result) of fn(*args)."""
    start = time.monotonic()
    result = fn(*args)
    return round(time.monotonic() - start, 2), result


def run_all(calls: list[Any], at_once: int = 0) -> list[Any]:
    """Run every zero-argument call in its own thread, `at_once` at a time (all if 0);
    their results (an exception is returned, not raised, so one failure does not hide
    the others)."""
    results: list[Any] = [None] * len(calls)
    slots = threading.Semaphore(at_once or len(calls) or 1)

    def one(i: int) -> None:
        with slots:
            try:
                results[i] = calls[i]()
            except Exception as e:
                results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
