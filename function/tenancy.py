"""The tenant: the namespace and the name composed resources derive from, in one place."""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

CLAIM_NAMESPACE_LABEL = "crossplane.io/claim-namespace"
CLAIM_NAME_LABEL = "crossplane.io/claim-name"


class InputError(ValueError):
    """An XR or function input that cannot be composed; the message names the field."""


def tenant_namespace(namespace: str, labels: Mapping[str, str]) -> str:
    """The namespace whose objects this XR may use.

    A namespaced (v2) XR uses its own namespace. A cluster-scoped XR bound to a claim
    uses the claim's namespace. Nothing is ever read from or written to another one.
    """
    found = namespace or labels.get(CLAIM_NAMESPACE_LABEL, "")
    if found:
        if not _NAMESPACE.match(found):
            msg = f"the XR's namespace {found!r} is not a valid namespace name"
            raise InputError(msg)
        return found
    msg = (
        "the XR has neither a namespace nor a claim namespace (label "
        f"{CLAIM_NAMESPACE_LABEL}): create a namespaced XR, or a claim that binds this XR"
    )
    raise InputError(msg)


def tenant_name(name: str, namespace: str, labels: Mapping[str, str]) -> str:
    """The name composed resources derive from: the XR's, or its claim's for a legacy XR.

    A claim's name is what the app team chose and is unique in its namespace; the
    cluster-scoped XR behind it has a generated suffix nobody should have to type.
    """
    if not namespace:
        name = labels.get(CLAIM_NAME_LABEL) or name
    if not _NAME.match(name):
        msg = f"the XR's name {name!r} is not a valid Kubernetes object name"
        raise InputError(msg)
    return name
