"""The tenant namespace, derived in one place, and the error for unusable input."""

from __future__ import annotations

CLAIM_NAMESPACE_LABEL = "crossplane.io/claim-namespace"


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


def in_namespace(obj: dict | None, namespace: str) -> dict | None:
    """Defence in depth: drop anything that arrives from another namespace."""
    if obj is None:
        return None
    found = (obj.get("metadata") or {}).get("namespace")
    return obj if found in (None, "", namespace) else None
