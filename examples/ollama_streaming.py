"""Streaming from a local Ollama model through the OpenAI SDK's `base_url`, traced like any OpenAI call
(the span's server.address says which server answered).

Run: python examples/ollama_streaming.py   (Ollama at http://localhost:11434 with `ollama pull llama3.2`)
     LLMTRACE_EMULATOR=1 python examples/ollama_streaming.py   (no Ollama needed)
"""

import openai

import llmtrace
from _where import endpoints


def main() -> None:
    llmtrace.instrument()
    with endpoints(__doc__.splitlines()[0], default_base_url="http://localhost:11434/v1") as where:
        client = openai.OpenAI(base_url=where.openai, api_key="ollama")  # Ollama ignores the key
        stream = client.chat.completions.create(
            model="llama3.2", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Name three uses of a cache."}],
        )
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()


if __name__ == "__main__":
    main()
