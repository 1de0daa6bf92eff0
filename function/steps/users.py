"""UsersSynced: one credentials Secret per user, and a sync Job named by what it applies.

The sync Job makes the repository's users exactly the spec's, then asks the server to
re-read them (over verified TLS). Its name carries an HMAC of every identity, password
and setting it applies, so a change is a new Job and an unchanged sync keeps its
completed one. While any user's password cannot be read, no new sync is issued and the
last one stays in force.

This is the one step whose work grows with the spec, so it runs in two parts: `step`
reads what it needs from the snapshot into `Inputs` (and draws any new password), and
`compose`, pure, is `cached` whole: a settled call costs what reading the inputs costs.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import NamedTuple

from function import access, bundle, names, placement, pods, users
from function.conditions import Condition, JobProgress, UsersSynced
from function.connection import Connection
from function.entropy import Entropy
from function.memo import recipe
from function.models import RetentionSpec
from function.placement import PodPlacement
from function.resources import jobs
from function.snapshot import ServerSnapshot
from function.step import KEEP, Desired, Step, cached
from function.steps.attempts import Run, attempt, retrying, runs
from function.steps.control import Control
from function.steps.freshness import Reader
from function.steps.server import endpoint
from function.steps.serving import Served


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything `compose` reads: plain values, nothing random."""

    owner: str
    namespace: str
    url: str  # the Service's URL (the sync Job's refresh)
    handed_out: str  # the URL bundles hand out: the external one, if any
    image: str
    uid: int
    resolved: tuple[users.Resolved, ...]
    modes: tuple[access.Mode, ...]  # each resolved user's access mode
    retention: RetentionSpec
    observed: frozenset[str]  # the credentials and sync keys Crossplane observed
    jobs: tuple[Run, ...]  # the sync Jobs Crossplane observed
    now: datetime.datetime | None  # only while one of them failed: its retry is timed
    trust_pem: bytes
    fingerprint: str
    connection: Connection | None
    control: Control
    placement: PodPlacement  # the sync Jobs'
    reader: Reader | None = None  # the freshness reader, installed beside the users


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
    *,
    entropy: Entropy,
    now: datetime.datetime,
    reader: Reader | None = None,
) -> Step[Users]:
    """Every user's credentials Secret and the sync Job, or what is kept and why."""
    owner = s.xr.tenant
    resolved = users.resolve(
        s.spec.users,
        kept=_kept_passwords(s),
        required_secrets=_password_secrets(s),
        generate=entropy.password,
    )
    found = runs(s, names.USER_SYNC, "users")
    inputs = Inputs(
        owner=owner,
        namespace=s.xr.namespace,
        url=endpoint(s),
        handed_out=s.spec.service.externalURL or endpoint(s),
        image=s.input.kopiaImage,
        uid=s.input.runAsUser,
        resolved=tuple(resolved),
        modes=tuple(u.access for u in s.spec.users),
        retention=s.spec.retention,
        observed=frozenset(
            key
            for u in s.spec.users
            for key in (names.credentials_key(u.identity), names.legacy_credentials_key(u.identity))
            if key in s.observed
        )
        | frozenset(r.key for r in found)
        | frozenset(k for k in (names.RETENTION,) if k in s.observed),
        jobs=found,
        now=now if any(r.failure for r in found) else None,
        trust_pem=served.trust_pem,
        fingerprint=served.fingerprint,
        connection=connection,
        control=control,
        placement=placement.merge(
            s.input.placement, s.spec.placement, connection.claim if connection else None
        ),
        reader=reader,
    )
    return cached(compose, inputs)


class UserStatus(NamedTuple):
    """A user as the XR's status lists it."""

    identity: str
    credentials_secret: str
    access: access.Mode


class Users(NamedTuple):
    """The users step's value: the users the spec lists, and how many are in sync."""

    listed: tuple[UserStatus, ...]
    in_sync: int  # users the repository holds as the last completed sync left them


def compose(i: Inputs) -> Step[Users]:
    """The credentials Secrets, the sync Job and UsersSynced, from the inputs alone."""
    resources: dict[str, Desired] = {}
    secrets = [names.credentials(i.owner, r.username, r.hostname) for r in i.resolved]
    listed = tuple(
        UserStatus(r.identity, n, m) for r, n, m in zip(i.resolved, secrets, i.modes, strict=True)
    )
    rules = access.rules_text()
    modes = sorted([r.identity, m] for r, m in zip(i.resolved, i.modes, strict=True))
    sources = tuple(
        (n, r.identity, m) for r, n, m in zip(i.resolved, secrets, i.modes, strict=True)
    )
    extra: dict[str, object] = {}
    if i.reader is not None:
        identity = "@".join(names.FRESHNESS_IDENTITY)
        sources += ((i.reader.secret_name, identity, access.READER),)
        extra["reader"] = i.reader.password
    append = "append" in i.modes
    if append and i.connection is not None:
        resources[names.RETENTION] = recipe(
            jobs.retention,
            owner=i.owner,
            namespace=i.namespace,
            image=i.image,
            uid=i.uid,
            connection=i.connection,
            keep_days=i.retention.keepDays,
            keep_latest=i.retention.keepLatest,
            schedule=i.retention.schedule,
            scripts_config_map=names.owned(i.owner, "scripts"),
            placement=i.placement,
        )
    elif append and names.RETENTION in i.observed:
        resources[names.RETENTION] = KEEP
    for r, secret_name in zip(i.resolved, secrets, strict=True):
        key = names.credentials_key(r.identity)
        legacy = names.legacy_credentials_key(r.identity)
        if r.password is not None and i.trust_pem:
            resources[key] = recipe(
                bundle.credentials_secret,
                i.owner,
                i.namespace,
                secret_name,
                r.username,
                r.hostname,
                r.password,
                i.handed_out,
                i.url,
                i.trust_pem,
                i.fingerprint,
            )
        elif key in i.observed:
            resources[key] = KEEP
        elif legacy in i.observed:
            # Not moved to its new name yet: the old Secret stays until it can be.
            resources[legacy] = KEEP
    problems = [r.problem for r in i.resolved if r.problem]
    done = [(r.key, r.users) for r in i.jobs if r.progress is JobProgress.COMPLETE]
    if i.connection is None or problems or not i.trust_pem:
        # Keep the last sync exactly as it is: it stays the one in force.
        resources.update({r.key: KEEP for r in i.jobs})
        in_sync = max((count for _, count in done), default=0)
        return Step(resources, _waiting(problems), Users(listed, in_sync))
    digest = users.sync_digest(
        i.control.hmac_key,
        list(i.resolved),
        {
            "endpoint": i.url,
            "repository": i.connection.digest,
            "image": i.image,
            "scripts": pods.scripts_digest(pods.SERVER_SCRIPTS),
            "control": i.control.password,
            "access": rules,
            "modes": modes,
            **extra,
        },
    )
    job_name, plan, run = attempt(i.jobs, i.owner, "user-sync", digest, i.now)
    job_key = names.job_key(names.USER_SYNC, job_name)
    resources[job_key] = (
        KEEP
        if plan.waiting_since
        else recipe(
            jobs.user_sync,
            owner=i.owner,
            namespace=i.namespace,
            digest=digest,
            attempt=plan.attempt,
            image=i.image,
            uid=i.uid,
            connection=i.connection,
            sources=sources,
            endpoint=i.url,
            ca_bundle=names.owned(i.owner, "ca-bundle"),
            control_secret=i.control.secret_name,
            control_username=i.control.username,
            scripts_config_map=names.owned(i.owner, "scripts"),
            access_rules=rules,
            placement=i.placement,
        )
    )
    progress = run.progress if run is not None else JobProgress.RUNNING
    if plan.waiting_since is not None:
        condition = retrying(
            UsersSynced.SYNC_FAILED, i.namespace, job_name, plan, f"sync {len(i.resolved)} user(s)"
        )
    else:
        condition = _synced(progress, i.namespace, job_name, len(i.resolved))
    if progress is JobProgress.COMPLETE:
        return Step(resources, condition, Users(listed, len(i.resolved)))
    # While the new sync runs (or waits to run again), the last completed one stays in
    # force: kept, and counted; the server keeps serving, so the XR stays Ready.
    earlier = [(key, count) for key, count in done if key != job_key]
    resources.update({key: KEEP for key, _ in earlier})
    in_sync = max((count for _, count in earlier), default=0)
    ready = frozenset({job_key}) if earlier else frozenset()
    return Step(resources, condition, Users(listed, in_sync), ready, wake=plan.next_at)


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
    """The current attempt completed, or runs (a failed one is `retrying`)."""
    if progress is JobProgress.COMPLETE:
        return Condition(True, UsersSynced.SYNCED, f"{count} user(s) in sync (Job {job}).")
    return Condition(
        False, UsersSynced.SYNCING, f"Job {namespace}/{job} is applying {count} user(s)."
    )
