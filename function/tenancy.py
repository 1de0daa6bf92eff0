"""The tenant namespace, derived in one place, and the error for unusable input."""

from __future__ import annotations

import re

from function.safe import dig, text

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

CLAIM_NAMESPACE_LABEL = "crossplane.io/claim-namespace"
CLAIM_NAME_LABEL = "crossplane.io/claim-name"


class InputError(ValueError):
    """An XR or function input that cannot be composed; the message names the field."""


def tenant_namespace(xr: dict) -> str:
    """The namespace whose objects this XR may use.

    A namespaced (v2) XR uses its own namespace. A cluster-scoped XR bound to a claim
    uses the claim's namespace. Nothing is ever read from or written to another one.
    """
    namespace = text(xr, "metadata", "namespace") or text(
        xr, "metadata", "labels", CLAIM_NAMESPACE_LABEL
    )
    if namespace:
        if not _NAMESPACE.match(namespace):
            msg = f"the XR's namespace {namespace!r} is not a valid namespace name"
            raise InputError(msg)
        return namespace
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
    name = text(xr, "metadata", "name")
    if not text(xr, "metadata", "namespace"):
        name = text(xr, "metadata", "labels", CLAIM_NAME_LABEL) or name
    if not _NAME.match(name):
        msg = f"the XR's name {name!r} is not a valid Kubernetes object name"
        raise InputError(msg)
    return name


def belongs(obj: dict, namespace: str) -> bool:
    """Whether an XR (namespaced, or legacy bound to a claim) belongs to the tenant."""
    if text(obj, "metadata", "namespace"):
        return text(obj, "metadata", "namespace") == namespace
    return text(obj, "metadata", "labels", CLAIM_NAMESPACE_LABEL) == namespace


def in_namespace(obj: dict | None, namespace: str) -> dict | None:
    """Defence in depth: drop anything that arrives from another namespace."""
    if obj is None:
        return None
    found = dig(obj, "metadata", "namespace")
    return obj if found in (None, "", namespace) else None
