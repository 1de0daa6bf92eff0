"""The one place the function reads the time from.

Outside certificate generation and renewal nothing depends on the time, so the same
request gives the same response. Tests pass their own clock to `FunctionRunner`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

Clock = Callable[[], datetime.datetime]


def system_clock() -> datetime.datetime:
    """The current time in UTC."""
    return datetime.datetime.now(datetime.UTC)
