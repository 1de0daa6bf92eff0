"""Crossplane's side of the loop: call the function, apply its output, feed status back.

`Composite.reconcile()` does what Crossplane does for one XR on one poll: it calls the
function in-process through `tests.helpers.reconcile` (which resolves required
resources from a pool, here the stand-in cluster's objects), applies every desired
resource to the cluster, deletes what is no longer desired, and writes the XR (with
the function's status and Crossplane's `Ready` condition) back to the cluster, where
another XR's requirements can read it. The observed state of the next call is the last
output plus the status the cluster reports for each object (`helpers.as_observed`).
"""

from __future__ import annotations

import copy
import dataclasses

from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function.fn import FunctionRunner
from tests import helpers
from tests.e2e.cluster import Cluster

CREATED = "2026-01-01T00:00:00Z"


@dataclasses.dataclass
class Composite:
    """One XR, reconciled against a Cluster."""

    cluster: Cluster
    xr: dict
    clock: helpers.Clock
    inp: dict | None = None  # the Composition's function input
    rsp: fnv1.RunFunctionResponse | None = None
    desired: dict[str, dict] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xr = copy.deepcopy(self.xr)
        self.xr["metadata"].setdefault("creationTimestamp", CREATED)
        self.runner = FunctionRunner(clock=self.clock)
        self.cluster.clock = self.clock  # the Job controller's times are the function's
        self._store()

    @property
    def namespace(self) -> str:
        """The XR's namespace."""
        return self.xr["metadata"]["namespace"]

    def reconcile(self) -> dict[str, dict]:
        """One Crossplane poll of the XR; returns the desired resources."""
        observed = None
        if self.rsp is not None:
            statuses = {}
            for key, manifest in self.desired.items():
                found = self.cluster.status(manifest)
                if found is not None:
                    statuses[key] = found
            observed = helpers.as_observed(self.rsp, **statuses)
        rsp = helpers.reconcile(
            self.xr, observed=observed, pool=self.cluster.list(), runner=self.runner, inp=self.inp
        )
        assert not helpers.fatal(rsp), helpers.fatal(rsp)
        desired = helpers.desired(rsp)
        for key in self.desired.keys() - desired.keys():
            gone = self.desired[key]["metadata"]
            self.cluster.delete(self.desired[key]["kind"], gone["namespace"], gone["name"])
        self.cluster.apply(*desired.values())
        self.rsp, self.desired = rsp, desired
        self._store()
        return desired

    @property
    def status(self) -> dict:
        """The XR's status as the function set it."""
        assert self.rsp is not None
        return helpers.xr_status(self.rsp)

    @property
    def conditions(self) -> dict[str, tuple[str, str, str]]:
        """The function's custom conditions: type -> (status, reason, message)."""
        assert self.rsp is not None
        status_name = {
            fnv1.STATUS_CONDITION_TRUE: "True",
            fnv1.STATUS_CONDITION_FALSE: "False",
            fnv1.STATUS_CONDITION_UNKNOWN: "Unknown",
        }
        return {
            c.type: (status_name[c.status], c.reason, c.message)
            for c in helpers.conditions(self.rsp).values()
        }

    @property
    def ttl(self) -> float:
        """How soon, in seconds, the function asked Crossplane to call again."""
        assert self.rsp is not None
        return self.rsp.meta.ttl.ToTimedelta().total_seconds()

    @property
    def ready(self) -> bool:
        """Crossplane's Ready: the function's explicit readiness of the XR if it set one
        (it supersedes the composed resources', as in Crossplane's composite reconciler),
        else every composed resource the function desires is ready."""
        if self.rsp is None:
            return False
        explicit = self.rsp.desired.composite.ready
        if explicit != fnv1.READY_UNSPECIFIED:
            return explicit == fnv1.READY_TRUE
        return set(self.desired) == helpers.ready(self.rsp)

    def _store(self) -> None:
        """Write the XR back to the cluster, as Crossplane persists its status."""
        xr = copy.deepcopy(self.xr)
        if self.rsp is not None:
            status = dict(self.status)
            conditions = [
                {"type": t, "status": s, "reason": r, "message": m}
                for t, (s, r, m) in self.conditions.items()
            ]
            ready = "True" if self.ready else "False"
            reason = "Available" if self.ready else "Creating"
            conditions.append({"type": "Ready", "status": ready, "reason": reason})
            status["conditions"] = conditions
            xr["status"] = status
            # The next call observes the XR as Crossplane stored it.
            self.xr["status"] = copy.deepcopy(status)
        self.cluster.apply(xr)
