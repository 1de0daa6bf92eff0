"""The API schemas and the function's models say the same thing (a drift test).

The XRDs (what the API server validates) and the function input's CRD are written by
hand, with descriptions for `kubectl explain`; the pydantic models (what the function
validates) are the code. Both must agree on every field's name, type, default, enum,
bounds and whether it is required, at every depth. Where they may differ on purpose,
`ALLOWED` says where and why.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from function.models import BSLRSpec, BSLSSpec, FunctionInput
from tests.helpers import ROOT

# (schema file, path to the spec schema inside it, the model)
SCHEMAS = [
    ("apis/bsls/definition.yaml", ("spec",), BSLSSpec),
    ("apis/bslr/definition.yaml", ("spec",), BSLRSpec),
    ("package/input/bsls.fn.dataprotection.bsls.dev_inputs.yaml", (), FunctionInput),
]

# Differences on purpose: (model, dotted path, what) -> why.
ALLOWED = {
    # The object's own apiVersion and kind: the API server knows them, the model defaults
    # them so a Composition may leave them out.
    (FunctionInput, "apiVersion", "default"): "set by the object itself",
    (FunctionInput, "kind", "default"): "set by the object itself",
}

KEYWORDS = ("type", "default", "enum", "minimum", "maximum", "minLength", "maxLength", "maxItems")


def _resolve(schema: dict, defs: dict) -> dict:
    """A model's property schema with $refs followed and `X | None` made plain `X`."""
    while "$ref" in schema:
        schema = {
            **defs[schema["$ref"].rsplit("/", 1)[1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = {**_resolve(options[0], defs), **rest}
    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
    return schema


def _xrd_spec(path: str, inside: tuple[str, ...]) -> dict:
    [doc] = [d for d in yaml.safe_load_all((ROOT / path).read_text()) if d]
    versions = doc["spec"]["versions"]
    schema = versions[0]["schema"]["openAPIV3Schema"]
    for key in inside:
        schema = schema["properties"][key]
    return schema


def compare(model: type[BaseModel], xrd: dict, mine: dict, defs: dict, path: str) -> list[str]:
    """Every difference between an XRD schema and a model's JSON schema, recursively."""
    out: list[str] = []
    mine = _resolve(mine, defs)

    def differ(what: str, theirs: Any, ours: Any) -> None:
        if (model, path, what) not in ALLOWED:
            out.append(
                f"{path or '<root>'}: {what} is {theirs!r} in the schema, {ours!r} in the model"
            )

    for keyword in KEYWORDS:
        theirs, ours = xrd.get(keyword), mine.get(keyword)
        if keyword == "default" and ours is None and "default" not in mine:
            continue  # a default the model builds with a factory: compared by the children
        if keyword == "type" and ours is None:
            continue  # a model field of any type (free-form)
        empty = keyword == "default" and (
            (theirs in ({}, []) and ours is None) or (theirs is None and ours == "")
        )  # an empty default is the same as none
        if theirs != ours and not empty:
            differ(keyword, theirs, ours)
    if mine.get("type") == "object" and "properties" in mine:
        theirs_props, ours_props = xrd.get("properties", {}), mine["properties"]
        for name in sorted(set(theirs_props) | set(ours_props)):
            where = f"{path}.{name}" if path else name
            if name not in ours_props:
                differ(f"property {name!r}", "present", "absent")
            elif name not in theirs_props:
                differ(f"property {name!r}", "absent", "present")
            else:
                out += compare(model, theirs_props[name], ours_props[name], defs, where)
        required = set(mine.get("required", []))
        if set(xrd.get("required", [])) != required:
            differ("required", sorted(xrd.get("required", [])), sorted(required))
    if mine.get("type") == "array" and "items" in mine:
        out += compare(model, xrd.get("items", {}), mine["items"], defs, f"{path}[]")
    return out


@pytest.mark.parametrize(("path", "inside", "model"), SCHEMAS, ids=[s[0] for s in SCHEMAS])
def test_the_schema_and_the_model_agree(path: str, inside: tuple[str, ...], model) -> None:
    mine = model.model_json_schema(by_alias=True, mode="validation")
    differences = compare(model, _xrd_spec(path, inside), mine, mine.get("$defs", {}), "")
    assert not differences, "\n".join(differences)


def test_the_drift_test_sees_a_difference() -> None:
    """A field the model lacks, a changed default and bound, and a type are all found."""
    xrd = _xrd_spec("apis/bsls/definition.yaml", ("spec",))
    xrd = yaml.safe_load(yaml.safe_dump(xrd))
    xrd["properties"]["extra"] = {"type": "string"}
    xrd["properties"]["users"]["maxItems"] = 7
    xrd["properties"]["service"]["properties"]["type"]["default"] = "NodePort"
    xrd["properties"]["networkPolicy"]["properties"]["enabled"]["type"] = "string"
    mine = BSLSSpec.model_json_schema(by_alias=True, mode="validation")
    found = "\n".join(compare(BSLSSpec, xrd, mine, mine["$defs"], ""))
    for expected in ("'extra'", "users: maxItems", "service.type: default", "enabled: type"):
        assert expected in found, found
