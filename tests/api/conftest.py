"""Fixtures for API tests: real HTTP through the ASGI app (with its lifespan), log capture, an MLflow stand-in."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from apps.api.main import create_app
from core.config import Settings, load_settings
from core.observability.logging import configure_logging, remove_logging_handlers
from tests.api.ingest_support import sensor_prefix
from tests.support.servers import CLOSED_HTTP_URL, silent_listener

#: A URL nobody listens on: connecting fails immediately with "connection refused" (CLOSED_HTTP_URL too).
CLOSED_DB_URL = "postgresql://postgres@127.0.0.1:1/closed"


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client talking to it through ASGI.

    Shutdown lets the bus finish what its agents are handling (up to ``SM_BUS_STOP_TIMEOUT_S``, 10 s), which on a
    loaded machine or TimescaleDB takes longer than asgi-lifespan's default 5 s limit."""
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def offline_settings(tmp_path: Any) -> Settings:
    """Settings whose database and MLflow are unreachable: enough for everything that needs no database."""
    return load_settings(
        env="test",
        database_url=CLOSED_DB_URL,
        mlflow_tracking_uri=CLOSED_HTTP_URL,
        ready_timeout_s=1.0,
        db_connect_timeout_s=1.0,
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
    )


@pytest.fixture
def prefix() -> str:
    """A sensor-id prefix of the test's own."""
    return sensor_prefix()


@pytest.fixture
def api() -> ClientFactory:
    """``async with api(settings, customize=fn) as client``: a fresh app (optionally customised) and a client."""

    @asynccontextmanager
    async def factory(
        settings: Settings, customize: Callable[[FastAPI], None] | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings)
        if customize is not None:
            customize(app)
        async with serve(app) as client:
            yield client

    return factory


@pytest.fixture
async def client(api: ClientFactory, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a fresh app on the suite's database (modules that need another app define their own)."""
    async with api(settings) as c:
        yield c


class LogCapture:
    """JSON log lines written by the configured handler, parsed."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def for_correlation(self, correlation_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("correlation_id") == correlation_id]


@pytest.fixture
def json_logs(offline_settings: Settings) -> Iterator[LogCapture]:
    """Configure the process's logging as JSON into a buffer for the duration of the test."""
    capture = LogCapture()
    settings = offline_settings.model_copy(update={"log_json": True, "log_level": "INFO"})
    root = logging.getLogger()
    level = root.level
    configure_logging(settings, stream=capture.stream)
    try:
        yield capture
    finally:
        remove_logging_handlers()
        root.setLevel(level)


class _MlflowStandIn(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = 200 if self.path == "/health" else 404
        code = type(self).status if code == 200 else code
        body = b"OK" if code == 200 else b"no"
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _start_http_server(status: int) -> tuple[ThreadingHTTPServer, threading.Thread]:
    handler = type("Handler", (_MlflowStandIn,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="mlflow-stand-in", daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def mlflow_stand_in() -> Iterator[Callable[[int], str]]:
    """``url = mlflow_stand_in(200)``: a loopback HTTP server answering ``/health`` with that status."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(status: int = 200) -> str:
        server, thread = _start_http_server(status)
        started.append((server, thread))
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def silent_tcp_server() -> Iterator[str]:
    """``host:port`` of a socket that accepts connections and never answers (a hung dependency)."""
    with silent_listener(name="silent-tcp") as (host, port):
        yield f"{host}:{port}"


@pytest.fixture
def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
