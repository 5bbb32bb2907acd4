"""Parsing an ingest body (``core.ingest.schemas.parse_readings``): the time window holds in every time zone.

The bounds are compared in each timestamp's own zone object (a speed-up: pydantic's zone objects make comparisons
with UTC datetimes slow); the instants compared must be the same as with UTC bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from core.ingest.schemas import MAX_FUTURE, ValidReading, parse_readings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RETENTION_DAYS = 30


def _item(instant: datetime, offset_minutes: int, n: int) -> dict[str, object]:
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return {"sensor_id": f"s-{n}", "value": float(n), "timestamp": local.isoformat()}


@pytest.mark.parametrize("offset_minutes", [0, 330, -480, 59, -1])
def test_the_window_bounds_are_the_same_instants_in_every_zone(offset_minutes: int) -> None:
    oldest = NOW - timedelta(days=RETENTION_DAYS)
    latest = NOW + MAX_FUTURE
    one_us = timedelta(microseconds=1)
    instants = [oldest - one_us, oldest, oldest + one_us, NOW, latest - one_us, latest, latest + one_us]
    body = orjson.dumps([_item(t, offset_minutes if i % 2 else 0, i) for i, t in enumerate(instants)])
    batch = parse_readings(body, retention_days=RETENTION_DAYS, now=NOW)
    kept = {r.index for r in batch.readings}
    assert kept == {i for i, t in enumerate(instants) if oldest <= t <= latest} == {1, 2, 3, 4, 5}
    reasons = {r.index: r.reason for r in batch.rejected}
    assert reasons == {
        0: "timestamp: older than the retention window",
        6: "timestamp: more than 5 minutes in the future",
    }
    for reading in batch.readings:
        assert isinstance(reading, ValidReading)
        assert reading.timestamp == instants[reading.index]  # the instant sent, in the zone it was sent in
        assert reading.timestamp.utcoffset() == timedelta(minutes=offset_minutes if reading.index % 2 else 0)
