"""The pytest plugin, as an app's test suite uses it: pytest runs in a subprocess on test files written here, and
its JUnit report says which tests passed and what the failures said."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# A provider behind the real SDK's mock transport: no network at all. Each reply says what the cache did.
FAKE = '''
import json
import anthropic, httpx2, pytest

PROMPT = "You answer questions about the handbook. " * 600  # about 5,000 tokens
CACHED = {"type": "ephemeral"}


def client(*replies):
    queue = list(replies)

    def respond(request):
        read, write = queue.pop(0) if len(queue) > 1 else queue[0]
        usage = {"input_tokens": 10, "output_tokens": 2, "cache_read_input_tokens": read,
                 "cache_creation_input_tokens": write}
        return httpx2.Response(200, json={"id": "msg_1", "type": "message", "role": "assistant",
                                          "model": "claude-haiku-4-5", "content": [{"type": "text", "text": "ok"}],
                                          "stop_reason": "end_turn", "stop_sequence": None, "usage": usage})

    http = httpx2.Client(transport=httpx2.MockTransport(respond))
    return anthropic.Anthropic(api_key="test", base_url="http://fake.local", http_client=http, max_retries=0)


def ask(c, system=None, tools=None, messages=None, **extra):
    if system is None:
        system = [{"type": "text", "text": PROMPT, "cache_control": CACHED}]
    kwargs = {"tools": tools} if tools else {}
    c.messages.create(model="claude-haiku-4-5", max_tokens=16, system=system,
                      messages=messages or [{"role": "user", "content": "Hi"}], **kwargs, **extra)
'''


def run_pytest(tmp_path: Path, files: dict[str, str], *args: str) -> dict[str, str | None]:
    """{test name: None if it passed, else its failure message}."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "ANTHROPIC", "OPENAI"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q",
                           f"--junitxml={report}", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert report.exists(), done.stdout + done.stderr
    results: dict[str, str | None] = {}
    for case in ET.parse(report).iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        results[case.get("name", "")] = None if failure is None else (failure.get("message", "") + (failure.text or ""))
    return results


def test_fixture_records_calls_and_checks_them_without_network(tmp_path):
    results = run_pytest(tmp_path, {"fake.py": FAKE, "test_app.py": '''
        import re
        from fake import CACHED, PROMPT, ask, client

        TOOLS = [{"name": n, "description": f"Look up {n}", "input_schema": {"type": "object"}} for n in ("a", "b")]


        def test_records_every_call(llm_cache):
            c = client((0, 5000), (5000, 0))
            ask(c)
            ask(c)
            first, second = llm_cache.calls
            assert (first.number, first.provider, first.model, first.asked) == (1, "anthropic", "claude-haiku-4-5", True)
            assert first.system[0].text == PROMPT and first.cache_write == 5000 and second.cache_read == 5000
            assert re.fullmatch("[0-9a-f]{32}", first.fingerprint) and first.fingerprint == second.fingerprint
            assert (first.miss_reason, second.cache_outcome) == ("first_use", "hit")
            llm_cache.assert_cacheable(read=True)


        def test_tools_in_another_order(llm_cache):
            c = client((0, 5000))
            ask(c, tools=TOOLS)
            ask(c, tools=TOOLS[::-1])
            llm_cache.assert_prefix_stable()


        def test_a_tool_added(llm_cache):
            c = client((0, 5000))
            ask(c, tools=TOOLS[:1])
            ask(c, tools=TOOLS)
            llm_cache.assert_prefix_stable()


        def test_a_request_id_in_the_system_prompt(llm_cache):
            c = client((0, 5000))
            for request_id in ("req-7f3a", "req-91bc"):
                ask(c, system=[{"type": "text", "text": PROMPT[:300] + f"Request {request_id}. " + PROMPT[300:],
                                "cache_control": CACHED}])
            llm_cache.assert_prefix_stable()


        def test_a_conversation_that_grows_is_stable(llm_cache):
            c = client((0, 5000), (5000, 40))
            history = [{"role": "user", "content": [{"type": "text", "text": "First question", "cache_control": CACHED}]}]
            ask(c, messages=history)
            history = [{"role": "user", "content": "First question"}, {"role": "assistant", "content": "An answer"},
                       {"role": "user", "content": [{"type": "text", "text": "Second", "cache_control": CACHED}]}]
            ask(c, messages=history)
            llm_cache.assert_prefix_stable()
            llm_cache.assert_cache_read()


        def test_edited_history(llm_cache):
            c = client((0, 5000))
            for answer in ("An answer", "An edited answer"):
                ask(c, messages=[{"role": "user", "content": "First question"}, {"role": "assistant", "content": answer},
                                 {"role": "user", "content": [{"type": "text", "text": "Next", "cache_control": CACHED}]}])
            llm_cache.assert_prefix_stable()


        def test_prefix_under_the_minimum(llm_cache):
            ask(client((0, 0)), system=[{"type": "text", "text": "You are terse.", "cache_control": CACHED}])
            llm_cache.assert_above_minimum()


        def test_caching_not_asked_for(llm_cache):
            ask(client((0, 0)), system=PROMPT)
            llm_cache.assert_cache_requested()


        def test_second_call_did_not_read(llm_cache):
            c = client((0, 5000))
            ask(c)
            ask(c)
            llm_cache.assert_cache_read()


        def test_no_calls(llm_cache):
            llm_cache.assert_cacheable()
        '''})
    assert results.pop("test_records_every_call") is None
    assert results.pop("test_a_conversation_that_grows_is_stable") is None
    failures = {name: message or "" for name, message in results.items()}
    assert "differs from call 1's in tools block 0 at character" in failures["test_tools_in_another_order"]
    assert "in tools block 1: a block call 1 did not have (2 tools blocks, call 1 had 1)" in failures["test_a_tool_added"]
    message = failures["test_a_request_id_in_the_system_prompt"]
    assert f"in system block 0 at character {300 + len('Request req-')}" in message  # common to both
    assert 'call 1: "…' in message and "Request req-7f3a. " in message and "Request req-91bc. " in message
    assert "llmtrace says: system_changed at system block 0, characters 256–319" in message
    assert "in messages block 1 at character 3" in failures["test_edited_history"]
    assert "under the model's minimum of 4,096" in failures["test_prefix_under_the_minimum"]
    assert "did not ask for caching: no cache_control" in failures["test_caching_not_asked_for"]
    assert "call 2 (anthropic claude-haiku-4-5) read nothing from the cache" in failures["test_second_call_did_not_read"]
    assert "recorded no Anthropic or OpenAI calls" in failures["test_no_calls"]


STRICT = '''
    import pytest
    from fake import ask, client


    def test_writes_and_never_reads():
        c = client((0, 5000))
        ask(c)


    def test_writes_then_reads():
        c = client((0, 5000), (5000, 0))
        ask(c)
        ask(c)


    def test_no_calls():
        pass


    @pytest.mark.llm_cache_strict
    def test_marked():
        ask(client((0, 5000)))
    '''


def test_strict_mode_fails_writes_without_reads(tmp_path):
    files = {"fake.py": FAKE, "test_strict.py": STRICT}
    marked_only = run_pytest(tmp_path, files)
    assert [name for name, failure in marked_only.items() if failure] == ["test_marked"]
    assert "llm_cache strict: call 1 (anthropic claude-haiku-4-5) wrote 5,000 tokens to the prompt cache and no " \
           "later call read them" in (marked_only["test_marked"] or "")
    everywhere = run_pytest(tmp_path, files, "--llm-cache-strict")
    assert sorted(name for name, failure in everywhere.items() if failure) == ["test_marked", "test_writes_and_never_reads"]
    by_ini = run_pytest(tmp_path, files, "-o", "llm_cache_strict=true")
    assert sorted(name for name, failure in by_ini.items() if failure) == ["test_marked", "test_writes_and_never_reads"]


def test_against_the_emulator(tmp_path):
    results = run_pytest(tmp_path, {"test_emulated.py": '''
        import os
        import anthropic, openai

        HANDBOOK = "Rule: check the customer's plan first, then quote the limit from its section. " * 300
        CACHED = {"type": "ephemeral"}


        def test_base_urls_point_at_the_emulator(llm_emulator):
            assert os.environ["ANTHROPIC_BASE_URL"] == llm_emulator.anthropic_base_url
            assert os.environ["OPENAI_BASE_URL"] == llm_emulator.openai_base_url
            assert llm_emulator.url.startswith("http://127.0.0.1:")


        def test_anthropic_reads_the_cache(llm_emulator, llm_cache):
            client = anthropic.Anthropic()
            for question in ("Q1", "Q2", "Q3"):
                client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": question}],
                                       system=[{"type": "text", "text": HANDBOOK, "cache_control": CACHED}])
            llm_cache.assert_cacheable()  # reads included: every call went to the emulator
            assert [c.cache_outcome for c in llm_cache.calls] == ["write", "hit", "hit"]


        def test_each_test_starts_cold(llm_emulator, llm_cache):
            client = anthropic.Anthropic()
            client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "Q"}],
                                   system=[{"type": "text", "text": HANDBOOK, "cache_control": CACHED}])
            assert llm_cache.calls[0].cache_outcome == "write"


        def test_openai_streams_read_the_cache(llm_emulator, llm_cache):
            client = openai.OpenAI()
            for question in ("Q1", "Q2"):
                stream = client.chat.completions.create(model="gpt-5-mini", stream=True,
                                                        stream_options={"include_usage": True},
                                                        messages=[{"role": "system", "content": HANDBOOK},
                                                                  {"role": "user", "content": question}])
                for _ in stream:
                    pass
            llm_cache.assert_cacheable()


        def test_a_changed_prompt_is_caught_by_the_read_check(llm_emulator, llm_cache):
            client = anthropic.Anthropic()
            for n in (1, 2):
                client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "Q"}],
                                       system=[{"type": "text", "text": HANDBOOK + f" Version {n}.", "cache_control": CACHED}])
            llm_cache.assert_cache_read()
        '''})
    failures = {name: message for name, message in results.items() if message}
    assert list(failures) == ["test_a_changed_prompt_is_caught_by_the_read_check"], failures
    message = failures["test_a_changed_prompt_is_caught_by_the_read_check"]
    assert "call 2 (anthropic claude-haiku-4-5) read nothing from the cache (wrote" in message
    assert "llmtrace says: system_changed at system block 0, characters" in message
    rule = "Rule: check the customer's plan first, then quote the limit from its section. "
    assert f"in system block 0 at character {300 * len(rule) + len(' Version ')}" in message


def test_the_plugin_stays_out_of_suites_that_do_not_use_it(tmp_path):
    results = run_pytest(tmp_path, {"test_plain.py": '''
        import sys
        import anthropic


        def test_nothing_is_instrumented_or_imported(request):
            assert request.config.pluginmanager.has_plugin("llmtrace")
            assert "llmtrace._instrument" not in sys.modules and "llmtrace.emulator" not in sys.modules
            assert not hasattr(anthropic._base_client.SyncAPIClient.request, "__wrapped__")
            assert "ANTHROPIC_BASE_URL" not in __import__("os").environ
        '''})
    assert results == {"test_nothing_is_instrumented_or_imported": None}


@pytest.mark.parametrize("switch", [["--llm-emulator"], ["-o", "llm_emulator=true"]])
def test_the_switch_starts_the_emulator_before_collection(tmp_path, switch):
    results = run_pytest(tmp_path, {"app.py": '''
        import anthropic
        client = anthropic.Anthropic()  # at import, as many apps do
        ''', "test_app.py": '''
        import app


        def test_module_level_client_uses_the_emulator(llm_cache):
            app.client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
            [call] = llm_cache.calls
            assert call.server.startswith("127.0.0.1:") and call.usage
        '''}, *switch)
    assert results == {"test_module_level_client_uses_the_emulator": None}
