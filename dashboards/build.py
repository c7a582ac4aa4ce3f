"""Generate the Grafana dashboards of the bundled stack (stdlib only).

    python dashboards/build.py           # rewrite dashboards/*.json
    python dashboards/build.py --check   # exit 1 if the committed JSON differs from what this script builds

Edit this script, not the JSON. Series names are those of docs/metrics.md; every query aggregates with
`sum by (...)` over the labels it means, since the exporters add others (otel_scope_name, job, instance).
Datasource uids are fixed in grafana/provisioning/datasources/llmtrace.yml.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
PROM = {"type": "prometheus", "uid": "prometheus"}
TEMPO = {"type": "tempo", "uid": "tempo"}
SEL = 'gen_ai_provider_name=~"$provider", gen_ai_request_model=~"$model"'
BY = "gen_ai_provider_name, gen_ai_request_model"
MODEL_LEGEND = "{{gen_ai_request_model}} ({{gen_ai_provider_name}})"
CACHE_UID, STREAMS_UID = "llmtrace-cache", "llmtrace-streams"


def tokens(token_type: str) -> str:
    return f'llmtrace_usage_tokens_total{{{SEL}, llmtrace_token_type="{token_type}"}}'


def rate(selector: str, by: str | None = None, window: str = "$__rate_interval") -> str:
    inner = f"rate({selector}[{window}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def increase(selector: str, by: str | None = None) -> str:
    inner = f"increase({selector}[$__range])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


COST = f"llmtrace_cost_usd_total{{{SEL}}}"
SAVINGS = f"llmtrace_cache_savings_usd_total{{{SEL}}}"
PREMIUM = f"llmtrace_cache_write_premium_usd_total{{{SEL}}}"
REQUESTS = f"llmtrace_requests_total{{{SEL}}}"
ERRORS = f'llmtrace_requests_total{{{SEL}, llmtrace_stream_outcome="error"}}'
ABANDONED = f'llmtrace_requests_total{{{SEL}, llmtrace_stream_outcome="abandoned"}}'
MISSES = f'llmtrace_requests_total{{{SEL}, llmtrace_cache_miss_reason!=""}}'
TTFT_BUCKETS = f"gen_ai_client_operation_time_to_first_chunk_seconds_bucket{{{SEL}}}"


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, exemplar: bool = False,
           fmt: str = "time_series") -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": PROM, "editorMode": "code", "expr": expr, "legendFormat": legend or "__auto",
                         "refId": ref, "range": not instant, "instant": instant, "format": fmt}
    if exemplar:
        t["exemplar"] = True
    return t


def traceql(query: str, limit: int = 20) -> dict[str, Any]:
    return {"datasource": TEMPO, "queryType": "traceql", "query": query, "limit": limit, "tableType": "traces",
            "refId": "A"}


def explore_tempo(query: str) -> str:
    """A Grafana Explore URL running a TraceQL search over the panel's time range.

    The JSON is percent-encoded, except the `${...}` data-link variables, which Grafana fills in on click.
    """
    placeholders = {"@FROM@": "${__from}", "@TO@": "${__to}", "@MODEL@": "${__field.labels.gen_ai_request_model}",
                    "@VALUE@": "${__value.raw}"}
    panes = {"traces": {"datasource": "tempo", "queries": [traceql(query)],
                        "range": {"from": "@FROM@", "to": "@TO@"}}}
    url = "/explore?schemaVersion=1&orgId=1&panes=" + quote(json.dumps(panes, separators=(",", ":")), safe="")
    for token, variable in placeholders.items():
        url = url.replace(quote(token, safe=""), variable)
    return url


def panel(kind: str, title: str, description: str, targets: list[dict[str, Any]], grid: tuple[int, int, int, int], *,
          unit: str = "short", datasource: dict[str, str] = PROM, min_: float | None = None,
          max_: float | None = None, stack: bool = False, links: list[dict[str, Any]] | None = None,
          overrides: list[dict[str, Any]] | None = None, thresholds: list[tuple[float | None, str]] | None = None,
          options: dict[str, Any] | None = None, draw: str = "line") -> dict[str, Any]:
    x, y, w, h = grid
    defaults: dict[str, Any] = {"unit": unit}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    steps = thresholds or [(None, "green")]
    defaults["thresholds"] = {"mode": "absolute",
                              "steps": [{"color": color, "value": value} for value, color in steps]}
    if links:
        defaults["links"] = links
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 25 if stack else 8,
                              "showPoints": "never", "spanNulls": False,
                              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                              "thresholdsStyle": {"mode": "line" if thresholds else "off"}}
        defaults["color"] = {"mode": "palette-classic"}
        opts: dict[str, Any] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                                           "calcs": ["mean", "lastNotNull"]},
                                "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        opts = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "none", "textMode": "auto", "justifyMode": "auto"}
    elif kind == "bargauge":
        defaults["color"] = {"mode": "palette-classic"}
        opts = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True}
    else:  # table
        opts = {"showHeader": True, "cellHeight": "sm"}
    opts.update(options or {})
    return {"type": kind, "title": title, "description": description, "datasource": datasource,
            "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []}, "options": opts}


def variables() -> list[dict[str, Any]]:
    def query_var(name: str, label: str, query: str) -> dict[str, Any]:
        return {"name": name, "label": label, "type": "query", "datasource": PROM, "definition": query,
                "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2, "sort": 1, "multi": True, "includeAll": True, "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "regex": "",
                "hide": 0}

    return [query_var("provider", "Provider", "label_values(llmtrace_requests_total, gen_ai_provider_name)"),
            query_var("model", "Model", 'label_values(llmtrace_requests_total{gen_ai_provider_name=~"$provider"}, '
                                        "gen_ai_request_model)")]


def dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]],
              links: list[dict[str, Any]]) -> dict[str, Any]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid, "title": title, "description": description, "tags": ["llmtrace", "llm"],
        "editable": True, "graphTooltip": 1, "timezone": "", "refresh": "30s", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "fiscalYearStartMonth": 0, "liveNow": False,
        "templating": {"list": variables()},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
             "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
            {"datasource": PROM, "enable": True, "iconColor": "red", "name": "llmtrace alerts",
             "expr": 'ALERTS{alertname=~"LLM.+", alertstate="firing"}', "step": "60s",
             "titleFormat": "{{alertname}}", "textFormat": "{{gen_ai_request_model}} {{job}}",
             "useValueForTime": False},
        ]},
        "links": links, "panels": panels,
    }


def cache_dashboard() -> dict[str, Any]:
    hit_rate = f"{rate(tokens('cache_read'), BY)}\n/\n({rate(tokens('input'), BY)} > 0)"
    net_hourly = f"({rate(SAVINGS)} - {rate(PREMIUM)}) * 3600"
    panels = [
        panel("stat", "Cache hit rate", "Share of input tokens read from the prompt cache over the time range "
              "(input counts cached tokens, read and written).",
              [target(f"{increase(tokens('cache_read'))} / {increase(tokens('input'))}", instant=True)],
              (0, 0, 6, 4), unit="percentunit", min_=0, max_=1,
              thresholds=[(None, "red"), (0.3, "orange"), (0.6, "green")]),
        panel("stat", "Net savings", "Cache-read discounts minus cache-write premiums over the time range "
              "(models in the price table only). Negative: caching cost more than it saved.",
              [target(f"{increase(SAVINGS)} - {increase(PREMIUM)}", instant=True)],
              (6, 0, 6, 4), unit="currencyUSD", thresholds=[(None, "red"), (0, "green")]),
        panel("stat", "Cost", "What the calls cost over the time range, from the price table.",
              [target(increase(COST), instant=True)], (12, 0, 6, 4), unit="currencyUSD",
              thresholds=[(None, "blue")]),
        panel("stat", "Calls", "Calls over the time range, whatever their outcome.",
              [target(increase(REQUESTS), instant=True)], (18, 0, 6, 4), unit="short",
              thresholds=[(None, "blue")]),
        panel("timeseries", "Cache hit rate by model",
              "Share of input tokens served from the prompt cache. Dashed: the model's last-hour rate, the baseline "
              "LLMCacheHitRateDrop compares the 5-minute rate with. A drop: see the miss reasons below and the "
              "runbook docs/runbooks/LLMCacheHitRateDrop.md.",
              [target(hit_rate, MODEL_LEGEND),
               target(f"provider_model:llmtrace_cache_hit_ratio:rate1h{{{SEL}}}",
                      "{{gen_ai_request_model}} ({{gen_ai_provider_name}}) 1h baseline", "B")],
              (0, 4, 24, 9), unit="percentunit", min_=0, max_=1,
              overrides=[{"matcher": {"id": "byRegexp", "options": ".*1h baseline"},
                          "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                         {"id": "custom.fillOpacity", "value": 0}]}]),
        panel("timeseries", "Tokens per second by type",
              "input counts all prompt tokens, cached ones included; cache_read and cache_write are the parts of "
              "input read from and written to the cache.",
              [target(rate(f"llmtrace_usage_tokens_total{{{SEL}}}", "llmtrace_token_type"),
                      "{{llmtrace_token_type}}")], (0, 13, 12, 8), unit="short", min_=0),
        panel("timeseries", "Calls by cache outcome",
              "hit: read from the cache only; partial: read and wrote; write: wrote only; miss: caching asked for, "
              "nothing read or written; none: caching not asked for.",
              [target(rate(f'llmtrace_requests_total{{{SEL}, llmtrace_cache_outcome!=""}}', "llmtrace_cache_outcome"),
                      "{{llmtrace_cache_outcome}}")], (12, 13, 12, 8), unit="reqps", min_=0, stack=True),
        panel("timeseries", "Cost per hour: actual, without caching, net savings",
              "Without caching = actual cost + net savings; net savings = read discounts - write premiums. "
              "Models in the price table only.",
              [target(f"{rate(COST)} * 3600", "actual cost"),
               target(f"({rate(COST)} + {rate(SAVINGS)} - {rate(PREMIUM)}) * 3600", "without caching", "B"),
               target(net_hourly, "net savings", "C")],
              (0, 21, 12, 8), unit="currencyUSD"),
        panel("timeseries", "Net savings per hour by model",
              "Read discounts minus write premiums, per hour. Below zero: caching costs more than it saves "
              "(LLMCacheSavingsNegative).",
              [target(f"({rate(SAVINGS, BY)} - {rate(PREMIUM, BY)}) * 3600", MODEL_LEGEND)],
              (12, 21, 12, 8), unit="currencyUSD", thresholds=[(None, "red"), (0, "green")]),
        panel("timeseries", "Cache writes and misses by reason",
              "Why calls wrote to the cache or missed it (llmtrace.cache.miss_reason): first_use, model_changed, "
              "system_changed, tools_changed, prefix_changed, ttl_expired, below_minimum, or the provider's reason.",
              [target(rate(MISSES, "llmtrace_cache_miss_reason"), "{{llmtrace_cache_miss_reason}}")],
              (0, 29, 12, 8), unit="reqps", min_=0, stack=True),
        panel("bargauge", "Writes and misses by model and reason",
              "Calls that wrote or missed over the time range. The runbooks in docs/runbooks/ say how to confirm "
              "each reason from traces.",
              [target(increase(MISSES, "gen_ai_request_model, llmtrace_cache_miss_reason"),
                      "{{gen_ai_request_model}}: {{llmtrace_cache_miss_reason}}", instant=True)],
              (12, 29, 12, 8), unit="short", min_=0),
        panel("table", "Recent calls that wrote or missed the cache (traces)",
              "From Tempo: open a trace to see the call's llmtrace.cache.* attributes.",
              [traceql('{ span.llmtrace.cache.outcome =~ "write|miss" && span.gen_ai.request.model =~ "${model:regex}" }'
                       " | select(span.gen_ai.request.model, span.llmtrace.cache.miss_reason, "
                       "span.gen_ai.usage.cache_write.input_tokens)")],
              (0, 37, 24, 9), datasource=TEMPO),
    ]
    return dashboard(CACHE_UID, "LLM prompt cache",
                     "Prompt-cache hit rate, tokens, cost and savings, and why calls miss the cache (llmtrace).",
                     panels, [{"title": "LLM streaming", "type": "link", "url": f"/d/{STREAMS_UID}",
                               "icon": "dashboard", "keepTime": True, "includeVars": True}])


def streams_dashboard() -> dict[str, Any]:
    slow_traces = {"title": "Calls at least this slow (traces)", "targetBlank": True, "url": explore_tempo(
        '{ span.gen_ai.request.model = "@MODEL@" && span.gen_ai.response.time_to_first_chunk >= @VALUE@ }')}
    quantiles = [target(f"histogram_quantile({q}, {rate(TTFT_BUCKETS, 'le, ' + BY)})",
                        f"p{int(q * 100)} {MODEL_LEGEND}", ref, exemplar=q == 0.95)
                 for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]
    error_share = f"{rate(ERRORS, BY)}\n/\n({rate(REQUESTS, BY)} > 0)"
    panels = [
        panel("stat", "p95 time to first chunk", "Over the time range, all selected models.",
              [target(f"histogram_quantile(0.95, sum by (le) (increase({TTFT_BUCKETS}[$__range])))", instant=True)],
              (0, 0, 6, 4), unit="s", thresholds=[(None, "green"), (5, "orange"), (10, "red")]),
        panel("stat", "Error share", "Calls that ended in an error over the time range.",
              [target(f"{increase(ERRORS)} / {increase(REQUESTS)}", instant=True)],
              (6, 0, 6, 4), unit="percentunit", thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")]),
        panel("stat", "Abandoned streams", "Streams closed or dropped by the app before their end.",
              [target(f"{increase(ABANDONED)} / {increase(REQUESTS)}", instant=True)],
              (12, 0, 6, 4), unit="percentunit", thresholds=[(None, "blue")]),
        panel("stat", "Streams per second", "Streams that produced content, averaged over the time range.",
              [target(f"sum(rate(gen_ai_client_operation_time_to_first_chunk_seconds_count{{{SEL}}}[$__range]))",
                      instant=True)], (18, 0, 6, 4), unit="reqps", thresholds=[(None, "blue")]),
        panel("timeseries", "Time to first chunk p50 / p95 / p99",
              "From the call to the first chunk of generated content (text, tool input, thinking). Exemplar dots "
              "(p95) open the trace of one call; the panel link searches Tempo for calls at least as slow.",
              quantiles, (0, 4, 24, 9), unit="s", min_=0, links=[slow_traces],
              thresholds=[(None, "green"), (10, "red")]),
        panel("timeseries", "Call duration p95 by model",
              "Whole call, until the stream ended. Exemplar dots open the trace of one call.",
              [target(f"histogram_quantile(0.95, {rate(f'gen_ai_client_operation_duration_seconds_bucket{{{SEL}}}', 'le, ' + BY)})",
                      MODEL_LEGEND, exemplar=True)], (0, 13, 12, 8), unit="s", min_=0),
        panel("timeseries", "Chunks per stream",
              "Items the SDK stream yields per call (keep-alive pings and [DONE] excluded): mean and p95.",
              [target(f"{rate(f'llmtrace_stream_chunks_sum{{{SEL}}}', BY)}\n/\n"
                      f"({rate(f'llmtrace_stream_chunks_count{{{SEL}}}', BY)} > 0)", f"mean {MODEL_LEGEND}"),
               target(f"histogram_quantile(0.95, {rate(f'llmtrace_stream_chunks_bucket{{{SEL}}}', 'le, ' + BY)})",
                      f"p95 {MODEL_LEGEND}", "B")], (12, 13, 12, 8), unit="short", min_=0),
        panel("timeseries", "Stream outcomes",
              "completed: the terminal event arrived; abandoned: closed or dropped before it; error: failed.",
              [target(rate(REQUESTS, "llmtrace_stream_outcome"), "{{llmtrace_stream_outcome}}")],
              (0, 21, 12, 8), unit="reqps", min_=0, stack=True,
              overrides=[{"matcher": {"id": "byName", "options": "error"},
                          "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]}]),
        panel("timeseries", "Error share by model", "LLMStreamErrorsHigh fires above 5% for 10 minutes.",
              [target(error_share, MODEL_LEGEND)], (12, 21, 12, 8), unit="percentunit", min_=0,
              thresholds=[(None, "green"), (0.05, "red")]),
        panel("timeseries", "Errors by type",
              "error.type: the exception class or the provider's error type (e.g. overloaded_error).",
              [target(rate(f'gen_ai_client_operation_duration_seconds_count{{{SEL}, error_type!=""}}',
                           "gen_ai_request_model, error_type"), "{{gen_ai_request_model}}: {{error_type}}")],
              (0, 29, 12, 8), unit="reqps", min_=0, stack=True, draw="bars"),
        panel("timeseries", "Tokens per call p95",
              "Input (cached tokens included) and output tokens of one call, 95th percentile.",
              [target(f"histogram_quantile(0.95, {rate(f'gen_ai_client_token_usage_bucket{{{SEL}}}', 'le, gen_ai_token_type')})",
                      "{{gen_ai_token_type}}")], (12, 29, 12, 8), unit="short", min_=0),
        panel("table", "Recent failed calls (traces)", "From Tempo: calls that ended in an error.",
              [traceql('{ span.llmtrace.stream.outcome = "error" && span.gen_ai.request.model =~ "${model:regex}" }'
                       " | select(span.gen_ai.request.model, span.error.type)")],
              (0, 37, 24, 9), datasource=TEMPO),
    ]
    return dashboard(STREAMS_UID, "LLM streaming",
                     "Time to first token, durations, chunks per stream, stream outcomes and errors (llmtrace).",
                     panels, [{"title": "LLM prompt cache", "type": "link", "url": f"/d/{CACHE_UID}",
                               "icon": "dashboard", "keepTime": True, "includeVars": True}])


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    return {"llmtrace-cache.json": cache_dashboard(), "llmtrace-streams.json": streams_dashboard()}


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, model in dashboards().items():
        path, text = HERE / name, render(model)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
