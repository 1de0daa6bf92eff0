"""Composing a BackupStorageLocationServer, in the order of the reconciliation flow.

1. Require the BSLR, the users' password Secrets, a brought certificate and the
   tenant's other servers, all pinned to the tenant's namespace; wait until Crossplane
   has answered.
2. Repository: the BSLR must exist, be valid, be Ready and serve no other server.
3. TLS: keep, renew or roll over the certificate clients trust, or check a brought one.
4. Control: the control user and the key of every digest.
5. Server: Deployment, Service, NetworkPolicy, scripts; the Deployment only once the
   repository can be opened and there is a certificate to serve.
6. Users: one credentials Secret each, and a sync Job named by what it applies.
7. Freshness: a CronJob that reports when each user last stored a snapshot.
8. Status: endpoint, fingerprint, certificate expiry, users and their freshness.

Anything that depends on an input that is missing or broken is kept exactly as it runs
(or not created yet), and a condition says what to fix.
"""

from __future__ import annotations

import datetime

from function import names
from function.entropy import Entropy
from function.resources.meta import FUNCTION, MANAGED_BY
from function.snapshot import ServerSnapshot
from function.step import Composition, Requirement, poll
from function.steps import control, freshness, repository, server, serving, users
from function.tenancy import CLAIM_NAMESPACE_LABEL


def compose(s: ServerSnapshot, now: datetime.datetime, entropy: Entropy) -> Composition:
    """The server of one BSLS."""
    needs = requirements(s)
    if not all(s.required.resolved(r.name) for r in needs):
        return Composition(needs)  # Crossplane calls again with the answers

    repo = repository.step(s)
    tls = serving.step(s, now, entropy)
    ctl = control.step(s, entropy)
    connection = repo.value if tls.value.ok else None
    srv = server.step(s, connection, tls.value, ctl.value)
    reader = freshness.reader(s, entropy)
    people = users.step(
        s, connection, tls.value, ctl.value, entropy=entropy, now=now, reader=reader
    )
    fresh = freshness.step(s, reader, now)

    served = tls.value
    fingerprint = served.fingerprint or s.xr.status.tls_fingerprint
    status = {
        "endpoint": server.endpoint(s),
        # Where clients beyond the cluster connect (spec.service.externalURL), if anywhere.
        "externalEndpoint": s.spec.service.externalURL or "",
        "tlsFingerprint": fingerprint,
        # For `kubectl get`: enough to tell servers apart at a glance.
        "tlsFingerprintShort": f"{fingerprint[:12]}..." if fingerprint else "",
        "certificateNotAfter": served.not_after or s.xr.status.certificate_not_after,
        # Users in sync, not users asked for: what the last completed sync applied.
        "userCount": people.value.in_sync,
        "users": [_user_status(u, fresh.value) for u in people.value.listed],
    }
    if fresh.value.stale is not None:
        status["staleUsers"] = fresh.value.stale
        status["freshnessReportedAt"] = fresh.value.reported_at
    # Everything composed may be ready, but without a server nothing is served.
    ready = None if names.SERVER in srv.resources else False
    # Conditions in the order the XR has always listed them: users before the server.
    steps = (repo, tls, ctl, people, srv, fresh)
    return Composition(needs, steps, status, ready, poll(s.input, steps, now))


def _user_status(u: users.UserStatus, fresh: freshness.Freshness) -> dict:
    out: dict = {
        "identity": u.identity,
        "credentialsSecretName": u.credentials_secret,
        "access": u.access,
    }
    known = fresh.users.get(u.identity)
    if known is not None:
        if known.last_backup:
            out["lastBackup"] = known.last_backup
            out["lastBackupBytes"] = known.last_backup_bytes
        out["snapshots"] = known.snapshots
        out["stale"] = known.stale
    return out


def requirements(s: ServerSnapshot) -> tuple[Requirement, ...]:
    """What the server must read. Crossplane does not restrict a selector's namespace."""
    ns, inp = s.xr.namespace, s.input
    out = [
        Requirement(
            names.REQ_REPOSITORY,
            inp.repositoryApiVersion,
            inp.repositoryKind,
            ns,
            match_name=s.spec.repositoryRef.name,
        )
    ]
    secrets = sorted({u.passwordSecretRef.name for u in s.spec.users if u.passwordSecretRef})
    out += [
        Requirement(names.secret_requirement(n), "v1", "Secret", ns, match_name=n) for n in secrets
    ]
    if s.spec.tls.secretRef is not None:
        out.append(Requirement(names.REQ_TLS_SECRET, "v1", "Secret", ns, s.spec.tls.secretRef.name))
    # Generated material not observed (a new XR, or one re-created after a deletion):
    # what a server of this name left behind is read back instead of drawn anew.
    generated = [names.CONTROL] + ([] if s.spec.tls.secretRef else [names.TLS_CA])
    if s.spec.freshness.enabled and s.spec.users:
        generated.append(names.FRESHNESS_READER)
    generated += [
        names.credentials_key(u.identity) for u in s.spec.users if u.passwordSecretRef is None
    ]
    if any(key not in s.observed for key in generated):
        mine = {"app.kubernetes.io/instance": names.label(s.xr.tenant), MANAGED_BY: FUNCTION}
        out.append(Requirement(names.REQ_ADOPT, "v1", "Secret", ns, match_labels=mine))
    # Every server of the tenant, to refuse a second server on the same repository.
    # Legacy XRs are cluster-scoped: find them by the claim namespace they carry.
    if s.xr.namespaced:
        out.append(Requirement(names.REQ_SERVERS, s.xr.api_version, s.xr.kind, ns))
    else:
        labels = {CLAIM_NAMESPACE_LABEL: ns}
        out.append(Requirement(names.REQ_SERVERS, s.xr.api_version, s.xr.kind, None, None, labels))
    return tuple(out)
