"""The examples through the real `crossplane render` CLI and the function's gRPC server."""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests import procs

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def functions_yaml(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A Functions file pointing `crossplane render` at a function started for these tests."""
    address = procs.start_function()
    doc = yaml.safe_load((EXAMPLES / "functions.yaml").read_text())
    doc["metadata"]["annotations"]["render.crossplane.io/runtime-development-target"] = address
    path = tmp_path_factory.mktemp("render") / "functions.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def render(
    functions: pathlib.Path,
    xr: pathlib.Path,
    composition: pathlib.Path,
    *extra: str,
    required: pathlib.Path = EXAMPLES / "required",
) -> list[dict]:
    cmd = [
        str(procs.tool("crossplane")),
        "render",
        str(xr),
        str(composition),
        str(functions),
        f"--required-resources={required}",
        f"--xrd={composition.parent / 'definition.yaml'}",
        "--include-full-xr",
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_resource_name(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for d in docs[1:]:
        key = d["metadata"]["annotations"]["crossplane.io/composition-resource-name"]
        out[key] = d
    return out


@pytest.fixture(scope="module")
def first(functions_yaml: pathlib.Path) -> list[dict]:
    return render(functions_yaml, EXAMPLES / "bsls.yaml", ROOT / "apis/bsls/composition.yaml")


def test_render_prints_the_xr_and_every_composed_resource(first: list[dict]) -> None:
    xr = first[0]
    assert xr["kind"] == "BackupStorageLocationServer"
    assert xr["status"]["endpoint"] == "https://vm-backups.team-a.svc:51515"
    kinds = sorted(d["kind"] for d in first[1:])
    assert kinds == sorted(
        ["Deployment", "Service", "NetworkPolicy", "Job"]
        + ["ConfigMap"] * 3
        + ["Secret"] * 6
        # Backup freshness: its CronJob and the narrow API access its pod gets.
        + ["CronJob", "ServiceAccount", "Role", "RoleBinding"]
    )
    conditions = {c["type"]: c for c in xr["status"]["conditions"]}
    assert conditions["RepositoryReady"]["status"] == "True"
    assert conditions["TLSReady"]["status"] == "True"


def test_fingerprint_is_the_sha256_of_the_composed_ca(first: list[dict]) -> None:
    resources = by_resource_name(first)
    pem = base64.b64decode(resources["tls-ca"]["data"]["ca.crt"])
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert first[0]["status"]["tlsFingerprint"] == hashlib.sha256(der).hexdigest()
    served = base64.b64decode(resources["tls-server"]["data"]["tls.crt"])
    assert x509.load_pem_x509_certificates(served)[-1] == x509.load_pem_x509_certificate(pem)


def test_second_render_with_the_first_observed_changes_nothing(
    functions_yaml: pathlib.Path, first: list[dict], tmp_path: pathlib.Path
) -> None:
    observed = tmp_path / "observed.yaml"
    observed.write_text(yaml.safe_dump_all(first[1:]))
    second = render(
        functions_yaml,
        EXAMPLES / "bsls.yaml",
        ROOT / "apis/bsls/composition.yaml",
        f"--observed-resources={observed}",
    )
    before, after = by_resource_name(first), by_resource_name(second)
    assert sorted(before) == sorted(after)
    for key, obj in before.items():
        if obj["kind"] == "Secret":
            assert after[key]["data"] == obj["data"], key
        assert after[key]["metadata"]["name"] == obj["metadata"]["name"], key
    assert after["server"]["spec"] == before["server"]["spec"]
    assert second[0]["status"]["tlsFingerprint"] == first[0]["status"]["tlsFingerprint"]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("bslr*.yaml")))
def test_every_repository_example_renders_an_init_job(
    functions_yaml: pathlib.Path, example: str
) -> None:
    docs = render(functions_yaml, EXAMPLES / example, ROOT / "apis/bslr/composition.yaml")
    xr, resources = docs[0], by_resource_name(docs)
    [init] = [k for k in resources if k.startswith("repository-init-")]
    identity = ["service-account"] if "cloudIdentity" in xr["spec"] else []
    assert sorted(resources) == sorted(["network-policy", init, "repository-scripts", *identity])
    job = resources[init]
    assert init == f"repository-init-{job['metadata']['name'][-10:]}"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "/scripts/repository-init.sh"]
    assert container["args"][0] == xr["status"]["backend"]
    assert xr["metadata"]["namespace"] == job["metadata"]["namespace"]


def _shape(docs: list[dict]) -> dict[str, tuple[str, str, str]]:
    """What a resource is and where it lands; generated keys make the bytes differ."""
    return {
        key: (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        for key, obj in by_resource_name(docs).items()
        if not key.startswith("user-sync-")  # its name carries a digest of generated passwords
    }


def test_legacy_claim_renders_the_same_resources_in_the_claim_namespace(
    functions_yaml: pathlib.Path, first: list[dict]
) -> None:
    legacy = render(
        functions_yaml,
        EXAMPLES / "legacy/xbsls.yaml",
        ROOT / "apis/bsls-legacy/composition.yaml",
        required=EXAMPLES / "legacy/required",
    )
    assert _shape(legacy) == _shape(first)
    assert legacy[0]["status"]["endpoint"] == first[0]["status"]["endpoint"]
    before, after = by_resource_name(first), by_resource_name(legacy)
    for key in ("service", "network-policy", "scripts"):
        assert after[key].get("spec", after[key].get("data")) == before[key].get(
            "spec", before[key].get("data")
        )


def test_legacy_repository_claim_renders_an_init_job(functions_yaml: pathlib.Path) -> None:
    docs = render(
        functions_yaml,
        EXAMPLES / "legacy/xbslr.yaml",
        ROOT / "apis/bslr-legacy/composition.yaml",
        required=EXAMPLES / "legacy/required",
    )
    [job] = [v for k, v in by_resource_name(docs).items() if k.startswith("repository-init-")]
    assert job["metadata"]["namespace"] == "team-a"
    assert job["metadata"]["name"].startswith("team-a-repo-init-")


def test_legacy_apis_are_generated_from_the_namespaced_ones() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "hack/gen_legacy.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_make_render_prints_only_yaml_on_stdout() -> None:
    """`make render` on a free port, the README's main command: set-up talk on stderr."""
    env = {**os.environ, "BSLS_RENDER_PORT": str(procs.free_port())}
    out = subprocess.run(
        ["make", "--no-print-directory", "render"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]  # all of stdout is YAML
    assert out.stdout.startswith("---"), out.stdout[:200]
    assert docs[0]["kind"] == "BackupStorageLocationServer"
    assert len(docs[0]["status"]["tlsFingerprint"]) == 64
    assert {d["kind"] for d in docs[1:]} == {
        "Deployment",
        "Service",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "Job",
        "CronJob",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
