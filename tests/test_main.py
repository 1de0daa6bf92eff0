"""Start-up: the function serves on the address it is given, and failures exit non-zero."""

from __future__ import annotations

import subprocess
import sys

from tests import procs


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "function.main", *args],
        cwd=procs.ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unreadable_tls_directory_exits_non_zero_with_the_reason() -> None:
    out = run_main("--tls-certs-dir=/nonexistent")
    assert out.returncode == 1
    assert "could not start" in out.stderr
    assert "/nonexistent/tls.crt" in out.stderr


def test_port_in_use_exits_non_zero() -> None:
    address = procs.start_function()
    out = run_main("--insecure", f"--address={address}")
    assert out.returncode == 1
    assert "Failed to bind" in out.stderr
