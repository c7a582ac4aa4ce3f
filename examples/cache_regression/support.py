"""A support assistant that answers from a long handbook, cached as its system prompt.

The test next to it (test_support.py) checks that the prompt stays cacheable; run it with
`pytest examples/cache_regression/test_support.py` (against llmtrace's emulator, as pytest.ini asks).
"""

import anthropic

# About 5,000 tokens: over claude-haiku-4-5's minimum cacheable prefix of 4,096.
HANDBOOK = "You are Acme's support assistant. Answer from this handbook only.\n" + "\n".join(
    f"Rule {n}: when a customer asks about topic {n % 12}, check their plan, quote the limit from "
    f"section {n % 17 + 1}, and never promise what the plan excludes." for n in range(1, 180))

client = anthropic.Anthropic()  # the key and base URL come from the environment


def answer(question: str) -> str:
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=300,
        system=[{"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": question}],
    )
    return message.content[0].text
