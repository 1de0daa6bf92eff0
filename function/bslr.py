"""Composing a BackupStorageLocationRepository: a Job that connects to it or creates it.

1. The init Job, named by the storage settings and the image, so a change runs it again
   and an unchanged repository keeps its completed Job; its scripts; a NetworkPolicy
   that admits nothing to its pod.
2. Initialized: the Job completed, failed, or still runs.
3. Status: which backend, and where.
"""

from __future__ import annotations

from function import names, pods
from function.conditions import Condition, Initialized, JobProgress
from function.connection import connect
from function.memo import recipe
from function.resources import configmaps, jobs
from function.snapshot import RepositorySnapshot
from function.step import Composition, Step, poll


def compose(s: RepositorySnapshot) -> Composition:
    """The initialisation of one repository."""
    owner, namespace, image = s.xr.tenant, s.xr.namespace, s.input.kopiaImage
    connection = connect(s.spec)
    job_name = jobs.init_name(owner, connection, image)
    job_key = names.job_key(names.REPOSITORY_INIT, job_name)
    # "repository-scripts", not "scripts": a BSLS of the same name has a "<name>-scripts".
    scripts = names.owned(owner, "repository-scripts")
    resources = {
        names.REPOSITORY_SCRIPTS: recipe(
            configmaps.scripts, owner, namespace, "repository-scripts", pods.REPOSITORY_SCRIPTS
        ),
        job_key: recipe(
            jobs.repository_init,
            owner=owner,
            namespace=namespace,
            image=image,
            uid=s.input.runAsUser,
            connection=connection,
            scripts_config_map=scripts,
        ),
        names.NETWORK_POLICY: recipe(jobs.deny_ingress, owner, namespace, "repository-init"),
    }
    progress = s.observed.job(job_key, job_name)
    where, job = connection.location, f"{namespace}/{job_name}"
    if progress is JobProgress.COMPLETE:
        condition = Condition(
            True,
            Initialized.INITIALIZED,
            f"The repository at {where} is initialised (Job {job_name}).",
        )
    elif progress is JobProgress.FAILED:
        condition = Condition(
            False,
            Initialized.INIT_FAILED,
            f"Job {job} could not connect to or create the repository at {where}. Its log "
            "says why (bad credentials, a missing bucket, or a password that does not open "
            f"the existing data): kubectl -n {namespace} logs job/{job_name}",
        )
    else:
        condition = Condition(
            False,
            Initialized.INITIALIZING,
            f"Job {job} is connecting to or creating the repository at {where}.",
        )
    status = {"backend": connection.backend, "location": connection.location}
    steps = (Step(resources, condition, None),)
    return Composition((), steps, status, ttl=poll(s.input, steps))
