"""When a repository is checked and maintained, and what its record says: pure arithmetic.

A BSLR is checked once per slot of `spec.health.validationIntervalMinutes`. Slots are
offset per repository (a digest of its namespace and name), so a cluster's
repositories are not all checked in the same minute. Each check runs the maintenance
that is due: quick once `quickIntervalMinutes`, full once `fullIntervalHours` passed
since the last one, less half a check interval (checks are where maintenance runs, so
a maintenance due between two checks runs at the nearer one).

The record (last check and its result, last quick and full maintenance) lives in the
BSLR's status: each call reads the previous one and adds what the observed Jobs show.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from function.models import BSLRSpec

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def stamp(when: datetime.datetime) -> str:
    """A time as the status shows it."""
    return when.astimezone(datetime.UTC).strftime(RFC3339)


def parse(when: object) -> datetime.datetime | None:
    """A time from the status, or None."""
    if not isinstance(when, str):
        return None
    try:
        return datetime.datetime.strptime(when, RFC3339).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Slot:
    """One check period of one repository."""

    index: int
    start: datetime.datetime
    end: datetime.datetime


def slot(spec: BSLRSpec, namespace: str, name: str, now: datetime.datetime) -> Slot:
    """The check period `now` is in."""
    interval = spec.health.validationIntervalMinutes * 60
    offset = int.from_bytes(hashlib.sha256(f"{namespace}/{name}".encode()).digest()[:4]) % interval
    index = (int(now.timestamp()) - offset) // interval
    start = datetime.datetime.fromtimestamp(index * interval + offset, datetime.UTC)
    return Slot(index, start, start + datetime.timedelta(seconds=interval))


@dataclasses.dataclass(frozen=True)
class Record:
    """What the status remembers about checks and maintenance."""

    last_check: datetime.datetime | None = None
    last_result: str = ""  # "Succeeded", or what failed and the fix
    last_job: str = ""  # the check Job that found it
    last_quick: datetime.datetime | None = None
    last_full: datetime.datetime | None = None

    @property
    def failed(self) -> bool:
        """Whether the last check failed."""
        return bool(self.last_result) and self.last_result != SUCCEEDED

    @staticmethod
    def read(health: object, maintenance: object) -> Record:
        """The record from the previous status (fields of the wrong type read as absent)."""
        h = health if isinstance(health, dict) else {}
        m = maintenance if isinstance(maintenance, dict) else {}
        result = h.get("lastValidationResult")
        job = h.get("lastValidationJob")
        return Record(
            last_check=parse(h.get("lastValidationTime")),
            last_result=result if isinstance(result, str) else "",
            last_job=job if isinstance(job, str) else "",
            last_quick=parse(m.get("lastQuick")),
            last_full=parse(m.get("lastFull")),
        )


SUCCEEDED = "Succeeded"


@dataclasses.dataclass(frozen=True)
class Finished:
    """A check Job that completed or failed, as observed."""

    job: str
    at: datetime.datetime
    result: str  # SUCCEEDED, or the cause
    maintenance: tuple[str, ...]  # what it ran: "quick", "full"


def update(record: Record, finished: list[Finished]) -> Record:
    """The record with every check that finished after it (in time order)."""
    for f in sorted(finished, key=lambda f: (f.at, f.job)):
        if record.last_check is not None and f.at < record.last_check:
            continue
        if record.last_check == f.at and record.last_job == f.job:
            continue
        ok = f.result == SUCCEEDED
        record = Record(
            last_check=f.at,
            last_result=f.result,
            last_job=f.job,
            last_quick=f.at if ok and "quick" in f.maintenance else record.last_quick,
            last_full=f.at if ok and "full" in f.maintenance else record.last_full,
        )
    return record


def due(spec: BSLRSpec, record: Record, now: datetime.datetime) -> tuple[str, ...]:
    """The maintenance a check that starts `now` runs."""
    half = datetime.timedelta(minutes=spec.health.validationIntervalMinutes) / 2
    quick = datetime.timedelta(minutes=spec.maintenance.quickIntervalMinutes)
    full = datetime.timedelta(hours=spec.maintenance.fullIntervalHours)
    out = []
    if record.last_quick is None or now >= record.last_quick + quick - half:
        out.append("quick")
    if record.last_full is None or now >= record.last_full + full - half:
        out.append("full")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Overdue:
    """Maintenance that should have run and did not."""

    kind: str  # "quick" or "full"
    since: datetime.datetime  # when it was due


def overdue(
    spec: BSLRSpec, record: Record, created: datetime.datetime | None, now: datetime.datetime
) -> list[Overdue]:
    """Maintenance kinds whose last run (or the repository's creation) is too long ago.

    Too long: one interval for it to fall due, and one more (at least one check
    interval) for the checks to run it, even after a failure and its retries.
    """
    check = datetime.timedelta(minutes=spec.health.validationIntervalMinutes)
    out = []
    quick = datetime.timedelta(minutes=spec.maintenance.quickIntervalMinutes)
    full = datetime.timedelta(hours=spec.maintenance.fullIntervalHours)
    for kind, last, interval in (
        ("quick", record.last_quick, quick),
        ("full", record.last_full, full),
    ):
        since = last or created
        if since is None:
            continue
        if now > since + interval + max(interval, check):
            out.append(Overdue(kind, since + interval))
    return out


def next_due(spec: BSLRSpec, record: Record) -> tuple[str, str]:
    """When quick and full maintenance are next due ("" when they never ran: at once)."""
    quick = datetime.timedelta(minutes=spec.maintenance.quickIntervalMinutes)
    full = datetime.timedelta(hours=spec.maintenance.fullIntervalHours)
    return (
        stamp(record.last_quick + quick) if record.last_quick else "",
        stamp(record.last_full + full) if record.last_full else "",
    )
