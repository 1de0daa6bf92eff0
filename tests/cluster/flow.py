"""What the cluster tests do to the control plane: apply examples, find composed objects,
and stand in for the controllers this control plane does not run (Job, Deployment).

There is no kube-controller-manager and no kubelet: a Job never runs and a Deployment never
gets a pod, so the tests write the status those controllers would write. Crossplane and the
function see exactly what they would see on a real cluster once the pods have done their
work.
"""

from __future__ import annotations

import copy
import datetime
import pathlib
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
APIS = ROOT / "apis"
GROUP_VERSION = "dataprotection.bsls.dev/v1alpha1"
BSLR = "BackupStorageLocationRepository"
BSLS = "BackupStorageLocationServer"
CRN = "crossplane.io/composition-resource-name"
COMPOSITE = "crossplane.io/composite"
TOUCH = "test.bsls.dev/touched"

# Kinds a BSLS or BSLR composes (see README.md, "What gets composed").
COMPOSED_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


def docs(path: pathlib.Path) -> list[dict]:
    """Every YAML document in a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def example(name: str, namespace: str) -> list[dict]:
    """The documents of examples/<name>, moved to `namespace`."""
    out = []
    for doc in docs(EXAMPLES / name):
        moved = copy.deepcopy(doc)
        moved["metadata"]["namespace"] = namespace
        out.append(moved)
    return out


def api_error() -> type[Exception]:
    """hack/cluster.py's ApiError (the module conftest.py loaded)."""
    return sys.modules["bsls_cluster"].ApiError


def now() -> str:
    """The current time as the API server writes it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait(check, timeout: float, what: str, interval: float = 0.25):
    """Poll `check` until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    msg = f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}"
    raise AssertionError(msg)


def condition(obj: dict | None, typ: str) -> dict:
    """A status condition by type, or {}."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c
    return {}


def is_true(obj: dict | None, typ: str) -> bool:
    """Whether condition `typ` is True."""
    return condition(obj, typ).get("status") == "True"


def namespace(kube, name: str) -> None:
    """Create a namespace (idempotent)."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def xr(kube, kind: str, name: str, ns: str) -> dict | None:
    """A BSLR or BSLS."""
    return kube.get(GROUP_VERSION, kind, name, ns)


def touch(kube, obj: dict) -> None:
    """Make Crossplane reconcile an XR now.

    Required resources (the BSLR, the password Secrets) are not watched: without this
    Crossplane would see a change only at the function's TTL (60 s).
    """
    kube.patch(obj, {"metadata": {"annotations": {TOUCH: str(time.monotonic_ns())}}})


def composed(kube, obj: dict) -> dict[str, dict]:
    """Composed objects of an XR by composition-resource-name (found by Crossplane's label)."""
    name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
    out: dict[str, dict] = {}
    for api_version, kind in COMPOSED_KINDS:
        for o in kube.list(api_version, kind, ns, labels={COMPOSITE: name}):
            crn = (o["metadata"].get("annotations") or {}).get(CRN)
            if crn:
                out[crn] = o
    return out


def deleted(obj: dict | None) -> bool:
    """Gone, or on its way out.

    Crossplane deletes composed resources it no longer desires with foreground
    propagation; with no garbage collector here (no kube-controller-manager), such an
    object keeps its deletionTimestamp and the foregroundDeletion finalizer instead of
    disappearing, as it would in a cluster once its dependents are gone.
    """
    return obj is None or bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def one(objects: dict[str, dict], key: str) -> dict | None:
    """The composed object `key`, or the newest one named `key-<suffix>`.

    A Job that must run again under a new name may be composed under a composition-resource-
    name with a suffix (Crossplane keeps the name of an existing composed resource).
    """
    if key in objects:
        return objects[key]
    found = [o for k, o in objects.items() if k.startswith(f"{key}-")]
    found.sort(key=lambda o: o["metadata"]["creationTimestamp"])
    return found[-1] if found else None


def complete_job(kube, job: dict) -> dict:
    """Write the status the Job controller writes when the Job's pod succeeded."""
    t = now()
    return kube.patch(
        job,
        {
            "status": {
                "startTime": t,
                "completionTime": t,
                "succeeded": 1,
                "active": 0,
                "ready": 0,
                "terminating": 0,
                "conditions": [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastProbeTime": t,
                        "lastTransitionTime": t,
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastProbeTime": t,
                        "lastTransitionTime": t,
                    },
                ],
            }
        },
        subresource="status",
    )


def make_available(kube, deployment: dict) -> dict:
    """Write the status the Deployment controller writes once one replica is available."""
    t = now()
    generation = deployment["metadata"].get("generation", 1)
    return kube.patch(
        deployment,
        {
            "status": {
                "observedGeneration": generation,
                "replicas": 1,
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                        "lastUpdateTime": t,
                        "lastTransitionTime": t,
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": "ReplicaSet has successfully progressed.",
                        "lastUpdateTime": t,
                        "lastTransitionTime": t,
                    },
                ],
            }
        },
        subresource="status",
    )
