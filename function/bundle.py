"""The credentials bundle: the Secret that gives one VM owner everything to connect.

Its keys, as files in one folder (a Secret volume, or `kubectl get secret` saved key by
key), are the bundle: the endpoint, the CA certificate(s) to trust (`ca.crt`), the
identity, the password, and two connect scripts that read the other files and verify
the server with that CA (`function/scripts/connect-*`, the same for every user).
Nothing in it says anything about the storage or the repository password.
"""

from __future__ import annotations

from function import pods
from function.memo import MEMO
from function.resources.meta import b64, metadata

IDENTITY_ANNOTATION = "dataprotection.bsls.dev/identity"


def _connect_scripts() -> dict[str, str]:
    return {
        "connect-linux.sh": b64(pods.script("connect-linux.sh")),
        # Windows PowerShell 5 reads a script without a BOM as the ANSI code page, and
        # expects CRLF line ends; the script is ASCII.
        "connect-windows.ps1": b64(pods.script("connect-windows.ps1").replace("\n", "\r\n")),
    }


def connect_scripts() -> dict[str, str]:
    """The connect scripts, base64 as they go into every credentials Secret."""
    return MEMO.value(_connect_scripts)


def credentials_secret(  # noqa: PLR0917
    owner: str,
    namespace: str,
    name: str,
    username: str,
    hostname: str,
    password: str,
    endpoint: str,
    cluster_endpoint: str,
    trust_pem: bytes,
    fingerprint: str,
) -> dict:
    """Everything a VM owner needs to connect with verified TLS, and nothing about storage.

    `endpoint` is the URL to connect to: the external one when the server has one, else
    the Service's, which `cluster-endpoint` always holds (inside the cluster both work).
    """
    identity = f"{username}@{hostname}"
    data: dict[str, str | bytes] = {
        "identity": identity,
        "username": username,
        "hostname": hostname,
        "password": password,
        "endpoint": endpoint,
        "cluster-endpoint": cluster_endpoint,
        "ca.crt": trust_pem,
        "fingerprint": fingerprint,
    }
    meta = metadata(name, namespace, owner, "user-credentials")
    meta["annotations"] = {IDENTITY_ANNOTATION: identity}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {key: b64(value) for key, value in data.items()} | connect_scripts(),
    }
