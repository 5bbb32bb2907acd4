"""Every error is an RFC 9457 problem: 404, 405, 422, AppError subclasses, and a generic 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from apps.api.errors import PROBLEM_MEDIA_TYPE
from core.config import Settings
from core.errors import Conflict, NotFound, RateLimited, Unauthorized, problem_type
from tests.api.conftest import ClientFactory


class Thing(BaseModel):
    name: str = Field(max_length=20)
    count: int


def _add_routes(app: FastAPI) -> None:
    @app.post("/_test/things")
    async def create_thing(thing: Thing, limit: int = 10) -> dict[str, Any]:
        return thing.model_dump()

    @app.get("/_test/conflict")
    async def conflict() -> None:
        raise Conflict("sensor 'pump-1' already exists", extra={"sensor_id": "pump-1"})

    @app.get("/_test/missing")
    async def missing() -> None:
        raise NotFound("asset 7 does not exist")

    @app.get("/_test/limited")
    async def limited() -> None:
        raise RateLimited("slow down", retry_after_s=30)

    @app.get("/_test/auth")
    async def auth() -> None:
        raise Unauthorized()

    @app.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")  # must never reach the client

    @app.get("/_test/database-down")
    async def database_down() -> None:
        raise ConnectionRefusedError("connect to 10.0.0.5:5432 (password hunter2) refused")


def _assert_problem(response: Any, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status
    assert body["instance"] == path
    assert body["title"]
    assert body["type"]
    assert body["correlation_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
async def client(api: ClientFactory, offline_settings: Settings):  # type: ignore[no-untyped-def]
    async with api(offline_settings, customize=_add_routes) as client:
        yield client


async def test_unknown_route_is_404_problem(client) -> None:  # type: ignore[no-untyped-def]
    body = _assert_problem(await client.get("/does/not/exist"), 404, "/does/not/exist")
    assert body["type"] == problem_type("not-found")


async def test_wrong_method_is_405_problem_with_allow(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.delete("/health")
    body = _assert_problem(response, 405, "/health")
    assert body["type"] == problem_type("method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_validation_error_is_422_problem_listing_errors(client) -> None:  # type: ignore[no-untyped-def]
    huge = "x" * 50_000
    response = await client.post("/_test/things?limit=abc", json={"name": huge, "count": "many"})
    body = _assert_problem(response, 422, "/_test/things")
    assert body["type"] == problem_type("validation-failed")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("query", "limit") in locs
    assert ("body", "name") in locs
    assert ("body", "count") in locs
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    assert huge not in response.text and len(response.content) < 5_000


async def test_malformed_json_is_422_problem(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/_test/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422, "/_test/things")


async def test_app_error_keeps_status_type_title_and_extra(client) -> None:  # type: ignore[no-untyped-def]
    body = _assert_problem(await client.get("/_test/conflict"), 409, "/_test/conflict")
    assert body["type"] == problem_type("conflict")
    assert body["title"] == "Conflict"
    assert body["detail"] == "sensor 'pump-1' already exists"
    assert body["sensor_id"] == "pump-1"

    body = _assert_problem(await client.get("/_test/missing"), 404, "/_test/missing")
    assert body["detail"] == "asset 7 does not exist"


async def test_app_error_headers(client) -> None:  # type: ignore[no-untyped-def]
    limited = await client.get("/_test/limited")
    _assert_problem(limited, 429, "/_test/limited")
    assert limited.headers["retry-after"] == "30"
    auth = await client.get("/_test/auth")
    _assert_problem(auth, 401, "/_test/auth")
    assert "X-API-Key" in auth.headers["www-authenticate"]


async def test_unexpected_exception_is_generic_500(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/_test/crash")
    body = _assert_problem(response, 500, "/_test/crash")
    assert body["type"] == problem_type("internal-error")
    assert "correlation_id" in body["detail"]
    for leak in ("Traceback", "RuntimeError", "hunter2", 'File "', "line "):
        assert leak not in response.text


async def test_database_outage_is_503_not_500(client) -> None:  # type: ignore[no-untyped-def]
    """An unreachable database is not a bug: 503 service-unavailable, nothing internal in the body."""
    response = await client.get("/_test/database-down")
    body = _assert_problem(response, 503, "/_test/database-down")
    assert body["type"] == problem_type("service-unavailable")
    for leak in ("Traceback", "ConnectionRefusedError", "hunter2", "10.0.0.5"):
        assert leak not in response.text
