"""Users: where each password comes from, and the digest of what a sync applies.

A password comes from the user's `passwordSecretRef` or, without one, is generated
once and kept in the user's credentials Secret, which the function reads back on every
call. A user whose password cannot be read is reported and left exactly as the last
good sync made it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import NamedTuple

from function.models import User
from function.snapshot import decode

MAX_PASSWORD_BYTES = 1024


class Resolved(NamedTuple):
    """A user with the password the sync applies, or the reason there is none."""

    username: str
    hostname: str
    password: str | None
    problem: str | None = None

    @property
    def identity(self) -> str:
        """The Kopia identity, `username@hostname`."""
        return f"{self.username}@{self.hostname}"


def secret_value(secret: Mapping, key: str, what: str) -> str:
    """`data[key]` of a Secret as text, or raise ValueError saying what is wrong."""
    data = secret.get("data")
    if not isinstance(data, dict) or key not in data:
        msg = f"{what} has no key {key!r}"
        raise ValueError(msg)
    raw = data[key]
    value = decode(raw) if isinstance(raw, str) else b""
    if not value and raw != "":
        msg = f"{what} key {key!r} is not valid base64"
        raise ValueError(msg)
    try:
        return (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{what} key {key!r} is not UTF-8 text"
        raise ValueError(msg) from None


def check_password(password: str, what: str) -> str:
    """Refuse passwords Kopia would mangle or that cannot be a single line in a file."""
    if not password:
        msg = f"{what} is empty"
        raise ValueError(msg)
    if password != password.strip():
        msg = f"{what} starts or ends with white space, which Kopia trims on the client"
        raise ValueError(msg)
    if "\n" in password or "\r" in password or "\0" in password:
        msg = f"{what} contains a line break or NUL character"
        raise ValueError(msg)
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        msg = f"{what} is longer than {MAX_PASSWORD_BYTES} bytes"
        raise ValueError(msg)
    return password


def kept_password(encoded: str | None) -> str | None:
    """A generated password read back from its Secret (still base64), if it is usable."""
    value = decode(encoded)
    if not value:
        return None
    try:
        return check_password(value.decode("utf-8"), "")
    except (ValueError, UnicodeDecodeError):
        return None


def resolve(
    users: list[User],
    *,
    kept: Mapping[str, str],
    required_secrets: Mapping[str, dict | None],
    generate: Callable[[], str],
) -> list[Resolved]:
    """Find every user's password.

    Args:
        users: The users in the spec.
        kept: Generated passwords read back from the credentials Secrets, by identity,
            still base64.
        required_secrets: Password Secrets by name; None when Crossplane found none,
            absent when the requirement has not been resolved yet.
        generate: Where a new password comes from.
    """
    out = []
    for index, user in enumerate(users):
        ref = user.passwordSecretRef
        if ref is None:
            # None yet, or our own Secret was edited into something unusable: a new one.
            password = kept_password(kept.get(user.identity)) or generate()
            out.append(Resolved(user.username, user.hostname, password))
            continue
        what = f"spec.users[{index}] ({user.identity}): Secret {ref.name}"
        if ref.name not in required_secrets:
            out.append(
                Resolved(user.username, user.hostname, None, f"{what} has not been read yet")
            )
            continue
        secret = required_secrets[ref.name]
        if secret is None:
            problem = (
                f"{what} does not exist in the XR's namespace; create it or fix passwordSecretRef"
            )
            out.append(Resolved(user.username, user.hostname, None, problem))
            continue
        try:
            password = check_password(
                secret_value(secret, ref.key, what), f"{what} key {ref.key!r}"
            )
        except ValueError as e:
            out.append(Resolved(user.username, user.hostname, None, str(e)))
            continue
        out.append(Resolved(user.username, user.hostname, password))
    return out


def sync_digest(hmac_key: str, users: list[Resolved], settings: dict) -> str:
    """A digest of everything the sync Job applies, keyed so it reveals no password.

    It changes exactly when an identity, a password or a setting changes, so the Job
    name changes and the Job runs again; an unchanged sync keeps its completed Job.
    """
    doc = json.dumps(
        {
            "users": sorted([r.identity, r.password] for r in users),
            "settings": settings,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(hmac_key.encode(), doc.encode(), hashlib.sha256).hexdigest()
