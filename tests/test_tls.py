"""TLS lifecycle across simulated time: clients keep trusting the server while the CA lives,
and a CA rollover hands them the next CA before it signs."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from function import tls
from function.entropy import system_entropy

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DNS = ["vm-backups.team-a.svc", "vm-backups", "vm-backups.team-a"]
RENEW = datetime.timedelta(days=121)
ROLLOVER = datetime.timedelta(days=365)
HOST = "vm-backups.team-a.svc"


def ensure(
    observed_ca=None, observed_leaf=None, now=NOW, dns=None, ips=None, observed_next_ca=None
) -> tls.Plan:
    return tls.ensure(
        observed_ca=observed_ca,
        observed_next_ca=observed_next_ca,
        observed_leaf=observed_leaf,
        common_name="vm-backups.team-a kopia CA",
        dns_names=dns or DNS,
        ip_addresses=ips or [],
        now=now,
        ca_validity_days=3650,
        leaf_validity_days=365,
        renew_before=RENEW,
        rollover=ROLLOVER,
        entropy=system_entropy,
    )


def material(plan: tls.Plan) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return (plan.ca.cert_pem, plan.ca.key_pem), (plan.leaf.chain_pem, plan.leaf.key_pem)


def next_material(plan: tls.Plan) -> tuple[bytes, bytes] | None:
    return (plan.next_ca.cert_pem, plan.next_ca.key_pem) if plan.next_ca else None


def verifies(plan: tls.Plan, trusted_pem: bytes, now: datetime.datetime, host: str = HOST):
    """What a verifying client does: chain to the trusted CA(s), host name, validity."""
    trusted = x509.load_pem_x509_certificates(trusted_pem)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(trusted))
        .time(now)
        .build_server_verifier(verification.DNSName(host))
    )
    chain = x509.load_pem_x509_certificates(plan.leaf.chain_pem)
    try:
        verifier.verify(chain[0], chain[1:])
    except verification.VerificationError:
        return False
    return True


@pytest.fixture(scope="module")
def first() -> tls.Plan:
    return ensure()


def test_first_call_issues_a_ca_and_a_leaf_signed_by_it(first: tls.Plan) -> None:
    assert (first.ca_event, first.leaf_event) == ("issued", "issued")
    assert first.next_ca is None
    assert first.trust_pem == first.ca.cert_pem
    assert verifies(first, first.trust_pem, NOW)
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
    assert (again.ca_event, again.leaf_event) == ("kept", "kept")
    assert material(again) == material(first)


def test_leaf_renews_in_its_window_under_the_same_ca(first: tls.Plan) -> None:
    ca, leaf = material(first)
    later = NOW + datetime.timedelta(days=245)  # 365 - 121 + 1
    renewed = ensure(ca, leaf, now=later)
    assert (renewed.ca_event, renewed.leaf_event) == ("kept", "renewed")
    assert "expires" in renewed.reason
    assert renewed.ca.cert_pem == first.ca.cert_pem
    assert renewed.ca.fingerprint == first.ca.fingerprint
    assert renewed.leaf.chain_pem != first.leaf.chain_pem
    assert renewed.leaf.not_after > first.leaf.not_after
    # A client that trusted the CA before trusts the renewed leaf; it is then kept.
    assert verifies(renewed, first.trust_pem, later)
    assert ensure(*material(renewed), now=later).leaf_event == "kept"


def test_expired_leaf_is_renewed(first: tls.Plan) -> None:
    ca, leaf = material(first)
    renewed = ensure(ca, leaf, now=NOW + datetime.timedelta(days=400))
    assert renewed.leaf_event == "renewed"
    assert renewed.ca.fingerprint == first.ca.fingerprint


def test_new_names_reissue_the_leaf(first: tls.Plan) -> None:
    ca, leaf = material(first)
    renewed = ensure(ca, leaf, dns=[*DNS, "backup.example.com"], ips=["10.0.0.7"])
    assert renewed.leaf_event == "renewed"
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
    assert renewed.leaf_event == "renewed"
    assert reason in renewed.reason
    assert renewed.ca.fingerprint == first.ca.fingerprint


def test_leaf_from_another_ca_is_reissued(first: tls.Plan) -> None:
    other = ensure()
    renewed = ensure(material(first)[0], material(other)[1])
    assert renewed.leaf_event == "renewed"
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
    assert plan.ca_event == "regenerated"
    assert plan.reason
    assert plan.ca.fingerprint != first.ca.fingerprint
    assert tls.signed_by(plan.leaf.cert, plan.ca.cert)


def test_lost_ca_with_a_running_leaf_is_a_regeneration(first: tls.Plan) -> None:
    plan = ensure(None, material(first)[1])
    assert plan.ca_event == "regenerated"
    assert not verifies(plan, first.trust_pem, NOW)
    assert "gone" in plan.reason


def test_expired_ca_without_a_next_one_is_regenerated(first: tls.Plan) -> None:
    ca, leaf = material(first)
    plan = ensure(ca, leaf, now=NOW + datetime.timedelta(days=3651))
    assert plan.ca_event == "regenerated"
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
        rollover=datetime.timedelta(days=3),
        entropy=system_entropy,
    )
    assert plan.leaf.not_after <= plan.ca.cert.not_valid_after_utc


# ---------------------------------------------------------------------------- rollover


def test_a_ca_rollover_never_breaks_a_client_that_takes_the_bundle(first: tls.Plan) -> None:
    """Generate the next CA two rollover periods before expiry, hand it out, then switch."""
    ca_days = 3650
    before = NOW + datetime.timedelta(days=ca_days) - 2 * ROLLOVER - datetime.timedelta(days=1)
    ca, leaf = material(first)
    quiet = ensure(ca, leaf, now=before)
    assert (quiet.ca_event, quiet.next_ca) == ("kept", None)

    start = before + datetime.timedelta(days=2)
    pending = ensure(*material(quiet), now=start)
    assert pending.ca_event == "rollover-started"
    assert pending.next_ca is not None
    assert "expires" in pending.reason
    # Clients get both CAs at once; the old one still signs, so nothing breaks.
    assert pending.trust_pem == first.ca.cert_pem + pending.next_ca.cert_pem
    assert pending.ca.fingerprint == first.ca.fingerprint
    assert pending.switch_at == tls.generated_at(pending.next_ca.cert) + ROLLOVER
    assert verifies(pending, first.trust_pem, start)
    bundle = pending.trust_pem  # what a VM that refreshed its CA now trusts

    # Kept, next CA and all, until the switch.
    middle = start + ROLLOVER / 2
    still = ensure(*material(pending), now=middle, observed_next_ca=next_material(pending))
    assert still.ca_event == "kept"
    assert still.next_ca is not None
    assert still.next_ca.cert_pem == pending.next_ca.cert_pem
    assert still.leaf.chain_pem == pending.leaf.chain_pem

    switch = pending.switch_at + datetime.timedelta(minutes=1)
    rolled = ensure(*material(still), now=switch, observed_next_ca=next_material(still))
    assert rolled.ca_event == "rolled-over"
    assert rolled.leaf_event == "renewed"
    assert rolled.ca.cert_pem == pending.next_ca.cert_pem
    assert rolled.replaced == first.ca.fingerprint
    assert rolled.next_ca is None
    assert rolled.trust_pem == pending.next_ca.cert_pem
    assert tls.signed_by(rolled.leaf.cert, rolled.ca.cert)
    # The VM that took the bundle keeps working; one that never did is refused.
    assert verifies(rolled, bundle, switch)
    assert not verifies(rolled, first.trust_pem, switch)
    # After the switch the new CA is kept, and no new rollover starts for years.
    after = ensure(*material(rolled), now=switch + datetime.timedelta(days=30))
    assert (after.ca_event, after.leaf_event, after.next_ca) == ("kept", "kept", None)


def test_a_lost_ca_with_a_next_one_switches_to_it(first: tls.Plan) -> None:
    start = NOW + datetime.timedelta(days=3650) - 2 * ROLLOVER + datetime.timedelta(days=1)
    pending = ensure(*material(first), now=start)
    assert pending.next_ca is not None
    plan = ensure(None, material(pending)[1], now=start, observed_next_ca=next_material(pending))
    assert plan.ca_event == "rolled-over"
    assert plan.ca.cert_pem == pending.next_ca.cert_pem
    assert verifies(plan, pending.trust_pem, start)


def test_an_unusable_next_ca_is_replaced(first: tls.Plan) -> None:
    start = NOW + datetime.timedelta(days=3650) - 2 * ROLLOVER + datetime.timedelta(days=1)
    plan = ensure(*material(first), now=start, observed_next_ca=(b"junk", b"junk"))
    assert plan.ca_event == "rollover-started"
    assert plan.next_ca is not None
    assert plan.ca.cert_pem == first.ca.cert_pem


# ---------------------------------------------------------------------------- bring your own


def _issue(subject: str, key, issuer=None, issuer_key=None, *, ca: bool, dns=()):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def cert_manager() -> dict:
    """A root, an intermediate and a leaf for HOST, as a cert-manager CA issuer makes them."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _issue("root", root_key, ca=True)
    inter = _issue("intermediate", inter_key, root, root_key, ca=True)
    leaf = _issue(HOST, leaf_key, inter, inter_key, ca=False, dns=[HOST])
    direct = _issue(HOST, leaf_key, root, root_key, ca=False, dns=[HOST])
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"root": root, "inter": inter, "leaf": leaf, "direct": direct, "key": key_pem}


def test_cert_manager_shape_leaf_only_with_ca_crt_is_served_with_the_ca(cert_manager) -> None:
    c = cert_manager
    brought = tls.check_brought(pem(c["direct"]), c["key"], pem(c["root"]), NOW, [HOST])
    assert brought.append_ca
    assert brought.anchor_pem == pem(c["root"])
    assert brought.pin == tls.fingerprint(c["root"])


def test_cert_manager_shape_with_an_intermediate(cert_manager) -> None:
    c = cert_manager
    brought = tls.check_brought(pem(c["leaf"], c["inter"]), c["key"], pem(c["root"]), NOW, [HOST])
    assert brought.append_ca
    assert brought.pinned == "ca"
    assert brought.anchor_pem == pem(c["root"])


def test_brought_chain_missing_its_intermediate_is_refused(cert_manager) -> None:
    c = cert_manager
    with pytest.raises(tls.TLSError, match="would refuse it"):
        tls.check_brought(pem(c["leaf"]), c["key"], pem(c["root"]), NOW, [HOST])


def test_brought_leaf_must_name_the_endpoint_host(cert_manager) -> None:
    c = cert_manager
    with pytest.raises(tls.TLSError, match=r"dials other\.team-a\.svc would refuse it"):
        tls.check_brought(pem(c["direct"]), c["key"], pem(c["root"]), NOW, ["other.team-a.svc"])


def test_brought_with_ca_already_in_tls_crt_is_served_as_it_is(first: tls.Plan) -> None:
    brought = tls.check_brought(
        first.leaf.chain_pem, first.leaf.key_pem, first.ca.cert_pem, NOW, [HOST]
    )
    assert brought.pin == first.ca.fingerprint
    assert brought.pinned == "ca"
    assert not brought.append_ca


def test_brought_without_ca_trusts_the_last_certificate_of_the_chain(first: tls.Plan) -> None:
    brought = tls.check_brought(first.leaf.chain_pem, first.leaf.key_pem, None, NOW, [HOST])
    assert brought.pin == first.ca.fingerprint
    assert brought.pinned == "chain"
    assert brought.not_after == first.leaf.not_after
    assert not brought.append_ca


def test_brought_self_signed_certificate_trusts_itself(cert_manager) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(HOST, key, ca=False, dns=[HOST])
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    brought = tls.check_brought(pem(cert), key_pem, None, NOW, [HOST])
    assert brought.pin == tls.fingerprint(cert)
    with pytest.raises(tls.TLSError, match="does not name"):
        tls.check_brought(pem(cert), key_pem, None, NOW, ["elsewhere.svc"])


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
        tls.check_brought(*args(first), [HOST])


def test_brought_ca_must_have_signed_the_chain(first: tls.Plan) -> None:
    other = ensure()
    with pytest.raises(tls.TLSError, match=r"trusts ca\.crt and dials"):
        tls.check_brought(first.leaf.chain_pem, first.leaf.key_pem, other.ca.cert_pem, NOW, [HOST])
