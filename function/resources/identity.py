"""The ServiceAccount a repository's pods run under with a cloud identity (spec.cloudIdentity)."""

from __future__ import annotations

from function.connection import service_account as account_name
from function.resources.meta import metadata


def service_account(
    owner: str,
    namespace: str,
    annotations: tuple[tuple[str, str], ...],
    extra_labels: tuple[tuple[str, str], ...],
) -> dict:
    """The ServiceAccount, with the platform's annotations and labels; no API token."""
    meta = metadata(account_name(owner), namespace, owner, "service-account")
    meta["labels"] = {**dict(extra_labels), **meta["labels"]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
        # Its pods need no Kubernetes API access (pods.pod_spec).
        "automountServiceAccountToken": False,
    }
