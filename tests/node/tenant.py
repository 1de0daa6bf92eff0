"""What the node tests do, as an app team and its VM owners would: namespaces, Secrets,
claims, BSLRs and BSLSs from the examples, and VMs that run the stock kopia.

An app team's namespace enforces Pod Security "restricted" (real admission). Its
claims are bound to static hostPath PersistentVolumes the test creates (the node has
no provisioner), folders under the node's run folder that outlive every pod.

A VM is a pod labelled as KubeVirt's virt-launcher pods are (`kubevirt.io:
virt-launcher`, `vm.kubevirt.io/name`), running the stock kopia from the kopia image
with the user's credentials Secret mounted as a volume (the bundle, as KubeVirt hands a
Secret to a VM as a disk). The VM owner connects with the bundle's own
`connect-linux.sh` and runs later commands with the SSL_CERT_FILE it recorded, as
docs/vm-user-guide.md says; kopia keeps its configuration, password and caches under
$HOME, as a natively installed kopia does (the image's own /app paths are for root).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import hashlib
import importlib.util
import io
import json
import pathlib
import random
import re
import shlex
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GROUP_VERSION = "dataprotection.bsls.dev/v1alpha1"
BSLR = "BackupStorageLocationRepository"
BSLS = "BackupStorageLocationServer"
CRN = "crossplane.io/composition-resource-name"
COMPOSITE = "crossplane.io/composite"
TOUCH = "test.bsls.dev/touched"
ALLOW_DELETION = "dataprotection.bsls.dev/allow-deletion"  # deploy/deletion-guard.yaml
KOPIA_IMAGE = "kopia/kopia:0.23.1"
RESTRICTED = "pod-security.kubernetes.io/enforce"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Seconds for anything the controllers do after a change they watch: a Job's pod runs,
# a Deployment rolls out, Crossplane reconciles (the slowest step is an image pull).
T = 120
# Crossplane re-reads required resources (the BSLR, the password Secrets) only when it
# calls the function again, unless something it watches changes: after the TTL the
# function answers with (the input's pollSeconds at ease, pollInFlightSeconds while
# something is in flight), or at its own poll interval (60 s) without one. A wait for
# such a change allows well over the longest of these.
POLL = 150
# Milestones the session measured, printed at its end (conftest.py).
MILESTONES: dict[str, float] = {}
# Other figures the session measured (name -> value, unit), printed beside them.
FIGURES: dict[str, tuple[float, str]] = {}

# Kinds a BSLS or BSLR composes (README.md, "What gets composed").
COMPOSED_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


def node_module() -> ModuleType:
    """hack/node.py, loaded once."""
    name = "bsls_node"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "hack" / "node.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def api_error() -> type[Exception]:
    """The API client's error type."""
    return node_module().ApiError


# --- waiting ---------------------------------------------------------------------------------


def wait(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}"
            raise AssertionError(msg)
        time.sleep(interval)


def condition(obj: dict | None, typ: str) -> dict:
    """A status condition by type, or {}."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c
    return {}


def is_true(obj: dict | None, typ: str) -> bool:
    """Whether condition `typ` is True."""
    return condition(obj, typ).get("status") == "True"


def docs(path: pathlib.Path) -> list[dict]:
    """Every YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def example(name: str, namespace: str) -> list[dict]:
    """The documents of examples/<name>, moved to `namespace`."""
    out = []
    for doc in docs(EXAMPLES / name):
        moved = copy.deepcopy(doc)
        moved["metadata"]["namespace"] = namespace
        out.append(moved)
    return out


def secret_data(obj: dict | None) -> dict[str, str]:
    """A Secret's data, decoded as text."""
    return {k: base64.b64decode(v).decode() for k, v in ((obj or {}).get("data") or {}).items()}


def password_secret(name: str, namespace: str, password: str, key: str = "password") -> dict:
    """A password Secret as an app team writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(password.encode()).decode()},
    }


# --- S3 -------------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_s3(node: Any) -> Iterator[dict]:
    """moto's S3 server, a process of its own on the node's address (so pods reach it, and
    no other module shares its buckets): its endpoint and a client; stopped at the end."""
    try:
        import boto3
        import moto.server  # noqa: F401 - the server below runs it
    except ImportError:
        pytest.fail("moto's server mode is missing: run `make venv` (moto[server])", pytrace=False)
    nodes = node_module()
    address = nodes.NODE_IP
    port = nodes.free_port(address)
    log = (node.logs / "moto.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", address, "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=nodes.die_with_parent,  # noqa: PLW1509 - no threads start processes here
    )
    log.close()
    endpoint = f"http://{address}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="change-me",  # examples/secrets.yaml (moto accepts any)
        aws_secret_access_key="change-me",
    )
    try:
        wait(lambda: _answers(client), 30, "moto to serve")
        yield {"endpoint": endpoint, "client": client}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(client: Any) -> bool:
    import botocore.exceptions

    try:
        client.list_buckets()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True


# --- the app team ----------------------------------------------------------------------------


@dataclasses.dataclass
class Tenant:
    """An app team's namespace on the node."""

    node: Any
    namespace: str

    @property
    def kube(self) -> Any:
        """The API client."""
        return self.node.kube

    def create(self, secrets: bool = True) -> Tenant:
        """The namespace (Pod Security "restricted", enforced) and the example Secrets."""
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": self.namespace,
                    "labels": {RESTRICTED: "restricted", f"{RESTRICTED}-version": "latest"},
                },
            }
        )
        if secrets:
            for secret in example("secrets.yaml", self.namespace):
                self.kube.apply(secret)
        return self

    def claim(self, name: str, size: str = "2Gi") -> pathlib.Path:
        """A PVC bound to a static hostPath PV: a folder under the run folder (returned)."""
        folder = self.node.dir / "volumes" / f"{self.namespace}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # as a local-path provisioner makes it: hostPath is never chowned
        pv = f"{self.namespace}-{name}"
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "claimRef": {"namespace": self.namespace, "name": name},
                    "hostPath": {"path": str(folder), "type": "Directory"},
                },
            }
        )
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": size}},
                    "volumeName": pv,
                },
            }
        )
        wait(
            lambda: (
                (self.kube.get("v1", "PersistentVolumeClaim", name, self.namespace) or {})
                .get("status", {})
                .get("phase")
                == "Bound"
            ),
            T,
            f"claim {self.namespace}/{name} to be bound",
        )
        return folder

    def apply(self, obj: dict) -> dict:
        """Server-side apply, in this namespace."""
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = self.namespace
        return self.kube.apply(obj)

    def get(self, kind: str, name: str) -> dict | None:
        """A BSLR or BSLS of this namespace."""
        return self.kube.get(GROUP_VERSION, kind, name, self.namespace)

    def secret(self, name: str) -> dict[str, str]:
        """A Secret's data, decoded."""
        return secret_data(self.kube.get("v1", "Secret", name, self.namespace))

    def touch(self, obj: dict) -> None:
        """Make Crossplane reconcile an XR now, instead of at its next poll."""
        self.kube.patch(obj, {"metadata": {"annotations": {TOUCH: str(time.monotonic_ns())}}})

    def delete(self, obj: dict) -> None:
        """Delete a BSLS or BSLR on purpose: opt in past the deletion guard, then delete."""
        self.kube.patch(obj, {"metadata": {"annotations": {ALLOW_DELETION: "true"}}})
        self.kube.delete(obj)
        wait(
            lambda: self.kube.reload(obj) is None,
            T,
            f"{obj['kind']} {obj['metadata']['name']} to go",
        )

    def composed(self, obj: dict) -> dict[str, dict]:
        """Composed objects of an XR by composition-resource-name (Crossplane's label)."""
        name = obj["metadata"]["name"]
        out: dict[str, dict] = {}
        for api_version, kind in COMPOSED_KINDS:
            for o in self.kube.list(api_version, kind, self.namespace, labels={COMPOSITE: name}):
                crn = (o["metadata"].get("annotations") or {}).get(CRN)
                if crn:
                    out[crn] = o
        return out

    def wait_xr(
        self,
        obj: dict,
        typ: str,
        status: str = "True",
        reason: str | None = None,
        *,
        timeout: float = T,
        touch: bool = False,
    ) -> dict:
        """Wait until an XR's condition `typ` has `status` (and `reason`); the XR."""

        def done() -> dict | None:
            if touch:
                self.touch(obj)
            got = self.kube.reload(obj)
            c = condition(got, typ)
            if c.get("status") == status and (reason is None or c.get("reason") == reason):
                return got
            return None

        try:
            return wait(
                done,
                timeout,
                f"{obj['kind']} {self.namespace}/{obj['metadata']['name']}: "
                f"{typ}={status} {reason or ''}",
                interval=1 if touch else 0.5,
            )
        except AssertionError as e:
            got = self.kube.reload(obj) or {}
            conditions = [
                (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                for c in (got.get("status") or {}).get("conditions", [])
            ]
            raise AssertionError(
                f"{e}\nconditions: {conditions}\n{self.node.pod_report(self.namespace)}"
            ) from None

    def job(self, obj: dict, prefix: str) -> dict | None:
        """The composed Job whose composition-resource-name starts with `prefix`."""
        found = [
            o for k, o in self.composed(obj).items() if k.startswith(prefix) and o["kind"] == "Job"
        ]
        found.sort(key=lambda o: o["metadata"]["creationTimestamp"])
        return found[-1] if found else None

    def job_log(self, job: dict) -> str:
        """The log of a Job's (last) pod."""
        pods = self.kube.list(
            "v1", "Pod", self.namespace, labels={"job-name": job["metadata"]["name"]}
        )
        if not pods:
            return ""
        pods.sort(key=lambda p: p["metadata"]["creationTimestamp"])
        return self.node.pod_logs(self.namespace, pods[-1]["metadata"]["name"])

    def wait_job_complete(self, job: dict, timeout: float = T) -> dict:
        """Wait until the Job controller reports the Job Complete; fail early if it failed."""

        def complete() -> dict | None:
            got = self.kube.reload(job)
            if is_true(got, "Failed"):
                raise AssertionError(f"Job {job['metadata']['name']} failed:\n{self.job_log(job)}")
            return got if is_true(got, "Complete") else None

        return wait(
            complete, timeout, f"Job {self.namespace}/{job['metadata']['name']} to complete"
        )

    def credentials(self, server: dict, identity: str) -> str:
        """The name of `identity`'s credentials Secret, from the XR's status."""
        got = self.kube.reload(server) or {}
        for user in (got.get("status") or {}).get("users", []):
            if user.get("identity") == identity:
                return user["credentialsSecretName"]
        msg = f"{identity} has no credentials Secret in the status of {server['metadata']['name']}"
        raise KeyError(msg)

    def pods_of(self, owner: dict) -> list[dict]:
        """The pods of a Deployment or Job (by its selector labels)."""
        if owner["kind"] == "Job":
            labels = {"job-name": owner["metadata"]["name"]}
        else:
            labels = owner["spec"]["selector"]["matchLabels"]
        return self.kube.list("v1", "Pod", self.namespace, labels=labels)


# --- a VM owner's machine --------------------------------------------------------------------


def make_tree(seed: str) -> dict[str, bytes]:
    """Varied files (text, random binary, empty, nested, unicode names): path -> bytes.

    Deterministic for a seed. An entry ending in "/" is an empty folder.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible on purpose
    return {
        "notes.txt": f"Hello from a VM {seed}\n".encode() * 50,
        "binary/random.bin": rng.randbytes(3 * 1024 * 1024 + 17),
        "binary/small.bin": rng.randbytes(1),
        "empty.txt": b"",
        "a/b/c/d/deep.txt": b"nested four levels down\n",
        "naïve café.txt": "crème brûlée, s'il vous plaît\n".encode(),
        "日本語/ファイル.txt": "こんにちは\n".encode(),
        "emoji 🙂/x y.dat": bytes(range(256)) * 16,
        ".hidden": b"dotfile\n",
        "empty-dir/": b"",
    }


def manifest(files: dict[str, bytes]) -> dict[str, str]:
    """Path -> SHA-256 (files) or "dir" (every folder, including parents)."""
    out: dict[str, str] = {}
    for path, data in files.items():
        parts = path.rstrip("/").split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = "dir"
        out[path.rstrip("/")] = "dir" if path.endswith("/") else hashlib.sha256(data).hexdigest()
    return out


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar archive of `files` (folders implied by paths; "x/" entries are empty folders)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path.rstrip("/"))
            info.mtime = 1_700_000_000
            if path.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# What every kopia command in a VM runs with: the bundle's connect script recorded the
# CA to trust in ~/.config/kopia/bsls.env.
WITH_ENV = 'set -a; . "$HOME/.config/kopia/bsls.env"; set +a; '


@dataclasses.dataclass
class Vm:
    """A VM owner's machine: a virt-launcher-labelled pod with the bundle at /bundle."""

    tenant: Tenant
    name: str  # the VM's name (vm.kubevirt.io/name); the pod is virt-launcher-<name>
    bundle: str  # the credentials Secret

    @property
    def pod(self) -> str:
        """The pod's name."""
        return f"virt-launcher-{self.name}"

    def manifest(self) -> dict:
        """The pod: restricted (the namespace admits nothing else), no token, the bundle."""
        home = "/home/vm"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.pod,
                "namespace": self.tenant.namespace,
                "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": self.name},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 1,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 107,  # virt-launcher's qemu user
                    "runAsGroup": 107,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "compute",
                        "image": KOPIA_IMAGE,
                        "command": [
                            "/bin/sh",
                            "-c",
                            "trap 'exit 0' TERM; while :; do sleep 1; done",
                        ],
                        "workingDir": home,
                        "env": [
                            {"name": "HOME", "value": home},
                            # A native kopia's defaults (the image points them at /app).
                            {
                                "name": "KOPIA_CONFIG_PATH",
                                "value": f"{home}/.config/kopia/repository.config",
                            },
                            {"name": "KOPIA_CACHE_DIRECTORY", "value": f"{home}/.cache/kopia"},
                            {"name": "KOPIA_LOG_DIR", "value": f"{home}/.cache/kopia/logs"},
                            {"name": "KOPIA_PERSIST_CREDENTIALS_ON_CONNECT", "value": "true"},
                            {"name": "KOPIA_CHECK_FOR_UPDATES", "value": "false"},
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "1", "memory": "512Mi"},
                        },
                        "volumeMounts": [
                            {"name": "bundle", "mountPath": "/bundle", "readOnly": True},
                            {"name": "home", "mountPath": home},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "bundle", "secret": {"secretName": self.bundle}},
                    {"name": "home", "emptyDir": {}},
                ],
            },
        }

    def start(self) -> Vm:
        """Create the pod and wait until it runs."""
        kube = self.tenant.kube
        kube.create(self.manifest())
        wait(
            lambda: is_true(kube.get("v1", "Pod", self.pod, self.tenant.namespace), "Ready"),
            T,
            f"VM {self.name} to run",
        )
        return self

    def stop(self) -> None:
        """Delete the pod and wait until it is gone."""
        kube = self.tenant.kube
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.pod, "namespace": self.tenant.namespace},
        }
        kube.delete(obj)
        wait(lambda: kube.reload(obj) is None, T, f"VM {self.name} to be gone")

    def sh(
        self, script: str, *, stdin: bytes | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell script in the VM (kubectl exec)."""
        kubectl = node_module().tool("kubectl")
        done = subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={self.tenant.node.kubeconfig}",
                "exec",
                "-i",
                "-n",
                self.tenant.namespace,
                self.pod,
                "-c",
                "compute",
                "--",
                "/bin/sh",
                "-c",
                script,
            ],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            msg = (
                f"in VM {self.name}: {script!r} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
            raise AssertionError(msg)
        return result

    def connect(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`sh /bundle/connect-linux.sh`, as the VM user guide says."""
        return self.sh("sh /bundle/connect-linux.sh", check=check)

    def kopia(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A later kopia command, with the SSL_CERT_FILE the connect script recorded."""
        return self.sh(WITH_ENV + "kopia " + " ".join(shlex.quote(a) for a in args), check=check)

    def try_connect(
        self, url: str, identity: str, password: str, *, trust: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A connect as someone else might try it: any URL and password, with or without
        the bundle's CA, into a throwaway configuration (the VM's own stays as it is)."""
        username, hostname = identity.split("@")
        scratch = f"/tmp/try-{time.monotonic_ns()}"
        args = " ".join(
            shlex.quote(a)
            for a in (
                "repository",
                "connect",
                "server",
                f"--url={url}",
                f"--override-username={username}",
                f"--override-hostname={hostname}",
                f"--password={password}",
            )
        )
        env = (
            f"KOPIA_CONFIG_PATH={scratch}/repository.config KOPIA_CACHE_DIRECTORY={scratch}/cache "
        )
        return self.sh(
            (WITH_ENV if trust else "unset SSL_CERT_FILE; ") + env + "kopia " + args, check=False
        )

    def put(self, folder: str, files: dict[str, bytes]) -> None:
        """Write `files` under `folder` in the VM."""
        self.sh(
            f"mkdir -p {shlex.quote(folder)} && tar -x -C {shlex.quote(folder)}",
            stdin=tar_of(files),
        )

    def tree(self, folder: str) -> dict[str, str]:
        """Path -> SHA-256 or "dir", for everything under `folder` in the VM."""
        q = shlex.quote(folder)
        out = self.sh(
            f"cd {q} && find . -mindepth 1 -type d -printf 'dir %P\\0'"
            " && find . -type f -exec sha256sum -z {} +"
        ).stdout
        found: dict[str, str] = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            if entry.startswith("dir "):
                found[entry[4:]] = "dir"
            else:
                digest, _, path = entry.partition("  ")
                found[path.removeprefix("./")] = digest
        return found

    def snapshots(self) -> list[dict]:
        """`kopia snapshot list --json`: this user's snapshots."""
        return json.loads(self.kopia("snapshot", "list", "--json").stdout or "[]")

    def snapshot(self, folder: str) -> str:
        """Back up `folder`; the snapshot's ID."""
        self.kopia("snapshot", "create", folder)
        found = [s for s in self.snapshots() if s["source"]["path"] == folder]
        return max(found, key=lambda s: s["startTime"])["id"]


def function_calls(node: Any, namespace: str, name: str) -> int:
    """How many times the function has composed the XR `namespace/name` (its debug log)."""
    count = 0
    for raw in node.function_log().splitlines():
        line = ANSI.sub("", raw) + " "
        if "composed" in line and f"name={name} " in line and f"namespace={namespace} " in line:
            count += 1
    return count


def diagnostics(node: Any) -> str:
    """What helps reading a failure: the end of the components' and Crossplane's logs."""
    parts = []
    for name in ("kubelet", "kube-controller-manager", "containerd"):
        parts.append(f"--- {name}.log (tail) ---\n{node.log_tail(name, 25)}")
    ns = node_module().CROSSPLANE_NS
    for pod in node.kube.list("v1", "Pod", ns):
        logs = node.pod_logs(ns, pod["metadata"]["name"])
        parts.append(
            f"--- {ns}/{pod['metadata']['name']} (tail) ---\n"
            + "\n".join(ANSI.sub("", logs).splitlines()[-25:])
        )
    return "\n".join(parts)
