"""RepositoryHealthy and MaintenanceOnSchedule: the periodic check Job, and what it found.

Once per check period (health.py) a Job opens the repository as the maintenance
identity: the storage answers, the repository opens, the password works. It keeps the
settings as the spec says, and runs the maintenance that was due when the period's Job
was first composed (recorded on the Job, so the same period never runs twice). What it
found goes into the BSLR's status, which keeps the record when the Job is gone: a
failed check makes the BSLR not Ready (its servers say so and keep running), and the
next attempt follows after a back-off (failures.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from function import health, names, placement, settings
from function.conditions import Condition, JobProgress, MaintenanceOnSchedule, RepositoryHealthy
from function.connection import Connection
from function.failures import Plan
from function.memo import recipe
from function.resources import jobs
from function.snapshot import RepositorySnapshot, parse_time
from function.step import KEEP, Desired, Step
from function.steps.attempts import attempt, retrying, runs

# The check Job's annotation: the maintenance it runs ("quick", "full", "quick,full").
MAINTENANCE = "dataprotection.bsls.dev/maintenance"


@dataclasses.dataclass(frozen=True)
class Check:
    """The record after this call, and whether the repository is healthy."""

    record: health.Record
    healthy: bool
    status: dict
    maintenance: Condition | None  # MaintenanceOnSchedule, once the repository is usable


def _finished(s: RepositorySnapshot) -> list[health.Finished]:
    out = []
    for r in runs(s, names.REPOSITORY_CHECK, None):
        if r.progress is JobProgress.RUNNING:
            continue
        at = s.observed.job_finished(r.key)
        if at is None:
            continue
        kinds = s.observed.annotations(r.key).get(MAINTENANCE, "")
        result = health.SUCCEEDED
        if r.progress is JobProgress.FAILED:
            result = r.failure.explain() if r.failure is not None else "it failed"
        out.append(health.Finished(r.name, at, result, tuple(k for k in kinds.split(",") if k)))
    return out


def step(
    s: RepositorySnapshot,
    connection: Connection,
    usable: bool,
    scripts: str,
    now: datetime.datetime,
) -> Step[Check]:
    """The current period's check Job, the record, and the two conditions."""
    owner, namespace, image, spec = s.xr.tenant, s.xr.namespace, s.input.kopiaImage, s.spec
    prev = s.xr.status.repository
    record = health.update(
        health.Record.read(prev.get("health"), prev.get("maintenance")), _finished(s)
    )
    period = health.slot(spec, namespace, s.xr.name, now)
    status = _status(s, record, period)
    if not usable:
        pending = Condition(
            None,
            RepositoryHealthy.VALIDATION_PENDING,
            "The first check runs once the repository is initialised.",
        )
        # Waits on the init step, whose condition says what runs: not busy by itself.
        return Step({}, pending, Check(record, True, status, None), wake=period.end)

    # A new value of the check-requested annotation is a new Job now; the next period's
    # Job follows on schedule.
    asked = f":{s.xr.check_requested}" if s.xr.check_requested else ""
    digest = hashlib.sha256(
        f"check:{period.index}:{connection.digest}:{image}:{settings.digest(spec)}{asked}".encode()
    ).hexdigest()
    found = runs(s, names.REPOSITORY_CHECK, None)
    job_name, plan, _ = attempt(found, owner, "check", digest, now)
    job_key = names.job_key(names.REPOSITORY_CHECK, job_name)
    # The maintenance this period runs: as decided when its first attempt was composed.
    earlier = [r for r in found if r.content == digest[:16]]
    if earlier:
        kinds = s.observed.annotations(max(earlier, key=lambda r: r.attempt).key).get(
            MAINTENANCE, ""
        )
    else:
        kinds = ",".join(health.due(spec, record, now))
    resources: dict[str, Desired] = {
        job_key: KEEP
        if plan.waiting_since
        else recipe(
            jobs.repository_job,
            component=names.REPOSITORY_CHECK,
            owner=owner,
            namespace=namespace,
            digest=digest,
            attempt=plan.attempt,
            image=image,
            uid=s.input.runAsUser,
            connection=connection,
            env=(*settings.env(spec), {"name": "BSLS_MAINTENANCE", "value": kinds}),
            notes=((MAINTENANCE, kinds),),
            scripts_config_map=scripts,
            placement=placement.merge(s.input.placement, None, connection.claim),
        )
    }
    wake = min(period.end, plan.next_at) if plan.next_at else period.end
    condition = _healthy(s, record, plan, job_name, period)
    maintained = _maintenance(s, record, now)
    return Step(
        resources,
        condition,
        Check(record, not record.failed, status, maintained),
        frozenset({job_key}),
        wake=wake,
    )


def _healthy(
    s: RepositorySnapshot, record: health.Record, plan: Plan, job: str, period: health.Slot
) -> Condition:
    namespace = s.xr.namespace
    if plan.waiting_since is not None:
        return retrying(
            RepositoryHealthy.VALIDATION_FAILED,
            namespace,
            job,
            plan,
            "check the repository (storage, repository, password)",
        )
    if record.last_check is None:
        return Condition(
            None,
            RepositoryHealthy.VALIDATION_PENDING,
            f"The first check (Job {namespace}/{job}) is running.",
        )
    when = health.stamp(record.last_check)
    if record.failed:
        return Condition(
            False,
            RepositoryHealthy.VALIDATION_FAILED,
            f"The check at {when} (Job {namespace}/{record.last_job}) failed: "
            f"{record.last_result}. Job {namespace}/{job} checks again now; a running "
            "server is left as it is.",
        )
    return Condition(
        True,
        RepositoryHealthy.VALIDATED,
        f"Checked at {when}: the storage answers, the repository opens and its password "
        f"works. Next check at {health.stamp(period.end)}.",
    )


def _maintenance(s: RepositorySnapshot, record: health.Record, now: datetime.datetime) -> Condition:
    late = health.overdue(s.spec, record, parse_time(s.xr.created), now)
    if late:
        what = "; ".join(
            f"{o.kind} maintenance was due at {health.stamp(o.since)} and has not run since"
            for o in late
        )
        return Condition(
            False,
            MaintenanceOnSchedule.OVERDUE,
            f"{what}. The repository's checks run it: see the RepositoryHealthy condition for why "
            f"they could not, and the check Jobs' logs (kubectl -n {s.xr.namespace} logs "
            f"job/<check Job>).",
        )
    quick, full = health.next_due(s.spec, record)
    return Condition(
        True,
        MaintenanceOnSchedule.ON_SCHEDULE,
        f"Quick maintenance next due {quick or 'at the next check'}, full maintenance "
        f"{full or 'at the next check'}; the checks run it as "
        f"{'@'.join(names.MAINTENANCE_IDENTITY)}.",
    )


def _status(s: RepositorySnapshot, record: health.Record, period: health.Slot) -> dict:
    check: dict[str, object] = {
        "validationIntervalMinutes": s.spec.health.validationIntervalMinutes,
        "nextValidationTime": health.stamp(period.end),
    }
    if record.last_check is not None:
        check["lastValidationTime"] = health.stamp(record.last_check)
        check["lastValidationResult"] = record.last_result
        check["lastValidationJob"] = record.last_job
    quick, full = health.next_due(s.spec, record)
    maintenance: dict[str, object] = {"owner": "@".join(names.MAINTENANCE_IDENTITY)}
    if record.last_quick is not None:
        maintenance["lastQuick"] = health.stamp(record.last_quick)
        maintenance["nextQuick"] = quick
    if record.last_full is not None:
        maintenance["lastFull"] = health.stamp(record.last_full)
        maintenance["nextFull"] = full
    return {"health": check, "maintenance": maintenance}
