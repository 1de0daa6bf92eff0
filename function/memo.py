"""The one memo: manifests built once per distinct builder and arguments.

Turning a manifest into a protobuf Struct runs in Python and dominates a call with many
users. A step therefore returns a `Recipe` (a builder and its arguments) instead of a
manifest, and `Memo.built` builds it once: the key is a MAC of the builder's name and
every argument it receives, so the key can never miss an input the builder reads, and
holds no secret (a keyed BLAKE2b, whose key is drawn at start and lives only in this
process).
Arguments are plain values, models and frozen dataclasses (anything pickle encodes). The
memo is bounded in bytes and can be switched off; a property test checks that answers
are byte-identical with it on and off.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import pickle
import secrets
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Built:
    """A manifest serialized as a google.protobuf.Struct."""

    kind: str
    name: str
    struct: bytes


class Recipe(NamedTuple):
    """A manifest to build: a pure builder and everything it is given."""

    builder: Callable[..., dict]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def build(self) -> dict:
        """Run the builder."""
        return self.builder(*self.args, **dict(self.kwargs))


def recipe(builder: Callable[..., dict], *args: Any, **kwargs: Any) -> Recipe:
    """A Recipe, with keyword arguments in a stable order."""
    return Recipe(builder, args, tuple(sorted(kwargs.items())) if kwargs else ())


def serialize(manifest: dict) -> Built:
    """Serialize a manifest (or the XR's status, which has no kind or name) to a Struct."""
    composed = fnv1.Resource()
    resource.update(composed, manifest)
    return Built(
        kind=manifest.get("kind", ""),
        name=manifest.get("metadata", {}).get("name", ""),
        struct=composed.resource.SerializeToString(deterministic=True),
    )


def _digest(key: bytes, fn: Callable, args: tuple, kwargs: tuple = ()) -> bytes:
    """A keyed hash (BLAKE2b, a MAC) of a function's name and its arguments.

    pickle is an encoding that can be decoded, so two different argument lists never
    encode alike: a key can only miss, never return what other inputs built. (Equal
    values encoded differently, say dicts filled in another order, merely miss.)
    """
    data = pickle.dumps((fn.__module__, fn.__qualname__, args, kwargs), pickle.HIGHEST_PROTOCOL)
    return hashlib.blake2b(data, key=key, digest_size=32).digest()


_MISSING = object()


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A parse that failed: raised again, as a new exception, on every lookup."""

    error: type[ValueError]
    args: tuple[object, ...]


class Memo:
    """Built manifests by the digest of their recipe, least recently used out."""

    def __init__(self, budget: int) -> None:
        self.enabled = True
        self._budget = budget
        self._used = 0
        self._items: collections.OrderedDict[bytes, Built] = collections.OrderedDict()
        self._values: collections.OrderedDict[bytes, object] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)

    def key(self, r: Recipe) -> bytes:
        """The HMAC of the builder's name and its arguments."""
        return _digest(self._key, r.builder, r.args, r.kwargs)

    def built(self, r: Recipe) -> Built:
        """The recipe's manifest, built and serialized once per distinct recipe."""
        if not self.enabled:
            return serialize(r.build())
        key = self.key(r)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        built = serialize(r.build())
        with self._lock:
            if key not in self._items:
                self._items[key] = built
                self._used += len(built.struct)
            while self._used > self._budget and self._items:
                _, dropped = self._items.popitem(last=False)
                self._used -= len(dropped.struct)
        return built

    def value(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` once per distinct arguments; a ValueError it raises is kept too.

        For pure work that costs more than a lookup and recurs on every call with the
        same inputs: validating a spec with hundreds of users, parsing and checking a
        certificate. At most 1,024 results are kept.
        """
        if not self.enabled:
            return fn(*args)
        digest = _digest(self._key, fn, args)
        with self._lock:
            found = self._values.get(digest, _MISSING)
            if found is not _MISSING:
                self._values.move_to_end(digest)
        if found is _MISSING:
            try:
                found = fn(*args)
            except ValueError as e:
                found = _Failure(type(e), e.args)
            with self._lock:
                self._values[digest] = found
                while len(self._values) > 1024:
                    self._values.popitem(last=False)
        if isinstance(found, _Failure):
            # A new exception each time: re-raising one object would grow its traceback.
            raise found.error(*found.args) from None
        return found  # type: ignore[return-value]

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._items.clear()
            self._values.clear()
            self._used = 0


# Every built manifest of every call: 16 MiB at most (a few servers of 500 users).
MEMO = Memo(16 * 1024 * 1024)
