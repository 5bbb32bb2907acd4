"""Durable idempotency of ingest: replay, mismatch, in flight (409), across app instances, after restart, purge.

To hold a first request inside its transaction without any test hook, the test inserts the same reading in a
transaction of its own and keeps it open: the request's ``INSERT … ON CONFLICT`` waits for that row's fate while
holding the key's advisory lock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
import httpx
import orjson

from core.config import Settings, to_libpq_url
from core.db.session import create_engine, create_session_factory
from core.ingest.idempotency import purge_expired_keys
from tests.api.auth_support import create_key
from tests.api.conftest import ClientFactory
from tests.api.ingest_support import (
    BASE,
    INGEST,
    count_readings,
    fetchval,
    headers,
    outbox_rows,
    reading,
    register_sensor,
    sensor_prefix,
)


def _key() -> str:
    return f"idem-{uuid.uuid4().hex}"


async def _post(
    client: httpx.AsyncClient, settings: Settings, body: object, key: str, **params: str
) -> httpx.Response:
    return await client.post(
        INGEST,
        content=orjson.dumps(body),
        headers=headers(settings, **{"Idempotency-Key": key}),
        params=params,
    )


async def test_same_key_same_body_replays_first_response(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    body = [reading(f"{prefix}-a", i) for i in range(5)]
    async with api(settings) as client:
        first = await _post(client, settings, body, key)
        assert first.status_code == 202, first.text
        assert "Idempotent-Replayed" not in first.headers
        second = await _post(client, settings, body, key)
    assert second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert first.json()["accepted"] == 5
    assert await count_readings(database_url, prefix) == 5
    assert await outbox_rows(database_url, first.json()["event_id"]) == 1


async def test_single_reading_with_key_is_idempotent(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    async with api(settings) as client:
        first = await _post(client, settings, reading(f"{prefix}-a"), key)
        second = await _post(client, settings, reading(f"{prefix}-a"), key)
    assert first.status_code == second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json() and first.json()["accepted"] == 1


async def test_same_key_different_body_is_422(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    async with api(settings) as client:
        first = await _post(client, settings, [reading(f"{prefix}-a", 1)], key)
        assert first.status_code == 202
        other = await _post(client, settings, [reading(f"{prefix}-a", 2)], key)
        assert other.status_code == 422
        assert other.headers["content-type"].startswith("application/problem+json")
        assert "different" in other.json()["detail"]
        mode = await _post(client, settings, [reading(f"{prefix}-a", 1)], key, atomic="true")
        assert mode.status_code == 422  # the mode is part of the request
    assert await count_readings(database_url, prefix) == 1


async def test_keys_are_per_api_key_and_validated(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    async with api(settings) as client:
        plant = await create_key(client, settings, "ingest")
        first = await _post(client, settings, [reading(f"{prefix}-a", 1)], key)
        assert first.status_code == 202
        # the same key under another API key is another request: no replay, no mismatch
        other = await client.post(
            INGEST,
            content=orjson.dumps([reading(f"{prefix}-a", 2)]),
            headers=headers(settings, **{"Idempotency-Key": key}) | plant.headers,
        )
        assert other.status_code == 202, other.text
        assert "Idempotent-Replayed" not in other.headers
        assert other.json()["accepted"] == 1
        too_long = await _post(client, settings, [reading(f"{prefix}-a")], "k" * 256)
        assert too_long.status_code == 422
    assert await count_readings(database_url, prefix) == 2
    owners = await fetchval(
        database_url, "SELECT count(DISTINCT api_key_id) FROM idempotency_keys WHERE key = $1", key
    )
    assert owners == 2


async def test_rejected_atomic_request_is_not_remembered(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    async with api(settings) as client:
        bad = await _post(client, settings, [reading(f"{prefix}-a", quality=5)], key, atomic="true")
        assert bad.status_code == 422
        fixed = await _post(client, settings, [reading(f"{prefix}-a")], key, atomic="true")
        assert fixed.status_code == 202
        assert "Idempotent-Replayed" not in fixed.headers
    assert await count_readings(database_url, prefix) == 1


@asynccontextmanager
async def blocking_row(
    database_url: str, sensor_id: str, timestamp: str
) -> AsyncIterator[asyncpg.Connection]:
    """An open transaction that has inserted (sensor_id, timestamp): a conflicting INSERT waits for it."""
    await register_sensor(database_url, sensor_id)
    conn = await asyncpg.connect(to_libpq_url(database_url))
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, 0)",
            datetime.fromisoformat(timestamp),
            sensor_id,
        )
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def wait_for_lock_waiter(database_url: str, deadline_s: float = 10.0) -> None:
    """Poll (with a deadline) until a backend of the API waits on a lock."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        waiting = await fetchval(
            database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = 'smart-maintenance' AND datname = current_database()",
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the first request never blocked")


async def test_second_request_while_first_in_flight_is_409(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    body = [reading(f"{prefix}-a", 1)]
    async with api(settings) as client:
        async with blocking_row(database_url, f"{prefix}-a", body[0]["timestamp"]):
            first = asyncio.create_task(_post(client, settings, body, key))
            await wait_for_lock_waiter(database_url)
            second = await _post(client, settings, body, key)
            assert second.status_code == 409, second.text
            assert second.headers["content-type"].startswith("application/problem+json")
            assert not first.done()
        # the blocking transaction rolled back: the first request goes on and stores its reading
        first_response = await asyncio.wait_for(first, 10)
        assert first_response.status_code == 202
        assert first_response.json()["accepted"] == 1
        third = await _post(client, settings, body, key)
        assert third.headers["Idempotent-Replayed"] == "true"
        assert third.json() == first_response.json()
    assert await count_readings(database_url, prefix) == 1


async def test_two_app_instances_share_keys(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    body = [reading(f"{prefix}-a", 1), reading(f"{prefix}-a", 2)]
    async with api(settings) as one, api(settings) as two:
        async with blocking_row(database_url, f"{prefix}-a", body[0]["timestamp"]):
            first = asyncio.create_task(_post(one, settings, body, key))
            await wait_for_lock_waiter(database_url)
            in_flight = await _post(two, settings, body, key)
            assert in_flight.status_code == 409
        first_response = await asyncio.wait_for(first, 10)
        assert first_response.status_code == 202
        replay = await _post(two, settings, body, key)
        assert replay.status_code == 202
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == first_response.json()
        mismatch = await _post(two, settings, body[:1], key)
        assert mismatch.status_code == 422
    assert await count_readings(database_url, prefix) == 2


async def test_replay_survives_a_restart(api: ClientFactory, settings: Settings, database_url: str) -> None:
    prefix, key = sensor_prefix(), _key()
    body = [reading(f"{prefix}-a", 1)]
    async with api(settings) as client:
        first = await _post(client, settings, body, key)
    async with api(settings) as restarted:  # a new app: new engine, new process state
        again = await _post(restarted, settings, body, key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await count_readings(database_url, prefix) == 1


async def test_expired_keys_are_purged_and_reusable(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix, key = sensor_prefix(), _key()
    async with api(settings) as client:
        first = await _post(client, settings, [reading(f"{prefix}-a", 1)], key)
        assert first.status_code == 202
        conn = await asyncpg.connect(to_libpq_url(database_url))
        try:
            await conn.execute(
                "UPDATE idempotency_keys SET created_at = now() - interval '2 days', "
                "expires_at = now() - interval '1 day' WHERE key = $1",
                key,
            )
        finally:
            await conn.close()
        # expired: the key is free again (a new request, not a replay and not a mismatch)
        reused = await _post(client, settings, [reading(f"{prefix}-a", 2)], key)
        assert reused.status_code == 202
        assert "Idempotent-Replayed" not in reused.headers
        assert reused.json()["accepted"] == 1
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '2 days', "
            "expires_at = now() - interval '1 day' WHERE key = $1",
            key,
        )
    finally:
        await conn.close()
    engine = create_engine(settings)
    try:
        purged = await purge_expired_keys(create_session_factory(engine))
    finally:
        await engine.dispose()
    assert purged >= 1
    assert await fetchval(database_url, "SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 0


async def test_ttl_setting_sets_expiry(api: ClientFactory, settings: Settings, database_url: str) -> None:
    prefix, key = sensor_prefix(), _key()
    short = settings.model_copy(update={"idempotency_ttl_hours": 1.0})
    async with api(short) as client:
        assert (await _post(client, short, [reading(f"{prefix}-a")], key)).status_code == 202
    seconds = await fetchval(
        database_url,
        "SELECT extract(epoch FROM expires_at - created_at) FROM idempotency_keys WHERE key = $1",
        key,
    )
    assert abs(float(seconds) - 3600) < 5
    assert BASE  # the module's fixed reference time is in use
