"""Which attempt of a Job to compose, and what a failed one says (failures.py decides).

Both Jobs (a server's user sync, a repository's init) are named by a digest of what
they apply; each attempt at the same content gets a name of its own and records its
number and the content digest in annotations, so a later call finds it again.
"""

from __future__ import annotations

import datetime
import enum
from typing import NamedTuple

from function import access, failures
from function.conditions import Condition, JobProgress
from function.failures import Failure
from function.resources import jobs
from function.snapshot import Snapshot


class Run(NamedTuple):
    """An observed sync Job: one attempt at applying one set of users."""

    key: str
    name: str
    content: str  # a digest of what it applies
    attempt: int
    progress: JobProgress
    users: int  # how many users it applies
    failure: Failure | None


def runs(s: Snapshot, prefix: str, volume: str | None) -> tuple[Run, ...]:
    """The observed Jobs whose keys start with `prefix-`."""
    out = []
    for key in s.observed.keys(f"{prefix}-"):
        name, notes = s.observed.name(key), s.observed.annotations(key)
        attempt = notes.get(failures.ATTEMPT, "0")
        out.append(
            Run(
                key=key,
                name=name,
                content=notes.get(jobs.CONTENT, ""),
                attempt=int(attempt) if attempt.isdigit() else 0,
                progress=s.observed.job(key, name),
                users=_users(s.observed.projected_paths(key, volume)) if volume else 0,
                failure=s.observed.job_failure(key),
            )
        )
    return tuple(out)


def _users(paths: tuple[str, ...]) -> int:
    """The users a sync Job applies: its identities' files, not the freshness reader's."""
    return sum(1 for p in paths if not p.startswith(f"{access.READER}/"))


def attempt(
    found: tuple[Run, ...], owner: str, suffix: str, digest: str, now: datetime.datetime | None
) -> tuple[str, failures.Plan, Run | None]:
    """Which attempt of the Job for `digest` to compose: its name, the plan, its run."""
    first = failures.attempt_name(owner, suffix, digest, 0)
    mine = [r for r in found if r.content == digest[:16] or r.name == first]
    plan = failures.plan([(r.attempt, r.failure) for r in mine], now)
    name = failures.attempt_name(owner, suffix, digest, plan.attempt)
    run = next((r for r in mine if r.name == name), None)
    return name, plan, run


def retrying(
    reason: enum.StrEnum, namespace: str, job: str, plan: failures.Plan, doing: str
) -> Condition:
    """A failed Job: what it was `doing`, why it failed, the fix, when it runs again."""
    assert plan.waiting_since is not None  # noqa: S101 - only a failed attempt retries
    assert plan.next_at is not None  # noqa: S101
    when = plan.next_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Condition(
        False,
        reason,
        f"Job {namespace}/{job} could not {doing}: {plan.waiting_since.explain()}. Attempt "
        f"{plan.attempt + 2} starts at {when}, with no change needed; its log: "
        f"kubectl -n {namespace} logs job/{job}",
    )
