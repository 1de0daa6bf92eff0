"""The API server's own validation of the XRDs (CEL rules), on hack/cluster.py's control plane.

No node and no pods: etcd, kube-apiserver, Crossplane (which turns the XRDs into CRDs)
and the function as local processes on loopback. One control plane per session; every
test here is marked `apiserver`, so `pytest -m "not apiserver"` skips them.
"""

from __future__ import annotations

import copy
import importlib.util
import pathlib
import sys
import time
from collections.abc import Iterator

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
T = 60  # seconds for Crossplane to establish an XRD


def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("bsls_cluster", ROOT / "hack" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bsls_cluster"] = module
    spec.loader.exec_module(module)
    return module


cluster_mod = _load_cluster_module()
ApiError = cluster_mod.ApiError


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "apiserver: needs hack/cluster.py's control plane")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.apiserver)


def docs(path: pathlib.Path) -> list[dict]:
    """Every YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def example(name: str, namespace: str) -> dict:
    """The first document of examples/<name>, moved to `namespace`."""
    doc = copy.deepcopy(docs(ROOT / "examples" / name)[0])
    doc["metadata"]["namespace"] = namespace
    return doc


@pytest.fixture(scope="session")
def kube() -> Iterator:
    """The API client of a control plane with the XRDs and Compositions Established."""
    with cluster_mod.Cluster() as cluster:
        kube = cluster.kube
        xrds = []
        for path in sorted((ROOT / "apis").glob("*/*.yaml")):
            for doc in docs(path):
                applied = kube.apply(doc)
                if doc["kind"] == "CompositeResourceDefinition":
                    xrds.append(applied)
        deadline = time.monotonic() + T
        for xrd in xrds:
            while True:
                found = kube.reload(xrd)
                conditions = (found.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                assert time.monotonic() < deadline, f"XRD {xrd['metadata']['name']} not Established"
                time.sleep(0.25)
        while True:  # the kinds are served a moment after Established
            try:
                kube.resource("dataprotection.bsls.dev/v1alpha1", "BackupStorageLocationRepository")
                break
            except Exception:
                assert time.monotonic() < deadline, "the BSLR kind is not served"
                time.sleep(0.25)
        yield kube
