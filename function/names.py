"""Deterministic names for composed resources and their composition-resource-names.

Names derive from the XR's name only, so the same XR always composes the same objects
and a re-render finds what it composed before. Names that would be too long are
shortened with a hash suffix, never truncated into a collision.

No two composed objects of one kind share a name, whatever the identities in the spec:
a user's credentials Secret is `<xr>-<user>-<host>-<12 hex digits>`, a digest of the XR
and the identity, so look-alike identities (`a-b@c`, `a@b-c`) get different Secrets
(a 48-bit digest: two of 500 users collide with odds below one in a billion), and
its last segment is always those 12 hex digits while no system Secret's is (`-ca`,
`-tls`, `-control`), so a user can never take a system object's name. A BSLR's
objects carry `repository` in their names, so a BSLR and a BSLS of one name share none.
Crossplane keeps the name of an object it composed under a composition-resource-name,
so a changed scheme needs new keys: credentials Secrets moved from `credentials-<id>`
to `user-<id>` (see LEGACY_CREDENTIALS_PREFIX).
"""

from __future__ import annotations

import hashlib
import re

# Composition resource names (the keys of the desired and observed maps).
SERVER = "server"
SERVICE = "service"
TLS_CA = "tls-ca"
TLS_SERVER = "tls-server"
CONTROL = "control"
SCRIPTS = "scripts"
# A Job that must run again gets a new composition-resource-name: Crossplane keeps the
# name of the object it already composed under a key, and a Job's template is immutable.
# So Jobs are keyed "<prefix>-<digest>" (see job_key) and a new digest is a new Job.
USER_SYNC = "user-sync"
NETWORK_POLICY = "network-policy"
RETENTION = "retention"  # the CronJob that expires append-only users' snapshots
POD_MONITOR = "pod-monitor"
# Backup freshness: the CronJob that reports it, the report, the reader's credentials,
# and the API access that lets the CronJob's pod write the report and nothing else.
FRESHNESS = "freshness"
FRESHNESS_REPORT = "freshness-report"
FRESHNESS_READER = "freshness-reader"
FRESHNESS_ACCOUNT = "freshness-account"
FRESHNESS_ROLE = "freshness-role"
FRESHNESS_BINDING = "freshness-binding"
REPOSITORY_INIT = "repository-init"
REPOSITORY_CHECK = "repository-check"  # the periodic check, "<prefix>-<digest>" too
PASSWORD_CHANGE = "password-change"  # a rotation's Job, "<prefix>-<digest>" too
CA_BUNDLE = "ca-bundle"
REPOSITORY_SCRIPTS = "repository-scripts"
SERVICE_ACCOUNT = "service-account"  # a BSLR's, with spec.cloudIdentity
CREDENTIALS_PREFIX = "user-"
# Before 0.2 a user's credentials Secret was keyed "credentials-<identity>" and named
# "<xr>-<user>-<host>", which two identities could share. The function reads a generated
# password back from the old key once, so it survives the move to the new key and name.
LEGACY_CREDENTIALS_PREFIX = "credentials-"

# Required resources (the keys of the requirements map).
REQ_REPOSITORY = "repository"
REQ_TLS_SECRET = "tls-secret"
REQ_SERVERS = "servers"
REQ_CLAIM = "claim"  # a filesystem BSLR's PersistentVolumeClaim
REQ_ADOPT = "adoptable"  # the Secrets a deleted server of the same name left behind
REQ_SECRET_PREFIX = "secret-"

# Identities the function's own pods use inside the repository. Tenants cannot take
# them: the hostname is reserved (see models.SYSTEM_HOSTNAME).
SERVER_IDENTITY = ("server", "bsls-system")
SYNC_IDENTITY = ("user-sync", "bsls-system")
# The repository's own Jobs (init, check, password change) connect as this identity,
# which owns maintenance: the checks run it, whether or not a server exists.
MAINTENANCE_IDENTITY = ("maintenance", "bsls-system")
RETENTION_IDENTITY = ("retention", "bsls-system")
# The freshness CronJob's identity: a client of the server that reads snapshot records.
FRESHNESS_IDENTITY = ("freshness", "bsls-system")

LABEL_COMPONENT = "app.kubernetes.io/component"


def _fit(name: str, limit: int) -> str:
    """Return `name` if it fits, else a prefix of it plus a hash of the whole."""
    if len(name) <= limit:
        return name
    h = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{h}"


def label(name: str) -> str:
    """A DNS-1123 label (Services, label values): at most 63 characters."""
    return _fit(name.replace(".", "-"), 63)


def subdomain(name: str) -> str:
    """A DNS-1123 subdomain (Secrets, ConfigMaps, Jobs): at most 253 characters."""
    return _fit(name, 253)


def server(owner: str) -> str:
    """The Deployment and the Service; also the first label of the endpoint host."""
    return label(owner)


def owned(owner: str, suffix: str) -> str:
    """An object the XR owns that has a fixed role: `<xr>-<suffix>` (a subdomain)."""
    return subdomain(f"{owner}-{suffix}")


def cronjob(owner: str, suffix: str) -> str:
    """A CronJob: at most 52 characters, so that its Jobs' names (11 more) fit a label."""
    return _fit(label(f"{owner}-{suffix}"), 52)


def job(owner: str, suffix: str, content_digest: str) -> str:
    """A Job name that changes exactly when what the Job applies changes.

    Job names become a pod label (`job-name`), so they must fit in 63 characters.
    """
    return f"{_fit(label(f'{owner}-{suffix}'), 52)}-{content_digest[:10]}"


# Every character but lowercase letters, digits and '-' becomes '-'. Dots too:
# identities may hold "a..b" or "a-.b", never valid in a name.
_READABLE = str.maketrans({c: "-" for c in map(chr, range(128)) if not re.match(r"[a-z0-9-]", c)})


def credentials(owner: str, username: str, hostname: str) -> str:
    """The credentials Secret of one user: readable, and unique by its digest suffix."""
    readable = f"{owner}-{username}-{hostname}".lower().translate(_READABLE).strip("-")
    h = hashlib.sha256(f"credentials\0{owner}\0{username}@{hostname}".encode()).hexdigest()[:12]
    return f"{readable[:240].rstrip('-')}-{h}"


def job_key(prefix: str, job_name: str) -> str:
    """The composition-resource-name of a Job: its prefix and its name's digest suffix."""
    return f"{prefix}-{job_name.rsplit('-', 1)[-1]}"


def credentials_key(identity: str) -> str:
    """The composition-resource-name of a user's credentials Secret."""
    return CREDENTIALS_PREFIX + identity


def legacy_credentials_key(identity: str) -> str:
    """The composition-resource-name a user's credentials Secret had before 0.2."""
    return LEGACY_CREDENTIALS_PREFIX + identity


def secret_requirement(secret_name: str) -> str:
    """The requirement name under which a user's password Secret arrives."""
    return REQ_SECRET_PREFIX + secret_name
