"""The Secrets and the scripts ConfigMap of a server."""

from __future__ import annotations

from function import names, pods
from function.resources.meta import b64, metadata
from function.tls import CA, Leaf


def tls_ca(
    xr: str, namespace: str, ca: CA, next_ca: CA | None, annotations: dict[str, str]
) -> dict:
    """The CA (and during a rollover the next one), with keys. Never mounted into a pod."""
    data = {"ca.crt": b64(ca.cert_pem), "ca.key": b64(ca.key_pem)}
    if next_ca is not None:
        data |= {"next-ca.crt": b64(next_ca.cert_pem), "next-ca.key": b64(next_ca.key_pem)}
    meta = metadata(names.secret(xr, "tls-ca"), namespace, xr, "tls-ca")
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}


def tls_server(xr: str, namespace: str, leaf: Leaf, trust_pem: bytes) -> dict:
    """The serving certificate: `tls.crt` is the leaf followed by the signing CA.

    `ca.crt` is what clients trust: the signing CA, and during a rollover the next one.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(names.secret(xr, "tls"), namespace, xr, "tls-server"),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(leaf.chain_pem),
            "tls.key": b64(leaf.key_pem),
            "ca.crt": b64(trust_pem),
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


def ca_bundle(xr: str, namespace: str, trust_pem: bytes) -> dict:
    """The CA certificate(s) clients trust, public like `kube-root-ca.crt`.

    The user-sync Job verifies the server with it; app teams may hand it to VMs.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names.secret(xr, "ca-bundle"), namespace, xr, "ca-bundle"),
        "data": {"ca.crt": trust_pem.decode("ascii")},
    }


def scripts(
    xr: str, namespace: str, script_names: tuple[str, ...], suffix: str = "scripts"
) -> dict:
    """The pod scripts, shipped in the function package, as a ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names.secret(xr, suffix), namespace, xr, "scripts"),
        "data": {name: pods.script(name) for name in script_names},
    }
