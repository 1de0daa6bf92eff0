"""TLS material: a long-lived CA that clients trust, and a serving leaf that rotates under it.

Clients verify the server the standard way: the served chain must lead to a CA they
trust (the `ca.crt` of their credentials bundle), the leaf must name the host they
dial and be within its validity. So the leaf carries every name clients are handed and
is renewed well before it expires, under the same CA, which clients never notice.

The CA itself is replaced only by a planned rollover: the next CA is generated while the
current one still has two rollover periods to live and is handed to clients beside the
current one (the trust bundle); it signs the serving certificate once it has been in
every bundle for one rollover period. A CA that is lost is regenerated at once, which
breaks every client until it takes the new bundle, and the caller says so.

kopia's `--server-cert-fingerprint` is NOT such a check: with it, kopia v0.23.1 skips
chain verification and accepts a server if any certificate it presents has the pinned
SHA-256 (`internal/tlsutil/tlsutil.go`, `verifyPeerCertificate`); a server in the middle
presenting `[its own leaf, our CA]` passes. The fingerprint is published for a first
look only.

Everything here is pure: the current time and the observed PEM come in as arguments.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from function.entropy import Entropy
from function.memo import MEMO

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Backdate new certificates a little so a node with a slow clock accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class TLSError(ValueError):
    """Observed or brought TLS material that cannot be used, with the reason."""


@dataclasses.dataclass(frozen=True)
class CA:
    """The CA that signs serving certificates and that clients trust."""

    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: PrivateKey

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lowercase hex (status.tlsFingerprint)."""
        return fingerprint(self.cert)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A serving certificate: `chain_pem` is the leaf followed by its CA."""

    chain_pem: bytes
    key_pem: bytes
    cert: x509.Certificate

    @property
    def not_after(self) -> datetime.datetime:
        """When the leaf expires (UTC)."""
        return self.cert.not_valid_after_utc


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint Kopia compares, as lowercase hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex()


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint Windows shows when asked to trust a certificate."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a display name


def rfc3339(moment: datetime.datetime) -> str:
    """Format a UTC time the way Kubernetes does (`2026-01-02T03:04:05Z`)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(data: bytes) -> str:
    """A short, public digest of public material (e.g. a certificate chain)."""
    return hashlib.sha256(data).hexdigest()[:16]


# ---------------------------------------------------------------------------- parsing


def _load_certs(pem: bytes) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(pem))


def _load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        msg = "the private key is neither ECDSA nor RSA"
        raise TLSError(msg)
    return key


def load_certificates(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """Parse one or more PEM certificates, or raise TLSError naming `what`."""
    try:
        certs = MEMO.value(_load_certs, pem)
    except ValueError as e:
        msg = f"{what} is not a PEM certificate ({e})"
        raise TLSError(msg) from None
    if not certs:
        msg = f"{what} holds no certificate"
        raise TLSError(msg)
    return certs


def load_key(pem: bytes, what: str) -> PrivateKey:
    """Parse an unencrypted PEM private key, or raise TLSError naming `what`."""
    try:
        return MEMO.value(_load_key, pem)
    except (ValueError, TypeError) as e:
        msg = f"{what} is not an unencrypted PEM private key ({e})"
        raise TLSError(msg) from None


def _public_bytes(key: PrivateKey | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    return _public_bytes(cert) == _public_bytes(key)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert`."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------------------- generation


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Signatures only: a CA's on certificates (and CRLs), a leaf's in TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def new_ca(common_name: str, now: datetime.datetime, validity_days: int, entropy: Entropy) -> CA:
    """Generate a CA (ECDSA P-256) that may sign only end-entity certificates."""
    key = entropy.private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(entropy.serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return CA(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), cert, key)


def new_leaf(  # noqa: PLR0917
    ca: CA,
    dns_names: list[str],
    ip_addresses: list[str],
    now: datetime.datetime,
    validity_days: int,
    entropy: Entropy,
) -> Leaf:
    """Issue a serving certificate for the given names under `ca`."""
    key = entropy.private_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    not_after = min(now + datetime.timedelta(days=validity_days), ca.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0][:64])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(entropy.serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.cert_pem
    return Leaf(chain, _key_pem(key), cert)


# ---------------------------------------------------------------------------- observation


def parse_ca(cert_pem: bytes, key_pem: bytes, now: datetime.datetime) -> CA:
    """Load an observed CA, or raise TLSError saying why it cannot be used."""
    ca = MEMO.value(_load_ca, cert_pem, key_pem)
    if ca.cert.not_valid_after_utc <= now:
        msg = f"the CA certificate expired at {rfc3339(ca.cert.not_valid_after_utc)}"
        raise TLSError(msg)
    return ca


def _load_ca(cert_pem: bytes, key_pem: bytes) -> CA:
    """The parts of loading a CA that do not depend on the time, once per CA."""
    cert = load_certificates(cert_pem, "the CA certificate")[0]
    key = load_key(key_pem, "the CA key")
    if not key_matches(cert, key):
        msg = "the CA key does not match the CA certificate"
        raise TLSError(msg)
    constraints = _basic_constraints(cert)
    if constraints is None or not constraints.ca:
        msg = "the CA certificate is not a CA (basic constraints)"
        raise TLSError(msg)
    return CA(cert_pem, key_pem, cert, key)


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def reissued(ca: CA, leaf: Leaf) -> bool:
    """Whether the leaf was issued after its CA, i.e. it renewed an earlier leaf."""
    return leaf.cert.not_valid_before_utc > ca.cert.not_valid_before_utc + CLOCK_SKEW


def leaf_names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def _leaf_problem(ca_pem: bytes, chain_pem: bytes, key_pem: bytes) -> str | None:
    """What makes an observed leaf unusable under a CA, whatever the time, or None."""
    try:
        ca = load_certificates(ca_pem, "the CA certificate")[0]
        certs = load_certificates(chain_pem, "the serving certificate")
        key = load_key(key_pem, "the serving key")
    except TLSError as e:
        return str(e)
    leaf = certs[0]
    if not key_matches(leaf, key):
        return "the serving key does not match the serving certificate"
    if not signed_by(leaf, ca):
        return "the serving certificate is not signed by the current CA"
    if len(certs) < 2 or certs[-1] != ca:
        return "the served chain does not end with the signing CA"
    return None


def reissue_reason(
    ca: CA,
    *,
    chain_pem: bytes,
    key_pem: bytes,
    dns_names: list[str],
    ip_addresses: list[str],
    now: datetime.datetime,
    renew_before: datetime.timedelta,
) -> str | None:
    """Why an observed leaf must be re-issued, or None when it is healthy and is kept."""
    problem = MEMO.value(_leaf_problem, ca.cert_pem, chain_pem, key_pem)
    if problem is not None:
        return problem
    leaf = load_certificates(chain_pem, "the serving certificate")[0]
    if leaf.not_valid_after_utc - renew_before <= now:
        return f"the serving certificate expires at {rfc3339(leaf.not_valid_after_utc)}"
    have_dns, have_ips = leaf_names(leaf)
    if have_dns != set(dns_names) or have_ips != set(ip_addresses):
        return "the names the server is reached by changed"
    return None


@dataclasses.dataclass(frozen=True)
class Brought:
    """A validated bring-your-own certificate, in the shape cert-manager writes.

    `tls.crt` holds the leaf (and any intermediates), `ca.crt` the issuing CA, which
    cert-manager leaves out of `tls.crt` on purpose. The server serves `tls.crt` followed
    by `ca.crt` when `ca.crt` is not in it already (`append_ca`), and clients trust the
    anchor: `ca.crt`, or without one the last certificate of `tls.crt`.
    """

    anchor_pem: bytes
    pin: str  # the anchor's SHA-256
    not_after: datetime.datetime
    chain_digest: str
    append_ca: bool
    pinned: str  # "ca" when ca.crt is the anchor, "chain" when tls.crt's last certificate is


def _verify_chain(  # noqa: PLR0917
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchor: x509.Certificate,
    host: str,
    now: datetime.datetime,
    trusted: str,
) -> None:
    """Check what a verifying client checks: chain to the anchor, host name, validity."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if leaf == anchor:
        # A self-signed leaf that clients trust directly: only its names and time count.
        dns, ips = leaf_names(leaf)
        named = (
            str(address) in ips
            if address is not None
            else host in dns or any(_wildcard_matches(n, host) for n in dns)
        )
        if not named:
            names = sorted(dns | ips)
            msg = f"the certificate in tls.crt does not name {host} (its names: {names})"
            raise TLSError(msg)
        return
    subject = verification.IPAddress(address) if address is not None else verification.DNSName(host)
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store([anchor]))
            .time(now)
            .build_server_verifier(subject)
        )
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as e:
        dns, ips = leaf_names(leaf)
        names = sorted(dns | ips)
        msg = (
            f"a client that trusts {trusted} and dials {host} would refuse it ({e}); "
            f"the certificate names {names}"
        )
        raise TLSError(msg) from None


def _wildcard_matches(pattern: str, host: str) -> bool:
    if not pattern.startswith("*."):
        return False
    head, _, rest = host.partition(".")
    return bool(head) and rest == pattern[2:]


def check_brought(
    tls_crt: bytes,
    tls_key: bytes,
    ca_crt: bytes | None,
    now: datetime.datetime,
    hosts: Sequence[str],
) -> Brought:
    """Validate a `kubernetes.io/tls` Secret brought by the user for serving `hosts`.

    The leaf must match the key, be valid now and name every host (the endpoints clients
    are handed: the Service's, and the external URL's); the chain must lead to the
    anchor the way a verifying client builds it.
    """
    if isinstance(hosts, str):
        msg = "hosts is a list of host names, not one string"
        raise TypeError(msg)
    certs = load_certificates(tls_crt, "tls.crt")
    key = load_key(tls_key, "tls.key")
    leaf = certs[0]
    if not key_matches(leaf, key):
        msg = "tls.key does not match the first certificate in tls.crt"
        raise TLSError(msg)
    if leaf.not_valid_after_utc <= now:
        msg = f"the certificate in tls.crt expired at {rfc3339(leaf.not_valid_after_utc)}"
        raise TLSError(msg)
    if leaf.not_valid_before_utc > now + CLOCK_SKEW:
        msg = f"the certificate in tls.crt is not valid before {rfc3339(leaf.not_valid_before_utc)}"
        raise TLSError(msg)
    if ca_crt:
        anchor = load_certificates(ca_crt, "ca.crt")[0]
        append_ca = anchor not in certs
        served = [*certs, anchor] if append_ca else list(certs)
        pinned = "ca"
    else:
        anchor, append_ca, served, pinned = certs[-1], False, list(certs), "chain"
    trusted = "ca.crt" if pinned == "ca" else "the last certificate of tls.crt"
    for host in hosts:
        _verify_chain(leaf, [c for c in served[1:] if c != anchor], anchor, host, now, trusted)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in served)
    return Brought(
        anchor_pem=anchor.public_bytes(serialization.Encoding.PEM),
        pin=fingerprint(anchor),
        not_after=leaf.not_valid_after_utc,
        chain_digest=digest(chain_pem),
        append_ca=append_ca,
        pinned=pinned,
    )


# ---------------------------------------------------------------------------- decisions


@dataclasses.dataclass(frozen=True)
class Plan:
    """The TLS material to compose, and what happened to it on this call."""

    ca: CA  # signs the leaf; its fingerprint is what status.tlsFingerprint shows
    next_ca: CA | None  # generated ahead of a rollover, already trusted by clients
    leaf: Leaf
    # What happened to the CA: "kept", "issued" (first call), "regenerated" (lost: a
    # break for clients), "rollover-started" (next CA generated) or "rolled-over".
    ca_event: str
    # What happened to the leaf: "kept", "issued" (with a new CA) or "renewed".
    leaf_event: str
    reason: str  # why a CA or the leaf was (re)generated; empty when all was kept
    replaced: str = ""  # the fingerprint of the CA a rollover retired
    switch_at: datetime.datetime | None = None  # when the next CA starts signing

    @property
    def trust_pem(self) -> bytes:
        """What clients trust: the current CA, and the next one during a rollover."""
        return self.ca.cert_pem + (self.next_ca.cert_pem if self.next_ca else b"")


def generated_at(cert: x509.Certificate) -> datetime.datetime:
    """When the function generated a certificate (they are backdated by CLOCK_SKEW)."""
    return cert.not_valid_before_utc + CLOCK_SKEW


def _parse_optional_ca(
    observed: tuple[bytes, bytes] | None, now: datetime.datetime
) -> tuple[CA | None, str]:
    if observed is None:
        return None, ""
    try:
        return parse_ca(*observed, now), ""
    except TLSError as e:
        return None, str(e)


def _signer(
    observed_ca: tuple[bytes, bytes] | None,
    observed_next_ca: tuple[bytes, bytes] | None,
    *,
    leaf_observed: bool,
    common_name: str,
    now: datetime.datetime,
    ca_validity_days: int,
    rollover: datetime.timedelta,
    entropy: Entropy,
) -> tuple[CA, CA | None, str, str, str]:
    """The signing CA and the next one: (ca, next_ca, ca_event, reason, replaced)."""
    ca, problem = _parse_optional_ca(observed_ca, now)
    next_ca, _ = _parse_optional_ca(observed_next_ca, now)
    if next_ca is not None and (ca is None or now >= generated_at(next_ca.cert) + rollover):
        # The planned switch: clients have trusted the next CA for a rollover period
        # (or the current one can no longer sign, and the next one is trusted already).
        replaced = ca.fingerprint if ca is not None else ""
        why = problem or "the next CA has been in every trust bundle for a rollover period"
        return next_ca, None, "rolled-over", why, replaced
    if ca is None:
        if observed_ca is None and leaf_observed:
            problem = "the CA Secret is gone while a serving certificate still exists"
        event = "regenerated" if problem else "issued"
        return new_ca(common_name, now, ca_validity_days, entropy), None, event, problem, ""
    if next_ca is None and ca.cert.not_valid_after_utc - 2 * rollover <= now:
        why = f"the CA expires at {rfc3339(ca.cert.not_valid_after_utc)}"
        next_ca = new_ca(common_name, now, ca_validity_days, entropy)
        return ca, next_ca, "rollover-started", why, ""
    return ca, next_ca, "kept", "", ""


def ensure(
    *,
    observed_ca: tuple[bytes, bytes] | None,
    observed_leaf: tuple[bytes, bytes] | None,
    common_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    now: datetime.datetime,
    ca_validity_days: int,
    leaf_validity_days: int,
    renew_before: datetime.timedelta,
    rollover: datetime.timedelta,
    entropy: Entropy,
    observed_next_ca: tuple[bytes, bytes] | None = None,
) -> Plan:
    """Keep healthy material byte for byte; re-issue only what is missing, unusable or due.

    The CA is generated once. When it has less than two `rollover` periods to live, the
    next CA is generated and handed to clients beside it; once the next CA has been
    trusted for one `rollover` period (or the current one is no longer usable) it
    becomes the signer. A CA lost without a next one to take over is regenerated, which
    forces every client to take the new bundle, so the caller reports it. The leaf is
    re-issued under the signing CA when it enters its renewal window, when the names it
    must carry change, when it is unusable, or when the signer changed.
    """
    ca, next_ca, ca_event, reason, replaced = _signer(
        observed_ca,
        observed_next_ca,
        leaf_observed=observed_leaf is not None,
        common_name=common_name,
        now=now,
        ca_validity_days=ca_validity_days,
        rollover=rollover,
        entropy=entropy,
    )
    switch_at = generated_at(next_ca.cert) + rollover if next_ca is not None else None
    leaf_event = "issued"
    if observed_leaf is not None:
        chain, key = observed_leaf
        why = reissue_reason(
            ca,
            chain_pem=chain,
            key_pem=key,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            now=now,
            renew_before=renew_before,
        )
        if why is None:
            leaf = Leaf(chain, key, load_certificates(chain, "the serving certificate")[0])
            return Plan(ca, next_ca, leaf, ca_event, "kept", reason, replaced, switch_at)
        leaf_event = "renewed"
        if ca_event in ("kept", "rollover-started"):
            reason = why if ca_event == "kept" else f"{reason}; {why}"
    leaf = new_leaf(ca, dns_names, ip_addresses, now, leaf_validity_days, entropy)
    return Plan(ca, next_ca, leaf, ca_event, leaf_event, reason, replaced, switch_at)
