"""Kubernetes names, references and validation errors shared by every model.

Every model rejects unknown fields and wrong types, so an app team's typo becomes a
message naming the field instead of a silently ignored setting. `describe_error` turns
pydantic's errors into one sentence per field, in the path syntax of the XR
(`spec.users[1].hostname`), and `parse` validates data into a model or raises
`SpecError` with those sentences.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

# Kubernetes object names (DNS-1123 subdomain) and Secret keys.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

M = TypeVar("M", bound=BaseModel)


class SpecError(ValueError):
    """Data that does not validate; the message names every wrong field."""


class Strict(BaseModel):
    """Base for every model: unknown fields are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _object_name(value: str) -> str:
    if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        msg = (
            f"{value!r} is not a valid Kubernetes object name: use at most 253 lowercase "
            "letters, digits, '-' and '.', starting and ending with a letter or digit"
        )
        raise ValueError(msg)
    return value


def _secret_key(value: str) -> str:
    if len(value) > 253 or not SECRET_KEY.match(value):
        msg = f"{value!r} is not a valid Secret key: use letters, digits, '-', '_' and '.'"
        raise ValueError(msg)
    return value


# The bounds are stated for the API schemas too (tests/test_schemas.py compares them).
ObjectName = Annotated[
    str,
    pydantic.StringConstraints(min_length=1, max_length=253),
    pydantic.AfterValidator(_object_name),
]
SecretKeyName = Annotated[
    str,
    pydantic.StringConstraints(min_length=1, max_length=253),
    pydantic.AfterValidator(_secret_key),
]


class LocalRef(Strict):
    """A reference to an object in the XR's own namespace (there is no namespace field)."""

    name: ObjectName


class SecretKeyRef(Strict):
    """A key of a Secret in the XR's own namespace."""

    name: ObjectName
    key: SecretKeyName = "password"


def describe_error(err: pydantic.ValidationError, root: str) -> str:
    """Turn a validation error into one readable sentence per field.

    Args:
        err: The pydantic error.
        root: The path of the validated object, e.g. `spec`.

    Returns:
        Messages such as `spec.users[1].hostname: 'VM' does not match ...`.
    """
    parts = []
    for item in err.errors(include_url=False):
        path = root
        for loc in item["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else f".{loc}"
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "is not a known field (check the spelling against the API reference)"
        elif item["type"] == "missing":
            msg = "is required"
        parts.append(f"{path}: {msg}")
    return "; ".join(parts)


def parse(model: type[M], data: object, root: str) -> M:
    """Validate `data` as `model`, or raise SpecError naming each wrong field under `root`."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise SpecError(describe_error(e, root)) from None
