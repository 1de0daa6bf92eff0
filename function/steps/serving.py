"""TLSReady: what the server serves, and the CA its clients trust.

Generated: a CA made once (and rolled over on a plan) and a serving certificate for the
endpoint's host renewed under it; `tls.py` decides, this step composes and reports.
Brought (`spec.tls.secretRef`): a Secret in cert-manager's shape, checked as a
verifying client would; the server serves `tls.crt` followed by its `ca.crt`. Either
way clients get the CA in their bundles and in the public `<xr>-ca-bundle` ConfigMap.
The published fingerprint is informational: kopia's fingerprint check does not stop a
machine in the middle (see tls.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

from function import names, tls
from function.conditions import Condition, TLSReady
from function.entropy import Entropy
from function.memo import recipe
from function.resources import configmaps, secrets
from function.resources.server import dns_names, endpoint_host
from function.snapshot import ServerSnapshot, decode
from function.step import KEEP, Desired, Step

ANNOTATION = "dataprotection.bsls.dev/"
REGENERATED_AT = ANNOTATION + "regenerated-at"
REPLACES = ANNOTATION + "replaces-fingerprint"
ROLLED_OVER_AT = ANNOTATION + "rolled-over-at"
RETIRED = ANNOTATION + "retired-fingerprint"
_NOTES = (REGENERATED_AT, REPLACES, ROLLED_OVER_AT, RETIRED)


@dataclasses.dataclass(frozen=True)
class Served:
    """What the server serves and what clients trust."""

    ok: bool  # there is a usable certificate
    fingerprint: str  # SHA-256 of the CA clients trust (informational)
    not_after: str  # RFC 3339 expiry of the serving certificate
    chain_digest: str  # rolls the server when the served chain changes
    secret_name: str  # the Secret the server mounts
    trust_pem: bytes  # what clients trust: the CA(s), PEM; b"" when unknown
    append_ca: bool  # the server appends the Secret's ca.crt to tls.crt (cert-manager shape)


def step(s: ServerSnapshot, now: datetime.datetime, entropy: Entropy) -> Step[Served]:
    """Keep, renew, roll over or check the TLS material of one server."""
    if s.spec.tls.secretRef is not None:
        return _brought(s, s.spec.tls.secretRef.name, now)
    return _generated(s, now, entropy)


def _generated(s: ServerSnapshot, now: datetime.datetime, entropy: Entropy) -> Step[Served]:
    owner, namespace, inp = s.xr.tenant, s.xr.namespace, s.input
    in_cluster = dns_names(owner, namespace)
    extra = [n for n in s.spec.tls.additionalDNSNames if n not in in_cluster]
    ips = list(s.spec.tls.additionalIPAddresses)
    external = s.spec.service.external_host
    if external is not None:
        (ips if _is_ip(external) else extra).append(external)
    extra, ips = list(dict.fromkeys(extra)), list(dict.fromkeys(ips))
    observed = s.observed.secret(names.TLS_CA, "ca.crt", "ca.key", "next-ca.crt", "next-ca.key")
    rollover = datetime.timedelta(days=inp.ca_rollover_days)
    plan = tls.ensure(
        observed_ca=observed[:2] if observed is not None else None,  # type: ignore[arg-type]
        observed_next_ca=observed[2:] if observed is not None and any(observed[2:]) else None,  # type: ignore[arg-type]
        observed_leaf=s.observed.secret(names.TLS_SERVER, "tls.crt", "tls.key"),  # type: ignore[arg-type]
        common_name=f"{owner}.{namespace} kopia CA",
        dns_names=in_cluster + extra,
        ip_addresses=ips,
        now=now,
        ca_validity_days=inp.caValidityDays,
        leaf_validity_days=inp.certificateValidityDays,
        renew_before=datetime.timedelta(days=inp.renew_before_days),
        rollover=rollover,
        entropy=entropy,
    )
    notes = _notes(plan, s.observed.annotations(names.TLS_CA), s.xr.status.tls_fingerprint, now)
    if ROLLED_OVER_AT in notes and _parse_time(notes[ROLLED_OVER_AT]) + rollover <= now:
        # A rollover's note is kept for one rollover period after the switch.
        notes.pop(ROLLED_OVER_AT)
        notes.pop(RETIRED, None)
    next_ca = plan.next_ca
    resources: dict[str, Desired] = {
        names.TLS_CA: recipe(
            secrets.tls_ca,
            owner,
            namespace,
            plan.ca.cert_pem,
            plan.ca.key_pem,
            next_ca.cert_pem if next_ca else b"",
            next_ca.key_pem if next_ca else b"",
            notes,
        ),
        names.TLS_SERVER: recipe(
            secrets.tls_server,
            owner,
            namespace,
            plan.leaf.chain_pem,
            plan.leaf.key_pem,
            plan.trust_pem,
        ),
        names.CA_BUNDLE: recipe(configmaps.ca_bundle, owner, namespace, plan.trust_pem),
    }
    served = Served(
        ok=True,
        fingerprint=plan.ca.fingerprint,
        not_after=tls.rfc3339(plan.leaf.not_after),
        chain_digest=tls.digest(plan.leaf.chain_pem),
        secret_name=names.owned(owner, "tls"),
        trust_pem=plan.trust_pem,
        append_ca=False,
    )
    reason, message = _condition(plan, notes, endpoint_host(owner, namespace))
    return Step(resources, Condition(True, reason, message), served)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_time(value: str) -> datetime.datetime:
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _notes(
    plan: tls.Plan, before: dict[str, str], old_fingerprint: str, now: datetime.datetime
) -> dict[str, str]:
    """The annotations that keep a CA change visible on the tls-ca Secret."""
    notes = {k: before[k] for k in _NOTES if k in before}
    if plan.ca_event == "regenerated":
        notes = {REGENERATED_AT: tls.rfc3339(now), REPLACES: old_fingerprint or "unknown"}
    elif plan.ca_event == "rolled-over":
        notes.pop(REGENERATED_AT, None)
        notes.pop(REPLACES, None)
        notes[ROLLED_OVER_AT] = tls.rfc3339(now)
        notes[RETIRED] = plan.replaced or old_fingerprint or "unknown"
    return notes


def _condition(plan: tls.Plan, notes: dict[str, str], host: str) -> tuple[TLSReady, str]:
    """TLSReady's reason and message for generated material."""
    fingerprint = plan.ca.fingerprint
    not_after = tls.rfc3339(plan.leaf.not_after)
    refresh = (
        "VM owners must take the ca.crt of their current credentials Secret (re-run its "
        "connect-linux.sh or connect-windows.ps1)"
    )
    if REGENERATED_AT in notes:
        why = f" ({plan.reason})" if plan.ca_event == "regenerated" and plan.reason else ""
        return TLSReady.CA_REGENERATED, (
            f"The CA was lost and regenerated at {notes[REGENERATED_AT]}{why}; clients that "
            f"trust the old CA ({notes[REPLACES]}) are refused until they take the new one: "
            f"{refresh}. The new CA's fingerprint is {fingerprint}."
        )
    if plan.next_ca is not None and plan.switch_at is not None:
        return TLSReady.CA_ROLLOVER_PENDING, (
            f"CA rollover: the next CA ({plan.next_ca.fingerprint}) is in every credentials "
            f"Secret's ca.crt beside the current one ({fingerprint}) and signs the serving "
            f"certificate from {tls.rfc3339(plan.switch_at)}. Before then, {refresh}."
        )
    if ROLLED_OVER_AT in notes:
        return TLSReady.CA_ROLLED_OVER, (
            f"The CA rolled over at {notes[ROLLED_OVER_AT]}: the serving certificate is now "
            f"signed by {fingerprint}, which replaced {notes[RETIRED]}. Clients that did not "
            f"take the new ca.crt are refused; {refresh}."
        )
    if plan.leaf_event == "renewed" or tls.reissued(plan.ca, plan.leaf):
        # A leaf newer than its CA is a renewal; say so for as long as it is served.
        why = f" because {plan.reason}" if plan.leaf_event == "renewed" and plan.reason else ""
        issued = tls.rfc3339(tls.generated_at(plan.leaf.cert))
        return TLSReady.RENEWED, (
            f"The serving certificate for {host} was re-issued under the same CA at "
            f"{issued}{why}; clients notice nothing. It is valid until {not_after}."
        )
    return TLSReady.ISSUED, (
        f"Serving certificate for {host} valid until {not_after}, signed by the CA in every "
        f"credentials Secret's ca.crt (fingerprint {fingerprint})."
    )


def _brought(s: ServerSnapshot, secret_name: str, now: datetime.datetime) -> Step[Served]:
    namespace = s.xr.namespace
    host = endpoint_host(s.xr.tenant, namespace)
    ref = f"Secret {namespace}/{secret_name} (spec.tls.secretRef)"

    def unusable(reason: TLSReady, message: str) -> Step[Served]:
        # Publish the fingerprint in force before: the running server still serves it.
        previous = s.xr.status
        served = Served(
            False,
            previous.tls_fingerprint,
            previous.certificate_not_after,
            "",
            secret_name,
            b"",
            False,
        )
        keep = {names.CA_BUNDLE: KEEP} if names.CA_BUNDLE in s.observed else {}
        condition = Condition(False, reason, f"{message} A running server is left as it is.")
        return Step(keep, condition, served)

    secret = s.required.one(names.REQ_TLS_SECRET)
    if secret is None:
        return unusable(
            TLSReady.SECRET_NOT_FOUND,
            f"{ref} does not exist; create a kubernetes.io/tls Secret with tls.crt and tls.key "
            f"for {host} (and ca.crt, the CA clients trust).",
        )
    data = secret.get("data")
    data = data if isinstance(data, dict) else {}

    def key(name: str) -> bytes:
        value = data.get(name)
        return decode(value if isinstance(value, str) else None) or b""

    try:
        hosts = [host, *([external] if (external := s.spec.service.external_host) else [])]
        brought = tls.check_brought(
            key("tls.crt"), key("tls.key"), key("ca.crt") or None, now, hosts
        )
    except tls.TLSError as e:
        return unusable(TLSReady.INVALID, f"{ref} cannot be served: {e}.")
    trusted = "its ca.crt" if brought.pinned == "ca" else "the last certificate of its tls.crt"
    served = Served(
        ok=True,
        fingerprint=brought.pin,
        not_after=tls.rfc3339(brought.not_after),
        chain_digest=brought.chain_digest,
        secret_name=secret_name,
        trust_pem=brought.anchor_pem,
        append_ca=brought.append_ca,
    )
    bundle = {
        names.CA_BUNDLE: recipe(configmaps.ca_bundle, s.xr.tenant, namespace, brought.anchor_pem)
    }
    message = (
        f"Serving the certificate from {ref} for {host}; clients trust {trusted} "
        f"(fingerprint {brought.pin})."
    )
    return Step(bundle, Condition(True, TLSReady.PROVIDED, message), served)
