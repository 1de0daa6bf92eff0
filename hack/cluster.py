"""A real, local Crossplane control plane for tests: etcd, kube-apiserver, Crossplane, the function.

Everything runs as a plain process on 127.0.0.1 with free ports and keeps its state in one
temporary folder; nothing is installed on the machine and nothing outside that folder is
touched. There is no kube-controller-manager, scheduler or kubelet: objects are stored and
validated and Crossplane composes them, but no Pod ever runs, a Job never completes and
a Deployment never becomes available unless a test writes that status itself, and
ownerReference garbage collection does not happen.

The steps:

1. etcd (one member, no fsync) and kube-apiserver, envtest-style: serving certificate from a
   CA made here, a service-account signing key, a static admin token in `system:masters`,
   RBAC authorisation.
2. `crossplane core init` with the core CRDs from the crossplane module in the Go module
   cache, webhooks off. It creates the TLS CA Secret (`crossplane-root-ca`) and Crossplane's
   client certificate (`crossplane-tls-client`) in crossplane-system.
3. `crossplane core start` with the package runtime External (no Deployments for Functions),
   its client certificate written out from that Secret.
4. The function, `python -m function.main --tls-certs-dir=...` with a server certificate
   signed by Crossplane's CA, then a paused Function and a paused, active FunctionRevision
   whose status endpoint points at it (paused: the package manager never pulls an image).

Use it from Python (`with Cluster() as c:`; `c.kube` is a small API client) or run
`python hack/cluster.py` (what `make cluster` does): it starts everything, prints how to
reach it and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"
CROSSPLANE_MODULE = "github.com/crossplane/crossplane/v2"
CROSSPLANE_NS = "crossplane-system"
CA_SECRET = "crossplane-root-ca"
CLIENT_SECRET = "crossplane-tls-client"
FUNCTION_NAME = "function-bsls"
FUNCTION_PACKAGE = "example.com/bsls/function-bsls:v0.1.0"
PAUSED = "crossplane.io/paused"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ClusterError(RuntimeError):
    """A control-plane component did not start, or an API call failed."""


class ProcessExitedError(ClusterError):
    """A component died: waiting longer cannot help."""


# --- small helpers -------------------------------------------------------------------------


LOCAL = requests.Session()
LOCAL.trust_env = False  # plain HTTP on loopback: no proxy from the environment


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the process that started it dies.

    A killed test run (SIGKILL, a CI timeout) cannot run its teardown; without this its
    etcd, API server and Crossplane would live on in their own sessions.
    """
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Call `check` until it returns something truthy; raise ClusterError after `timeout`.

    Exceptions from `check` count as "not yet"; the last one is part of the error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except ProcessExitedError:
            raise
        except (OSError, requests.RequestException, ClusterError, KeyError) as e:
            value, last = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}" + (
                f" (last error: {last})" if last else ""
            )
            raise ClusterError(msg)
        time.sleep(interval)


def _tool(name: str) -> pathlib.Path:
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        msg = f"{path} is missing: build the pinned cluster tools with `make tools`"
        raise ClusterError(msg)
    return path


def crossplane_crds() -> pathlib.Path:
    """`cluster/crds` of the crossplane module that tools/crossplane-core pins."""
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", CROSSPLANE_MODULE],
        cwd=ROOT / "tools" / "crossplane-core",
        capture_output=True,
        text=True,
        check=False,
    )
    crds = pathlib.Path(out.stdout.strip()) / "cluster" / "crds"
    if out.returncode != 0 or not crds.is_dir():
        msg = f"cannot find the crossplane CRDs in the module cache: {out.stderr.strip()}"
        raise ClusterError(msg)
    return crds


# --- certificates --------------------------------------------------------------------------


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _issue(
    common_name: str,
    *,
    issuer: tuple[x509.Certificate, Any] | None,
    dns: Iterable[str] = (),
    ips: Iterable[str] = (),
    ca: bool = False,
) -> tuple[x509.Certificate, Any]:
    """A certificate valid for a day (self-signed when `issuer` is None) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer_cert.subject if signer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    else:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=False
        ).add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return builder.sign(signer_key, hashes.SHA256()), key


def _load_signer(cert_pem: bytes, key_pem: bytes) -> tuple[x509.Certificate, Any]:
    with warnings.catch_warnings():
        # Crossplane's CA has a five-letter countryName ("Earth"); cryptography warns.
        warnings.simplefilter("ignore", UserWarning)
        cert = x509.load_pem_x509_certificate(cert_pem)
        _ = cert.subject.rfc4514_string()
    return cert, serialization.load_pem_private_key(key_pem, password=None)


# --- a minimal Kubernetes API client -------------------------------------------------------


class Kube:
    """Just enough of the Kubernetes API for the tests, over HTTPS with a bearer token.

    Objects are plain dicts. Paths come from API discovery, refreshed when a kind is
    unknown (a new CRD).
    """

    def __init__(self, server: str, token: str, ca_file: pathlib.Path) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.verify = str(ca_file)
        # Not the environment's CA bundle or proxies: REQUESTS_CA_BUNDLE would override
        # `verify`, and a proxy has no business on loopback.
        self.session.trust_env = False
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}

    # raw requests
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One API request; raises ClusterError with the server's message on failure."""
        kwargs.setdefault("timeout", 30)
        r = self.session.request(method, self.server + path, **kwargs)
        if r.status_code >= 400:
            raise ApiError(method, path, r)
        return r

    # discovery
    def _discover(self, api_version: str) -> None:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        for res in self.request("GET", base).json().get("resources", []):
            if "/" not in res["name"]:
                self._kinds[(api_version, res["kind"])] = (res["name"], res["namespaced"])

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind."""
        key = (api_version, kind)
        if key not in self._kinds:
            with contextlib.suppress(ApiError):
                self._discover(api_version)
        if key not in self._kinds:
            msg = f"the API server does not serve {kind}.{api_version}"
            raise ClusterError(msg)
        return self._kinds[key]

    def path(
        self,
        api_version: str,
        kind: str,
        name: str | None = None,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of a kind, an object, or an object's subresource."""
        plural, namespaced = self.resource(api_version, kind)
        p = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{plural}"
        if name:
            p += f"/{name}"
        if subresource:
            p += f"/{subresource}"
        return p

    def _obj_path(self, obj: dict, subresource: str | None = None) -> str:
        meta = obj["metadata"]
        return self.path(
            obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), subresource
        )

    # verbs
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict | None:
        """An object, or None if it does not exist."""
        try:
            return self.request("GET", self.path(api_version, kind, name, namespace)).json()
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> list[dict]:
        """Objects of a kind, in one namespace or all."""
        params = {}
        if labels:
            params["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        items = self.request(
            "GET", self.path(api_version, kind, namespace=namespace), params=params
        ).json()["items"]
        for item in items:  # list items carry neither
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def create(self, obj: dict) -> dict:
        """Create an object; ApiError (409) if it exists."""
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"))
        return self.request("POST", path, json=obj).json()

    def apply(self, obj: dict, manager: str = "bsls-tests") -> dict:
        """Server-side apply (forced): create or update the fields this manager owns."""
        return self.request(
            "PATCH",
            self._obj_path(obj),
            params={"fieldManager": manager, "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        ).json()

    def patch(self, obj: dict, patch: dict, subresource: str | None = None) -> dict:
        """A JSON merge patch, to the object or to a subresource such as `status`."""
        return self.request(
            "PATCH",
            self._obj_path(obj, subresource),
            data=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        ).json()

    def delete(self, obj: dict) -> None:
        """Delete an object; a missing one is fine."""
        try:
            self.request("DELETE", self._obj_path(obj))
        except ApiError as e:
            if e.status != 404:
                raise

    def reload(self, obj: dict) -> dict | None:
        """The current version of `obj`, or None if it is gone."""
        meta = obj["metadata"]
        return self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


class ApiError(ClusterError):
    """The API server refused a request."""

    def __init__(self, method: str, path: str, r: requests.Response) -> None:
        self.status = r.status_code
        try:
            body = r.json()
            self.message = body.get("message", r.text)
            self.reason = body.get("reason", "")
        except ValueError:
            self.message, self.reason = r.text, ""
        super().__init__(f"{method} {path}: {self.status} {self.reason}: {self.message}")


def load_yaml(path: pathlib.Path) -> list[dict]:
    """Every document in a YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def condition(obj: dict | None, typ: str) -> dict:
    """A condition of an object's status by type, or {}."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c
    return {}


# --- the control plane ---------------------------------------------------------------------


class Cluster:
    """etcd + kube-apiserver + Crossplane + the function, on loopback, state in a temp dir."""

    def __init__(
        self,
        workdir: pathlib.Path | None = None,
        *,
        keep: bool = False,
        crossplane_args: Iterable[str] = (),
    ) -> None:
        self.owns_workdir = workdir is None
        self.dir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="bsls-cluster-"))
        self.keep = keep
        self.crossplane_args = list(crossplane_args)
        self.logs = self.dir / "logs"
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.token = secrets.token_hex(24)
        self.server = ""
        self.kubeconfig = self.dir / "kubeconfig"
        self.function_address = ""
        self.timings: dict[str, float] = {}
        self._kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        """The API client (admin)."""
        if self._kube is None:
            msg = "the cluster is not started"
            raise ClusterError(msg)
        return self._kube

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # processes
    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [str(a) for a in argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopped as a whole, never a neighbour
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads start processes here
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def _alive(self, name: str, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            tail = self.log_tail(name)
            msg = f"{name} exited with {proc.returncode}; the end of its log:\n{tail}"
            raise ProcessExitedError(msg)

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a component's log."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def alive(self, name: str) -> bool:
        """Whether the component `name` is still running."""
        return any(n == name and p.poll() is None for n, p in self.procs)

    def function_calls(self, xr_name: str) -> int:
        """How many RunFunction calls for an XR named `xr_name` the function has logged.

        Counts the function's debug line "composed", in its console or JSON format.
        """
        path = self.logs / "function.log"
        if not path.exists():
            return 0
        names = (f"name={xr_name} ", f'"name": "{xr_name}"', f'"name":"{xr_name}"')
        count = 0
        for raw in path.read_text(errors="replace").splitlines():
            line = ANSI.sub("", raw) + " "
            if "composed" in line and any(n in line for n in names):
                count += 1
        return count

    def stop(self) -> None:
        """Stop every process this cluster started (newest first) and remove the temp dir."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()
        if self.owns_workdir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _timed(self, step: str, fn: Callable[[], None]) -> None:
        start = time.monotonic()
        fn()
        self.timings[step] = round(time.monotonic() - start, 1)

    def start(self) -> None:
        """Bring up the control plane and register the function."""
        atexit.register(self.stop)  # an interpreter exit without teardown stops it too
        self._timed("etcd", self._etcd)
        self._timed("kube-apiserver", self._apiserver)
        self._timed("crossplane init", self._crossplane_init)
        self._timed("function", self._function)
        self._timed("crossplane start", self._crossplane_start)
        self._timed("function registered", self._register_function)

    def _etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                _tool("etcd"),
                "--name=bsls",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=bsls=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # throw-away state: speed over durability
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            self._alive("etcd", proc)
            return LOCAL.get(f"{self.etcd_url}/health", timeout=2).json().get("health") == "true"

        wait_for(healthy, 30, "etcd to be healthy")

    def _apiserver(self) -> None:
        pki = self.dir / "pki"
        pki.mkdir(parents=True)
        ca = _issue("bsls-test-cluster-ca", issuer=None, ca=True)
        serving = _issue(
            "kube-apiserver",
            issuer=ca,
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            ips=["127.0.0.1", "10.0.0.1"],
        )
        (pki / "ca.crt").write_bytes(_pem_cert(ca[0]))
        (pki / "apiserver.crt").write_bytes(_pem_cert(serving[0]) + _pem_cert(ca[0]))
        (pki / "apiserver.key").write_bytes(_pem_key(serving[1]))
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(_pem_key(sa))
        (pki / "sa.pub").write_bytes(
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (pki / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        for f in pki.iterdir():
            f.chmod(0o600)
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        proc = self._spawn(
            "kube-apiserver",
            [
                _tool("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.dir / 'apiserver'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # The `kubernetes` Service cannot point at a loopback address.
                "--endpoint-reconciler-type=none",
                # No controller-manager creates the `default` ServiceAccount.
                "--disable-admission-plugins=ServiceAccount",
                "--v=1",
            ],
        )
        self._kube = Kube(self.server, self.token, pki / "ca.crt")
        self._write_kubeconfig(pki / "ca.crt")

        def ready() -> bool:
            self._alive("kube-apiserver", proc)
            return self.kube.request("GET", "/readyz").text.strip() == "ok"

        wait_for(ready, 90, "kube-apiserver to be ready")

    def _write_kubeconfig(self, ca_file: pathlib.Path) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "bsls",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(
                            ca_file.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "bsls", "context": {"cluster": "bsls", "user": "admin"}}],
            "current-context": "bsls",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig), "POD_NAMESPACE": CROSSPLANE_NS}

    def _crossplane_init(self, attempts: int = 5) -> None:
        """Run `crossplane core init` until it succeeds, as the init container is retried.

        It applies the core CRDs and then at once creates objects of those kinds; when its
        client has not yet discovered a new CRD it fails ("no matches for kind") and the
        next run finds everything in place.
        """
        self.kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CROSSPLANE_NS}}
        )
        env = {
            **self._env(),
            # The Helm chart's variables (kong spells the flags --cr-ds-path, --tlsca-...).
            "CRDS_PATH": str(crossplane_crds()),
            "ENABLE_WEBHOOKS": "false",
            "TLS_CA_SECRET_NAME": CA_SECRET,
            "TLS_CLIENT_SECRET_NAME": CLIENT_SECRET,
        }
        for attempt in range(1, attempts + 1):
            proc = self._spawn(
                "crossplane-init",
                [_tool("crossplane-core"), "core", "init", f"--namespace={CROSSPLANE_NS}"],
                env=env,
            )
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.procs.remove(("crossplane-init", proc))
            if proc.returncode == 0:
                return
            if attempt == attempts:
                msg = f"crossplane core init failed {attempts} times:\n"
                raise ClusterError(msg + self.log_tail("crossplane-init"))
            time.sleep(1)

    def _secret(self, name: str) -> dict[str, bytes]:
        s = self.kube.get("v1", "Secret", name, CROSSPLANE_NS)
        if not s:
            msg = f"Secret {CROSSPLANE_NS}/{name} does not exist"
            raise ClusterError(msg)
        return {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}

    def _function(self) -> None:
        """Run the function with a server certificate from Crossplane's CA (mTLS both ways)."""
        ca = self._secret(CA_SECRET)
        signer = _load_signer(ca["tls.crt"], ca["tls.key"])
        cert, key = _issue(FUNCTION_NAME, issuer=signer, dns=["localhost"], ips=["127.0.0.1"])
        certs = self.dir / "function-tls"
        certs.mkdir()
        (certs / "tls.crt").write_bytes(_pem_cert(cert))
        (certs / "tls.key").write_bytes(_pem_key(key))
        (certs / "ca.crt").write_bytes(ca["tls.crt"])  # whom to accept: Crossplane's clients
        port = free_port()
        self.function_address = f"127.0.0.1:{port}"
        proc = self._spawn(
            "function",
            [
                sys.executable,
                "-m",
                "function.main",
                f"--tls-certs-dir={certs}",
                f"--address={self.function_address}",
                "--debug",
            ],
        )

        def listening() -> bool:
            self._alive("function", proc)
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True

        wait_for(listening, 30, "the function to listen")

    def _crossplane_start(self) -> None:
        client = self._secret(CLIENT_SECRET)
        certs = self.dir / "crossplane-tls-client"
        certs.mkdir()
        for k in ("ca.crt", "tls.crt", "tls.key"):
            (certs / k).write_bytes(client[k])
        health = free_port()
        proc = self._spawn(
            "crossplane",
            [
                _tool("crossplane-core"),
                "core",
                "start",
                "--debug",
                f"--namespace={CROSSPLANE_NS}",
                "--package-runtime=External",
                "--enable-webhooks=false",
                f"--tls-client-certs-dir={certs}",
                f"--xpkg-cache-dir={self.dir / 'xpkg-cache'}",
                f"--metrics-port={free_port()}",
                f"--health-probe-port={health}",
                f"--webhook-port={free_port()}",
                *self.crossplane_args,
            ],
            env=self._env(),
        )

        def healthy() -> bool:
            self._alive("crossplane", proc)
            return LOCAL.get(f"http://127.0.0.1:{health}/readyz", timeout=2).ok

        wait_for(healthy, 60, "crossplane to be ready")

    def _register_function(self) -> None:
        """A paused Function and an active, paused FunctionRevision pointing at the process."""
        labels = {"pkg.crossplane.io/package": FUNCTION_NAME}
        self.kube.apply(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {"name": FUNCTION_NAME, "annotations": {PAUSED: "true"}},
                "spec": {"package": FUNCTION_PACKAGE, "skipDependencyResolution": True},
            }
        )
        revision = self.kube.apply(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "FunctionRevision",
                "metadata": {
                    "name": f"{FUNCTION_NAME}-local",
                    "labels": labels,
                    "annotations": {PAUSED: "true"},
                },
                "spec": {
                    "image": FUNCTION_PACKAGE,
                    "desiredState": "Active",
                    "revision": 1,
                    "ignoreCrossplaneConstraints": True,
                    "skipDependencyResolution": True,
                },
            }
        )
        status = {
            "endpoint": self.function_address,
            "capabilities": ["composition"],
        }

        def endpoint_set() -> bool:
            # The (paused) revision controller writes status too: re-apply until it sticks.
            self.kube.patch(revision, {"status": status}, subresource="status")
            time.sleep(0.5)
            got = self.kube.reload(revision) or {}
            return (got.get("status") or {}).get("endpoint") == self.function_address

        wait_for(endpoint_set, 30, "the FunctionRevision endpoint to stick")

    def describe(self) -> str:
        """How to reach the cluster, for humans."""
        return "\n".join(
            [
                f"state:       {self.dir}",
                f"API server:  {self.server}",
                f"kubeconfig:  export KUBECONFIG={self.kubeconfig}",
                f"function:    {self.function_address} (mTLS, Crossplane's CA)",
                f"logs:        {self.logs}/{{etcd,kube-apiserver,crossplane,function}}.log",
                "start-up:    " + ", ".join(f"{k} {v}s" for k, v in self.timings.items()),
            ]
        )


def main() -> None:
    """`make cluster`: start the control plane, print how to reach it, stop it on Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--apis", action="store_true", help="also install the XRDs and Compositions"
    )
    parser.add_argument("--keep", action="store_true", help="keep the state folder at exit")
    args = parser.parse_args()
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Cluster(keep=args.keep) as cluster:
        if args.apis:
            for f in sorted((ROOT / "apis").glob("*/*.yaml")):
                for doc in load_yaml(f):
                    cluster.kube.apply(doc)
        print(cluster.describe(), flush=True)
        print("running; Ctrl-C stops everything", flush=True)
        while not stop["now"]:
            time.sleep(0.5)
            for name, proc in cluster.procs:
                if proc.poll() is not None:
                    print(f"{name} exited:\n{cluster.log_tail(name)}", file=sys.stderr)
                    stop["now"] = True


if __name__ == "__main__":
    main()
