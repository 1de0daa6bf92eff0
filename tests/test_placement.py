"""Where pods run: the shared claim's node, the platform's and the tenant's placement."""

from __future__ import annotations

import copy

import pytest

from function import placement
from tests import helpers as h

CLAIM_TERM = {
    "labelSelector": {"matchLabels": {"dataprotection.bsls.dev/claim": "team-a-backups"}},
    "topologyKey": "kubernetes.io/hostname",
}


def pods(rsp) -> dict[str, dict]:
    """Every pod template the answer composes, by composition-resource-name."""
    return {
        key: obj["spec"]["template"]
        for key, obj in h.desired(rsp).items()
        if obj["kind"] in ("Deployment", "Job")
    }


def server_and_sync(xr: dict, inp: dict | None = None) -> dict[str, dict]:
    found = pods(h.reconcile(xr, inp=inp))
    assert set(found) == {"server", h.key(found, "user-sync")}
    return found


def claim(**status: object) -> dict:
    [pvc] = h.load("required/claim.yaml")
    pvc = copy.deepcopy(pvc)
    pvc["status"].update(status)
    return pvc


def pool_with(pvc: dict | None) -> list[dict]:
    rest = [o for o in h.required_pool() if o["kind"] != "PersistentVolumeClaim"]
    return rest if pvc is None else [*rest, pvc]


# ------------------------------------------------------------------ a ReadWriteOnce claim


def test_every_pod_on_a_filesystem_repository_shares_the_claims_node() -> None:
    templates = {
        **server_and_sync(h.example("bsls.yaml")),
        **pods(h.reconcile(h.example("bslr.yaml"))),
    }
    assert len(templates) == 3  # the server, the user-sync Job, the init Job
    for key, template in templates.items():
        assert template["metadata"]["labels"]["dataprotection.bsls.dev/claim"] == "team-a-backups"
        terms = template["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert terms == [CLAIM_TERM], key


def test_object_storage_pods_go_anywhere() -> None:
    for example in ("bslr-s3.yaml", "bslr-gcs.yaml", "bslr-azure.yaml"):
        for key, template in pods(h.reconcile(h.example(example))).items():
            assert "dataprotection.bsls.dev/claim" not in template["metadata"]["labels"], key
            assert "affinity" not in template["spec"], key


def test_a_long_claim_name_still_makes_a_valid_label() -> None:
    name = "a" * 200 + ".b"
    label = placement.claim_label(name)
    assert len(label) == 63
    assert label != placement.claim_label("a" * 200 + ".c")
    assert placement.claim_label("short") == "short"


# ------------------------------------------------------------------ the claim itself


@pytest.mark.parametrize(
    "modes", [["ReadWriteOnce"], ["ReadWriteMany"], ["ReadWriteOnce", "ReadWriteOncePod"]]
)
def test_a_claim_it_can_mount_runs_the_init_job(modes: list[str]) -> None:
    rsp = h.reconcile(h.example("bslr.yaml"), pool=pool_with(claim(accessModes=modes)))
    assert h.conditions(rsp)["Initialized"].reason == "Initializing"
    assert h.key(rsp, "repository-init")


def test_a_pending_claim_is_fine_it_binds_when_the_pod_is_scheduled() -> None:
    pvc = claim()
    pvc["status"] = {"phase": "Pending"}
    rsp = h.reconcile(h.example("bslr.yaml"), pool=pool_with(pvc))
    assert h.conditions(rsp)["Initialized"].reason == "Initializing"


@pytest.mark.parametrize(
    ("modes", "says"),
    [
        (["ReadWriteOncePod"], "ReadWriteOncePod: only one pod may mount it"),
        (["ReadOnlyMany"], "ReadOnlyMany: it is read-only"),
    ],
)
def test_a_claim_that_cannot_work_is_refused_with_why(modes: list[str], says: str) -> None:
    rsp = h.reconcile(h.example("bslr.yaml"), pool=pool_with(claim(accessModes=modes)))
    cond = h.conditions(rsp)["Initialized"]
    assert cond.reason == "ClaimUnusable"
    assert says in cond.message
    assert "spec.backend.filesystem.persistentVolumeClaim.claimName" in cond.message
    assert not [k for k in h.desired(rsp) if k.startswith("repository-init-")]
    assert h.fatal(rsp) == []


def test_a_lost_claim_is_refused() -> None:
    rsp = h.reconcile(h.example("bslr.yaml"), pool=pool_with(claim(phase="Lost")))
    assert h.conditions(rsp)["Initialized"].reason == "ClaimUnusable"
    assert "phase Lost" in h.conditions(rsp)["Initialized"].message


def test_a_missing_claim_is_named_and_a_completed_init_is_kept() -> None:
    first = h.reconcile(h.example("bslr.yaml"))
    init = h.key(first, "repository-init")
    missing = h.reconcile(
        h.example("bslr.yaml"),
        observed=h.as_observed(first, **{init: h.JOB_COMPLETE}),
        pool=pool_with(None),
    )
    cond = h.conditions(missing)["Initialized"]
    assert cond.reason == "ClaimNotFound"
    assert cond.message.startswith("PersistentVolumeClaim team-a/team-a-backups does not exist")
    assert init in h.desired(missing)  # kept as it is, not deleted
    assert missing.meta.ttl.ToTimedelta().total_seconds() == 5  # not watched: look again soon


def test_object_storage_reads_no_claim() -> None:
    rsp = h.reconcile(h.example("bslr-s3.yaml"))
    assert "claim" not in rsp.requirements.resources


# ------------------------------------------------------------------ platform and tenant

PLATFORM = {
    "nodeSelector": {"node-role.example.com/backups": "true"},
    "tolerations": [{"key": "dedicated", "value": "backups", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {
                        "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]
                    },
                }
            ]
        }
    },
    "priorityClassName": "backups",
    "imagePullSecrets": [{"name": "mirror"}],
}
TENANT = {
    # The tenant cannot move off the platform's nodes: the platform's key wins.
    "nodeSelector": {"node-role.example.com/backups": "false", "zone": "a"},
    "tolerations": [
        {"key": "dedicated", "value": "backups", "effect": "NoSchedule"},  # a repeat
        {"key": "gpu", "operator": "Exists"},
    ],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    },
    "priorityClassName": "team-a-high",
    "imagePullSecrets": [{"name": "mirror"}, {"name": "team-a-registry"}],
}


def test_the_tenants_placement_adds_to_the_platforms() -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["placement"] = TENANT
    for key, template in server_and_sync(xr, inp={"placement": PLATFORM}).items():
        spec = template["spec"]
        assert spec["nodeSelector"] == {"node-role.example.com/backups": "true", "zone": "a"}, key
        assert spec["tolerations"] == [
            {"key": "dedicated", "operator": "Equal", "value": "backups", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Exists"},
        ]
        assert set(spec["affinity"]) == {"nodeAffinity", "podAntiAffinity", "podAffinity"}
        assert spec["affinity"]["podAffinity"] == {
            "requiredDuringSchedulingIgnoredDuringExecution": [CLAIM_TERM]
        }
        assert spec["priorityClassName"] == "team-a-high"
        assert spec["imagePullSecrets"] == [{"name": "mirror"}, {"name": "team-a-registry"}]


def test_the_init_job_takes_the_platforms_placement() -> None:
    rsp = h.reconcile(h.example("bslr.yaml"), inp={"placement": PLATFORM})
    [template] = pods(rsp).values()
    spec = template["spec"]
    assert spec["nodeSelector"] == PLATFORM["nodeSelector"]
    assert spec["priorityClassName"] == "backups"
    assert spec["imagePullSecrets"] == [{"name": "mirror"}]
    assert spec["affinity"]["nodeAffinity"] == PLATFORM["affinity"]["nodeAffinity"]
    assert spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        CLAIM_TERM
    ]


def test_a_tenants_own_pod_affinity_keeps_the_claims_term() -> None:
    xr = h.example("bsls.yaml")
    own = {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}
    xr["spec"]["placement"] = {
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [own]}}
    }
    for template in server_and_sync(xr).values():
        terms = template["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert terms == [own, CLAIM_TERM]


@pytest.mark.parametrize(
    ("placement_", "says"),
    [
        (
            {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]},
            "spec.placement.tolerations[0]: operator Exists takes no value",
        ),
        (
            {"tolerations": [{"operator": "Equal", "value": "b"}]},
            "spec.placement.tolerations[0]: a toleration without a key must use operator Exists",
        ),
        (
            {"tolerations": [{"key": "a", "tolerationSeconds": 5}]},
            "tolerationSeconds applies to effect NoExecute only",
        ),
        ({"nodeSelector": {"bad key!": "x"}}, "'bad key!' is not a valid label key"),
        ({"nodeSelector": {"zone": "-x"}}, "'-x' (for zone) is not a valid label value"),
        ({"affinity": {"nodeAfinity": {}}}, "'nodeAfinity' is not a kind of affinity"),
        ({"priorityClassName": "High"}, "spec.placement.priorityClassName: 'High' is not a valid"),
        ({"nodeselector": {}}, "spec.placement.nodeselector: is not a known field"),
    ],
)
def test_a_wrong_placement_is_named(placement_: dict, says: str) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["placement"] = placement_
    [message] = h.fatal(h.reconcile(xr))
    assert says in message, message


def test_a_wrong_platform_placement_names_the_composition() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"), inp={"placement": {"tolerations": [{"value": "x"}]}})
    [message] = h.fatal(rsp)
    assert message.startswith("invalid function input in the Composition:")
    assert "placement.tolerations[0]" in message
