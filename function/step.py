"""What every reconcile step returns, and the composition they add up to.

A step is a pure function of the snapshot (and of what earlier steps found). It returns
the composed resources it is responsible for, its condition, and a value later steps
need. A resource is a `Recipe` (built through the memo when the answer is written) or a
`Keep` (the observed object, exactly as it runs, when an input it depends on is missing
or broken: Crossplane deletes what a function leaves out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Generic, TypeVar

from function.conditions import Condition
from function.memo import Recipe

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Keep:
    """Keep the observed object under the same composition-resource-name as it is."""


KEEP = Keep()
Desired = Recipe | Keep


@dataclasses.dataclass(frozen=True)
class Step(Generic[T]):
    """One step's part of the answer."""

    resources: Mapping[str, Desired]
    condition: Condition | None
    value: T


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
    ready: bool | None = None  # False: not ready whatever its resources say

    @property
    def resources(self) -> dict[str, Desired]:
        """Every step's resources, in step order."""
        out: dict[str, Desired] = {}
        for step in self.steps:
            out.update(step.resources)
        return out

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every step's condition, in step order."""
        return tuple(s.condition for s in self.steps if s.condition is not None)
