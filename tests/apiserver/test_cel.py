"""What the API server refuses in a BSLR (apis/bslr/definition.yaml's CEL rules).

Each case applies a BSLR (server-side apply: fields left out are removed), then an edit,
and asserts the API server's 422 and the rule's message: what kopia fixes when it
creates a repository cannot change, and object lock cannot be dropped.
"""

from __future__ import annotations

import pytest

from tests.apiserver.conftest import ApiError, example

NS = "team-e"


@pytest.fixture(scope="module")
def tenant(kube) -> str:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return NS


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            {"format": {"hash": "BLAKE3-256"}}, {"format": {"hash": "HMAC-SHA256"}}, id="changed"
        ),
        pytest.param({}, {"format": {"encryption": "CHACHA20-POLY1305-HMAC-SHA256"}}, id="added"),
        pytest.param({"format": {"errorCorrection": {"overheadPercent": 2}}}, {}, id="removed"),
    ],
)
def test_the_format_cannot_change_after_creation(request, kube, tenant, before, after) -> None:
    name = f"fixed-{request.node.callspec.id}"
    first = example("bslr.yaml", tenant)
    first["metadata"]["name"] = name
    first["spec"].update(before)
    kube.apply(first)
    changed = example("bslr.yaml", tenant)
    changed["metadata"]["name"] = name
    changed["spec"].update(after)
    with pytest.raises(ApiError) as refused:
        kube.apply(changed)
    assert refused.value.status == 422, refused.value
    assert "spec.format cannot change after creation" in str(refused.value)


def test_the_policy_and_the_schedule_can_change(kube, tenant) -> None:
    bslr = example("bslr.yaml", tenant)
    bslr["metadata"]["name"] = "changeable"
    kube.apply(bslr)
    bslr["spec"]["policy"] = {"compression": "zstd", "ignore": ["*.tmp"]}
    bslr["spec"]["health"] = {"validationIntervalMinutes": 15}
    applied = kube.apply(bslr)
    assert applied["spec"]["policy"]["retention"]["keepLatest"] == 10  # the schema's default
    assert applied["spec"]["maintenance"]["fullIntervalHours"] == 24


def test_object_lock_is_refused_off_s3_too_short_and_cannot_be_removed(kube, tenant) -> None:
    fs = example("bslr.yaml", tenant)
    fs["metadata"]["name"] = "lock-on-fs"
    fs["spec"]["objectLock"] = {"mode": "GOVERNANCE", "periodDays": 30}
    with pytest.raises(ApiError) as refused:
        kube.apply(fs)
    assert "spec.objectLock needs the s3 backend" in str(refused.value)

    s3 = example("bslr-s3.yaml", tenant)
    s3["metadata"]["name"] = "locked"
    s3["spec"]["maintenance"] = {"fullIntervalHours": 48}
    s3["spec"]["objectLock"] = {"mode": "COMPLIANCE", "periodDays": 2}
    with pytest.raises(ApiError) as refused:
        kube.apply(s3)
    assert "must be at least a day longer" in str(refused.value)
    s3["spec"]["objectLock"]["periodDays"] = 30
    kube.apply(s3)
    unlocked = example("bslr-s3.yaml", tenant)
    unlocked["metadata"]["name"] = "locked"
    with pytest.raises(ApiError) as refused:
        kube.apply(unlocked)
    assert "spec.objectLock cannot be removed once set" in str(refused.value)


def test_a_cloud_identity_and_static_keys_are_refused_together(kube, tenant) -> None:
    both = example("bslr-s3.yaml", tenant)
    both["metadata"]["name"] = "both"
    both["spec"]["cloudIdentity"] = {
        "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "x"}
    }
    with pytest.raises(ApiError) as refused:
        kube.apply(both)
    assert "spec.cloudIdentity replaces the backend's credentialsSecretRef" in str(refused.value)
    irsa = example("bslr-s3-irsa.yaml", tenant)
    kube.apply(irsa)  # accepted as shipped
    gcs = example("bslr-gcs.yaml", tenant)
    gcs["metadata"]["name"] = "gcs-without-keys"
    del gcs["spec"]["backend"]["gcs"]["credentialsSecretRef"]
    with pytest.raises(ApiError) as refused:
        kube.apply(gcs)
    assert "need credentialsSecretRef unless spec.cloudIdentity is set" in str(refused.value)
