"""A tenant on the stand-in cluster: the rendered pods, a VM's client, direct storage.

`Tenant.up()` composes the examples' BSLR (filesystem, or S3 on a moto server on
loopback) and BSLS with the function, runs the repository-init Job, the server
Deployment and the user-sync Job as local processes with the pinned kopia
(tests/e2e/cluster.py), and gives:

- `vm(identity)`: a client connected through the server the way a VM owner connects:
  the endpoint from the credentials Secret, verified TLS with its `ca.crt`
  (SSL_CERT_FILE), the cluster's DNS in a private mount namespace;
- `direct()`: a client connected straight to a second repository on the same storage
  (another claim folder, or another prefix of the same bucket), created by the same
  rendered repository-init Job, so both paths write into repositories made the same way
  and neither deduplicates against the other.

A *bench variant* (never the shipped defaults) is extra flags for kopia inside the pods,
added by `bench/kopia-variant.sh` put on the pods' PATH; `Variant()` is the defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench import common
from tests import helpers
from tests.e2e import cluster as cluster_mod
from tests.e2e.cluster import Cluster, Pod, with_hosts
from tests.e2e.composite import Composite
from tests.e2e.conftest import SPEED_UPS
from tests.e2e.kopia import Client
from tests.e2e.stack import Stack, repository_password, stand_up, succeeded
from tests.procs import free_port, wait_for_port

NAMESPACE = "team-a"
ALICE = "alice@vm-alice"
DIRECT_CLAIM = "direct-backups"
WRAPPER = common.ROOT / "bench" / "kopia-variant.sh"
_homes = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Variant:
    """Extra kopia flags inside the pods: a bench variant. Empty is the shipped defaults."""

    name: str = "shipped defaults"
    server_args: str = ""  # appended to `kopia server start`
    connect_args: str = ""  # appended to the pods' `kopia repository connect`
    create_args: str = ""  # appended to the init Job's `kopia repository create`
    client_connect_args: str = ""  # appended to the VM's `kopia repository connect server`
    snapshot_args: str = ""  # appended to the VM's `kopia snapshot create`
    restore_args: str = ""  # appended to the VM's `kopia snapshot restore`

    @property
    def pods_unchanged(self) -> bool:
        """Whether the pods run what the manifests say, unchanged."""
        return not (self.server_args or self.connect_args or self.create_args)


class Moto:
    """An S3 server (moto) on a free loopback port, in its own process."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = (workdir / "moto.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(workdir)},
        )
        wait_for_port(self.port, self.proc, timeout=60)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The S3 server's process."""
        return self.proc.pid

    def stop(self) -> None:
        """Stop the process this object started."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@dataclasses.dataclass
class VMClient:
    """A kopia client with its own home, run the way the bench measures it."""

    client: Client
    cpus: str | None  # `taskset -c` list for the client, or None

    def argv(self, *args: str) -> list[str]:
        """The command line of `kopia <args>` in the client's mount namespace."""
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        return with_hosts(self.client.hosts, [*pin, "kopia", *args])

    def run(self, *args: str, check: bool = True, extra_env: dict | None = None) -> common.Run:
        """Run `kopia <args>`, measured (wall, CPU, peak RSS)."""
        env = {**self.client.env(self.client.password), **(extra_env or {})}
        return common.run(self.argv(*args), env=env, cwd=self.client.home, check=check)

    def snapshot(self, folder: pathlib.Path, *extra: str) -> tuple[str, common.Run]:
        """`kopia snapshot create`; the snapshot's ID and the measured run."""
        done = self.run("snapshot", "create", str(folder), "--json", *extra)
        return json.loads(done.stdout)["id"], done


class Tenant:
    """One BSLR and BSLS on a fresh stand-in cluster, plus a direct repository beside it."""

    def __init__(
        self,
        root: pathlib.Path,
        backend: str,
        *,
        variant: Variant | None = None,
        users: int | None = None,
        client_cpus: str | None = None,
        cluster_cpus: frozenset[int] | None = None,
    ) -> None:
        """A tenant whose files live under `root`.

        Args:
            root: a fresh folder.
            backend: "filesystem" or "s3".
            variant: kopia flags the pods add (a bench variant); None for the defaults.
            users: the BSLS's users: None for the example's two, else alice plus n-1
                generated ones.
            client_cpus: `taskset -c` CPUs for every VM and direct client.
            cluster_cpus: CPUs for the cluster side (pods, the S3 server).
        """
        self.root = root
        self.backend = backend
        self.variant = variant or Variant()
        self.users = users
        self.client_cpus = client_cpus
        self.cluster_cpus = cluster_cpus
        self.moto: Moto | None = None
        self.stack: Stack | None = None
        self.direct_bslr: dict | None = None
        self.direct_args: list[str] = []
        self.tmpfs: pathlib.Path | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "cluster").mkdir(exist_ok=True)
        self.cluster = Cluster(root / "cluster", extra_env=self._extra_env())

    # ------------------------------------------------------------------ set-up

    def _extra_env(self) -> dict[str, dict[str, str]]:
        extra = copy.deepcopy(SPEED_UPS)
        if self.variant.pods_unchanged:
            return extra
        wrap = self.root / "variant-bin"
        wrap.mkdir(exist_ok=True)
        (wrap / "kopia").unlink(missing_ok=True)
        (wrap / "kopia").symlink_to(WRAPPER)
        env = {
            "PATH": f"{wrap}:{cluster_mod.BASE_ENV['PATH']}",
            "BSLS_BENCH_KOPIA": str(cluster_mod.TOOLS_BIN / "kopia"),
            "BSLS_BENCH_SERVER_ARGS": self._tmpfs(self.variant.server_args),
            "BSLS_BENCH_CONNECT_ARGS": self._tmpfs(self.variant.connect_args),
            "BSLS_BENCH_CREATE_ARGS": self._tmpfs(self.variant.create_args),
        }
        for container in ("kopia", "repository-init"):
            extra[container] = dict(env)
        return extra

    def _tmpfs(self, args: str) -> str:
        """`{tmpfs}` in a variant's flags: a folder of this tenant's in memory.

        Under /dev/shm, as an emptyDir with `medium: Memory` would be.
        """
        if "{tmpfs}" not in args:
            return args
        if self.tmpfs is None:
            self.tmpfs = pathlib.Path(tempfile.mkdtemp(prefix="bsls-bench-", dir="/dev/shm"))
        return args.replace("{tmpfs}", str(self.tmpfs))

    def bslr(self, name: str = "team-a-repo", where: str = "") -> dict:
        """The BSLR: the example of the backend; `where` is another claim or prefix."""
        if self.backend == "filesystem":
            bslr = helpers.example("bslr.yaml")
            if where:
                claim = bslr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]
                claim["claimName"] = where
        else:
            assert self.moto is not None
            bslr = helpers.example("bslr-s3.yaml")
            s3 = bslr["spec"]["backend"]["s3"]
            s3["endpoint"] = self.moto.endpoint
            if where:
                s3["prefix"] = where
        bslr["metadata"]["name"] = name
        return bslr

    def bsls(self) -> dict:
        """The BSLS: the example, its users as asked, pointed at the BSLR."""
        bsls = helpers.example("bsls.yaml")
        bsls["spec"]["repositoryRef"]["name"] = "team-a-repo"
        if self.users is not None:
            bsls["spec"]["users"] = [bsls["spec"]["users"][0]] + [
                {"username": f"u{i}", "hostname": f"vm-{i}"} for i in range(1, self.users)
            ]
        return bsls

    def up(self) -> Tenant:
        """Compose and start everything; then the direct repository beside it."""
        with common.pinned(self.cluster_cpus):
            self.cluster.apply(
                *helpers.load("secrets.yaml"),
                *helpers.load("required/secrets.yaml"),
                *helpers.load("claim.yaml"),
                direct_claim(),
            )
            if self.backend == "s3":
                self.moto = Moto(self.root / "moto")
                self._bucket()
            now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            self.clock = helpers.Clock(now - datetime.timedelta(days=1))
            self.stack = stand_up(
                self.cluster, self.bslr(), self.bsls(), self.clock, self.root / "clients"
            )
            where = DIRECT_CLAIM if self.backend == "filesystem" else "bench-direct/"
            self.direct_bslr = self.bslr("direct-repo", where)
            direct = Composite(self.cluster, self.direct_bslr, self.clock)
            direct.reconcile()
            succeeded(self.cluster.run_jobs())
            [init] = [v for k, v in direct.desired.items() if k.startswith("repository-init")]
            # The storage flags every pod passes to `kopia repository connect`.
            self.direct_args = list(init["spec"]["template"]["spec"]["containers"][0]["args"])
        return self

    def _bucket(self) -> None:
        import boto3  # noqa: PLC0415 - a dev dependency, needed for S3 only

        assert self.moto is not None
        s3 = helpers.example("bslr-s3.yaml")["spec"]["backend"]["s3"]
        keys = self.s3_keys()
        boto3.client(
            "s3",
            endpoint_url=self.moto.endpoint,
            region_name=s3["region"],
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=s3["bucket"])

    def s3_keys(self) -> dict[str, str]:
        """The storage keys from the tenant's Secret."""
        ref = helpers.example("bslr-s3.yaml")["spec"]["backend"]["s3"]["credentialsSecretRef"]
        data = self.cluster.secret_data(NAMESPACE, ref["name"])
        assert data is not None
        return {k: v.decode() for k, v in data.items()}

    def down(self) -> None:
        """Stop every process this tenant started."""
        self.cluster.shutdown()
        if self.moto is not None:
            self.moto.stop()
        if self.tmpfs is not None:
            shutil.rmtree(self.tmpfs, ignore_errors=True)

    # ------------------------------------------------------------------ the server

    @property
    def server(self) -> Pod:
        """The server's running pod."""
        assert self.stack is not None
        return self.cluster.server_pod(NAMESPACE, self.stack.deployment["metadata"]["name"])

    @property
    def server_pid(self) -> int:
        """The kopia server process (the pod's shell scripts exec into it)."""
        pod = self.server
        assert pod.process is not None
        pid = pod.process.popen.pid
        comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
        if comm != "kopia":
            msg = f"the server pod's process is {comm!r}, not kopia"
            raise RuntimeError(msg)
        return pid

    def server_cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return common.proc_cpu_seconds(self.server_pid)

    def storage_cpu(self) -> float:
        """CPU seconds the S3 server has used so far (0 for a filesystem)."""
        return common.proc_cpu_seconds(self.moto.pid) if self.moto else 0.0

    def restart_server(self, extra: dict[str, str] | None = None, timeout: float = 600) -> Pod:
        """Stop the server (SIGTERM, as a pod's termination) and start a new pod.

        `extra` replaces the bench variant's env for the new pod (e.g. a profile flag).
        Returns once the readiness probe's port accepts connections.
        """
        assert self.stack is not None
        name = self.stack.deployment["metadata"]["name"]
        old = self.cluster.pods.pop((NAMESPACE, name))
        assert old.process is not None
        old.process.stop(grace=60)
        if extra is not None:
            self.cluster.extra_env["kopia"] = {**self.cluster.extra_env.get("kopia", {}), **extra}
        with common.pinned(self.cluster_cpus):
            pod = self.cluster.pod(NAMESPACE, name, self.stack.deployment["spec"]["template"])
            self.cluster.pods[(NAMESPACE, name)] = pod
            pod.start()
        wait_listening(pod, timeout)
        return pod

    # ------------------------------------------------------------------ clients

    def vm(self, identity: str = ALICE, password: str | None = None) -> VMClient:
        """A fresh VM client connected through the server with verified TLS.

        As its bundle says, plus the variant's client connect flags, if any.
        """
        client, args = self.vm_unconnected(identity)
        if password is not None:
            client.client.password = password
        done = client.run(*args, check=False)
        if done.returncode != 0:
            msg = f"{identity} could not connect:\n{done.stdout}{done.stderr}"
            raise RuntimeError(msg)
        return client

    def vm_unconnected(self, identity: str = ALICE) -> tuple[VMClient, list[str]]:
        """A fresh VM client and the connect arguments its bundle gives (not yet run)."""
        assert self.stack is not None
        creds = self.stack.credentials(identity)
        username, hostname = identity.split("@")
        client = self.stack.client(username)
        client.password = creds["password"]
        client.trust(creds["ca.crt"])
        args = [
            "repository",
            "connect",
            "server",
            f"--url={creds['endpoint']}",
            f"--override-username={username}",
            f"--override-hostname={hostname}",
            *self.variant.client_connect_args.split(),
        ]
        return VMClient(client, self.client_cpus), args

    def direct(self) -> VMClient:
        """A fresh client connected straight to the direct repository (same storage).

        With the storage flags the rendered pods pass to `kopia repository connect`; a
        filesystem path is the claim's folder here, and S3 keys come from their Secret.
        """
        assert self.stack is not None
        client = self.stack.client("direct")
        client.password = repository_password(self.cluster, self.stack.repository.xr)
        args = list(self.direct_args)
        if self.backend == "filesystem":
            path = self.cluster.claim(NAMESPACE, DIRECT_CLAIM)
            args = [
                args[0],
                *(f"--path={path}" if a.startswith("--path=") else a for a in args[1:]),
            ]
        keys = self.s3_keys() if self.backend == "s3" else {}
        client.run(
            "repository",
            "connect",
            *args,
            "--override-username=direct",
            "--override-hostname=bench",
            extra_env={k: v for k, v in keys.items() if k.startswith("AWS_")},
        )
        return VMClient(client, self.client_cpus)


def direct_claim() -> dict:
    """The claim of the direct repository: the example's claim under another name."""
    claim = copy.deepcopy(helpers.load("claim.yaml")[0])
    claim["metadata"]["name"] = DIRECT_CLAIM
    return claim


def wait_listening(pod: Pod, timeout: float) -> float:
    """Wait until the pod's readiness port accepts connections; the seconds it took."""
    assert pod.process is not None
    container = pod.template["spec"]["containers"][0]
    address = pod.address(container["readinessProbe"]["tcpSocket"]["port"])
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not pod.process.running:
            msg = f"pod {pod.name} exited before it listened:\n{pod.process.logs()}"
            raise RuntimeError(msg)
        try:
            with socket.create_connection(address, 0.5):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    msg = f"pod {pod.name} did not listen within {timeout}s:\n{pod.process.logs()}"
    raise RuntimeError(msg)
