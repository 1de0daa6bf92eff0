"""Deterministic names for composed resources and their composition-resource-names.

Names derive from the XR's name only, so the same XR always composes the same objects
and a re-render finds what it composed before. Names that would be too long are
shortened with a hash suffix, never truncated into a collision.
"""

from __future__ import annotations

import functools
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
POD_MONITOR = "pod-monitor"
REPOSITORY_INIT = "repository-init"
CREDENTIALS_PREFIX = "credentials-"

# Required resources (the keys of the requirements map).
REQ_REPOSITORY = "repository"
REQ_TLS_SECRET = "tls-secret"
REQ_SERVERS = "servers"
REQ_SECRET_PREFIX = "secret-"

# Identities the function's own pods use inside the repository. Tenants cannot take
# them: the hostname is reserved (see models.SYSTEM_HOSTNAME).
SERVER_IDENTITY = ("server", "bsls-system")
SYNC_IDENTITY = ("user-sync", "bsls-system")

LABEL_XR = "dataprotection.bsls.dev/server"
LABEL_REPOSITORY = "dataprotection.bsls.dev/repository"
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


def server(xr: str) -> str:
    """The Deployment and the Service; also the first label of the endpoint host."""
    return label(xr)


def secret(xr: str, suffix: str) -> str:
    """A Secret or ConfigMap owned by the XR."""
    return subdomain(f"{xr}-{suffix}")


def job(xr: str, suffix: str, content_digest: str) -> str:
    """A Job name that changes exactly when what the Job applies changes.

    Job names become a pod label (`job-name`), so they must fit in 63 characters.
    """
    return f"{label(f'{xr}-{suffix}')[:52].rstrip('-')}-{content_digest[:10]}"


@functools.lru_cache(maxsize=16384)
def credentials(xr: str, username: str, hostname: str) -> str:
    """The credentials Secret of one user."""
    raw = f"{xr}-{username}-{hostname}".replace("_", "-").lower()
    raw = re.sub(r"[^a-z0-9.-]", "-", raw).strip("-.")
    if len(raw) > 240 or raw != f"{xr}-{username}-{hostname}":
        # Keep sanitised names unique: two identities must never share a Secret.
        h = hashlib.sha256(f"{username}@{hostname}".encode()).hexdigest()[:8]
        return f"{raw[:240].rstrip('-.')}-{h}"
    return raw


def job_key(prefix: str, job_name: str) -> str:
    """The composition-resource-name of a Job: its prefix and its name's digest suffix."""
    return f"{prefix}-{job_name.rsplit('-', 1)[-1]}"


def credentials_key(identity: str) -> str:
    """The composition-resource-name of a user's credentials Secret."""
    return CREDENTIALS_PREFIX + identity


def secret_requirement(secret_name: str) -> str:
    """The requirement name under which a user's password Secret arrives."""
    return REQ_SECRET_PREFIX + secret_name
