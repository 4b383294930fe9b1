"""The Prometheus alert rules deploy/ ships: they parse, and they watch the metrics the sanction service exports
under the names it exports them (a rule on a misspelt metric is silent forever)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "debar-alerts.yaml"


def rules() -> list[dict[str, object]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_every_rule_is_an_alert_with_an_expression_and_a_summary() -> None:
    for rule in rules():
        assert rule["alert"] and rule["expr"], rule
        assert "summary" in rule["annotations"], rule  # type: ignore[operator]


def test_the_enumeration_alert_watches_the_distinct_subjects_per_caller() -> None:
    enumeration = [r for r in rules() if r["alert"] == "DebarSubjectEnumeration"]
    assert len(enumeration) == 2
    for rule in enumeration:
        assert re.search(r"max by \(caller\) \(.*debar_distinct_subjects", str(rule["expr"]))


def test_the_rules_name_only_metrics_the_sanction_service_exports() -> None:
    exported = {"debar_distinct_subjects", "debar_rate_limited_by_caller_total"}
    named = {m for rule in rules() for m in re.findall(r"\bdebar_\w+", str(rule["expr"]))}
    assert named <= exported, named - exported
