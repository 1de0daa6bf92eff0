"""The one memo: keys cover every argument, hold no secret, and the memo stays bounded."""

from __future__ import annotations

import pytest

from function.memo import Memo, recipe


def secret_manifest(name: str, password: str, *, note: str = "") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "annotations": {"note": note}},
        "data": {"password": password},
    }


def test_the_key_covers_every_argument() -> None:
    memo = Memo(1 << 20)
    base = recipe(secret_manifest, "a", "pw")
    assert memo.key(base) == memo.key(recipe(secret_manifest, "a", "pw"))
    for other in (
        recipe(secret_manifest, "b", "pw"),
        recipe(secret_manifest, "a", "pw2"),
        recipe(secret_manifest, "a", "pw", note="x"),
    ):
        assert memo.key(other) != memo.key(base)


def test_a_key_reveals_no_argument_and_differs_per_process() -> None:
    password = "correct-horse-battery-staple"
    r = recipe(secret_manifest, "a", password)
    one, two = Memo(1 << 20), Memo(1 << 20)
    assert password.encode() not in one.key(r)
    assert len(one.key(r)) == 32  # an HMAC-SHA256, keyed per Memo
    assert one.key(r) != two.key(r)


def test_a_recipe_is_built_once_and_the_memo_stays_within_its_budget() -> None:
    calls = []

    def build(n: int) -> dict:
        calls.append(n)
        return secret_manifest(f"s{n}", "x" * 1000)

    memo = Memo(budget=5000)
    for _ in range(3):
        memo.built(recipe(build, 1))
    assert calls == [1]
    for n in range(2, 20):
        memo.built(recipe(build, n))
    assert memo._used <= 5000
    memo.built(recipe(build, 1))  # evicted long ago: built again
    assert calls.count(1) == 2


def test_a_disabled_memo_builds_every_time() -> None:
    calls = []

    def build() -> dict:
        calls.append(1)
        return secret_manifest("s", "x")

    memo = Memo(1 << 20)
    memo.enabled = False
    memo.built(recipe(build))
    memo.built(recipe(build))
    assert len(calls) == 2


def test_values_and_their_failures_are_kept() -> None:
    calls = []

    def parse(raw: bytes) -> int:
        calls.append(raw)
        if raw == b"bad":
            msg = "not a number"
            raise ValueError(msg)
        return int(raw)

    memo = Memo(1 << 20)
    assert memo.value(parse, b"7") == memo.value(parse, b"7") == 7
    errors = []
    for _ in range(2):
        with pytest.raises(ValueError, match="not a number") as e:
            memo.value(parse, b"bad")
        errors.append(e.value)
    assert calls == [b"7", b"bad"]
    assert errors[0] is not errors[1]  # a fresh exception each time: no growing traceback
