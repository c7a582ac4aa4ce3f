"""An existing app that streams from both SDKs, traced by adding one line: `llmtrace.instrument()`.

Spans and metrics go over OTLP to $OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318: the
bundled stack, `docker compose up`). Run: LLMTRACE_EMULATOR=1 python examples/quickstart.py
"""

import anthropic
import openai

import llmtrace

llmtrace.instrument()  # the one line: every Anthropic and OpenAI call from here on is a span plus metrics

from _where import endpoints  # noqa: E402  (the app's own code starts here)


def main() -> None:
    with endpoints(__doc__.splitlines()[0]) as where:
        claude = anthropic.Anthropic(base_url=where.anthropic)
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100,
                                    messages=[{"role": "user", "content": "Say hello in five words."}]) as stream:
            print("claude:", "".join(stream.text_stream))

        gpt = openai.OpenAI(base_url=where.openai)
        stream = gpt.chat.completions.create(model="gpt-5-mini", stream=True, stream_options={"include_usage": True},
                                             messages=[{"role": "user", "content": "Say hello in five words."}])
        print("gpt:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))


if __name__ == "__main__":
    main()
