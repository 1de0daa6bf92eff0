"""Initialized: the init Job connects to the repository or creates it, and applies its settings.

The Job is named by everything it applies (storage, passwords, settings, image), so a
change runs it again. Once one has completed for the current storage and settings it
is kept exactly as it ran: a password rotation changes what a new Job would look like,
not what this one did. While a new Job runs, the last completed one is kept too: a
repository initialised once stays usable while a changed setting is being applied, and
the status shows the settings the last completed Job applied.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Mapping

from function import names, placement, settings
from function.conditions import Condition, Initialized, JobProgress
from function.connection import Connection
from function.memo import recipe
from function.resources import jobs
from function.snapshot import RepositorySnapshot
from function.step import KEEP, Desired, Step
from function.steps.attempts import attempt, retrying, runs

# The init Job's annotation: a digest of the storage and settings it applied (no
# passwords), which tells a completed Job still in force from one that is not.
APPLIES = "dataprotection.bsls.dev/applies"


@dataclasses.dataclass(frozen=True)
class Init:
    """What the init step found."""

    usable: bool  # the repository exists (initialised now or before)
    settings: Mapping[str, object] | None  # what the last completed init applied


def step(
    s: RepositorySnapshot, connection: Connection, scripts: str, now: datetime.datetime
) -> Step[Init]:
    """The init Job, and whether the repository can be used."""
    owner, namespace, image = s.xr.tenant, s.xr.namespace, s.input.kopiaImage
    applies = hashlib.sha256(
        f"{connection.storage_digest}:{image}:{settings.digest(s.spec)}".encode()
    ).hexdigest()[:16]
    found = runs(s, names.REPOSITORY_INIT, None)
    where = connection.location
    previous = s.xr.status.repository.get("settings")
    before = previous if isinstance(previous, dict) else None
    ever = before is not None or any(r.progress is JobProgress.COMPLETE for r in found)

    done = next(
        (
            r
            for r in found
            if r.progress is JobProgress.COMPLETE
            and s.observed.annotations(r.key).get(APPLIES) == applies
        ),
        None,
    )
    if done is not None:
        ok = _initialised(where, done.name)
        return Step({done.key: KEEP}, ok, Init(True, settings.applied(s.spec)))

    digest = jobs.init_digest(connection, image, settings.digest(s.spec))
    job_name, plan, _ = attempt(found, owner, "init", digest, now)
    job_key = names.job_key(names.REPOSITORY_INIT, job_name)
    resources: dict[str, Desired] = {
        job_key: KEEP
        if plan.waiting_since
        else recipe(
            jobs.repository_job,
            component=names.REPOSITORY_INIT,
            owner=owner,
            namespace=namespace,
            digest=digest,
            attempt=plan.attempt,
            image=image,
            uid=s.input.runAsUser,
            connection=connection,
            env=tuple(settings.env(s.spec)),
            notes=((APPLIES, applies),),
            scripts_config_map=scripts,
            placement=placement.merge(s.input.placement, None, connection.claim),
        )
    }
    # The last completed Job stays while a new one applies changed settings: the
    # repository is known to exist as long as it is observed (and the status, once a
    # Job of this version completed, says so too).
    resources.update(
        {r.key: KEEP for r in found if r.progress is JobProgress.COMPLETE and r.key != job_key}
    )
    job = f"{namespace}/{job_name}"
    if plan.waiting_since is not None:
        condition = retrying(
            Initialized.INIT_FAILED, namespace, job_name, plan, f"open the repository at {where}"
        )
        return Step(resources, condition, Init(False, before), wake=plan.next_at)
    if ever:
        condition = Condition(
            True,
            Initialized.INITIALIZED,
            f"The repository at {where} is initialised; Job {job} applies the changed settings.",
        )
        return Step(resources, condition, Init(True, before))
    condition = Condition(
        False,
        Initialized.INITIALIZING,
        f"Job {job} is connecting to or creating the repository at {where}.",
    )
    return Step(resources, condition, Init(False, None))


def _initialised(where: str, job: str) -> Condition:
    return Condition(
        True, Initialized.INITIALIZED, f"The repository at {where} is initialised (Job {job})."
    )
