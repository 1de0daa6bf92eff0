"""The stand-in cluster substitutes exactly what a cluster provides, and nothing else."""

from __future__ import annotations

import base64
import pathlib
import subprocess

import pytest

from tests import helpers
from tests.e2e.cluster import BASE_ENV, Cluster, HarnessError, expand, with_hosts
from tests.e2e.composite import Composite


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


SECRETS = [
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "ns"},
        "stringData": {"password": "s3cret", "user": "u"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "other", "namespace": "ns"},
        "data": {"password": b64("other-pw")},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "scripts", "namespace": "ns"},
        "data": {"run.sh": "echo hi\n", "unused.sh": ""},
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "ns"},
        "spec": {
            "selector": {"app": "srv"},
            "ports": [{"name": "p", "port": 443, "targetPort": "http"}],
        },
    },
]


def template(**container: object) -> dict:
    base = {
        "name": "c",
        "command": ["/bin/sh", "/scripts/run.sh"],
        "volumeMounts": [
            {"name": "scripts", "mountPath": "/scripts"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "data", "mountPath": "/data"},
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "users", "mountPath": "/etc/users"},
        ],
    }
    base.update(container)
    return {
        "metadata": {"labels": {"app": "srv"}},
        "spec": {
            "containers": [base],
            "volumes": [
                {"name": "scripts", "configMap": {"name": "scripts", "defaultMode": 0o555}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}},
                {
                    "name": "creds",
                    "secret": {
                        "secretName": "creds",
                        "items": [{"key": "password", "path": "sub/pw.txt"}],
                        "defaultMode": 0o440,
                    },
                },
                {
                    "name": "users",
                    "projected": {
                        "sources": [
                            {
                                "secret": {
                                    "name": "creds",
                                    "items": [{"key": "password", "path": "a@h"}],
                                }
                            },
                            {
                                "secret": {
                                    "name": "other",
                                    "items": [{"key": "password", "path": "b@h"}],
                                }
                            },
                        ]
                    },
                },
            ],
        },
    }


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Cluster:
    c = Cluster(tmp_path, extra_env={"c": {"SPEED": "1"}})
    c.apply(*SECRETS)
    return c


def test_expansion_follows_kubernetes() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("--p=$(A)/$(B)", env) == "--p=x/y"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"


def test_volumes_become_folders_with_the_objects_files(cluster: Cluster) -> None:
    pod = cluster.pod("ns", "job", template())
    volumes = pod.dir / "volumes"
    assert (volumes / "scripts" / "run.sh").read_text() == "echo hi\n"
    assert (volumes / "scripts" / "run.sh").stat().st_mode & 0o777 == 0o555
    assert (volumes / "creds" / "sub" / "pw.txt").read_text() == "s3cret"
    assert not (volumes / "creds" / "user").exists()  # items select keys
    assert (volumes / "users" / "a@h").read_text() == "s3cret"
    assert (volumes / "users" / "b@h").read_text() == "other-pw"
    assert (volumes / "tmp").is_dir()
    assert cluster.claim("ns", "pvc").is_dir()
    assert pod.argv == ["/bin/sh", str(volumes / "scripts" / "run.sh")]


def test_env_and_args_are_rewritten_to_the_host(cluster: Cluster) -> None:
    pod = cluster.pod(
        "ns",
        "server",
        template(
            args=["--path=$(DATA)", "/data/x", "--cert=/etc/creds/sub/pw.txt", "/elsewhere"],
            ports=[{"name": "http", "containerPort": 8443}],
            env=[
                {"name": "DATA", "value": "/data/repo"},
                {"name": "NESTED", "value": "$(DATA)/sub"},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {
                    "name": "TOKEN",
                    "valueFrom": {
                        "secretKeyRef": {"name": "creds", "key": "nope", "optional": True}
                    },
                },
                {"name": "LISTEN", "value": "0.0.0.0:8443"},
                {"name": "URL", "value": "https://svc.ns.svc:443/x"},
                {"name": "TMPFILE", "value": "/tmp/f"},
            ],
        ),
    )
    pvc = cluster.claim("ns", "pvc")
    ip = cluster.service_ip("ns", "svc")
    assert pod.env["DATA"] == f"{pvc}/repo"
    assert pod.env["NESTED"] == f"{pvc}/repo/sub"
    assert pod.env["PW"] == "s3cret"
    assert "TOKEN" not in pod.env
    # The Service's address and port (it selects the pod); names are left to DNS.
    assert pod.env["LISTEN"] == f"{ip}:443"
    assert pod.env["URL"] == "https://svc.ns.svc:443/x"
    assert pod.env["TMPFILE"] == str(pod.dir / "volumes" / "tmp" / "f")
    assert pod.env["SPEED"] == "1"
    assert pod.env["PATH"] == BASE_ENV["PATH"]
    assert pod.argv[2:] == [
        f"--path={pvc}/repo",
        f"{pvc}/x",
        f"--cert={pod.dir / 'volumes' / 'creds' / 'sub' / 'pw.txt'}",
        "/elsewhere",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env": [{"name": "SPEED", "value": "0"}]}, "would override"),
        ({"env": [{"name": "X", "valueFrom": {"fieldRef": {}}}]}, "not supported"),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "no", "key": "k"}}}]},
            "CreateContainerConfigError",
        ),
        ({"envFrom": [{"secretRef": {"name": "creds"}}]}, "envFrom"),
        ({"command": []}, "entrypoint"),
    ],
)
def test_what_the_harness_cannot_run_faithfully_is_an_error(
    cluster: Cluster, change: dict, message: str
) -> None:
    with pytest.raises(HarnessError, match=message):
        cluster.pod("ns", "job", template(**change))


def test_unknown_volumes_are_an_error(cluster: Cluster) -> None:
    t = template()
    t["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    with pytest.raises(HarnessError, match="not supported"):
        cluster.pod("ns", "job", t)


def test_the_rendered_server_runs_its_script_on_the_claim(tmp_path: pathlib.Path) -> None:
    """The real manifests: the only differences are the substituted paths and address."""
    cluster = Cluster(tmp_path)
    cluster.apply(*helpers.load("secrets.yaml"), *helpers.load("required/secrets.yaml"))
    cluster.apply(helpers.ready_bslr())
    server = Composite(cluster, helpers.example("bsls.yaml"), helpers.Clock())
    desired = server.reconcile()
    deployment = desired["server"]
    pod = cluster.pod("team-a", "vm-backups", deployment["spec"]["template"])
    pvc = cluster.claim("team-a", "team-a-backups")
    scripts = pod.dir / "volumes" / "scripts"
    assert pod.argv == ["/bin/sh", f"{scripts}/server.sh", "filesystem", f"--path={pvc}"]
    ip = cluster.service_ip("team-a", "vm-backups")
    assert pod.env["BSLS_LISTEN_ADDRESS"] == f"{ip}:51515"
    assert pod.env["KOPIA_PASSWORD"] == "change-me-repository-password"
    assert pod.env["KOPIA_CONFIG_PATH"] == str(pod.dir / "volumes" / "config" / "repository.config")
    assert sorted(p.name for p in (pod.dir / "volumes" / "tls").iterdir()) == [
        "tls.crt",
        "tls.key",
    ]
    [sync] = [v for k, v in desired.items() if k.startswith("user-sync-")]
    job = cluster.pod("team-a", sync["metadata"]["name"], sync["spec"]["template"])
    assert job.env["BSLS_SERVER_URL"] == "https://vm-backups.team-a.svc:51515"
    # Cluster DNS: the Service's names resolve to its address inside every pod.
    hosts = cluster.hosts.read_text()
    assert f"{ip} vm-backups.team-a.svc vm-backups.team-a.svc.cluster.local" in hosts
    resolved = subprocess.run(
        with_hosts(cluster.hosts, ["getent", "hosts", "vm-backups.team-a.svc"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert resolved.stdout.split()[0] == ip
    users = job.dir / "volumes" / "users" / "full"  # a folder per access mode
    assert sorted(p.name for p in users.iterdir()) == ["alice@vm-alice", "bob@vm-bob"]
    assert (users / "alice@vm-alice").read_text() == "alice-correct-horse-battery"
