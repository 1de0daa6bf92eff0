"""What every reconcile step returns, and the composition they add up to.

A step is a pure function of the snapshot (and of what earlier steps found). It returns
the composed resources it is responsible for, its condition, and a value later steps
need. A resource is a `Recipe` (built through the memo when the answer is written), a
`Built` one (from a step `cached` whole), or `KEEP` (the observed object, exactly as it
runs, when an input it depends on is missing or broken: Crossplane deletes what a
function leaves out).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from function.conditions import Condition
from function.memo import MEMO, Built, Recipe
from function.models import FunctionInput

T = TypeVar("T")
In = TypeVar("In")


@dataclasses.dataclass(frozen=True)
class Keep:
    """Keep the observed object under the same composition-resource-name as it is."""


KEEP = Keep()
Desired = Recipe | Built | Keep


@dataclasses.dataclass(frozen=True)
class Step(Generic[T]):
    """One step's part of the answer.

    `ready_when_observed` names resources that are ready once they exist, whatever
    their kind says (a sync Job in flight while an older one is still in force).
    `wake` is when the step has something to do without any change (a failed Job's next
    attempt): the call after it must not come later.
    """

    resources: Mapping[str, Desired]
    condition: Condition | None
    value: T
    ready_when_observed: frozenset[str] = frozenset()
    wake: datetime.datetime | None = None


def _built(fn: Callable[[In], Step[T]], inputs: In) -> Step[T]:
    step = fn(inputs)
    resources = {
        k: MEMO.built(v) if isinstance(v, Recipe) else v for k, v in step.resources.items()
    }
    return dataclasses.replace(step, resources=resources)


def cached(fn: Callable[[In], Step[T]], inputs: In) -> Step[T]:
    """`fn(inputs)` once per distinct inputs, with its recipes already built.

    For a step whose work grows with the spec (one Secret per user): a settled call then
    costs what reading its inputs costs. `inputs` must hold everything `fn` reads and
    nothing random (draw new key material before), and `fn` must be pure.
    """
    return MEMO.value(_built, fn, inputs)


@dataclasses.dataclass(frozen=True)
class Requirement:
    """A required resource, pinned to the tenant's namespace.

    `namespace` is None only for a cluster-scoped kind (legacy XRs, found by label).
    """

    name: str
    api_version: str
    kind: str
    namespace: str | None
    match_name: str | None = None
    match_labels: Mapping[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Composition:
    """The whole answer of one call."""

    requirements: tuple[Requirement, ...]
    steps: tuple[Step, ...] = ()
    status: Mapping[str, object] | None = None  # the XR's status fields
    ready: bool | None = None  # not ready (or ready) whatever its resources say
    ttl: datetime.timedelta | None = None  # how soon Crossplane should call again

    @property
    def resources(self) -> dict[str, Desired]:
        """Every step's resources, in step order."""
        out: dict[str, Desired] = {}
        for step in self.steps:
            out.update(step.resources)
        return out

    @property
    def ready_when_observed(self) -> frozenset[str]:
        """Every step's resources that are ready once they exist."""
        return frozenset().union(*(s.ready_when_observed for s in self.steps))

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every step's condition, in step order."""
        return tuple(s.condition for s in self.steps if s.condition is not None)


def poll(inp: FunctionInput, steps: tuple[Step, ...], now: datetime.datetime) -> datetime.timedelta:
    """How soon Crossplane should call again (the response TTL).

    Soon while anything is in flight or waits for an input Crossplane does not watch
    (a BSLR that is not Ready, a missing Secret); at ease once every condition holds,
    or while a failed Job waits for its next attempt, and then no later than that.
    """
    waiting = [s.wake for s in steps if s.wake is not None]
    busy = any(s.condition is not None and not s.condition.ok for s in steps if s.wake is None)
    ttl = datetime.timedelta(seconds=inp.pollInFlightSeconds if busy else inp.pollSeconds)
    if waiting:
        ttl = min(ttl, max(min(waiting) - now, datetime.timedelta(seconds=1)))
    return ttl
