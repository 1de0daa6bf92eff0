"""TLS lifecycle across simulated time: the pin never moves while the CA lives."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from function import tls

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DNS = ["vm-backups.team-a.svc", "vm-backups", "vm-backups.team-a"]
RENEW = datetime.timedelta(days=121)


def ensure(observed_ca=None, observed_leaf=None, now=NOW, dns=None, ips=None) -> tls.Plan:
    return tls.ensure(
        observed_ca=observed_ca,
        observed_leaf=observed_leaf,
        common_name="vm-backups.team-a kopia CA",
        dns_names=dns or DNS,
        ip_addresses=ips or [],
        now=now,
        ca_validity_days=3650,
        leaf_validity_days=365,
        renew_before=RENEW,
    )


def material(plan: tls.Plan) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return (plan.ca.cert_pem, plan.ca.key_pem), (plan.leaf.chain_pem, plan.leaf.key_pem)


@pytest.fixture(scope="module")
def first() -> tls.Plan:
    return ensure()


def test_first_call_issues_a_ca_and_a_leaf_signed_by_it(first: tls.Plan) -> None:
    assert first.event == "issued"
    ca = first.ca.cert
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert first.ca.fingerprint == ca.fingerprint(hashes.SHA256()).hex()
    assert len(first.ca.fingerprint) == 64
    leaf = first.leaf.cert
    assert tls.signed_by(leaf, ca)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert tls.leaf_names(leaf) == (set(DNS), set())


def test_served_chain_is_leaf_then_ca(first: tls.Plan) -> None:
    chain = x509.load_pem_x509_certificates(first.leaf.chain_pem)
    assert chain == [first.leaf.cert, first.ca.cert]


def test_healthy_material_is_kept_byte_for_byte(first: tls.Plan) -> None:
    ca, leaf = material(first)
    again = ensure(ca, leaf, now=NOW + datetime.timedelta(days=200))
    assert again.event == "kept"
    assert material(again) == material(first)


def test_leaf_renews_in_its_window_under_the_same_ca(first: tls.Plan) -> None:
    ca, leaf = material(first)
    later = NOW + datetime.timedelta(days=245)  # 365 - 121 + 1
    renewed = ensure(ca, leaf, now=later)
    assert renewed.event == "renewed"
    assert "expires" in renewed.reason
    assert renewed.ca.cert_pem == first.ca.cert_pem
    assert renewed.ca.fingerprint == first.ca.fingerprint
    assert renewed.leaf.chain_pem != first.leaf.chain_pem
    assert renewed.leaf.not_after > first.leaf.not_after
    # The renewed leaf is then kept.
    assert ensure(*material(renewed), now=later).event == "kept"


def test_expired_leaf_is_renewed(first: tls.Plan) -> None:
    ca, leaf = material(first)
    renewed = ensure(ca, leaf, now=NOW + datetime.timedelta(days=400))
    assert renewed.event == "renewed"
    assert renewed.ca.fingerprint == first.ca.fingerprint


def test_new_names_reissue_the_leaf(first: tls.Plan) -> None:
    ca, leaf = material(first)
    renewed = ensure(ca, leaf, dns=[*DNS, "backup.example.com"], ips=["10.0.0.7"])
    assert renewed.event == "renewed"
    assert "names" in renewed.reason
    assert tls.leaf_names(renewed.leaf.cert) == ({*DNS, "backup.example.com"}, {"10.0.0.7"})
    assert renewed.ca.fingerprint == first.ca.fingerprint


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda ca, leaf: (leaf[0], b"not a key"), "not an unencrypted PEM private key"),
        (lambda ca, leaf: (b"garbage", leaf[1]), "not a PEM certificate"),
        (lambda ca, leaf: (leaf[0], ca[1]), "does not match"),
    ],
)
def test_unusable_leaf_is_reissued(first: tls.Plan, corrupt, reason: str) -> None:
    ca, leaf = material(first)
    renewed = ensure(ca, corrupt(ca, leaf))
    assert renewed.event == "renewed"
    assert reason in renewed.reason
    assert renewed.ca.fingerprint == first.ca.fingerprint


def test_leaf_from_another_ca_is_reissued(first: tls.Plan) -> None:
    other = ensure()
    renewed = ensure(material(first)[0], material(other)[1])
    assert renewed.event == "renewed"
    assert "not signed by the current CA" in renewed.reason


@pytest.mark.parametrize(
    "bad_ca",
    [
        lambda ca: (b"", b""),
        lambda ca: (ca[0], b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        lambda ca: (b"junk", ca[1]),
    ],
)
def test_unusable_ca_is_regenerated_and_says_so(first: tls.Plan, bad_ca) -> None:
    ca, leaf = material(first)
    plan = ensure(bad_ca(ca), leaf)
    assert plan.event == "ca-regenerated"
    assert plan.reason
    assert plan.ca.fingerprint != first.ca.fingerprint
    assert tls.signed_by(plan.leaf.cert, plan.ca.cert)


def test_lost_ca_with_a_running_leaf_is_a_regeneration(first: tls.Plan) -> None:
    plan = ensure(None, material(first)[1])
    assert plan.event == "ca-regenerated"
    assert "gone" in plan.reason


def test_expired_ca_is_regenerated(first: tls.Plan) -> None:
    ca, leaf = material(first)
    plan = ensure(ca, leaf, now=NOW + datetime.timedelta(days=3651))
    assert plan.event == "ca-regenerated"
    assert "expired" in plan.reason


def test_leaf_never_outlives_its_ca() -> None:
    plan = tls.ensure(
        observed_ca=None,
        observed_leaf=None,
        common_name="ca",
        dns_names=DNS,
        ip_addresses=[],
        now=NOW,
        ca_validity_days=30,
        leaf_validity_days=365,
        renew_before=RENEW,
    )
    assert plan.leaf.not_after <= plan.ca.cert.not_valid_after_utc


# ---------------------------------------------------------------------------- bring your own


def test_brought_with_ca_pins_the_ca(first: tls.Plan) -> None:
    brought = tls.check_brought(first.leaf.chain_pem, first.leaf.key_pem, first.ca.cert_pem, NOW)
    assert brought.pin == first.ca.fingerprint
    assert brought.pinned == "ca"


def test_brought_without_ca_pins_the_leaf(first: tls.Plan) -> None:
    brought = tls.check_brought(first.leaf.chain_pem, first.leaf.key_pem, None, NOW)
    assert brought.pin == tls.fingerprint(first.leaf.cert)
    assert brought.pinned == "leaf"
    assert brought.not_after == first.leaf.not_after


def test_brought_self_signed_certificate_pins_itself(first: tls.Plan) -> None:
    brought = tls.check_brought(first.ca.cert_pem, first.ca.key_pem, None, NOW)
    assert brought.pin == first.ca.fingerprint


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda p: (b"nope", p.leaf.key_pem, None, NOW), "tls.crt is not a PEM certificate"),
        (lambda p: (p.leaf.chain_pem, b"nope", None, NOW), "tls.key is not"),
        (lambda p: (p.leaf.chain_pem, p.ca.key_pem, None, NOW), "does not match"),
        (
            lambda p: (p.leaf.chain_pem, p.leaf.key_pem, None, NOW + datetime.timedelta(days=366)),
            "expired",
        ),
        (lambda p: (p.leaf.chain_pem, p.leaf.key_pem, b"nope", NOW), "ca.crt is not"),
    ],
)
def test_brought_invalid_material_is_explained(first: tls.Plan, args, message: str) -> None:
    with pytest.raises(tls.TLSError, match=message):
        tls.check_brought(*args(first))


def test_brought_ca_must_be_in_the_served_chain(first: tls.Plan) -> None:
    leaf_only = first.leaf.cert.public_bytes(tls.serialization.Encoding.PEM)
    with pytest.raises(tls.TLSError, match=r"append ca\.crt to tls\.crt"):
        tls.check_brought(leaf_only, first.leaf.key_pem, first.ca.cert_pem, NOW)


def test_brought_ca_must_have_signed_the_leaf(first: tls.Plan) -> None:
    other = ensure()
    chain = first.leaf.chain_pem + other.ca.cert_pem
    with pytest.raises(tls.TLSError, match=r"not signed by ca\.crt"):
        tls.check_brought(chain, first.leaf.key_pem, other.ca.cert_pem, NOW)
