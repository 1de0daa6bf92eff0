"""Reading untrusted nested data (XRs, required and observed objects) without surprises.

Anything that arrives in a request can have any JSON type in any field. These helpers
return a default instead of raising when a level is missing or of the wrong type.
"""

from __future__ import annotations


def dig(obj: object, *path: str) -> object:
    """The value at `path` in nested dicts, or None when any level is missing or not a dict."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(obj: object, *path: str) -> str:
    """The string at `path`, or an empty string when it is missing or not a string."""
    value = dig(obj, *path)
    return value if isinstance(value, str) else ""


def mapping(obj: object, *path: str) -> dict:
    """The dict at `path`, or an empty dict."""
    value = dig(obj, *path)
    return value if isinstance(value, dict) else {}
