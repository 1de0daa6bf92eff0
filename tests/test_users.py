"""Where each user's password comes from, and the digest of what a sync applies (users.py)."""

from __future__ import annotations

import base64

from function import users
from function.entropy import system_entropy
from function.models import User


def resolved(identity: str, password: str) -> users.Resolved:
    u, h = identity.split("@")
    return users.Resolved(u, h, password)


def test_sync_digest_changes_with_any_input_and_hides_passwords() -> None:
    base = [resolved("a@h", "pw-1"), resolved("b@h", "pw-2")]
    d = users.sync_digest("key", base, {"endpoint": "e"})
    assert d == users.sync_digest("key", list(reversed(base)), {"endpoint": "e"})
    assert d != users.sync_digest("key", [resolved("a@h", "pw-X"), base[1]], {"endpoint": "e"})
    assert d != users.sync_digest("key", base[:1], {"endpoint": "e"})
    assert d != users.sync_digest("key", base, {"endpoint": "f"})
    assert d != users.sync_digest("other-key", base, {"endpoint": "e"})


def test_generated_passwords_are_strong_and_url_safe() -> None:
    seen = {system_entropy.password() for _ in range(100)}
    assert len(seen) == 100
    for p in seen:
        assert len(p) == 32
        assert set(p) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_corrupted_generated_password_is_replaced() -> None:
    user = User(username="bob", hostname="vm")
    kept = {"bob@vm": base64.b64encode(b" bad ").decode()}
    [r] = users.resolve([user], kept=kept, required_secrets={}, generate=lambda: "a-new-password")
    assert r.password == "a-new-password"


def test_a_usable_generated_password_is_kept() -> None:
    user = User(username="bob", hostname="vm")
    kept = {"bob@vm": base64.b64encode(b"the-old-password").decode()}
    [r] = users.resolve([user], kept=kept, required_secrets={}, generate=str)
    assert r.password == "the-old-password"
