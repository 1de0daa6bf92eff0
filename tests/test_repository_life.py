"""A repository's whole life: settings, checks, maintenance, password rotation (bslr.py).

Each test drives the BSLR through the function the way Crossplane does: the observed
state of a call is the last answer plus the status the cluster reports for its Jobs,
and the XR carries the status the function wrote (tests.helpers.with_status).
"""

from __future__ import annotations

import copy
import datetime

from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function import health, settings
from function.models import BSLRSpec
from tests import helpers as h


def _complete(at: datetime.datetime) -> dict:
    return {
        "conditions": [{"type": "Complete", "status": "True"}],
        "completionTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "succeeded": 1,
    }


class Loop:
    """One BSLR, reconciled again and again, with Jobs the test completes or fails."""

    def __init__(self, xr: dict, clock: h.Clock | None = None) -> None:
        self.xr = copy.deepcopy(xr)
        self.clock = clock or h.Clock()
        self.rsp: fnv1.RunFunctionResponse | None = None
        self.statuses: dict[str, dict] = {}  # by composition-resource-name

    def reconcile(self) -> fnv1.RunFunctionResponse:
        observed = None
        if self.rsp is not None:
            keep = {k: v for k, v in self.statuses.items() if k in self.rsp.desired.resources}
            observed = h.as_observed(self.rsp, **keep)
        self.rsp = h.reconcile(self.xr, observed=observed, clock=self.clock)
        assert h.fatal(self.rsp) == [], h.fatal(self.rsp)
        self.xr = h.with_status(self.xr, self.rsp)
        return self.rsp

    def job(self, prefix: str) -> tuple[str, dict]:
        """The current Job of a kind: of two, the one that has not finished (the other
        is the last completed one, kept while it runs)."""
        assert self.rsp is not None
        keys = [k for k in self.rsp.desired.resources if k.startswith(f"{prefix}-")]
        if len(keys) > 1:
            keys = [k for k in keys if k not in self.statuses]
        [key] = keys
        return key, h.desired(self.rsp)[key]

    def complete(self, prefix: str) -> str:
        key, _ = self.job(prefix)
        self.statuses[key] = _complete(self.clock())
        return key

    def fail(self, prefix: str, code: int) -> str:
        key, job = self.job(prefix)
        self.statuses[key] = h.job_failed(job, code, at=self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"))
        return key

    @property
    def status(self) -> dict:
        assert self.rsp is not None
        return h.xr_status(self.rsp)

    def condition(self, typ: str) -> fnv1.Condition:
        assert self.rsp is not None
        return h.conditions(self.rsp)[typ]

    @property
    def ready(self) -> int:
        assert self.rsp is not None
        return self.rsp.desired.composite.ready


def _env(job: dict) -> dict[str, object]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def initialised(xr: dict | None = None, clock: h.Clock | None = None) -> Loop:
    loop = Loop(xr or h.example("bslr.yaml"), clock)
    loop.reconcile()
    loop.complete("repository-init")
    loop.reconcile()
    return loop


# ---------------------------------------------------------------------------- settings


def test_the_init_job_creates_with_the_format_and_applies_the_policy() -> None:
    bslr = h.example("bslr.yaml")
    bslr["spec"]["format"] = {
        "encryption": "CHACHA20-POLY1305-HMAC-SHA256",
        "hash": "BLAKE3-256",
        "splitter": "DYNAMIC-1M-RABINKARP",
        "errorCorrection": {"overheadPercent": 2},
    }
    bslr["spec"]["policy"] = {
        "compression": "zstd",
        "retention": {"keepDaily": 14},
        "ignore": ["*.tmp", "/proc"],
    }
    loop = Loop(bslr)
    loop.reconcile()
    _, job = loop.job("repository-init")
    env = _env(job)
    assert env["BSLS_FORMAT_FLAGS"] == (
        "--encryption=CHACHA20-POLY1305-HMAC-SHA256 --block-hash=BLAKE3-256 "
        "--object-splitter=DYNAMIC-1M-RABINKARP --ecc=REED-SOLOMON-CRC32 --ecc-overhead-percent=2"
    )
    assert 'spec.format.hash|"hash":"BLAKE3-256"' in str(env["BSLS_FORMAT_CHECKS"]).split("\n")
    assert "--compression=zstd" in str(env["BSLS_POLICY_FLAGS"]).split()
    assert "--keep-daily=14" in str(env["BSLS_POLICY_FLAGS"]).split()
    assert "--keep-latest=10" in str(env["BSLS_POLICY_FLAGS"]).split()  # kopia's default
    assert env["BSLS_POLICY_IGNORE"] == "*.tmp\n/proc"
    # It connects as the identity that owns maintenance.
    assert env["BSLS_IDENTITY_USERNAME"] == "maintenance"
    # Nothing is shown as applied until the Job completed.
    assert "settings" not in loop.status

    loop.complete("repository-init")
    loop.reconcile()
    shown = loop.status["settings"]
    assert shown["format"] == {
        "encryption": "CHACHA20-POLY1305-HMAC-SHA256",
        "hash": "BLAKE3-256",
        "splitter": "DYNAMIC-1M-RABINKARP",
        "errorCorrection": {"algorithm": "REED-SOLOMON-CRC32", "overheadPercent": 2},
    }
    assert shown["policy"]["compression"] == "zstd"
    assert shown["policy"]["ignore"] == ["*.tmp", "/proc"]


def test_without_a_format_the_repository_is_checked_against_kopias_defaults() -> None:
    spec = BSLRSpec.model_validate(h.example("bslr.yaml")["spec"])
    assert settings.format_checks(spec.format) == [
        'spec.format.encryption|"encryption":"AES256-GCM-HMAC-SHA256"',
        'spec.format.hash|"hash":"BLAKE2B-256-128"',
        'spec.format.splitter|"splitter":"DYNAMIC-4M-BUZHASH"',
        'spec.format.errorCorrection|!"eccOverheadPercent"',
    ]


def test_a_changed_policy_reruns_init_while_the_repository_stays_ready() -> None:
    loop = initialised()
    before, _ = loop.job("repository-init")
    assert loop.condition("Initialized").reason == "Initialized"
    loop.xr["spec"]["policy"] = {"compression": "s2-default"}
    loop.reconcile()
    after, job = loop.job("repository-init")
    assert after != before
    assert "--compression=s2-default" in str(_env(job)["BSLS_POLICY_FLAGS"]).split()
    assert loop.condition("Initialized").status == fnv1.STATUS_CONDITION_TRUE
    assert "applies the changed settings" in loop.condition("Initialized").message
    assert loop.status["settings"]["policy"]["compression"] == "none"  # the last applied
    loop.complete("repository-init")
    loop.reconcile()
    assert loop.status["settings"]["policy"]["compression"] == "s2-default"


def test_compressions_kopia_refuses_are_not_offered() -> None:
    bslr = h.example("bslr.yaml")
    for refused in ("lz4", "zstd-best-compression"):
        bslr["spec"]["policy"] = {"compression": refused}
        rsp = h.reconcile(bslr)
        [fatal] = h.fatal(rsp)
        assert "spec.policy.compression" in fatal, fatal


def test_object_lock_needs_s3_and_a_period_longer_than_full_maintenance() -> None:
    fs = h.example("bslr.yaml")
    fs["spec"]["objectLock"] = {"mode": "GOVERNANCE", "periodDays": 30}
    [fatal] = h.fatal(h.reconcile(fs))
    assert "objectLock: only the s3 backend" in fatal
    s3 = h.example("bslr-s3.yaml")
    s3["spec"]["objectLock"] = {"mode": "COMPLIANCE", "periodDays": 2}
    s3["spec"]["maintenance"] = {"fullIntervalHours": 36}
    [fatal] = h.fatal(h.reconcile(s3))
    assert "objectLock.periodDays (2) must be at least a day longer" in fatal
    assert "raise periodDays to 3" in fatal


def test_object_lock_reaches_create_and_set_parameters_and_the_status() -> None:
    s3 = h.example("bslr-s3.yaml")
    s3["spec"]["objectLock"] = {"mode": "GOVERNANCE", "periodDays": 30}
    loop = Loop(s3)
    loop.reconcile()
    env = _env(loop.job("repository-init")[1])
    assert env["BSLS_RETENTION_MODE"] == "GOVERNANCE"
    assert env["BSLS_RETENTION_PERIOD"] == "720h"
    loop.complete("repository-init")
    loop.reconcile()
    assert loop.status["settings"]["objectLock"] == {"mode": "GOVERNANCE", "periodDays": 30}
    # The checks keep it too (set-parameters reports "no changes" when it holds).
    assert _env(loop.job("repository-check")[1])["BSLS_RETENTION_MODE"] == "GOVERNANCE"


# ---------------------------------------------------------------------------- checks


def test_checks_run_once_per_period_and_record_what_they_did() -> None:
    loop = initialised()
    key, job = loop.job("repository-check")
    assert job["metadata"]["annotations"]["dataprotection.bsls.dev/maintenance"] == "quick,full"
    assert _env(job)["BSLS_MAINTENANCE"] == "quick,full"
    assert loop.condition("RepositoryHealthy").reason == "ValidationPending"
    assert loop.ready == fnv1.READY_TRUE  # initialised, no check failed
    loop.reconcile()
    assert key in h.ready(loop.rsp)  # observed, a check in flight is no unready resource

    loop.clock.advance(seconds=30)
    done_at = loop.clock()
    loop.complete("repository-check")
    loop.reconcile()
    assert loop.job("repository-check")[0] == key  # the same period keeps its Job
    record = loop.status["health"]
    assert record["lastValidationTime"] == health.stamp(done_at)
    assert record["lastValidationResult"] == "Succeeded"
    assert loop.condition("RepositoryHealthy").reason == "Validated"
    maintenance = loop.status["maintenance"]
    assert maintenance["owner"] == "maintenance@bsls-system"
    assert maintenance["lastQuick"] == maintenance["lastFull"] == health.stamp(done_at)
    assert maintenance["nextQuick"] == health.stamp(done_at + datetime.timedelta(hours=1))
    assert maintenance["nextFull"] == health.stamp(done_at + datetime.timedelta(days=1))
    assert loop.condition("MaintenanceOnSchedule").reason == "OnSchedule"
    # Called again no later than the next period.
    assert loop.rsp.meta.ttl.ToTimedelta() <= datetime.timedelta(seconds=20)

    loop.clock.advance(hours=1)
    loop.reconcile()
    later, job = loop.job("repository-check")
    assert later != key
    assert _env(job)["BSLS_MAINTENANCE"] == "quick"  # full is not due for a day
    # The record outlives the Job of the period before.
    assert loop.status["health"]["lastValidationTime"] == health.stamp(done_at)


def test_a_failed_check_makes_the_repository_not_ready_with_the_cause_then_heals() -> None:
    loop = initialised()
    loop.complete("repository-check")
    loop.reconcile()
    loop.clock.advance(hours=1)
    loop.reconcile()
    loop.fail("repository-check", 11)
    loop.reconcile()
    cond = loop.condition("RepositoryHealthy")
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "ValidationFailed")
    assert "the bucket (or container) does not exist (exit code 11)" in cond.message
    assert "Attempt 2 starts at" in cond.message
    assert loop.ready == fnv1.READY_FALSE
    assert loop.status["health"]["lastValidationResult"].startswith("the bucket")

    loop.clock.advance(seconds=31)
    loop.reconcile()
    loop.complete("repository-check")
    loop.reconcile()
    assert loop.condition("RepositoryHealthy").reason == "Validated"
    assert loop.ready == fnv1.READY_TRUE


def test_a_check_requested_by_annotation_runs_now_and_once() -> None:
    loop = initialised()
    loop.complete("repository-check")
    loop.reconcile()
    scheduled, _ = loop.job("repository-check")
    loop.clock.advance(minutes=5)
    annotations = loop.xr["metadata"].setdefault("annotations", {})
    annotations["dataprotection.bsls.dev/check-requested"] = "storage-back"
    loop.reconcile()
    asked, _ = loop.job("repository-check")
    assert asked != scheduled  # a new Job at once, in the same period
    loop.fail("repository-check", 11)
    loop.reconcile()
    assert loop.condition("RepositoryHealthy").reason == "ValidationFailed"
    # Asking again (a new value) does not wait for the failed one's back-off.
    annotations["dataprotection.bsls.dev/check-requested"] = "storage-back-2"
    loop.reconcile()
    again, _ = loop.job("repository-check")
    assert again not in (asked, scheduled)
    loop.complete("repository-check")
    loop.reconcile()
    assert loop.condition("RepositoryHealthy").reason == "Validated"
    # The same value asks for nothing more.
    loop.reconcile()
    assert loop.job("repository-check")[0] == again


def test_maintenance_that_stopped_is_overdue() -> None:
    loop = initialised()
    loop.complete("repository-check")
    loop.reconcile()
    # Every check from now on fails: maintenance cannot run.
    for _ in range(3):
        loop.clock.advance(hours=1)
        loop.reconcile()
        loop.fail("repository-check", 13)
        loop.reconcile()
    cond = loop.condition("MaintenanceOnSchedule")
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "Overdue")
    assert "quick maintenance was due at" in cond.message
    assert "full maintenance" not in cond.message  # not due for a day


def test_the_checks_are_spread_over_the_period_by_repository() -> None:
    spec = BSLRSpec.model_validate(h.example("bslr.yaml")["spec"])
    starts = {health.slot(spec, "team-a", f"repo-{i}", h.NOW).start.minute for i in range(20)}
    assert len(starts) > 5
    one = health.slot(spec, "team-a", "repo", h.NOW)
    assert one.start <= h.NOW < one.end
    assert one.end - one.start == datetime.timedelta(hours=1)


# ---------------------------------------------------------------------------- passwords


def _rotate(loop: Loop) -> None:
    loop.xr["spec"]["passwordSecretRef"] = {"name": "team-a-repo-password-2", "key": "password"}


def test_a_new_password_reference_runs_change_password_with_both_then_moves_over() -> None:
    loop = initialised()
    loop.complete("repository-check")
    loop.reconcile()
    _rotate(loop)
    loop.reconcile()
    cond = loop.condition("PasswordRotation")
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "Rotating")
    _, job = loop.job("password-change")
    env = _env(job)
    old = {"secretKeyRef": {"name": "team-a-repo-password", "key": "password"}}
    new = {"secretKeyRef": {"name": "team-a-repo-password-2", "key": "password"}}
    assert env["KOPIA_PASSWORD"] == old
    assert env["KOPIA_NEW_PASSWORD"] == new
    # Every other pod that opens the repository gets both meanwhile.
    check = _env(loop.job("repository-check")[1])
    assert check["KOPIA_PASSWORD"] == old
    assert check["BSLS_PENDING_PASSWORD"] == new
    assert loop.status["passwordSecretRef"] == {"name": "team-a-repo-password", "key": "password"}
    assert loop.ready == fnv1.READY_TRUE  # the old password keeps working

    loop.clock.advance(seconds=20)
    loop.complete("password-change")
    loop.reconcile()
    assert loop.condition("PasswordRotation").reason == "InForce"
    assert loop.status["passwordSecretRef"] == new["secretKeyRef"]
    assert loop.status["passwordChangedAt"] == health.stamp(loop.clock())
    assert not [k for k in loop.rsp.desired.resources if k.startswith("password-change-")]
    check = _env(loop.job("repository-check")[1])
    assert check["KOPIA_PASSWORD"] == new
    assert "BSLS_PENDING_PASSWORD" not in check
    # Kept as it ran: the init Job does not run again for a password that moved.
    assert "applies the changed settings" not in loop.condition("Initialized").message


def test_a_failed_rotation_keeps_the_old_password_and_says_why() -> None:
    loop = initialised()
    _rotate(loop)
    loop.reconcile()
    loop.fail("password-change", 10)
    loop.reconcile()
    cond = loop.condition("PasswordRotation")
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "RotationFailed")
    assert "exit code 10" in cond.message
    assert "team-a-repo-password (key password) stays in force" in cond.message
    assert loop.status["passwordSecretRef"]["name"] == "team-a-repo-password"
    assert loop.ready == fnv1.READY_TRUE


def test_the_server_opens_the_repository_with_the_password_the_repository_says() -> None:
    pool = h.required_pool()
    repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    repo["spec"]["passwordSecretRef"] = {"name": "team-a-repo-password-2", "key": "password"}
    repo["status"]["passwordSecretRef"] = {"name": "team-a-repo-password", "key": "password"}
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    env = _env(h.desired(rsp)["server"])
    assert env["KOPIA_PASSWORD"] == {
        "secretKeyRef": {"name": "team-a-repo-password", "key": "password"}
    }
    assert env["BSLS_PENDING_PASSWORD"] == {
        "secretKeyRef": {"name": "team-a-repo-password-2", "key": "password"}
    }


def test_a_server_says_why_its_repository_is_not_ready_and_keeps_running() -> None:
    first = h.reconcile(h.example("bsls.yaml"))
    pool = h.required_pool()
    repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    repo["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "Creating"},
        {
            "type": "RepositoryHealthy",
            "status": "False",
            "reason": "ValidationFailed",
            "message": "the bucket (or container) does not exist (exit code 11)",
        },
    ]
    rsp = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(first), pool=pool)
    cond = h.conditions(rsp)["RepositoryReady"]
    assert cond.reason == "NotReady"
    assert "RepositoryHealthy is False (ValidationFailed): the bucket" in cond.message
    assert "A running server is left as it is" in cond.message
    assert h.desired(rsp)["server"] == h.desired(first)["server"]


# ---------------------------------------------------------------------------- identity


def test_a_cloud_identity_runs_every_repository_pod_under_its_service_account() -> None:
    loop = Loop(h.example("bslr-s3-irsa.yaml"))
    loop.xr["spec"]["cloudIdentity"]["podLabels"] = {"azure.workload.identity/use": "true"}
    loop.reconcile()
    account = h.desired(loop.rsp)["service-account"]
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"]["name"] == "team-a-irsa-repository"
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/team-a-backups"
    }
    assert account["automountServiceAccountToken"] is False
    _, job = loop.job("repository-init")
    pod = job["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "team-a-irsa-repository"
    assert pod["spec"]["automountServiceAccountToken"] is False  # no Kubernetes API token
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    env = _env(job)
    assert not [k for k in env if k.startswith("AWS_")]  # no static keys

    # The server and its user-sync Jobs open the repository the same way.
    pool = h.required_pool()
    repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    repo["spec"] = copy.deepcopy(loop.xr["spec"])
    repo["metadata"]["name"] = "team-a-irsa"
    bsls = h.example("bsls.yaml")
    bsls["spec"]["repositoryRef"]["name"] = "team-a-irsa"
    rsp = h.reconcile(bsls, pool=pool)
    for key in ("server", h.key(rsp, "user-sync")):
        template = h.desired(rsp)[key]["spec"]["template"]
        assert template["spec"]["serviceAccountName"] == "team-a-irsa-repository", key
        assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true", key


def test_without_a_cloud_identity_no_pod_names_a_service_account() -> None:
    loop = initialised(h.example("bslr-s3.yaml"))
    assert "service-account" not in loop.rsp.desired.resources
    for prefix in ("repository-init", "repository-check"):
        assert "serviceAccountName" not in loop.job(prefix)[1]["spec"]["template"]["spec"]


def test_a_cloud_identity_and_static_keys_exclude_each_other() -> None:
    both = h.example("bslr-s3.yaml")
    both["spec"]["cloudIdentity"] = {"serviceAccountAnnotations": {"a/b": "c"}}
    [fatal] = h.fatal(h.reconcile(both))
    assert "credentialsSecretRef and cloudIdentity exclude each other" in fatal
    gcs = h.example("bslr-gcs.yaml")
    del gcs["spec"]["backend"]["gcs"]["credentialsSecretRef"]
    [fatal] = h.fatal(h.reconcile(gcs))
    assert "credentialsSecretRef is required unless cloudIdentity is set" in fatal
    gcs["spec"]["cloudIdentity"] = {
        "serviceAccountAnnotations": {
            "iam.gke.io/gcp-service-account": "b@p.iam.gserviceaccount.com"
        }
    }
    rsp = h.reconcile(gcs)
    assert h.fatal(rsp) == []
    args = h.desired(rsp)[h.key(rsp, "repository-init")]["spec"]["template"]["spec"]["containers"][
        0
    ]["args"]
    assert not [
        a for a in args if a.startswith("--credentials-file")
    ]  # Google's default credentials
    theirs = h.example("bslr-s3-irsa.yaml")
    theirs["spec"]["cloudIdentity"]["podLabels"] = {"app.kubernetes.io/instance": "other"}
    [fatal] = h.fatal(h.reconcile(theirs))
    assert "are the function's own" in fatal


def test_a_completed_init_job_stays_while_a_new_one_applies_changed_settings() -> None:
    loop = initialised()
    old, _ = loop.job("repository-init")
    # An upgrade, or a change: the XR has no record of applied settings yet.
    del loop.xr["status"]["settings"]
    loop.xr["spec"]["policy"] = {"compression": "zstd"}
    for _ in range(2):  # and on the call after, once the old Job's absence would show
        loop.reconcile()
        assert old in loop.rsp.desired.resources
        assert loop.condition("Initialized").status == fnv1.STATUS_CONDITION_TRUE
        assert loop.ready == fnv1.READY_TRUE
    new = [k for k in loop.rsp.desired.resources if k.startswith("repository-init-") and k != old]
    loop.statuses[new[0]] = _complete(loop.clock())
    loop.reconcile()
    assert [k for k in loop.rsp.desired.resources if k.startswith("repository-init-")] == new


def test_the_server_rolls_when_the_repository_applied_another_object_lock() -> None:
    def server_digest(lock: dict | None) -> str:
        pool = h.required_pool()
        repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
        if lock is not None:
            repo["status"]["settings"] = {"objectLock": lock}
        rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
        meta = h.desired(rsp)["server"]["spec"]["template"]["metadata"]
        return meta["annotations"]["dataprotection.bsls.dev/repository-digest"]

    # kopia: "you must disconnect and re-connect all other Kopia clients" after
    # set-parameters changed the retention.
    none = server_digest(None)
    governance = server_digest({"mode": "GOVERNANCE", "periodDays": 30})
    assert len({none, governance, server_digest({"mode": "GOVERNANCE", "periodDays": 60})}) == 3
    assert server_digest({"mode": "GOVERNANCE", "periodDays": 30}) == governance
