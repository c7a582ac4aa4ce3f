"""The Prometheus side of the stack through the real tools: promtool check config / check rules / test rules,
amtool check-config, and the structure every alert of the contract must have."""

from __future__ import annotations

import re

import pytest

from tests.stack.conftest import ALERTS, REPO, RULE_FILES, load_yaml, require_tool, run

UNIT_TESTS = sorted((REPO / "prometheus/tests").glob("*.yml"))


def rules(kind: str) -> list[dict]:
    return [rule for path in RULE_FILES for group in load_yaml(str(path.relative_to(REPO)))["groups"]
            for rule in group["rules"] if kind in rule]


def test_promtool_check_config():
    result = run([require_tool("promtool"), "check", "config", "prometheus/prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_promtool_check_rules():
    result = run([require_tool("promtool"), "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    assert UNIT_TESTS, "no promtool unit tests in prometheus/tests"
    result = run([require_tool("promtool"), "test", "rules", *map(str, UNIT_TESTS)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_amtool_check_config():
    result = run([require_tool("amtool"), "check-config", "alertmanager/alertmanager.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contract_alerts_and_only_them():
    assert sorted(rule["alert"] for rule in rules("alert")) == sorted(ALERTS)


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_severity_annotations_and_runbook(alert):
    [rule] = [r for r in rules("alert") if r["alert"] == alert]
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert re.fullmatch(r"\d+[mh]", rule["for"]), "every alert waits before firing (blips)"
    annotations = rule["annotations"]
    assert "{{ $labels." in annotations["summary"] and "$value" in annotations["summary"], "names the subject and the number"
    assert annotations["description"].strip()
    assert annotations["runbook_url"].endswith("}}" + alert), "links to this alert's runbook (test_runbooks.py)"
    runbook = REPO / f"docs/runbooks/{alert}.md"
    assert runbook.exists(), runbook
    assert alert in runbook.read_text(encoding="utf-8")


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_unit_tests_that_fire_and_that_must_not(alert):
    fire, quiet = 0, 0
    for path in UNIT_TESTS:
        for group in load_yaml(str(path.relative_to(REPO)))["tests"]:
            for case in group.get("alert_rule_test", []):
                if case["alertname"] == alert:
                    if case.get("exp_alerts"):
                        fire += 1
                    else:
                        quiet += 1
    assert fire >= 1 and quiet >= 1, f"{alert}: {fire} firing cases, {quiet} quiet cases"


def test_every_recording_rule_has_a_value_test():
    tested = " ".join(case["expr"] for path in UNIT_TESTS
                      for group in load_yaml(str(path.relative_to(REPO)))["tests"]
                      for case in group.get("promql_expr_test", []))
    missing = {rule["record"] for rule in rules("record")} - set(re.findall(r"[\w:]+:[\w:]+", tested))
    assert not missing


def test_rules_aggregate_over_named_labels_never_on_full_label_sets():
    """The exporters add labels (otel_scope_name, job, instance...): every rate is summed `by` the labels meant."""
    for rule in rules("record") + rules("alert"):
        expr = " ".join(rule["expr"].split())
        calls = re.findall(r"\b(?:rate|increase)\(", expr)
        summed = re.findall(r"sum by \([\w, ]+\) \((?:rate|increase)\(", expr)
        assert len(calls) == len(summed), rule["expr"]
        assert "without" not in expr and "ignoring" not in expr, rule["expr"]
