"""Requests and limits derived from what the growth section measured.

The rules, applied to each stage's figures (MiB, rounded up):

- server memory **request** = its peak RSS under a VM's backup and restore and a burst
  of logins (what it uses in a busy hour), rounded up to 64 MiB;
- server memory **limit** = 1.5 x (that peak + the peak of a full maintenance run),
  rounded up to 256 MiB: the server runs full maintenance itself, in its own process,
  every 24 hours, possibly while VMs back up, and Go's heap grows to about twice what is
  live between collections;
- user-sync Job memory **request** = its peak RSS (one kopia process at a time), rounded
  up to 64 MiB; **limit** = 2 x that, rounded up to 256 MiB.
"""

from __future__ import annotations

import math

from bench import common
from bench.growth import BURST, StageResult


def up(mib: float, step: int) -> int:
    """Round up to a multiple of `step`."""
    return max(step, math.ceil(mib / step) * step)


def server_request(r: StageResult) -> int:
    """Server memory request, MiB."""
    return up(r.peak_rss_mib, 64)


def server_limit(r: StageResult) -> int:
    """Server memory limit, MiB."""
    return up(1.5 * (r.peak_rss_mib + r.maintenance_rss_mib), 256)


def job_request(r: StageResult) -> int:
    """User-sync Job memory request, MiB."""
    return up(r.sync_rss_mib, 64)


def job_limit(r: StageResult) -> int:
    """User-sync Job memory limit, MiB."""
    return up(2 * r.sync_rss_mib, 256)


def render(results: list[StageResult]) -> str:
    """The sizing table (Markdown), from one run's growth figures."""
    rows = [
        (
            r.stage.users,
            r.stage.snapshots,
            f"{r.contents:,}",
            f"{r.peak_rss_mib:.0f} / {r.maintenance_rss_mib:.0f}",
            f"{server_request(r)}Mi",
            f"{server_limit(r)}Mi",
            f"{r.sync_rss_mib:.0f}",
            f"{job_request(r)}Mi",
            f"{job_limit(r)}Mi",
            f"{r.sync_s:.0f}",
        )
        for r in results
    ]
    return (
        "Memory sizing derived from these figures (`bench/sizing.py`: server request = its "
        f"peak under a VM's backup and restore and {BURST} logins at once, rounded up to 64 "
        "MiB; limit = 1.5 x (that peak + a full maintenance run's peak), rounded up to 256 "
        "MiB; Job request = its peak, limit = 2 x its peak):\n\n"
        + common.table(
            (
                "users",
                "snapshots (beyond the VMs')",
                "contents",
                "server peak / full maintenance peak MiB",
                "server request",
                "server limit",
                "user-sync peak MiB",
                "Job request",
                "Job limit",
                "user-sync Job s",
            ),
            rows,
        )
    )
