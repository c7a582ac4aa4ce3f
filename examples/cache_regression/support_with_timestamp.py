"""The same assistant after a well-meant change: the current time at the top of the system prompt.

Every call now sends a prefix no earlier call sent, so every call writes the cache (at 1.25x the input
price) and none reads it. test_support_with_timestamp.py catches it, and fails on purpose.
"""

from datetime import datetime, timezone

from support import HANDBOOK, client


def answer(question: str) -> str:
    now = datetime.now(timezone.utc).isoformat()
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=300,
        system=[{"type": "text", "text": f"Current time: {now}\n{HANDBOOK}", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": question}],
    )
    return message.content[0].text
