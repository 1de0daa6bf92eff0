"""How a pod opens the Kopia repository of a BSLR, in one place.

The repository-init Job, the server and the user-sync Job all call
`kopia repository connect <args>` with the same storage flags, the same credential
environment and the same volumes (`backends.py` says what they are for each backend);
only the identity differs. The repository password arrives as KOPIA_PASSWORD by
reference.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from function import names
from function.backends import secret_env
from function.kube import SecretKeyRef
from function.models import BSLRSpec


@dataclasses.dataclass(frozen=True)
class Connection:
    """Everything a container needs to connect to the repository directly."""

    backend: str
    args: tuple[str, ...]  # appended to `kopia repository connect`
    env: tuple[dict, ...]
    volumes: tuple[dict, ...]
    mounts: tuple[dict, ...]
    location: str  # for display: s3://bucket/prefix, pvc://claim/path, ...
    claim: str | None = None  # the PersistentVolumeClaim all its pods mount, if any
    # The passwords' env entries (by reference), apart: a rotation changes them alone.
    password_env: tuple[dict, ...] = ()
    # With spec.cloudIdentity: the repository's ServiceAccount, and labels its pods carry.
    service_account: str | None = None
    pod_labels: tuple[tuple[str, str], ...] = ()
    # The object lock the repository applied ("GOVERNANCE/720h"), for a server: kopia
    # tells every other client to reconnect after `set-parameters` changes it.
    retention: str = ""

    @functools.cached_property
    def digest(self) -> str:
        """A digest of the connection settings (names and references only, no secrets).

        It covers the password references too: a pod that opens the repository runs
        again (a Job under a new name, the server rolled) when a rotation moves them.
        """
        parts: list = [self.args, self.env, self.volumes, self.mounts]
        if self.service_account is not None:
            parts += [self.service_account, self.pod_labels]
        if self.retention:
            parts.append(self.retention)
        doc = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    @functools.cached_property
    def storage_digest(self) -> str:
        """A digest of where the repository is and how to reach it, without the passwords."""
        storage = [e for e in self.env if e not in self.password_env]
        parts: list = [self.args, storage, self.volumes, self.mounts]
        if self.service_account is not None:
            parts += [self.service_account, self.pod_labels]
        doc = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


# During a rotation, the password it moves to: the scripts try it when the one in
# force is refused (repository-lib.sh, try_connect).
PENDING_PASSWORD = "BSLS_PENDING_PASSWORD"


def service_account(repository: str) -> str:
    """The ServiceAccount a BSLR with spec.cloudIdentity composes for its pods."""
    return names.owned(repository, "repository")


def connect(
    spec: BSLRSpec,
    repository: str,
    in_force: SecretKeyRef | None = None,
    pending: SecretKeyRef | None = None,
) -> Connection:
    """Map a validated BSLR spec to kopia arguments, environment and volumes.

    `repository` is the BSLR's own name (a legacy claim's), which its ServiceAccount's
    derives from. `in_force` is the Secret key holding the password the repository has
    (by default spec.passwordSecretRef); `pending` the one a rotation moves it to.
    """
    parts = spec.backend.parts()
    password = in_force or spec.passwordSecretRef
    passwords = [secret_env("KOPIA_PASSWORD", password.name, password.key)]
    if pending is not None and pending != password:
        passwords.append(secret_env(PENDING_PASSWORD, pending.name, pending.key))
    return Connection(
        backend=spec.backend.name,
        args=tuple(parts.args),
        env=(*passwords, *parts.env),
        volumes=tuple(parts.volumes),
        mounts=tuple(parts.mounts),
        location=parts.location,
        claim=parts.claim,
        password_env=tuple(passwords),
        service_account=service_account(repository) if spec.cloudIdentity else None,
        pod_labels=tuple(sorted(spec.cloudIdentity.podLabels.items()))
        if spec.cloudIdentity
        else (),
    )
