"""Any input gets a valid answer: property tests over specs, BSLRs, Secrets and observed state.

`make test` runs a short profile; `make fuzz` runs the deep one (HYPOTHESIS_PROFILE=deep,
at least 10,000 examples per property).
"""

from __future__ import annotations

import base64
import copy
import os

from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from function.fn import FunctionRunner
from function.memo import MEMO
from tests import helpers as h

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Protobuf Structs carry JSON: null, bools, doubles, strings, lists and objects.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "alice", "vm-alice", "a" * 300, "ünï©ødé", "http://x", "../../etc"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
base64ish = st.one_of(
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=40),
    json_values,
)

USER_FIELDS = ("username", "hostname", "passwordSecretRef")
SPEC_FIELDS = ("repositoryRef", "users", "tls", "service", "networkPolicy", "server")


@st.composite
def mutated(draw: st.DrawFn, doc: object, depth: int = 0) -> object:
    """`doc` with some fields replaced, dropped or added, at any depth."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # drop the field
            if choice == 1:
                out[key] = draw(json_values)  # any JSON in its place
            else:
                out[key] = draw(mutated(value, depth + 1))
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.text(max_size=10))] = draw(json_values)
        return out
    if isinstance(doc, list):
        return [draw(mutated(v, depth + 1)) for v in doc]
    return draw(st.one_of(st.just(doc), json_values)) if draw(st.booleans()) else doc


def base_spec() -> dict:
    spec = copy.deepcopy(h.example("bsls.yaml")["spec"])
    spec["service"] = {"type": "ClusterIP", "port": 51515}
    spec["networkPolicy"] = {"enabled": True, "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    spec["server"] = {"resources": {"limits": {"memory": "1Gi"}}, "logLevel": "info"}
    return spec


def secret(name: str, data: object) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "team-a"},
        "data": data,
    }


RUNNER = FunctionRunner(clock=h.Clock())


def run(xr: dict, observed: dict | None = None, pool: list | None = None, inp: dict | None = None):
    return h.reconcile(xr, observed=observed, pool=pool, inp=inp, runner=RUNNER)


def check(rsp: fnv1.RunFunctionResponse) -> None:
    """What every response must be, whatever the input."""
    assert isinstance(rsp, fnv1.RunFunctionResponse)
    messages = [r.message for r in rsp.results]
    assert not [m for m in messages if "unexpected error" in m], messages
    if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
        assert len(rsp.desired.resources) == 0
    rsp.SerializeToString()  # a valid message


def essence(rsp: fnv1.RunFunctionResponse) -> tuple:
    """Everything that must not depend on chance (generated keys aside)."""
    return (
        # A result names the condition and its reason; its message may quote a new key's pin.
        [(r.severity, r.message.split(":")[0]) for r in rsp.results],
        sorted((c.type, c.status, c.reason) for c in rsp.conditions),
        sorted(
            (k, v.SerializeToString(deterministic=True))
            for k, v in rsp.requirements.resources.items()
        ),
        # A Job's key carries a digest of generated passwords: compare its prefix.
        sorted(
            k.rsplit("-", 1)[0] if k.startswith("user-sync-") else k for k in rsp.desired.resources
        ),
    )


@given(spec=mutated(base_spec()))
def test_any_spec_gets_an_answer(spec: object) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"] = spec
    a, b = run(xr), run(xr)
    check(a)
    assert essence(a) == essence(b)


@given(spec=json_values)
def test_any_json_as_spec_gets_an_answer(spec: object) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"] = spec
    check(run(xr))


@given(metadata=mutated({"name": "vm-backups", "namespace": "team-a", "labels": {"a": "b"}}))
def test_any_metadata_gets_an_answer(metadata: object) -> None:
    xr = h.example("bsls.yaml")
    xr["metadata"] = metadata
    check(run(xr))


@given(
    bslr_spec=mutated(h.example("bslr-s3.yaml")["spec"]),
    status=mutated({"conditions": [{"type": "Ready", "status": "True"}]}),
)
def test_any_repository_gets_an_answer(bslr_spec: object, status: object) -> None:
    bslr = h.ready_bslr()
    bslr["spec"] = bslr_spec
    bslr["status"] = status
    pool = [bslr, *h.required_pool()[1:]]
    check(run(h.example("bsls.yaml"), pool=pool))
    xr = h.example("bslr-s3.yaml")
    xr["spec"] = bslr_spec
    check(run(xr))


@given(data=st.one_of(json_values, st.dictionaries(st.text(max_size=10), base64ish, max_size=4)))
def test_any_password_secret_gets_an_answer(data: object) -> None:
    pool = [h.ready_bslr(), secret("alice-kopia", data)]
    rsp = run(h.example("bsls.yaml"), pool=pool)
    check(rsp)
    assert h.fatal(rsp) == []


OBSERVED_KEYS = (
    "tls-ca",
    "tls-server",
    "control",
    "ca-bundle",
    "user-bob@vm-bob",
    "credentials-bob@vm-bob",  # before 0.2
    "server",
    "user-sync-0123456789",
    "service",
)


@given(
    observed=st.dictionaries(
        st.sampled_from(OBSERVED_KEYS),
        st.one_of(
            json_values.filter(lambda v: isinstance(v, dict)),
            st.builds(
                lambda name, data, status: {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": "team-a"},
                    "data": data,
                    "status": status,
                },
                st.text(max_size=20),
                st.dictionaries(
                    st.sampled_from(
                        [
                            "ca.crt",
                            "ca.key",
                            "next-ca.crt",
                            "next-ca.key",
                            "tls.crt",
                            "tls.key",
                            "password",
                            "hmac-key",
                        ]
                    ),
                    base64ish,
                    max_size=4,
                ),
                json_values,
            ),
        ),
        max_size=5,
    )
)
def test_any_observed_state_gets_an_answer(observed: dict) -> None:
    rsp = run(h.example("bsls.yaml"), observed=observed)
    check(rsp)
    assert h.fatal(rsp) == []
    assert len(h.xr_status(rsp)["tlsFingerprint"]) == 64


@given(
    inp=mutated({"kopiaImage": "kopia/kopia:0.23.1", "servicePort": 51515, "renewBeforeDays": 30})
)
def test_any_function_input_gets_an_answer(inp: object) -> None:
    check(run(h.example("bsls.yaml"), inp=inp if isinstance(inp, dict) else {"x": inp}))


def _answers(xr: dict, *, memo: bool) -> list[bytes]:
    """A first reconcile and a settled one, with reproducible key material."""
    MEMO.clear()
    MEMO.enabled = memo
    try:
        runner = FunctionRunner(clock=h.Clock(), entropy=h.SeededEntropy("memo"))
        first = h.reconcile(xr, runner=runner)
        settled = h.reconcile(xr, observed=h.as_observed(first), runner=runner)
        return [r.SerializeToString(deterministic=True) for r in (first, settled)]
    finally:
        MEMO.enabled = True
        MEMO.clear()


@given(spec=mutated(base_spec()))
@example(spec=base_spec())
def test_the_memo_never_changes_an_answer(spec: object) -> None:
    xr = h.example("bsls.yaml")
    xr["spec"] = spec
    assert _answers(xr, memo=True) == _answers(xr, memo=False)


@given(bslr_spec=mutated(h.example("bslr-s3.yaml")["spec"]))
def test_the_memo_never_changes_a_repositorys_answer(bslr_spec: object) -> None:
    xr = h.example("bslr-s3.yaml")
    xr["spec"] = bslr_spec
    assert _answers(xr, memo=True) == _answers(xr, memo=False)
