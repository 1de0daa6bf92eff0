"""Building requests the way Crossplane does, and reading responses back as dicts."""

from __future__ import annotations

import base64
import datetime
import hashlib
import pathlib

import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from cryptography.hazmat.primitives.asymmetric import ec

from function.fn import FunctionRunner

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)


def load(path: str | pathlib.Path) -> list[dict]:
    """Every YAML document in a file (relative paths are under examples/)."""
    p = pathlib.Path(path)
    if not p.is_absolute():
        p = EXAMPLES / p
    return [d for d in yaml.safe_load_all(p.read_text()) if d]


def example(name: str) -> dict:
    """The first document of an example file."""
    return load(name)[0]


def required_pool() -> list[dict]:
    """The required resources shipped with the examples (examples/required)."""
    out = []
    for f in sorted((EXAMPLES / "required").glob("*.yaml")):
        out += load(f)
    return out


class SeededEntropy:
    """Reproducible key material: the same seed gives the same keys, serials, passwords.

    Keys come from a counter hashed with the seed (a valid P-256 scalar); with the
    function's deterministic ECDSA signatures, certificates are then byte-identical
    from run to run, so whole answers can be compared with a reviewed file.
    """

    def __init__(self, seed: str = "tests") -> None:
        self._seed = seed.encode()
        self._counter = 0

    def _next(self, what: bytes) -> bytes:
        self._counter += 1
        return hashlib.sha256(self._seed + what + self._counter.to_bytes(8, "big")).digest()

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        value = int.from_bytes(self._next(b"key"), "big") % (order - 1) + 1
        return ec.derive_private_key(value, ec.SECP256R1())

    def serial_number(self) -> int:
        return int.from_bytes(self._next(b"serial")[:19], "big") | 1

    def password(self) -> str:
        return base64.urlsafe_b64encode(self._next(b"password")[:24]).decode()


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += datetime.timedelta(**kwargs)


def request(
    xr: dict,
    *,
    observed: dict[str, dict] | None = None,
    required: dict[str, list[dict]] | None = None,
    inp: dict | None = None,
) -> fnv1.RunFunctionRequest:
    """A RunFunctionRequest as Crossplane sends it."""
    req = fnv1.RunFunctionRequest(
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(xr)))
    )
    if inp is not None:
        req.input.CopyFrom(resource.dict_to_struct(inp))
    for key, obj in (observed or {}).items():
        req.observed.resources[key].CopyFrom(fnv1.Resource(resource=resource.dict_to_struct(obj)))
    for name, items in (required or {}).items():
        req.required_resources[name].CopyFrom(
            fnv1.Resources(
                items=[fnv1.Resource(resource=resource.dict_to_struct(i)) for i in items]
            )
        )
    return req


def select(pool: list[dict], selector: fnv1.ResourceSelector) -> list[dict]:
    """What a real API server returns for a selector (namespace honoured)."""
    out = []
    for obj in pool:
        meta = obj.get("metadata") or {}
        if obj.get("apiVersion") != selector.api_version or obj.get("kind") != selector.kind:
            continue
        if selector.namespace and meta.get("namespace") != selector.namespace:
            continue
        if selector.HasField("match_name") and meta.get("name") != selector.match_name:
            continue
        if selector.HasField("match_labels"):
            labels = meta.get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.match_labels.labels.items()):
                continue
        out.append(obj)
    return out


def reconcile(
    xr: dict,
    *,
    observed: dict[str, dict] | None = None,
    pool: list[dict] | None = None,
    inp: dict | None = None,
    clock: Clock | None = None,
    runner: FunctionRunner | None = None,
    xr_name: str | None = None,
) -> fnv1.RunFunctionResponse:
    """Call the function the way Crossplane does: until its requirements settle (max 5).

    `xr_name` renames the XR (a copy) first.
    """
    if xr_name is not None:
        xr = {**xr, "metadata": {**xr["metadata"], "name": xr_name}}
    runner = runner or FunctionRunner(clock=clock or Clock())
    pool = required_pool() if pool is None else pool
    required: dict[str, list[dict]] | None = None
    rsp = None
    for _ in range(5):
        rsp = runner.run(request(xr, observed=observed, required=required, inp=inp))
        wanted = {name: select(pool, sel) for name, sel in rsp.requirements.resources.items()}
        if required is not None and wanted == required:
            break
        if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
            break
        required = wanted
    assert rsp is not None
    return rsp


def desired(rsp: fnv1.RunFunctionResponse) -> dict[str, dict]:
    """The desired composed resources by composition-resource-name."""
    return {k: resource.struct_to_dict(v.resource) for k, v in rsp.desired.resources.items()}


def ready(rsp: fnv1.RunFunctionResponse) -> set[str]:
    """Which composed resources the function marked ready."""
    return {k for k, v in rsp.desired.resources.items() if v.ready == fnv1.READY_TRUE}


def xr_status(rsp: fnv1.RunFunctionResponse) -> dict:
    """The desired XR status."""
    return resource.struct_to_dict(rsp.desired.composite.resource).get("status", {})


def conditions(rsp: fnv1.RunFunctionResponse) -> dict[str, fnv1.Condition]:
    """The custom conditions by type."""
    return {c.type: c for c in rsp.conditions}


def fatal(rsp: fnv1.RunFunctionResponse) -> list[str]:
    """The messages of FATAL results."""
    return [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]


def as_observed(rsp: fnv1.RunFunctionResponse, **status: dict) -> dict[str, dict]:
    """The desired resources as Crossplane would observe them after applying them.

    `status` adds a status per composition-resource-name (e.g. a Deployment's).
    """
    out = {}
    for key, composed in desired(rsp).items():
        obj = dict(composed)
        obj["metadata"] = {**obj["metadata"], "uid": f"uid-{key}", "resourceVersion": "1"}
        if key in status:
            obj["status"] = status[key]
        out[key] = obj
    return out


def with_status(xr: dict, rsp: fnv1.RunFunctionResponse) -> dict:
    """The XR as Crossplane writes it back: the desired status and the conditions set."""
    status_names = {
        fnv1.STATUS_CONDITION_TRUE: "True",
        fnv1.STATUS_CONDITION_FALSE: "False",
        fnv1.STATUS_CONDITION_UNKNOWN: "Unknown",
    }
    out = dict(xr)
    out["status"] = {
        **xr_status(rsp),
        "conditions": [
            {
                "type": c.type,
                "status": status_names[c.status],
                "reason": c.reason,
                "message": c.message,
            }
            for c in rsp.conditions
        ],
    }
    return out


def ready_bslr(name: str = "team-a-repo", namespace: str = "team-a") -> dict:
    """The example BSLR with a Ready status."""
    bslr = example("required/bslr.yaml")
    bslr["metadata"] = {"name": name, "namespace": namespace}
    return bslr


# What a server with users composes for backup freshness (function/steps/freshness.py).
FRESHNESS_KEYS = (
    "freshness",
    "freshness-report",
    "freshness-reader",
    "freshness-account",
    "freshness-role",
    "freshness-binding",
)

DEPLOYMENT_AVAILABLE = {
    "availableReplicas": 1,
    "conditions": [{"type": "Available", "status": "True"}],
}
JOB_COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
JOB_FAILED = {
    "conditions": [
        {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
            "lastTransitionTime": "2026-06-01T11:59:55Z",  # just before NOW
        }
    ],
    "failed": 5,
}


def job_failed(
    job: dict, code: int, at: str = "2026-06-01T11:59:55Z", pod: str | None = None
) -> dict:
    """The status the Job controller (Kubernetes 1.35) writes when the pod exited `code`.

    A code the Job's podFailurePolicy lists fails it at once with reason PodFailurePolicy
    and the message pkg/controller/job/pod_failure_policy.go formats; any other code
    exhausts backoffLimit first.
    """
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]["name"]
    pod = pod or f"{job['metadata']['name']}-x7k2q"
    for index, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules", [])):
        codes = rule.get("onExitCodes") or {}
        if rule["action"] == "FailJob" and code in [int(v) for v in codes.get("values", [])]:
            reason = "PodFailurePolicy"
            message = (
                f"Container {container} for pod {job['metadata']['namespace']}/{pod} failed "
                f"with exit code {code} matching FailJob rule at index {index}"
            )
            failed = 1
            break
    else:
        reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        failed = int(spec.get("backoffLimit", 6)) + 1
    condition = {"status": "True", "reason": reason, "message": message}
    return {
        "conditions": [
            {"type": "FailureTarget", **condition, "lastTransitionTime": at},
            {"type": "Failed", **condition, "lastTransitionTime": at},
        ],
        "failed": failed,
    }


def key(found: fnv1.RunFunctionResponse | dict, prefix: str) -> str:
    """The composition-resource-name of the current `prefix-<digest>` Job.

    While a new sync runs, the last completed one stays too: the current one is the Job
    the UsersSynced condition names.
    """
    keys = found.desired.resources if isinstance(found, fnv1.RunFunctionResponse) else found
    matches = [k for k in keys if k.startswith(f"{prefix}-")]
    if len(matches) > 1 and isinstance(found, fnv1.RunFunctionResponse):
        message = conditions(found)["UsersSynced"].message
        matches = [k for k in matches if desired(found)[k]["metadata"]["name"] in message]
    [match] = matches
    return match


def sync_job(found: fnv1.RunFunctionResponse) -> dict:
    """The current desired user-sync Job."""
    return desired(found)[key(found, "user-sync")]
