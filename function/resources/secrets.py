"""The Secrets of a server: its CA, its serving certificate and its control credentials.

A user's credentials Secret is built in `bundle.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from function import names
from function.resources.meta import b64, metadata


def tls_ca(  # noqa: PLR0917
    owner: str,
    namespace: str,
    ca_pem: bytes,
    ca_key: bytes,
    next_pem: bytes,
    next_key: bytes,
    annotations: Mapping[str, str],
) -> dict:
    """The CA (and during a rollover the next one), with keys. Never mounted into a pod."""
    data = {"ca.crt": b64(ca_pem), "ca.key": b64(ca_key)}
    if next_pem:
        data |= {"next-ca.crt": b64(next_pem), "next-ca.key": b64(next_key)}
    meta = metadata(names.owned(owner, "tls-ca"), namespace, owner, "tls-ca")
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}


def tls_server(
    owner: str, namespace: str, chain_pem: bytes, key_pem: bytes, trust_pem: bytes
) -> dict:
    """The serving certificate: `tls.crt` is the leaf followed by the signing CA.

    `ca.crt` is what clients trust: the signing CA, and during a rollover the next one.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.owned(owner, "tls"), namespace, owner, "tls-server"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(chain_pem), "tls.key": b64(key_pem), "ca.crt": b64(trust_pem)},
    }


def control(owner: str, namespace: str, username: str, password: str, hmac_key: str) -> dict:
    """The control user's credentials, and the key that makes digests unguessable."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.owned(owner, "control"), namespace, owner, "control"),
        "type": "Opaque",
        "data": {"username": b64(username), "password": b64(password), "hmac-key": b64(hmac_key)},
    }
