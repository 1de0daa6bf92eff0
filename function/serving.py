"""What a server serves: TLS material generated once and renewed under one CA, or brought.

The Kopia client pins the SHA-256 of a certificate in the served chain. A generated
server serves leaf + CA and publishes the CA's fingerprint, so renewals never move the
pin; a brought certificate pins its ca.crt when it has one, else itself.
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


@dataclasses.dataclass
class ServedTLS:
    """The outcome of the TLS step: what to compose and what to publish."""

    fingerprint: str
    not_after: str
    chain_digest: str
    secret_name: str  # the Secret the server mounts
    manifests: dict[str, Built]
    ok: bool
    reason: str
    message: str
    event: str = ""


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
) -> ServedTLS:
    """Decide the TLS material of a server: generated (kept, renewed) or brought.

    `previous` is what the XR's status published before; it is published again when a
    brought certificate cannot be read, so a running server's pin stays visible.
    """
    if spec.tls.secretRef is not None:
        return _brought(observed, spec.tls.secretRef.name, namespace, now, previous)
    dns_names = server.dns_names(name, namespace) + [
        n for n in spec.tls.additionalDNSNames if n not in server.dns_names(name, namespace)
    ]
    observed_ca = observed.secret_bytes(names.TLS_CA, "ca.crt", "ca.key")
    observed_leaf = observed.secret_bytes(names.TLS_SERVER, "tls.crt", "tls.key")
    plan = tls.ensure(
        observed_ca=observed_ca,  # type: ignore[arg-type]
        observed_leaf=observed_leaf,  # type: ignore[arg-type]
        common_name=f"{name}.{namespace} kopia CA",
        dns_names=dns_names,
        ip_addresses=list(spec.tls.additionalIPAddresses),
        now=now,
        ca_validity_days=inp.caValidityDays,
        leaf_validity_days=inp.certificateValidityDays,
        renew_before=datetime.timedelta(days=inp.renew_before_days),
    )
    ca_secret = secrets.tls_ca(name, namespace, plan.ca)
    old_pin = previous["tlsFingerprint"]
    regenerated = ca_secret["metadata"].setdefault("annotations", {})
    if plan.event == "ca-regenerated":
        regenerated["dataprotection.bsls.dev/regenerated-at"] = tls.rfc3339(now)
        regenerated["dataprotection.bsls.dev/replaces-fingerprint"] = old_pin or "unknown"
    else:
        # Carry the note of an earlier regeneration, so the condition keeps saying it.
        old_annotations = observed.annotations(names.TLS_CA)
        for key in (
            "dataprotection.bsls.dev/regenerated-at",
            "dataprotection.bsls.dev/replaces-fingerprint",
        ):
            if key in old_annotations:
                regenerated[key] = str(old_annotations[key])
    if not regenerated:
        del ca_secret["metadata"]["annotations"]
    leaf_secret = secrets.tls_server(name, namespace, plan.leaf, plan.ca)
    fingerprint = plan.ca.fingerprint
    not_after = tls.rfc3339(plan.leaf.not_after)
    if "dataprotection.bsls.dev/regenerated-at" in regenerated:
        reason = "CARegenerated"
        message = (
            f"The CA was regenerated at {regenerated['dataprotection.bsls.dev/regenerated-at']}"
            + (f" ({plan.reason})" if plan.event == "ca-regenerated" and plan.reason else "")
            + f": clients pinned to {regenerated['dataprotection.bsls.dev/replaces-fingerprint']}"
            f" must re-pin to {fingerprint} (status.tlsFingerprint)."
        )
    elif plan.event == "renewed" or tls.reissued(plan.ca, plan.leaf):
        # A leaf newer than its CA is a renewal; say so for as long as it is served.
        why = f" because {plan.reason}" if plan.event == "renewed" else ""
        issued = tls.rfc3339(plan.leaf.cert.not_valid_before_utc + tls.CLOCK_SKEW)
        reason, message = (
            "Renewed",
            (
                f"The serving certificate was re-issued under the same CA at {issued}{why}; "
                f"the pin {fingerprint} is unchanged. It is valid until {not_after}."
            ),
        )
    else:
        reason, message = (
            "Issued",
            (
                f"Serving certificate valid until {not_after}, signed by the CA whose fingerprint "
                f"{fingerprint} clients pin."
            ),
        )
    return ServedTLS(
        fingerprint=fingerprint,
        not_after=not_after,
        chain_digest=tls.digest(plan.leaf.chain_pem),
        secret_name=leaf_secret["metadata"]["name"],
        manifests={
            names.TLS_CA: BUILT.get(
                (
                    "tls-ca",
                    name,
                    namespace,
                    plan.ca.cert_pem,
                    plan.ca.key_pem,
                    *regenerated.items(),
                ),
                lambda: ca_secret,
            ),
            names.TLS_SERVER: BUILT.get(
                ("tls-server", name, namespace, plan.leaf.chain_pem, plan.leaf.key_pem),
                lambda: leaf_secret,
            ),
        },
        ok=True,
        reason=reason,
        message=message,
        event=plan.event,
    )


def _brought(
    observed: Observed, secret_name: str, namespace: str, now: datetime.datetime, previous: dict
) -> ServedTLS:
    ref = f"Secret {namespace}/{secret_name} (spec.tls.secretRef)"

    def unusable(reason: str, message: str) -> ServedTLS:
        # Publish the pin in force before: the running server still serves it.
        return ServedTLS(
            previous["tlsFingerprint"],
            previous["certificateNotAfter"],
            "",
            secret_name,
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
            "(and ca.crt to pin a CA).",
        )
    tls_crt, tls_key, ca_crt = decode(secret, "tls.crt", "tls.key", "ca.crt") or (b"", b"", b"")
    try:
        brought = tls.check_brought(tls_crt, tls_key, ca_crt or None, now)
    except tls.TLSError as e:
        return unusable("InvalidCertificate", f"{ref} cannot be served: {e}.")
    pinned = "its ca.crt" if brought.pinned == "ca" else "its leaf certificate (there is no ca.crt)"
    return ServedTLS(
        fingerprint=brought.pin,
        not_after=tls.rfc3339(brought.not_after),
        chain_digest=brought.chain_digest,
        secret_name=secret_name,
        manifests={},
        ok=True,
        reason="Provided",
        message=f"Serving the certificate from {ref}; clients pin {pinned}: {brought.pin}.",
    )
