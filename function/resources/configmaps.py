"""The ConfigMaps: the pod scripts of a server or a repository, and a server's CA bundle."""

from __future__ import annotations

from function import names, pods
from function.resources.meta import metadata


def scripts(owner: str, namespace: str, suffix: str, script_names: tuple[str, ...]) -> dict:
    """The pod scripts shipped in the function package, as `<xr>-<suffix>`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names.owned(owner, suffix), namespace, owner, "scripts"),
        "data": {name: pods.script(name) for name in script_names},
    }


def ca_bundle(owner: str, namespace: str, trust_pem: bytes) -> dict:
    """The CA certificate(s) clients trust, public like `kube-root-ca.crt`.

    The user-sync Job verifies the server with it; app teams may hand it to VMs.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names.owned(owner, "ca-bundle"), namespace, owner, "ca-bundle"),
        "data": {"ca.crt": trust_pem.decode("ascii")},
    }
