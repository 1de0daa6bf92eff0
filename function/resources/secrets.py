"""The Secrets and the scripts ConfigMap of a server."""

from __future__ import annotations

from function import names, pods
from function.resources.meta import b64, metadata
from function.tls import CA, Leaf


def tls_ca(xr: str, namespace: str, ca: CA) -> dict:
    """The CA, with its key. Never mounted into any pod: only the function signs."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.secret(xr, "tls-ca"), namespace, xr, "tls-ca"),
        "type": "Opaque",
        "data": {"ca.crt": b64(ca.cert_pem), "ca.key": b64(ca.key_pem)},
    }


def tls_server(xr: str, namespace: str, leaf: Leaf, ca: CA) -> dict:
    """The serving certificate: `tls.crt` is the leaf followed by the CA."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.secret(xr, "tls"), namespace, xr, "tls-server"),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(leaf.chain_pem),
            "tls.key": b64(leaf.key_pem),
            "ca.crt": b64(ca.cert_pem),
        },
    }


def control(xr: str, namespace: str, username: str, password: str, hmac_key: str) -> dict:
    """The control user's credentials, and the key that makes digests unguessable."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.secret(xr, "control"), namespace, xr, "control"),
        "type": "Opaque",
        "data": {"username": b64(username), "password": b64(password), "hmac-key": b64(hmac_key)},
    }


def scripts(xr: str, namespace: str, script_names: tuple[str, ...]) -> dict:
    """The pod scripts, shipped in the function package, as a ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names.secret(xr, "scripts"), namespace, xr, "scripts"),
        "data": {name: pods.script(name) for name in script_names},
    }
