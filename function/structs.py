"""Composed resources as serialized protobuf Structs, for the ones built per user.

Building a Struct from a dict runs in Python and dominates a call with many users.
A manifest that depends only on a few inputs (a user's identity, password, endpoint and
pin) is built once per distinct input and then copied into each response as bytes.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Hashable

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1


@dataclasses.dataclass(frozen=True)
class Built:
    """A manifest already serialized as a google.protobuf.Struct."""

    kind: str
    name: str
    struct: bytes


def build(manifest: dict) -> Built:
    """Serialize a manifest once."""
    composed = fnv1.Resource()
    resource.update(composed, manifest)
    return Built(
        kind=manifest["kind"],
        name=manifest["metadata"]["name"],
        struct=composed.resource.SerializeToString(deterministic=True),
    )


class BuildCache:
    """Built manifests by the inputs their builder depends on, least recently used out.

    A key must name every input of the builder: the same key must always build the same
    manifest. Nothing keyed on a whole request: requests differ on every poll. The cache
    holds at most `budget` bytes of serialized manifests, so a server with a thousand
    users costs what its manifests weigh, not a thousand slots.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._items: collections.OrderedDict[Hashable, Built] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], dict]) -> Built:
        """The cached manifest for `key`, or `make()` built and remembered."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        built = build(make())
        with self._lock:
            if key not in self._items:
                self._items[key] = built
                self._used += len(built.struct)
            while self._used > self._budget and self._items:
                _, dropped = self._items.popitem(last=False)
                self._used -= len(dropped.struct)
        return built


# Every built manifest of every call, by the inputs it derives from: 8 MiB at most.
BUILT = BuildCache(8 * 1024 * 1024)
