"""A stream that breaks mid-way, restarted by the app. llmtrace ends the broken call's span with
llmtrace.stream.outcome=error (and error.type) and traces the retry as a call of its own.

Run: LLMTRACE_EMULATOR=1 python examples/restart_on_disconnect.py
(the emulator drops the first attempt's connection, as asked by the x-llmtrace-fault header)
"""

import anthropic
import httpx2

import llmtrace
from _where import endpoints


def stream_answer(client: anthropic.Anthropic, question: str, attempts: int, fault: dict[str, str]) -> str:
    for attempt in range(1, attempts + 1):
        received = []
        try:
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                                        messages=[{"role": "user", "content": question}],
                                        extra_headers=fault if attempt == 1 else {}) as stream:
                for text in stream.text_stream:
                    received.append(text)
            return "".join(received)
        except (httpx2.TransportError, anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            # the Anthropic SDK does not wrap transport errors raised mid-stream: catch httpx2's too
            print(f"attempt {attempt} broke after {len(received)} chunks: {type(exc).__name__}; restarting")
    raise RuntimeError(f"no complete answer after {attempts} attempts")


def main() -> None:
    llmtrace.instrument()
    with endpoints(__doc__.splitlines()[0]) as where:
        client = anthropic.Anthropic(base_url=where.anthropic)
        fault = {"x-llmtrace-fault": "disconnect"} if where.emulated else {}
        print(stream_answer(client, "What does error E-4012 mean?", attempts=3, fault=fault))


if __name__ == "__main__":
    main()
