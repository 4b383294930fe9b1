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
    exported = {"debar_distinct_subjects", "debar_rate_limited_by_caller_total", "debar_writes_unreplicated_total"}
    named = {m for rule in rules() for m in re.findall(r"\bdebar_\w+", str(rule["expr"]))}
    assert named <= exported, named - exported


def promtool_pages(tmp_path: Path, caller: str, values: str, at: str, value: str, rule_says: str) -> None:
    """promtool evaluates the rules file as Prometheus does: `caller`'s series (`values`, one a minute) pages at
    `at` with `value`, by the enumeration rule whose annotations say `rule_says`, and by no other."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed")
    [rule] = [r for r in rules() if r["alert"] == "DebarSubjectEnumeration" and rule_says in str(r["annotations"])]
    expected = {k: str(v).replace("{{ $labels.caller }}", caller).replace("{{ $value }}", value)
                for k, v in rule["annotations"].items()}  # type: ignore[attr-defined]  # fmt: skip
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({
        "rule_files": [str(RULES)], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": f'debar_distinct_subjects{{caller="{caller}"}}', "values": values}],
            "alert_rule_test": [{"eval_time": at, "alertname": "DebarSubjectEnumeration", "exp_alerts": [
                {"exp_labels": {"severity": "page", "caller": caller}, "exp_annotations": expected}]}],
        }],
    }))  # fmt: skip
    done = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_caller_with_no_past_week_still_pages_when_it_walks_the_id_space(tmp_path: Path) -> None:
    """Security review: `x > 3 * max_over_time(x[7d] offset 1h)` drops a caller with no series an hour back, so a
    platform name never seen before (minted with a leaked operator key, one per hour) never paged."""
    promtool_pages(tmp_path, "railway/platform:fresh", "_x60 0+1000x15", "75m", "15000", "weekly peak")


def test_a_persons_credential_asking_through_a_domain_service_is_held_to_a_persons_threshold(tmp_path: Path) -> None:
    """Security review: any authenticated caller may ask a domain service, which asks for it (`railway/reviewer:li`);
    that key matched neither person pattern and waited for the services' 10,000 an hour."""
    promtool_pages(tmp_path, "railway/reviewer:li", "0+10x40", "40m", "400", "A person's identity")


def promtool_test(tmp_path: Path, series: str, values: str, at: str, alert: str, expected: list[dict]) -> None:  # type: ignore[type-arg]
    """promtool evaluates the rules file: at `at`, `alert` fires exactly `expected` (promtool's exp_alerts)."""
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus) is not installed")
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({
        "rule_files": [str(RULES)], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": [{"series": series, "values": values}],
                   "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}]}],
    }))  # fmt: skip
    done = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


UNREPLICATED = 'debar_writes_unreplicated_total{instance="sanction-0:9090"}'


def test_writes_refused_for_five_minutes_for_too_few_replicas_page(tmp_path: Path) -> None:
    [rule] = [r for r in rules() if r["alert"] == "DebarWritesUnreplicated"]
    summary = str(rule["annotations"]["summary"]).replace("{{ $labels.instance }}", "sanction-0:9090")  # type: ignore[index]
    page = [{"exp_labels": {"severity": "page", "instance": "sanction-0:9090"},
             "exp_annotations": {"summary": summary, "description": rule["annotations"]["description"]}}]  # type: ignore[index]  # fmt: skip
    # Refusals every minute from minute 0: pending from the first rate, firing five minutes on.
    promtool_test(tmp_path, UNREPLICATED, "0+30x20", "12m", "DebarWritesUnreplicated", page)
    promtool_test(tmp_path, UNREPLICATED, "0+30x20", "4m", "DebarWritesUnreplicated", [])


def test_a_failovers_few_refusals_do_not_page(tmp_path: Path) -> None:
    """A burst (a failover, a replica restarting) and then none: the rate falls to 0 within its window."""
    promtool_test(tmp_path, UNREPLICATED, "0 40 40x20", "15m", "DebarWritesUnreplicated", [])
