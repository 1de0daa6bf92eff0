"""Processes the tests start: the function's gRPC server, and the pinned tools."""

from __future__ import annotations

import atexit
import os
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "bin"


def tool(name: str) -> pathlib.Path:
    """A pinned tool from .tools/bin; a missing one fails the test with the fix."""
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        msg = f"{path} is missing: build the pinned test tools with `make tools`"
        raise RuntimeError(msg)
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"process exited with {proc.returncode} before listening on {port}"
            raise RuntimeError(msg)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    msg = f"nothing listened on 127.0.0.1:{port} within {timeout}s"
    raise RuntimeError(msg)


def start_function(*args: str) -> str:
    """Start `python -m function.main --insecure` on a free port; stopped at exit."""
    return start_function_process(*args)[0]


def start_function_process(*args: str) -> tuple[str, subprocess.Popen]:
    """Like start_function, also returning the process (to watch its memory)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "function.main", "--insecure", f"--address=127.0.0.1:{port}", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    atexit.register(_stop, proc)
    wait_for_port(port, proc)
    return f"127.0.0.1:{port}", proc


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (from /proc)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = f"no VmRSS for pid {pid}"
    raise RuntimeError(msg)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
