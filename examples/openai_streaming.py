"""Streaming with the OpenAI SDK, traced: time to first token, chunks, tokens and cost per call.

Run: LLMTRACE_EMULATOR=1 python examples/openai_streaming.py   (or with OPENAI_API_KEY set)
"""

import openai

import llmtrace
from _where import endpoints


def main() -> None:
    llmtrace.instrument()
    with endpoints(__doc__.splitlines()[0]) as where:
        client = openai.OpenAI(base_url=where.openai)
        # include_usage: the provider's token counts (and so cost) for the stream; without it llmtrace
        # estimates the tokens and labels them llmtrace.usage.source=estimated
        stream = client.chat.completions.create(
            model="gpt-5-mini", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Explain prompt caching in two sentences."}],
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
            if chunk.usage:
                print(f"\n[{chunk.usage.prompt_tokens} prompt tokens, {chunk.usage.completion_tokens} output]")

        with client.chat.completions.stream(model="gpt-5-mini", messages=[
                {"role": "user", "content": "And in one sentence?"}]) as helper:
            for event in helper:
                if event.type == "content.delta":
                    print(event.delta, end="", flush=True)
        print()


if __name__ == "__main__":
    main()
