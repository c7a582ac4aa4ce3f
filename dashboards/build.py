"""Generate the Grafana dashboards of the bundled stack with Grafana's typed builders (grafana-foundation-sdk).

    pip install -c ci/constraints.txt -e '.[dashboards]'
    python dashboards/build.py           # rewrite dashboards/*.json and dashboards/runbooks/*.json
    python dashboards/build.py --check   # exit 1 if the committed JSON differs from what this script builds

Edit this script (or a runbook in docs/runbooks/), not the JSON. Series names are those of docs/metrics.md; every
query aggregates with `sum by (...)` over the labels it means, since the exporters add others (otel_scope_name, job,
instance). Datasource uids are fixed in grafana/provisioning/datasources/llmtrace.yml. Each runbook becomes a
dashboard of its own (uid `runbook-<alert>`): the alerts' runbook_url opens it in the bundled Grafana.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from grafana_foundation_sdk.builders import bargauge, stat, table, tempo, text, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models
from grafana_foundation_sdk.models import tempo as tempo_models
from grafana_foundation_sdk.models import text as text_models

HERE = Path(__file__).resolve().parent
RUNBOOKS = HERE.parent / "docs" / "runbooks"
PROM = dashboard_models.DataSourceRef(type_val="prometheus", uid="prometheus")
TEMPO = dashboard_models.DataSourceRef(type_val="tempo", uid="tempo")
SEL = 'gen_ai_provider_name=~"$provider", gen_ai_request_model=~"$model"'
BY = "gen_ai_provider_name, gen_ai_request_model"
MODEL_LEGEND = "{{gen_ai_request_model}} ({{gen_ai_provider_name}})"
CACHE_UID, STREAMS_UID = "llmtrace-cache", "llmtrace-streams"
RUNBOOK_TAGS = ["llmtrace", "runbook"]
# Span attributes of a write or miss that say where the cached prefix changed, and which prompt version a
# replica runs (contract: "Cache diagnosis"); a trace search shows them as columns.
CACHE_DIAGNOSIS = ("span.llmtrace.cache.miss_reason", "span.llmtrace.cache.changed_block",
                   "span.llmtrace.cache.changed_offset", "span.llmtrace.cache.prefix_fingerprint",
                   "resource.service.instance.id")


def runbook_uid(alert: str) -> str:
    return f"runbook-{alert}"


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


# --- queries -----------------------------------------------------------------------------------------------------

def promql(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False,
           exemplar: bool = False) -> prometheus_builders.Dataquery:
    query = (prometheus_builders.Dataquery().datasource(PROM).editor_mode(prometheus_models.QueryEditorMode.CODE)
             .expr(expr).legend_format(legend or "__auto").ref_id(ref)
             .format(prometheus_models.PromQueryFormat.TIME_SERIES))
    query = query.instant() if instant else query.range()
    return query.exemplar(True) if exemplar else query


def traceql(query: str, *, limit: int = 20,
            table_type: tempo_models.SearchTableType = tempo_models.SearchTableType.TRACES) -> tempo.TempoQuery:
    return (tempo.TempoQuery().datasource(TEMPO).query_type(tempo_models.TempoQueryType.TRACEQL).query(query)
            .limit(limit).table_type(table_type).ref_id("A"))


def explore_tempo(query: str, table_type: tempo_models.SearchTableType = tempo_models.SearchTableType.TRACES) -> str:
    """A Grafana Explore URL running a TraceQL search in Tempo over the panel's time range.

    The panes JSON is percent-encoded, except the `${...}` data-link variables, which Grafana fills in on click.
    """
    placeholders = {"@FROM@": "${__from}", "@TO@": "${__to}", "@MODEL@": "${__field.labels.gen_ai_request_model}",
                    "@REASON@": "${__field.labels.llmtrace_cache_miss_reason}", "@VALUE@": "${__value.raw}",
                    "@MODELS@": "${model:pipe}"}
    panes = {"traces": {"datasource": TEMPO.uid, "queries": [traceql(query, table_type=table_type).build()],
                        "range": {"from": "@FROM@", "to": "@TO@"}}}
    url = "/explore?schemaVersion=1&orgId=1&panes=" + quote(
        json.dumps(panes, cls=JSONEncoder, separators=(",", ":")), safe="")
    for token, variable in placeholders.items():
        url = url.replace(quote(token, safe=""), variable)
    return url


def cache_writes_search(model: str, reason: str, *, model_op: str = "=") -> str:
    """TraceQL: the calls of `model` that wrote or missed the cache for `reason`, with where their prefix changed."""
    match = f'span.llmtrace.cache.outcome =~ "write|miss" && span.gen_ai.request.model {model_op} "{model}"'
    match += f' && span.llmtrace.cache.miss_reason = "{reason}"'
    return f"{{ {match} }} | select({', '.join(CACHE_DIAGNOSIS)})"


def trace_link(title: str, url: str, *, blank: bool = True) -> dashboard_builders.DashboardLink:
    return dashboard_builders.DashboardLink(title).url(url).target_blank(blank)


# --- panels ------------------------------------------------------------------------------------------------------

P = TypeVar("P", timeseries.Panel, stat.Panel, bargauge.Panel, table.Panel)


def base(panel: P, title: str, description: str, size: tuple[int, int], datasource: dashboard_models.DataSourceRef
         = PROM, targets: list[cogbuilder.Builder[Any]] | None = None) -> P:
    """Title, description, size (width, height; Grafana places panels left to right) and queries."""
    width, height = size
    panel = panel.title(title).description(description).span(width).height(height).datasource(datasource)
    return panel.targets(targets) if targets else panel


def bounds(panel: P, min_: float | None, max_: float | None) -> P:
    if min_ is not None:
        panel = panel.min(min_)
    return panel if max_ is None else panel.max(max_)


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (dashboard_builders.ThresholdsConfig().mode(dashboard_models.ThresholdsMode.ABSOLUTE)
            .steps([dashboard_models.Threshold(value=value, color=color) for value, color in steps]))


def reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def stat_panel(title: str, description: str, expr: str, unit: str,
               steps: tuple[tuple[float | None, str], ...], *, min_: float | None = None,
               max_: float | None = None) -> stat.Panel:
    panel = (base(stat.Panel(), title, description, (6, 4), targets=[promql(expr, instant=True)])
             .unit(unit).thresholds(thresholds(*steps))
             .color_scheme(dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.THRESHOLDS))
             .reduce_options(reduce_last()).color_mode(common.BigValueColorMode.VALUE)
             .graph_mode(common.BigValueGraphMode.NONE).text_mode(common.BigValueTextMode.AUTO)
             .justify_mode(common.BigValueJustifyMode.AUTO))
    return bounds(panel, min_, max_)


def timeseries_panel(title: str, description: str, targets: list[prometheus_builders.Dataquery],
                     size: tuple[int, int], unit: str, *, min_: float | None = None, max_: float | None = None,
                     stack: bool = False, steps: tuple[tuple[float | None, str], ...] = (),
                     draw: common.GraphDrawStyle = common.GraphDrawStyle.LINE) -> timeseries.Panel:
    threshold_lines = common.GraphThresholdsStyleMode.LINE if steps else common.GraphThresholdsStyleMode.OFF
    panel = (base(timeseries.Panel(), title, description, size, targets=targets)
             .unit(unit).thresholds(thresholds(*(steps or ((None, "green"),))))
             .color_scheme(dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.PALETTE_CLASSIC))
             .draw_style(draw).line_width(1).fill_opacity(25 if stack else 8)
             .show_points(common.VisibilityMode.NEVER).span_nulls(False)
             .stacking(common_builders.StackingConfig()
                       .mode(common.StackingMode.NORMAL if stack else common.StackingMode.NONE).group("A"))
             .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(threshold_lines))
             .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["mean", "lastNotNull"]))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    return bounds(panel, min_, max_)


def traces_table(title: str, description: str, query: str) -> table.Panel:
    return (base(table.Panel(), title, description, (24, 9), TEMPO, [traceql(query)])
            .thresholds(thresholds((None, "green"))).show_header(True).cell_height(common.TableCellHeight.SM)
            .align(common.FieldTextAlignment.AUTO).inspect(False))


# --- dashboards --------------------------------------------------------------------------------------------------

class PrometheusAnnotation(dashboard_models.AnnotationQuery):
    """An annotation from a PromQL query. The SDK's AnnotationQuery lacks the Prometheus datasource's own fields:
    the title and text templates and the step."""

    def __init__(self, name: str, expr: str, step: str, title_format: str, text_format: str) -> None:
        super().__init__(name=name, datasource=PROM, enable=True, icon_color="red", expr=expr)
        self.step, self.title_format, self.text_format = step, title_format, text_format

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "step": self.step, "titleFormat": self.title_format,
                "textFormat": self.text_format, "useValueForTime": False}


class Prebuilt(cogbuilder.Builder[dashboard_models.AnnotationQuery]):
    """A builder for an annotation model made elsewhere (the dashboard builder takes builders only)."""

    def __init__(self, model: dashboard_models.AnnotationQuery) -> None:
        self._model = model

    def build(self) -> dashboard_models.AnnotationQuery:
        return self._model


def model_variables() -> list[dashboard_builders.QueryVariable]:
    def query_var(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
        return (dashboard_builders.QueryVariable(name).label(label).datasource(PROM)
                .query({"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
                .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*")
                .current(dashboard_models.VariableOption(selected=True, text=["All"], value=["$__all"]))
                .options([]).regex("").hide(dashboard_models.VariableHide.DONT_HIDE))

    return [query_var("provider", "Provider", "label_values(llmtrace_requests_total, gen_ai_provider_name)"),
            query_var("model", "Model", 'label_values(llmtrace_requests_total{gen_ai_provider_name=~"$provider"}, '
                                        "gen_ai_request_model)")]


def grafana_annotations() -> dashboard_builders.AnnotationQuery:
    """Grafana's own annotations and alerts, which every dashboard has."""
    return (dashboard_builders.AnnotationQuery().name("Annotations & Alerts").built_in(1).enable(True).hide(True)
            .datasource(dashboard_models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .icon_color("rgba(0, 211, 255, 1)").type("dashboard"))


def dashboard_link(title: str, uid: str) -> dashboard_builders.DashboardLink:
    return (dashboard_builders.DashboardLink(title).type(dashboard_models.DashboardLinkType.LINK).url(f"/d/{uid}")
            .icon("dashboard").keep_time(True).include_vars(True))


def runbooks_link() -> dashboard_builders.DashboardLink:
    return (dashboard_builders.DashboardLink("Runbooks").type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags(RUNBOOK_TAGS).as_dropdown(True).icon("doc"))


def dashboard(uid: str, title: str, description: str, panels: list[cogbuilder.Builder[dashboard_models.Panel]],
              links: list[dashboard_builders.DashboardLink]) -> dashboard_builders.Dashboard:
    board = (dashboard_builders.Dashboard(title).uid(uid).description(description).tags(["llmtrace", "llm"])
             .editable().tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR).timezone("").refresh("30s")
             .version(1).time("now-6h", "now").fiscal_year_start_month(0).live_now(False)
             .variables(model_variables())
             .annotations([
                 grafana_annotations(),
                 Prebuilt(PrometheusAnnotation("llmtrace alerts", 'ALERTS{alertname=~"LLM.+", alertstate="firing"}',
                                            "60s", "{{alertname}}", "{{gen_ai_request_model}} {{job}}")),
             ])
             .links([*links, runbooks_link()]))
    for number, panel in enumerate(panels, start=1):
        board = board.with_panel(panel.id(number))
    return board


def cache_dashboard() -> dashboard_builders.Dashboard:
    hit_rate = f"{rate(tokens('cache_read'), BY)}\n/\n({rate(tokens('input'), BY)} > 0)"
    net_hourly = f"({rate(SAVINGS)} - {rate(PREMIUM)}) * 3600"
    by_reason = trace_link("Traces of these calls (where the prefix changed, prompt fingerprint, replica)",
                     explore_tempo(cache_writes_search("@MODELS@", "@REASON@", model_op="=~"),
                                   tempo_models.SearchTableType.SPANS))
    by_model_and_reason = trace_link("Traces of these calls (where the prefix changed, prompt fingerprint, replica)",
                               explore_tempo(cache_writes_search("@MODEL@", "@REASON@"),
                                             tempo_models.SearchTableType.SPANS))
    panels: list[cogbuilder.Builder[dashboard_models.Panel]] = [
        stat_panel("Cache hit rate", "Share of input tokens read from the prompt cache over the time range "
                   "(input counts cached tokens, read and written).",
                   f"{increase(tokens('cache_read'))} / {increase(tokens('input'))}", "percentunit",
                   ((None, "red"), (0.3, "orange"), (0.6, "green")), min_=0, max_=1),
        stat_panel("Net savings", "Cache-read discounts minus cache-write premiums over the time range "
                   "(models in the price table only). Negative: caching cost more than it saved.",
                   f"{increase(SAVINGS)} - {increase(PREMIUM)}", "currencyUSD", ((None, "red"), (0, "green"))),
        stat_panel("Cost", "What the calls cost over the time range, from the price table.",
                   increase(COST), "currencyUSD", ((None, "blue"),)),
        stat_panel("Calls", "Calls over the time range, whatever their outcome.",
                   increase(REQUESTS), "short", ((None, "blue"),)),
        timeseries_panel(
            "Cache hit rate by model",
            "Share of input tokens served from the prompt cache. Dashed: the model's last-hour rate, the baseline "
            "LLMCacheHitRateDrop compares the 5-minute rate with. A drop: see the miss reasons below and the "
            "LLMCacheHitRateDrop runbook (Runbooks, top right).",
            [promql(hit_rate, MODEL_LEGEND),
             promql(f"provider_model:llmtrace_cache_hit_ratio:rate1h{{{SEL}}}",
                    "{{gen_ai_request_model}} ({{gen_ai_provider_name}}) 1h baseline", "B")],
            (24, 9), "percentunit", min_=0, max_=1)
        .override_by_regexp(".*1h baseline", [
            dashboard_models.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            dashboard_models.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]),
        timeseries_panel(
            "Tokens per second by type",
            "input counts all prompt tokens, cached ones included; cache_read and cache_write are the parts of "
            "input read from and written to the cache.",
            [promql(rate(f"llmtrace_usage_tokens_total{{{SEL}}}", "llmtrace_token_type"), "{{llmtrace_token_type}}")],
            (12, 8), "short", min_=0),
        timeseries_panel(
            "Calls by cache outcome",
            "hit: read from the cache only; partial: read and wrote; write: wrote only; miss: caching asked for, "
            "nothing read or written; none: caching not asked for.",
            [promql(rate(f'llmtrace_requests_total{{{SEL}, llmtrace_cache_outcome!=""}}', "llmtrace_cache_outcome"),
                    "{{llmtrace_cache_outcome}}")],
            (12, 8), "reqps", min_=0, stack=True),
        timeseries_panel(
            "Cost per hour: actual, without caching, net savings",
            "Without caching = actual cost + net savings; net savings = read discounts - write premiums. "
            "Models in the price table only.",
            [promql(f"{rate(COST)} * 3600", "actual cost"),
             promql(f"({rate(COST)} + {rate(SAVINGS)} - {rate(PREMIUM)}) * 3600", "without caching", "B"),
             promql(net_hourly, "net savings", "C")],
            (12, 8), "currencyUSD"),
        timeseries_panel(
            "Net savings per hour by model",
            "Read discounts minus write premiums, per hour. Below zero: caching costs more than it saves "
            "(LLMCacheSavingsNegative).",
            [promql(f"({rate(SAVINGS, BY)} - {rate(PREMIUM, BY)}) * 3600", MODEL_LEGEND)],
            (12, 8), "currencyUSD", steps=((None, "red"), (0, "green"))),
        timeseries_panel(
            "Cache writes and misses by reason",
            "Why calls wrote to the cache or missed it (llmtrace.cache.miss_reason): first_use, model_changed, "
            "system_changed, tools_changed, prefix_changed, ttl_expired, below_minimum, or the provider's reason. "
            "Click a series for those calls' traces: where the prefix changed (changed_block, changed_offset), "
            "the prompt's fingerprint and the replica.",
            [promql(rate(MISSES, "llmtrace_cache_miss_reason"), "{{llmtrace_cache_miss_reason}}")],
            (12, 8), "reqps", min_=0, stack=True)
        .data_links([by_reason]),
        base(bargauge.Panel(), "Writes and misses by model and reason",
             "Calls that wrote or missed over the time range. Click a bar for those calls' traces in Tempo: where "
             "the prefix changed, the prompt's fingerprint and the replica; the runbooks say how to read them.",
             (12, 8), targets=[promql(increase(MISSES, "gen_ai_request_model, llmtrace_cache_miss_reason"),
                                      "{{gen_ai_request_model}}: {{llmtrace_cache_miss_reason}}", instant=True)])
        .unit("short").min(0).thresholds(thresholds((None, "green")))
        .color_scheme(dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.PALETTE_CLASSIC))
        .reduce_options(reduce_last()).orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC).show_unfilled(True)
        .data_links([by_model_and_reason]),
        traces_table("Recent calls that wrote or missed the cache (traces)",
                     "From Tempo: open a trace to see the call's llmtrace.cache.* attributes.",
                     '{ span.llmtrace.cache.outcome =~ "write|miss" && span.gen_ai.request.model =~ "${model:pipe}" }'
                     " | select(span.gen_ai.request.model, span.llmtrace.cache.miss_reason, "
                     "span.gen_ai.usage.cache_write.input_tokens, span.llmtrace.cache.changed_block, "
                     "span.llmtrace.cache.changed_offset, span.llmtrace.cache.prefix_fingerprint)"),
    ]
    return dashboard(CACHE_UID, "LLM prompt cache",
                     "Prompt-cache hit rate, tokens, cost and savings, and why calls miss the cache (llmtrace).",
                     panels, [dashboard_link("LLM streaming", STREAMS_UID)])


def streams_dashboard() -> dashboard_builders.Dashboard:
    slow_traces = trace_link("Calls at least this slow (traces)", explore_tempo(
        '{ span.gen_ai.request.model = "@MODEL@" && span.gen_ai.response.time_to_first_chunk >= @VALUE@ }'))
    quantiles = [promql(f"histogram_quantile({q}, {rate(TTFT_BUCKETS, 'le, ' + BY)})",
                        f"p{int(q * 100)} {MODEL_LEGEND}", ref, exemplar=q == 0.95)
                 for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]
    error_share = f"{rate(ERRORS, BY)}\n/\n({rate(REQUESTS, BY)} > 0)"
    panels: list[cogbuilder.Builder[dashboard_models.Panel]] = [
        stat_panel("p95 time to first chunk", "Over the time range, all selected models.",
                   f"histogram_quantile(0.95, sum by (le) (increase({TTFT_BUCKETS}[$__range])))", "s",
                   ((None, "green"), (5, "orange"), (10, "red"))),
        stat_panel("Error share", "Calls that ended in an error over the time range.",
                   f"{increase(ERRORS)} / {increase(REQUESTS)}", "percentunit",
                   ((None, "green"), (0.01, "orange"), (0.05, "red"))),
        stat_panel("Abandoned streams", "Streams closed or dropped by the app before their end.",
                   f"{increase(ABANDONED)} / {increase(REQUESTS)}", "percentunit", ((None, "blue"),)),
        stat_panel("Streams per second", "Streams that produced content, averaged over the time range.",
                   f"sum(rate(gen_ai_client_operation_time_to_first_chunk_seconds_count{{{SEL}}}[$__range]))",
                   "reqps", ((None, "blue"),)),
        timeseries_panel(
            "Time to first chunk p50 / p95 / p99",
            "From the call to the first chunk of generated content (text, tool input, thinking). Exemplar dots "
            "(p95) open the trace of one call; the panel link searches Tempo for calls at least as slow.",
            quantiles, (24, 9), "s", min_=0, steps=((None, "green"), (10, "red")))
        .data_links([slow_traces]),
        timeseries_panel(
            "Call duration p95 by model", "Whole call, until the stream ended. Exemplar dots open the trace of one call.",
            [promql(f"histogram_quantile(0.95, {rate(f'gen_ai_client_operation_duration_seconds_bucket{{{SEL}}}', 'le, ' + BY)})",
                    MODEL_LEGEND, exemplar=True)], (12, 8), "s", min_=0),
        timeseries_panel(
            "Chunks per stream",
            "Items the SDK stream yields per call (keep-alive pings and [DONE] excluded): mean and p95.",
            [promql(f"{rate(f'llmtrace_stream_chunks_sum{{{SEL}}}', BY)}\n/\n"
                    f"({rate(f'llmtrace_stream_chunks_count{{{SEL}}}', BY)} > 0)", f"mean {MODEL_LEGEND}"),
             promql(f"histogram_quantile(0.95, {rate(f'llmtrace_stream_chunks_bucket{{{SEL}}}', 'le, ' + BY)})",
                    f"p95 {MODEL_LEGEND}", "B")], (12, 8), "short", min_=0),
        timeseries_panel(
            "Stream outcomes",
            "completed: the terminal event arrived; abandoned: closed or dropped before it; error: failed.",
            [promql(rate(REQUESTS, "llmtrace_stream_outcome"), "{{llmtrace_stream_outcome}}")],
            (12, 8), "reqps", min_=0, stack=True)
        .override_by_name("error", [dashboard_models.DynamicConfigValue(
            id_val="color", value={"mode": "fixed", "fixedColor": "red"})]),
        timeseries_panel("Error share by model", "LLMStreamErrorsHigh fires above 5% for 10 minutes.",
                         [promql(error_share, MODEL_LEGEND)], (12, 8), "percentunit", min_=0,
                         steps=((None, "green"), (0.05, "red"))),
        timeseries_panel(
            "Errors by type", "error.type: the exception class or the provider's error type (e.g. overloaded_error).",
            [promql(rate(f'gen_ai_client_operation_duration_seconds_count{{{SEL}, error_type!=""}}',
                         "gen_ai_request_model, error_type"), "{{gen_ai_request_model}}: {{error_type}}")],
            (12, 8), "reqps", min_=0, stack=True, draw=common.GraphDrawStyle.BARS),
        timeseries_panel(
            "Tokens per call p95", "Input (cached tokens included) and output tokens of one call, 95th percentile.",
            [promql(f"histogram_quantile(0.95, {rate(f'gen_ai_client_token_usage_bucket{{{SEL}}}', 'le, gen_ai_token_type')})",
                    "{{gen_ai_token_type}}")], (12, 8), "short", min_=0),
        traces_table("Recent failed calls (traces)", "From Tempo: calls that ended in an error.",
                     '{ span.llmtrace.stream.outcome = "error" && span.gen_ai.request.model =~ "${model:pipe}" }'
                     " | select(span.gen_ai.request.model, span.error.type)"),
    ]
    return dashboard(STREAMS_UID, "LLM streaming",
                     "Time to first token, durations, chunks per stream, stream outcomes and errors (llmtrace).",
                     panels, [dashboard_link("LLM prompt cache", CACHE_UID)])


# --- runbooks ----------------------------------------------------------------------------------------------------

def runbook_markdown(source: str) -> str:
    """A runbook as Grafana shows it: links to other runbooks open their dashboards; links to other pages of the
    docs, which Grafana does not serve, become their path in the repository."""
    def relink(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if "://" in target or target.startswith(("#", "/")):
            return match.group(0)
        page, _, anchor = target.partition("#")
        if "/" not in page and page.endswith(".md"):
            return f"[{label}](/d/{runbook_uid(page.removesuffix('.md'))}{'#' + anchor if anchor else ''})"
        path = (RUNBOOKS / page).resolve().relative_to(HERE.parent).as_posix()
        return f"{label} (`{path}`)"

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", relink, source)


def runbook_height(markdown: str) -> int:
    """Grid rows (30 px each) for the text: wrapped lines of prose, table rows at about three lines each."""
    lines = 0.0
    for line in markdown.splitlines():
        lines += 3 if line.startswith("|") else max(1, math.ceil(len(line) / 160))
    return max(12, math.ceil(lines * 22 / 30) + 2)


def runbook_dashboard(path: Path) -> dashboard_builders.Dashboard:
    alert = path.stem
    markdown = runbook_markdown(path.read_text(encoding="utf-8"))
    return (dashboard_builders.Dashboard(f"Runbook: {alert}").uid(runbook_uid(alert))
            .description(f"What {alert} means, how to confirm its cause and what to do (docs/runbooks/{path.name}).")
            .tags(RUNBOOK_TAGS).readonly().timezone("").time("now-6h", "now").version(1)
            .tooltip(dashboard_models.DashboardCursorSync.OFF).variables([]).annotations([grafana_annotations()])
            .links([dashboard_link("LLM prompt cache", CACHE_UID), dashboard_link("LLM streaming", STREAMS_UID),
                    runbooks_link()])
            .with_panel(text.Panel().id(1).title("").transparent(True).span(24).height(runbook_height(markdown))
                        .mode(text_models.TextMode.MARKDOWN).content(markdown)))


def dashboards() -> dict[str, dashboard_builders.Dashboard]:
    """Path under dashboards/ -> dashboard builder."""
    boards = {"llmtrace-cache.json": cache_dashboard(), "llmtrace-streams.json": streams_dashboard()}
    for path in sorted(RUNBOOKS.glob("*.md")):
        boards[f"runbooks/{path.stem}.json"] = runbook_dashboard(path)
    return boards


def render(board: dashboard_builders.Dashboard) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    expected = dashboards()
    for name, board in expected.items():
        path, text_ = HERE / name, render(board)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text_:
                stale.append(name)
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text_, encoding="utf-8")
    # A runbook removed from docs/runbooks/ must not stay provisioned.
    for path in sorted((HERE / "runbooks").glob("*.json")):
        if f"runbooks/{path.name}" not in expected:
            if check:
                stale.append(f"runbooks/{path.name}")
            else:
                path.unlink()
    if stale:
        print(f"out of date: {', '.join(stale)}; run python dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
