"""The APIs and the function on a real Crossplane control plane (hack/cluster.py).

The team-a story runs in file order, one step per test, on module-scoped fixtures: the
repository, then the server, then its readiness, then a user removal and an invalid edit.
The cross-namespace and deletion cases use namespaces of their own.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cluster import flow
from tests.cluster.flow import BSLR, BSLS, GROUP_VERSION

TEAM = "team-a"
REPO = "team-a-repo"
SERVER = "vm-backups"
TLS_KEYS = ("tls-ca", "tls-server", "control")
T = 60  # seconds for anything Crossplane does after a change it watches
IDLE = 5  # seconds an idle XR is watched for reconciles nobody asked for

# --- fixtures: the team-a story --------------------------------------------------------------


@pytest.fixture(scope="module")
def apis(kube):
    """The XRDs and Compositions from apis/, applied."""
    applied = []
    for path in sorted(flow.APIS.glob("*/*.yaml")):
        for doc in flow.docs(path):
            applied.append(kube.apply(doc))
    return applied


def _xrds(apis: list[dict]) -> list[dict]:
    return [d for d in apis if d["kind"] == "CompositeResourceDefinition"]


@pytest.fixture(scope="module")
def established(kube, apis):
    """Every XRD Established and its kinds served."""
    for xrd in _xrds(apis):
        flow.wait(
            lambda xrd=xrd: flow.is_true(kube.reload(xrd), "Established"),
            T,
            f"XRD {xrd['metadata']['name']} to be Established",
        )
    for kind in (BSLR, BSLS):
        flow.wait(lambda kind=kind: _served(kube, kind), T, f"{kind} to be served")
    return apis


def _served(kube, kind: str) -> bool:
    try:
        kube.resource(GROUP_VERSION, kind)
    except Exception:
        return False
    return True


def tenant(kube, ns: str) -> None:
    """A namespace with the example Secrets and claim."""
    flow.namespace(kube, ns)
    for obj in [*flow.example("secrets.yaml", ns), *flow.example("claim.yaml", ns)]:
        kube.apply(obj)


def ready_repository(kube, ns: str) -> dict:
    """Create the example BSLR in `ns`, complete its init Job, wait until it is Ready."""
    bslr = kube.apply(flow.example("bslr.yaml", ns)[0])
    job = flow.wait(
        lambda: flow.one(flow.composed(kube, bslr), "repository-init"), T, "the repository-init Job"
    )
    assert job["kind"] == "Job"
    flow.complete_job(kube, job)
    return flow.wait(
        lambda: (o := kube.reload(bslr)) and flow.is_true(o, "Ready") and o,
        T,
        f"BSLR {ns}/{REPO} to be Ready",
    )


def server_composed(kube, bsls: dict) -> dict[str, dict]:
    """Wait until the BSLS composed its server Deployment; its composed objects."""

    def deployment() -> dict[str, dict] | None:
        flow.touch(kube, bsls)  # the BSLR is a required resource: not watched
        found = flow.composed(kube, bsls)
        return found if "server" in found else None

    return flow.wait(deployment, T, "the server Deployment", interval=1)


@pytest.fixture(scope="module")
def repository(kube, established):
    """team-a with its Secrets and the example BSLR, not yet initialised."""
    tenant(kube, TEAM)
    bslr = kube.apply(flow.example("bslr.yaml", TEAM)[0])
    job = flow.wait(
        lambda: flow.one(flow.composed(kube, bslr), "repository-init"), T, "the repository-init Job"
    )
    return bslr, job


@pytest.fixture(scope="module")
def server(kube, repository):
    """The example BSLS, created while its repository is still initialising."""
    bsls = kube.apply(flow.example("bsls.yaml", TEAM)[0])
    waiting = flow.wait(
        lambda: (
            (o := kube.reload(bsls))
            and flow.condition(o, "RepositoryReady").get("reason") == "NotReady"
            and o
        ),
        T,
        "the BSLS to report its repository as not ready",
    )
    return bsls, waiting


@pytest.fixture(scope="module")
def running(kube, repository, server):
    """The BSLR initialised and the BSLS's objects composed."""
    bslr, job = repository
    flow.complete_job(kube, job)
    flow.wait(lambda: flow.is_true(kube.reload(bslr), "Ready"), T, "the BSLR to be Ready")
    bsls = server[0]
    server_composed(kube, bsls)
    # Crossplane applies composed objects before it writes the XR's status: wait for a
    # status written by a reconcile that saw the repository Ready.
    xr = flow.wait(
        lambda: (
            (o := kube.reload(bsls))
            and flow.is_true(o, "RepositoryReady")
            and (o.get("status") or {}).get("tlsFingerprint")
            and o
        ),
        T,
        "RepositoryReady=True and status.tlsFingerprint",
    )
    return xr, flow.composed(kube, bsls)


@pytest.fixture(scope="module")
def ready(kube, running):
    """The server Deployment available and the user sync done: the BSLS is Ready."""
    xr, objects = running
    flow.make_available(kube, objects["server"])
    flow.complete_job(kube, flow.one(objects, "user-sync"))
    return flow.wait(
        lambda: (o := kube.reload(xr)) and flow.is_true(o, "Ready") and o,
        T,
        "the BSLS to be Ready",
    )


# --- 1. the APIs -----------------------------------------------------------------------------


def test_xrds_and_compositions_install_and_become_established(kube, established) -> None:
    kinds = {d["kind"] for d in established}
    assert kinds == {"Composition", "CompositeResourceDefinition"}
    for xrd in _xrds(established):
        assert flow.is_true(kube.reload(xrd), "Established")
    for comp in (d for d in established if d["kind"] == "Composition"):
        assert kube.reload(comp) is not None


# --- 2. repository first, then the server ----------------------------------------------------


def test_bslr_composes_an_init_job_and_is_not_ready_before_it_completes(kube, repository) -> None:
    bslr, job = repository
    assert job["metadata"]["namespace"] == TEAM
    assert not flow.is_true(kube.reload(bslr), "Ready")
    assert (kube.reload(bslr).get("status") or {}).get("backend") == "filesystem"


def test_bsls_waits_for_its_repository_without_composing_a_server(cluster, kube, server) -> None:
    bsls, xr = server
    assert "not Ready" in flow.condition(xr, "RepositoryReady")["message"]
    _reconcile(cluster, kube, bsls, 3)  # every object it does compose is observed by now
    assert "server" not in flow.composed(kube, bsls)


def test_a_bsls_waiting_for_its_repository_is_not_ready(cluster, kube, server) -> None:
    bsls = server[0]
    _reconcile(cluster, kube, bsls, 2)
    assert "server" not in flow.composed(kube, bsls)
    assert not flow.is_true(kube.reload(bsls), "Ready"), "Ready without a server"


def test_completed_init_job_makes_the_bslr_ready_and_the_bsls_composes_its_server(
    kube, running
) -> None:
    xr, objects = running
    for key in ("server", "service", "tls-ca", "tls-server", "control", "user-sync"):
        found = flow.one(objects, key)
        assert found, f"{key} missing from {sorted(objects)}"
        assert found["metadata"]["namespace"] == TEAM
    assert objects["server"]["kind"] == "Deployment"
    assert objects["service"]["kind"] == "Service"
    assert flow.one(objects, "user-sync")["kind"] == "Job"
    assert {"user-alice@vm-alice", "user-bob@vm-bob"} <= set(objects)

    status = xr["status"]
    assert status["endpoint"] == f"https://{SERVER}.{TEAM}.svc:51515"
    assert re.fullmatch(r"[0-9a-f]{64}", status["tlsFingerprint"])
    # The pin is the SHA-256 of the CA certificate the server serves.
    ca_pem = base64.b64decode(objects["tls-ca"]["data"]["ca.crt"])
    ca = x509.load_pem_x509_certificate(ca_pem)
    der = ca.public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == status["tlsFingerprint"]
    assert flow.is_true(xr, "RepositoryReady")


# --- 3. readiness and stability --------------------------------------------------------------


def test_available_deployment_and_completed_sync_make_the_bsls_ready(ready) -> None:
    for typ in ("RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable"):
        assert flow.is_true(ready, typ), flow.condition(ready, typ)


def _versions(objects: dict[str, dict]) -> dict[str, str]:
    return {k: o["metadata"]["resourceVersion"] for k, o in objects.items()}


def _reconcile(cluster, kube, xr: dict, times: int) -> None:
    """Make Crossplane reconcile `xr` `times` times, each seen by the function.

    Paced: Crossplane's watch circuit breaker (100 events, then 1 a second) would otherwise
    start dropping the events of the XR the test is touching.
    """
    name = xr["metadata"]["name"]
    for _ in range(times):
        target = cluster.function_calls(name) + 1
        flow.touch(kube, xr)
        try:
            flow.wait(
                lambda t=target: cluster.function_calls(name) >= t, T, f"a reconcile of {name}"
            )
        except AssertionError as e:
            # The usual cause: a composed object rewritten on every reconcile tripped
            # Crossplane's watch circuit breaker, which now drops this XR's events.
            responsive = flow.condition(kube.reload(xr), "Responsive")
            raise AssertionError(f"{e}; Responsive: {responsive.get('message')}") from None
        time.sleep(IDLE / 5)


def test_fingerprint_and_tls_secrets_never_change_across_reconciles(cluster, kube, ready) -> None:
    before = flow.composed(kube, ready)
    fingerprint = ready["status"]["tlsFingerprint"]
    _reconcile(cluster, kube, ready, 10)
    after = flow.composed(kube, ready)
    xr = kube.reload(ready)
    assert xr["status"]["tlsFingerprint"] == fingerprint
    assert {k: after[k]["metadata"]["resourceVersion"] for k in TLS_KEYS} == {
        k: before[k]["metadata"]["resourceVersion"] for k in TLS_KEYS
    }
    assert flow.is_true(xr, "Ready")


def test_no_composed_object_is_rewritten_and_nothing_reconciles_when_idle(
    cluster, kube, ready
) -> None:
    """An apply that never converges (an empty list the API server drops, a defaulted field)
    rewrites the object on every reconcile; with realtime compositions each write is a watch
    event that reconciles the XR again, until Crossplane's watch circuit breaker opens and
    the XR stops reacting to real changes (a completed Job, a new user) for minutes."""
    bslr = kube.get(GROUP_VERSION, BSLR, REPO, TEAM)
    for xr in (ready, bslr):
        name = xr["metadata"]["name"]
        before = _versions(flow.composed(kube, xr))
        _reconcile(cluster, kube, xr, 3)
        after = _versions(flow.composed(kube, xr))
        changed = sorted(k for k in before if after.get(k) != before[k])
        assert not changed, f"{xr['kind']} rewrote {changed} in reconciles that changed nothing"

        time.sleep(2)  # let the touch settle
        calls = cluster.function_calls(name)
        time.sleep(IDLE)
        extra = cluster.function_calls(name) - calls
        assert extra <= 2, f"{extra} calls for an idle {xr['kind']} {name} in {IDLE}s: a hot loop"


# --- 4. users ----------------------------------------------------------------------------------


def test_removing_a_user_reissues_the_sync_job_and_removes_its_credentials(kube, ready) -> None:
    before = flow.composed(kube, ready)
    old_job = flow.one(before, "user-sync")["metadata"]["name"]
    bob = before["user-bob@vm-bob"]["metadata"]["name"]

    spec = flow.example("bsls.yaml", TEAM)[0]
    spec["spec"]["users"] = [u for u in spec["spec"]["users"] if u["username"] != "bob"]
    kube.apply(spec)

    def settled() -> dict[str, dict] | None:
        now = flow.composed(kube, ready)
        new_job = (flow.one(now, "user-sync") or {}).get("metadata", {}).get("name")
        gone = "user-bob@vm-bob" not in now
        return now if new_job and new_job != old_job and gone else None

    after = flow.wait(settled, T, "a new user-sync Job and bob's credentials gone")
    assert flow.deleted(kube.get("v1", "Secret", bob, TEAM))
    # The last completed sync stays in force until the new one completes.
    assert not flow.deleted(kube.get("batch/v1", "Job", old_job, TEAM))
    assert "user-alice@vm-alice" in after
    xr = flow.wait(
        lambda: (o := kube.reload(ready)) and len(o["status"].get("users", [])) == 1 and o,
        T,
        "status.users without bob",
    )
    assert [u["identity"] for u in xr["status"]["users"]] == ["alice@vm-alice"]
    assert not flow.is_true(xr, "UsersSynced")  # the new Job has not run yet
    flow.complete_job(kube, flow.one(after, "user-sync"))
    # The Job's status change normally reconciles the XR at once; if Crossplane's watch
    # circuit breaker dropped that event (this suite touches the XR a lot), the next
    # poll (every minute) picks it up.
    flow.wait(lambda: flow.is_true(kube.reload(ready), "UsersSynced"), 2 * T, "UsersSynced")
    flow.wait(
        lambda: flow.deleted(kube.get("batch/v1", "Job", old_job, TEAM)),
        2 * T,
        "the superseded user-sync Job deleted",
    )


# --- 5. no serving across namespaces -----------------------------------------------------------


@pytest.fixture(scope="module")
def intruder(kube, ready):  # `ready`: team-a's server exists first
    """A BSLS in team-b whose repositoryRef names team-a's BSLR, once it reported NotFound."""
    tenant(kube, "team-b")
    obj = flow.example("bsls.yaml", "team-b")[0]
    obj["spec"]["users"] = [{"username": "mallory", "hostname": "vm-mallory"}]
    obj = kube.apply(obj)  # repositoryRef: team-a-repo, which lives in team-a
    return flow.wait(
        lambda: (
            (o := kube.reload(obj))
            and flow.condition(o, "RepositoryReady").get("reason") == "NotFound"
            and o
        ),
        T,
        "the team-b BSLS to report its repository as not found",
    )


def test_a_bsls_in_another_namespace_is_never_served_by_a_foreign_bslr(
    cluster, kube, intruder
) -> None:
    assert "team-b/team-a-repo" in flow.condition(intruder, "RepositoryReady")["message"]
    _reconcile(cluster, kube, intruder, 3)  # and it stays that way
    objects = flow.composed(kube, intruder)
    assert "server" not in objects
    assert flow.one(objects, "user-sync") is None
    assert flow.condition(kube.reload(intruder), "RepositoryReady").get("reason") == "NotFound"
    # Nothing of team-b's landed in team-a.
    team_a = kube.list("apps/v1", "Deployment", TEAM) + kube.list("batch/v1", "Job", TEAM)
    live = [o for o in team_a if not flow.deleted(o)]
    owners = {(o["metadata"].get("labels") or {}).get(flow.COMPOSITE) for o in live}
    assert owners <= {SERVER, REPO}


def test_a_bsls_whose_repository_is_missing_is_not_ready(cluster, kube, intruder) -> None:
    _reconcile(cluster, kube, intruder, 2)
    assert not flow.is_true(kube.reload(intruder), "Ready"), "Ready without a server"


# --- 6. the repository goes away --------------------------------------------------------------


def test_deleting_the_bslr_is_reported_and_leaves_the_server_running(kube, established) -> None:
    ns = "team-c"
    tenant(kube, ns)
    bslr = ready_repository(kube, ns)
    bsls = kube.apply(flow.example("bsls.yaml", ns)[0])
    objects = server_composed(kube, bsls)
    deployment = objects["server"]
    template = deployment["spec"]["template"]

    kube.delete(bslr)
    flow.wait(lambda: kube.reload(bslr) is None, T, "the BSLR to be deleted")

    def reported() -> dict | None:
        flow.touch(kube, bsls)
        o = kube.reload(bsls)
        return o if flow.condition(o, "RepositoryReady").get("reason") == "NotFound" else None

    xr = flow.wait(reported, T, "RepositoryReady=False/NotFound on the BSLS", interval=1)
    assert "does not exist" in flow.condition(xr, "RepositoryReady")["message"]
    kept = flow.composed(kube, bsls)
    for key in ("server", "service", "tls-ca", "tls-server", "control"):
        assert key in kept, f"{key} was removed with the BSLR"
    assert kept["server"]["spec"]["template"] == template


# --- 7. invalid specs ---------------------------------------------------------------------------


def _rejected_or_reported(kube, obj: dict, words: tuple[str, ...]) -> str:
    """Apply `obj`; the API server's 422 or the XR's Synced=False message."""
    rejected = None
    try:
        applied = kube.apply(obj)
    except flow.api_error() as e:
        rejected = e
    if rejected is not None:
        assert rejected.status == 422, rejected  # Unprocessable: failed validation
        return str(rejected)

    def reported() -> str | None:
        c = flow.condition(kube.reload(applied), "Synced")
        message = c.get("message", "")
        if c.get("status") == "False" and any(w in message for w in words):
            return message
        return None

    return flow.wait(
        reported,
        T,
        f"Synced=False naming {' or '.join(words)} on {obj['metadata']['name']}",
    )


@pytest.mark.parametrize(
    ("kind", "edit", "words"),
    [
        pytest.param(
            BSLR,
            lambda s: s["backend"].update(s3={"bucket": "backups"}),
            ("exactly one",),
            id="two-backends",
        ),
        pytest.param(
            BSLR,
            lambda s: s["backend"].update(
                filesystem=None, s3={"bucket": "backups", "prefix": "no-slash"}
            ),
            ("prefix",),
            id="prefix-without-slash",
        ),
        pytest.param(
            BSLS,
            lambda s: s["users"].append({"username": "eve", "hostname": "bsls-system"}),
            ("reserved", "bsls-system"),
            id="reserved-hostname",
        ),
        pytest.param(
            BSLS,
            lambda s: s["users"].append({"username": "Eve!", "hostname": "vm-eve"}),
            ("username",),
            id="bad-username",
        ),
        pytest.param(
            BSLS,
            lambda s: s["tls"].update(additionalIPAddresses=["not-an-ip"]),
            ("additionalIPAddresses", "not an IPv4"),
            id="bad-ip-address",
        ),
        pytest.param(
            BSLS,
            lambda s: s.update(server={"resources": {"requests": {"cpu": "lots"}}}),
            ("cpu", "quantity"),
            id="bad-quantity",
        ),
    ],
)
def test_an_invalid_spec_is_rejected_or_reported_never_a_crash(
    request, cluster, kube, established, kind, edit, words
) -> None:
    ns = "team-d"
    tenant(kube, ns)
    obj = flow.example("bslr.yaml" if kind == BSLR else "bsls.yaml", ns)[0]
    obj["metadata"]["name"] = f"invalid-{request.node.callspec.id}"
    edit(obj["spec"])
    obj["spec"] = _drop_none(obj["spec"])
    message = _rejected_or_reported(kube, obj, words)
    assert message
    assert cluster.alive("function"), cluster.log_tail("function")


def test_an_invalid_edit_never_tears_down_a_working_server(cluster, kube, ready) -> None:
    before = flow.composed(kube, ready)
    spec = flow.example("bsls.yaml", TEAM)[0]
    spec["spec"]["users"] = [u for u in spec["spec"]["users"] if u["username"] != "bob"]
    spec["spec"]["tls"]["additionalIPAddresses"] = ["999.0.0.1"]
    message = _rejected_or_reported(kube, spec, ("additionalIPAddresses", "999.0.0.1"))
    assert message
    after = flow.composed(kube, ready)
    for key in ("server", "service", "tls-ca", "tls-server", "control", "user-sync"):
        kept = flow.one(after, key)
        assert kept, f"{key} was removed by an invalid edit"
        assert kept["metadata"]["uid"] == flow.one(before, key)["metadata"]["uid"]
    assert after["server"]["spec"] == before["server"]["spec"]
    assert cluster.alive("function"), cluster.log_tail("function")


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


# --- 8. what a repository fixes at creation ----------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        pytest.param(
            {"format": {"hash": "BLAKE3-256"}},
            {"format": {"hash": "HMAC-SHA256"}},
            "spec.format cannot change after creation",
            id="format-changed",
        ),
        pytest.param(
            {},
            {"format": {"encryption": "CHACHA20-POLY1305-HMAC-SHA256"}},
            "spec.format cannot change after creation",
            id="format-added",
        ),
        pytest.param(
            {"format": {"errorCorrection": {"overheadPercent": 2}}},
            {},
            "spec.format cannot change after creation",
            id="format-removed",
        ),
    ],
)
def test_what_kopia_fixes_at_creation_cannot_change(
    request, kube, established, before, after, words
) -> None:
    ns = "team-e"
    tenant(kube, ns)
    obj = flow.example("bslr.yaml", ns)[0]
    obj["metadata"]["name"] = f"fixed-{request.node.callspec.id}"
    obj["spec"].update(before)
    kube.apply(obj)
    changed = flow.example("bslr.yaml", ns)[0]
    changed["metadata"]["name"] = obj["metadata"]["name"]
    changed["spec"].update(after)
    with pytest.raises(flow.api_error()) as refused:
        kube.apply(changed)  # server-side apply: fields left out are removed
    assert refused.value.status == 422, refused.value
    assert words in str(refused.value)


def test_object_lock_is_refused_off_s3_and_cannot_be_removed(kube, established) -> None:
    ns = "team-e"
    tenant(kube, ns)
    fs = flow.example("bslr.yaml", ns)[0]
    fs["metadata"]["name"] = "lock-on-fs"
    fs["spec"]["objectLock"] = {"mode": "GOVERNANCE", "periodDays": 30}
    with pytest.raises(flow.api_error()) as refused:
        kube.apply(fs)
    assert "spec.objectLock needs the s3 backend" in str(refused.value)

    s3 = flow.example("bslr-s3.yaml", ns)[0]
    s3["metadata"]["name"] = "locked"
    short = {**s3, "spec": {**s3["spec"], "objectLock": {"mode": "COMPLIANCE", "periodDays": 1}}}
    with pytest.raises(flow.api_error()):
        kube.apply(short)  # below the schema's minimum of 2 days
    s3["spec"]["objectLock"] = {"mode": "COMPLIANCE", "periodDays": 30}
    kube.apply(s3)
    unlocked = flow.example("bslr-s3.yaml", ns)[0]
    unlocked["metadata"]["name"] = "locked"
    with pytest.raises(flow.api_error()) as refused:
        kube.apply(unlocked)
    assert "spec.objectLock cannot be removed once set" in str(refused.value)
