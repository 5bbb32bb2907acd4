"""POST /api/v1/data/ingest: storage, partial vs atomic, duplicates, every bad-input class, outbox event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from apps.api.deps import app_runtime
from core.config import Settings
from tests.api.conftest import ClientFactory
from tests.api.ingest_support import (
    INGEST,
    count_readings,
    count_sensors,
    fetchval,
    headers,
    outbox_rows,
    outbox_rows_for_sensors,
    post,
    reading,
    register_sensor,
    ts,
)


async def test_batch_is_stored_with_outbox_event(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [reading(f"{prefix}-a", minutes_ago=i, value=float(i), unit="°C", quality=0.9) for i in range(100)]
    body += [reading(f"{prefix}-b", minutes_ago=i, metadata={"sensor_type": "vibration"}) for i in range(50)]
    response = await post(client, settings, body)
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["accepted"] == 150 and data["duplicates"] == 0 and data["rejected"] == []
    assert await count_readings(database_url, prefix) == 150
    assert await count_sensors(database_url, prefix) == 2  # auto-registered (development/test default)
    assert await outbox_rows(database_url, data["event_id"]) == 1


async def test_large_batch_goes_through_copy(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [reading(f"{prefix}-{i % 7}", minutes_ago=i / 60) for i in range(10_000)]
    response = await post(client, settings, body)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 10_000
    assert await count_readings(database_url, prefix) == 10_000
    again = await post(client, settings, body)  # re-sent: all duplicates, nothing new, no event
    assert again.status_code == 202
    assert again.json() | {"event_id": None} == {
        "event_id": None,
        "accepted": 0,
        "duplicates": 10_000,
        "rejected": [],
    }
    assert await outbox_rows(database_url, again.json()["event_id"]) == 0


async def test_large_batch_overlapping_stored_readings(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    """The direct COPY meets existing keys: it is rolled back and the batch still stores exactly the new ones."""
    body = [reading(f"{prefix}-a", minutes_ago=i / 10) for i in range(1_000)]
    first = await post(client, settings, body[::100])  # 10 of them already stored
    assert first.json()["accepted"] == 10
    response = await post(client, settings, body)
    assert response.status_code == 202
    assert response.json()["accepted"] == 990 and response.json()["duplicates"] == 10
    assert await count_readings(database_url, prefix) == 1_000
    assert await outbox_rows(database_url, response.json()["event_id"]) == 1


async def test_duplicates_in_db_and_within_batch(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    first = await post(client, settings, [reading(f"{prefix}-a", 1), reading(f"{prefix}-a", 2)])
    assert first.json()["accepted"] == 2
    body = [reading(f"{prefix}-a", 1), reading(f"{prefix}-a", 3), reading(f"{prefix}-a", 3, value=9.0)]
    response = await post(client, settings, body)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 2
    assert await count_readings(database_url, prefix) == 3


BAD_ITEMS = [
    ("wrong type value", {"value": "12.5"}, "value"),
    ("boolean value", {"value": True}, "value"),
    ("wrong type sensor", {"sensor_id": 17}, "sensor_id"),
    ("missing value", {"value": None}, "value"),
    ("infinity", {"value": 1e400}, "finite"),
    ("quality above 1", {"quality": 1.5}, "quality"),
    ("quality below 0", {"quality": -0.1}, "quality"),
    ("naive timestamp", {"timestamp": "2026-01-01T00:00:00"}, "timezone"),
    ("future timestamp", {"timestamp": ts(-30)}, "future"),
    ("too old", {"timestamp": ts(60 * 24 * 400)}, "retention"),
    ("not a timestamp", {"timestamp": "yesterday"}, "timestamp"),
    ("numeric timestamp", {"timestamp": 1_700_000_000}, "timestamp"),
    ("unknown field", {"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("case", "change", "reason"), BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
async def test_each_bad_item_class_rejected_and_nothing_stored(
    client: httpx.AsyncClient,
    settings: Settings,
    database_url: str,
    prefix: str,
    case: str,
    change: dict,
    reason: str,
) -> None:
    bad = reading(f"{prefix}-a") | change
    if change.get("value", 0) is None:
        del bad["value"]
    # alone (partial mode): nothing can be stored → 422 with the reason
    response = await client.post(INGEST, content=json.dumps([bad]), headers=headers(settings))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["rejected"][0]["index"] == 0
    assert reason in problem["rejected"][0]["reason"]
    # with good items, atomic: 422, nothing stored
    body = [reading(f"{prefix}-a", 1), bad, reading(f"{prefix}-a", 2)]
    atomic = await client.post(
        INGEST, content=json.dumps(body), headers=headers(settings), params={"atomic": "true"}
    )
    assert atomic.status_code == 422
    assert [r["index"] for r in atomic.json()["rejected"]] == [1]
    assert await count_readings(database_url, prefix) == 0
    # partial: the good ones stored, the bad one listed
    partial = await client.post(INGEST, content=json.dumps(body), headers=headers(settings))
    assert partial.status_code == 202
    assert partial.json()["accepted"] == 2
    assert [r["index"] for r in partial.json()["rejected"]] == [1]
    assert await count_readings(database_url, prefix) == 2


async def test_nan_literal_rejected_per_item(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    content = json.dumps([reading(f"{prefix}-a", 1), reading(f"{prefix}-a", 2, value=float("nan"))])
    assert "NaN" in content
    response = await client.post(INGEST, content=content, headers=headers(settings))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1
    assert "finite" in response.json()["rejected"][0]["reason"]


async def test_atomic_lists_every_bad_item_and_writes_no_event(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [
        reading(f"{prefix}-a", 1),
        reading(f"{prefix}-a", 2, quality=3),
        5,
        reading(f"{prefix}-a", 4, value="x"),
    ]
    response = await post(client, settings, body, atomic="true")
    assert response.status_code == 422
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2, 3]
    assert [e["loc"] for e in response.json()["errors"]] == [["body", 1], ["body", 2], ["body", 3]]
    assert await count_readings(database_url, prefix) == 0
    assert await count_sensors(database_url, prefix) == 0
    assert await outbox_rows_for_sensors(database_url, [f"{prefix}-a"]) == 0


async def test_outbox_event_describes_the_committed_readings(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [reading(f"{prefix}-b", 5), reading(f"{prefix}-a", 1), reading(f"{prefix}-a", 9)]
    hdrs = headers(settings, **{"X-Request-ID": f"req-{prefix}"})
    response = await client.post(INGEST, content=orjson.dumps(body), headers=hdrs)
    assert response.status_code == 202
    payload = await fetchval(
        database_url,
        "SELECT payload FROM outbox WHERE event_type = 'ReadingsIngested' AND payload->>'ingest_event_id' = $1",
        response.json()["event_id"],
    )
    event = json.loads(payload)
    assert event["count"] == 3
    assert event["sensor_ids"] == [f"{prefix}-a", f"{prefix}-b"]
    assert event["first_timestamp"].startswith(ts(9)[:16]) and event["last_timestamp"].startswith(ts(1)[:16])
    assert event["correlation_id"] == f"req-{prefix}"
    assert isinstance(event["api_key_id"], int)


async def test_atomic_all_good_is_stored(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    response = await post(client, settings, [reading(f"{prefix}-a", i) for i in range(3)], atomic="true")
    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    assert await outbox_rows(database_url, response.json()["event_id"]) == 1


async def test_unknown_sensor_rejected_when_auto_register_off(
    api: ClientFactory, settings: Settings, database_url: str, prefix: str
) -> None:
    await register_sensor(database_url, f"{prefix}-known")
    strict = settings.model_copy(update={"auto_register_sensors": False})
    async with api(strict) as client:
        body = [reading(f"{prefix}-known", 1), reading(f"{prefix}-ghost", 1)]
        response = await post(client, strict, body)
        assert response.status_code == 202
        assert response.json()["accepted"] == 1
        assert response.json()["rejected"] == [{"index": 1, "reason": "unknown sensor"}]
        single = await post(client, strict, reading(f"{prefix}-ghost", 2))  # group-commit path
        assert single.status_code == 422
        assert single.json()["rejected"] == [{"index": 0, "reason": "unknown sensor"}]
        atomic = await post(client, strict, body, atomic="true")
        assert atomic.status_code == 422
    assert await count_readings(database_url, prefix) == 1
    assert await count_sensors(database_url, prefix) == 1


async def test_too_many_items(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [reading(f"{prefix}-a", i / 100) for i in range(10_001)]
    response = await post(client, settings, body)
    assert response.status_code == 413
    assert "10000" in response.json()["detail"] or "10,000" in response.json()["detail"]
    assert await count_readings(database_url, prefix) == 0


async def test_body_over_limit(
    api: ClientFactory, settings: Settings, database_url: str, prefix: str
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 4096})
    async with api(small) as client:
        body = [reading(f"{prefix}-a", i) for i in range(100)]
        response = await post(client, small, body)
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("application/problem+json")

        async def stream() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
            data = orjson.dumps(body)
            for i in range(0, len(data), 1000):
                yield data[i : i + 1000]

        chunked = await client.post(INGEST, content=stream(), headers=headers(small))
        assert chunked.status_code == 413
    assert await count_readings(database_url, prefix) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str, content_type: str
) -> None:
    hdrs = headers(settings) | {"Content-Type": content_type}
    response = await client.post(INGEST, content=orjson.dumps([reading(f"{prefix}-a")]), headers=hdrs)
    assert response.status_code == 415
    assert await count_readings(database_url, prefix) == 0


async def test_content_type_with_charset_is_fine(
    client: httpx.AsyncClient, settings: Settings, prefix: str
) -> None:
    hdrs = headers(settings) | {"Content-Type": "application/json; charset=utf-8"}
    response = await client.post(INGEST, content=orjson.dumps([reading(f"{prefix}-a")]), headers=hdrs)
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'[{"sensor_id": "x", "value": 1', 400),
        (b"not json at all", 400),
        (b"", 400),
        (b"\xff\xfe", 400),
        (b'"a string"', 422),
        (b"42", 422),
        (b"[]", 422),
        (b"null", 422),
    ],
)
async def test_malformed_or_non_reading_json(
    client: httpx.AsyncClient, settings: Settings, content: bytes, status: int
) -> None:
    response = await client.post(INGEST, content=content, headers=headers(settings))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_requires_an_api_key(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    hdrs = {"Content-Type": "application/json"}
    response = await client.post(INGEST, content=orjson.dumps([reading(f"{prefix}-a")]), headers=hdrs)
    assert response.status_code == 401
    assert await count_readings(database_url, prefix) == 0


async def test_single_object_is_accepted(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    response = await post(client, settings, reading(f"{prefix}-a", 1))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    again = await post(client, settings, reading(f"{prefix}-a", 1))
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    bad = await post(client, settings, reading(f"{prefix}-a", 1, quality=7))
    assert bad.status_code == 422
    assert "quality" in bad.json()["rejected"][0]["reason"]
    assert await count_readings(database_url, prefix) == 1
    assert await outbox_rows(database_url, response.json()["event_id"]) == 1


WEIRD_BODIES = [
    b'{"sensor_id": "a\\u0000b", "value": 1, "timestamp": "2026-01-01T00:00:00Z"}',
    b'[{"sensor_id": "ok", "value": 1, "unit": "\\u0000", "timestamp": "2026-01-01T00:00:00Z"}]',
    b'[{"sensor_id": "ok", "value": 1' + b"0" * 400 + b', "timestamp": "2026-01-01T00:00:00Z"}]',
    b'[{"sensor_id": "ok", "value": -Infinity, "timestamp": "2026-01-01T00:00:00Z"}]',
    b'[{"sensor_id": "ok", "value": 1, "timestamp": "9999-12-31T23:59:59Z"}]',
    b'[{"sensor_id": "ok", "value": 1, "timestamp": "0001-01-01T00:00:00+14:00"}]',
    b'[{"sensor_id": "", "value": 1, "timestamp": "2026-01-01T00:00:00Z"}]',
    b'[{"sensor_id": "' + b"x" * 500 + b'", "value": 1, "timestamp": "2026-01-01T00:00:00Z"}]',
    b'[{"sensor_id": "ok", "value": 1, "timestamp": "2026-01-01T00:00:00Z", "metadata": "x"}]',
    b'[[1, 2], null, true, "x", {}]',
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' * 3000 + b"1" + b"}" * 3000,
    b"\xef\xbb\xbf[]",
]


@pytest.mark.parametrize("content", WEIRD_BODIES, ids=range(len(WEIRD_BODIES)))
async def test_hostile_bodies_get_a_4xx_never_a_500(
    client: httpx.AsyncClient, settings: Settings, content: bytes
) -> None:
    response = await client.post(INGEST, content=content, headers=headers(settings))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_event_reaches_the_bus_after_commit(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    import asyncio
    import time

    response = await post(client, settings, [reading(f"{prefix}-a", 1)])
    event_id = response.json()["event_id"]
    deadline = time.monotonic() + 10
    published = None
    while time.monotonic() < deadline:
        published = await fetchval(
            database_url, "SELECT published_at FROM outbox WHERE payload->>'ingest_event_id' = $1", event_id
        )
        if published is not None:
            break
        await asyncio.sleep(0.05)
    assert published is not None, "the relay never published the ReadingsIngested event"


@pytest.mark.parametrize("path", ["batch", "group_commit", "idempotent"])
async def test_the_commit_of_every_path_wakes_the_relay(
    api: ClientFactory, settings: Settings, database_url: str, prefix: str, path: str
) -> None:
    """The relay polls only every 120 s here: the event is published well before that only if the commit of the
    path woke it (the outbox's after-commit hook; neither the router nor the service wakes it)."""
    import asyncio
    import time

    slow_poll = settings.model_copy(update={"outbox_poll_interval_s": 120.0})
    batch = [reading(f"{prefix}-a"), reading(f"{prefix}-b")]
    body: object = batch[0] if path == "group_commit" else batch
    extra = {"Idempotency-Key": f"{prefix}-key"} if path == "idempotent" else {}
    apps: list[Any] = []
    async with api(slow_poll, customize=apps.append) as client:
        assert app_runtime(apps[0]).ingest.committer is not None and app_runtime(apps[0]).ingest.committer.running
        response = await client.post(INGEST, content=orjson.dumps(body), headers=headers(slow_poll, **extra))
        assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]
        deadline = time.monotonic() + 30
        published = None
        while published is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            published = await fetchval(
                database_url, "SELECT published_at FROM outbox WHERE payload->>'ingest_event_id' = $1", event_id
            )
    assert published is not None, f"the {path} commit did not wake the relay"
