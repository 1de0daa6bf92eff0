"""Object metadata shared by every composed resource."""

from __future__ import annotations

import base64

from function import names

MANAGED_BY = "app.kubernetes.io/managed-by"
FUNCTION = "function-bsls"


def labels(owner: str, component: str) -> dict[str, str]:
    """Labels that tie an object to its XR and say what it is."""
    return {
        "app.kubernetes.io/name": "kopia",
        "app.kubernetes.io/instance": names.label(owner),
        names.LABEL_COMPONENT: component,
        MANAGED_BY: FUNCTION,
    }


def metadata(name: str, namespace: str, owner: str, component: str, **extra: dict) -> dict:
    """Metadata with an explicit namespace: nothing is left to defaulting."""
    meta: dict = {"name": name, "namespace": namespace, "labels": labels(owner, component)}
    meta.update(extra)
    return meta


def b64(value: str | bytes) -> str:
    """Base64 for a Secret's `data` (composed Secrets never use `stringData`)."""
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()
