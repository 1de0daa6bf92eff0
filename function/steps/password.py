"""PasswordRotation: the repository's password follows spec.passwordSecretRef.

The function never reads a password: it tracks which Secret key holds the one in force
(status.passwordSecretRef, by reference). Pointing spec.passwordSecretRef at another
Secret or key starts a rotation: a Job opens the repository with the password in force
and runs `kopia repository change-password` to the new one. Until the function has
seen that Job complete, every pod that opens the repository gets both (the one in
force, and the new one to try when it is refused), so a server can start at every
moment of the rotation. Once it completed, the new key is in force and the server rolls
onto it; the old Secret may then go. A failure leaves the old password in force and
working, says why, and is tried again after a back-off.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from function import names, placement
from function.backends import secret_env
from function.conditions import Condition, JobProgress, PasswordRotation
from function.connection import connect
from function.kube import SecretKeyRef
from function.memo import recipe
from function.resources import jobs
from function.snapshot import RepositorySnapshot
from function.step import KEEP, Desired, Step
from function.steps.attempts import attempt, retrying, runs


@dataclasses.dataclass(frozen=True)
class Password:
    """Which Secret key holds the password in force, and which one it moves to."""

    in_force: SecretKeyRef
    pending: SecretKeyRef | None  # while a rotation is under way
    changed_at: str  # when the last rotation completed, or ""


def in_force(s: RepositorySnapshot) -> SecretKeyRef:
    """The Secret key whose password the repository has, as the last call recorded it."""
    found = s.xr.status.repository.get("passwordSecretRef")
    if isinstance(found, dict):
        name, key = found.get("name"), found.get("key")
        if isinstance(name, str) and isinstance(key, str) and name and key:
            try:
                return SecretKeyRef(name=name, key=key)
            except ValueError:
                pass
    return s.spec.passwordSecretRef


def _show(ref: SecretKeyRef) -> str:
    return f"{ref.name} (key {ref.key})"


def step(
    s: RepositorySnapshot, usable: bool, scripts: str, now: datetime.datetime
) -> Step[Password]:
    """The password-change Job while a rotation is under way."""
    owner, namespace, image = s.xr.tenant, s.xr.namespace, s.input.kopiaImage
    old, new = in_force(s), s.spec.passwordSecretRef
    previous = s.xr.status.repository.get("passwordChangedAt")
    changed_at = previous if isinstance(previous, str) else ""
    where = f"Secret {namespace}/"
    if old == new:
        since = f" (since {changed_at})" if changed_at else ""
        ok = Condition(
            True,
            PasswordRotation.IN_FORCE,
            f"The repository's password is the one in {where}{_show(new)}{since}.",
        )
        return Step({}, ok, Password(new, None, changed_at))
    if not usable:
        waiting = Condition(
            False,
            PasswordRotation.WAITING,
            f"The password moves from {where}{_show(old)} to {where}{_show(new)} once the "
            "repository is initialised; keep both until then.",
        )
        return Step({}, waiting, Password(old, new, changed_at))

    connection = connect(s.spec, owner, old)
    digest = hashlib.sha256(
        f"password:{_show(old)}:{_show(new)}:{connection.digest}:{image}".encode()
    ).hexdigest()
    found = runs(s, names.PASSWORD_CHANGE, None)
    job_name, plan, run = attempt(found, owner, "password", digest, now)
    job_key = names.job_key(names.PASSWORD_CHANGE, job_name)
    if run is not None and run.progress is JobProgress.COMPLETE:
        finished = s.observed.job_finished(run.key) or now
        at = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
        ok = Condition(
            True,
            PasswordRotation.IN_FORCE,
            f"The repository's password is the one in {where}{_show(new)} (changed at {at} "
            f"by Job {job_name}); {where}{_show(old)} is no longer needed.",
        )
        return Step({}, ok, Password(new, None, at))
    resources: dict[str, Desired] = {
        job_key: KEEP
        if plan.waiting_since
        else recipe(
            jobs.repository_job,
            component=names.PASSWORD_CHANGE,
            owner=owner,
            namespace=namespace,
            digest=digest,
            attempt=plan.attempt,
            image=image,
            uid=s.input.runAsUser,
            connection=connection,
            env=(secret_env("KOPIA_NEW_PASSWORD", new.name, new.key),),
            notes=(),
            scripts_config_map=scripts,
            placement=placement.merge(s.input.placement, None, connection.claim),
        )
    }
    pending = Password(old, new, changed_at)
    if plan.waiting_since is not None:
        failed = retrying(
            PasswordRotation.ROTATION_FAILED,
            namespace,
            job_name,
            plan,
            f"change the password to the one in {where}{_show(new)}",
        )
        kept = dataclasses.replace(
            failed, message=f"{failed.message}. The password in {where}{_show(old)} stays in force."
        )
        return Step(resources, kept, pending, frozenset({job_key}), wake=plan.next_at)
    rotating = Condition(
        False,
        PasswordRotation.ROTATING,
        f"Job {namespace}/{job_name} changes the repository's password from the one in "
        f"{where}{_show(old)} to the one in {where}{_show(new)}; keep both Secrets until it "
        "completes.",
    )
    return Step(resources, rotating, pending, frozenset({job_key}))
