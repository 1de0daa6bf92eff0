"""Planted markers: credentials never leak into composed objects, status, results or logs."""

from __future__ import annotations

import base64
import json

import pytest
from crossplane.function import resource

from tests import helpers as h

REPO = "REPO-PASSWORD-MARKER-7f3a"
S3_KEY = "S3-SECRET-KEY-MARKER-91bc"
ALICE = "ALICE-PASSWORD-MARKER-44d2"


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def planted_pool() -> list[dict]:
    """Every Secret the examples name, each holding a marker, all offered to the function."""

    def secret(name: str, **data: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "team-a"},
            "data": {k: b64(v) for k, v in data.items()},
        }

    return [
        h.ready_bslr(),
        secret("alice-kopia", password=ALICE),
        secret("team-a-repo-password", password=REPO),
        secret("team-a-s3-creds", AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_KEY),
    ]


def everything(rsp) -> dict[str, str]:
    """Each part of a response as text, by where it sits."""
    parts = {
        "status": json.dumps(h.xr_status(rsp)),
        "conditions": " ".join(c.message for c in rsp.conditions),
        "results": " ".join(r.message for r in rsp.results),
    }
    for key, obj in h.desired(rsp).items():
        text = json.dumps(obj)
        if obj["kind"] == "Secret":
            text += " " + " ".join(
                base64.b64decode(v).decode() for v in obj.get("data", {}).values()
            )
        parts[key] = text
    return parts


@pytest.mark.parametrize("example", ["bsls.yaml", "bslr-s3.yaml", "bslr.yaml"])
def test_markers_stay_where_they_belong(example: str, capsys: pytest.CaptureFixture) -> None:
    first = h.reconcile(h.example(example), pool=planted_pool())
    settled = h.reconcile(h.example(example), observed=h.as_observed(first), pool=planted_pool())
    logs = capsys.readouterr()
    for rsp in (first, settled):
        for where, text in everything(rsp).items():
            assert REPO not in text, where
            assert S3_KEY not in text, where
            if where != "user-alice@vm-alice":
                assert ALICE not in text, where
    for marker in (REPO, S3_KEY, ALICE):
        assert marker not in logs.out + logs.err


def test_repository_credentials_reach_pods_only_by_reference() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"), pool=planted_pool())
    for key in ("server", h.key(rsp, "user-sync")):
        pod = h.desired(rsp)[key]["spec"]["template"]["spec"]
        for container in pod["containers"]:
            env = {e["name"]: e for e in container["env"]}
            assert set(env["KOPIA_PASSWORD"]) == {"name", "valueFrom"}
            assert (
                env["KOPIA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "team-a-repo-password"
            )


def test_an_error_message_never_quotes_a_secret_value() -> None:
    pool = planted_pool()
    pool[1]["data"]["password"] = b64(f"  {ALICE}  ")  # refused: white space
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    assert "white space" in h.conditions(rsp)["UsersSynced"].message
    assert ALICE not in json.dumps(resource.struct_to_dict(rsp.desired.composite.resource))
    assert ALICE not in " ".join(c.message for c in rsp.conditions)
