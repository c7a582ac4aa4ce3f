"""Every telemetry name llmtrace emits: GenAI semantic-convention names first, then llmtrace's own.

These strings are public API (see docs/metrics.md). They are spelled here and nowhere else.
Literals are pinned where the semconv package lags (it has no `cache_write` constant yet).
"""

from __future__ import annotations

from typing import Literal

# --- GenAI semantic conventions: span attributes ---
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
# The pre-rename name (semantic-conventions-genai #440); still read by older backends.
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# --- llmtrace span attributes ---
STREAM_TIME_TO_FIRST_EVENT = "llmtrace.stream.time_to_first_event"
STREAM_CHUNKS = "llmtrace.stream.chunks"
STREAM_MAX_CHUNK_GAP = "llmtrace.stream.max_chunk_gap"
STREAM_OUTCOME = "llmtrace.stream.outcome"
USAGE_SOURCE = "llmtrace.usage.source"
CACHE_HIT_RATIO = "llmtrace.cache.hit_ratio"
CACHE_OUTCOME = "llmtrace.cache.outcome"
CACHE_MISS_REASON = "llmtrace.cache.miss_reason"
CACHE_TTL = "llmtrace.cache.ttl"
CACHE_CHANGED_BLOCK = "llmtrace.cache.changed_block"
CACHE_CHANGED_OFFSET = "llmtrace.cache.changed_offset"
CACHE_PREFIX_FINGERPRINT = "llmtrace.cache.prefix_fingerprint"
CACHE_SAVINGS_USD = "llmtrace.cache.savings.usd"
COST_USD = "llmtrace.cost.usd"
LLMTRACE_TOKEN_TYPE = "llmtrace.token.type"

# --- metric instruments: (name, unit, description) ---
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_USAGE_TOKENS = "llmtrace.usage.tokens"
METRIC_REQUESTS = "llmtrace.requests"
METRIC_COST = "llmtrace.cost.usd"
METRIC_CACHE_SAVINGS = "llmtrace.cache.savings.usd"
METRIC_CACHE_WRITE_PREMIUM = "llmtrace.cache.write_premium.usd"
METRIC_STREAM_CHUNKS = "llmtrace.stream.chunks"

# Bucket advisories from the GenAI semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
CHUNK_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)

# --- value sets ---
Operation = Literal["chat", "text_completion"]
Provider = Literal["anthropic", "openai", "aws.bedrock", "gcp.vertex_ai", "azure.ai.openai"]
StreamOutcome = Literal["completed", "abandoned", "error"]
UsageSource = Literal["provider", "estimated"]
CacheOutcome = Literal["hit", "partial", "write", "miss", "none"]
MissReason = Literal[
    "first_use", "model_changed", "system_changed", "tools_changed",
    "prefix_changed", "ttl_expired", "below_minimum",
]
# Earlier wins when several reasons fit (contract.md); the provider's own reason beats all of these.
MISS_REASON_PRIORITY: tuple[MissReason, ...] = (
    "below_minimum", "model_changed", "tools_changed", "system_changed",
    "prefix_changed", "ttl_expired", "first_use",
)
TokenType = Literal["input", "output", "cache_read", "cache_write"]

INSTRUMENTATION_SCOPE = "llmtrace"
