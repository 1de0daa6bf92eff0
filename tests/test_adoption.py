"""A server deleted by mistake and created again gets its CA and passwords back.

Deleting a BSLS deletes what it composed (Kubernetes garbage-collects the objects it
controls), unless it was deleted with `--cascade=orphan` or its Secrets were restored
from a backup. Then nothing controls them any more, and a new BSLS of the same name
reads them back (the `adoptable` requirement) instead of drawing a new CA and new
passwords: its VMs notice nothing.
"""

from __future__ import annotations

import copy

from tests import helpers as h


def settled() -> tuple[object, dict[str, dict]]:
    """A server as it runs: everything composed, observed, synced."""
    first = h.reconcile(h.example("bsls.yaml"))
    observed = h.as_observed(
        first, server=h.DEPLOYMENT_AVAILABLE, **{h.key(first, "user-sync"): h.JOB_COMPLETE}
    )
    rsp = h.reconcile(h.example("bsls.yaml"), observed=observed)
    return rsp, h.desired(rsp)


def left_behind(desired: dict[str, dict], **owner: object) -> list[dict]:
    """The server's Secrets as `kubectl delete --cascade=orphan` leaves them."""
    out = []
    for obj in desired.values():
        if obj["kind"] != "Secret":
            continue
        secret = copy.deepcopy(obj)
        if owner:
            secret["metadata"]["ownerReferences"] = [{"controller": True, **owner}]
        out.append(secret)
    return out


def test_a_recreated_server_takes_back_its_ca_passwords_and_control() -> None:
    before_rsp, before = settled()
    again = h.reconcile(h.example("bsls.yaml"), pool=[*h.required_pool(), *left_behind(before)])
    after = h.desired(again)
    for key in ("tls-ca", "tls-server", "control", "user-alice@vm-alice", "user-bob@vm-bob"):
        assert after[key]["data"] == before[key]["data"], key
    assert h.xr_status(again)["tlsFingerprint"] == h.xr_status(before_rsp)["tlsFingerprint"]
    assert h.conditions(again)["TLSReady"].reason != "CARegenerated"
    # The same users with the same passwords: the sync Job's content is the same.
    assert h.key(again, "user-sync") == h.key(before_rsp, "user-sync")


def test_secrets_another_object_controls_are_not_taken() -> None:
    """Garbage collection still pending, or another XR's: a new CA, as for a new server."""
    before_rsp, before = settled()
    secrets = left_behind(before, kind="BackupStorageLocationServer", name="vm-backups", uid="old")
    again = h.reconcile(h.example("bsls.yaml"), pool=[*h.required_pool(), *secrets])
    assert h.xr_status(again)["tlsFingerprint"] != h.xr_status(before_rsp)["tlsFingerprint"]
    assert h.desired(again)["control"]["data"] != before["control"]["data"]


def test_only_this_servers_secrets_are_asked_for_and_only_while_something_is_missing() -> None:
    first = h.reconcile(h.example("bsls.yaml"))
    selector = first.requirements.resources["adoptable"]
    assert selector.kind == "Secret"
    assert selector.namespace == "team-a"
    assert dict(selector.match_labels.labels) == {
        "app.kubernetes.io/instance": "vm-backups",
        "app.kubernetes.io/managed-by": "function-bsls",
    }
    rsp, _ = settled()
    assert "adoptable" not in rsp.requirements.resources


def test_a_secret_of_another_name_is_not_read_even_if_labelled_so() -> None:
    before_rsp, before = settled()
    planted = copy.deepcopy(before["tls-ca"])
    planted["metadata"]["name"] = "vm-backups-something-else"
    again = h.reconcile(h.example("bsls.yaml"), pool=[*h.required_pool(), planted])
    assert h.desired(again)["tls-ca"]["data"] != planted["data"]
    assert h.xr_status(again)["tlsFingerprint"] != h.xr_status(before_rsp)["tlsFingerprint"]
