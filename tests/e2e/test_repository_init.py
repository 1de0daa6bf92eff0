"""The rendered repository-init Job against storage it cannot use: clear failures, no damage.

Each case runs the Job the function renders for a BSLR, as a cluster would, and asserts
what an app team reads: the Job fails, its log says why, the BSLR says InitFailed, and
existing data is untouched.
"""

from __future__ import annotations

import copy

import pytest

from tests import helpers
from tests.e2e.cluster import Cluster
from tests.e2e.composite import Composite
from tests.e2e.stack import succeeded, with_password
from tests.e2e.test_s3 import s3_endpoint  # noqa: F401 - the fixture

PASSWORD_SECRET = "team-a-repo-password"


def init(cluster: Cluster, bslr: dict, clock: helpers.Clock) -> tuple[Composite, list]:
    repository = Composite(cluster, bslr, clock)
    repository.reconcile()
    # Only this repository's Jobs: another one's periodic check may be due too.
    runs = [r for r in cluster.run_jobs() if r.name.startswith(f"{bslr['metadata']['name']}-")]
    repository.reconcile()
    return repository, runs


def test_wrong_password_for_existing_data_fails_without_touching_it(
    cluster: Cluster, clock: helpers.Clock, tenant_secrets: None
) -> None:
    del tenant_secrets
    first, runs = init(cluster, helpers.example("bslr.yaml"), clock)
    succeeded(runs)
    assert first.conditions["Initialized"][:2] == ("True", "Initialized")
    claim = cluster.claim("team-a", "team-a-backups")
    before = (claim / "kopia.repository.f").read_bytes()

    # A second repository on the same volume, whose Secret holds another password.
    secret = next(
        s for s in helpers.load("secrets.yaml") if s["metadata"]["name"] == PASSWORD_SECRET
    )
    other = with_password(secret, "not-the-password-that-made-it")
    other["metadata"]["name"] = "other-password"
    cluster.apply(other)
    bslr = copy.deepcopy(helpers.example("bslr.yaml"))
    bslr["metadata"]["name"] = "same-volume"
    bslr["spec"]["passwordSecretRef"]["name"] = "other-password"
    repository, [run] = init(cluster, bslr, clock)

    assert not run.succeeded
    assert "its password is not the one in passwordSecretRef" in run.logs
    status, reason, message = repository.conditions["Initialized"]
    assert (status, reason) == ("False", "InitFailed")
    assert f"logs job/{run.name}" in message
    assert (claim / "kopia.repository.f").read_bytes() == before


@pytest.mark.usefixtures("tenant_secrets")
def test_missing_bucket_says_so_then_heals_once_the_bucket_exists(
    cluster: Cluster,
    clock: helpers.Clock,
    s3_endpoint: str,  # noqa: F811
) -> None:
    import boto3

    bslr = helpers.example("bslr-s3.yaml")
    bslr["metadata"]["name"] = "no-bucket"
    s3 = bslr["spec"]["backend"]["s3"]
    s3["endpoint"] = s3_endpoint
    s3["bucket"] = "created-later"
    repository, [run] = init(cluster, bslr, clock)

    # kopia's own words are in the log; the BSLR names the cause, the fix and the retry.
    assert run.returncode == 11, run.logs
    assert "The specified bucket does not exist" in run.logs, run.logs
    status, reason, message = repository.conditions["Initialized"]
    assert (status, reason) == ("False", "InitFailed")
    assert "the bucket (or container) does not exist (exit code 11)" in message
    assert "create it" in message
    assert f"logs job/{run.name}" in message
    assert "Attempt 2 starts at" in message

    # Nothing changes before the back-off has passed: the failed Job stays, as it is.
    clock.advance(seconds=15)
    repository.reconcile()
    assert cluster.run_jobs() == []
    assert repository.conditions["Initialized"][1] == "InitFailed"
    assert repository.ttl == 15  # called again when the next attempt is due, not later

    keys = cluster.secret_data("team-a", s3["credentialsSecretRef"]["name"])
    assert keys is not None
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=s3["region"],
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"].decode(),
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"].decode(),
    ).create_bucket(Bucket="created-later")

    # With no change to the BSLR, the next attempt runs under a name of its own.
    clock.advance(seconds=16)
    repository.reconcile()
    [retry] = cluster.run_jobs()
    assert retry.name != run.name
    assert retry.succeeded, retry.logs
    assert cluster.get("Job", "team-a", run.name) is None  # the failed attempt is gone
    repository.reconcile()
    assert repository.conditions["Initialized"][:2] == ("True", "Initialized")
