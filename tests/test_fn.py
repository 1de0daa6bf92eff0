"""The orchestrator, reconcile by reconcile, as Crossplane would drive it."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import re

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from function.models import MAX_USERS
from tests import helpers as h

NS = "team-a"


def b64d(value: str) -> bytes:
    return base64.b64decode(value)


def bsls(**spec: object) -> dict:
    xr = h.example("bsls.yaml")
    xr["spec"].update(spec)
    return xr


@pytest.fixture(scope="module")
def first() -> fnv1.RunFunctionResponse:
    return h.reconcile(h.example("bsls.yaml"))


@pytest.fixture(scope="module")
def settled(first: fnv1.RunFunctionResponse) -> fnv1.RunFunctionResponse:
    """A reconcile where everything composed before is observed and healthy."""
    observed = h.as_observed(
        first, server=h.DEPLOYMENT_AVAILABLE, **{h.key(first, "user-sync"): h.JOB_COMPLETE}
    )
    return h.reconcile(h.example("bsls.yaml"), observed=observed)


# ---------------------------------------------------------------------------- first reconcile


def test_composes_everything_the_api_promises(first: fnv1.RunFunctionResponse) -> None:
    assert h.fatal(first) == []
    job = h.key(first, "user-sync")
    assert job == "user-sync-" + h.sync_job(first)["metadata"]["name"][-10:]
    assert sorted(h.desired(first)) == sorted(
        [
            "server",
            "service",
            "network-policy",
            "tls-ca",
            "tls-server",
            "control",
            "scripts",
            "ca-bundle",
            job,
            "user-alice@vm-alice",
            "user-bob@vm-bob",
            *h.FRESHNESS_KEYS,
        ]
    )
    for obj in h.desired(first).values():
        assert obj["metadata"]["namespace"] == NS


def test_status_publishes_endpoint_and_the_ca_fingerprint(first: fnv1.RunFunctionResponse) -> None:
    status = h.xr_status(first)
    d = h.desired(first)
    assert status["endpoint"] == "https://vm-backups.team-a.svc:51515"
    ca = x509.load_pem_x509_certificate(b64d(d["tls-ca"]["data"]["ca.crt"]))
    served = x509.load_pem_x509_certificates(b64d(d["tls-server"]["data"]["tls.crt"]))
    expected = hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert status["tlsFingerprint"] == expected
    assert served[-1] == ca
    assert status["certificateNotAfter"].endswith("Z")
    assert status["userCount"] == 0  # nobody is in sync until a sync Job completed
    assert status["tlsFingerprintShort"] == status["tlsFingerprint"][:12] + "..."
    assert status["users"] == [
        {
            "identity": "alice@vm-alice",
            "credentialsSecretName": d["user-alice@vm-alice"]["metadata"]["name"],
            "access": "full",
        },
        {
            "identity": "bob@vm-bob",
            "credentialsSecretName": d["user-bob@vm-bob"]["metadata"]["name"],
            "access": "full",
        },
    ]
    assert re.fullmatch(
        r"vm-backups-alice-vm-alice-[0-9a-f]{12}", status["users"][0]["credentialsSecretName"]
    )


def test_every_requirement_is_pinned_to_the_xr_namespace(first: fnv1.RunFunctionResponse) -> None:
    reqs = first.requirements.resources
    # "adoptable": nothing is observed yet, so what a deleted server left is looked for.
    assert set(reqs) == {"repository", "secret-alice-kopia", "servers", "adoptable"}
    for sel in reqs.values():
        assert sel.namespace == NS
    assert reqs["repository"].match_name == "team-a-repo"
    assert reqs["repository"].kind == "BackupStorageLocationRepository"


def test_first_call_only_asks_for_requirements() -> None:
    rsp = h.FunctionRunner(clock=h.Clock()).run(h.request(h.example("bsls.yaml")))
    assert h.fatal(rsp) == []
    assert h.desired(rsp) == {}
    assert "repository" in rsp.requirements.resources


def test_nothing_is_ready_before_it_is_observed(first: fnv1.RunFunctionResponse) -> None:
    assert h.ready(first) == set()


# ---------------------------------------------------------------------------- steady state


def test_the_users_column_counts_users_in_sync(settled) -> None:
    assert h.xr_status(settled)["userCount"] == 2


def test_a_user_change_in_flight_keeps_the_last_sync_and_the_xr_ready(settled) -> None:
    """Ready says whether the server serves; UsersSynced says a change is in flight."""
    observed = h.as_observed(
        settled, server=h.DEPLOYMENT_AVAILABLE, **{h.key(settled, "user-sync"): h.JOB_COMPLETE}
    )
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = [*xr["spec"]["users"], {"username": "carol", "hostname": "vm-carol"}]
    rsp = h.reconcile(xr, observed=observed)
    old, new = h.key(settled, "user-sync"), h.key(rsp, "user-sync")
    assert old != new
    sync_keys = sorted(k for k in h.desired(rsp) if k.startswith("user-sync-"))
    assert sync_keys == sorted([old, new])  # the completed one stays in force meanwhile
    assert h.conditions(rsp)["UsersSynced"].reason == "Syncing"
    assert h.xr_status(rsp)["userCount"] == 2
    assert rsp.desired.composite.ready != fnv1.READY_FALSE
    # Once the new Job is observed (still running), it counts as ready: nothing flaps.
    observed = h.as_observed(rsp, server=h.DEPLOYMENT_AVAILABLE, **{old: h.JOB_COMPLETE})
    running = h.reconcile(xr, observed=observed)
    assert set(h.desired(running)) == set(h.ready(running))
    # When it completes, the old one goes.
    observed = h.as_observed(
        running, server=h.DEPLOYMENT_AVAILABLE, **{old: h.JOB_COMPLETE, new: h.JOB_COMPLETE}
    )
    done = h.reconcile(xr, observed=observed)
    assert [k for k in h.desired(done) if k.startswith("user-sync-")] == [new]
    assert h.xr_status(done)["userCount"] == 3
    assert h.conditions(done)["UsersSynced"].reason == "Synced"


def test_second_reconcile_changes_nothing(first, settled) -> None:
    before, after = h.desired(first), h.desired(settled)
    assert before == after
    assert h.xr_status(first)["tlsFingerprint"] == h.xr_status(settled)["tlsFingerprint"]


def test_same_request_gives_the_same_response_bytes(first) -> None:
    observed = h.as_observed(first)
    a = h.reconcile(h.example("bsls.yaml"), observed=observed)
    b = h.reconcile(h.example("bsls.yaml"), observed=observed)
    assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def test_settled_server_is_ready(settled) -> None:
    assert h.ready(settled) == set(h.desired(settled))
    conds = h.conditions(settled)
    assert {t: c.status for t, c in conds.items()} == {
        "RepositoryReady": fnv1.STATUS_CONDITION_TRUE,
        "TLSReady": fnv1.STATUS_CONDITION_TRUE,
        "UsersSynced": fnv1.STATUS_CONDITION_TRUE,
        "ServerAvailable": fnv1.STATUS_CONDITION_TRUE,
        # Nothing reported yet: the freshness CronJob has not run.
        "BackupsFresh": fnv1.STATUS_CONDITION_UNKNOWN,
    }
    assert not [r for r in settled.results if r.severity != fnv1.SEVERITY_NORMAL]


def test_generated_password_survives_reconciles(first, settled) -> None:
    key = "user-bob@vm-bob"
    assert h.desired(first)[key]["data"]["password"] == h.desired(settled)[key]["data"]["password"]
    password = b64d(h.desired(first)[key]["data"]["password"]).decode()
    assert len(password) >= 32


def test_credentials_bundle_holds_what_a_vm_owner_needs(first) -> None:
    d = h.desired(first)
    data = {k: b64d(v).decode() for k, v in d["user-alice@vm-alice"]["data"].items()}
    fp = h.xr_status(first)["tlsFingerprint"]
    assert data["password"] == "alice-correct-horse-battery"
    assert data["identity"] == "alice@vm-alice"
    assert data["endpoint"] == "https://vm-backups.team-a.svc:51515"
    assert data["fingerprint"] == fp
    # The CA clients trust: the one in tls-ca, as in the public CA bundle.
    assert data["ca.crt"] == b64d(d["tls-ca"]["data"]["ca.crt"]).decode()
    assert data["ca.crt"] == d["ca-bundle"]["data"]["ca.crt"]
    linux, windows = data["connect-linux.sh"], data["connect-windows.ps1"]
    # Verified TLS: no fingerprint on any command line; the scripts read the CA, the
    # endpoint, the identity and the password from the bundle's own files, so they are
    # the same for every user.
    for script in (linux, windows):
        assert "--server-cert-fingerprint" not in script
        assert data["password"] not in script
        assert "ca.crt" in script
    assert "SSL_CERT_FILE" in linux
    assert "\r\n" in windows
    assert "Cert:\\CurrentUser\\Root" in windows
    bob = {k: b64d(v).decode() for k, v in d["user-bob@vm-bob"]["data"].items()}
    assert (bob["connect-linux.sh"], bob["connect-windows.ps1"]) == (linux, windows)
    assert not {"repository", "AWS_ACCESS_KEY_ID"} & set(data)


# ---------------------------------------------------------------------------- changes


def test_password_change_reissues_only_the_sync_job(first) -> None:
    pool = h.required_pool()
    secret = next(o for o in pool if o["metadata"]["name"] == "alice-kopia")
    secret["data"]["password"] = base64.b64encode(b"a-brand-new-password").decode()
    rsp = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(first), pool=pool)
    before, after = h.desired(first), h.desired(rsp)
    changed = {k for k in before if before.get(k) != after.get(k)} | set(after) - set(before)
    old_job, new_job = h.key(first, "user-sync"), h.key(rsp, "user-sync")
    assert old_job != new_job
    assert changed == {old_job, new_job, "user-alice@vm-alice"}
    assert h.xr_status(rsp)["tlsFingerprint"] == h.xr_status(first)["tlsFingerprint"]


def test_removing_a_user_drops_its_secret_and_reruns_the_sync(first) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["users"] = xr["spec"]["users"][:1]
    rsp = h.reconcile(xr, observed=h.as_observed(first))
    d = h.desired(rsp)
    assert "user-bob@vm-bob" not in d
    assert h.key(rsp, "user-sync") != h.key(first, "user-sync")
    sources = h.sync_job(rsp)["spec"]["template"]["spec"]["volumes"]
    users = next(v for v in sources if v["name"] == "users")["projected"]["sources"]
    assert [s["secret"]["items"][0]["path"] for s in users] == [
        "full/alice@vm-alice",
        "reader/freshness@bsls-system",
    ]
    assert d["server"] == h.desired(first)["server"]


def test_new_dns_name_renews_the_leaf_and_rolls_the_server(first) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"]["tls"]["additionalDNSNames"] = ["backup.other.example.com"]
    rsp = h.reconcile(xr, observed=h.as_observed(first))
    before, after = h.desired(first), h.desired(rsp)
    assert before["tls-ca"] == after["tls-ca"]
    assert before["tls-server"] != after["tls-server"]
    annotation = "dataprotection.bsls.dev/tls-digest"

    def digest(d: dict) -> str:
        return d["server"]["spec"]["template"]["metadata"]["annotations"][annotation]

    assert digest(before) != digest(after)
    assert h.conditions(rsp)["TLSReady"].reason == "Renewed"
    assert h.xr_status(rsp)["tlsFingerprint"] == h.xr_status(first)["tlsFingerprint"]


def test_lost_ca_is_regenerated_and_reported(first) -> None:
    observed = h.as_observed(first)
    del observed["tls-ca"]
    xr = h.with_status(h.example("bsls.yaml"), first)
    rsp = h.reconcile(xr, observed=observed)
    old = h.xr_status(first)["tlsFingerprint"]
    new = h.xr_status(rsp)["tlsFingerprint"]
    assert new != old
    cond = h.conditions(rsp)["TLSReady"]
    assert cond.reason == "CARegenerated"
    assert old in cond.message
    assert new in cond.message
    warnings = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_WARNING]
    assert [w for w in warnings if w.startswith("TLSReady")] == [
        f"TLSReady is True (CARegenerated): {cond.message}"
    ]
    # The next reconcile keeps the new CA, keeps saying so, and warns no more.
    again = h.reconcile(h.with_status(xr, rsp), observed=h.as_observed(rsp))
    assert h.xr_status(again)["tlsFingerprint"] == new
    assert h.conditions(again)["TLSReady"].reason == "CARegenerated"
    assert not [r for r in again.results if r.message.startswith("TLSReady")]


# ---------------------------------------------------------------------------- broken inputs


def test_missing_bslr_keeps_the_running_server(settled) -> None:
    pool = [o for o in h.required_pool() if o["kind"] != "BackupStorageLocationRepository"]
    observed = h.as_observed(settled, server=h.DEPLOYMENT_AVAILABLE)
    rsp = h.reconcile(h.example("bsls.yaml"), observed=observed, pool=pool)
    assert h.fatal(rsp) == []
    d = h.desired(rsp)
    assert d["server"]["spec"] == h.desired(settled)["server"]["spec"]
    assert h.sync_job(rsp) == h.sync_job(settled)
    cond = h.conditions(rsp)["RepositoryReady"]
    assert cond.status == fnv1.STATUS_CONDITION_FALSE
    assert cond.reason == "NotFound"
    assert "team-a/team-a-repo" in cond.message
    assert "spec.repositoryRef.name" in cond.message


def test_missing_bslr_starts_no_server_on_a_new_xr() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"), pool=h.required_pool()[1:])
    assert h.fatal(rsp) == []
    d = h.desired(rsp)
    assert "server" not in d
    assert not [k for k in d if k.startswith("user-sync")]
    assert rsp.desired.composite.ready == fnv1.READY_FALSE
    # The pin is known before the server runs: it can be handed out ahead.
    assert len(h.xr_status(rsp)["tlsFingerprint"]) == 64


def test_unready_bslr_is_reported_with_its_reason() -> None:
    pool = h.required_pool()
    bslr = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    bslr["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "message": "Job init is running"}
    ]
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    cond = h.conditions(rsp)["RepositoryReady"]
    assert cond.reason == "NotReady"
    assert "Job init is running" in cond.message
    assert "server" not in h.desired(rsp)


def test_invalid_bslr_is_reported_by_field() -> None:
    pool = h.required_pool()
    bslr = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    bslr["spec"]["backend"]["s3"] = {"bucket": "b-ok"}
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    cond = h.conditions(rsp)["RepositoryReady"]
    assert cond.reason == "InvalidRepository"
    assert "exactly one of s3, gcs, azure or filesystem" in cond.message


def test_bslr_of_the_same_name_in_another_namespace_is_never_used() -> None:
    pool = h.required_pool()
    for obj in pool:
        obj["metadata"]["namespace"] = "team-b"
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    assert h.conditions(rsp)["RepositoryReady"].reason == "NotFound"
    assert "server" not in h.desired(rsp)
    assert h.conditions(rsp)["UsersSynced"].reason == "UserInputInvalid"


def test_foreign_objects_slipped_into_required_resources_are_ignored() -> None:
    """`crossplane render` ignores selector namespaces; the function checks them itself."""
    pool = h.required_pool()
    foreign = [copy.deepcopy(o) for o in pool]
    for obj in foreign:
        obj["metadata"]["namespace"] = "team-b"
    runner = h.FunctionRunner(clock=h.Clock())
    xr = h.example("bsls.yaml")
    rsp = runner.run(h.request(xr))
    required = dict.fromkeys(rsp.requirements.resources, foreign)
    rsp = runner.run(h.request(xr, required=required))
    assert h.conditions(rsp)["RepositoryReady"].reason == "NotFound"


def test_missing_password_secret_keeps_the_last_good_sync(settled) -> None:
    pool = [o for o in h.required_pool() if o["kind"] != "Secret"]
    observed = h.as_observed(settled, **{h.key(settled, "user-sync"): h.JOB_COMPLETE})
    rsp = h.reconcile(h.example("bsls.yaml"), observed=observed, pool=pool)
    d = h.desired(rsp)
    assert h.fatal(rsp) == []
    assert h.key(rsp, "user-sync") == h.key(settled, "user-sync")
    assert d["user-alice@vm-alice"] == h.desired(settled)["user-alice@vm-alice"]
    cond = h.conditions(rsp)["UsersSynced"]
    assert cond.status == fnv1.STATUS_CONDITION_FALSE
    assert "spec.users[0] (alice@vm-alice)" in cond.message
    assert "alice-kopia" in cond.message
    assert "last good sync" in cond.message


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"password": base64.b64encode(b" padded ").decode()}, "white space"),
        ({"other": base64.b64encode(b"x").decode()}, "has no key 'password'"),
        ({"password": "***not base64***"}, "not valid base64"),
        ({"password": ""}, "is empty"),
    ],
)
def test_unusable_password_is_refused_precisely(data: dict, problem: str) -> None:
    pool = h.required_pool()
    secret = next(o for o in pool if o["metadata"]["name"] == "alice-kopia")
    secret["data"] = data
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    cond = h.conditions(rsp)["UsersSynced"]
    assert problem in cond.message
    assert not [k for k in h.desired(rsp) if k.startswith("user-sync")]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"repositoryRef": {}}, "spec.repositoryRef.name: is required"),
        ({"users": [{"username": "Alice", "hostname": "vm"}]}, "spec.users[0].username"),
        ({"users": [{"username": "a", "hostname": "bsls-system"}]}, "reserved"),
        ({"users": [{"username": "a", "hostname": "h"}] * 2}, "repeats the identity 'a@h'"),
        ({"tls": {"additionalIPAddresses": ["300.1.1.1"]}}, "spec.tls.additionalIPAddresses"),
        ({"service": {"port": 70000}}, "spec.service.port"),
        ({"servr": {}}, "spec.servr: is not a known field"),
        ({"users": "alice"}, "spec.users"),
    ],
)
def test_invalid_spec_is_fatal_and_names_the_field(spec: dict, field: str) -> None:
    rsp = h.reconcile(bsls(**spec))
    messages = h.fatal(rsp)
    assert len(messages) == 1
    assert field in messages[0]
    assert h.desired(rsp) == {}


def test_invalid_function_input_is_fatal() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"), inp={"servicePort": "http", "kopiaImage": "a b"})
    [message] = h.fatal(rsp)
    assert "input.servicePort" in message
    assert "input.kopiaImage" in message


def test_control_username_that_a_tenant_could_take_is_refused() -> None:
    rsp = h.reconcile(h.example("bsls.yaml"), inp={"controlUsername": "admin@host"})
    assert "tenant identity" in h.fatal(rsp)[0]


# ------------------------------------------------------------ one server per repository


def _server_named(name: str, created: str) -> dict:
    xr = h.example("bsls.yaml")
    xr["metadata"].update(name=name, creationTimestamp=created)
    return xr


def test_second_server_on_the_same_repository_is_refused() -> None:
    older = _server_named("first", "2026-01-01T00:00:00Z")
    newer = _server_named("second", "2026-02-01T00:00:00Z")
    pool = [*h.required_pool(), older, newer]
    rsp = h.reconcile(newer, pool=pool)
    cond = h.conditions(rsp)["RepositoryReady"]
    assert cond.reason == "RepositoryInUse"
    assert "team-a/first" in cond.message
    assert "server" not in h.desired(rsp)
    assert h.conditions(h.reconcile(older, pool=pool))["RepositoryReady"].reason == "Available"


# ---------------------------------------------------------------------------- bring your own TLS


@pytest.fixture(scope="module")
def brought_secret(first) -> dict:
    d = h.desired(first)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "my-cert", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": dict(d["tls-server"]["data"]),
    }


def test_brought_certificate_is_mounted_as_is_and_pins_its_ca(first, brought_secret) -> None:
    xr = bsls(tls={"secretRef": {"name": "my-cert"}})
    rsp = h.reconcile(xr, pool=[*h.required_pool(), brought_secret])
    d = h.desired(rsp)
    assert "tls-ca" not in d
    assert "tls-server" not in d
    volumes = d["server"]["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in volumes if v["name"] == "tls")["secret"]["secretName"] == "my-cert"
    assert h.xr_status(rsp)["tlsFingerprint"] == h.xr_status(first)["tlsFingerprint"]
    assert h.conditions(rsp)["TLSReady"].reason == "Provided"
    assert rsp.requirements.resources["tls-secret"].namespace == NS


def test_brought_certificate_without_ca_trusts_the_end_of_its_chain(brought_secret) -> None:
    secret = copy.deepcopy(brought_secret)
    del secret["data"]["ca.crt"]
    rsp = h.reconcile(
        bsls(tls={"secretRef": {"name": "my-cert"}}), pool=[*h.required_pool(), secret]
    )
    last = x509.load_pem_x509_certificates(b64d(secret["data"]["tls.crt"]))[-1]
    assert h.xr_status(rsp)["tlsFingerprint"] == last.fingerprint(hashes.SHA256()).hex()
    bundle = h.desired(rsp)["ca-bundle"]["data"]["ca.crt"].encode()
    assert x509.load_pem_x509_certificates(bundle) == [last]


def test_cert_manager_shaped_secret_is_served_with_its_ca_appended(brought_secret) -> None:
    """tls.crt = the leaf alone, ca.crt = the issuing CA, as cert-manager writes them."""
    secret = copy.deepcopy(brought_secret)
    chain = x509.load_pem_x509_certificates(b64d(secret["data"]["tls.crt"]))
    leaf_only = chain[0].public_bytes(serialization.Encoding.PEM)
    secret["data"]["tls.crt"] = base64.b64encode(leaf_only).decode()
    rsp = h.reconcile(
        bsls(tls={"secretRef": {"name": "my-cert"}}), pool=[*h.required_pool(), secret]
    )
    assert h.conditions(rsp)["TLSReady"].reason == "Provided"
    d = h.desired(rsp)
    container = d["server"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "BSLS_TLS_APPEND_CA", "value": "true"} in container["env"]
    creds = d["user-alice@vm-alice"]["data"]
    assert b64d(creds["ca.crt"]) == b64d(secret["data"]["ca.crt"])


def test_brought_certificate_must_name_the_endpoint(brought_secret) -> None:
    rsp = h.reconcile(
        bsls(tls={"secretRef": {"name": "my-cert"}}),
        pool=[*h.required_pool(), brought_secret],
        xr_name="elsewhere",
    )
    cond = h.conditions(rsp)["TLSReady"]
    assert cond.reason == "InvalidCertificate"
    assert "elsewhere.team-a.svc" in cond.message
    assert "server" not in h.desired(rsp)


def test_invalid_brought_certificate_keeps_the_running_server(settled, brought_secret) -> None:
    xr = bsls(tls={"secretRef": {"name": "my-cert"}})
    good = h.reconcile(xr, pool=[*h.required_pool(), brought_secret])
    xr["status"] = h.xr_status(good)
    broken = copy.deepcopy(brought_secret)
    broken["data"]["tls.key"] = base64.b64encode(b"garbage").decode()
    rsp = h.reconcile(xr, observed=h.as_observed(good), pool=[*h.required_pool(), broken])
    assert h.desired(rsp)["server"]["spec"] == h.desired(good)["server"]["spec"]
    cond = h.conditions(rsp)["TLSReady"]
    assert cond.reason == "InvalidCertificate"
    assert "Secret team-a/my-cert" in cond.message
    assert "tls.key" in cond.message
    assert h.xr_status(rsp)["tlsFingerprint"] == h.xr_status(good)["tlsFingerprint"]


def test_missing_brought_certificate_is_reported() -> None:
    rsp = h.reconcile(bsls(tls={"secretRef": {"name": "nope"}}))
    assert h.conditions(rsp)["TLSReady"].reason == "CertificateSecretNotFound"
    assert "server" not in h.desired(rsp)


# ---------------------------------------------------------------------------- claims


def test_legacy_xr_uses_the_claim_namespace() -> None:
    xr = h.example("bsls.yaml")
    del xr["metadata"]["namespace"]
    xr["metadata"]["labels"] = {"crossplane.io/claim-namespace": NS}
    rsp = h.reconcile(xr)
    assert h.fatal(rsp) == []
    reqs = dict(rsp.requirements.resources)
    servers = reqs.pop("servers")
    assert dict(servers.match_labels.labels) == {"crossplane.io/claim-namespace": NS}
    for sel in reqs.values():
        assert sel.namespace == NS
    assert {o["metadata"]["namespace"] for o in h.desired(rsp).values()} == {NS}


def test_legacy_xr_without_a_claim_is_refused() -> None:
    xr = h.example("bsls.yaml")
    del xr["metadata"]["namespace"]
    [message] = h.fatal(h.reconcile(xr))
    assert "claim" in message


# ---------------------------------------------------------------------------- secrets stay secret


def test_no_repository_secret_or_password_reaches_status_or_results(first) -> None:
    status = str(h.xr_status(first)) + str([c.message for c in first.conditions])
    status += str([r.message for r in first.results])
    assert "alice-correct-horse-battery" not in status
    for obj in h.desired(first).values():
        if obj["kind"] != "Secret":
            assert "alice-correct-horse-battery" not in str(obj)
    deployment = str(h.desired(first)["server"])
    assert "secretKeyRef" in deployment
    assert "KOPIA_SERVER_PASSWORD" not in deployment


# ---------------------------------------------------------------------------- upgrades


def _legacy(rsp: fnv1.RunFunctionResponse, identity: str, name: str) -> dict[str, dict]:
    """The observed state of a server composed before 0.2: the old key and name."""
    observed = h.as_observed(rsp)
    old = observed.pop(f"user-{identity}")
    old["metadata"] = {**old["metadata"], "name": name}
    observed[f"credentials-{identity}"] = old
    return observed


def test_upgrade_moves_credentials_to_new_names_and_keeps_generated_passwords(first) -> None:
    observed = _legacy(first, "bob@vm-bob", "vm-backups-bob-vm-bob")
    password = observed["credentials-bob@vm-bob"]["data"]["password"]
    rsp = h.reconcile(h.example("bsls.yaml"), observed=observed)
    d = h.desired(rsp)
    # The old key is gone (Crossplane deletes its Secret); the new one has the password.
    assert "credentials-bob@vm-bob" not in d
    assert d["user-bob@vm-bob"]["data"]["password"] == password
    assert d["user-bob@vm-bob"]["metadata"]["name"] != "vm-backups-bob-vm-bob"


def test_upgrade_of_look_alike_identities_gives_each_its_own_password() -> None:
    users = [{"username": "a-b", "hostname": "c"}, {"username": "a", "hostname": "b-c"}]
    xr = bsls(users=users)
    before = h.reconcile(xr)
    # Before 0.2 both were "vm-backups-a-b-c": one Secret, written last for a@b-c.
    observed = _legacy(before, "a@b-c", "vm-backups-a-b-c")
    del observed["user-a-b@c"]
    shared = observed["credentials-a@b-c"]["data"]["password"]
    rsp = h.reconcile(xr, observed=observed)
    d = h.desired(rsp)
    assert d["user-a@b-c"]["data"]["password"] == shared
    assert d["user-a-b@c"]["data"]["password"] != shared
    assert d["user-a@b-c"]["metadata"]["name"] != d["user-a-b@c"]["metadata"]["name"]


def test_upgrade_keeps_an_old_secret_whose_password_cannot_be_read_yet(first) -> None:
    observed = _legacy(first, "alice@vm-alice", "vm-backups-alice-vm-alice")
    pool = [o for o in h.required_pool() if o["metadata"]["name"] != "alice-kopia"]
    rsp = h.reconcile(h.example("bsls.yaml"), observed=observed, pool=pool)
    d = h.desired(rsp)
    assert d["credentials-alice@vm-alice"]["metadata"]["name"] == "vm-backups-alice-vm-alice"
    assert "user-alice@vm-alice" not in d


@pytest.mark.parametrize(
    "users",
    [
        [{"username": "tls", "hostname": "ca"}, {"username": "control", "hostname": "x"}],
        [{"username": "a-b", "hostname": "c"}, {"username": "a", "hostname": "b-c"}],
        [{"username": "scripts", "hostname": "x"}, {"username": "x", "hostname": "tls"}],
    ],
)
def test_no_two_composed_objects_of_a_kind_share_a_name(users) -> None:
    rsp = h.reconcile(bsls(users=users))
    seen = [(o["kind"], o["metadata"]["name"]) for o in h.desired(rsp).values()]
    assert len(seen) == len(set(seen)), seen


def test_a_bslr_and_a_bsls_of_one_name_share_no_object() -> None:
    server = h.reconcile(bsls(), xr_name="same")
    repository = h.reconcile(h.example("bslr.yaml"), xr_name="same")
    ours = {(o["kind"], o["metadata"]["name"]) for o in h.desired(server).values()}
    theirs = {(o["kind"], o["metadata"]["name"]) for o in h.desired(repository).values()}
    assert theirs
    assert not ours & theirs, ours & theirs


# ---------------------------------------------------------------------------- repositories


def test_bslr_composes_an_init_job_and_reports_progress() -> None:
    rsp = h.reconcile(h.example("bslr.yaml"))
    assert h.fatal(rsp) == []
    d = h.desired(rsp)
    init = h.key(rsp, "repository-init")
    assert sorted(d) == sorted(["network-policy", init, "repository-scripts"])
    assert "ingress" not in d["network-policy"]["spec"]  # no rule: admits nothing
    status = h.xr_status(rsp)
    assert status["backend"] == "filesystem"
    assert status["location"] == "pvc://team-a-backups/repository"
    assert status["passwordSecretRef"] == {"name": "team-a-repo-password", "key": "password"}
    assert "settings" not in status  # nothing applied yet
    assert "lastValidationTime" not in status["health"]
    assert h.conditions(rsp)["Initialized"].reason == "Initializing"
    assert h.conditions(rsp)["RepositoryHealthy"].reason == "ValidationPending"
    assert rsp.desired.composite.ready == fnv1.READY_FALSE
    done = h.reconcile(
        h.example("bslr.yaml"), observed=h.as_observed(rsp, **{init: h.JOB_COMPLETE})
    )
    assert {"network-policy", init, "repository-scripts"} <= h.ready(done)
    assert h.conditions(done)["Initialized"].status == fnv1.STATUS_CONDITION_TRUE
    assert done.desired.composite.ready == fnv1.READY_TRUE
    assert h.xr_status(done)["settings"]["format"]["hash"] == "BLAKE2B-256-128"
    # Once initialised, the first check runs at once.
    assert h.key(done, "repository-check")
    failed = h.reconcile(
        h.example("bslr.yaml"), observed=h.as_observed(rsp, **{init: h.JOB_FAILED})
    )
    cond = h.conditions(failed)["Initialized"]
    assert cond.reason == "InitFailed"
    assert "kubectl -n team-a logs job/" in cond.message


def test_bslr_change_reruns_the_init_job_and_rolls_the_server(first) -> None:
    bslr = h.example("bslr.yaml")
    before = h.key(h.reconcile(bslr), "repository-init")
    bslr["spec"]["backend"]["filesystem"]["path"] = "/data"
    after = h.key(h.reconcile(bslr), "repository-init")
    assert before != after
    pool = h.required_pool()
    repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    repo["spec"]["backend"]["filesystem"]["path"] = "/data"
    rsp = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(first), pool=pool)
    old, new = h.desired(first), h.desired(rsp)
    key = "dataprotection.bsls.dev/repository-digest"
    assert (
        old["server"]["spec"]["template"]["metadata"]["annotations"][key]
        != new["server"]["spec"]["template"]["metadata"]["annotations"][key]
    )
    assert h.key(first, "user-sync") != h.key(rsp, "user-sync")


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({}, "set exactly one of s3, gcs, azure or filesystem (got none)"),
        (
            {"s3": {"bucket": "abc"}, "filesystem": {"persistentVolumeClaim": {"claimName": "p"}}},
            "(got s3, filesystem)",
        ),
        ({"s3": {"bucket": "abc", "endpoint": "ftp://minio:9000"}}, "spec.backend.s3.endpoint"),
        ({"s3": {"bucket": "abc", "prefix": "team-a"}}, "s3.prefix 'team-a' must end with '/'"),
        ({"nfs": {}}, "spec.backend.nfs: is not a known field"),
    ],
)
def test_invalid_bslr_is_fatal_per_field(backend: dict, message: str) -> None:
    bslr = h.example("bslr.yaml")
    bslr["spec"]["backend"] = backend
    [fatal] = h.fatal(h.reconcile(bslr))
    assert message in fatal


def test_fields_crossplane_writes_into_the_spec_are_not_user_errors() -> None:
    xr = bsls(crossplane={"compositionRef": {"name": "c"}, "resourceRefs": []})
    assert h.fatal(h.reconcile(xr)) == []
    pool = h.required_pool()
    repo = next(o for o in pool if o["kind"] == "BackupStorageLocationRepository")
    repo["spec"]["crossplane"] = {"compositionRef": {"name": "c"}}
    rsp = h.reconcile(h.example("bsls.yaml"), pool=pool)
    assert h.conditions(rsp)["RepositoryReady"].reason == "Available"


def test_metrics_are_off_unless_asked_for(first) -> None:
    d = h.desired(first)
    assert "pod-monitor" not in d
    [container] = d["server"]["spec"]["template"]["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == ["kopia"]


def test_metrics_endpoint_pod_monitor_and_scrape_rule() -> None:
    scrapers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    rsp = h.reconcile(bsls(metrics={"enabled": True, "podMonitor": True, "from": scrapers}))
    d = h.desired(rsp)
    [container] = d["server"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 51516, "protocol": "TCP"} in container["ports"]
    assert {"name": "BSLS_METRICS_ADDRESS", "value": ":51516"} in container["env"]
    assert d["pod-monitor"]["kind"] == "PodMonitor"
    assert d["pod-monitor"]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    rules = d["network-policy"]["spec"]["ingress"]
    assert rules[1] == {"ports": [{"port": 51516, "protocol": "TCP"}], "from": scrapers}
    assert [p["port"] for p in d["service"]["spec"]["ports"]] == [51515]


def test_pod_monitor_without_metrics_is_refused() -> None:
    [message] = h.fatal(h.reconcile(bsls(metrics={"podMonitor": True})))
    assert "spec.metrics" in message
    assert "enabled" in message


def test_results_mark_transitions_not_every_poll(first, settled) -> None:
    # The first reconcile of a new XR announces every condition once.
    assert {r.message.split(" ")[0] for r in first.results} == {
        "RepositoryReady",
        "TLSReady",
        "UsersSynced",
        "ServerAvailable",
        "BackupsFresh",
    }
    assert [r.severity for r in first.results if r.message.startswith("UsersSynced")] == [
        fnv1.SEVERITY_WARNING
    ]
    # Polling a settled XR says nothing more.
    observed = h.as_observed(
        settled, server=h.DEPLOYMENT_AVAILABLE, **{h.key(settled, "user-sync"): h.JOB_COMPLETE}
    )
    xr = h.with_status(h.example("bsls.yaml"), settled)
    quiet = h.reconcile(xr, observed=observed)
    assert list(quiet.results) == []
    # The server going away is one Warning.
    del observed["server"]
    changed = h.reconcile(xr, observed=observed)
    assert [(r.severity, r.message.split(" (")[0]) for r in changed.results] == [
        (fnv1.SEVERITY_WARNING, "ServerAvailable is False")
    ]


def test_a_renewed_leaf_keeps_saying_so(first) -> None:
    clock = h.Clock()
    clock.advance(days=300)
    renewed = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(first), clock=clock)
    cond = h.conditions(renewed)["TLSReady"]
    assert cond.reason == "Renewed"
    assert "because the serving certificate expires" in cond.message
    later = h.reconcile(h.example("bsls.yaml"), observed=h.as_observed(renewed), clock=clock)
    assert h.conditions(later)["TLSReady"].reason == "Renewed"
    assert h.desired(later)["tls-server"] == h.desired(renewed)["tls-server"]


def test_the_largest_server_fits_in_crossplanes_4_mib_answer() -> None:
    """The most users, with the longest identities, during a CA rollover (two CAs)."""
    users = [{"username": "u" * 60 + f"{i:04d}", "hostname": "h" * 128} for i in range(MAX_USERS)]
    xr = bsls(users=users)
    first = h.reconcile(xr)
    clock = h.Clock(h.NOW + datetime.timedelta(days=3650 - 400))
    rsp = h.reconcile(xr, observed=h.as_observed(first), clock=clock)
    assert h.conditions(rsp)["TLSReady"].reason == "CARolloverPending"
    assert len(h.desired(rsp)) == MAX_USERS + 15
    assert rsp.ByteSize() < 0.85 * 4 * 1024 * 1024


def ttl(rsp: fnv1.RunFunctionResponse) -> float:
    return rsp.meta.ttl.ToTimedelta().total_seconds()


def test_crossplane_calls_again_soon_while_anything_is_in_flight(first, settled) -> None:
    assert ttl(first) == 5  # the Deployment and the sync Job are not there yet
    assert ttl(settled) == 20  # everything holds: a password Secret's change waits 20 s
    rsp = h.reconcile(h.example("bsls.yaml"), pool=h.required_pool()[1:])
    assert h.conditions(rsp)["RepositoryReady"].reason == "NotFound"
    assert ttl(rsp) == 5  # the BSLR is not watched: look again soon
    inp = {"pollSeconds": 45, "pollInFlightSeconds": 2}
    assert ttl(h.reconcile(h.example("bsls.yaml"), inp=inp)) == 2


def test_a_repository_is_polled_soon_until_it_is_initialised() -> None:
    rsp = h.reconcile(h.example("bslr.yaml"))
    assert ttl(rsp) == 5
    init = h.key(rsp, "repository-init")
    done = h.reconcile(
        h.example("bslr.yaml"), observed=h.as_observed(rsp, **{init: h.JOB_COMPLETE})
    )
    assert ttl(done) == 20


def test_no_condition_type_is_one_crossplane_keeps_for_itself() -> None:
    """Crossplane v2.2.1 drops a function's condition whose type is a system type
    (crossplane-runtime apis/common/condition.go IsSystemConditionType: Ready, Synced,
    Healthy; apis/apiextensions/v1/conditions.go adds Responsive): it would never reach
    the XR. The node found this with a BSLR's check condition once called Healthy."""
    from function.conditions import REASONS

    assert not set(REASONS) & {"Ready", "Synced", "Healthy", "Responsive"}
