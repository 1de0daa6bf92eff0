"""End to end on the real node: what a tenant and a VM owner wait for on a cluster.

The real single-node cluster of `tests/node` (hack/node.py: kubelet, containerd,
Crossplane with the function installed from its package) runs two of its stories as
written, and their milestones are the figures:

- `tests/node/test_s3.py`: the example S3 BSLR and BSLS applied together and left alone
  (nobody touches the BSLS: it sees its repository Ready when the TTL of the function's
  last answer runs out), then alice's VM pod connects with her bundle and backs up; carol
  is added to the spec and her VM logs in with her generated password;
- `tests/node/test_filesystem.py`: the filesystem story, whose rotation step changes
  alice's password in her Secret and nothing else.

The stories are the tests' own (one source of truth: a figure here is a behaviour the
suite checks); the node is started once for both. It needs root, and one node runs per
machine: if another holds the lock, the section waits for it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pathlib
import subprocess
import sys
import time

from bench import common

STORIES = ("tests/node/test_s3.py", "tests/node/test_filesystem.py")
LOCK = pathlib.Path("/run/bsls-node/lock")  # hack/node.py's
APPLY_TO_BACKUP_S = 60.0
ROTATION_S = 30.0

APPLY = "s3: apply of BSLR and BSLS to the VM's first snapshot"
NEW_USER = "s3: a new user can log in (after the spec change)"
ROTATED = "filesystem: rotated password in effect (no touch: Crossplane's poll)"


@dataclasses.dataclass
class Result:
    """The stories' milestones (seconds), the run's wall time and the load it saw."""

    milestones: dict[str, float]
    wall: float
    load: str
    passed: bool


def wait_for_the_node_lock() -> float:
    """Seconds spent waiting until no other node runs on this machine."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with LOCK.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released at once: hack/node.py takes it itself
        fcntl.flock(f, fcntl.LOCK_UN)
    return time.monotonic() - start


def measure(work: pathlib.Path) -> Result:
    """Run the two stories on a fresh node; their milestones, and whether they passed."""
    work.mkdir(parents=True, exist_ok=True)
    timings = work / "node-timings.json"
    waited = wait_for_the_node_lock()
    if waited > 1:
        print(f"  waited {waited:.0f} s for another node on this machine to stop", flush=True)
    env = {**os.environ, "BSLS_NODE_TIMINGS": str(timings)}
    with common.LoadWatch() as load:
        start = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *STORIES],
            cwd=common.ROOT,
            env=env,
            check=False,
        )
        wall = time.monotonic() - start
    milestones = json.loads(timings.read_text()) if timings.exists() else {}
    return Result(milestones, wall, load.summary(), run.returncode == 0)


def render(result: Result) -> tuple[str, list[tuple[str, str, bool]]]:
    """The milestones as a table, and the targets for the real node."""
    rows = [(name, f"{seconds:.1f}") for name, seconds in result.milestones.items()]
    text = (
        common.table(("milestone", "s"), rows, align="lr")
        + f"\n\nThe stories {'passed' if result.passed else '**FAILED**'} "
        f"({' and '.join(f'`{s}`' for s in STORIES)}, {result.wall:.0f} s with the node's "
        f"start). Load average (1 min): {result.load}."
    )
    targets = []
    for name, limit, label in (
        (APPLY, APPLY_TO_BACKUP_S, "apply to first backup on the real node"),
        (ROTATED, ROTATION_S, "rotated password in effect on the real node"),
    ):
        got = result.milestones.get(name)
        targets.append(
            (
                f"{label} < {limit:.0f} s",
                "not measured" if got is None else f"{got:.1f} s",
                got is not None and got < limit,
            )
        )
    return text, targets
