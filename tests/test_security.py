"""Every pod the function composes passes the "restricted" Pod Security Standard, and more."""

from __future__ import annotations

import pytest

from tests import helpers as h

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pods() -> list[tuple[str, dict]]:
    """(where, pod spec) for every pod of every example."""
    out = []
    for example in ("bsls.yaml", "bslr.yaml", "bslr-s3.yaml", "bslr-gcs.yaml", "bslr-azure.yaml"):
        for key, obj in h.desired(h.reconcile(h.example(example))).items():
            if obj["kind"] in ("Deployment", "Job"):
                out.append((f"{example}:{key}", obj["spec"]["template"]["spec"]))
    return out


PODS = pods()


@pytest.mark.parametrize(("where", "pod"), PODS, ids=[w for w, _ in PODS])
def test_restricted_pod_security_standard(where: str, pod: dict) -> None:
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), where
    for volume in pod["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= ALLOWED_VOLUMES, (where, volume)
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] != 0
    assert psc["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, where
        assert not sc.get("privileged"), where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert set(sc["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}, where
        assert sc.get("runAsUser", psc["runAsUser"]) != 0
        for port in container.get("ports", []):
            assert "hostPort" not in port, where


@pytest.mark.parametrize(("where", "pod"), PODS, ids=[w for w, _ in PODS])
def test_hardening_beyond_the_standard(where: str, pod: dict) -> None:
    assert pod["automountServiceAccountToken"] is False, where
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            assert resources["requests"][kind], where
            assert resources["limits"][kind], where
        for env in container["env"]:
            if any(word in env["name"] for word in ("PASSWORD", "SECRET", "KEY", "TOKEN")):
                assert "value" not in env, (where, env["name"])


def test_ca_key_is_never_mounted() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"))
    ca_secret = h.desired(rsp)["tls-ca"]["metadata"]["name"]
    for obj in h.desired(rsp).values():
        if obj["kind"] in ("Deployment", "Job"):
            assert ca_secret not in str(obj["spec"]["template"]), obj["kind"]


def test_only_the_kopia_port_is_exposed() -> None:
    d = h.desired(h.reconcile(h.example("bsls.yaml")))
    assert [p["name"] for p in d["service"]["spec"]["ports"]] == ["kopia"]
    [rule] = d["network-policy"]["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [51515]
    [container] = d["server"]["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [51515]


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.mark.parametrize("example", ["bsls.yaml", "bslr.yaml"])
def test_every_pod_is_covered_by_an_ingress_policy(example: str) -> None:
    d = h.desired(h.reconcile(h.example(example)))
    policies = [o for o in d.values() if o["kind"] == "NetworkPolicy"]
    for obj in d.values():
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        labels = obj["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        assert covering, obj["metadata"]["name"]
        for policy in covering:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):  # none: admits nothing
                assert [p["port"] for p in rule["ports"]] == [51515]
