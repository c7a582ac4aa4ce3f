"""Runbook links that open: every alert's runbook_url, as promtool renders it from the shipped rules, is a runbook
page of the bundled stack (a provisioned Grafana dashboard whose text is the runbook); with the documented setting
(the external label llmtrace_runbook_base_url) it is the configured host; and nothing the stack ships links to an
address outside the project, the stack or the user's own."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from tests.stack.conftest import ALERTS, REPO, build_module, load, load_yaml, require_tool, run

UNIT_TESTS = sorted((REPO / "prometheus/tests").glob("*.yml"))
BASE_LABEL = "llmtrace_runbook_base_url"
CONFIGURED_BASE = "https://docs.example.test/llmtrace/runbooks/"


def provisioned_dashboards() -> dict[str, dict[str, Any]]:
    """uid -> dashboard, of every JSON file the Grafana file provider loads (it walks its path recursively)."""
    return {d["uid"]: d for d in map(load, sorted((REPO / "dashboards").rglob("*.json")))}


def grafana_address() -> str:
    """Where the bundled Grafana answers on the host: its published port in docker-compose.yml."""
    [port] = load_yaml("docker-compose.yml")["services"]["grafana"]["ports"]
    host_ip, host_port, _ = str(port).split(":")
    return f"http://{host_ip}:{host_port}"


def rendered_runbook_urls(test_file: Path) -> dict[str, set[str]]:
    """alert -> the runbook_url values a promtool test file expects the shipped rules to render."""
    urls: dict[str, set[str]] = {}
    for group in yaml.safe_load(test_file.read_text(encoding="utf-8"))["tests"]:
        for case in group.get("alert_rule_test", []):
            for alert in case.get("exp_alerts") or []:
                if "runbook_url" in alert.get("exp_annotations", {}):
                    urls.setdefault(case["alertname"], set()).add(alert["exp_annotations"]["runbook_url"])
    return urls


def test_promtool_renders_every_alerts_link_to_its_runbook_dashboard():
    """The promtool cases pin what the shipped rules render (test_prometheus_rules.py runs them); every alert has
    such a case, and its link opens the bundled Grafana's runbook dashboard for that alert."""
    rendered: dict[str, set[str]] = {}
    for path in UNIT_TESTS:
        for alert, urls in rendered_runbook_urls(path).items():
            rendered.setdefault(alert, set()).update(urls)
    assert sorted(rendered) == sorted(ALERTS)
    boards = provisioned_dashboards()
    for alert, urls in rendered.items():
        [url] = urls
        parts = urllib.parse.urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == grafana_address(), url
        uid = parts.path.removeprefix("/d/")
        assert parts.path == f"/d/{uid}" and len(uid) <= 40, url  # Grafana's uid limit
        assert uid in boards, f"{alert}: no provisioned dashboard {uid}"
        [panel] = boards[uid]["panels"]
        assert panel["type"] == "text" and panel["options"]["mode"] == "markdown"
        assert panel["options"]["content"].startswith(f"# {alert}\n"), "the page is this alert's runbook"


def test_the_base_url_setting_points_every_alert_at_the_configured_host(tmp_path):
    """Every promtool case again, with the external label set as docs/stack.md says: each alert's link is the
    configured base URL followed by the alert name (promtool renders it from the shipped rules)."""
    default = f"{grafana_address()}/d/runbook-"
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["rule_files"] = [str((path.parent / f).resolve()) for f in doc["rule_files"]]
        for group in doc["tests"]:
            group["external_labels"] = {BASE_LABEL: CONFIGURED_BASE}
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    annotations = alert.get("exp_annotations", {})
                    if "runbook_url" in annotations:
                        assert annotations["runbook_url"] == default + case["alertname"]
                        annotations["runbook_url"] = CONFIGURED_BASE + case["alertname"]
        variant = tmp_path / path.name
        variant.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        result = run([require_tool("promtool"), "test", "rules", str(variant)], timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_rules_take_the_base_url_from_the_external_label_with_the_bundled_grafana_as_fallback():
    rules = [r for g in load_yaml("prometheus/rules/llmtrace-alerts.yml")["groups"] for r in g["rules"]]
    for rule in rules:
        assert rule["annotations"]["runbook_url"] == (
            f"{{{{ with $externalLabels.{BASE_LABEL} }}}}{{{{ . }}}}{{{{ else }}}}{grafana_address()}/d/runbook-"
            f"{{{{ end }}}}{rule['alert']}")


def test_prometheus_config_drops_the_base_url_label_from_alerts():
    """External labels go on every alert sent to Alertmanager: the shipped config drops this one there."""
    config = load_yaml("prometheus/prometheus.yml")
    assert {"action": "labeldrop", "regex": BASE_LABEL} in config["alerting"]["alert_relabel_configs"]
    text = (REPO / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    assert f"#   {BASE_LABEL}: https://" in text, "the setting, commented out, where it is set"


def test_runbook_dashboards_are_the_runbooks():
    """One provisioned dashboard per runbook, whose text panel is the runbook's markdown (links to other runbooks
    open their dashboards; other docs, which Grafana does not serve, become their repository path)."""
    build = build_module()
    boards = provisioned_dashboards()
    runbooks = sorted((REPO / "docs/runbooks").glob("*.md"))
    assert [p.stem for p in runbooks] == sorted(ALERTS)
    for path in runbooks:
        board = boards[f"runbook-{path.stem}"]
        assert board["title"] == f"Runbook: {path.stem}" and set(board["tags"]) >= {"llmtrace", "runbook"}
        [panel] = board["panels"]
        content = panel["options"]["content"]
        assert content == build.runbook_markdown(path.read_text(encoding="utf-8"))
        source_lines = [line for line in path.read_text(encoding="utf-8").splitlines() if "](" not in line]
        assert all(line in content.splitlines() for line in source_lines), "the text is the runbook's"
        for target in re.findall(r"\]\(([^)]+)\)", content):
            assert target.startswith("/d/runbook-") and target.removeprefix("/d/").split("#")[0] in boards, target
        assert {link["url"] for link in board["links"] if link["type"] == "link"} == {
            "/d/llmtrace-cache", "/d/llmtrace-streams"}


def test_runbook_links_rewrite():
    build = build_module()
    assert build.runbook_markdown("see [A](LLMCacheHitRateDrop.md) and [B](../pricing.md), [C](../stack.md#x)") == (
        "see [A](/d/runbook-LLMCacheHitRateDrop) and B (`docs/pricing.md`), C (`docs/stack.md`)")


def test_the_setting_is_documented_in_the_stack_docs_and_every_runbook():
    stack = (REPO / "docs/stack.md").read_text(encoding="utf-8")
    section = stack.split("### Runbook links", 1)[1].split("\n## ", 1)[0]
    assert BASE_LABEL in section and "labeldrop" in section and "http://127.0.0.1:3000/d/runbook-" in section
    for alert in ALERTS:
        text = (REPO / f"docs/runbooks/{alert}.md").read_text(encoding="utf-8")
        assert BASE_LABEL in text and f"http://127.0.0.1:3000/d/runbook-{alert}" in text, alert


# Hosts a shipped file may name: loopback, the Compose services, and placeholders for the user's own hosts.
OWN_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "otel-collector", "prometheus", "alertmanager", "tempo",
             "grafana", "mimir", "thanos-receive", "otel-gateway", "tempo-distributor"}
SHIPPED = ["README.md", "docker-compose.yml", ".env.example", "docs", "dashboards", "prometheus", "grafana",
           "alertmanager", "collector-config", "examples"]


def test_nothing_shipped_links_outside_the_project_the_stack_or_the_user():
    foreign = []
    files = [p for entry in SHIPPED for p in ([REPO / entry] if (REPO / entry).is_file()
                                              else sorted((REPO / entry).rglob("*"))) if p.is_file()]
    for path in files:
        if path.suffix not in {".md", ".yml", ".yaml", ".json", ".py", ".example", ""}:
            continue
        for url in re.findall(r"https?://[^\s\"'`)<>\]\\]+", path.read_text(encoding="utf-8")):
            host = urllib.parse.urlsplit(url).hostname or ""
            if host not in OWN_HOSTS and not host.endswith((".example.com", ".example.test", ".example")):
                foreign.append(f"{path.relative_to(REPO)}: {url}")
    assert not foreign, "\n".join(foreign)


def test_miss_reason_panels_link_to_the_trace_search_of_those_calls():
    """The cache dashboard's miss-reason panels link to a Tempo search (Grafana Explore) for the clicked model's
    and reason's writes and misses, with the attributes that locate the change as columns."""
    datasources = {d["uid"]: d["type"] for d in load_yaml("grafana/provisioning/datasources/llmtrace.yml")["datasources"]}
    cache = load(REPO / "dashboards/llmtrace-cache.json")
    panels = {p["title"]: p for p in cache["panels"]}
    for title, model in (("Writes and misses by model and reason", '= "${__field.labels.gen_ai_request_model}"'),
                         ("Cache writes and misses by reason", '=~ "${model:pipe}"')):
        [link] = panels[title]["fieldConfig"]["defaults"]["links"]
        url = urllib.parse.urlsplit(link["url"])
        assert url.path == "/explore" and link["targetBlank"], title
        [panes] = urllib.parse.parse_qs(url.query)["panes"]
        [pane] = json.loads(panes).values()
        assert datasources.get(pane["datasource"]) == "tempo", pane["datasource"]
        [query] = pane["queries"]
        assert query["datasource"] == {"type": "tempo", "uid": pane["datasource"]} and query["queryType"] == "traceql"
        assert pane["range"] == {"from": "${__from}", "to": "${__to}"}
        traceql = query["query"]
        assert 'span.llmtrace.cache.outcome =~ "write|miss"' in traceql, traceql
        assert f"span.gen_ai.request.model {model}" in traceql, traceql
        assert 'span.llmtrace.cache.miss_reason = "${__field.labels.llmtrace_cache_miss_reason}"' in traceql
        match, _, select = traceql.partition(" | select(")
        assert match.count("{") == match.count("}") and select.endswith(")"), traceql
        for attribute in ("llmtrace.cache.changed_block", "llmtrace.cache.changed_offset",
                          "llmtrace.cache.prefix_fingerprint"):
            assert f"span.{attribute}" in select, attribute
        # The clicked series carries the labels the link reads.
        [target] = panels[title]["targets"]
        grouped = re.search(r"sum by \(([^)]*)\)", target["expr"]).group(1).split(", ")
        for label in re.findall(r"__field\.labels\.(\w+)", traceql):
            assert label in grouped, (title, label)
