"""Where kopia's CPU time goes: a CPU profile (kopia's own `--profile-cpu`) in categories.

kopia writes `cpu.pprof` when a command exits (`--profile-cpu
--diagnostics-output-directory=DIR`, hidden global flags of v0.23.1, cli/profile.go and
cli/observability_flags.go). `go tool pprof -traces` prints every sampled stack; each
sample is put in the first category whose marker appears anywhere in its stack, so a
memmove inside TLS counts as TLS and a BLAKE2B inside the server's WriteContent counts
as content hashing.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import threading
import time
import urllib.request

from bench import common

# (category, markers): checked in this order against the whole stack.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scrypt (logins; repository and cache keys)", ("golang.org/x/crypto/scrypt",)),
    ("local cache files (write, fsync)", ("kopia/internal/cache.",)),
    ("TLS", ("crypto/tls.",)),
    (
        "gRPC, HTTP/2, protobuf",
        ("google.golang.org/grpc", "net/http.(*http2", "x/net/http2", "google.golang.org/protobuf"),
    ),
    (
        "repository logs",
        ("kopia/internal/contentlog", "kopia/internal/repodiag", "go.uber.org/zap"),
    ),
    ("content hashing", ("blake2b", "kopia/repo/hashing")),
    ("splitting", ("kopia/repo/splitter", "rollinghash")),
    ("encryption", ("kopia/repo/encryption", "aes/gcm", "crypto/aes")),
    ("compression", ("compress/", "klauspost")),
    ("storage I/O", ("kopia/repo/blob",)),
    (
        "index, manifests",
        ("kopia/repo/content/index", "kopia/repo/manifest", "kopia/internal/epoch"),
    ),
    ("reading/writing files", ("kopia/snapshot/upload", "kopia/snapshot/restore", "kopia/fs/")),
    ("Go runtime, GC", ("runtime.",)),
)
OTHER = "other"
_VALUE = re.compile(r"^\s*([\d.]+)(ns|us|µs|ms|s)\s+(.*)$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def go() -> str | None:
    """The `go` binary (pprof lives in its toolchain), if there is one."""
    return shutil.which("go")


def categorise(pprof: pathlib.Path) -> dict[str, float]:
    """CPU seconds per category of one cpu.pprof file."""
    binary = go()
    if binary is None:
        return {}
    kopia = common.ROOT / ".tools" / "bin" / "kopia"
    done = subprocess.run(
        [binary, "tool", "pprof", "-traces", str(kopia), str(pprof)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    out: dict[str, float] = {}
    value = 0.0
    stack: list[str] = []

    def flush() -> None:
        if value and stack:
            joined = "\n".join(stack)
            name = next((n for n, marks in CATEGORIES if any(m in joined for m in marks)), OTHER)
            out[name] = out.get(name, 0.0) + value

    for line in done.stdout.splitlines():
        if line.startswith("-----------+"):
            flush()
            value, stack = 0.0, []
            continue
        m = _VALUE.match(line)
        if m:
            value = float(m.group(1)) * _UNITS[m.group(2)]
            stack = [m.group(3).strip()]
        elif stack and line.strip():
            stack.append(line.strip())
    flush()
    return out


def find(directory: pathlib.Path) -> pathlib.Path | None:
    """The newest cpu.pprof kopia wrote under a diagnostics directory."""
    found = sorted(directory.rglob("cpu.pprof"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def summary(categories: dict[str, float], top: int = 5) -> str:
    """`a 1.2 s (40 %), b ...` for the largest categories."""
    total = sum(categories.values())
    if not total:
        return "no samples"
    ordered = sorted(categories.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {secs:.2f} s ({100 * secs / total:.0f} %)" for name, secs in ordered)


class Fetch:
    """A CPU profile of a running kopia from its pprof endpoint, over the next `seconds`."""

    def __init__(self, port: int, seconds: int, target: pathlib.Path) -> None:
        self.target = target
        self.error: Exception | None = None
        url = f"http://127.0.0.1:{port}/debug/pprof/profile?seconds={seconds}"
        self.thread = threading.Thread(target=self._get, args=(url, seconds), daemon=True)
        self.thread.start()
        time.sleep(0.2)  # the profile starts when the server receives the request

    def _get(self, url: str, seconds: int) -> None:
        try:
            with urllib.request.urlopen(url, timeout=seconds + 60) as rsp:  # noqa: S310 - loopback
                self.target.parent.mkdir(parents=True, exist_ok=True)
                self.target.write_bytes(rsp.read())
        except OSError as e:
            self.error = e

    def wait(self) -> pathlib.Path | None:
        """The profile file once the window has passed (None if it failed)."""
        self.thread.join()
        return None if self.error else self.target
