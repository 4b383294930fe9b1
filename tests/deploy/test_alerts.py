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


def test_a_caller_with_no_past_week_still_pages_when_it_walks_the_id_space(tmp_path: Path) -> None:
    """Security review: `x > 3 * max_over_time(x[7d] offset 1h)` drops a caller with no series an hour back, so a
    platform name never seen before (minted with a leaked operator key, one per hour) never paged. promtool
    evaluates the rules file as Prometheus does."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed")
    caller = "railway/platform:fresh"  # first seen this hour (no past week), walking the ID space
    [rule] = [r for r in rules() if r["alert"] == "DebarSubjectEnumeration" and "weekly peak" in str(r["annotations"])]
    expected = {k: str(v).replace("{{ $labels.caller }}", caller).replace("{{ $value }}", "15000")
                for k, v in rule["annotations"].items()}  # type: ignore[attr-defined]  # fmt: skip
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({
        "rule_files": [str(RULES)], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": f'debar_distinct_subjects{{caller="{caller}"}}', "values": "_x60 0+1000x15"}],
            "alert_rule_test": [{"eval_time": "75m", "alertname": "DebarSubjectEnumeration", "exp_alerts": [
                {"exp_labels": {"severity": "page", "caller": caller}, "exp_annotations": expected}]}],
        }],
    }))  # fmt: skip
    done = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
