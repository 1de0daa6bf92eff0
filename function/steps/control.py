"""The control user's credentials and the key that makes digests unguessable.

Both are generated once and read back from the observed `control` Secret on every call.
The control user is how the user-sync Job asks the server to re-read its users; the
HMAC key keys every digest of a password (a Job's name, a rollout annotation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from function import names
from function.entropy import Entropy
from function.memo import recipe
from function.resources import secrets
from function.snapshot import ServerSnapshot
from function.step import Step


@dataclasses.dataclass(frozen=True)
class Control:
    """The control user, its password, and the digest key."""

    username: str
    password: str
    hmac_key: str
    secret_name: str

    def keyed(self, value: str) -> str:
        """An HMAC of `value` that reveals nothing to whoever can list objects."""
        return hmac.new(self.hmac_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def step(s: ServerSnapshot, entropy: Entropy) -> Step[Control]:
    """The control credentials: kept, or generated when missing or too short."""
    found = s.observed.secret(names.CONTROL, "password", "hmac-key")
    password, key = (v.decode("utf-8", "replace") for v in found) if found else ("", "")
    if len(password) < 16:
        password = entropy.password()
    if len(key) < 32:
        key = entropy.password() + entropy.password()
    owner, namespace, username = s.xr.tenant, s.xr.namespace, s.input.controlUsername
    control = Control(username, password, key, names.owned(owner, "control"))
    built = recipe(secrets.control, owner, namespace, username, password, key)
    return Step({names.CONTROL: built}, None, control)
