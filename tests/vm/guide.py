"""The runnable steps of docs/vm-user-guide.md, extracted as written.

A step is a fenced ```sh block right after a `<!-- vm-test: NAME -->` line. The guest
runs each step's text unchanged, as a shell script of its own, so the guide cannot
drift from what works: a step that no longer runs fails the VM suite.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "vm-user-guide.md"
MARKER = re.compile(r"^<!-- vm-test: (?P<name>[a-z][a-z0-9-]*) -->$")
OPENING = re.compile(r"^```(?P<lang>\S*)\s*$")


class GuideError(ValueError):
    """A marker without a runnable block after it, or a name used twice."""


def steps(text: str | None = None) -> dict[str, str]:
    """Every marked step of the guide, name -> script text, in the guide's order."""
    lines = (GUIDE.read_text(encoding="utf-8") if text is None else text).splitlines()
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if marker is None:
            continue
        name = marker["name"]
        if name in out:
            msg = f"line {i + 1}: step {name!r} is marked twice"
            raise GuideError(msg)
        opening = OPENING.match(lines[i + 1]) if i + 1 < len(lines) else None
        if opening is None or opening["lang"] != "sh":
            msg = f"line {i + 1}: step {name!r} is not followed by a ```sh block"
            raise GuideError(msg)
        body = []
        for inner in lines[i + 2 :]:
            if inner.startswith("```"):
                break
            body.append(inner)
        else:
            msg = f"line {i + 1}: step {name!r}: the block never closes"
            raise GuideError(msg)
        out[name] = "\n".join(body) + "\n"
    return out
