"""Anthropic prompt caching with a 5,000-token system prompt: the first call writes the cache, the next
ones read it. llmtrace reports each call's cache outcome, hit ratio, cost and savings.

Run: LLMTRACE_EMULATOR=1 python examples/anthropic_prompt_caching.py   (or with ANTHROPIC_API_KEY set)
"""

import anthropic

import llmtrace
from _where import endpoints

# A long, stable prefix: the part worth caching (claude-haiku-4-5 caches prefixes of 4,096 tokens or more).
HANDBOOK = "\n".join(
    f"Rule {n}: when a customer asks about topic {n % 12}, check their plan, quote the limit from "
    f"section {n % 17 + 1}, and never promise what the plan excludes." for n in range(1, 180))


def main() -> None:
    llmtrace.instrument()
    with endpoints(__doc__.splitlines()[0]) as where:
        client = anthropic.Anthropic(base_url=where.anthropic)
        for question in ("How do I rotate an API key?", "Can I export my audit log?", "Is there a sandbox?"):
            message = client.messages.create(
                model="claude-haiku-4-5", max_tokens=200,
                # cache_control marks the end of the cached prefix; keep anything that changes per
                # request (timestamps, user names) after it, or every call writes a new cache entry
                system=[{"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": question}],
            )
            u = message.usage
            print(f"{question:32} wrote {u.cache_creation_input_tokens:5} read {u.cache_read_input_tokens:5} "
                  f"uncached {u.input_tokens:3} tokens")


if __name__ == "__main__":
    main()
