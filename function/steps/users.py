"""UsersSynced: one credentials Secret per user, and a sync Job named by what it applies.

The sync Job makes the repository's users exactly the spec's, then asks the server to
re-read them (over verified TLS). Its name carries an HMAC of every identity, password
and setting it applies, so a change is a new Job and an unchanged sync keeps its
completed one. While any user's password cannot be read, no new sync is issued and the
last one stays in force.
"""

from __future__ import annotations

from function import bundle, names, pods, users
from function.conditions import Condition, JobProgress, UsersSynced
from function.connection import Connection
from function.entropy import Entropy
from function.memo import recipe
from function.resources import jobs
from function.snapshot import ServerSnapshot
from function.step import KEEP, Desired, Step
from function.steps.control import Control
from function.steps.server import endpoint
from function.steps.serving import Served


def _kept_passwords(s: ServerSnapshot) -> dict[str, str]:
    """Generated passwords in the observed credentials Secrets (base64), by identity.

    A Secret composed before 0.2 (key `credentials-<identity>`) is read too, so its
    password moves to the new Secret; only if it was written for this very identity,
    since the old names let two look-alike identities share one Secret.
    """
    out = {}
    for user in s.spec.users:
        if user.passwordSecretRef is not None:
            continue
        found = s.observed.secret_text(names.credentials_key(user.identity), "password")
        legacy = names.legacy_credentials_key(user.identity)
        if found is None and (
            s.observed.annotations(legacy).get(bundle.IDENTITY_ANNOTATION) == user.identity
        ):
            found = s.observed.secret_text(legacy, "password")
        if found is not None:
            out[user.identity] = found
    return out


def _password_secrets(s: ServerSnapshot) -> dict[str, dict | None]:
    """The users' password Secrets Crossplane has answered for, by name."""
    out: dict[str, dict | None] = {}
    for user in s.spec.users:
        ref = user.passwordSecretRef
        if ref is not None and s.required.resolved(names.secret_requirement(ref.name)):
            out[ref.name] = s.required.one(names.secret_requirement(ref.name))
    return out


def step(
    s: ServerSnapshot,
    connection: Connection | None,
    served: Served,
    control: Control,
    entropy: Entropy,
) -> Step[list[users.Resolved]]:
    """Every user's credentials Secret and the sync Job, or what is kept and why."""
    owner, namespace, url = s.xr.tenant, s.xr.namespace, endpoint(s)
    resolved = users.resolve(
        s.spec.users,
        owner=owner,
        kept=_kept_passwords(s),
        required_secrets=_password_secrets(s),
        generate=entropy.password,
    )
    resources: dict[str, Desired] = {}
    for r in resolved:
        key = names.credentials_key(r.user.identity)
        legacy = names.legacy_credentials_key(r.user.identity)
        if r.password is not None and served.trust_pem:
            resources[key] = recipe(
                bundle.credentials_secret,
                owner,
                namespace,
                r.secret_name,
                r.user.username,
                r.user.hostname,
                r.password,
                url,
                served.trust_pem,
                served.fingerprint,
            )
        elif key in s.observed:
            resources[key] = KEEP
        elif legacy in s.observed:
            # Not moved to its new name yet: the old Secret stays until it can be.
            resources[legacy] = KEEP
    problems = [r.problem for r in resolved if r.problem]
    if connection is None or problems or not served.trust_pem:
        # Keep the last sync exactly as it is: it stays the one in force.
        resources.update(dict.fromkeys(s.observed.keys(f"{names.USER_SYNC}-"), KEEP))
        return Step(resources, _waiting(problems), resolved)
    digest = users.sync_digest(
        control.hmac_key,
        resolved,
        {
            "endpoint": url,
            "repository": connection.digest,
            "image": s.input.kopiaImage,
            "scripts": pods.scripts_digest(pods.SERVER_SCRIPTS),
            "control": control.password,
        },
    )
    job_name = names.job(owner, "user-sync", digest)
    job_key = names.job_key(names.USER_SYNC, job_name)
    resources[job_key] = recipe(
        jobs.user_sync,
        owner=owner,
        namespace=namespace,
        digest=digest,
        image=s.input.kopiaImage,
        uid=s.input.runAsUser,
        connection=connection,
        sources=tuple((r.secret_name, r.user.identity) for r in resolved),
        endpoint=url,
        ca_bundle=names.owned(owner, "ca-bundle"),
        control_secret=control.secret_name,
        control_username=control.username,
        scripts_config_map=names.owned(owner, "scripts"),
    )
    progress = s.observed.job(job_key, job_name)
    return Step(resources, _synced(progress, namespace, job_name, len(resolved)), resolved)


def _waiting(problems: list[str]) -> Condition:
    if problems:
        return Condition(
            False,
            UsersSynced.USER_INPUT_INVALID,
            "; ".join(problems)
            + ". Users are kept as the last good sync left them until this is fixed.",
        )
    return Condition(
        False,
        UsersSynced.WAITING_FOR_SERVER,
        "Users are synced once the repository is Ready and TLS is in place.",
    )


def _synced(progress: JobProgress, namespace: str, job: str, count: int) -> Condition:
    if progress is JobProgress.COMPLETE:
        return Condition(True, UsersSynced.SYNCED, f"{count} user(s) in sync (Job {job}).")
    if progress is JobProgress.FAILED:
        return Condition(
            False,
            UsersSynced.SYNC_FAILED,
            f"Job {namespace}/{job} failed; read its logs: kubectl -n {namespace} logs job/{job}",
        )
    return Condition(
        False, UsersSynced.SYNCING, f"Job {namespace}/{job} is applying {count} user(s)."
    )
