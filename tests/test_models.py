"""The function input's defaults and rules (models.py)."""

from __future__ import annotations

import pytest

from function.models import FunctionInput


def test_input_defaults_are_usable() -> None:
    inp = FunctionInput.model_validate({})
    assert inp.kopiaImage == "kopia/kopia:0.23.1"
    assert inp.servicePort == 51515
    assert inp.renew_before_days == 121
    assert inp.repositoryKind == "BackupStorageLocationRepository"


def test_renewal_window_must_fit_the_lifetime() -> None:
    with pytest.raises(ValueError, match="must be shorter"):
        FunctionInput.model_validate({"certificateValidityDays": 10, "renewBeforeDays": 10})


def test_an_image_pinned_by_digest_reaches_every_pod() -> None:
    from tests import helpers as h

    pinned = "registry.example.com/kopia/kopia:0.23.1@sha256:" + "0" * 64
    for example in ("bsls.yaml", "bslr.yaml"):
        rsp = h.reconcile(h.example(example), inp={"kopiaImage": pinned})
        templates = [
            o["spec"]["template"]["spec"]
            for o in h.desired(rsp).values()
            if o["kind"] in ("Deployment", "Job")
        ]
        assert templates
        for spec in templates:
            assert spec["containers"][0]["image"] == pinned
