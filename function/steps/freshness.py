"""BackupsFresh: when each user last stored a snapshot, and who has not for too long.

A CronJob of the server (resources/freshness.py, freshness.sh) lists every snapshot
record as `freshness@bsls-system` and writes a report into a ConfigMap it alone may
patch. This step composes the CronJob and what it needs, reads the report back from
the observed ConfigMap, and judges it against the time: a user whose newest snapshot
was stored more than `staleAfterMinutes` ago, or who has none, is stale; a report older
than that says nothing any more, and the condition says so.

The reader's password is generated once and kept in its Secret; the users step hands
it to the sync Job, which installs the reader beside the users (access.READER).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import NamedTuple

from pydantic import ValidationError

from function import names, placement
from function.conditions import BackupsFresh, Condition
from function.entropy import Entropy
from function.memo import recipe
from function.models import FreshnessReport as Report
from function.resources import freshness
from function.snapshot import ServerSnapshot, parse_time
from function.step import Desired, Step
from function.steps.server import endpoint

# Stale users the condition names; the status lists every one.
NAMED = 10
# How long the function waits at most before judging the report again.
RECHECK = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Reader:
    """The identity the CronJob logs in as, and the Secret holding its password."""

    secret_name: str
    password: str


def reader(s: ServerSnapshot, entropy: Entropy) -> Reader | None:
    """The reader's credentials (kept, or drawn once); None without freshness or users."""
    if not s.spec.freshness.enabled or not s.spec.users:
        return None
    found = s.observed.secret(names.FRESHNESS_READER, "password")
    password = found[0].decode("utf-8", "replace") if found else ""
    if len(password) < 16:
        password = entropy.password()
    return Reader(names.owned(s.xr.tenant, "freshness-reader"), password)


class UserFreshness(NamedTuple):
    """A listed user's line of the status."""

    last_backup: str  # when the server stored its newest snapshot; "" for none
    last_backup_bytes: int
    snapshots: int
    stale: bool


class Freshness(NamedTuple):
    """By identity, for the users the spec lists; empty while nothing is known."""

    users: dict[str, UserFreshness]
    stale: int | None  # how many listed users are stale; None while unknown
    reported_at: str


UNKNOWN = Freshness({}, None, "")


def _parse(text: str) -> tuple[Report | None, str]:
    try:
        report = Report.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        return None, f"{where}: {first['msg']}"
    for t in [report.reportedAt, *(u.lastBackup for u in report.users)]:
        if parse_time(t) is None:
            return None, f"{t!r} is not a time like 2026-01-31T23:59:59Z"
    return report, ""


def _say(
    resources: dict[str, Desired],
    condition: Condition,
    value: Freshness,
    wake: datetime.datetime | None,
) -> Step[Freshness]:
    """The step's answer.

    `wake` makes it never "busy": nothing here is in flight, so a stale user or a
    missing report must not make Crossplane poll fast.
    """
    return Step(resources, condition, value, wake=wake)


def step(s: ServerSnapshot, found: Reader | None, now: datetime.datetime) -> Step[Freshness]:
    """The CronJob and its report's ConfigMap, access and reader; the users' freshness."""
    spec = s.spec.freshness
    if not spec.enabled:
        message = "spec.freshness.enabled is false: nothing is gathered."
        return _say({}, Condition(True, BackupsFresh.DISABLED, message), UNKNOWN, None)
    if found is None:
        return _say(
            {}, Condition(True, BackupsFresh.FRESH, "The server lists no users."), UNKNOWN, None
        )
    resources = _resources(s, found)
    cronjob = f"CronJob {s.xr.namespace}/{freshness.report_name(s.xr.tenant)}"
    text = s.observed.config_text(names.FRESHNESS_REPORT, freshness.REPORT_KEY)
    if text is None:
        message = (
            f"{cronjob} has not reported yet (schedule {spec.schedule!r}, UTC); "
            "it needs the server available and the users synced."
        )
        return _say(
            resources, Condition(None, BackupsFresh.NOT_GATHERED, message), UNKNOWN, now + RECHECK
        )
    report, problem = _parse(text)
    if report is None:
        message = (
            f"cannot read ConfigMap {s.xr.namespace}/{freshness.report_name(s.xr.tenant)} "
            f"key {freshness.REPORT_KEY}: {problem}. The next run of {cronjob} rewrites it."
        )
        return _say(
            resources,
            Condition(False, BackupsFresh.REPORT_INVALID, message),
            UNKNOWN,
            now + RECHECK,
        )
    return _judged(s, resources, report, cronjob, now)


def _judged(
    s: ServerSnapshot,
    resources: dict[str, Desired],
    report: Report,
    cronjob: str,
    now: datetime.datetime,
) -> Step[Freshness]:
    spec = s.spec.freshness
    limit = datetime.timedelta(minutes=spec.staleAfterMinutes)
    reported = {u.identity: u for u in report.users}
    users: dict[str, UserFreshness] = {}
    stale: list[str] = []
    flips = [now + RECHECK]  # when the next fresh user turns stale, at the latest
    for user in s.spec.users:
        line = reported.get(user.identity)
        stored = parse_time(line.lastBackup) if line else None
        is_stale = stored is None or now - stored > limit
        if line is None:
            users[user.identity] = UserFreshness("", 0, 0, is_stale)
        else:
            users[user.identity] = UserFreshness(
                line.lastBackup, line.lastBackupBytes, line.snapshots, is_stale
            )
        if is_stale:
            stale.append(f"{user.identity} ({'last ' + line.lastBackup if line else 'none yet'})")
        elif stored is not None:
            flips.append(stored + limit + datetime.timedelta(seconds=1))
    value = Freshness(users, len(stale), report.reportedAt)
    at = parse_time(report.reportedAt)
    window = f"{spec.staleAfterMinutes} minute(s)"
    if at is None or now - at > limit:
        message = (
            f"The last report, of {report.reportedAt}, is older than spec.freshness."
            f"staleAfterMinutes ({window}): {cronjob} has not reported since. Its Jobs "
            f"say why (kubectl -n {s.xr.namespace} get jobs "
            "-l app.kubernetes.io/component=freshness)."
        )
        return _say(
            resources, Condition(False, BackupsFresh.REPORT_OUTDATED, message), value, now + RECHECK
        )
    if stale:
        more = f" and {len(stale) - NAMED} more" if len(stale) > NAMED else ""
        message = (
            f"{len(stale)} of {len(s.spec.users)} user(s) stored no snapshot in the last "
            f"{window}: {', '.join(stale[:NAMED])}{more} (report of {report.reportedAt})."
        )
        return _say(resources, Condition(False, BackupsFresh.STALE, message), value, min(flips))
    message = (
        f"Each of the {len(s.spec.users)} user(s) stored a snapshot in the last {window} "
        f"(report of {report.reportedAt})."
    )
    return _say(resources, Condition(True, BackupsFresh.FRESH, message), value, min(flips))


def _resources(s: ServerSnapshot, found: Reader) -> dict[str, Desired]:
    owner, namespace = s.xr.tenant, s.xr.namespace
    return {
        names.FRESHNESS_READER: recipe(freshness.reader_secret, owner, namespace, found.password),
        names.FRESHNESS_REPORT: recipe(freshness.report, owner, namespace),
        names.FRESHNESS_ACCOUNT: recipe(freshness.service_account, owner, namespace),
        names.FRESHNESS_ROLE: recipe(freshness.role, owner, namespace),
        names.FRESHNESS_BINDING: recipe(freshness.role_binding, owner, namespace),
        names.FRESHNESS: recipe(
            freshness.cronjob,
            owner=owner,
            namespace=namespace,
            image=s.input.kopiaImage,
            uid=s.input.runAsUser,
            endpoint=endpoint(s),
            ca_bundle=names.owned(owner, names.CA_BUNDLE),
            schedule=s.spec.freshness.schedule,
            scripts_config_map=names.owned(owner, "scripts"),
            # Where the server's pods run; it mounts no claim, so none pins it.
            placement=placement.merge(s.input.placement, s.spec.placement, None),
        ),
    }
