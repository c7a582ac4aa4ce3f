"""SSE bodies in the providers' wire formats (as verified against anthropic 2.12 / openai 3.54), built from small dicts."""

from __future__ import annotations

import json
from typing import Any

Event = tuple[str | None, Any]  # (SSE event name or None, data dict or raw string)


def encode(events: list[Event]) -> list[bytes]:
    """One bytes part per SSE event, so a generator body can deliver them one at a time."""
    parts = []
    for name, data in events:
        lines = [f"event: {name}"] if name is not None else []
        lines.append("data: " + (data if isinstance(data, str) else json.dumps(data)))
        parts.append(("\n".join(lines) + "\n\n").encode())
    return parts


def anthropic(text: str | list[str] = ("Hello", ", world"), *, model: str = "claude-haiku-4-5",
              input_tokens: int = 12, cache_read: int | None = 0, cache_write: int | None = 0,
              cache_write_1h: int = 0, output_tokens: int = 15, stop_reason: str = "end_turn",
              delta_usage: dict[str, Any] | None = None, ping: bool = True, message_id: str = "msg_01ABC",
              diagnostics: dict[str, Any] | None = None) -> list[Event]:
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": 1, "service_tier": "standard"}
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": cache_write - cache_write_1h,
                                   "ephemeral_1h_input_tokens": cache_write_1h}
    message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}
    if diagnostics is not None:
        message["diagnostics"] = diagnostics
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    if ping:
        events.append(("ping", {"type": "ping"}))
    for piece in ([text] if isinstance(text, str) else text):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": piece}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": delta_usage if delta_usage is not None else {"output_tokens": output_tokens}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_message(text: str = "Hello, world", *, model: str = "claude-haiku-4-5", input_tokens: int = 12,
                      cache_read: int = 0, cache_write: int = 0, cache_write_1h: int = 0,
                      output_tokens: int = 15) -> dict[str, Any]:
    return {"id": "msg_01ABC", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write,
                      "cache_creation": {"ephemeral_5m_input_tokens": cache_write - cache_write_1h,
                                         "ephemeral_1h_input_tokens": cache_write_1h}}}


def openai_chat(text: list[str] = ("Hello", ", world"), *, model: str = "gpt-4o-mini", usage: bool = True,
                prompt_tokens: int = 2006, cached: int = 1920, completion_tokens: int = 300,
                finish_reason: str = "stop") -> list[Event]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for piece in text:
        chunks.append(dict(base, choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
    if usage:
        chunks.append(dict(base, choices=[], usage={
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}))
    return [(None, c) for c in chunks] + [(None, "[DONE]")]


def openai_chat_completion(text: str = "Hello, world", *, model: str = "gpt-4o-mini", prompt_tokens: int = 2006,
                           cached: int = 1920, completion_tokens: int = 300) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}}}


def _response(status: str, usage: dict[str, Any] | None, model: str, text: str | None) -> dict[str, Any]:
    output = [] if text is None else [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                                       "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    return {"id": "resp_1", "object": "response", "created_at": 1700000000, "status": status, "model": model,
            "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "usage": usage}


def responses_usage(input_tokens: int = 2006, cached: int = 1920, output_tokens: int = 300) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


def openai_responses(text: list[str] = ("Hello", ", world"), *, model: str = "gpt-4o-mini",
                     usage: dict[str, Any] | None = None) -> list[Event]:
    usage = usage or responses_usage()
    full = "".join(text)
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    done = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": full, "annotations": []}]}
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", None, model, None)},
        {"type": "response.in_progress", "response": _response("in_progress", None, model, None)},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **ids, "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []} for piece in text),
        {"type": "response.output_text.done", **ids, "text": full, "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": {"type": "output_text", "text": full, "annotations": []}},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": _response("completed", usage, model, full)},
    ]
    return [(e["type"], dict(e, sequence_number=i)) for i, e in enumerate(events)]


def openai_response_object(text: str = "Hello, world", *, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return _response("completed", responses_usage(), model, text)


def openai_completions(model: str = "gpt-3.5-turbo-instruct") -> list[Event]:
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1700000000, "model": model}
    return [(None, dict(base, choices=[{"index": 0, "text": "Hello", "logprobs": None, "finish_reason": None}])),
            (None, dict(base, choices=[{"index": 0, "text": ", world", "logprobs": None, "finish_reason": "stop"}])),
            (None, dict(base, choices=[], usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})),
            (None, "[DONE]")]


def anthropic_tool_use(*, model: str = "claude-haiku-4-5", tool: str = "get_weather",
                       arguments: str = '{"city": "Paris"}') -> list[Event]:
    usage = {"input_tokens": 50, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    return [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_tool", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": arguments}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def aws_event_stream(events: list[Event]) -> list[bytes]:
    """Bedrock's binary framing (application/vnd.amazon.eventstream) of Anthropic events, one frame each."""
    import base64
    import struct
    import zlib

    def header(name: str, value: str) -> bytes:
        raw = value.encode()
        return bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw

    frames = []
    for _, data in events:
        payload = json.dumps({"bytes": base64.b64encode(json.dumps(data).encode()).decode()}).encode()
        headers = header(":event-type", "chunk") + header(":content-type", "application/json") + header(
            ":message-type", "event")
        prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
        prelude += struct.pack(">I", zlib.crc32(prelude))
        message = prelude + headers + payload
        frames.append(message + struct.pack(">I", zlib.crc32(message)))
    return frames
