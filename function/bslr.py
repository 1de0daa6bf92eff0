"""Composing a BackupStorageLocationRepository: the repository, managed for its whole life.

1. Password: which Secret key holds the password in force, and a Job that changes it
   when spec.passwordSecretRef names another one (steps/password.py).
2. Initialized: the init Job connects to the repository or creates it with the spec's
   format, and applies its settings (steps/initialise.py); its scripts; a
   NetworkPolicy that admits nothing to the repository's pods.
3. RepositoryHealthy and MaintenanceOnSchedule: a check Job per period, which also runs the
   maintenance that is due (steps/check.py).
4. Status: where it is, what was applied, the check and maintenance record, the
   password in force. Ready once initialised while the last check did not fail.
"""

from __future__ import annotations

import datetime

from function import names, pods
from function.conditions import Condition, Initialized
from function.connection import connect
from function.memo import recipe
from function.resources import configmaps, jobs
from function.resources.identity import service_account
from function.snapshot import RepositorySnapshot
from function.step import KEEP, Composition, Desired, Requirement, Step, poll
from function.steps import check, initialise, password
from function.steps.attempts import runs


def compose(s: RepositorySnapshot, now: datetime.datetime) -> Composition:
    """The life of one repository."""
    owner, namespace = s.xr.tenant, s.xr.namespace
    # "repository-scripts", not "scripts": a BSLS of the same name has a "<name>-scripts".
    scripts = names.owned(owner, "repository-scripts")
    fixed: dict[str, Desired] = {
        names.REPOSITORY_SCRIPTS: recipe(
            configmaps.scripts, owner, namespace, "repository-scripts", pods.REPOSITORY_SCRIPTS
        ),
        names.NETWORK_POLICY: recipe(
            jobs.deny_ingress, owner, namespace, "repository-init", tuple(jobs.REPOSITORY_JOBS)
        ),
    }
    if (identity := s.spec.cloudIdentity) is not None:
        fixed[names.SERVICE_ACCOUNT] = recipe(
            service_account,
            owner,
            namespace,
            tuple(sorted(identity.serviceAccountAnnotations.items())),
            tuple(sorted(identity.serviceAccountLabels.items())),
        )
    base = Step(fixed, None, None)
    # The init Job opens the repository with the password in force alone: a rotation
    # starts only once the repository exists.
    init = initialise.step(s, connect(s.spec, owner, password.in_force(s)), scripts, now)
    secret = password.step(s, init.value.usable, scripts, now)
    connection = connect(s.spec, owner, secret.value.in_force, secret.value.pending)
    checked = check.step(s, connection, init.value.usable, scripts, now)
    maintained = Step({}, checked.value.maintenance, None, wake=checked.wake)

    needs, problem = _claim(s, connection.claim)
    steps: tuple[Step, ...] = (base, init, checked, maintained, secret)
    if problem is not None:
        # Nothing runs on a claim it cannot use; Jobs that ran before stay as they are.
        kept = {r.key: KEEP for prefix in JOB_PREFIXES for r in runs(s, prefix, None)}
        steps = (base, Step(kept, problem, None))

    status: dict[str, object] = {
        "backend": connection.backend,
        "location": connection.location,
        "passwordSecretRef": {
            "name": secret.value.in_force.name,
            "key": secret.value.in_force.key,
        },
        **checked.value.status,
    }
    if secret.value.changed_at:
        status["passwordChangedAt"] = secret.value.changed_at
    if init.value.settings is not None:
        status["settings"] = dict(init.value.settings)
    ready = problem is None and init.value.usable and checked.value.healthy
    return Composition(needs, steps, status, ready=ready, ttl=poll(s.input, steps, now))


JOB_PREFIXES = (names.REPOSITORY_INIT, names.REPOSITORY_CHECK, names.PASSWORD_CHANGE)


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
