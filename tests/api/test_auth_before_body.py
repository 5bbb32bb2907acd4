"""The request gate (apps/api/gate.py): the key is checked and the body size limited before any body byte is read.

At the ASGI level the tests call the app with a ``receive`` that counts the body chunks it hands out, so "nothing
was read" is a count, not a guess. Every body-accepting route of the app is walked (a new route is covered
without editing this file). Over a real uvicorn server, a 200 MB POST without a key is answered 401 while the
server's memory stays flat.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message

from apps.api.main import create_app
from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.api.auth_support import MISSING_ID
from tests.support.servers import api_subprocess

CHUNK = 16 * 1024
REQUEST_LIMIT = 64 * 1024
INGEST_LIMIT = 256 * 1024
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Anonymous by design (see test_auth.EXEMPT); none of them accepts a body today.
EXEMPT = re.compile(r"^(/health.*|/metrics|/docs.*|/redoc.*|/openapi\.json)$")


# --- an ASGI client that counts what the app reads -------------------------------------------------------------
class CountingBody:
    """``receive`` handing out ``chunks`` chunks of ``CHUNK`` bytes; counts the chunks the app took."""

    def __init__(self, chunks: int, chunk: int = CHUNK) -> None:
        self.chunks = chunks
        self.chunk = chunk
        self.chunks_read = 0

    @property
    def bytes_read(self) -> int:
        return self.chunks_read * self.chunk

    async def __call__(self) -> Message:
        if self.chunks_read >= self.chunks:
            return {"type": "http.disconnect"}
        self.chunks_read += 1
        more = self.chunks_read < self.chunks
        return {"type": "http.request", "body": b"x" * self.chunk, "more_body": more}


class Reply:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def call(
    app: ASGIApp,
    method: str,
    path: str,
    body: CountingBody,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> Reply:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *raw],
        "client": client,
        "server": ("testserver", 80),
    }
    reply = Reply()
    await app(scope, body, reply)
    return reply


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, ASGIApp]]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        yield app, manager.app


@pytest.fixture
def small_limits(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "max_request_body_bytes": REQUEST_LIMIT,
            "max_body_bytes": INGEST_LIMIT,
            "auth_failure_limit": "100000/minute",  # these tests fail on purpose, many times from one address
        }
    )


def admin(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.api_key.get_secret_value(), "Content-Type": "application/json"}


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    import json

    assert reply.status == status, (reply.status, bytes(reply.body[:300]))
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.headers.get("x-request-id")
    problem = json.loads(reply.body)
    assert problem["status"] == status
    assert problem["correlation_id"] == reply.headers["x-request-id"]
    return problem


def too_large(limit: str) -> float:
    return REGISTRY.get_sample_value("sm_api_request_body_too_large_total", {"limit": limit}) or 0.0


# --- one route ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "sm_invented-key-for-the-gate-test"}, {"X-API-Key": "no-prefix-garbage"}],
    ids=["no-key", "invented-key", "garbage"],
)
async def test_without_a_valid_key_the_body_is_never_read(
    small_limits: Settings, headers: dict[str, str]
) -> None:
    async with running(small_limits) as (_, app):
        declared = {**headers, "Content-Type": "application/json", "Content-Length": str(200 * 1024 * 1024)}
        body = CountingBody(chunks=1000)
        reply = await call(app, "POST", "/api/v1/assets", body, declared)
        assert_problem(reply, 401)
        assert reply.headers["www-authenticate"].startswith("ApiKey")
        assert body.chunks_read == 0

        streamed = CountingBody(chunks=1000)  # chunked: no Content-Length at all
        reply = await call(
            app, "POST", "/api/v1/assets", streamed, {**headers, "Content-Type": "application/json"}
        )
        assert_problem(reply, 401)
        assert streamed.chunks_read == 0


@pytest.mark.parametrize(
    ("path", "limit", "kind"),
    [("/api/v1/assets", REQUEST_LIMIT, "request"), ("/api/v1/data/ingest", INGEST_LIMIT, "ingest")],
)
async def test_declared_length_over_the_limit_is_413_with_nothing_read(
    small_limits: Settings, path: str, limit: int, kind: str
) -> None:
    async with running(small_limits) as (_, app):
        before = too_large(kind)
        body = CountingBody(chunks=limit // CHUNK + 2)
        reply = await call(app, "POST", path, body, {**admin(small_limits), "Content-Length": str(limit + 1)})
        problem = assert_problem(reply, 413)
        assert str(limit) in problem["detail"]
        assert body.chunks_read == 0
        assert too_large(kind) == before + 1

        # at the limit: read (and refused for what it is, not for its size)
        at_limit = CountingBody(chunks=limit // CHUNK)
        reply = await call(app, "POST", path, at_limit, {**admin(small_limits), "Content-Length": str(limit)})
        assert reply.status not in (401, 413), bytes(reply.body[:300])
        assert at_limit.chunks_read == limit // CHUNK


@pytest.mark.parametrize(
    ("path", "limit"), [("/api/v1/assets", REQUEST_LIMIT), ("/api/v1/data/ingest", INGEST_LIMIT)]
)
async def test_streamed_body_over_the_limit_stops_at_about_the_limit(
    small_limits: Settings, path: str, limit: int
) -> None:
    async with running(small_limits) as (_, app):
        body = CountingBody(chunks=4 * limit // CHUNK)  # four times the limit, no Content-Length
        reply = await call(app, "POST", path, body, admin(small_limits))
        assert_problem(reply, 413)
        assert limit < body.bytes_read <= limit + CHUNK  # stopped at the first chunk over the limit


# --- every body-accepting route ---------------------------------------------------------------------------------
def body_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, concrete path, whether FastAPI parses a body for it) of every route taking POST/PUT/PATCH/DELETE."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", None)
        if not path or EXEMPT.match(path):
            continue
        concrete = re.sub(r"\{[^}]+\}", str(MISSING_ID), path)
        for method in (route.methods or set()) & BODY_METHODS:
            found.add((method, concrete, getattr(route, "body_field", None) is not None))
    return sorted(found)


async def test_every_body_accepting_route_checks_key_and_size_before_reading(small_limits: Settings) -> None:
    async with running(small_limits) as (fastapi_app, app):
        routes = body_routes(fastapi_app)
        assert len(routes) >= 10 and any(p.startswith("/api/v1/admin/") for _, p, _ in routes)
        limited = 0
        for method, path, parses_body in routes:
            where = (method, path)
            for headers in ({}, {"X-API-Key": "sm_invented-key-for-the-walk"}):
                body = CountingBody(chunks=100)
                reply = await call(app, method, path, body, {**headers, "Content-Length": str(100 * CHUNK)})
                assert reply.status == 401, where
                assert body.chunks_read == 0, where

            body = CountingBody(chunks=100)
            declared = {**admin(small_limits), "Content-Length": str(100 * CHUNK)}
            reply = await call(app, method, path, body, declared)
            assert reply.status == 413, (where, reply.status)
            assert body.chunks_read == 0, where

            limit = INGEST_LIMIT if path.startswith("/api/v1/data/ingest") else REQUEST_LIMIT
            body = CountingBody(chunks=4 * limit // CHUNK)
            reply = await call(app, method, path, body, admin(small_limits))
            assert body.bytes_read <= limit + CHUNK, where
            if parses_body:
                assert reply.status == 413, (where, reply.status, bytes(reply.body[:200]))
            if reply.status == 413:
                limited += 1
            else:  # a route that never reads its body (answered 404 for the missing id, …) read nothing
                assert body.chunks_read == 0, (where, reply.status)
        assert limited >= sum(1 for *_, parses in routes if parses) >= 5


# --- a real server --------------------------------------------------------------------------------------------
@pytest.fixture
def api_server(database_url: str, unused_port: int, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``python -m apps.api`` (uvicorn) on 127.0.0.1: its base URL and its process."""
    with api_subprocess(database_url, unused_port, tmp_path, log_level="WARNING") as (base_url, proc, _log):
        yield base_url, psutil.Process(proc.pid)


BIG = 200 * 1024 * 1024
MiB = 1024 * 1024


def _body(total: int, chunk: int = MiB) -> Iterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


@pytest.mark.slow
def test_200_mb_without_a_key_is_401_and_the_server_memory_stays_flat(
    api_server: tuple[str, psutil.Process],
) -> None:
    base_url, server = api_server
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        rss_before = server.memory_info().rss
        try:
            response = client.post(
                "/api/v1/assets",
                content=_body(BIG),
                headers={"Content-Type": "application/json", "Content-Length": str(BIG)},
            )
        except httpx.TransportError as exc:  # the server may close the connection instead of draining 200 MB
            pytest.fail(f"no answer to the 200 MB request: {exc!r}")
        rss_after = server.memory_info().rss
        growth_mib = (rss_after - rss_before) / MiB
        print(f"\n200 MB POST without a key: {response.status_code}, server RSS {rss_before / MiB:.0f} -> "
              f"{rss_after / MiB:.0f} MiB (+{growth_mib:.1f} MiB)")  # fmt: skip
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert growth_mib < 30, growth_mib
        assert client.get("/health").status_code == 200  # still serving
