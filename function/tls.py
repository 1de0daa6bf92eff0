"""TLS material: a long-lived CA that clients pin, and a serving leaf that rotates under it.

The Kopia client accepts a server when the SHA-256 of any certificate in the served
chain equals its pin, and checks neither hostname nor expiry when pinned. The server
therefore serves `leaf + CA` and the function publishes the CA's fingerprint: the leaf
can be re-issued as often as needed without touching any client.

Everything here is pure: the current time and the observed PEM come in as arguments.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import ipaddress

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Backdate new certificates a little so a node with a slow clock accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class TLSError(ValueError):
    """Observed or brought TLS material that cannot be used, with the reason."""


@dataclasses.dataclass(frozen=True)
class CA:
    """The CA that signs serving certificates; its fingerprint is the clients' pin."""

    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: PrivateKey

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lowercase hex: what clients pin."""
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


def rfc3339(moment: datetime.datetime) -> str:
    """Format a UTC time the way Kubernetes does (`2026-01-02T03:04:05Z`)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(data: bytes) -> str:
    """A short, public digest of public material (e.g. a certificate chain)."""
    return hashlib.sha256(data).hexdigest()[:16]


# ---------------------------------------------------------------------------- parsing


@functools.lru_cache(maxsize=4096)
def _load_certs(pem: bytes) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(pem))


@functools.lru_cache(maxsize=4096)
def _load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        msg = "the private key is neither ECDSA nor RSA"
        raise TLSError(msg)
    return key


def load_certificates(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """Parse one or more PEM certificates, or raise TLSError naming `what`."""
    try:
        certs = _load_certs(pem)
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
        return _load_key(pem)
    except (ValueError, TypeError) as e:
        msg = f"{what} is not an unencrypted PEM private key ({e})"
        raise TLSError(msg) from None


def _public_bytes(key: PrivateKey | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.lru_cache(maxsize=4096)
def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    return _public_bytes(cert) == _public_bytes(key)


@functools.lru_cache(maxsize=4096)
def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert`."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------------------- generation


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_ca(common_name: str, now: datetime.datetime, validity_days: int) -> CA:
    """Generate a CA (ECDSA P-256) that may sign only end-entity certificates."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), cert, key)


def new_leaf(
    ca: CA,
    dns_names: list[str],
    ip_addresses: list[str],
    now: datetime.datetime,
    validity_days: int,
) -> Leaf:
    """Issue a serving certificate for the given names under `ca`."""
    key = _new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    not_after = min(now + datetime.timedelta(days=validity_days), ca.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0][:64])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.cert_pem
    return Leaf(chain, _key_pem(key), cert)


# ---------------------------------------------------------------------------- observation


def parse_ca(cert_pem: bytes, key_pem: bytes, now: datetime.datetime) -> CA:
    """Load an observed CA, or raise TLSError saying why it cannot be used."""
    ca = _load_ca(cert_pem, key_pem)
    if ca.cert.not_valid_after_utc <= now:
        msg = f"the CA certificate expired at {rfc3339(ca.cert.not_valid_after_utc)}"
        raise TLSError(msg)
    return ca


@functools.lru_cache(maxsize=1024)
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


def reissue_reason(  # noqa: PLR0911
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
    try:
        certs = load_certificates(chain_pem, "the serving certificate")
        key = load_key(key_pem, "the serving key")
    except TLSError as e:
        return str(e)
    leaf = certs[0]
    if not key_matches(leaf, key):
        return "the serving key does not match the serving certificate"
    if not signed_by(leaf, ca.cert):
        return "the serving certificate is not signed by the current CA"
    if len(certs) < 2 or certs[-1] != ca.cert:
        return "the served chain does not end with the CA that clients pin"
    if leaf.not_valid_after_utc - renew_before <= now:
        return f"the serving certificate expires at {rfc3339(leaf.not_valid_after_utc)}"
    have_dns, have_ips = leaf_names(leaf)
    if have_dns != set(dns_names) or have_ips != set(ip_addresses):
        return "the names the server is reached by changed"
    return None


@dataclasses.dataclass(frozen=True)
class Brought:
    """A validated bring-your-own certificate."""

    pin: str
    not_after: datetime.datetime
    chain_digest: str
    pinned: str  # "ca" when ca.crt is the pin, "leaf" when the leaf itself is


def check_brought(
    tls_crt: bytes, tls_key: bytes, ca_crt: bytes | None, now: datetime.datetime
) -> Brought:
    """Validate a `kubernetes.io/tls` Secret brought by the user.

    The pin is the SHA-256 of `ca.crt` when present (then the leaf must be signed by
    it), else of the leaf itself.
    """
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
        ca = load_certificates(ca_crt, "ca.crt")[0]
        if not any(c == ca for c in certs):
            msg = (
                "tls.crt does not include the certificate in ca.crt, so clients pinning it "
                "would be refused: append ca.crt to tls.crt"
            )
            raise TLSError(msg)
        if not (signed_by(leaf, ca) or leaf == ca):
            msg = "the certificate in tls.crt is not signed by ca.crt"
            raise TLSError(msg)
        return Brought(fingerprint(ca), leaf.not_valid_after_utc, digest(tls_crt), "ca")
    return Brought(fingerprint(leaf), leaf.not_valid_after_utc, digest(tls_crt), "leaf")


# ---------------------------------------------------------------------------- decisions


@dataclasses.dataclass(frozen=True)
class Plan:
    """The TLS material to compose, and what happened to it on this call."""

    ca: CA
    leaf: Leaf
    event: str  # "kept", "issued", "renewed" or "ca-regenerated"
    reason: str  # why the leaf or the CA was (re)generated; empty when kept


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
) -> Plan:
    """Keep healthy material byte for byte; re-issue only what is missing or unusable.

    The CA is generated once and then only if it is lost or unusable (which forces
    every client to re-pin, so the caller reports it). The leaf is re-issued under the
    same CA when it enters its renewal window, when the names it must carry change, or
    when it is unusable; clients pinned to the CA notice nothing.
    """
    ca: CA | None = None
    ca_problem = ""
    if observed_ca is not None:
        try:
            ca = parse_ca(*observed_ca, now)
        except TLSError as e:
            ca_problem = str(e)
    event = "kept"
    if ca is None:
        ca = new_ca(common_name, now, ca_validity_days)
        if observed_ca is None and observed_leaf is not None:
            ca_problem = "the CA Secret is gone while a serving certificate still exists"
        event = "ca-regenerated" if ca_problem else "issued"
    if observed_leaf is not None and event != "ca-regenerated":
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
            return Plan(ca, leaf, "kept", "")
        leaf = new_leaf(ca, dns_names, ip_addresses, now, leaf_validity_days)
        return Plan(ca, leaf, "renewed", why)
    leaf = new_leaf(ca, dns_names, ip_addresses, now, leaf_validity_days)
    return Plan(ca, leaf, event, ca_problem)
