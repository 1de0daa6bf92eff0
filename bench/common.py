"""What every section of `make bench` shares: spread, load, machine, processes, tables."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class Spread:
    """Repeated measurements of one thing: median, min and max."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        """The spread of some samples (at least one)."""
        if not samples:
            msg = "a spread needs at least one sample"
            raise ValueError(msg)
        return cls(tuple(samples))

    @property
    def median(self) -> float:
        """The median."""
        return statistics.median(self.samples)

    @property
    def lo(self) -> float:
        """The smallest sample."""
        return min(self.samples)

    @property
    def hi(self) -> float:
        """The largest sample."""
        return max(self.samples)

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """`median (min-max)`, or the one value when there is one sample."""
        if len(self.samples) == 1:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({self.lo:.{digits}f}-{self.hi:.{digits}f})"


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class LoadWatch:
    """Samples the 1-minute load average while a section runs (the bench's own load too)."""

    def __init__(self, period: float = 2.0) -> None:
        self.period = period
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        """`start a, max b, end c`."""
        s = self.samples
        return f"start {s[0]:.2f}, max {max(s):.2f}, end {s[-1]:.2f}"


def cpu_model() -> str:
    """The CPU's model name."""
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine() -> str:
    """Cores, CPU, memory, Python and OS: the line every table starts with."""
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu_model()}), {mem:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


# ----------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (its own, not its children's)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid: int, key: str) -> int:
    """A `/proc/<pid>/status` size in KiB (VmRSS, VmHWM, ...)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    msg = f"no {key} for pid {pid}"
    raise RuntimeError(msg)


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a live process (VmHWM), in MiB."""
    return proc_status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> None:
    """Start a new peak: writing 5 to clear_refs resets VmHWM to the current RSS."""
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished command: wall time, its CPU time and peak RSS, and its output."""

    wall: float
    cpu: float  # user + system of the process and every descendant it waited for
    peak_rss_mib: float  # the largest process of the tree
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: pathlib.Path,
    timeout: float = 600,
    check: bool = True,
) -> Run:
    """Run a command and measure it with wait4: its CPU and the peak RSS of its tree."""
    out = cwd / ".bench-stdout"
    err = cwd / ".bench-stderr"
    start = time.monotonic()
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=o, stderr=e
        )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done = Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
    )
    if check and done.returncode != 0:
        msg = f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        raise RuntimeError(msg)
    return done


def children_peak_rss_mib() -> float:
    """The largest peak RSS of any child this process has waited for."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@contextlib.contextmanager
def pinned(cpus: Iterable[int] | None) -> Iterator[None]:
    """Run the block (and every process it starts) on these CPUs; None leaves it alone."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def repeat(n: int, measure: Callable[[int], float]) -> Spread:
    """Measure n times (the index is passed along), as a spread."""
    return Spread.of([measure(i) for i in range(n)])


# ----------------------------------------------------------------------- tables


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; `align` is one of l/r per column (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    """`met` or `missed`."""
    return "met" if ok else "**missed**"


def fsync_ms(folder: pathlib.Path, size: int = 8192, n: int = 30) -> Spread:
    """Milliseconds to write and fsync a new file of `size` bytes here (the disk's pace)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    times = []
    for i in range(n):
        path = folder / f".fsync-{i}"
        start = time.perf_counter()
        with path.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        times.append((time.perf_counter() - start) * 1000)
        path.unlink()
    return Spread.of(times)
