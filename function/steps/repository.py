"""RepositoryReady: the BSLR a server names must exist, be valid, be Ready and be free.

Users live in the repository, so only one server may manage them: of two servers of a
tenant on one repository the older one (by creation time, then name) wins.
"""

from __future__ import annotations

import dataclasses

from function import names
from function.conditions import Condition, RepositoryReady
from function.connection import Connection, connect
from function.kube import SecretKeyRef, SpecError
from function.models import BSLRSpec
from function.snapshot import RequiredRepository, ServerSnapshot, repository_spec
from function.step import Step


def _older_owner(s: ServerSnapshot) -> str | None:
    """The name of an older server of the tenant on the same repository, or None."""
    mine = (s.xr.created, s.xr.name)
    older = [
        (other.created, other.name)
        for other in s.required.servers(names.REQ_SERVERS)
        if other.tenant == s.xr.namespace
        and other.repository == s.spec.repositoryRef.name
        and (other.created, other.name) < mine
        and other.name != s.xr.name
    ]
    return min(older)[1] if older else None


def step(s: ServerSnapshot) -> Step[Connection | None]:
    """How the server opens its repository, or why it cannot yet."""
    ref = f"{s.xr.namespace}/{s.spec.repositoryRef.name}"

    def refused(reason: RepositoryReady, message: str) -> Step[Connection | None]:
        return Step({}, Condition(False, reason, message), None)

    bslr = s.required.repository(names.REQ_REPOSITORY)
    if bslr is None:
        return refused(
            RepositoryReady.NOT_FOUND,
            f"BackupStorageLocationRepository {ref} does not exist; create it or fix "
            "spec.repositoryRef.name. A running server is left as it is.",
        )
    try:
        spec = repository_spec(bslr)
    except SpecError as e:
        return refused(
            RepositoryReady.INVALID, f"BackupStorageLocationRepository {ref} is invalid: {e}"
        )
    if not bslr.ready:
        why = bslr.problem or bslr.ready_message
        return refused(
            RepositoryReady.NOT_READY,
            f"BackupStorageLocationRepository {ref} is not Ready"
            + (f" ({why})" if why else "")
            + ". A running server is left as it is; a new one starts once the repository "
            "is Ready.",
        )
    if (owner := _older_owner(s)) is not None:
        return refused(
            RepositoryReady.IN_USE,
            f"BackupStorageLocationServer {s.xr.namespace}/{owner} already serves repository "
            f"{s.spec.repositoryRef.name}; users live in the repository, so two servers would "
            "overwrite each other's users. Point this server at another repository.",
        )
    ok = Condition(True, RepositoryReady.AVAILABLE, f"Repository {ref} is Ready.")
    # The password in force is the one the BSLR's status names (by reference); during
    # a rotation the server may also try the one spec.passwordSecretRef now names.
    connection = connect(spec, bslr.tenant, in_force(bslr, spec), spec.passwordSecretRef)
    return Step({}, ok, dataclasses.replace(connection, retention=_retention(bslr)))


def _retention(bslr: RequiredRepository) -> str:
    """The object lock the BSLR's Jobs applied: a change rolls the server."""
    settings = bslr.status.get("settings")
    lock = settings.get("objectLock") if isinstance(settings, dict) else None
    if not isinstance(lock, dict):
        return ""
    return f"{lock.get('mode')}/{lock.get('periodDays')}d"


def in_force(bslr: RequiredRepository, spec: BSLRSpec) -> SecretKeyRef:
    """The Secret key whose password the repository has, as the BSLR's status says."""
    found = bslr.status.get("passwordSecretRef")
    if isinstance(found, dict):
        name, key = found.get("name"), found.get("key")
        if isinstance(name, str) and isinstance(key, str) and name and key:
            try:
                return SecretKeyRef(name=name, key=key)
            except ValueError:
                pass
    return spec.passwordSecretRef
