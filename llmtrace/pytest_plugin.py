"""pytest plugin: fail the app's own tests when a change makes its prompts uncacheable. See docs/pytest-plugin.md.

Installed with the package (entry point `pytest11`); it does nothing until a test asks for one of its
fixtures or a switch turns it on:

* `llm_cache`: records every Anthropic/OpenAI call the test makes (llmtrace is instrumented for the test if
  the app has not done it) and checks them: `llm_cache.assert_cacheable()`, or one check at a time.
* `llm_emulator`: the bundled provider emulator on a loopback port for the session, with the SDKs pointed
  at it (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`); `--llm-emulator` (or `llm_emulator = true` in the ini
  file) starts it before the tests are collected, for apps that create their clients at import.
* `--llm-cache-strict` (or the `llm_cache_strict` marker, or ini option): fail any test whose calls wrote
  the prompt cache without a later call reading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ._cache_check import LLMCache, RecordedCall, recording

if TYPE_CHECKING:
    from .emulator import RunningEmulator

__all__ = ["LLMCache", "RecordedCall"]

_EMULATOR = pytest.StashKey["_Emulator"]()
_DUMMY_KEY = "llmtrace-emulator"  # the emulator takes any key; a real one is not needed, nor sent anywhere else
_ENV = {"ANTHROPIC_BASE_URL": "anthropic_base_url", "OPENAI_BASE_URL": "openai_base_url"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmtrace", "prompt-cache checks (llmtrace)")
    group.addoption("--llm-emulator", action="store_true", default=None,
                    help="serve llmtrace's Anthropic/OpenAI emulator on a loopback port for the session and point "
                         "the SDKs at it (ANTHROPIC_BASE_URL, OPENAI_BASE_URL): no key, no network")
    group.addoption("--llm-cache-strict", action="store_true", default=None,
                    help="fail any test whose calls wrote the prompt cache without a later call reading it")
    parser.addini("llm_emulator", type="bool", default=False, help="as --llm-emulator")
    parser.addini("llm_cache_strict", type="bool", default=False, help="as --llm-cache-strict")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm_cache_strict: fail this test if its calls wrote the prompt cache "
                                       "without a later call reading it")
    if _switched_on(config, "llm_emulator"):
        config.stash[_EMULATOR] = _Emulator.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    emulator = config.stash.get(_EMULATOR, None)
    if emulator is not None:
        emulator.stop()
        del config.stash[_EMULATOR]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and _strict(item) and "llm_cache" not in names:
            names.append("llm_cache")  # recorded for the strict check, without the test asking for it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield  # a test that failed already is not checked again
    cache = getattr(item, "funcargs", {}).get("llm_cache")
    if isinstance(cache, LLMCache) and _strict(item):
        try:
            cache.assert_writes_read()
        except AssertionError as exc:
            pytest.fail(f"llm_cache strict: {exc}", pytrace=False)
    return result


@pytest.fixture
def llm_cache(request: pytest.FixtureRequest) -> Iterator[LLMCache]:
    """Every Anthropic/OpenAI call this test makes, and assertions on its prompt cache (see `LLMCache`).

    Against the plugin's emulator, its caches are emptied first, so that each test starts cold."""
    emulator = request.config.stash.get(_EMULATOR, None)
    if emulator is not None:
        emulator.running.emulator.clear_caches()
    with recording(emulator.address if emulator is not None else None) as cache:
        yield cache


@pytest.fixture(scope="session")
def llm_emulator(request: pytest.FixtureRequest) -> Iterator[RunningEmulator]:
    """The bundled emulator, serving on 127.0.0.1 for the session, with the SDKs' base URLs pointed at it.

    Clients created after this fixture use it; for clients created at import, use `--llm-emulator`."""
    emulator = request.config.stash.get(_EMULATOR, None)
    if emulator is not None:
        yield emulator.running
        return
    emulator = request.config.stash[_EMULATOR] = _Emulator.start()
    try:
        yield emulator.running
    finally:
        emulator.stop()
        del request.config.stash[_EMULATOR]


class _Emulator:
    """The emulator's server thread and the environment it set (put back as it was when it stops)."""

    def __init__(self, context: Any, running: RunningEmulator, saved: dict[str, str | None]) -> None:
        self._context, self.running, self._saved = context, running, saved

    @classmethod
    def start(cls) -> _Emulator:
        try:
            from .emulator import EmulatorConfig, run_emulator
        except ImportError as exc:
            raise pytest.UsageError(f"llmtrace's emulator needs its extra: pip install 'llmtrace-otel[emulator]' "
                                    f"({exc})") from None
        context = run_emulator(EmulatorConfig(time_to_first_token=0.0, seconds_per_chunk=0.0))
        running = context.__enter__()
        names = {**_ENV, "ANTHROPIC_API_KEY": None, "OPENAI_API_KEY": None}
        saved = {name: os.environ.get(name) for name in names}
        for name, attribute in _ENV.items():
            os.environ[name] = getattr(running, attribute)
        for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            os.environ.setdefault(name, _DUMMY_KEY)
        return cls(context, running, saved)

    @property
    def address(self) -> str:
        return self.running.url.removeprefix("http://")

    def stop(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._context.__exit__(None, None, None)


def _switched_on(config: pytest.Config, name: str) -> bool:
    option = config.getoption(name)
    return bool(option) if option is not None else bool(config.getini(name))


def _strict(item: pytest.Item) -> bool:
    return _switched_on(item.config, "llm_cache_strict") or item.get_closest_marker("llm_cache_strict") is not None
