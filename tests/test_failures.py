"""A failed Job says why, and the function tries again on its own (failures.py, attempts.py)."""

from __future__ import annotations

import datetime

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function import failures
from function.failures import Failure
from tests import helpers as h

AT = datetime.datetime(2026, 6, 1, 11, 59, 55, tzinfo=datetime.UTC)  # job_failed's default


def failed_init(code: int) -> tuple[fnv1.RunFunctionResponse, str, dict]:
    """The first call for the example BSLR, and its init Job observed failed with `code`."""
    rsp = h.reconcile(h.example("bslr.yaml"))
    key = h.key(rsp, "repository-init")
    return rsp, key, h.job_failed(h.desired(rsp)[key], code)


def test_every_cause_fails_the_job_at_once_and_nothing_else_does() -> None:
    job = h.desired(h.reconcile(h.example("bslr.yaml")))
    init = next(v for k, v in job.items() if k.startswith("repository-init-"))
    [rule] = init["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["containerName"] == "repository-init"
    assert sorted(int(v) for v in rule["onExitCodes"]["values"]) == sorted(failures.CAUSES)
    assert 1 not in failures.CAUSES  # an unknown failure is retried by the Job (backoffLimit)


def test_a_known_cause_is_named_with_its_fix_its_log_and_when_it_is_tried_again() -> None:
    rsp, key, status = failed_init(11)
    failed = h.reconcile(h.example("bslr.yaml"), observed=h.as_observed(rsp, **{key: status}))
    cond = h.conditions(failed)["Initialized"]
    name = h.desired(rsp)[key]["metadata"]["name"]
    assert cond.reason == "InitFailed"
    assert cond.message == (
        f"Job team-a/{name} could not open the repository at pvc://team-a-backups/repository: "
        "the bucket (or container) does not exist (exit code 11); create it: kopia does not "
        "create buckets. Attempt 2 starts at 2026-06-01T12:00:25Z, "
        f"with no change needed; its log: kubectl -n team-a logs job/{name}"
    )
    # The failed Job is kept as it is, so its pod and log stay to be read.
    assert h.desired(failed)[key]["metadata"]["name"] == name
    # Crossplane calls again when the next attempt is due (25 s on), not later.
    assert failed.meta.ttl.ToTimedelta() == datetime.timedelta(seconds=20)
    soon = h.reconcile(
        h.example("bslr.yaml"),
        observed=h.as_observed(rsp, **{key: status}),
        clock=h.Clock(h.NOW + datetime.timedelta(seconds=15)),
    )
    assert soon.meta.ttl.ToTimedelta() == datetime.timedelta(seconds=10)


def test_an_unknown_failure_quotes_the_job_controller() -> None:
    rsp, key, status = failed_init(1)
    failed = h.reconcile(h.example("bslr.yaml"), observed=h.as_observed(rsp, **{key: status}))
    message = h.conditions(failed)["Initialized"].message
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in message
    assert "Attempt 2 starts at" in message


def test_once_the_back_off_passed_the_next_attempt_runs_under_a_name_of_its_own() -> None:
    rsp, key, status = failed_init(13)
    later = h.Clock(AT + failures.BACKOFF_FIRST)
    retry = h.reconcile(
        h.example("bslr.yaml"), observed=h.as_observed(rsp, **{key: status}), clock=later
    )
    new_key = h.key(retry, "repository-init")
    job = h.desired(retry)[new_key]
    assert key not in h.desired(retry)  # the failed attempt goes
    assert job["metadata"]["name"] != h.desired(rsp)[key]["metadata"]["name"]
    assert job["metadata"]["annotations"]["dataprotection.bsls.dev/attempt"] == "1"
    assert (
        job["metadata"]["annotations"]["dataprotection.bsls.dev/content"]
        == h.desired(rsp)[key]["metadata"]["annotations"]["dataprotection.bsls.dev/content"]
    )
    assert h.conditions(retry)["Initialized"].reason == "Initializing"
    # Same request, same answer: the retry's name follows from the content and the attempt.
    again = h.reconcile(
        h.example("bslr.yaml"), observed=h.as_observed(rsp, **{key: status}), clock=later
    )
    assert again.SerializeToString(deterministic=True) == retry.SerializeToString(
        deterministic=True
    )

    # The second attempt fails too: the wait doubles.
    second = h.job_failed(job, 13, at="2026-06-01T12:01:00Z")
    waiting = h.reconcile(
        h.example("bslr.yaml"),
        observed=h.as_observed(retry, **{new_key: second}),
        clock=h.Clock(datetime.datetime(2026, 6, 1, 12, 1, 30, tzinfo=datetime.UTC)),
    )
    assert (
        "Attempt 3 starts at 2026-06-01T12:02:00Z" in h.conditions(waiting)["Initialized"].message
    )


def test_a_storage_change_starts_over_at_once() -> None:
    rsp, key, status = failed_init(11)
    bslr = h.example("bslr.yaml")
    bslr["spec"]["backend"]["filesystem"]["path"] = "/elsewhere"
    changed = h.reconcile(bslr, observed=h.as_observed(rsp, **{key: status}))
    new_key = h.key(changed, "repository-init")
    assert new_key != key
    assert h.desired(changed)[new_key]["metadata"]["annotations"][failures.ATTEMPT] == "0"
    assert h.conditions(changed)["Initialized"].reason == "Initializing"


def test_a_failed_sync_keeps_the_last_one_in_force_and_says_why() -> None:
    first = h.reconcile(h.example("bsls.yaml"))
    old = h.key(first, "user-sync")
    settled = h.reconcile(
        h.example("bsls.yaml"),
        observed=h.as_observed(first, server=h.DEPLOYMENT_AVAILABLE, **{old: h.JOB_COMPLETE}),
    )
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = [*xr["spec"]["users"], {"username": "carol", "hostname": "vm-carol"}]
    changed = h.reconcile(
        xr,
        observed=h.as_observed(settled, server=h.DEPLOYMENT_AVAILABLE, **{old: h.JOB_COMPLETE}),
    )
    new = h.key(changed, "user-sync")
    failed_status = h.job_failed(h.desired(changed)[new], 20)
    failed = h.reconcile(
        xr,
        observed=h.as_observed(
            changed, server=h.DEPLOYMENT_AVAILABLE, **{old: h.JOB_COMPLETE, new: failed_status}
        ),
    )
    cond = h.conditions(failed)["UsersSynced"]
    assert cond.reason == "SyncFailed"
    assert "did not verify against the CA bundle (exit code 20)" in cond.message
    assert {old, new} <= set(h.desired(failed))
    # The server still serves the users of the last sync: the XR stays Ready.
    assert set(h.desired(failed)) == set(h.ready(failed))
    assert h.xr_status(failed)["userCount"] == 2


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(0, 30), (1, 60), (2, 120), (4, 480), (5, 600), (40, 600)]
)
def test_the_back_off_doubles_up_to_ten_minutes(attempt: int, seconds: int) -> None:
    assert failures.backoff(attempt) == datetime.timedelta(seconds=seconds)


def test_a_failure_without_a_time_is_due_at_once() -> None:
    plan = failures.plan([(0, Failure(None, "Failed", ""))], h.NOW)
    assert plan == failures.Plan(1, None, None)
