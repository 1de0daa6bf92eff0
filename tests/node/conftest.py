"""The real node for the tests in this folder (hack/node.py): one, started before the first
of them and stopped after the last.

Every test here is marked `node`: `pytest -m node` runs them alone, `-m "not node"`
skips them. The node needs root and builds what it lacks first (images from the cache,
or from scratch on a fresh machine: a few minutes). Nothing in this suite writes the
status of anything: Jobs complete, Deployments become available and objects are garbage
collected because the real controllers and the kubelet do it.

BSLS_NODE_KEEP=1 keeps the run folder (logs, kubeconfig, the volumes) after the session.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time
from collections.abc import Iterator

import pytest

from tests.node import tenant

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Where the session writes the milestones it measured (also printed at the end);
# `make bench` points it at a file of its own.
TIMINGS = pathlib.Path(os.environ.get("BSLS_NODE_TIMINGS") or ROOT / ".tools" / "node-timings.json")
# And the other figures (sizes, counts), each with its unit.
FIGURES = ROOT / ".tools" / "node-figures.json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: needs the real single-node cluster (hack/node.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.node)


@pytest.fixture(scope="package")
def node() -> Iterator:
    """The node, started once for this folder and stopped right after its last test (the
    suites after it get the machine's cores back); its components' logs are printed if a
    test failed."""
    n = tenant.node_module().Node(keep=os.environ.get("BSLS_NODE_KEEP") == "1")
    started = time.monotonic()
    with n:
        tenant.MILESTONES["node up (images cached or built, node Ready, package Healthy)"] = round(
            time.monotonic() - started, 1
        )
        for step in ("images built", "node Ready (since start)", "package Healthy (since start)"):
            tenant.MILESTONES[f"node: {step}"] = n.timings[step]
        print(f"\n{n.describe()}", file=sys.stderr)
        yield n
        if getattr(n, "failed", False):
            print(tenant.diagnostics(n), file=sys.stderr)
    # Stopping the node, pass or fail, leaves nothing behind on the machine.
    left = tenant.node_module().leftovers(n.stopped)
    assert not left, f"the node left behind: {left}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    n = getattr(item, "funcargs", {}).get("node")
    if report.failed and n is not None:
        n.failed = True
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if tenant.FIGURES:
        terminalreporter.section("node figures")
        for name, (value, unit) in tenant.FIGURES.items():
            terminalreporter.write_line(f"{value:8.1f} {unit:5} {name}")
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text(json.dumps(tenant.FIGURES, indent=1) + "\n")
    if not tenant.MILESTONES:
        return
    terminalreporter.section("node milestones (seconds)")
    for name, seconds in tenant.MILESTONES.items():
        terminalreporter.write_line(f"{seconds:8.1f}  {name}")
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(tenant.MILESTONES, indent=1) + "\n")


@pytest.fixture(scope="package")
def kube(node):
    """The API client (admin)."""
    return node.kube


@pytest.fixture(scope="package")
def established(node) -> None:
    """The XRDs are installed and Established (the node does it at start)."""
    for kind in (tenant.BSLR, tenant.BSLS):
        node.kube.resource(tenant.GROUP_VERSION, kind)
