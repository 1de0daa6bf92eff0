"""Reaching the server: beyond the cluster, from KubeVirt's VMs, over IPv6 and IPv4."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509

from tests import helpers as h

NS = "team-a"


def bsls(**service: object) -> dict:
    xr = h.example("bsls.yaml")
    xr["spec"]["service"] = service
    return xr


def leaf_names(rsp) -> tuple[set[str], set[str]]:
    chain = base64.b64decode(h.desired(rsp)["tls-server"]["data"]["tls.crt"])
    leaf = x509.load_pem_x509_certificates(chain)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def b64d(value: str) -> str:
    return base64.b64decode(value).decode()


# ---------------------------------------------------------------------------- external URL


@pytest.mark.parametrize(
    ("url", "normalised", "dns", "ip"),
    [
        (
            "https://backups.example.com",
            "https://backups.example.com:443",
            "backups.example.com",
            None,
        ),
        (
            "https://backups.example.com:8443/",
            "https://backups.example.com:8443",
            "backups.example.com",
            None,
        ),
        ("https://203.0.113.7:31515", "https://203.0.113.7:31515", None, "203.0.113.7"),
        ("https://[2001:db8::7]:51515", "https://[2001:db8::7]:51515", None, "2001:db8::7"),
    ],
)
def test_an_external_url_is_named_by_the_leaf_and_handed_out(
    url: str, normalised: str, dns: str | None, ip: str | None
) -> None:
    rsp = h.reconcile(bsls(type="LoadBalancer", externalURL=url))
    assert h.fatal(rsp) == []
    status = h.xr_status(rsp)
    assert status["externalEndpoint"] == normalised
    assert status["endpoint"] == "https://vm-backups.team-a.svc:51515"
    names, ips = leaf_names(rsp)
    assert "vm-backups.team-a.svc" in names
    if dns:
        assert dns in names
    if ip:
        assert ip in ips
    creds = h.desired(rsp)["user-alice@vm-alice"]["data"]
    assert b64d(creds["endpoint"]) == normalised  # what connect-linux.sh connects to
    assert b64d(creds["cluster-endpoint"]) == "https://vm-backups.team-a.svc:51515"
    # The sync Job still refreshes the server through the Service.
    env = h.sync_job(rsp)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "BSLS_SERVER_URL", "value": "https://vm-backups.team-a.svc:51515"} in env


def test_without_an_external_url_the_bundle_hands_out_the_services() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"))
    creds = h.desired(rsp)["user-alice@vm-alice"]["data"]
    assert b64d(creds["endpoint"]) == b64d(creds["cluster-endpoint"])
    assert h.xr_status(rsp)["externalEndpoint"] == ""


def test_adding_an_external_url_renews_the_leaf_under_the_same_ca() -> None:
    first = h.reconcile(h.example("bsls.yaml"))
    settled = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(first))
    xr = bsls(type="LoadBalancer", externalURL="https://backups.example.com")
    moved = h.reconcile(xr, observed=h.as_observed(settled))
    assert h.conditions(moved)["TLSReady"].reason == "Renewed"
    assert h.xr_status(moved)["tlsFingerprint"] == h.xr_status(first)["tlsFingerprint"]
    assert "backups.example.com" in leaf_names(moved)[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://backups.example.com", "must start with https://"),
        ("https://backups.example.com/kopia", "without a path"),
        ("https://user@backups.example.com", "without a path"),
        ("https://backups.example.com:99999", "port that is not a number from 1 to 65535"),
        ("https://Backups_Example.com", "is not a DNS name or an IP address"),
    ],
)
def test_a_wrong_external_url_is_named(url: str, says: str) -> None:
    [message] = h.fatal(h.reconcile(bsls(externalURL=url)))
    assert "spec.service.externalURL" in message
    assert says in message, message


def test_a_brought_certificate_must_name_the_external_host_too() -> None:
    first = h.reconcile(h.example("bsls.yaml"))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "my-cert", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": dict(h.desired(first)["tls-server"]["data"]),
    }
    xr = bsls(externalURL="https://backups.example.com")
    xr["spec"]["tls"] = {"secretRef": {"name": "my-cert"}}
    rsp = h.reconcile(xr, pool=[*h.required_pool(), secret])
    cond = h.conditions(rsp)["TLSReady"]
    assert cond.reason == "InvalidCertificate"
    assert "dials backups.example.com" in cond.message


# ---------------------------------------------------------------------------- the Service


def test_a_node_port_and_load_balancer_annotations_go_on_the_service() -> None:
    annotations = {"metallb.universe.tf/address-pool": "backups"}
    rsp = h.reconcile(bsls(type="LoadBalancer", nodePort=31515, annotations=annotations))
    svc = h.desired(rsp)["service"]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"][0]["nodePort"] == 31515
    assert svc["metadata"]["annotations"] == annotations


def test_a_node_port_needs_a_service_type_that_has_one() -> None:
    [message] = h.fatal(h.reconcile(bsls(nodePort=31515)))
    assert "nodePort needs type NodePort or LoadBalancer" in message


def test_the_server_listens_on_every_family_and_the_service_asks_for_both() -> None:
    d = h.desired(h.reconcile(h.example("bsls.yaml")))
    env = d["server"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "BSLS_LISTEN_ADDRESS", "value": ":51515"} in env
    assert d["service"]["spec"]["ipFamilyPolicy"] == "PreferDualStack"


def test_ipv6_addresses_go_into_the_leaf() -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["tls"] = {"additionalIPAddresses": ["fd00::51", "10.0.0.51"]}
    _, ips = leaf_names(h.reconcile(xr))
    assert {str(ipaddress.ip_address("fd00::51")), "10.0.0.51"} <= ips


# ---------------------------------------------------------------------------- NetworkPolicy


def ingress_peers(xr: dict) -> list[dict]:
    policy = h.desired(h.reconcile(xr))["network-policy"]
    [rule] = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 51515]
    return rule["from"]


def test_kubevirt_vms_of_the_namespace_and_named_namespaces_are_admitted() -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["networkPolicy"] = {"virtualMachines": True, "namespaces": ["team-b", "team-c"]}
    peers = ingress_peers(xr)
    assert {"podSelector": {"matchLabels": {"kubevirt.io": "virt-launcher"}}} in peers
    assert {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-b", "team-c"],
                }
            ]
        }
    } in peers
    # The server's own sync Jobs are admitted too, or the refresh after a sync fails.
    assert any(
        p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
        == "user-sync"
        for p in peers
    ), peers


def test_a_wrong_namespace_name_is_named() -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["networkPolicy"] = {"namespaces": ["Team_B"]}
    [message] = h.fatal(h.reconcile(xr))
    assert "spec.networkPolicy.namespaces" in message
    assert "'Team_B' is not a namespace name" in message
