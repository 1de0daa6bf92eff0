"""Fixtures of the VM suite: the guest image, and the stand-in cluster's server (tests/e2e)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

# The stand-in cluster, its clock, the tenant's Secrets and the examples' stack, as the
# end-to-end suite stands them up (one per module).
from tests.e2e.conftest import clock, cluster, kopia, stack, tenant_secrets  # noqa: F401
from tests.vm import guest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ("qemu-system-x86_64", "qemu-img", "xorrisofs", "socat", "debootstrap", "mkfs.ext4")


@pytest.fixture(scope="session")
def guest_image(kopia: pathlib.Path) -> pathlib.Path:  # noqa: F811
    """The guest image of hack/guest.py (built on first use, then from the cache)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        done = subprocess.run(
            [ROOT / "hack" / "vm-deps.sh"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"the VM suite needs {missing}: {done.stderr}", pytrace=False)
    builder = guest.load_builder()
    try:
        return builder.build(kopia)
    except builder.GuestError as e:
        pytest.fail(f"the guest image: {e}", pytrace=False)


FIGURES: dict[str, float] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, float]:
    """Seconds measured in the guests (boot, connect, first backup, restore, ...)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures, in every run's output (CI logs them)."""
    if FIGURES:
        terminalreporter.section("VM suite figures (seconds)")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:48} {value:8.1f}")
