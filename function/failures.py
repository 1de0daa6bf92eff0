"""Why a Job failed, and when the function tries again.

The Job scripts end with a distinct exit code for each cause they recognise
(`scripts/storage-errors.sh`, `user-sync.sh`). Each Job's podFailurePolicy fails the Job
at once on those codes, and the Job controller writes the code into the Job's `Failed`
condition ("Container repository-init for pod ns/pod failed with exit code 11 matching
FailJob rule at index 0"), which the function reads back to say what failed and what
to fix. Any other failure is retried by the Job itself (backoffLimit) first.

A failed Job is then tried again by the function, without any spec change, after a
back-off that doubles from 30 seconds up to 10 minutes: a bucket created after the
first attempt is found by a later one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from typing import NamedTuple

from function import names

BACKOFF_FIRST = datetime.timedelta(seconds=30)
BACKOFF_CAP = datetime.timedelta(minutes=10)
ATTEMPT = "dataprotection.bsls.dev/attempt"


class Cause(NamedTuple):
    """What an exit code of the Job scripts means, and what to do about it."""

    what: str
    fix: str


CAUSES: dict[int, Cause] = {
    10: Cause(
        "the storage holds a repository whose password is not the one in passwordSecretRef",
        "put the repository's password back in that Secret",
    ),
    11: Cause(
        "the bucket (or container) does not exist",
        "create it: kopia does not create buckets",
    ),
    12: Cause(
        "the storage refused the credentials (or the volume is not writable)",
        "fix the credentials Secret the BSLR names, or the volume's permissions",
    ),
    13: Cause(
        "the storage could not be reached",
        "check the endpoint, DNS and any egress NetworkPolicy",
    ),
    14: Cause(
        "the storage holds data that is not a Kopia repository",
        "point the BSLR at an empty bucket, prefix or folder",
    ),
    15: Cause(
        "the storage holds no Kopia repository any more (its data or the bucket itself "
        "is gone, or the BSLR points at the wrong place)",
        "restore the repository's data (a bucket version, a volume snapshot); a running "
        "server is left as it is",
    ),
    16: Cause(
        "the repository was created with another format than spec.format says (the "
        "Job's log names the field)",
        "set spec.format to the repository's format (kopia repository status shows it), "
        "or point the BSLR at empty storage",
    ),
    17: Cause(
        "the bucket refused object lock (it was not created with object lock enabled)",
        "use a bucket created with object lock enabled; object lock cannot be turned on "
        "for the objects already in a bucket",
    ),
    20: Cause(
        "the server's certificate did not verify against the CA bundle",
        "check TLSReady; if the certificate did not change, find what answers on the Service",
    ),
    21: Cause(
        "the server refused the control password",
        "let the function regenerate it: delete the password key of the control Secret",
    ),
}

_EXIT = re.compile(r"failed with exit code (\d+) matching FailJob rule")


def pod_failure_policy(container: str) -> dict:
    """Fail the Job at once on every exit code with a known cause: retrying cannot help."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": container,
                    "operator": "In",
                    "values": sorted(CAUSES),
                },
            }
        ]
    }


def backoff(attempt: int) -> datetime.timedelta:
    """How long after attempt `attempt` (0 is the first) failed the next one starts."""
    return min(BACKOFF_FIRST * 2 ** min(attempt, 16), BACKOFF_CAP)


def attempt_name(owner: str, suffix: str, digest: str, attempt: int) -> str:
    """The Job's name for one attempt: the first keeps the content digest's name."""
    if attempt:
        digest = hashlib.sha256(f"{digest}:attempt {attempt}".encode()).hexdigest()
    return names.job(owner, suffix, digest)


@dataclasses.dataclass(frozen=True)
class Failure:
    """A failed Job as its status says."""

    at: datetime.datetime | None  # when it failed (the Failed condition's transition)
    reason: str  # the Job controller's: PodFailurePolicy, BackoffLimitExceeded, ...
    message: str

    def explain(self) -> str:
        """What failed and what to do, from the exit code the Job reports."""
        found = _EXIT.search(self.message)
        cause = CAUSES.get(int(found.group(1))) if found else None
        if cause is not None:
            return f"{cause.what} (exit code {found.group(1)}); {cause.fix}"  # type: ignore[union-attr]
        detail = f": {self.message}" if self.message else ""
        return f"{self.reason or 'it failed'}{detail}"


class Plan(NamedTuple):
    """Which attempt of a Job to compose now."""

    attempt: int
    waiting_since: Failure | None  # the failed attempt kept until the next one is due
    next_at: datetime.datetime | None  # when the next attempt starts, while waiting


def plan(runs: list[tuple[int, Failure | None]], now: datetime.datetime | None) -> Plan:
    """The attempt to compose, given the observed attempts (number, failure if failed).

    Without any, the first. While the latest runs or completed, that one. When it
    failed, it is kept until its back-off has passed; then the next attempt. `now` may
    be None only when none failed (a settled call's inputs hold no clock).
    """
    if not runs:
        return Plan(0, None, None)
    attempt, failure = max(runs, key=lambda r: r[0])
    if failure is None:
        return Plan(attempt, None, None)
    if now is None:
        msg = "a failed attempt is planned without the time"
        raise ValueError(msg)
    # Without a time (the Job controller always writes one) it is due at once.
    due = failure.at + backoff(attempt) if failure.at is not None else now
    if now < due:
        return Plan(attempt, failure, due)
    return Plan(attempt + 1, None, None)
