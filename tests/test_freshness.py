"""Backup freshness: what the function composes to gather it, and how it reads the report."""

from __future__ import annotations

import datetime
import json

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests import helpers as h
from tests.test_fn import bsls

ALICE = {"username": "alice", "hostname": "vm-alice"}
BOB = {"username": "bob", "hostname": "vm-bob"}
KEYS = set(h.FRESHNESS_KEYS)


def _stamp(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(at: datetime.datetime, **users: tuple[datetime.datetime, int, int]) -> str:
    return json.dumps(
        {
            "reportedAt": _stamp(at),
            "users": [
                {"identity": i, "lastBackup": _stamp(t), "lastBackupBytes": b, "snapshots": n}
                for i, (t, b, n) in users.items()
            ],
        }
    )


def _with_report(xr: dict, text: str, clock: h.Clock | None = None) -> fnv1.RunFunctionResponse:
    first = h.reconcile(xr, clock=clock)
    # Settled: the server available and the users synced.
    observed = h.as_observed(
        first, server=h.DEPLOYMENT_AVAILABLE, **{h.key(first, "user-sync"): h.JOB_COMPLETE}
    )
    observed["freshness-report"]["data"] = {"report.json": text}
    return h.reconcile(xr, observed=observed, clock=clock)


def test_a_server_with_users_composes_the_reporter_and_its_narrow_access() -> None:
    d = h.desired(h.reconcile(bsls(users=[ALICE])))
    assert set(d) >= KEYS
    role = d["freshness-role"]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["vm-backups-freshness"],
            "verbs": ["get", "patch"],
        }
    ]
    binding = d["freshness-binding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "vm-backups-freshness", "namespace": "team-a"}
    ]
    assert binding["roleRef"]["name"] == "vm-backups-freshness"
    # The function never writes the report: the CronJob's pod owns its data.
    assert "data" not in d["freshness-report"]


def test_the_reporter_pod_reaches_the_server_not_the_storage() -> None:
    d = h.desired(h.reconcile(bsls(users=[ALICE])))
    pod = d["freshness"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["/bin/sh", "/scripts/freshness.sh"]
    assert "args" not in container  # no storage flags
    env = {e["name"]: e for e in container["env"]}
    assert env["BSLS_SERVER_URL"]["value"] == "https://vm-backups.team-a.svc:51515"
    assert env["KOPIA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "vm-backups-freshness-reader",
        "key": "password",
    }
    assert (env["BSLS_IDENTITY_USERNAME"]["value"], env["BSLS_IDENTITY_HOSTNAME"]["value"]) == (
        "freshness",
        "bsls-system",
    )
    # Nothing of the repository's: no storage credentials, no repository password.
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert secrets == {"vm-backups-freshness-reader"}
    volume_secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert volume_secrets == set()
    # The API token: its own ServiceAccount, short-lived, mounted only here.
    assert pod["serviceAccountName"] == "vm-backups-freshness"
    assert pod["automountServiceAccountToken"] is False
    [api] = [v for v in pod["volumes"] if v["name"] == "api"]
    [token] = [s for s in api["projected"]["sources"] if "serviceAccountToken" in s]
    assert token["serviceAccountToken"]["expirationSeconds"] == 600
    assert d["freshness-account"]["automountServiceAccountToken"] is False
    # The server admits it (it reads through the server, like a VM).
    rule = d["network-policy"]["spec"]["ingress"][0]
    if "from" in rule:
        sources = [p.get("podSelector", {}).get("matchLabels", {}) for p in rule["from"]]
        assert any(s.get("app.kubernetes.io/component") == "freshness" for s in sources)


def test_the_sync_job_installs_the_reader_and_counts_only_users() -> None:
    first = h.reconcile(bsls(users=[ALICE]))
    job = h.sync_job(first)
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "users")
    sources = [s["secret"] for s in volume["projected"]["sources"]]
    assert sources[-1] == {
        "name": "vm-backups-freshness-reader",
        "items": [{"key": "password", "path": "reader/freshness@bsls-system"}],
    }
    observed = h.as_observed(first, **{h.key(first, "user-sync"): h.JOB_COMPLETE})
    assert h.xr_status(h.reconcile(bsls(users=[ALICE]), observed=observed))["userCount"] == 1


def test_the_reader_password_is_drawn_once_and_kept() -> None:
    xr = bsls(users=[ALICE])
    first = h.reconcile(xr)
    again = h.reconcile(xr, observed=h.as_observed(first))
    assert (
        h.desired(first)["freshness-reader"]["data"] == h.desired(again)["freshness-reader"]["data"]
    )
    assert h.sync_job(first)["metadata"]["name"] == h.sync_job(again)["metadata"]["name"]


def test_no_users_or_disabled_composes_nothing_of_it() -> None:
    for xr in (bsls(users=[]), bsls(users=[ALICE], freshness={"enabled": False})):
        rsp = h.reconcile(xr)
        assert not KEYS & set(h.desired(rsp))
        assert h.conditions(rsp)["BackupsFresh"].status == fnv1.STATUS_CONDITION_TRUE
        assert "staleUsers" not in h.xr_status(rsp)
    rsp = h.reconcile(bsls(users=[ALICE], freshness={"enabled": False}))
    assert h.conditions(rsp)["BackupsFresh"].reason == "Disabled"
    volume = next(
        v for v in h.sync_job(rsp)["spec"]["template"]["spec"]["volumes"] if v["name"] == "users"
    )
    assert all("reader/" not in str(s) for s in volume["projected"]["sources"])


def test_before_any_report_freshness_is_unknown() -> None:
    rsp = h.reconcile(bsls(users=[ALICE]))
    c = h.conditions(rsp)["BackupsFresh"]
    assert (c.status, c.reason) == (fnv1.STATUS_CONDITION_UNKNOWN, "NotGathered")
    assert "vm-backups-freshness" in c.message
    assert "stale" not in h.xr_status(rsp)["users"][0]


def test_a_user_who_backs_up_is_fresh_and_one_who_stopped_is_stale() -> None:
    now = h.NOW
    text = _report(
        now - datetime.timedelta(minutes=3),
        **{
            "alice@vm-alice": (now - datetime.timedelta(hours=2), 4096, 7),
            "bob@vm-bob": (now - datetime.timedelta(hours=30), 100, 2),
        },
    )
    rsp = _with_report(bsls(users=[ALICE, BOB]), text)
    status = h.xr_status(rsp)
    alice, bob = status["users"]
    assert alice["lastBackup"] == _stamp(now - datetime.timedelta(hours=2))
    assert (alice["lastBackupBytes"], alice["snapshots"], alice["stale"]) == (4096, 7, False)
    assert (bob["stale"], bob["snapshots"]) == (True, 2)
    assert status["staleUsers"] == 1
    c = h.conditions(rsp)["BackupsFresh"]
    assert (c.status, c.reason) == (fnv1.STATUS_CONDITION_FALSE, "Stale")
    assert "bob@vm-bob" in c.message
    assert "alice@vm-alice" not in c.message
    # A stale user is not something in flight: no fast polling, and the XR stays Ready.
    assert rsp.meta.ttl.ToTimedelta() == datetime.timedelta(seconds=20)
    assert h.ready(rsp) == set(h.desired(rsp))


def test_a_user_without_any_snapshot_is_stale() -> None:
    now = h.NOW
    text = _report(now, **{"alice@vm-alice": (now, 1, 1)})
    status = h.xr_status(_with_report(bsls(users=[ALICE, BOB]), text))
    bob = status["users"][1]
    assert (bob["stale"], bob["snapshots"]) == (True, 0)
    assert "lastBackup" not in bob


def test_fresh_turns_stale_as_time_passes_without_a_new_report() -> None:
    clock = h.Clock()
    xr = bsls(users=[ALICE], freshness={"staleAfterMinutes": 3})
    text = _report(clock.now, **{"alice@vm-alice": (clock.now, 1, 1)})
    rsp = _with_report(xr, text, clock)
    assert h.conditions(rsp)["BackupsFresh"].reason == "Fresh"
    clock.advance(minutes=4)
    later = _with_report(xr, text, clock)
    # The report itself is older than the window now: it can no longer tell.
    assert h.conditions(later)["BackupsFresh"].reason == "ReportOutdated"
    assert h.xr_status(later)["users"][0]["stale"] is True


def test_the_next_call_comes_when_a_fresh_user_would_turn_stale() -> None:
    now = h.NOW
    xr = bsls(users=[ALICE], freshness={"staleAfterMinutes": 60})
    text = _report(
        now, **{"alice@vm-alice": (now - datetime.timedelta(seconds=59 * 60 + 50), 1, 1)}
    )
    rsp = _with_report(xr, text)
    assert rsp.meta.ttl.ToTimedelta() <= datetime.timedelta(seconds=11)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"reportedAt": "yesterday", "users": []}),
        json.dumps({"reportedAt": "2026-06-01T12:00:00Z", "users": [{"identity": "x"}]}),
        json.dumps(
            {
                "reportedAt": "2026-06-01T12:00:00Z",
                "users": [
                    {
                        "identity": "Alice@vm",
                        "lastBackup": "2026-06-01T12:00:00Z",
                        "lastBackupBytes": 1,
                        "snapshots": 1,
                    }
                ],
            }
        ),
    ],
)
def test_an_edited_report_is_refused_with_the_field(text: str) -> None:
    rsp = _with_report(bsls(users=[ALICE]), text)
    c = h.conditions(rsp)["BackupsFresh"]
    assert (c.status, c.reason) == (fnv1.STATUS_CONDITION_FALSE, "ReportInvalid")
    assert "report.json" in c.message
    assert "stale" not in h.xr_status(rsp)["users"][0]
    assert h.fatal(rsp) == []


def test_the_report_of_another_identity_reaches_no_listed_user() -> None:
    now = h.NOW
    text = _report(now, **{"mallory@vm-m": (now, 1, 1)})
    status = h.xr_status(_with_report(bsls(users=[ALICE]), text))
    assert status["users"][0]["stale"] is True
    assert "mallory" not in json.dumps(status)


def test_a_long_server_name_still_gives_a_cronjob_the_api_server_accepts() -> None:
    xr = bsls(users=[ALICE])
    xr["metadata"] = {**xr["metadata"], "name": "a-very-long-server-name-" + "x" * 40}
    d = h.desired(h.reconcile(xr))
    assert len(d["freshness"]["metadata"]["name"]) <= 52
    # Its pods still run under the account the Role is bound to.
    pod = d["freshness"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == d["freshness-account"]["metadata"]["name"]
    assert d["freshness-binding"]["subjects"][0]["name"] == pod["serviceAccountName"]
