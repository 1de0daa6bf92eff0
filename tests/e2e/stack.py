"""A tenant's repository and server, stood up from the examples the way a cluster would."""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import pathlib
import subprocess

from tests import helpers
from tests.e2e.cluster import Cluster, JobRun
from tests.e2e.composite import Composite
from tests.e2e.kopia import Client

_clients = itertools.count(1)


def succeeded(runs: list[JobRun]) -> list[JobRun]:
    """Assert every Job run succeeded, showing the logs of any that did not."""
    for run in runs:
        assert run.succeeded, f"Job {run.name} failed ({run.returncode}):\n{run.logs}"
    return runs


@dataclasses.dataclass
class Stack:
    """A BSLR and a BSLS composed by the function and running on a Cluster."""

    cluster: Cluster
    repository: Composite
    server: Composite
    clients: pathlib.Path

    @property
    def namespace(self) -> str:
        """The tenant's namespace."""
        return self.server.namespace

    @property
    def deployment(self) -> dict:
        """The rendered server Deployment."""
        return self.server.desired["server"]

    def converge(self) -> tuple[list[str], list[JobRun]]:
        """Reconcile, let the controllers act, and reconcile again to observe the result.

        Returns the Deployments whose pod was (re)created and the Jobs that ran.
        """
        self.server.reconcile()
        restarted = self.cluster.roll_out()
        runs = succeeded(self.cluster.run_jobs())
        self.server.reconcile()
        return restarted, runs

    def sync_job(self) -> dict:
        """The user-sync Job the XR desires now (its key is `user-sync-<digest>`)."""
        assert self.server.rsp is not None
        return helpers.sync_job(self.server.rsp)

    def job_run(self) -> JobRun:
        """The run of the user-sync Job the XR desires now."""
        meta = self.sync_job()["metadata"]
        return self.cluster.jobs[(meta["namespace"], meta["name"])]

    def credentials(self, identity: str) -> dict[str, str]:
        """A user's credentials Secret, decoded: what the VM owner is handed."""
        for manifest in self.server.desired.values():
            annotations = manifest["metadata"].get("annotations") or {}
            if annotations.get("dataprotection.bsls.dev/identity") == identity:
                data = self.cluster.secret_data(self.namespace, manifest["metadata"]["name"])
                assert data is not None
                return {k: v.decode() for k, v in data.items()}
        msg = f"no credentials Secret for {identity}"
        raise KeyError(msg)

    def client(self, name: str, hosts: pathlib.Path | None = None) -> Client:
        """A fresh kopia client (a new VM, or a new config on one), on the cluster's DNS."""
        return Client(self.clients / f"{name}-{next(_clients)}", hosts or self.cluster.hosts)

    def bundle(self, identity: str, folder: pathlib.Path) -> pathlib.Path:
        """A user's credentials Secret as a VM gets it: one file per key (a Secret volume)."""
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in self.credentials(identity).items():
            (folder / key).write_text(value)
        return folder

    def connect(
        self,
        identity: str,
        password: str | None = None,
        *,
        trust: bool = True,
        hosts: pathlib.Path | None = None,
    ) -> tuple[Client, subprocess.CompletedProcess[str]]:
        """Connect a fresh client as `identity` with verified TLS, as its bundle says.

        The password and the CA default to the ones in the user's credentials Secret
        (or, for a user who has none any more, the CA bundle); `trust=False` trusts no
        CA. Returns the client and kopia's result; the caller asserts on it.
        """
        try:
            creds = self.credentials(identity)
        except KeyError:
            creds = {}
        password = creds["password"] if password is None else password
        username, hostname = identity.split("@")
        client = self.client(username, hosts)
        client.password = password
        if trust:
            client.trust(creds.get("ca.crt") or self.ca_bundle())
        done = client.connect_server(self.server.status["endpoint"], username, hostname, password)
        return client, done

    def ca_bundle(self) -> str:
        """The public CA bundle of the server (the `ca-bundle` ConfigMap)."""
        meta = self.server.desired["ca-bundle"]["metadata"]
        data = self.cluster.config_map_data(meta["namespace"], meta["name"])
        assert data is not None
        return data["ca.crt"].decode()

    def connected(self, identity: str, password: str | None = None) -> Client:
        """A client connected as `identity`; fails the test if it cannot connect."""
        client, done = self.connect(identity, password)
        assert done.returncode == 0, f"{identity} could not connect:\n{done.stdout}{done.stderr}"
        return client

    def direct_client(self, password: str) -> Client:
        """An operator's client connected straight to the filesystem repository."""
        claim = self.repository.xr["spec"]["backend"]["filesystem"]["persistentVolumeClaim"]
        path = self.cluster.claim(self.namespace, claim["claimName"])
        client = self.client("operator")
        client.password = password
        client.run(
            "repository",
            "connect",
            "filesystem",
            f"--path={path}",
            "--override-username=operator",
            "--override-hostname=e2e",
        )
        return client


def repository_password(cluster: Cluster, bslr: dict) -> str:
    """The repository password, from the Secret the BSLR references."""
    ref = bslr["spec"]["passwordSecretRef"]
    data = cluster.secret_data(bslr["metadata"]["namespace"], ref["name"])
    assert data is not None
    return data[ref["key"]].decode()


def with_password(secret: dict, password: str) -> dict:
    """A copy of a password Secret holding another password (base64 `data`)."""
    out = copy.deepcopy(secret)
    out.pop("stringData", None)  # it would win over data when the Secret is stored
    out["data"] = {"password": base64.b64encode(password.encode()).decode()}
    return out


def stand_up(
    cluster: Cluster,
    bslr: dict,
    bsls: dict,
    clock: helpers.Clock,
    clients: pathlib.Path,
    inp: dict | None = None,
) -> Stack:
    """Initialise the repository, start the server and sync the users, as a cluster would.

    `inp` is the server Composition's function input.
    """
    repository = Composite(cluster, bslr, clock)
    repository.reconcile()
    init = succeeded(cluster.run_jobs())
    [job] = [v for k, v in repository.desired.items() if k.startswith("repository-init-")]
    assert [r.name for r in init] == [job["metadata"]["name"]]
    repository.reconcile()
    assert repository.ready, repository.conditions
    assert repository.conditions["Initialized"][0] == "True", repository.conditions

    server = Composite(cluster, bsls, clock, inp)
    stack = Stack(cluster, repository, server, clients)
    stack.converge()
    return stack
