"""History on live ingest: ``?backfill=true``, batches older than ``SM_BACKFILL_AGE_MINUTES`` and ``ingest-csv``
mark their ``ReadingsIngested`` as back-fill (no-data rules and due dates then follow event time)."""

from __future__ import annotations

import httpx

from core.config import Settings
from tests.api.ingest_support import fetchval, post, reading, sensor_prefix


async def _flag(client: httpx.AsyncClient, settings: Settings, database_url: str, body: object, **params: str) -> bool:
    response = await post(client, settings, body, **params)
    assert response.status_code == 202, response.text
    flag = await fetchval(
        database_url,
        "SELECT payload->>'backfill' FROM outbox WHERE event_type = 'ReadingsIngested' "
        "AND payload->>'ingest_event_id' = $1",
        response.json()["event_id"],
    )
    return flag == "true"


async def test_recent_readings_are_live(client, settings, database_url) -> None:
    prefix = sensor_prefix()
    assert await _flag(client, settings, database_url, [reading(f"{prefix}-a", minutes_ago=m) for m in (3, 2)]) is False


async def test_the_query_flag_marks_history(client, settings, database_url) -> None:
    prefix = sensor_prefix()
    body = [reading(f"{prefix}-a", minutes_ago=m) for m in (3, 2)]
    assert await _flag(client, settings, database_url, body, backfill="true") is True
    # one reading with the flag takes the batch path (the group commit is for live single readings)
    assert await _flag(client, settings, database_url, reading(f"{prefix}-b", minutes_ago=1), backfill="true") is True


async def test_a_batch_older_than_the_back_fill_age_is_history(client, settings, database_url) -> None:
    prefix = sensor_prefix()
    age = settings.backfill_age_minutes
    body = [reading(f"{prefix}-a", minutes_ago=age + 10 + m) for m in (2, 1)]
    assert await _flag(client, settings, database_url, body) is True
    # one recent reading makes the batch live
    mixed = [reading(f"{prefix}-b", minutes_ago=age + 10), reading(f"{prefix}-b", minutes_ago=1)]
    assert await _flag(client, settings, database_url, mixed) is False
