"""Bucketed reads equal a bucketing of the raw readings, whatever the data's age, after late data and
back-fills (issue 12). Property-style: random ranges, bucket widths and aggregations, compared with a
``date_bin`` over ``sensor_readings`` computed here, before and after the aggregate is refreshed.

Runs on the suite's plain PostgreSQL (the live-view path) and, when ``SM_TEST_TIMESCALE_URL`` is set, on
TimescaleDB, where the hourly continuous aggregate is materialised as the refresh policy would, then late
readings land below its watermark (invalidations the policy has not processed yet) — the case that returned
holes before."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from core.config import Settings
from tests.api.auth_support import bootstrap_headers
from tests.support.timescale import fetch, installed

WIDTHS = {"5m": "5 minutes", "1h": "1 hour", "1d": "1 day"}
AGGS = ("avg", "min", "max", "count")
DAYS = 12
STEP = timedelta(minutes=7)
REFERENCE_SQL = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "count": "CAST(count(*) AS double precision)",
}


async def _refresh(settings: Settings) -> None:
    """What a run of the refresh policy does (outside a transaction block: asyncpg autocommits)."""
    await fetch(
        settings.database_url,
        "CALL refresh_continuous_aggregate('sensor_readings_hourly', NULL, now() - INTERVAL '1 hour')",
    )


async def _ingest(client: httpx.AsyncClient, settings: Settings, readings: list[dict[str, Any]]) -> None:
    for i in range(0, len(readings), 5_000):
        response = await client.post(
            "/api/v1/data/ingest",
            content=orjson.dumps(readings[i : i + 5_000]),
            headers={**bootstrap_headers(settings), "Content-Type": "application/json"},
            params={"backfill": "true"},
        )
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(readings[i : i + 5_000])


def _reading(sensor_id: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "timestamp": at.isoformat(), "value": round(rng.gauss(20.0, 5.0), 6)}


async def _reference(
    settings: Settings, sensor_id: str, width: str, agg: str, start: datetime, end: datetime
) -> list[tuple[datetime, float, int]]:
    rows = await fetch(
        settings.database_url,
        f"SELECT date_bin(INTERVAL '{WIDTHS[width]}', \"timestamp\", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b, "
        f"{REFERENCE_SQL[agg]} AS v, count(*) AS n FROM sensor_readings "
        'WHERE sensor_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3 GROUP BY b ORDER BY b',
        sensor_id,
        start,
        end,
    )
    return [(r["b"], float(r["v"]), int(r["n"])) for r in rows]


def _random_range(rng: random.Random, now: datetime) -> tuple[datetime, datetime]:
    oldest = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 5)
    start = oldest + timedelta(hours=rng.randrange(0, (DAYS + 4) * 24))
    end = start + timedelta(hours=rng.randrange(1, 24 * rng.choice((1, 3, 10))))
    if rng.random() < 0.25:  # not hour-aligned: never the aggregate
        start += timedelta(minutes=rng.randrange(1, 60))
    if rng.random() < 0.2:  # up to now: the part above the watermark
        end = now + timedelta(hours=1)
    return start, min(end, now + timedelta(hours=1))


async def _check(
    client: httpx.AsyncClient, settings: Settings, sensors: list[str], rng: random.Random, queries: int
) -> dict[str, int]:
    now = datetime.now(UTC)
    sources: dict[str, int] = {}
    for _ in range(queries):
        sensor_id, width, agg = rng.choice(sensors), rng.choice(list(WIDTHS)), rng.choice(AGGS)
        start, end = _random_range(rng, now)
        params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": width, "agg": agg}
        response = await client.get(
            f"/api/v1/sensors/{sensor_id}/readings", params=params, headers=bootstrap_headers(settings)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["next_cursor"] is None
        sources[body["source"]] = sources.get(body["source"], 0) + 1
        got = [
            (datetime.fromisoformat(p["timestamp"]), float(p["value"]), int(p["count"]))
            for p in body["items"]
        ]
        expected = await _reference(settings, sensor_id, width, agg, start, end)
        context = f"{sensor_id} {width} {agg} [{start}, {end}) source {body['source']}"
        assert [g[0] for g in got] == [e[0] for e in expected], context
        assert [g[2] for g in got] == [e[2] for e in expected], context
        for (_, value, _), (_, want, _) in zip(got, expected, strict=True):
            assert math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9), context
    return sources


async def test_bucketed_reads_equal_raw_buckets_after_late_data(
    client: httpx.AsyncClient, backend: Settings
) -> None:
    settings = backend
    rng = random.Random(12)
    tag = f"agg-{uuid.uuid4().hex[:8]}"
    sensors = [f"{tag}-{i}" for i in range(3)]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = now - timedelta(days=DAYS)
    history = []
    at = first
    while at < now - timedelta(minutes=5):
        history += [_reading(sid, at + timedelta(seconds=rng.randrange(60)), rng) for sid in sensors]
        at += STEP
    await _ingest(client, settings, history)
    timescale = await installed(settings.database_url)
    if timescale:
        await _refresh(settings)  # materialised up to now - 1 h, as the policy leaves it

    # Late data below the watermark: a few days old, two weeks old (past the old 3-day refresh window), and
    # into hours that already have readings and hours that had none.
    late = []
    for _ in range(300):
        sid = rng.choice(sensors)
        back = timedelta(days=rng.choice((2, 5, 11, 16)), minutes=rng.randrange(24 * 60))
        late.append({**_reading(sid, now - back, rng), "timestamp": (now - back).isoformat()})
    unique = {(r["sensor_id"], r["timestamp"]): r for r in late}
    stored = {(r["sensor_id"], r["timestamp"]) for r in history}
    await _ingest(client, settings, [r for key, r in unique.items() if key not in stored])

    pending = await _check(client, settings, sensors, rng, queries=60)
    if timescale:
        assert pending.get("hourly_aggregate", 0) >= 10, pending  # the aggregate path was exercised
        await _refresh(settings)
        refreshed = await _check(client, settings, sensors, rng, queries=30)
        assert refreshed.get("hourly_aggregate", 0) >= 5, refreshed
    else:
        assert set(pending) == {"date_bin"}
