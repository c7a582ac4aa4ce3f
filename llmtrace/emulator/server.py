"""Serving the emulator with uvicorn: in a background thread (tests, the demo) or in the foreground (CLI)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from .app import Emulator, EmulatorConfig, InjectedDisconnect


class _HideInjectedFaults(logging.Filter):
    """uvicorn logs every exception that ends a response; a disconnect the client asked for is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, InjectedDisconnect):
                return False
            nested = getattr(error, "exceptions", None)  # task groups wrap it in an ExceptionGroup
            error = nested[0] if nested else error.__cause__ or error.__context__
        return True


def server(emulator: Emulator, host: str, port: int, log_level: str = "warning") -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_HideInjectedFaults())
    # Keep idle connections as long as the providers' front ends do (uvicorn's default is 5 s): SDK clients
    # pool them, and a server closing one just as a client reuses it breaks that request.
    config = uvicorn.Config(emulator.app, host=host, port=port, log_level=log_level, lifespan="off",
                            access_log=log_level in ("debug", "info"), timeout_keep_alive=75)
    return uvicorn.Server(config)


@dataclass
class RunningEmulator:
    emulator: Emulator
    url: str

    @property
    def anthropic_base_url(self) -> str:
        return self.url  # the Anthropic SDK adds /v1/messages

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"  # the OpenAI SDK adds /chat/completions, /responses


@contextmanager
def run_emulator(config: EmulatorConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> Iterator[RunningEmulator]:
    """Serve an emulator on `host:port` (0: a free port) in a background thread while the block runs."""
    emulator = Emulator(config)
    srv = server(emulator, host, port)
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread's to take
    thread = threading.Thread(target=srv.run, name="llmtrace-emulator", daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError(f"the emulator could not start on {host}:{port} (see the log above)")
        thread.join(0.01)
    bound = srv.servers[0].sockets[0].getsockname()
    try:
        yield RunningEmulator(emulator, f"http://{bound[0]}:{bound[1]}")
    finally:
        srv.should_exit = True
        thread.join(5)
