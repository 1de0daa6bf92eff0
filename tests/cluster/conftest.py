"""A real Crossplane control plane for the tests in this folder (hack/cluster.py).

One control plane per test session: etcd, kube-apiserver, Crossplane core and the
function, all local processes on loopback. Every test here is marked `cluster`, so
`pytest -m cluster` runs them alone and `-m "not cluster"` skips them.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent


def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("bsls_cluster", ROOT / "hack" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bsls_cluster"] = module
    spec.loader.exec_module(module)
    return module


cluster_mod = _load_cluster_module()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the local Crossplane control plane (hack/cluster.py)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator:
    """The control plane; its logs are printed when a test in the session failed.

    BSLS_CLUSTER_KEEP=1 keeps the state folder (logs, kubeconfig) after the session.
    """
    c = cluster_mod.Cluster(keep=os.environ.get("BSLS_CLUSTER_KEEP") == "1")
    with c:
        print(f"\n{c.describe()}")
        yield c
        if getattr(c, "failed", False):
            for name in ("crossplane", "function"):
                print(f"\n--- {name}.log (tail) ---\n{c.log_tail(name, 60)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    c = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and c is not None:
        c.failed = True
    return report


@pytest.fixture(scope="session")
def kube(cluster):
    """The API client (admin token)."""
    return cluster.kube
