"""Composing a BackupStorageLocationRepository: a Job that connects to it or creates it.

1. The init Job, named by the storage settings and the image, so a change runs it again
   and an unchanged repository keeps its completed Job; its scripts; a NetworkPolicy
   that admits nothing to its pod.
2. Initialized: the Job completed, failed, or still runs.
3. Status: which backend, and where.
"""

from __future__ import annotations

import datetime

from function import names, placement, pods
from function.conditions import Condition, Initialized, JobProgress
from function.connection import connect
from function.memo import recipe
from function.resources import configmaps, jobs
from function.snapshot import RepositorySnapshot
from function.step import KEEP, Composition, Requirement, Step, poll
from function.steps.attempts import attempt, retrying, runs


def compose(s: RepositorySnapshot, now: datetime.datetime) -> Composition:
    """The initialisation of one repository."""
    owner, namespace, image = s.xr.tenant, s.xr.namespace, s.input.kopiaImage
    connection = connect(s.spec)
    digest = jobs.init_digest(connection, image)
    found = runs(s, names.REPOSITORY_INIT, None)
    job_name, plan, run = attempt(found, owner, "init", digest, now)
    job_key = names.job_key(names.REPOSITORY_INIT, job_name)
    # "repository-scripts", not "scripts": a BSLS of the same name has a "<name>-scripts".
    scripts = names.owned(owner, "repository-scripts")
    resources = {
        names.REPOSITORY_SCRIPTS: recipe(
            configmaps.scripts, owner, namespace, "repository-scripts", pods.REPOSITORY_SCRIPTS
        ),
        job_key: KEEP
        if plan.waiting_since
        else recipe(
            jobs.repository_init,
            owner=owner,
            namespace=namespace,
            attempt=plan.attempt,
            image=image,
            uid=s.input.runAsUser,
            connection=connection,
            scripts_config_map=scripts,
            placement=placement.merge(s.input.placement, None, connection.claim),
        ),
        names.NETWORK_POLICY: recipe(jobs.deny_ingress, owner, namespace, "repository-init"),
    }
    progress = run.progress if run is not None else JobProgress.RUNNING
    where, job = connection.location, f"{namespace}/{job_name}"
    if plan.waiting_since is not None:
        condition = retrying(
            Initialized.INIT_FAILED, namespace, job_name, plan, f"open the repository at {where}"
        )
    elif progress is JobProgress.COMPLETE:
        condition = Condition(
            True,
            Initialized.INITIALIZED,
            f"The repository at {where} is initialised (Job {job_name}).",
        )
    else:
        condition = Condition(
            False,
            Initialized.INITIALIZING,
            f"Job {job} is connecting to or creating the repository at {where}.",
        )
    needs, problem = _claim(s, connection.claim)
    wake = plan.next_at
    if problem is not None:
        # Nothing runs on a claim it cannot use; a Job that ran before stays as it is.
        resources = {k: v for k, v in resources.items() if k != job_key}
        resources.update({r.key: KEEP for r in found})
        condition, wake = problem, None
    status = {"backend": connection.backend, "location": connection.location}
    steps = (Step(resources, condition, None, wake=wake),)
    return Composition(needs, steps, status, ttl=poll(s.input, steps, now))


# Access modes a repository on a claim cannot work with: the server and the user-sync
# Jobs mount it at the same time, and kopia writes to it.
UNUSABLE_MODES = {
    "ReadWriteOncePod": "only one pod may mount it, and the server and its user-sync Jobs "
    "mount it at the same time",
    "ReadOnlyMany": "it is read-only, and kopia writes to the repository",
}


def _claim(
    s: RepositorySnapshot, claim: str | None
) -> tuple[tuple[Requirement, ...], Condition | None]:
    """The claim a filesystem repository lives on, and why it cannot be used, if so."""
    if claim is None:
        return (), None
    namespace = s.xr.namespace
    needs = (Requirement(names.REQ_CLAIM, "v1", "PersistentVolumeClaim", namespace, claim),)
    if not s.required.resolved(names.REQ_CLAIM):
        return needs, None
    found = s.required.claim(names.REQ_CLAIM)
    field = "spec.backend.filesystem.persistentVolumeClaim.claimName"
    if found is None:
        return needs, Condition(
            False,
            Initialized.CLAIM_NOT_FOUND,
            f"PersistentVolumeClaim {namespace}/{claim} does not exist: create it "
            f"(ReadWriteOnce or ReadWriteMany), or fix {field}.",
        )
    if found.phase == "Lost":
        return needs, Condition(
            False,
            Initialized.CLAIM_UNUSABLE,
            f"PersistentVolumeClaim {namespace}/{claim} lost its volume (phase Lost): "
            "restore the PersistentVolume, or point the BSLR at another claim.",
        )
    usable = [m for m in found.access_modes if m not in UNUSABLE_MODES]
    if found.access_modes and not usable:
        why = "; ".join(f"{m}: {UNUSABLE_MODES[m]}" for m in found.access_modes)
        return needs, Condition(
            False,
            Initialized.CLAIM_UNUSABLE,
            f"PersistentVolumeClaim {namespace}/{claim} cannot hold a repository ({why}). "
            f"Use a claim with ReadWriteOnce (its pods then share a node) or ReadWriteMany, "
            f"and set {field} to it.",
        )
    return needs, None
