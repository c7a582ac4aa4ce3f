"""The emulator's HTTP app (Starlette): routes, pacing, faults, and the provider-shaped error replies."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._cache import PromptCache
from ._common import FAULT_HEADER, FAULTS, RequestError
from .anthropic import Anthropic
from .openai import OpenAI


@dataclass
class EmulatorConfig:
    """How the emulated providers behave. Times are seconds."""

    time_to_first_token: float = 0.25
    seconds_per_chunk: float = 0.01
    reply_tokens: int = 60  # length of an answer that max_tokens does not cut
    slow_first_token_factor: float = 10.0
    retry_after: float = 0.05  # sent as `retry-after-ms` (and `retry-after`, rounded up) on 429/500
    fault_rates: Mapping[str, float] = field(default_factory=dict)  # fault -> share of requests, seeded below
    seed: int = 0
    clock: Callable[[], float] = time.monotonic  # the cache's time: tests and the demo make it run fast

    def __post_init__(self) -> None:
        unknown = set(self.fault_rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        for fault, share in self.fault_rates.items():
            if not 0 <= share <= 1:  # NaN fails this too
                raise ValueError(f"fault rate {fault}={share} is not a share of requests (0 to 1)")


class InjectedDisconnect(Exception):
    """Raised inside a response body to drop the connection mid-stream, as the `disconnect` fault asks."""


class Emulator:
    """The app's state: one prompt cache per provider, the dialects, the fault dice."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.anthropic_cache = PromptCache(self.config.clock)
        self.openai_cache = PromptCache(self.config.clock)
        self.anthropic = Anthropic(self.anthropic_cache, self.config.reply_tokens)
        self.openai = OpenAI(self.openai_cache, self.config.reply_tokens)
        self._dice = random.Random(self.config.seed)
        self.app = Starlette(routes=[
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/responses", self.responses, methods=["POST"]),
            Route("/health", lambda _: JSONResponse({"status": "ok"})),
        ])

    def clear_caches(self) -> None:
        self.anthropic_cache.clear()
        self.openai_cache.clear()

    async def messages(self, request: Request) -> Response:
        dialect = self.anthropic
        return await self._serve(request, dialect.error, dialect.plan, dialect.frames, dialect.document)

    async def chat_completions(self, request: Request) -> Response:
        dialect = self.openai
        return await self._serve(request, dialect.error, dialect.chat_plan, dialect.chat_frames, dialect.chat_document)

    async def responses(self, request: Request) -> Response:
        dialect = self.openai
        return await self._serve(request, dialect.error, dialect.responses_plan, dialect.response_frames,
                                 dialect.response_document)

    async def _serve(self, request: Request, error: Callable[[int, str], dict[str, Any]], plan: Callable[..., Any],
                     frames: Callable[[Any, str | None], Iterator[tuple[bytes, bool]]],
                     document: Callable[[Any], dict[str, Any]]) -> Response:
        fault = self._fault(request)
        if fault in ("rate-limit", "server-error"):
            status = 429 if fault == "rate-limit" else 500
            message = "Rate limit reached (emulated)" if status == 429 else "Internal server error (emulated)"
            retry = self.config.retry_after
            return JSONResponse(error(status, message), status,
                                headers={"retry-after-ms": str(int(retry * 1000)), "retry-after": str(-int(-retry // 1))})
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise RequestError(400, "the request body must be a JSON object")
            planned = plan(body)
        except json.JSONDecodeError as exc:
            return JSONResponse(error(400, f"invalid JSON body: {exc}"), 400)
        except RequestError as exc:
            return JSONResponse(error(exc.status, exc.message), exc.status)
        if not body.get("stream"):
            await asyncio.sleep(self._first_token_delay(fault))
            return JSONResponse(document(planned))
        return StreamingResponse(self._paced(frames(planned, fault), fault), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    def _fault(self, request: Request) -> str | None:
        asked = request.headers.get(FAULT_HEADER)
        if asked:
            return asked if asked in FAULTS else None
        for fault, rate in self.config.fault_rates.items():
            if self._dice.random() < rate:
                return fault
        return None

    def _first_token_delay(self, fault: str | None) -> float:
        delay = self.config.time_to_first_token
        return delay * self.config.slow_first_token_factor if fault == "slow-first-token" else delay

    async def _paced(self, frames: Iterator[tuple[bytes, bool]], fault: str | None) -> AsyncIterator[bytes]:
        """The events, the first content one after the time to first token, the others at the configured pace."""
        frames = list(frames)
        content = sum(is_content for _, is_content in frames)
        sent = 0
        for frame, is_content in frames:
            if is_content:
                await asyncio.sleep(self._first_token_delay(fault) if sent == 0 else self.config.seconds_per_chunk)
                if fault == "disconnect" and sent == content // 2:
                    raise InjectedDisconnect
                sent += 1
            yield frame
