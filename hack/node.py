"""A real single-node Kubernetes cluster on this machine, with Crossplane and the function.

Everything the composed pods need runs for real: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd with runc and the CNI bridge
plugin, a kubelet, kube-proxy (iptables), CoreDNS, an OCI registry, Crossplane core and
its RBAC manager (as pods, from the chart's manifests), kube-router's network policy
controller (a process, the firewall alone: it enforces NetworkPolicies with iptables and
ipsets), and the function, installed by
Crossplane's package manager from the registry and run as a pod. Nothing is installed on
the machine beyond Debian packages (hack/node-deps.sh); the binaries come from
hack/node-tools.sh and hack/tools.sh, the images from hack/images.py.

The network is the node's own and stays on this machine (198.18.0.0/15, the
benchmarking block):

- the node, on the pods' bridge `bsls-br0`: 198.18.0.1 (kube-apiserver :6443, kubelet
  :10250, the pods' registry :5443);
- pods, on `bsls-br0` with the gateway 198.18.1.1: 198.18.1.0/24, routes to
  198.18.0.0/15 only, no masquerade;
- Services (kube-proxy, iptables): 198.18.2.0/24, `kubernetes` 198.18.2.1, `kube-dns`
  198.18.2.10.

Only the bridge forwards (net.ipv4.conf.bsls-br0.forwarding; the global ip_forward is
left as it is), a FORWARD rule drops whatever a pod sends anywhere but the bridge, the
host routes the rest of 198.18.0.0/15 nowhere, and CoreDNS has no `forward`: no packet
or lookup from a pod leaves the node.

Every file lives in one run folder (state of etcd, containerd, the kubelet, the
registry, the logs). Stopping the node, on success, failure or Ctrl-C, ends the
processes it started by their PIDs (containers: the PIDs in the node's cgroups),
unmounts what was mounted under the run folder, deletes the interfaces, the iptables
chains and ipsets that were not there before, the node's cgroups (under /bsls-node),
restores the sysctls the kubelet changes, and removes the folder. A run that was killed before it
could do so is cleaned up by the next one, from the state file it left behind.

Use it from Python (`with Node() as node:`; `node.kube` is an API client, `node.kubectl`
runs kubectl) or run `python hack/node.py` (what `make node` does).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import ctypes
import datetime
import fcntl
import hashlib
import importlib.util
import ipaddress
import json
import os
import pathlib
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = pathlib.Path(__file__).resolve().parent.parent
HACK = ROOT / "hack"
TOOLS = ROOT / ".tools" / "bin"
MANIFESTS = HACK / "node"


def _load(name: str, path: pathlib.Path) -> ModuleType:
    """A module from a file under hack/ (loaded once, under a name of its own)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        msg = f"cannot load {path}"
        raise NodeError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


controlplane = _load("bsls_cluster", HACK / "cluster.py")
images = _load("bsls_images", HACK / "images.py")
Kube = controlplane.Kube
ApiError = controlplane.ApiError
wait_for = controlplane.wait_for
condition = controlplane.condition
load_yaml = controlplane.load_yaml

NODE_NAME = "bsls-node"
BRIDGE = "bsls-br0"
BLOCK = ipaddress.ip_network("198.18.0.0/15")
NODE_IP = "198.18.0.1"
POD_CIDR = "198.18.1.0/24"
POD_GATEWAY = "198.18.1.1"
SERVICE_CIDR = "198.18.2.0/24"
KUBERNETES_SVC_IP = "198.18.2.1"
DNS_IP = "198.18.2.10"
APISERVER_PORT = 6443
KUBELET_PORT = 10250
POD_REGISTRY_PORT = 5443  # on NODE_IP, TLS: what pods (Crossplane's package manager) pull from
CGROUP_ROOT = "bsls-node"
CROSSPLANE_NS = "crossplane-system"
FUNCTION_NAME = "function-bsls"
FUNCTION_TAG = "v0.1.0"
FUNCTION_REPOSITORY = "bsls/function-bsls"
CHAIN_PREFIXES = ("KUBE-", "CNI-", "BSLS-")
GUARD_CHAIN = "BSLS-NODE-FORWARD"
# The kernel settings kubelet and kube-proxy may change; put back as they were found.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
# Registries the node's containerd serves from the local registry (hosts.toml mirrors),
# so manifests keep their real image names and imagePullPolicy: Always works unchanged.
MIRRORED = ("docker.io", "registry.k8s.io", "xpkg.crossplane.io")
# Paths outside the run folder that the components write whatever their configuration
# says: containerd's shim sockets (/run/containerd/s), libcni's result cache
# (/var/lib/cni), kubelet's device-plugin folder (/var/lib/kubelet/device-plugins), the
# containers/image blob cache of skopeo (/var/lib/containers/cache). Whichever did not
# exist before the run is removed after it; in one that did, only the run's own entries.
OUTSIDE = ("/run/containerd", "/var/lib/cni", "/var/lib/kubelet", "/var/lib/containers")


class NodeError(RuntimeError):
    """A node component did not start, or the machine lacks something the node needs."""


# One node per machine (its addresses and interface names are fixed): the lock and the
# state file a killed run leaves for the next one live in /run, which a reboot clears
# together with the interfaces, chains and mounts they describe.
STATE_FILE = pathlib.Path("/run/bsls-node/state.json")
LOCK_FILE = pathlib.Path("/run/bsls-node/lock")


# --- small helpers -----------------------------------------------------------------------------


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(argv: Iterable[object], *, check: bool = True, **kwargs: Any) -> str:
    """Run a command and return its stdout; NodeError with its output if it fails."""
    args = [str(a) for a in argv]
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        msg = f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
        raise NodeError(msg)
    return done.stdout


def tool(name: str) -> pathlib.Path:
    """A binary from .tools/bin."""
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        msg = f"{path} is missing: run hack/node-tools.sh and hack/tools.sh (make node does)"
        raise NodeError(msg)
    return path


def read_sysctl(name: str) -> str | None:
    """A kernel setting, or None where this kernel has none."""
    path = pathlib.Path("/proc/sys") / name.replace(".", "/")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    """Set a kernel setting."""
    (pathlib.Path("/proc/sys") / name.replace(".", "/")).write_text(value)


def mounts_under(path: pathlib.Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path)
    found = []
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (p.count("/"), len(p)), reverse=True)


def cgroup_mounts() -> list[pathlib.Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd, the unified v2)."""
    out = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] and right.split()[0] in ("cgroup", "cgroup2"):
            out.append(pathlib.Path(left.split()[4]))
    return out


def iptables_chains(binary: str) -> dict[str, set[str]]:
    """Table -> chain names, as iptables-save (or ip6tables-save) lists them."""
    out: dict[str, set[str]] = {}
    table = ""
    text = run([f"{binary}-save"], check=False)
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            out.setdefault(table, set())
        elif line.startswith(":"):
            out[table].add(line[1:].split()[0])
    return out


def ipsets() -> set[str]:
    """The names of the ipsets that exist (kube-router makes its own)."""
    if shutil.which("ipset") is None:
        return set()
    return set(run(["ipset", "list", "-n"], check=False).split())


def nft_tables() -> set[str]:
    """The nftables tables that exist ("ip nat", "ip6 filter", ...)."""
    if shutil.which("nft") is None:
        return set()
    text = run(["nft", "list", "tables"], check=False)
    return {line.removeprefix("table ").strip() for line in text.splitlines() if line.strip()}


# --- certificates ------------------------------------------------------------------------------


class Pki:
    """A CA made for one run and the certificates and keys the components use."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bsls-node-ca")])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca = self.write("ca.crt", self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.write("ca.key", _pem_key(self.ca_key))

    def write(self, name: str, data: bytes) -> pathlib.Path:
        """A file in the PKI folder, readable by root only."""
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        orgs: Iterable[str] = (),
        dns: Iterable[str] = (),
        ips: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> tuple[pathlib.Path, pathlib.Path]:
        """A leaf signed by the CA: (name.crt, name.key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = datetime.datetime.now(datetime.UTC)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        crt = self.write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
        return crt, self.write(f"{name}.key", _pem_key(key))

    def kubeconfig(
        self, path: pathlib.Path, server: str, user: str, orgs: Iterable[str] = ()
    ) -> None:
        """A kubeconfig that authenticates with a client certificate for `user`."""
        crt, key = self.issue(f"{path.stem}-client", user, orgs=orgs, client=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": NODE_NAME,
                    "cluster": {"server": server, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [
                {"name": user, "user": {"client-certificate": str(crt), "client-key": str(key)}}
            ],
            "contexts": [{"name": NODE_NAME, "context": {"cluster": NODE_NAME, "user": user}}],
            "current-context": NODE_NAME,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- the node ----------------------------------------------------------------------------------


class Node:
    """The cluster; `start()` brings it up, `stop()` removes every trace of it."""

    def __init__(self, *, keep: bool = False, verbose: bool = True) -> None:
        self.keep = keep
        self.verbose = verbose
        self.dir = pathlib.Path("/nonexistent")
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.timings: dict[str, float] = {}
        self.token = secrets.token_hex(24)
        self.server = f"https://{NODE_IP}:{APISERVER_PORT}"
        self.state: dict[str, Any] = {}
        self._kube: Any = None
        self._lock: Any = None
        self.stopped: dict[str, Any] = {}  # the state of the run stop() tore down
        self._t0 = time.monotonic()
        self.function_package = (
            f"{NODE_IP}:{POD_REGISTRY_PORT}/{FUNCTION_REPOSITORY}:{FUNCTION_TAG}"
        )

    # --- public ---------------------------------------------------------------------------------

    @property
    def kube(self) -> Any:
        """The API client (an admin token in system:masters)."""
        if self._kube is None:
            msg = "the node is not started"
            raise NodeError(msg)
        return self._kube

    @property
    def kubeconfig(self) -> pathlib.Path:
        """The admin kubeconfig."""
        return self.dir / "kubeconfig"

    @property
    def logs(self) -> pathlib.Path:
        """The components' logs (one file each)."""
        return self.dir / "logs"

    def __enter__(self) -> Node:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def say(self, text: str) -> None:
        """Progress on stderr, with the seconds since the start."""
        if self.verbose:
            print(f"[node {time.monotonic() - self._t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the node."""
        done = subprocess.run(
            [str(tool("kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check and done.returncode != 0:
            msg = (
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
            raise NodeError(msg)
        return done

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last lines of a component's log."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def pod_logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's log through the API server (the kubelet serves it)."""
        params = {"container": container} if container else {}
        try:
            return self.kube.request(
                "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params=params
            ).text
        except ApiError as e:
            return f"(no log: {e})"

    def alive(self, name: str) -> bool:
        """Whether the component `name` is still running."""
        return any(n == name and p.poll() is None for n, p in self.procs)

    def describe(self) -> str:
        """How to reach the node, for humans."""
        return "\n".join(
            [
                f"state:       {self.dir}",
                f"API server:  {self.server}",
                f"kubeconfig:  export KUBECONFIG={self.kubeconfig}",
                f"kubectl:     {tool('kubectl')}",
                f"registry:    127.0.0.1:{self.state.get('registry_port')} (push), "
                f"{NODE_IP}:{POD_REGISTRY_PORT} (pods, TLS)",
                f"function:    {self.function_package}",
                f"logs:        {self.logs}/",
                "start-up:    " + ", ".join(f"{k} {v}s" for k, v in self.timings.items()),
            ]
        )

    # --- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the node up, install Crossplane, the function and the APIs."""
        self._t0 = time.monotonic()
        self._preflight()
        self._take_lock()
        recover_stale(self.say)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="bsls-node-"))
        self.logs.mkdir()
        self.state = {
            "dir": str(self.dir),
            "pids": [],
            "sysctls": {n: v for n in SYSCTLS if (v := read_sysctl(n)) is not None},
            "chains": {
                b: {t: sorted(c) for t, c in iptables_chains(b).items()}
                for b in ("iptables", "ip6tables")
            },
            "nft_tables": sorted(nft_tables()),
            "ipsets": sorted(ipsets()),
            "interfaces": [],
            "absent": [p for p in OUTSIDE if not os.path.lexists(p)],
            "programs": node_programs(),
        }
        self._save_state()
        images = self._build()
        self._step("network", self._network)
        self._step("pki", self._pki)
        self._step("etcd", self._etcd)
        self._step("registry", self._registry)
        self._step("images pushed", lambda: self._push(images))
        self._step("kube-apiserver", self._apiserver)
        self._step("controllers", self._controllers)
        self._step("containerd", self._containerd)
        self._step("kube-proxy", self._kube_proxy)
        self._step("node Ready", self._kubelet)
        self._step("NetworkPolicy engine", self._kube_router)
        self._step("CoreDNS", self._coredns)
        self._step("Crossplane", self._crossplane)
        self._step("package Healthy", self._function)
        self._step("APIs", self._apis)

    def _step(self, name: str, fn: Callable[[], None]) -> None:
        start = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - start, 1)
        self.timings[f"{name} (since start)"] = round(time.monotonic() - self._t0, 1)
        self.say(f"{name} ({self.timings[name]}s)")

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            msg = "the node needs root (network interfaces, mounts, cgroups)"
            raise NodeError(msg)
        for prog in (
            "containerd",
            "containerd-shim-runc-v2",
            "runc",
            "ip",
            "iptables",
            "conntrack",
            "skopeo",
            "buildah",
            "ipset",
        ):
            if shutil.which(prog) is None:
                msg = f"{prog} is missing: run hack/node-deps.sh (make node does)"
                raise NodeError(msg)
        for plugin in ("bridge", "host-local", "loopback"):
            if not os.access(f"/usr/lib/cni/{plugin}", os.X_OK):
                msg = f"the CNI plugin {plugin} is missing: run hack/node-deps.sh"
                raise NodeError(msg)
        if not pathlib.Path("/proc/sys/net/bridge").is_dir():
            msg = "br_netfilter is not loaded: kube-proxy cannot see bridged traffic"
            raise NodeError(msg)
        for name in (
            "kubelet",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
            "etcd",
            "registry",
            "crossplane",
            "kube-router",
        ):
            tool(name)

    def _take_lock(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._lock = LOCK_FILE.open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            msg = f"another node runs on this machine ({LOCK_FILE} is locked); stop it first"
            raise NodeError(msg) from None

    def _save_state(self) -> None:
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(STATE_FILE)

    def _build(self) -> list[Any]:
        """The images and the package, built (or found in the cache) before anything starts."""
        start = time.monotonic()
        builder = images.Builder(verbose=self.verbose)
        built = [*builder.node_images()]
        self.package_file = builder.package()
        self.timings["images built"] = round(time.monotonic() - start, 1)
        self.say(f"images ready ({self.timings['images built']}s)")
        return built

    # processes
    def _spawn(
        self, name: str, argv: list[object], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        proc = subprocess.Popen(
            [str(a) for a in argv],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**base, **(env or {})},
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads start processes here
        )
        log.close()
        self.procs.append((name, proc))
        self.state["pids"].append([name, proc.pid])
        self._save_state()
        return proc

    def _alive(self, name: str, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            msg = (
                f"{name} exited with {proc.returncode}; the end of its log:\n{self.log_tail(name)}"
            )
            raise controlplane.ProcessExitedError(msg)

    # --- the network ----------------------------------------------------------------------------

    def _network(self) -> None:
        self.state["interfaces"] = [BRIDGE]
        self._save_state()
        # This kernel has no dummy interfaces (CONFIG_DUMMY is not set): the node's
        # address sits on the pods' bridge, beside the pods' gateway.
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", BRIDGE])
        run(["ip", "addr", "add", f"{POD_GATEWAY}/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        # Services are routed onto the bridge (kube-proxy rewrites them to pod addresses);
        # everything else in the block goes nowhere, never to the machine's default route.
        run(["ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE])
        run(["ip", "route", "add", "unreachable", str(BLOCK)])
        write_sysctl(f"net.ipv4.conf.{BRIDGE}.forwarding", "1")
        run(["iptables", "-N", GUARD_CHAIN])
        run(["iptables", "-A", GUARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN"])
        run(["iptables", "-A", GUARD_CHAIN, "-i", BRIDGE, "-j", "DROP"])
        run(["iptables", "-I", "FORWARD", "1", "-j", GUARD_CHAIN])

    # --- certificates ---------------------------------------------------------------------------

    def _pki(self) -> None:
        self.pki = Pki(self.dir / "pki")
        p = self.pki
        p.issue(
            "apiserver",
            "kube-apiserver",
            dns=[
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "localhost",
            ],
            ips=[NODE_IP, KUBERNETES_SVC_IP, "127.0.0.1"],
            server=True,
        )
        p.issue(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            orgs=["system:masters"],
            client=True,
        )
        p.issue("kubelet", f"system:node:{NODE_NAME}", dns=[NODE_NAME], ips=[NODE_IP], server=True)
        p.issue(
            "registry",
            "bsls-node-registry",
            dns=["localhost"],
            ips=[NODE_IP, "127.0.0.1"],
            server=True,
        )
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        p.write("sa.key", _pem_key(sa))
        p.write(
            "sa.pub",
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        p.write("tokens.csv", f'{self.token},admin,admin,"system:masters"\n'.encode())
        kc = self.dir / "kubeconfigs"
        kc.mkdir()
        p.kubeconfig(kc / "controller-manager.conf", self.server, "system:kube-controller-manager")
        p.kubeconfig(kc / "scheduler.conf", self.server, "system:kube-scheduler")
        p.kubeconfig(kc / "kubelet.conf", self.server, f"system:node:{NODE_NAME}", ["system:nodes"])
        p.kubeconfig(kc / "proxy.conf", self.server, "system:kube-proxy")
        p.kubeconfig(kc / "kube-router.conf", self.server, "system:kube-router")
        self._write_admin_kubeconfig()

    def _write_admin_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": NODE_NAME,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(
                            self.pki.ca.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": NODE_NAME, "context": {"cluster": NODE_NAME, "user": "admin"}}],
            "current-context": NODE_NAME,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    # --- etcd, the registry, kube-apiserver, the controllers ------------------------------------

    def _etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                tool("etcd"),
                "--name=bsls-node",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=bsls-node=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            self._alive("etcd", proc)
            return (
                controlplane.LOCAL.get(f"{self.etcd_url}/health", timeout=2).json().get("health")
                == "true"
            )

        wait_for(healthy, 30, "etcd to be healthy")

    def _registry(self) -> None:
        """Two registry processes on one storage.

        One on loopback (plain HTTP) takes the pushes and serves containerd; a read-only
        one on the node's address, with TLS, serves what pods pull (Crossplane's package
        manager).
        """
        storage = self.dir / "registry"
        storage.mkdir()
        port = free_port()
        self.state["registry_port"] = port
        self.registry = f"127.0.0.1:{port}"
        crt, key = self.pki.dir / "registry.crt", self.pki.dir / "registry.key"
        for name, addr, tls, readonly in (
            ("registry", self.registry, None, False),
            ("registry-pods", f"{NODE_IP}:{POD_REGISTRY_PORT}", (crt, key), True),
        ):
            config: dict[str, Any] = {
                "version": 0.1,
                "log": {"level": "warn", "accesslog": {"disabled": True}},
                "storage": {
                    "filesystem": {"rootdirectory": str(storage)},
                    "maintenance": {
                        "uploadpurging": {"enabled": False},
                        "readonly": {"enabled": readonly},
                    },
                },
                "http": {"addr": addr, "debug": {"addr": ""}},
            }
            if tls:
                config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
            path = self.dir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config))
            proc = self._spawn(
                name, [tool("registry"), "serve", path], env={"OTEL_TRACES_EXPORTER": "none"}
            )
            scheme = "https" if tls else "http"

            def up(
                proc: subprocess.Popen = proc,
                name: str = name,
                addr: str = addr,
                scheme: str = scheme,
            ) -> bool:
                self._alive(name, proc)
                return requests.get(f"{scheme}://{addr}/v2/", timeout=2, verify=str(self.pki.ca)).ok

            wait_for(up, 30, f"{name} to serve")

    def _push(self, built: list[Any]) -> None:
        """Every image into the registry under its own name, and the Function package."""
        commands = [
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"docker-archive:{image.path}",
                # The reference without its registry host: containerd's mirrors map it back.
                f"docker://{self.registry}/{image.name.split('/', 1)[1]}",
            ]
            for image in built
        ]
        commands.append(
            [
                tool("crossplane"),
                "xpkg",
                "push",
                f"--package-files={self.package_file}",
                f"{self.registry}/{FUNCTION_REPOSITORY}:{FUNCTION_TAG}",
            ]
        )
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for done in [pool.submit(run, c) for c in commands]:
                done.result()

    def _apiserver(self) -> None:
        p = self.pki.dir
        proc = self._spawn(
            "kube-apiserver",
            [
                tool("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={NODE_IP}",
                f"--advertise-address={NODE_IP}",
                f"--secure-port={APISERVER_PORT}",
                f"--cert-dir={self.dir / 'apiserver'}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={self.pki.ca}",
                f"--token-auth-file={p / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={self.pki.ca}",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._kube = Kube(self.server, self.token, self.pki.ca)

        def ready() -> bool:
            self._alive("kube-apiserver", proc)
            return self.kube.request("GET", "/readyz").text.strip() == "ok"

        wait_for(ready, 120, "kube-apiserver to be ready")

    def _controllers(self) -> None:
        kc = self.dir / "kubeconfigs"
        p = self.pki.dir
        self._spawn(
            "kube-controller-manager",
            [
                tool("kube-controller-manager"),
                f"--kubeconfig={kc / 'controller-manager.conf'}",
                f"--authentication-kubeconfig={kc / 'controller-manager.conf'}",
                f"--authorization-kubeconfig={kc / 'controller-manager.conf'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={self.pki.ca}",
                f"--cluster-signing-cert-file={self.pki.ca}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allocate-node-cidrs=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                tool("kube-scheduler"),
                f"--kubeconfig={kc / 'scheduler.conf'}",
                f"--authentication-kubeconfig={kc / 'scheduler.conf'}",
                f"--authorization-kubeconfig={kc / 'scheduler.conf'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )

        def default_sa() -> bool:
            # The ServiceAccount controller is up once `default` has its ServiceAccount.
            for name, proc in self.procs:
                if name in ("kube-controller-manager", "kube-scheduler"):
                    self._alive(name, proc)
            return self.kube.get("v1", "ServiceAccount", "default", "default") is not None

        wait_for(default_sa, 60, "the controller manager to create the default ServiceAccount")

    # --- containerd, kubelet, kube-proxy --------------------------------------------------------

    def _containerd(self) -> None:
        c = self.dir / "containerd"
        certs = c / "certs.d"
        for host in MIRRORED:
            folder = certs / host
            folder.mkdir(parents=True)
            (folder / "hosts.toml").write_text(
                f'server = "http://{self.registry}"\n\n'
                f'[host."http://{self.registry}"]\n  capabilities = ["pull", "resolve"]\n'
            )
        pods = certs / f"{NODE_IP}:{POD_REGISTRY_PORT}"
        pods.mkdir(parents=True)
        (pods / "hosts.toml").write_text(
            f'server = "https://{NODE_IP}:{POD_REGISTRY_PORT}"\n\n'
            f'[host."https://{NODE_IP}:{POD_REGISTRY_PORT}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{self.pki.ca}"\n'
        )
        cni = self.dir / "cni"
        (cni / "net.d").mkdir(parents=True)
        (cni / "net.d" / "10-bsls.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "bsls-pods",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            # The gateway address is on the bridge already: with isGateway
                            # the plugin would turn on forwarding for every interface.
                            "isGateway": False,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [
                                    [
                                        {
                                            "subnet": POD_CIDR,
                                            "rangeStart": "198.18.1.10",
                                            "gateway": POD_GATEWAY,
                                        }
                                    ]
                                ],
                                "routes": [{"dst": str(BLOCK), "gw": POD_GATEWAY}],
                                "dataDir": str(cni / "ipam"),
                            },
                        }
                    ],
                },
                indent=1,
            )
        )
        self.containerd_socket = c / "containerd.sock"
        config = f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_NAME}"
  # This machine does not let a process lower its oom_score_adj, and kubelet asks for
  # -998 (sandboxes) and -997 (Guaranteed pods): clamp to containerd's own value instead.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{shutil.which("runc")}"
        Root = "{c / "runc"}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni / "net.d"}"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"""
        path = c / "config.toml"
        path.write_text(config)
        proc = self._spawn("containerd", ["containerd", f"--config={path}"])

        def up() -> bool:
            self._alive("containerd", proc)
            return run(["ctr", f"--address={self.containerd_socket}", "version"], check=False) != ""

        wait_for(up, 30, "containerd to serve")

    def _kubelet(self) -> None:
        k = self.dir / "kubelet"
        k.mkdir()
        (k / "resolv.conf").write_text("")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "tlsCertFile": str(self.pki.dir / "kubelet.crt"),
            "tlsPrivateKeyFile": str(self.pki.dir / "kubelet.key"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.pki.ca)},
            },
            "authorization": {"mode": "Webhook"},
            # cgroups here are v1 and stay as they are (the machine's agent lives there).
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDomain": "cluster.local",
            "clusterDNS": [DNS_IP],
            "resolvConf": str(k / "resolv.conf"),
            "podLogsDir": str(self.dir / "pod-logs"),
            "failSwapOn": False,
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "shutdownGracePeriod": "0s",
            "shutdownGracePeriodCriticalPods": "0s",
        }
        path = k / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        # kubelet wants its cgroupRoot to exist in every hierarchy; a v1 cpuset cgroup
        # needs its cpus and mems before it can hold a process.
        for mount in cgroup_mounts():
            (mount / CGROUP_ROOT).mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (mount / name).exists():
                    (mount / CGROUP_ROOT / name).write_text((mount / name).read_text())
        proc = self._spawn(
            "kubelet",
            [
                tool("kubelet"),
                f"--config={path}",
                f"--kubeconfig={self.dir / 'kubeconfigs' / 'kubelet.conf'}",
                f"--root-dir={k / 'root'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )

        def ready() -> bool:
            self._alive("kubelet", proc)
            node = self.kube.get("v1", "Node", NODE_NAME)
            return condition(node, "Ready").get("status") == "True"

        wait_for(ready, 120, "the node to be Ready")

    def _kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.dir / "kubeconfigs" / "proxy.conf")},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": [f"{NODE_IP}/32"],
            # Leave the machine's conntrack limits and route_localnet as they are.
            "iptables": {"localhostNodePorts": False},
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
                "udpTimeout": "0s",
                "udpStreamTimeout": "0s",
            },
        }
        path = self.dir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [tool("kube-proxy"), f"--config={path}", "--v=1"])

    def _kube_router(self) -> None:
        """kube-router with its network policy controller alone: no routes, no proxy.

        It puts the chains it needs (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) into the
        filter table and jumps to them from INPUT, FORWARD and OUTPUT; a pod that a
        NetworkPolicy selects gets a chain that REJECTs what no policy admits. Bridged
        traffic reaches FORWARD through br_netfilter, after the node's guard chain has
        returned for bridge-to-bridge packets. Teardown removes the chains (their names
        start with KUBE-) and the ipsets that were not there before the run.
        """
        self.apply_file(MANIFESTS / "kube-router.yaml")
        proc = self._spawn(
            "kube-router",
            [
                tool("kube-router"),
                f"--kubeconfig={self.dir / 'kubeconfigs' / 'kube-router.conf'}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--run-loadbalancer=false",
                "--enable-ipv4=true",
                "--enable-ipv6=false",
                f"--hostname-override={NODE_NAME}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--health-port=0",
                "--metrics-port=0",
                "--iptables-sync-period=1m",
                "--v=1",
            ],
        )

        def enforcing() -> bool:
            self._alive("kube-router", proc)
            return "KUBE-ROUTER-FORWARD" in iptables_chains("iptables").get("filter", set())

        wait_for(enforcing, 60, "kube-router to install its chains")

    def restart(self, name: str) -> float:
        """Restart kubelet or containerd as a service manager would; the seconds it took.

        SIGTERM, wait for it to end, start it again with the same command line, wait until
        it serves again. The containers keep running: containerd's shims hold them.
        """
        index = next(i for i, (n, _) in enumerate(self.procs) if n == name)
        proc = self.procs[index][1]
        argv = list(proc.args)
        start = time.monotonic()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        del self.procs[index]
        self.state["pids"] = [[n, p.pid] for n, p in self.procs]
        new = self._spawn(name, argv)
        if name == "containerd":

            def serves() -> bool:
                self._alive(name, new)
                return (
                    run(["ctr", f"--address={self.containerd_socket}", "version"], check=False)
                    != ""
                )

            wait_for(serves, 60, "containerd to serve again")
        elif name == "kubelet":

            def ready() -> bool:
                # The node's status is rewritten only when it changes (or every 5 min);
                # the new kubelet renews the node's Lease every 10 s.
                self._alive(name, new)
                node = self.kube.get("v1", "Node", NODE_NAME)
                lease = self.kube.get(
                    "coordination.k8s.io/v1", "Lease", NODE_NAME, "kube-node-lease"
                )
                renewed = ((lease or {}).get("spec") or {}).get("renewTime", "")
                return condition(node, "Ready").get("status") == "True" and renewed > since

            since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            wait_for(ready, 120, "the node to be Ready again")
        return round(time.monotonic() - start, 1)

    # --- add-ons: CoreDNS, Crossplane, the function ---------------------------------------------

    def apply_file(self, path: pathlib.Path, **values: str) -> list[dict]:
        """Server-side apply every document of a YAML file (with ${NAME} filled in)."""
        text = string.Template(path.read_text()).substitute(values) if values else path.read_text()
        return [self.kube.apply(doc) for doc in yaml.safe_load_all(text) if doc]

    def wait_available(self, namespace: str, name: str, timeout: float = 180) -> dict:
        """A Deployment with all its replicas updated and available (the controller says so)."""

        def available() -> dict | None:
            d = self.kube.get("apps/v1", "Deployment", name, namespace)
            status = (d or {}).get("status") or {}
            if (
                d
                and status.get("observedGeneration") == d["metadata"]["generation"]
                and condition(d, "Available").get("status") == "True"
                and status.get("updatedReplicas") == d["spec"].get("replicas", 1)
                and status.get("availableReplicas") == d["spec"].get("replicas", 1)
            ):
                return d
            return None

        try:
            return wait_for(
                available, timeout, f"Deployment {namespace}/{name} to be available", interval=0.5
            )
        except controlplane.ClusterError as e:
            raise NodeError(f"{e}\n{self.pod_report(namespace)}") from None

    def pod_report(self, namespace: str) -> str:
        """The pods of a namespace with their phase, container states and recent events."""
        lines = []
        for pod in self.kube.list("v1", "Pod", namespace):
            status = pod.get("status") or {}
            lines.append(f"pod {pod['metadata']['name']}: {status.get('phase')}")
            for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
                lines.append(
                    f"  {cs['name']}: ready={cs.get('ready')} state={json.dumps(cs.get('state'))}"
                )
        for ev in self.kube.list("v1", "Event", namespace)[-15:]:
            lines.append(
                f"event {ev.get('involvedObject', {}).get('name')}: "
                f"{ev.get('reason')}: {ev.get('message')}"
            )
        return "\n".join(lines)

    def _coredns(self) -> None:
        self.apply_file(MANIFESTS / "coredns.yaml", DNS_IP=DNS_IP)
        self.wait_available("kube-system", "coredns")

    def _crossplane(self) -> None:
        self.kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CROSSPLANE_NS}}
        )
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "bsls-registry-ca", "namespace": CROSSPLANE_NS},
                "data": {"ca.crt": self.pki.ca.read_text()},
            }
        )
        self.apply_file(MANIFESTS / "crossplane.yaml")
        self.apply_file(ROOT / "deploy" / "rbac.yaml")
        self.wait_available(CROSSPLANE_NS, "crossplane", 240)
        self.wait_available(CROSSPLANE_NS, "crossplane-rbac-manager", 240)

    def _function(self) -> None:
        """The Function from the registry, installed by Crossplane's package manager."""
        # The function logs at debug level (each call's "composed" line): the tests count them.
        self.kube.apply(
            {
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "DeploymentRuntimeConfig",
                "metadata": {"name": "function-bsls-debug"},
                "spec": {
                    "deploymentTemplate": {
                        "spec": {
                            "selector": {},
                            "template": {
                                "spec": {
                                    "containers": [{"name": "package-runtime", "args": ["--debug"]}]
                                }
                            },
                        }
                    }
                },
            }
        )
        fn = self.kube.apply(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {"name": FUNCTION_NAME},
                "spec": {
                    "package": self.function_package,
                    "runtimeConfigRef": {"name": "function-bsls-debug"},
                },
            }
        )

        def healthy() -> bool:
            got = self.kube.reload(fn)
            return (
                condition(got, "Installed").get("status") == "True"
                and condition(got, "Healthy").get("status") == "True"
            )

        try:
            wait_for(healthy, 300, "the Function to be installed and healthy", interval=1)
        except controlplane.ClusterError as e:
            got = self.kube.reload(fn) or {}
            raise NodeError(
                f"{e}\nFunction status: {json.dumps(got.get('status'), indent=1)}\n"
                f"{self.pod_report(CROSSPLANE_NS)}"
            ) from None

    def _apis(self) -> None:
        """The XRDs and Compositions, and the deletion guard a platform engineer may add."""
        self.apply_file(ROOT / "deploy" / "deletion-guard.yaml")
        applied = []
        for f in sorted((ROOT / "apis").glob("*/*.yaml")):
            for doc in load_yaml(f):
                applied.append(self.kube.apply(doc))
        for xrd in (d for d in applied if d["kind"] == "CompositeResourceDefinition"):
            wait_for(
                lambda xrd=xrd: (
                    condition(self.kube.reload(xrd), "Established").get("status") == "True"
                ),
                120,
                f"XRD {xrd['metadata']['name']} to be Established",
            )

    def function_pods(self) -> list[dict]:
        """The function's running pods (Crossplane's package runtime made them)."""
        return [
            p
            for p in self.kube.list(
                "v1", "Pod", CROSSPLANE_NS, labels={"pkg.crossplane.io/function": FUNCTION_NAME}
            )
            if (p.get("status") or {}).get("phase") == "Running"
        ]

    def function_log(self) -> str:
        """The function's log (every pod of it)."""
        return "\n".join(
            self.pod_logs(CROSSPLANE_NS, p["metadata"]["name"]) for p in self.function_pods()
        )

    # --- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """End everything this node started and remove what it made, pass or fail."""
        if not self.state:
            self._release_lock()
            return
        teardown(self.state, self.say, keep=self.keep, procs=[p for _, p in self.procs])
        self.procs.clear()
        self.stopped, self.state = self.state, {}
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


# --- teardown, also of a run that was killed ---------------------------------------------------


def recover_stale(say: Callable[[str], None]) -> None:
    """Tear down what a node killed before its teardown left behind (its state file)."""
    if not STATE_FILE.exists():
        return
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        STATE_FILE.unlink()
        return
    say(f"cleaning up an earlier node that did not stop ({state.get('dir')})")
    teardown(state, say, keep=False, procs=[])
    STATE_FILE.unlink()


def _kill(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive_pids(pids: Iterable[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive


def _cgroup_pids() -> set[int]:
    """Every process in the node's cgroups: the pods' containers, nothing else."""
    pids: set[int] = set()
    for mount in cgroup_mounts():
        root = mount / CGROUP_ROOT
        if not root.is_dir():
            continue
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in procs.read_text().split())
    return pids


def node_programs() -> list[str]:
    """The executables of the node's processes: .tools/bin's, containerd's, runc."""
    found = {str(p.resolve()) for p in TOOLS.iterdir()} if TOOLS.is_dir() else set()
    for name in ("containerd", "containerd-shim-runc-v2", "runc"):
        if path := shutil.which(name):
            found.add(str(pathlib.Path(path).resolve()))
    return sorted(found)


def _pids_using(folder: str, programs: Iterable[str]) -> set[int]:
    """The run's components and containerd's shims.

    Processes of the node's own programs whose command line names the run folder, and
    nothing else: a shell tailing a log in the folder is left alone.
    """
    programs = set(programs)
    found = set()
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (
                os.readlink(proc / "exe") in programs
                and folder.encode() in (proc / "cmdline").read_bytes()
            ):
                found.add(int(proc.name))
    return found


def teardown(
    state: dict, say: Callable[[str], None], *, keep: bool, procs: list[subprocess.Popen]
) -> None:
    """Stop the processes, then remove chains, mounts, interfaces, cgroups, the folder."""
    folder = state.get("dir", "")
    _end_processes(state, procs)
    # kube-proxy's own clean-up of its rules, then any KUBE-/CNI-/BSLS- chain (and nft
    # table) that was not there before the run.
    kube_proxy = TOOLS / "kube-proxy"
    if kube_proxy.exists():
        run([kube_proxy, "--cleanup"], check=False, timeout=60)
    _remove_new_chains(state.get("chains", {}))
    # kube-router's ipsets, once no rule refers to them.
    for name in sorted(ipsets() - set(state.get("ipsets", []))):
        run(["ipset", "destroy", name], check=False)
    for table in sorted(nft_tables() - set(state.get("nft_tables", []))):
        run(["nft", "delete", "table", *table.split()], check=False)
    if folder:
        # What the components left outside the run folder (see OUTSIDE), then the mounts
        # under it (kubelet's volumes, containerd's rootfs and network namespaces).
        _remove_outside(state, pathlib.Path(folder))
        for point in mounts_under(pathlib.Path(folder)):
            run(["umount", "-l", point], check=False)
    _remove_network(state)
    # The kernel settings kubelet changed.
    for name, value in state.get("sysctls", {}).items():
        if read_sysctl(name) not in (None, value):
            with contextlib.suppress(OSError):
                write_sysctl(name, value)
    _remove_cgroups()
    if folder and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    say(f"node stopped{' (kept ' + folder + ')' if keep and folder else ''}")


def _end_processes(state: dict, procs: list[subprocess.Popen]) -> None:
    """Every process of the run, at once and for good (its state is thrown away).

    The components and containerd's shims (the node's programs, with the run folder on
    their command line, so a PID reused since a killed run is never hit) and the
    containers (every process in the node's cgroups).
    """
    folder = state.get("dir", "")
    programs = {*state.get("programs", []), *node_programs()}
    for _ in range(100):
        ours = _cgroup_pids() | (_pids_using(folder, programs) if folder else set())
        alive = _alive_pids(ours)
        if not alive:
            break
        _kill(alive, signal.SIGKILL)
        time.sleep(0.1)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _remove_network(state: dict) -> None:
    """Veths left on the bridge, the bridge, and the route for the rest of the block.

    The bridge's addresses and routes go with it; the unreachable route kept the rest of
    198.18.0.0/15 off the machine's default route.
    """
    for line in run(["ip", "-o", "link", "show", "master", BRIDGE], check=False).splitlines():
        veth = line.split(":")[1].strip().split("@")[0]
        run(["ip", "link", "delete", veth], check=False)
    for interface in state.get("interfaces", []):
        run(["ip", "link", "delete", interface], check=False)
    run(["ip", "route", "delete", "unreachable", str(BLOCK)], check=False)


def _remove_cgroups() -> None:
    """The node's cgroups in every hierarchy, deepest first (empty by now)."""
    for mount in cgroup_mounts():
        root = mount / CGROUP_ROOT
        if not root.is_dir():
            continue
        folders = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts))
        for d in [*reversed(folders), root]:
            with contextlib.suppress(OSError):
                d.rmdir()


def leftovers(state: dict) -> list[str]:
    """What a torn-down run left behind on the machine (nothing, if teardown worked)."""
    found = []
    folder = state.get("dir", "")
    if alive := _alive_pids(_cgroup_pids() | _pids_using(folder, state.get("programs", []))):
        found.append(f"processes {sorted(alive)}")
    if folder and (mounts := mounts_under(pathlib.Path(folder))):
        found.append(f"mounts {mounts}")
    for interface in state.get("interfaces", []):
        if pathlib.Path("/sys/class/net", interface).exists():
            found.append(f"interface {interface}")
    for binary in ("iptables", "ip6tables"):
        before = state.get("chains", {}).get(binary, {})
        for table, chains in iptables_chains(binary).items():
            new = {c for c in chains - set(before.get(table, [])) if c.startswith(CHAIN_PREFIXES)}
            if new:
                found.append(f"{binary} {table} chains {sorted(new)}")
    if new_sets := ipsets() - set(state.get("ipsets", [])):
        found.append(f"ipsets {sorted(new_sets)}")
    if tables := nft_tables() - set(state.get("nft_tables", [])):
        found.append(f"nft tables {sorted(tables)}")
    for name, value in state.get("sysctls", {}).items():
        if read_sysctl(name) not in (None, value):
            found.append(f"sysctl {name}={read_sysctl(name)} (was {value})")
    found += [f"cgroup {m / CGROUP_ROOT}" for m in cgroup_mounts() if (m / CGROUP_ROOT).exists()]
    found += [f"path {p}" for p in state.get("absent", []) if os.path.lexists(p)]
    return found


def _remove_outside(state: dict, folder: pathlib.Path) -> None:
    """Remove what the run's components wrote outside its folder (OUTSIDE)."""
    for path in state.get("absent", []):
        shutil.rmtree(path, ignore_errors=True)
    # In folders that were there before: the shim sockets of the run's tasks (named by
    # containerd's SocketAddress: sha256 of address/namespace/id) and libcni's results.
    tasks = folder / "containerd" / "state" / "io.containerd.runtime.v2.task"
    address = str(folder / "containerd" / "containerd.sock")
    ids = []
    for ns in tasks.glob("*") if tasks.is_dir() else []:
        for task in ns.glob("*"):
            ids.append(task.name)
            digest = hashlib.sha256(f"{address}/{ns.name}/{task.name}".encode()).hexdigest()
            pathlib.Path("/run/containerd/s", digest).unlink(missing_ok=True)
    results = pathlib.Path("/var/lib/cni/results")
    for entry in results.glob("*") if results.is_dir() else []:
        if entry.name.startswith("bsls-pods-") or any(i in entry.name for i in ids):
            entry.unlink(missing_ok=True)


def _remove_new_chains(before: dict[str, dict[str, list[str]]]) -> None:
    for binary in ("iptables", "ip6tables"):
        old = {t: set(c) for t, c in before.get(binary, {}).items()}
        now = iptables_chains(binary)
        for table, chains in now.items():
            new = {c for c in chains - old.get(table, set()) if c.startswith(CHAIN_PREFIXES)}
            if not new:
                continue
            # Rules in old chains that jump to a new one, then the new chains themselves.
            for line in run([f"{binary}-save", "-t", table], check=False).splitlines():
                if not line.startswith("-A "):
                    continue
                words = shlex.split(line)
                target = words[words.index("-j") + 1] if "-j" in words else ""
                if words[1] not in new and target in new:
                    run([binary, "-t", table, "-D", words[1], *words[2:]], check=False)
            for chain in new:
                run([binary, "-t", table, "-F", chain], check=False)
            for chain in new:
                run([binary, "-t", table, "-X", chain], check=False)


def main() -> None:
    """`make node`: start the node, print how to reach it, stop it on Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs) at exit")
    args = parser.parse_args()
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Node(keep=args.keep) as node:
        print(node.describe(), flush=True)
        print(
            f"running; Ctrl-C (or kill {os.getpid()}) stops it and removes everything", flush=True
        )
        while not stop["now"]:
            time.sleep(0.5)
            for name, proc in node.procs:
                if proc.poll() is not None:
                    print(f"{name} exited:\n{node.log_tail(name)}", file=sys.stderr)
                    stop["now"] = True


if __name__ == "__main__":
    main()
