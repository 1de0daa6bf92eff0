"""Golden answers: the whole response for every example, compared with a reviewed file.

Each example XR is reconciled the way Crossplane drives it, with its Composition's
function input, a fixed clock and reproducible key material (`helpers.SeededEntropy`;
certificates are signed deterministically), so the answers are byte-identical from run
to run. Two reconciles each: the first (requirements resolved, everything generated)
and a settled one (everything observed, the Deployment available, the Jobs complete).
`tests/golden/<example>.yaml` holds both, readably: Secret values decoded.

After a change that is meant to change an answer, rewrite the files with
`make golden` and review the diff with `git diff tests/golden`.
"""

from __future__ import annotations

import base64
import difflib
import os

import pytest
import yaml
from google.protobuf import json_format

from tests import helpers as h

ROOT = h.ROOT
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# example -> (Composition, required resources)
EXAMPLES = {
    "bsls.yaml": ("apis/bsls/composition.yaml", "required"),
    "bslr.yaml": ("apis/bslr/composition.yaml", "required"),
    "bslr-s3.yaml": ("apis/bslr/composition.yaml", "required"),
    "bslr-gcs.yaml": ("apis/bslr/composition.yaml", "required"),
    "bslr-azure.yaml": ("apis/bslr/composition.yaml", "required"),
    "bslr-s3-locked.yaml": ("apis/bslr/composition.yaml", "required"),
    "bslr-s3-irsa.yaml": ("apis/bslr/composition.yaml", "required"),
    "legacy/xbsls.yaml": ("apis/bsls-legacy/composition.yaml", "legacy/required"),
    "legacy/xbslr.yaml": ("apis/bslr-legacy/composition.yaml", "legacy/required"),
}


def function_input(composition: str) -> dict:
    [doc] = h.load(ROOT / composition)
    [step] = doc["spec"]["pipeline"]
    return step["input"]


def readable(rsp) -> dict:
    """The response as plain data, each Secret's values decoded where they are text."""
    out = json_format.MessageToDict(rsp, preserving_proto_field_name=True)
    for composed in out.get("desired", {}).get("resources", {}).values():
        obj = composed.get("resource", {})
        if obj.get("kind") == "Secret":
            for key, value in obj.get("data", {}).items():
                raw = base64.b64decode(value)
                try:
                    obj["data"][key] = {"decoded": raw.decode("utf-8")}
                except UnicodeDecodeError:
                    obj["data"][key] = value
    return out


def answers(example: str) -> str:
    composition, required = EXAMPLES[example]
    xr = h.example(example)
    pool = [o for f in sorted((h.EXAMPLES / required).glob("*.yaml")) for o in h.load(f)]
    runner = h.FunctionRunner(clock=h.Clock(), entropy=h.SeededEntropy(example))
    inp = function_input(composition)
    first = h.reconcile(xr, pool=pool, inp=inp, runner=runner)
    statuses = {}
    for key, obj in h.desired(first).items():
        if obj["kind"] == "Deployment":
            statuses[key] = h.DEPLOYMENT_AVAILABLE
        elif obj["kind"] == "Job":
            statuses[key] = h.JOB_COMPLETE
    observed = h.as_observed(first, **statuses)
    settled = h.reconcile(xr, observed=observed, pool=pool, inp=inp, runner=runner)
    docs = [
        {"reconcile": "first", "response": readable(first)},
        {"reconcile": "settled", "response": readable(settled)},
    ]
    return yaml.safe_dump_all(docs, sort_keys=True, width=100, allow_unicode=True)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_answer_is_the_reviewed_one(example: str) -> None:
    path = GOLDEN / (example.replace("/", "-").removesuffix(".yaml") + ".yaml")
    got = answers(example)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    want = path.read_text() if path.exists() else ""
    if got != want:
        diff = difflib.unified_diff(
            want.splitlines(), got.splitlines(), str(path), "this run", lineterm="", n=2
        )
        lines = list(diff)
        shown = "\n".join(lines[:150]) + (
            f"\n... ({len(lines) - 150} more)" if len(lines) > 150 else ""
        )
        pytest.fail(f"the answer for {example} changed (make golden to accept):\n{shown}")


def test_answers_are_reproducible() -> None:
    assert answers("bsls.yaml") == answers("bsls.yaml")


def test_every_example_xr_has_a_golden_answer() -> None:
    xrs = {
        p.relative_to(h.EXAMPLES).as_posix()
        for p in [*h.EXAMPLES.glob("bsl*.yaml"), *h.EXAMPLES.glob("legacy/x*.yaml")]
    }
    assert xrs == set(EXAMPLES)
    kept = {p.name for p in GOLDEN.glob("*.yaml")}
    assert kept == {e.replace("/", "-") for e in EXAMPLES}
