"""Fixtures of the end-to-end suite: the pinned kopia and one stand-in cluster per module."""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from tests import helpers
from tests.e2e.cluster import TOOLS_BIN, Cluster
from tests.e2e.stack import Stack, stand_up

KOPIA_VERSION = "v0.23.1"

# Test speed-ups: env the manifests do not set, so the scripts' defaults apply in a
# cluster. The user-sync Job retries `kopia server refresh` 30 times, 5 s apart, while
# the server (re)starts; here the server is always up when a sync runs, and a broken
# refresh should fail the test in seconds, not minutes. The harness refuses extra env
# that would override anything a manifest sets.
SPEED_UPS = {"user-sync": {"BSLS_REFRESH_ATTEMPTS": "5", "BSLS_REFRESH_DELAY": "1"}}


@pytest.fixture(scope="session")
def kopia() -> pathlib.Path:
    """The pinned kopia binary; a missing or different one fails the suite."""
    path = TOOLS_BIN / "kopia"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: run `make tools` to build the pinned kopia {KOPIA_VERSION}",
            pytrace=False,
        )
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    if not done.stdout.startswith(KOPIA_VERSION + " "):
        pytest.fail(
            f"{path} is {done.stdout.strip() or done.stderr.strip()!r}, not kopia "
            f"{KOPIA_VERSION}: run `make tools`",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def cluster(kopia: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh stand-in cluster; every pod it started is killed on teardown."""
    del kopia  # only required: the pods find it on PATH
    c = Cluster(tmp_path_factory.mktemp("cluster"), extra_env=SPEED_UPS)
    try:
        yield c
    finally:
        c.shutdown()


# Clients verify certificates against the real time, so the function's clock starts far
# enough in the past that the renewal scenario (250 days on) still ends before today.
CLOCK_START_DAYS_AGO = 300


@pytest.fixture(scope="module")
def clock() -> helpers.Clock:
    """The function's clock, which the renewal scenario moves forward."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return helpers.Clock(now - datetime.timedelta(days=CLOCK_START_DAYS_AGO))


@pytest.fixture(scope="module")
def tenant_secrets(cluster: Cluster) -> None:
    """What an app team applies first: the Secrets and the claim (examples/)."""
    cluster.apply(
        *helpers.load("secrets.yaml"),
        *helpers.load("required/secrets.yaml"),
        *helpers.load("claim.yaml"),
    )


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster,
    clock: helpers.Clock,
    tenant_secrets: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    """The examples' repository (filesystem) and server, up and synced, for one module."""
    del tenant_secrets
    return stand_up(
        cluster,
        helpers.example("bslr.yaml"),
        helpers.example("bsls.yaml"),
        clock,
        tmp_path_factory.mktemp("clients"),
    )
