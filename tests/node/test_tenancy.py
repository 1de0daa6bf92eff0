"""Namespaces keep to themselves, a repository can go away, bad input is refused: on the
real node.

- A BSLS in one namespace is never served by a BSLR of another, whatever it names.
- Deleting a BSLR is reported on its BSLS, whose server keeps running as it was.
- Invalid specs are refused by the XRD's validation or reported on the XR, and the
  function keeps serving.
"""

from __future__ import annotations

import pytest

from tests.node import tenant
from tests.node.tenant import BSLR, BSLS, Tenant
from tests.node.test_filesystem import reconcile, rejected_or_reported

OWNER = "tenancy-a"
OTHER = "tenancy-b"
REPO = "team-a-repo"  # examples/bslr.yaml
SERVER = "vm-backups"  # examples/bsls.yaml


@pytest.fixture(scope="module")
def owner(node, established) -> dict:
    """tenancy-a with a Ready repository and a Ready server on it."""
    team = Tenant(node, OWNER).create()
    team.claim("team-a-backups")
    bslr = team.wait_xr(team.apply(tenant.example("bslr.yaml", OWNER)[0]), "Ready")
    bsls = team.apply(tenant.example("bsls.yaml", OWNER)[0])
    bsls = team.wait_xr(bsls, "Ready", touch=True)
    return {"team": team, "bslr": bslr, "bsls": bsls}


@pytest.fixture(scope="module")
def intruder(node, owner: dict) -> dict:
    """A BSLS in tenancy-b whose repositoryRef names tenancy-a's BSLR, once it reported."""
    team = Tenant(node, OTHER).create()
    obj = tenant.example("bsls.yaml", OTHER)[0]
    obj["spec"]["users"] = [{"username": "mallory", "hostname": "vm-mallory"}]
    xr = team.wait_xr(team.apply(obj), "RepositoryReady", "False", "NotFound")
    return {"team": team, "bsls": xr}


def test_a_bsls_is_never_served_by_a_bslr_of_another_namespace(owner: dict, intruder: dict) -> None:
    team: Tenant = intruder["team"]
    xr = intruder["bsls"]
    assert f"{OTHER}/{REPO}" in tenant.condition(xr, "RepositoryReady")["message"]
    reconcile(team, xr, 3)  # and it stays so
    objects = team.composed(xr)
    assert "server" not in objects
    assert not [k for k in objects if k.startswith("user-sync")]
    xr = team.kube.reload(xr)
    assert tenant.condition(xr, "RepositoryReady").get("reason") == "NotFound"
    assert not tenant.is_true(xr, "Ready"), "Ready without a server"
    # Nothing of tenancy-b's landed in tenancy-a.
    kube = team.kube
    theirs = kube.list("apps/v1", "Deployment", OWNER) + kube.list("batch/v1", "Job", OWNER)
    owners = {(o["metadata"].get("labels") or {}).get(tenant.COMPOSITE) for o in theirs}
    assert owners <= {SERVER, REPO}


def test_deleting_the_bslr_is_reported_and_leaves_the_server_running(owner: dict) -> None:
    team: Tenant = owner["team"]
    bsls = owner["bsls"]
    objects = team.composed(bsls)
    deployment = team.kube.reload(objects["server"])
    pods = {p["metadata"]["uid"] for p in team.pods_of(deployment)}
    team.delete(owner["bslr"])
    # The BSLR is a required resource: touch the BSLS rather than wait for the poll.
    xr = team.wait_xr(bsls, "RepositoryReady", "False", "NotFound", touch=True)
    assert "does not exist" in tenant.condition(xr, "RepositoryReady")["message"]
    kept = team.composed(bsls)
    for key in ("server", "service", "tls-ca", "tls-server", "control"):
        assert key in kept, f"{key} was removed with the BSLR"
        assert kept[key]["metadata"]["uid"] == objects[key]["metadata"]["uid"]
    now = team.kube.reload(deployment)
    assert now["spec"]["template"] == deployment["spec"]["template"]
    assert tenant.condition(now, "Available").get("status") == "True"
    assert {p["metadata"]["uid"] for p in team.pods_of(now)} == pods


@pytest.mark.parametrize(
    ("kind", "edit", "words"),
    [
        pytest.param(
            BSLR,
            lambda s: s["backend"].update(s3={"bucket": "backups"}),
            ("exactly one",),
            id="two-backends",
        ),
        pytest.param(
            BSLR,
            lambda s: s["backend"].update(
                filesystem=None, s3={"bucket": "backups", "prefix": "no-slash"}
            ),
            ("prefix",),
            id="prefix-without-slash",
        ),
        pytest.param(
            BSLS,
            lambda s: s["users"].append({"username": "eve", "hostname": "bsls-system"}),
            ("reserved", "bsls-system"),
            id="reserved-hostname",
        ),
        pytest.param(
            BSLS,
            lambda s: s["users"].append({"username": "Eve!", "hostname": "vm-eve"}),
            ("username",),
            id="bad-username",
        ),
        pytest.param(
            BSLS,
            lambda s: s["tls"].update(additionalIPAddresses=["not-an-ip"]),
            ("additionalIPAddresses", "not an IPv4"),
            id="bad-ip-address",
        ),
        pytest.param(
            BSLS,
            lambda s: s.update(server={"resources": {"requests": {"cpu": "lots"}}}),
            ("cpu", "quantity"),
            id="bad-quantity",
        ),
    ],
)
def test_an_invalid_spec_is_rejected_or_reported_never_a_crash(
    request: pytest.FixtureRequest, node, established, kind: str, edit, words: tuple[str, ...]
) -> None:
    team = Tenant(node, "tenancy-invalid").create()
    restarts = function_restarts(node)
    obj = tenant.example("bslr.yaml" if kind == BSLR else "bsls.yaml", team.namespace)[0]
    obj["metadata"]["name"] = f"invalid-{request.node.callspec.id}"
    edit(obj["spec"])
    obj["spec"] = drop_none(obj["spec"])
    assert rejected_or_reported(team, obj, words)
    assert function_restarts(node) == restarts, "the function restarted"
    assert node.function_pods(), "the function is not running"


def function_restarts(node) -> int:
    """Restarts of the function's containers so far (0 for a function that never crashed)."""
    return sum(
        cs.get("restartCount", 0)
        for p in node.function_pods()
        for cs in (p.get("status") or {}).get("containerStatuses", [])
    )


def drop_none(value):
    """A spec without the fields an edit set to None."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value
