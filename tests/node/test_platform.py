"""The platform around the function, as a platform engineer installs it, on the real node.

- Crossplane runs under its own ServiceAccount with the chart's RBAC and the ClusterRole
  of deploy/rbac.yaml, aggregated into its own: enough to compose the function's kinds,
  not cluster-admin.
- The function was installed by Crossplane's package manager from the registry, runs
  as a pod from the package's embedded image, and Crossplane reaches it as it does in
  production: the FunctionRevision's endpoint, the function's Service name, mTLS.
- Pods stay on the node: no default route, cluster DNS only.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.node import tenant
from tests.node.tenant import Tenant, Vm

ROOT = pathlib.Path(__file__).resolve().parents[2]
CROSSPLANE_SA = "system:serviceaccount:crossplane-system:crossplane"
GROUPS = [
    "system:serviceaccounts",
    "system:serviceaccounts:crossplane-system",
    "system:authenticated",
]


def allowed(
    kube,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str = "team-x",
    subresource: str = "",
) -> bool:
    """Whether Crossplane's ServiceAccount may do `verb` on `resource` (a SubjectAccessReview)."""
    review = kube.create(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {},
            "spec": {
                "user": CROSSPLANE_SA,
                "groups": GROUPS,
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                    "namespace": namespace,
                },
            },
        }
    )
    return review["status"].get("allowed", False)


def test_crossplane_runs_as_its_own_service_account(node) -> None:
    kube = node.kube
    [pod] = kube.list("v1", "Pod", "crossplane-system", labels={"app": "crossplane"})
    assert pod["spec"]["serviceAccountName"] == "crossplane"
    # No binding anywhere makes it cluster-admin or a member of system:masters.
    for binding in kube.list("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        for subject in binding.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount" and subject.get("name") == "crossplane":
                assert binding["roleRef"]["name"] != "cluster-admin", binding["metadata"]["name"]


@pytest.mark.parametrize(
    ("group", "resource"),
    [
        ("apps", "deployments"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("", "services"),
        ("", "secrets"),
        ("", "configmaps"),
        ("networking.k8s.io", "networkpolicies"),
        ("monitoring.coreos.com", "podmonitors"),
        ("dataprotection.bsls.dev", "backupstoragelocationservers"),
        ("dataprotection.bsls.dev", "backupstoragelocationrepositories"),
    ],
)
def test_crossplane_may_manage_every_kind_the_function_composes(
    node, group: str, resource: str
) -> None:
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        assert allowed(node.kube, verb, resource, group), f"{verb} {group}/{resource}"


def test_crossplane_reads_the_claims_the_bslrs_name_and_never_writes_them(node) -> None:
    for verb in ("get", "list", "watch"):
        assert allowed(node.kube, verb, "persistentvolumeclaims"), verb
    for verb in ("create", "update", "patch", "delete"):
        assert not allowed(node.kube, verb, "persistentvolumeclaims"), verb


@pytest.mark.parametrize(
    ("verb", "group", "resource", "subresource"),
    [
        ("delete", "", "nodes", ""),
        ("create", "", "pods", "exec"),
        ("create", "", "pods", ""),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""),
        ("*", "*", "*", ""),
    ],
)
def test_crossplane_is_not_cluster_admin(
    node, verb: str, group: str, resource: str, subresource: str
) -> None:
    assert not allowed(node.kube, verb, resource, group, subresource=subresource)


def test_the_shipped_cluster_role_is_aggregated_into_crossplanes(node) -> None:
    [shipped] = yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text())
    assert shipped["metadata"]["labels"] == {"rbac.crossplane.io/aggregate-to-crossplane": "true"}

    def aggregated() -> bool:
        role = node.kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", "crossplane")
        return all(rule in role.get("rules", []) for rule in shipped["rules"])

    tenant.wait(aggregated, tenant.T, "the shipped rules in Crossplane's ClusterRole")


def test_the_function_was_installed_from_the_registry_and_runs_as_a_pod(node) -> None:
    kube = node.kube
    fn = kube.get("pkg.crossplane.io/v1", "Function", "function-bsls")
    assert fn["spec"]["package"] == node.function_package
    assert tenant.is_true(fn, "Installed")
    assert tenant.is_true(fn, "Healthy")
    [revision] = kube.list(
        "pkg.crossplane.io/v1",
        "FunctionRevision",
        labels={"pkg.crossplane.io/package": "function-bsls"},
    )
    assert revision["spec"]["desiredState"] == "Active"
    assert revision["status"]["endpoint"] == "dns:///function-bsls.crossplane-system:9443"
    assert "crossplane.io/paused" not in (revision["metadata"].get("annotations") or {})
    [pod] = node.function_pods()
    [container] = pod["spec"]["containers"]
    assert container["image"] == node.function_package  # the package's embedded runtime
    assert {e["name"]: e.get("value") for e in container.get("env", [])}.get("TLS_SERVER_CERTS_DIR")
    assert tenant.is_true(pod, "Ready")
    service = kube.get("v1", "Service", "function-bsls", "crossplane-system")
    assert service["spec"]["clusterIP"] == "None"  # Crossplane resolves the pods by DNS


@pytest.fixture(scope="module")
def probe_vm(node, established):
    """A VM pod in a namespace of its own, to look at the network a pod sees."""
    team = Tenant(node, "network-probe").create(secrets=False)
    team.kube.apply(tenant.password_secret("bundle", team.namespace, "unused"))
    vm = Vm(team, "probe", "bundle").start()
    yield vm
    vm.stop()


def test_a_pod_has_no_route_beyond_the_node(probe_vm: Vm) -> None:
    routes = probe_vm.sh("cat /proc/net/route").stdout.splitlines()[1:]
    destinations = {(r.split()[1], r.split()[7]) for r in routes}  # (destination, mask), hex
    assert ("00000000", "00000000") not in destinations, "a default route"
    # Only the node's block, 198.18.0.0/15, and the pods' own subnet on the bridge.
    assert destinations == {("000012C6", "0000FEFF"), ("000112C6", "00FFFFFF")}, routes


def test_a_pod_resolves_cluster_names_and_nothing_else(probe_vm: Vm) -> None:
    conf = probe_vm.sh("cat /etc/resolv.conf").stdout
    assert "nameserver 198.18.2.10" in conf
    assert probe_vm.sh("getent hosts kubernetes.default.svc.cluster.local").stdout.startswith(
        "198.18.2.1 "
    )
    # CoreDNS has no `forward`: an outside name gets no answer from anywhere.
    assert probe_vm.sh("getent hosts kopia.io", check=False).returncode != 0


def test_the_apis_are_installed_and_every_xrd_is_established(node) -> None:
    for path in sorted((ROOT / "apis").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            got = node.kube.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])
            assert got is not None, f"{path}: {doc['kind']} {doc['metadata']['name']}"
            if doc["kind"] == "CompositeResourceDefinition":
                assert tenant.is_true(got, "Established"), tenant.condition(got, "Established")


def test_a_guaranteed_pod_runs(node, probe_vm: Vm) -> None:
    """kubelet asks for oom_score_adj -997 for a Guaranteed pod's containers (and -998 for
    every sandbox), which this machine does not allow a process to set: containerd's
    restrict_oom_score_adj keeps them at its own value, and the pod runs."""
    vm = Vm(probe_vm.tenant, "guaranteed", probe_vm.bundle)
    pod = vm.manifest()
    limits = {"cpu": "100m", "memory": "64Mi"}
    pod["spec"]["containers"][0]["resources"] = {"requests": limits, "limits": limits}
    node.kube.create(pod)
    try:
        tenant.wait(
            lambda: tenant.is_true(node.kube.reload(pod), "Ready"), tenant.T, "the pod to run"
        )
        assert node.kube.reload(pod)["status"]["qosClass"] == "Guaranteed"
        assert vm.sh("cat /proc/1/oom_score_adj").stdout.strip() == "0"
    finally:
        vm.stop()
