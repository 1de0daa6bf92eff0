"""Composed names: valid, stable, and never shared by two objects of one kind (names.py)."""

from __future__ import annotations

import re

import pytest

from function import names
from function.kube import DNS_SUBDOMAIN


def test_names_are_valid_and_stable_even_when_long() -> None:
    long = "x" * 200
    assert len(names.server(long)) <= 63
    assert names.server(long) == names.server(long)
    assert len(names.job(long, "user-sync", "f" * 64)) <= 63
    # The API server refuses a CronJob name longer than 52 characters.
    assert len(names.cronjob(long, "freshness")) <= 52
    assert names.cronjob("vm-backups", "freshness") == "vm-backups-freshness"
    cred = names.credentials(long, "u" * 64, "h" * 128)
    assert len(cred) <= 253
    assert DNS_SUBDOMAIN.match(cred)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a-b", "c"), ("a", "b-c")),  # the same words, split elsewhere
        (("a_b", "h"), ("a-b", "h")),  # '_' cannot be in a name
        (("a.b", "h"), ("a-b", "h")),  # nor can every '.'
        (("x", "y.z"), ("x.y", "z")),
    ],
)
def test_look_alike_identities_never_share_a_credentials_secret(a, b) -> None:
    assert names.credentials("srv", *a) != names.credentials("srv", *b)


@pytest.mark.parametrize(
    ("username", "hostname"),
    [("tls", "ca"), ("ca", "bundle"), ("control", "x"), ("x", "control"), ("a..b", "c-.d")],
)
def test_a_credentials_secret_never_takes_a_system_name(username: str, hostname: str) -> None:
    name = names.credentials("srv", username, hostname)
    assert DNS_SUBDOMAIN.match(name), name
    system = {names.owned("srv", s) for s in ("tls-ca", "tls", "control", "scripts")}
    assert name not in system
    # By construction: a credentials Secret's last segment is 12 hex digits, and no
    # system Secret's is (whatever the XR is called).
    assert re.fullmatch(r"[0-9a-f]{12}", name.rsplit("-", 1)[1])
    assert not any(re.fullmatch(r"[0-9a-f]{12}", s.rsplit("-", 1)[1]) for s in system)
