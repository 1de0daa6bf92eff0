"""What a server serves: TLS material generated and renewed under one CA, or brought.

Clients verify the server against the CA in their credentials bundle (`ca.crt`) and the
host name of the endpoint they are handed, so the serving certificate must name that
host. A generated server serves `leaf + CA`; a brought certificate is served as
`tls.crt` followed by its `ca.crt` (cert-manager keeps the CA out of `tls.crt`).
The published fingerprint is the SHA-256 of the CA clients trust: informational only,
since kopia's fingerprint check does not stop a machine in the middle (see tls.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime

from function import names, tls
from function.models import BSLSSpec, FunctionInput
from function.observed import Observed
from function.resources import secrets, server
from function.safe import mapping
from function.structs import BUILT, Built
from function.tenancy import in_namespace

ANNOTATION = "dataprotection.bsls.dev/"
REGENERATED_AT = ANNOTATION + "regenerated-at"
REPLACES = ANNOTATION + "replaces-fingerprint"
ROLLED_OVER_AT = ANNOTATION + "rolled-over-at"
RETIRED = ANNOTATION + "retired-fingerprint"


@dataclasses.dataclass
class ServedTLS:
    """The outcome of the TLS step: what to compose and what to publish."""

    fingerprint: str  # SHA-256 of the CA clients trust (informational)
    not_after: str
    chain_digest: str
    secret_name: str  # the Secret the server mounts
    trust_pem: bytes  # what clients trust: the CA(s), PEM
    append_ca: bool  # the server appends the Secret's ca.crt to tls.crt (cert-manager shape)
    manifests: dict[str, Built]
    ok: bool
    reason: str
    message: str


def decode(secret: dict | None, *keys: str) -> tuple[bytes, ...] | None:
    """Decode Secret keys; missing or broken data decodes to b"" (unusable, not absent)."""
    if secret is None:
        return None
    data = mapping(secret, "data")
    out = []
    for key in keys:
        try:
            out.append(base64.b64decode(str(data.get(key, "")), validate=True))
        except (binascii.Error, ValueError):
            out.append(b"")
    return tuple(out)


def serve(
    *,
    observed: Observed,
    spec: BSLSSpec,
    inp: FunctionInput,
    name: str,
    namespace: str,
    now: datetime.datetime,
    previous: dict[str, str],
    host: str,
) -> ServedTLS:
    """Decide the TLS material of a server: generated (kept, renewed, rolled over) or brought.

    `previous` is what the XR's status published before; it is published again when a
    brought certificate cannot be read, so a running server's fingerprint stays visible.
    `host` is the endpoint's host name, which the serving certificate must name.
    """
    if spec.tls.secretRef is not None:
        return _brought(observed, spec.tls.secretRef.name, namespace, now, previous, host)
    in_cluster = server.dns_names(name, namespace)
    dns_names = in_cluster + [n for n in spec.tls.additionalDNSNames if n not in in_cluster]
    ca_keys = observed.secret_bytes(names.TLS_CA, "ca.crt", "ca.key", "next-ca.crt", "next-ca.key")
    observed_ca = observed_next = None
    if ca_keys is not None:
        observed_ca = (ca_keys[0], ca_keys[1])
        if ca_keys[2] or ca_keys[3]:
            observed_next = (ca_keys[2], ca_keys[3])
    rollover = datetime.timedelta(days=inp.ca_rollover_days)
    plan = tls.ensure(
        observed_ca=observed_ca,
        observed_next_ca=observed_next,
        observed_leaf=observed.secret_bytes(names.TLS_SERVER, "tls.crt", "tls.key"),  # type: ignore[arg-type]
        common_name=f"{name}.{namespace} kopia CA",
        dns_names=dns_names,
        ip_addresses=list(spec.tls.additionalIPAddresses),
        now=now,
        ca_validity_days=inp.caValidityDays,
        leaf_validity_days=inp.certificateValidityDays,
        renew_before=datetime.timedelta(days=inp.renew_before_days),
        rollover=rollover,
    )
    notes = _notes(plan, observed.annotations(names.TLS_CA), previous["tlsFingerprint"], now)
    # A rollover's note is kept for one rollover period after the switch.
    if ROLLED_OVER_AT in notes and _parse_time(notes[ROLLED_OVER_AT]) + rollover <= now:
        notes.pop(ROLLED_OVER_AT)
        notes.pop(RETIRED, None)
    ca_secret = secrets.tls_ca(name, namespace, plan.ca, plan.next_ca, notes)
    leaf_secret = secrets.tls_server(name, namespace, plan.leaf, plan.trust_pem)
    reason, message = _condition(plan, notes, host)
    return ServedTLS(
        fingerprint=plan.ca.fingerprint,
        not_after=tls.rfc3339(plan.leaf.not_after),
        chain_digest=tls.digest(plan.leaf.chain_pem),
        secret_name=leaf_secret["metadata"]["name"],
        trust_pem=plan.trust_pem,
        append_ca=False,
        manifests={
            names.TLS_CA: BUILT.get(
                (
                    "tls-ca",
                    name,
                    namespace,
                    plan.ca.cert_pem,
                    plan.ca.key_pem,
                    plan.next_ca.key_pem if plan.next_ca else b"",
                    *sorted(notes.items()),
                ),
                lambda: ca_secret,
            ),
            names.TLS_SERVER: BUILT.get(
                (
                    "tls-server",
                    name,
                    namespace,
                    plan.leaf.chain_pem,
                    plan.leaf.key_pem,
                    plan.trust_pem,
                ),
                lambda: leaf_secret,
            ),
        },
        ok=True,
        reason=reason,
        message=message,
    )


def _parse_time(value: str) -> datetime.datetime:
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _notes(
    plan: tls.Plan, before: dict[str, str], old_fingerprint: str, now: datetime.datetime
) -> dict[str, str]:
    """The annotations that keep a CA change visible on the tls-ca Secret."""
    notes = {
        k: before[k] for k in (REGENERATED_AT, REPLACES, ROLLED_OVER_AT, RETIRED) if k in before
    }
    if plan.ca_event == "regenerated":
        notes = {REGENERATED_AT: tls.rfc3339(now), REPLACES: old_fingerprint or "unknown"}
    elif plan.ca_event == "rolled-over":
        notes.pop(REGENERATED_AT, None)
        notes.pop(REPLACES, None)
        notes[ROLLED_OVER_AT] = tls.rfc3339(now)
        notes[RETIRED] = plan.replaced or old_fingerprint or "unknown"
    return notes


def _condition(plan: tls.Plan, notes: dict[str, str], host: str) -> tuple[str, str]:
    """TLSReady's reason and message for generated material."""
    fingerprint = plan.ca.fingerprint
    not_after = tls.rfc3339(plan.leaf.not_after)
    refresh = (
        "VM owners must take the ca.crt of their current credentials Secret (re-run its "
        "connect-linux.sh or connect-windows.ps1)"
    )
    if REGENERATED_AT in notes:
        why = f" ({plan.reason})" if plan.ca_event == "regenerated" and plan.reason else ""
        reason = "CARegenerated"
        return reason, (
            f"The CA was lost and regenerated at {notes[REGENERATED_AT]}{why}; clients that "
            f"trust the old CA ({notes[REPLACES]}) are refused until they take the new one: "
            f"{refresh}. The new CA's fingerprint is {fingerprint}."
        )
    if plan.next_ca is not None and plan.switch_at is not None:
        reason = "CARolloverPending"
        return reason, (
            f"CA rollover: the next CA ({plan.next_ca.fingerprint}) is in every credentials "
            f"Secret's ca.crt beside the current one ({fingerprint}) and signs the serving "
            f"certificate from {tls.rfc3339(plan.switch_at)}. Before then, {refresh}."
        )
    if ROLLED_OVER_AT in notes:
        reason = "CARolledOver"
        return reason, (
            f"The CA rolled over at {notes[ROLLED_OVER_AT]}: the serving certificate is now "
            f"signed by {fingerprint}, which replaced {notes[RETIRED]}. Clients that did not "
            f"take the new ca.crt are refused; {refresh}."
        )
    if plan.leaf_event == "renewed" or tls.reissued(plan.ca, plan.leaf):
        # A leaf newer than its CA is a renewal; say so for as long as it is served.
        why = f" because {plan.reason}" if plan.leaf_event == "renewed" and plan.reason else ""
        issued = tls.rfc3339(tls.generated_at(plan.leaf.cert))
        reason = "Renewed"
        return reason, (
            f"The serving certificate for {host} was re-issued under the same CA at "
            f"{issued}{why}; clients notice nothing. It is valid until {not_after}."
        )
    reason = "Issued"
    return reason, (
        f"Serving certificate for {host} valid until {not_after}, signed by the CA in every "
        f"credentials Secret's ca.crt (fingerprint {fingerprint})."
    )


def _brought(  # noqa: PLR0917
    observed: Observed,
    secret_name: str,
    namespace: str,
    now: datetime.datetime,
    previous: dict,
    host: str,
) -> ServedTLS:
    ref = f"Secret {namespace}/{secret_name} (spec.tls.secretRef)"

    def unusable(reason: str, message: str) -> ServedTLS:
        # Publish the fingerprint in force before: the running server still serves it.
        return ServedTLS(
            previous["tlsFingerprint"],
            previous["certificateNotAfter"],
            "",
            secret_name,
            b"",
            False,
            {},
            False,
            reason,
            f"{message} A running server is left as it is.",
        )

    secret = in_namespace(observed.required(names.REQ_TLS_SECRET), namespace)
    if secret is None:
        return unusable(
            "CertificateSecretNotFound",
            f"{ref} does not exist; create a kubernetes.io/tls Secret with tls.crt and tls.key "
            f"for {host} (and ca.crt, the CA clients trust).",
        )
    tls_crt, tls_key, ca_crt = decode(secret, "tls.crt", "tls.key", "ca.crt") or (b"", b"", b"")
    try:
        brought = tls.check_brought(tls_crt, tls_key, ca_crt or None, now, host)
    except tls.TLSError as e:
        return unusable("InvalidCertificate", f"{ref} cannot be served: {e}.")
    trusted = "its ca.crt" if brought.pinned == "ca" else "the last certificate of its tls.crt"
    return ServedTLS(
        fingerprint=brought.pin,
        not_after=tls.rfc3339(brought.not_after),
        chain_digest=brought.chain_digest,
        secret_name=secret_name,
        trust_pem=brought.anchor_pem,
        append_ca=brought.append_ca,
        manifests={},
        ok=True,
        reason="Provided",
        message=(
            f"Serving the certificate from {ref} for {host}; clients trust {trusted} "
            f"(fingerprint {brought.pin})."
        ),
    )
