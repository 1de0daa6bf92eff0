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

    @functools.cached_property
    def digest(self) -> str:
        """A digest of the connection settings (names and references only, no secrets).

        It covers the password references too: a pod that opens the repository runs
        again (a Job under a new name, the server rolled) when a rotation moves them.
        """
        doc = json.dumps(
            [self.args, self.env, self.volumes, self.mounts], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    @functools.cached_property
    def storage_digest(self) -> str:
        """A digest of where the repository is and how to reach it, without the passwords."""
        storage = [e for e in self.env if e not in self.password_env]
        doc = json.dumps(
            [self.args, storage, self.volumes, self.mounts], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(doc.encode()).hexdigest()[:16]

    def without_pending(self) -> Connection:
        """The same connection with only the password in force (no rotation's new one)."""
        pending = [e for e in self.password_env if e["name"] == PENDING_PASSWORD]
        return dataclasses.replace(
            self,
            env=tuple(e for e in self.env if e not in pending),
            password_env=tuple(e for e in self.password_env if e not in pending),
        )


# During a rotation, the password it moves to: the scripts try it when the one in
# force is refused (repository-lib.sh, try_connect).
PENDING_PASSWORD = "BSLS_PENDING_PASSWORD"


def connect(
    spec: BSLRSpec, in_force: SecretKeyRef | None = None, pending: SecretKeyRef | None = None
) -> Connection:
    """Map a validated BSLR spec to kopia arguments, environment and volumes.

    `in_force` is the Secret key holding the password the repository has (by default
    spec.passwordSecretRef); `pending` the one a rotation moves it to, while it does.
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
    )
