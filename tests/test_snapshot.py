"""The read phase: a request becomes typed values, and untrusted data never crashes it."""

from __future__ import annotations

import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function.conditions import JobProgress
from function.models import BSLSSpec
from function.snapshot import Observed, RepositorySnapshot, ServerSnapshot, read
from function.tenancy import InputError
from tests import helpers as h


def test_a_server_request_reads_into_a_typed_snapshot() -> None:
    s = read(h.request(h.example("bsls.yaml")))
    assert isinstance(s, ServerSnapshot)
    assert isinstance(s.spec, BSLSSpec)
    assert (s.xr.name, s.xr.namespace, s.xr.tenant, s.xr.namespaced) == (
        "vm-backups",
        "team-a",
        "vm-backups",
        True,
    )
    assert [u.identity for u in s.spec.users] == ["alice@vm-alice", "bob@vm-bob"]
    assert isinstance(read(h.request(h.example("bslr.yaml"))), RepositorySnapshot)


def test_an_invalid_spec_fails_the_read_naming_the_kind_and_the_field() -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["users"][0]["hostname"] = "VM"
    with pytest.raises(InputError, match=r"invalid BackupStorageLocationServer: spec\.users\[0\]"):
        read(h.request(xr))


def test_a_legacy_xr_takes_its_name_and_namespace_from_its_claim() -> None:
    s = read(h.request(h.example("legacy/xbsls.yaml"), inp={"compose": "server"}))
    assert (s.xr.namespace, s.xr.tenant, s.xr.namespaced) == ("team-a", "vm-backups", False)


def test_wrong_types_in_observed_objects_read_as_absent() -> None:
    weird = {
        "kind": 7,
        "metadata": ["not", "a", "map"],
        "data": {"password": 12, "ok": "b2s="},
        "status": {"conditions": "Complete"},
    }
    o = Observed({"x": fnv1.Resource(resource=resource.dict_to_struct(weird))})
    assert o.name("x") == ""
    assert o.kind("x") == ""
    assert o.annotations("x") == {}
    assert o.secret_text("x", "password") is None
    assert o.secret("x", "ok", "password", "missing") == (b"ok", b"", b"")
    assert o.job("x", "") is JobProgress.RUNNING
    assert not o.available("x")
    assert o.secret("nothing", "password") is None


def test_a_kept_object_loses_its_status_and_server_metadata() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "uid": "u", "resourceVersion": "9", "labels": {"a": "b"}},
        "spec": {"x": 1},
        "status": h.JOB_COMPLETE,
    }
    o = Observed({"j": fnv1.Resource(resource=resource.dict_to_struct(job))})
    assert o.job("j", "j") is JobProgress.COMPLETE
    assert o.job("j", "another-name") is JobProgress.RUNNING
    kept = resource.struct_to_dict(o.kept("j"))
    assert kept == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "labels": {"a": "b"}},
        "spec": {"x": 1.0},
    }


def test_a_required_object_from_another_namespace_is_never_used() -> None:
    foreign = {**h.ready_bslr(), "metadata": {"name": "team-a-repo", "namespace": "team-b"}}
    req = h.request(h.example("bsls.yaml"), required={"repository": [foreign]})
    s = read(req)
    assert s.required.resolved("repository")
    assert s.required.repository("repository") is None
