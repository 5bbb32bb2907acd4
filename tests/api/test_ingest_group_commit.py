"""Group commit: concurrent single-reading requests share transactions, each acknowledged after its commit."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from apps.api.deps import app_runtime
from core.config import Settings
from core.db.session import create_engine, create_session_factory
from core.errors import ServiceUnavailable
from core.ingest.group_commit import GroupCommitter
from core.ingest.schemas import ValidReading
from core.observability.metrics import REGISTRY
from tests.api.conftest import CLOSED_DB_URL, ClientFactory
from tests.api.ingest_support import (
    BASE,
    INGEST,
    count_readings,
    execute,
    fetchval,
    headers,
    reading,
    register_sensor,
    sensor_prefix,
)


def _transactions_metric() -> float:
    return REGISTRY.get_sample_value("sm_ingest_group_commit_size_readings_count") or 0.0


async def test_concurrent_single_readings_share_transactions(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix = sensor_prefix()
    apps: list[FastAPI] = []
    before = _transactions_metric()
    async with api(settings, customize=apps.append) as client:
        committer: GroupCommitter = app_runtime(apps[0]).ingest.committer
        assert committer is not None and committer.running
        bodies = [reading(f"{prefix}-{i % 5}", minutes_ago=i) for i in range(50)]
        responses = await asyncio.gather(
            *(client.post(INGEST, content=orjson.dumps(b), headers=headers(settings)) for b in bodies)
        )
        assert [r.status_code for r in responses] == [202] * 50, [
            r.text for r in responses if r.status_code != 202
        ]
        assert all(r.json()["accepted"] == 1 and r.json()["duplicates"] == 0 for r in responses)
        # every acknowledged reading is committed (visible to another connection)
        assert await count_readings(database_url, prefix) == 50
        assert committer.requests == 50
        assert 1 <= committer.transactions < 50
    assert 1 <= _transactions_metric() - before < 50
    # one ReadingsIngested event per transaction, together covering the 50 readings
    events = await fetchval(
        database_url,
        "SELECT coalesce(sum((payload->>'count')::int), 0) FROM outbox WHERE event_type = 'ReadingsIngested' "
        "AND payload->'sensor_ids' ?| $1::text[]",
        [f"{prefix}-{i}" for i in range(5)],
    )
    assert events == 50


async def test_concurrent_duplicates_in_one_group(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix = sensor_prefix()
    body = orjson.dumps(reading(f"{prefix}-a", 3))
    async with api(settings) as client:
        responses = await asyncio.gather(
            *(client.post(INGEST, content=body, headers=headers(settings)) for _ in range(10))
        )
    assert [r.status_code for r in responses] == [202] * 10
    assert sum(r.json()["accepted"] for r in responses) == 1
    assert sum(r.json()["duplicates"] for r in responses) == 9
    assert await count_readings(database_url, prefix) == 1


async def test_group_commit_can_be_switched_off(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    prefix = sensor_prefix()
    apps: list[FastAPI] = []
    off = settings.model_copy(update={"ingest_group_commit": False})
    async with api(off, customize=apps.append) as client:
        assert app_runtime(apps[0]).ingest.committer is None
        response = await client.post(
            INGEST, content=orjson.dumps(reading(f"{prefix}-a")), headers=headers(off)
        )
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert await count_readings(database_url, prefix) == 1


def _valid(sensor_id: str, index: int = 0) -> ValidReading:
    return ValidReading(index, sensor_id, 1.0, BASE, None, None, None)


async def test_every_waiter_gets_the_error_when_the_transaction_fails(settings: Settings) -> None:
    broken = settings.model_copy(update={"database_url": CLOSED_DB_URL, "db_connect_timeout_s": 1.0})
    engine = create_engine(broken, pool_pre_ping=False)
    committer = GroupCommitter(create_session_factory(engine), auto_register=True, max_wait_s=0.01)
    committer.start()
    try:
        results: list[Any] = await asyncio.gather(
            *(committer.submit(_valid(f"x-{i}"), None) for i in range(5)), return_exceptions=True
        )
    finally:
        await committer.stop()
        await engine.dispose()
    assert len(results) == 5
    assert all(isinstance(r, ServiceUnavailable) for r in results), results  # 503, not a 500
    assert committer.transactions == 0


async def test_stop_writes_what_is_queued(settings: Settings, database_url: str) -> None:
    prefix = sensor_prefix()
    engine = create_engine(settings)
    committer = GroupCommitter(create_session_factory(engine), auto_register=True, max_wait_s=0.05)
    committer.start()
    try:
        pending = [asyncio.create_task(committer.submit(_valid(f"{prefix}-{i}"), None)) for i in range(20)]
        await asyncio.sleep(0)  # let them enqueue
        await committer.stop()
        results = await asyncio.gather(*pending)
    finally:
        await engine.dispose()
    assert {r.outcome for r in results} == {"accepted"}
    assert await count_readings(database_url, prefix) == 20
    with pytest.raises(Exception, match="not running"):
        await committer.submit(_valid(f"{prefix}-late"), None)


async def test_sensor_deleted_after_caching_is_looked_up_again(settings: Settings, database_url: str) -> None:
    """The committer caches known sensors; a sensor deleted meanwhile costs a retry, not an error."""
    prefix = sensor_prefix()
    engine = create_engine(settings)
    strict = GroupCommitter(create_session_factory(engine), auto_register=False, max_wait_s=0)
    auto = GroupCommitter(create_session_factory(engine), auto_register=True, max_wait_s=0)
    strict.start()
    auto.start()
    try:
        await register_sensor(database_url, f"{prefix}-a")
        first = await strict.submit(_valid(f"{prefix}-a"), None)
        assert first.outcome == "accepted"
        await execute(database_url, "DELETE FROM sensors WHERE sensor_id = $1", f"{prefix}-a")  # cascades
        later = ValidReading(0, f"{prefix}-a", 2.0, BASE.replace(second=30), None, None, None)
        second = await strict.submit(later, None)
        assert second.outcome == "rejected" and second.reason == "unknown sensor"
        assert (await auto.submit(later, None)).outcome == "accepted"
    finally:
        await strict.stop()
        await auto.stop()
        await engine.dispose()
    assert await count_readings(database_url, prefix) == 1
