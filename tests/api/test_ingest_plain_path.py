"""The plain ingest request is served by ``apps.api.routers.ingest.serve_plain_ingest`` from the request gate (no
FastAPI routing or dependency solving): it must answer exactly what the route answers. Each case is sent twice,
plain and with ``?atomic=false`` (the default value, which takes the route), and the answers compared."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from apps.api import gate
from apps.api.routers import ingest as ingest_router
from core.config import Settings
from tests.api.auth_support import create_key
from tests.api.conftest import ClientFactory
from tests.api.ingest_support import INGEST, count_readings, headers, reading


@pytest.fixture
async def counted(
    api: ClientFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """A client, and the paths of the requests the plain path served."""
    served: list[str] = []
    original = ingest_router.serve_plain_ingest

    async def counting(scope: Any, receive: Any, send: Any, principal: Any) -> None:
        served.append(scope["path"])
        await original(scope, receive, send, principal)

    monkeypatch.setattr(gate, "serve_plain_ingest", counting)
    small = settings.model_copy(update={"max_body_bytes": 4_096})
    async with api(small) as client:
        yield client, served


def _comparable(response: httpx.Response) -> tuple[int, str, Any, str | None]:
    body: Any = response.json() if response.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in {"event_id", "correlation_id"}}
    return response.status_code, response.headers.get("content-type", ""), body, response.headers.get("retry-after")


Case = Callable[[str], tuple[bytes, dict[str, str]]]


def _cases(settings: Settings) -> dict[str, Case]:
    def json_body(payload: object) -> Case:
        return lambda sensor: (orjson.dumps(payload).replace(b"SENSOR", sensor.encode()), headers(settings))

    return {
        "one reading": json_body(reading("SENSOR-1")),
        "a batch": json_body([reading("SENSOR-1", minutes_ago=m) for m in (1, 2, 3)]),
        "a bad item in a batch": json_body([reading("SENSOR-1", minutes_ago=4), {"sensor_id": "SENSOR-1"}]),
        "an invalid single reading": json_body({"sensor_id": "SENSOR-1", "value": "hot", "timestamp": "now"}),
        "not JSON": lambda sensor: (b"{not json", headers(settings)),
        "an empty array": json_body([]),
        "a wrong content type": lambda sensor: (
            orjson.dumps(reading(sensor)),
            headers(settings, **{"Content-Type": "text/plain"}),
        ),
        # refused by the gate from Content-Length before either path runs
        "a declared body over the limit": json_body([reading("SENSOR-1", minutes_ago=m) for m in range(100)]),
    }


async def test_plain_requests_answer_what_the_route_answers(
    counted: tuple[httpx.AsyncClient, list[str]], settings: Settings, prefix: str, database_url: str
) -> None:
    client, served = counted
    for number, (name, case) in enumerate(_cases(settings).items()):
        plain_body, plain_headers = case(f"{prefix}-p{number}")
        route_body, route_headers = case(f"{prefix}-r{number}")
        before = len(served)
        plain = await client.post(INGEST, content=plain_body, headers=plain_headers)
        expected = before + (0 if "over the limit" in name else 1)
        assert len(served) == expected, f"{name}: served {len(served) - before} times by the plain path"
        routed = await client.post(INGEST, content=route_body, headers=route_headers, params={"atomic": "false"})
        assert len(served) == expected, f"{name}: the request with a query string took the plain path"
        assert _comparable(plain) == _comparable(routed), name
        assert plain.headers["x-request-id"] and routed.headers["x-request-id"]
    assert await count_readings(database_url, f"{prefix}-p") == await count_readings(database_url, f"{prefix}-r") > 0


async def test_a_streamed_body_over_the_limit_is_refused_alike(
    counted: tuple[httpx.AsyncClient, list[str]], settings: Settings, prefix: str
) -> None:
    client, served = counted
    chunk = orjson.dumps([reading(f"{prefix}-s", minutes_ago=m) for m in range(40)])

    async def stream() -> AsyncIterator[bytes]:  # chunked: no Content-Length, the limit counts what arrives
        for _ in range(3):
            yield chunk

    plain = await client.post(INGEST, content=stream(), headers=headers(settings))
    routed = await client.post(INGEST, content=stream(), headers=headers(settings), params={"backfill": "false"})
    assert served and plain.status_code == 413
    assert _comparable(plain) == _comparable(routed)


async def test_requests_with_an_idempotency_key_or_without_the_scope_take_the_route(
    counted: tuple[httpx.AsyncClient, list[str]], settings: Settings, prefix: str
) -> None:
    client, served = counted
    keyed = await client.post(
        INGEST,
        content=orjson.dumps(reading(f"{prefix}-k")),
        headers=headers(settings, **{"Idempotency-Key": f"{prefix}-key"}),
    )
    assert keyed.status_code == 202 and served == []
    replay = await client.post(
        INGEST,
        content=orjson.dumps(reading(f"{prefix}-k")),
        headers=headers(settings, **{"Idempotency-Key": f"{prefix}-key"}),
    )
    assert replay.headers.get("idempotent-replayed") == "true" and served == []
    reader = await create_key(client, settings, "read")
    refused = await client.post(
        INGEST, content=orjson.dumps(reading(f"{prefix}-r")), headers={**headers(settings), **reader.headers}
    )
    assert refused.status_code == 403 and served == []
