"""The demo's app: a support agent with a long cached system prompt, streaming on both SDKs.

Half-way through, the scenario changes something the way production changes it:
- `cache-bust`: a deploy puts the current time at the top of the system prompt, so every prefix is new;
- `ttl-expiry`: traffic thins out, with pauses longer than the cache TTL (time runs fast in this scenario);
- `faults`: the provider starts failing some requests (disconnects, overloaded errors, rate limits);
- `steady`: nothing changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
from dataclasses import dataclass
from typing import Any

from .._tokens import count_tokens
from .recorder import Recorder

SCENARIOS = ("cache-bust", "ttl-expiry", "faults", "steady")
QUESTIONS = (
    "How do I rotate an API key?", "Why was my invoice charged twice?", "Can I export my audit log?",
    "What does error E-4012 mean?", "How do I add a teammate to a workspace?", "Is there a sandbox region?",
    "How long are backups kept?", "Can I pay by bank transfer?",
)
FAULTS = ("disconnect", "error-event", "rate-limit")


def system_prompt(tokens: int = 5000, version: int = 1) -> str:
    """A deterministic support handbook of about `tokens` tokens (a long prefix worth caching)."""
    topics = ("billing", "API keys", "workspaces", "exports", "audit logs", "regions", "backups", "SLAs")
    lines = [f"You are the support agent of Acme Cloud (handbook v{version}). Answer briefly and cite the rule."]
    for n in itertools.count(1):
        topic = topics[n % len(topics)]
        lines.append(f"Rule {n} ({topic}): when a customer asks about {topic}, check their plan, quote the "
                     f"relevant limit from section {n % 17 + 1}, and never promise what the plan excludes.")
        if n % 25 == 0 and count_tokens("\n".join(lines)) >= tokens:
            return "\n".join(lines)
    raise AssertionError("unreachable")


@dataclass
class Settings:
    duration: float
    rate: float
    scenario: str
    anthropic_model: str
    openai_model: str
    max_tokens: int = 48
    seed: int = 7


class Agent:
    """Sends the requests; the app's own error handling keeps it going when the provider fails."""

    def __init__(self, anthropic_client: Any, openai_client: Any, settings: Settings, recorder: Recorder) -> None:
        self.anthropic, self.openai = anthropic_client, openai_client
        self.settings, self.recorder = settings, recorder
        self.system = system_prompt()
        self.errors_seen = 0
        self.in_flight: set[asyncio.Task[None]] = set()  # requests sent and not finished yet
        self._random = random.Random(settings.seed)

    def _system_now(self) -> str:
        if self.recorder.changed and self.settings.scenario == "cache-bust":
            # the deploy's bug: a timestamp at the top makes every system prompt, and so every prefix, new
            return f"Current time: {dt.datetime.now(dt.timezone.utc).isoformat()}\n{self.system}"
        return self.system

    def _fault(self) -> dict[str, str]:
        if self.recorder.changed and self.settings.scenario == "faults" and self._random.random() < 0.35:
            return {"x-llmtrace-fault": self._random.choice(FAULTS)}
        return {}

    async def ask_anthropic(self, question: str) -> None:
        async with self.anthropic.messages.stream(
            model=self.settings.anthropic_model, max_tokens=self.settings.max_tokens,
            system=[{"type": "text", "text": self._system_now(), "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": question}], extra_headers=self._fault(),
        ) as stream:
            async for _ in stream.text_stream:
                pass

    async def ask_openai(self, question: str) -> None:
        stream = await self.openai.chat.completions.create(
            model=self.settings.openai_model, max_completion_tokens=self.settings.max_tokens, stream=True,
            stream_options={"include_usage": True}, prompt_cache_key="acme-support",
            messages=[{"role": "system", "content": self._system_now()}, {"role": "user", "content": question}],
            extra_headers=self._fault(),
        )
        async for _ in stream:
            pass

    async def _one(self, n: int) -> None:
        question = QUESTIONS[n % len(QUESTIONS)]
        try:
            await (self.ask_anthropic if n % 2 == 0 else self.ask_openai)(question)
        except Exception:  # noqa: BLE001 - an app keeps serving when one LLM call fails; llmtrace records it
            self.errors_seen += 1

    async def run(self) -> None:
        self.recorder.start()  # the demo's clock: the view, the summary and the report count from here
        pending = self.in_flight
        interval = 1 / self.settings.rate
        sparse = interval * 8  # ttl-expiry: each model's calls come further apart than its cache TTL
        for n in itertools.count():
            elapsed = self.recorder.elapsed()
            if elapsed >= self.settings.duration:
                break
            if not self.recorder.changed and elapsed >= self.settings.duration / 2 \
                    and self.settings.scenario != "steady":
                self.recorder.change()
                if self.settings.scenario == "ttl-expiry":
                    await asyncio.sleep(sparse)
                    continue
            task = asyncio.create_task(self._one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            thin = self.recorder.changed and self.settings.scenario == "ttl-expiry"
            await asyncio.sleep(sparse if thin else interval)
        await asyncio.gather(*pending, return_exceptions=True)
