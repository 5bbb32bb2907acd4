"""Regression tests of the inputs that used to answer 500 (issue 13), against the real app and database:
integers beyond int4/int8, NUL in text, extreme dates, ``{"title": null}``, loose coercion; and a PostgreSQL that
answers SQLSTATE 57P03 (crash recovery) to every connection, which must be a 503 with ``Retry-After``."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apps.api.errors import PROBLEM_MEDIA_TYPE
from core.config import Settings
from core.errors import problem_type
from tests.api.conftest import ClientFactory

V1 = "/api/v1"


def _admin(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.api_key.get_secret_value()}


def _assert_422(response: httpx.Response, *loc: str | int) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    if loc:
        assert any(tuple(e["loc"])[: len(loc)] == loc for e in body["errors"]), body["errors"]
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    assert "pydantic.dev" not in response.text
    return body


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (f"{V1}/assets/2147483648", ("path", "asset_id")),  # int4 + 1
        (f"{V1}/alerts/9223372036854775808", ("path", "alert_id")),  # int8 + 1
        (f"{V1}/maintenance/tasks/98287224638946082816", ("path", "task_id")),
        (f"{V1}/admin/dead-letters?offset=769355041742834106368", ("query", "offset")),
        (f"{V1}/anomalies?offset=10000001", ("query", "offset")),
        (f"{V1}/sensors?asset_id=2147483648", ("query", "asset_id")),
    ],
)
async def test_huge_integers_are_422(client: httpx.AsyncClient, settings: Settings, path: str, loc: tuple) -> None:
    _assert_422(await client.get(path, headers=_admin(settings)), *loc)


async def test_largest_ids_are_a_plain_404(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await client.get(f"{V1}/assets/2147483647", headers=_admin(settings))).status_code == 404
    assert (await client.get(f"{V1}/alerts/9223372036854775807", headers=_admin(settings))).status_code == 404


async def test_nul_in_text_is_422(client: httpx.AsyncClient, settings: Settings) -> None:
    headers = _admin(settings)
    _assert_422(await client.get(f"{V1}/assets", params={"site": "a\x00b"}, headers=headers), "query", "site")
    _assert_422(await client.get(f"{V1}/alerts", params={"rule": "\x00"}, headers=headers), "query", "rule")
    created = await client.post(f"{V1}/assets", json={"name": "bad\x00name"}, headers=headers)
    _assert_422(created, "body", "name")
    key = await client.post(f"{V1}/admin/api-keys", json={"name": "ops\nroot", "scopes": ["read"]}, headers=headers)
    _assert_422(key, "body", "name")


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"end": "9999-12-31T23:59:59-05:00"},  # after 9999 in UTC
        {"start": "1969-12-31T23:59:59Z"},
        {"start": "0.5"},  # an epoch number is not a date
        {"start": "1700000000"},
    ],
)
async def test_extreme_or_numeric_dates_are_422(
    client: httpx.AsyncClient, settings: Settings, params: dict[str, str]
) -> None:
    response = await client.get(f"{V1}/anomalies", params=params, headers=_admin(settings))
    body = _assert_422(response, "query", next(iter(params)))
    assert next(iter(params.values())) not in response.text  # the value is not echoed
    assert body["type"] == problem_type("validation-failed")


async def test_cursor_out_of_range_is_422(client: httpx.AsyncClient, settings: Settings) -> None:
    import base64
    import json

    for moment in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-05:00"):
        raw = json.dumps({"v": 1, "t": moment}).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        response = await client.get(
            f"{V1}/sensors/any-sensor/readings", params={"cursor": cursor}, headers=_admin(settings)
        )
        _assert_422(response, "query", "cursor")


async def test_null_title_in_patch_is_422_not_a_database_error(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = _admin(settings)
    created = await client.post(f"{V1}/maintenance/tasks", json={"title": "Inspect pump"}, headers=headers)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    for field in ("title", "priority", "status"):
        response = await client.patch(f"{V1}/maintenance/tasks/{task_id}", json={field: None}, headers=headers)
        _assert_422(response, "body", field)
    unchanged = await client.get(f"{V1}/maintenance/tasks/{task_id}", headers=headers)
    assert unchanged.json()["title"] == "Inspect pump"
    cleared = await client.patch(f"{V1}/maintenance/tasks/{task_id}", json={"assignee": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text  # a nullable column may be cleared


async def test_unknown_asset_on_a_task_is_422(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(
        f"{V1}/maintenance/tasks", json={"title": "x", "asset_id": 2147483000}, headers=_admin(settings)
    )
    _assert_422(response, "body", "asset_id")


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/webhooks", {"name": "w", "target": "https://example.com/h", "is_active": 0}, ("body", "is_active")),
        ("/alert-rules", {"name": "r1", "kind": "threshold", "params": {"max": 1}, "enabled": 1}, ("body", "enabled")),
        ("/alert-rules", {"name": "r2", "kind": "threshold", "params": {"max": False}}, ("body",)),
    ],
)
async def test_loose_coercion_is_refused(
    client: httpx.AsyncClient, settings: Settings, path: str, body: dict[str, Any], loc: tuple
) -> None:
    response = await client.post(f"{V1}{path}", json=body, headers=_admin(settings))
    _assert_422(response, *loc)


async def test_rule_params_error_shows_neither_input_nor_library_url(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = _admin(settings)
    created = await client.post(
        f"{V1}/alert-rules", json={"name": "echo-check", "kind": "threshold", "params": {"max": 5}}, headers=headers
    )
    assert created.status_code == 201, created.text
    secret = "s3cr3t-looking-input"
    response = await client.patch(
        f"{V1}/alert-rules/{created.json()['id']}", json={"params": {"max": secret}}, headers=headers
    )
    _assert_422(response, "body", "params")
    assert secret not in response.text
    assert "input_value" not in response.text and "errors.pydantic" not in response.text


async def test_undecodable_body_is_422(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(
        f"{V1}/assets",
        content=b"\xff\xfe\xfd",
        headers={**_admin(settings), "content-type": "application/json"},
    )
    assert _assert_422(response, "body")["errors"][0]["type"] == "json_invalid"


# --- PostgreSQL in crash recovery ---------------------------------------------------------------------------
def _error_response(code: str, message: str) -> bytes:
    fields = b"".join(tag + value.encode() + b"\x00" for tag, value in
                      ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))) + b"\x00"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


@pytest.fixture
def recovering_postgres() -> Iterator[str]:
    """A server speaking the PostgreSQL wire protocol that refuses every start-up with SQLSTATE 57P03
    ("the database system is in recovery mode"), as PostgreSQL does during crash recovery."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    conn.settimeout(5)
                    length, code = struct.unpack("!II", _recv_exact(conn, 8))
                    if code == 80877103:  # SSLRequest: no TLS here
                        conn.sendall(b"N")
                        length = struct.unpack("!I", _recv_exact(conn, 4))[0]
                        _recv_exact(conn, length - 4)
                    else:
                        _recv_exact(conn, length - 8)
                    conn.sendall(_error_response("57P03", "the database system is in recovery mode"))
                except (OSError, ConnectionError, struct.error):
                    pass

    thread = threading.Thread(target=serve, name="recovering-postgres", daemon=True)
    thread.start()
    try:
        yield f"postgresql://postgres@127.0.0.1:{sock.getsockname()[1]}/smart_maintenance"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


async def test_database_in_crash_recovery_is_503_with_retry_after(
    api: ClientFactory, offline_settings: Settings, recovering_postgres: str
) -> None:
    settings = offline_settings.model_copy(update={"database_url": recovering_postgres})
    headers = _admin(settings)
    async with api(settings) as client:
        for response in (
            await client.get(f"{V1}/assets", headers=headers),
            await client.post(
                f"{V1}/data/ingest",
                json={"sensor_id": "s-1", "value": 1.0, "timestamp": "2026-01-01T00:00:00Z"},
                headers=headers,
            ),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
            assert response.json()["type"] == problem_type("service-unavailable")
            assert int(response.headers["retry-after"]) > 0
            assert "recovery" not in response.text and "57P03" not in response.text


async def test_crash_recovery_error_is_classified_unavailable(recovering_postgres: str) -> None:
    """The exception a real connection attempt raises (asyncpg CannotConnectNowError wrapped by SQLAlchemy) is a
    database outage: the routes and the ingest group committer turn it into a 503 with Retry-After."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from core.config import to_async_url
    from core.db.errors import as_service_unavailable, is_data_exception, sqlstate

    engine = create_async_engine(to_async_url(recovering_postgres))
    try:
        with pytest.raises(Exception) as raised:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert sqlstate(raised.value) == "57P03"
    assert not is_data_exception(raised.value)
    error = as_service_unavailable(raised.value, "retry later")
    assert error is not None and error.status_code == 503 and int(error.headers["Retry-After"]) > 0
