"""The tenant namespace, derived in one place, and the error for unusable input."""

from __future__ import annotations

CLAIM_NAMESPACE_LABEL = "crossplane.io/claim-namespace"
CLAIM_NAME_LABEL = "crossplane.io/claim-name"


class InputError(ValueError):
    """An XR or function input that cannot be composed; the message names the field."""


def tenant_namespace(xr: dict) -> str:
    """The namespace whose objects this XR may use.

    A namespaced (v2) XR uses its own namespace. A cluster-scoped XR bound to a claim
    uses the claim's namespace. Nothing is ever read from or written to another one.
    """
    meta = xr.get("metadata") or {}
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        return namespace
    claim_namespace = (meta.get("labels") or {}).get(CLAIM_NAMESPACE_LABEL)
    if isinstance(claim_namespace, str) and claim_namespace:
        return claim_namespace
    msg = (
        "the XR has neither a namespace nor a claim namespace (label "
        f"{CLAIM_NAMESPACE_LABEL}): create a namespaced XR, or a claim that binds this XR"
    )
    raise InputError(msg)


def tenant_name(xr: dict) -> str:
    """The name composed resources derive from: the XR's, or its claim's for a legacy XR.

    A claim's name is what the app team chose and is unique in its namespace; the
    cluster-scoped XR behind it has a generated suffix nobody should have to type.
    """
    meta = xr.get("metadata") or {}
    if not meta.get("namespace"):
        claim = (meta.get("labels") or {}).get(CLAIM_NAME_LABEL)
        if isinstance(claim, str) and claim:
            return claim
    return str(meta.get("name", ""))


def belongs(obj: dict, namespace: str) -> bool:
    """Whether an XR (namespaced, or legacy bound to a claim) belongs to the tenant."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace"):
        return meta["namespace"] == namespace
    return (meta.get("labels") or {}).get(CLAIM_NAMESPACE_LABEL) == namespace


def in_namespace(obj: dict | None, namespace: str) -> dict | None:
    """Defence in depth: drop anything that arrives from another namespace."""
    if obj is None:
        return None
    found = (obj.get("metadata") or {}).get("namespace")
    return obj if found in (None, "", namespace) else None
