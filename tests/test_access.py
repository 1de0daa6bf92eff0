"""Access modes: the kopia ACL entries per mode, and what the users step composes for them."""

from __future__ import annotations

import pytest

from function import access
from function.models import User
from tests import helpers as h
from tests.test_fn import bsls

ALICE = {"username": "alice", "hostname": "vm-alice"}


def test_every_identity_only_reads_through_the_shared_rules() -> None:
    shared = [r for r in access.RULES if r.who == "*"]
    assert {r.access for r in shared} == {"READ"}


@pytest.mark.parametrize(
    ("mode", "content", "snapshots", "policies"),
    [
        ("full", "APPEND", "FULL", "FULL"),
        ("append", "APPEND", "APPEND", "READ"),
        ("restore", "READ", "READ", "READ"),
    ],
)
def test_each_mode_grants_what_the_docs_say(mode, content, snapshots, policies) -> None:
    rules = [r for r in access.RULES if r.who in ("*", mode)]
    level = {"READ": 1, "APPEND": 2, "FULL": 3}

    def best(**labels: str) -> str:
        found = [r.access for r in rules if dict(r.target) == {**labels}]
        return max(found, key=level.__getitem__)

    assert best(type="content") == content
    assert best(type="snapshot", username="OWN_USER", hostname="OWN_HOST") == snapshots
    assert best(type="policy", username="OWN_USER", hostname="OWN_HOST") == policies
    assert best(type="policy", policyType="global") == "READ"


def test_no_rule_reaches_accounts_or_access_rules_or_others() -> None:
    for r in access.RULES:
        target = dict(r.target)
        assert target["type"] in ("content", "snapshot", "policy"), r
        if target["type"] != "content" and r.who != access.READER:
            # Always the matched identity's own records, or the policies it inherits.
            assert target.get("username") == "OWN_USER" or "policyType" in target, r


def test_the_reader_sees_snapshot_records_and_no_content() -> None:
    reader = [r for r in access.RULES if r.who == access.READER]
    assert [(r.access, dict(r.target)) for r in reader] == [("READ", {"type": "snapshot"})]


def test_rule_lines_list_target_keys_as_kopia_does() -> None:
    # kopia lists a target as JSON with sorted keys; the script compares these lines.
    for line in access.rules_text().splitlines():
        who, level, target = line.split(" ")
        keys = [kv.split("=")[0] for kv in target.split(",")]
        assert keys == sorted(keys), line
        assert level in ("READ", "APPEND", "FULL")
        assert who in ("*", *access.MODES, access.READER)


def test_access_defaults_to_full_and_refuses_other_words() -> None:
    assert User.model_validate(ALICE).access == "full"
    with pytest.raises(ValueError, match="access"):
        User.model_validate({**ALICE, "access": "delete-only"})


def test_retention_cronjob_only_with_an_append_user() -> None:
    full = h.reconcile(bsls(users=[ALICE]))
    assert "retention" not in h.desired(full)
    xr = bsls(users=[{**ALICE, "access": "append"}], retention={"keepDays": 7, "keepLatest": 2})
    first = h.reconcile(xr)
    rsp = h.reconcile(xr, observed=h.as_observed(first, server=h.DEPLOYMENT_AVAILABLE))
    cronjob = h.desired(rsp)["retention"]
    assert cronjob["kind"] == "CronJob"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["BSLS_RETENTION_KEEP_DAYS"] == "7"
    assert env["BSLS_RETENTION_KEEP_LATEST"] == "2"
    assert env["BSLS_IDENTITY_USERNAME"] == "retention"
    assert h.xr_status(rsp)["users"][0]["access"] == "append"


def test_a_changed_mode_is_a_new_sync_job_with_the_identity_in_its_mode_folder() -> None:
    first = h.reconcile(bsls(users=[ALICE]))
    changed = h.reconcile(bsls(users=[{**ALICE, "access": "restore"}]))
    a, b = h.sync_job(first), h.sync_job(changed)
    assert a["metadata"]["name"] != b["metadata"]["name"]
    volume = next(v for v in b["spec"]["template"]["spec"]["volumes"] if v["name"] == "users")
    paths = [s["secret"]["items"][0]["path"] for s in volume["projected"]["sources"]]
    assert paths == ["restore/alice@vm-alice", "reader/freshness@bsls-system"]
    env = {e["name"]: e.get("value") for e in b["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BSLS_ACCESS_RULES"] == access.rules_text()
