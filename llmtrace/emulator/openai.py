"""The OpenAI Chat Completions and Responses APIs (`POST /v1/chat/completions`, `POST /v1/responses`).

Caching as documented: automatic for prompts of 1024 tokens or more, in 128-token steps: the longest
cached step of the prompt's token prefix (model included) is reported as `cached_tokens`, and every step
is kept for five minutes after its last use.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import _pricing
from ._cache import OPENAI_TTL, PromptCache
from ._common import Reply, RequestError, canonical, compose, sse, strings, token_ids

STEP = 128
DEFAULT_MINIMUM = 1024
PRIMING = 3  # tokens every prompt starts with
_ROLES = {"system": -1, "developer": -2, "user": -3, "assistant": -4, "tool": -5}
_END = -9  # closes a message: so do the role markers, two framing tokens per message
_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
           429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None)}

Frame = tuple[bytes, bool]


@dataclass
class Plan:
    id: str
    model: str
    created: int
    reply: Reply
    prompt_tokens: int
    cached_tokens: int
    include_usage: bool  # chat: stream_options.include_usage


class OpenAI:
    name = "openai"

    def __init__(self, cache: PromptCache, reply_tokens: int) -> None:
        self._cache = cache
        self._reply_tokens = reply_tokens
        self._ids = itertools.count(1)

    # -- requests -------------------------------------------------------------------------------------------

    def chat_plan(self, body: dict[str, Any]) -> Plan:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "messages: a non-empty list is required")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        options = body.get("stream_options") or {}
        return self._plan(body, "chatcmpl-emu", messages, limit, bool(options.get("include_usage")))

    def responses_plan(self, body: dict[str, Any]) -> Plan:
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given
        if not isinstance(items, list) or not items:
            raise RequestError(400, "input: a string or a non-empty list of items is required")
        instructions = body.get("instructions")
        messages = ([{"role": "developer", "content": instructions}] if isinstance(instructions, str) else [])
        messages += [{"role": item.get("role", "user"), "content": item.get("content")} for item in items
                     if isinstance(item, dict)]
        limit = body.get("max_output_tokens")
        if isinstance(limit, int) and limit < 16:
            raise RequestError(400, "max_output_tokens: must be at least 16")
        return self._plan(body, "resp_emu", messages, limit, include_usage=True)

    def _plan(self, body: dict[str, Any], prefix: str, messages: list[Any], limit: Any, include_usage: bool) -> Plan:
        model = body.get("model")
        if not isinstance(model, str):
            raise RequestError(400, "model: a string is required")
        ids = _prompt_ids(body.get("tools"), messages)
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        return Plan(
            id=f"{prefix}{next(self._ids):012x}", model=model, created=int(time.time()),
            reply=compose(" ".join(strings(last.get("content"))), self._reply_tokens,
                          limit if isinstance(limit, int) else None),
            prompt_tokens=len(ids) + PRIMING, cached_tokens=self._use_cache(model, ids), include_usage=include_usage,
        )

    def _use_cache(self, model: str, ids: tuple[int, ...]) -> int:
        minimum = _pricing.min_cacheable_tokens(model, "openai") or DEFAULT_MINIMUM
        steps, key, start = [], hash(model), 0
        for end in range(minimum, len(ids) + 1, STEP):
            key = hash((key, ids[start:end]))
            steps.append((end, key))
            start = end
        cached = next((end for end, key in reversed(steps) if self._cache.read(key)), 0)
        for end, key in steps:
            if end > cached:
                self._cache.write(key, OPENAI_TTL)
        return cached

    # -- chat completions ---------------------------------------------------------------------------------

    def chat_document(self, plan: Plan) -> dict[str, Any]:
        return {
            "id": plan.id, "object": "chat.completion", "created": plan.created, "model": plan.model,
            "system_fingerprint": "fp_emulator",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": _finish(plan.reply),
                         "message": {"role": "assistant", "content": plan.reply.text, "refusal": None,
                                     "annotations": []}}],
            "usage": self._chat_usage(plan),
        }

    def chat_frames(self, plan: Plan, fault: str | None) -> Iterator[Frame]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": plan.id, "object": "chat.completion.chunk", "created": plan.created, "model": plan.model,
                    "system_fingerprint": "fp_emulator",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if plan.include_usage:
                data["usage"] = None
            return sse(None, data)

        yield chunk({"role": "assistant", "content": "", "refusal": None}), False
        half = len(plan.reply.pieces) // 2
        for n, piece in enumerate(plan.reply.pieces):
            if n == half and fault == "error-event":
                yield sse(None, {"error": {"message": "The server is overloaded. Please retry.",
                                           "type": "server_error", "param": None, "code": "overloaded"}}), False
                return
            if n == half and fault == "malformed":
                yield b'data: {"id": "' + plan.id.encode() + b'", "object": "chat.compl\n\n', False
            if n == half and fault == "unknown-event":  # as Azure's content-filter chunks look to this SDK
                yield sse(None, {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                                 "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}), False
            yield chunk({"content": piece}), True
        yield chunk({}, _finish(plan.reply)), False
        if plan.include_usage and fault != "no-usage":  # as OpenAI-compatible servers that ignore include_usage
            yield sse(None, {"id": plan.id, "object": "chat.completion.chunk", "created": plan.created,
                             "model": plan.model, "system_fingerprint": "fp_emulator", "choices": [],
                             "usage": self._chat_usage(plan)}), False
        yield sse(None, "[DONE]"), False

    @staticmethod
    def _chat_usage(plan: Plan) -> dict[str, Any]:
        output = plan.reply.output_tokens
        return {
            "prompt_tokens": plan.prompt_tokens, "completion_tokens": output,
            "total_tokens": plan.prompt_tokens + output,
            "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    # -- responses ---------------------------------------------------------------------------------------

    def response_document(self, plan: Plan, status: str = "completed") -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": plan.id, "object": "response", "created_at": plan.created, "status": status,
            "model": plan.model, "output": [self._output_item(plan, "completed")] if done else [],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "usage": self._responses_usage(plan) if done else None,
        }

    def response_frames(self, plan: Plan, fault: str | None) -> Iterator[Frame]:
        sequence = itertools.count()
        item_id = _item_id(plan)

        def event(kind: str, **fields: Any) -> bytes:
            return sse(kind, {"type": kind, "sequence_number": next(sequence), **fields})

        def text_event(kind: str, **fields: Any) -> bytes:
            return event(kind, item_id=item_id, output_index=0, content_index=0, **fields)

        pending = self.response_document(plan, "in_progress")
        yield event("response.created", response=pending), False
        yield event("response.in_progress", response=pending), False
        yield event("response.output_item.added", output_index=0, item=self._output_item(plan, "in_progress")), False
        yield text_event("response.content_part.added", part={"type": "output_text", "text": "", "annotations": []}), False
        half = len(plan.reply.pieces) // 2
        for n, piece in enumerate(plan.reply.pieces):
            if n == half and fault == "error-event":
                yield event("error", code="server_error", message="The server is overloaded.", param=None), False
                failed = dict(pending, status="failed", error={"code": "server_error",
                                                               "message": "The server is overloaded."})
                yield event("response.failed", response=failed), False
                return
            if n == half and fault == "malformed":
                yield b'event: response.output_text.delta\ndata: {"type": "response.output_te\n\n', False
            if n == half and fault == "unknown-event":
                yield event("response.future_event", detail="not in this SDK version"), False
            yield text_event("response.output_text.delta", delta=piece, logprobs=[]), True
        text = plan.reply.text
        yield text_event("response.output_text.done", text=text, logprobs=[]), False
        yield text_event("response.content_part.done", part={"type": "output_text", "text": text, "annotations": []}), False
        yield event("response.output_item.done", output_index=0, item=self._output_item(plan, "completed")), False
        if fault == "no-usage":
            return  # cut short without an error: no response.completed, so no usage
        yield event("response.completed", response=self.response_document(plan)), False

    @staticmethod
    def _output_item(plan: Plan, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": plan.reply.text, "annotations": []}] if status == "completed" else []
        return {"id": _item_id(plan), "type": "message", "status": status, "role": "assistant", "content": content}

    @staticmethod
    def _responses_usage(plan: Plan) -> dict[str, Any]:
        output = plan.reply.output_tokens
        return {
            "input_tokens": plan.prompt_tokens,
            "input_tokens_details": {"cached_tokens": plan.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": plan.prompt_tokens + output,
        }

    @staticmethod
    def error(status: int, message: str) -> dict[str, Any]:
        kind, code = _ERRORS.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _item_id(plan: Plan) -> str:
    return "msg_" + plan.id.removeprefix("resp_")


def _finish(reply: Reply) -> str:
    return "length" if reply.hit_limit else "stop"


def _prompt_ids(tools: Any, messages: list[Any]) -> tuple[int, ...]:
    """The prompt as the cache sees it: tools, then each message framed by its role."""
    ids: list[int] = list(token_ids(canonical(tools))) if tools else []
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError(400, "each message must be an object with a role and content")
        ids.append(_ROLES.get(message.get("role"), -6))
        ids.extend(token_ids(" ".join(strings(message.get("content")))))
        ids.append(_END)
    return tuple(ids)
