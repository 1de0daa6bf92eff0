"""examples/monitoring reads fields the BSLS status really has (a drift test)."""

from __future__ import annotations

import yaml

from tests.helpers import ROOT

MONITORING = ROOT / "examples" / "monitoring"


def _status_schema() -> dict:
    [xrd] = [d for d in yaml.safe_load_all((ROOT / "apis/bsls/definition.yaml").read_text()) if d]
    return xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def _walk(schema: dict, path: list[str]) -> dict:
    for part in path:
        if schema.get("type") == "array":
            schema = schema["items"]
        assert part in schema.get("properties", {}), f"status has no {'.'.join(path)}"
        schema = schema["properties"][part]
    return schema


def _metrics() -> list[dict]:
    [config_map, *_] = yaml.safe_load_all((MONITORING / "kube-state-metrics.yaml").read_text())
    config = yaml.safe_load(config_map["data"]["bsls-metrics.yaml"])
    [resource] = config["spec"]["resources"]
    assert resource["groupVersionKind"]["kind"] == "BackupStorageLocationServer"
    return resource["metrics"]


def test_every_metric_reads_a_field_of_the_status() -> None:
    status = _status_schema()
    for metric in _metrics():
        each = metric["each"]
        spec = each["gauge"] if each["type"] == "Gauge" else each["stateSet"]
        path = spec["path"]
        if path == ["status", "conditions"]:
            continue  # Crossplane's own field on every XR
        target = _walk(status, path[1:])
        for extra in (spec.get("valueFrom"), *spec.get("labelsFromPath", {}).values()):
            if extra:
                _walk(target, extra)


def test_the_alerts_use_the_metrics_defined() -> None:
    names = {f"bsls_{m['name']}" for m in _metrics()}
    rule = yaml.safe_load((MONITORING / "prometheus-rule.yaml").read_text())
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            used = {w for w in r["expr"].replace("{", " ").split() if w.startswith("bsls_")}
            assert used, r["alert"]
            assert used <= names, f"{r['alert']} uses {used - names}"
