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

    @functools.cached_property
    def digest(self) -> str:
        """A digest of the connection settings (names and references only, no secrets)."""
        doc = json.dumps(
            [self.args, self.env, self.volumes, self.mounts], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


def connect(spec: BSLRSpec) -> Connection:
    """Map a validated BSLR spec to kopia arguments, environment and volumes."""
    parts = spec.backend.parts()
    password = spec.passwordSecretRef
    return Connection(
        backend=spec.backend.name,
        args=tuple(parts.args),
        env=(secret_env("KOPIA_PASSWORD", password.name, password.key), *parts.env),
        volumes=tuple(parts.volumes),
        mounts=tuple(parts.mounts),
        location=parts.location,
        claim=parts.claim,
    )
