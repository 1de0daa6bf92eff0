"""Every test starts with an empty memo, so no result depends on the tests before it."""

from __future__ import annotations

import pytest

from function.memo import MEMO


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    MEMO.clear()
