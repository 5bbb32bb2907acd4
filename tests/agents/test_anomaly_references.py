"""Healthy references and the degradation detector in the anomaly agent, on a real PostgreSQL.

A slow rise is absorbed by the outlier baseline's rolling window but not by the reference; a regime gap (the
machine stopped) re-centres the reference on the readings after it and is noted with its reason; redelivery
learns nothing twice.
"""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.events.types import ReadingsIngested
from tests.agents.anomaly_support import T0, add_readings, add_sensor, agent_for, anomalies, normal_values, sensor_id
from tests.support.events import (  # noqa: F401  (fixtures)
    events_database_url,
    events_db,
    events_settings,
    session_factory,
)


@pytest.fixture
def agent_settings(events_settings: Settings) -> Settings:
    return events_settings.model_copy(
        update={
            "anomaly_baseline_window": 50,
            "anomaly_baseline_warmup": 10,
            "reference_min_readings": 60,
            "reference_min_hours": 0.5,
            "reference_recenter_readings": 20,
            "anomaly_regime_gap_min_minutes": 60.0,
        }
    )


async def references(db: asyncpg.Connection, sensor: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM sensor_references WHERE sensor_id = $1 ORDER BY started_at", sensor)


async def test_the_reference_is_learned_and_a_slow_rise_is_degradation_not_new_normal(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    healthy = normal_values(80, sd=0.2)
    for start in range(0, 80, 20):  # live batches of 20 readings a minute apart
        await agent.handle(await add_readings(events_db, sensor, healthy[start : start + 20], start=start))
    [ref] = await references(events_db, sensor)
    assert (ref["kind"], ref["status"], ref["readings"]) == ("initial", "ready", 60)
    assert abs(ref["median"] - 20.0) < 0.1 and 0.1 <= ref["scale"] < 0.4
    # a slow rise of 0.01 per reading (5 °C over 500 readings): the rolling window moves with it, the reference
    # does not
    rise = [v + 0.01 * i for i, v in enumerate(normal_values(500, seed=3, sd=0.2))]
    for start in range(0, 500, 50):
        await agent.handle(await add_readings(events_db, sensor, rise[start : start + 50], start=80 + start))
    found = await anomalies(events_db, sensor)
    methods = {a["method"] for a in found}
    assert "trend_ewma" in methods and "robust_z" not in methods
    first = min(a["timestamp"] for a in found if a["method"] == "trend_ewma")
    rows = await events_db.fetch(
        "SELECT timestamp, value FROM sensor_readings WHERE sensor_id = $1 AND timestamp = $2", sensor, first
    )
    assert rows[0]["value"] > ref["median"] + 3 * ref["scale"]  # flagged once the level clearly left the reference
    scored = await events_db.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'ReadingsScored' AND payload->'sensor_ids' ? $1", sensor
    )
    assert scored == 14  # one ReadingsScored per scored batch


async def test_a_regime_gap_re_centres_the_reference_and_says_why(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    await agent.handle(await add_readings(events_db, sensor, normal_values(70, sd=0.2)))
    # two days without data, then the machine runs 25 % hotter: a new regime, not a fault
    after = normal_values(60, seed=9, mean=25.0, sd=0.2)
    start = 70 + 2 * 24 * 60
    await agent.handle(await add_readings(events_db, sensor, after[:30], start=start))
    await agent.handle(await add_readings(events_db, sensor, after[30:], start=start + 30))
    initial, regime = await references(events_db, sensor)
    assert (initial["status"], regime["kind"], regime["status"]) == ("superseded", "regime_change", "ready")
    assert "no data for 48.0 h" in regime["reason"]
    assert abs(regime["previous_median"] - 20.0) < 0.1 and abs(regime["median"] - 25.0) < 0.1
    assert regime["readings"] == 20 and regime["scale"] >= initial["scale"]  # the scale is kept (or wider)
    assert await anomalies(events_db, sensor) == []  # neither the outlier baseline nor the trend fired
    # redelivering every batch learns nothing twice and finds nothing new
    again = agent_for(agent_settings, session_factory)  # a fresh process: states rebuilt from the database
    before = [dict(r) for r in await references(events_db, sensor)]
    for event_start, values in ((start, after[:30]), (start + 30, after[30:])):
        event = await _event(events_db, sensor, event_start, len(values))
        await again.handle(event)
    assert [dict(r) for r in await references(events_db, sensor)] == before
    assert await anomalies(events_db, sensor) == []


async def _event(db: asyncpg.Connection, sensor: str, start: int, count: int) -> ReadingsIngested:
    """The ReadingsIngested of readings already stored (a redelivery)."""
    return ReadingsIngested(
        sensor_ids=[sensor],
        count=count,
        first_timestamp=T0 + timedelta(minutes=start),
        last_timestamp=T0 + timedelta(minutes=start + count - 1),
        ingest_event_id=uuid.uuid4(),
    )


async def test_a_later_batch_delivered_first_is_scored_like_the_in_order_stream(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    """The detector scores a sensor from its last scored reading on: a batch delivered before the earlier one is
    scored together with it, in time order, and the earlier one's late delivery adds nothing."""
    results = []
    values = normal_values(120, seed=5, sd=0.2)
    values[95] += 5.0  # a spike in the third batch
    for order in ([0, 1, 2], [0, 2, 1]):
        agent = agent_for(agent_settings, session_factory)
        sensor = sensor_id()
        await add_sensor(events_db, sensor)
        events = [await add_readings(events_db, sensor, values[40 * i : 40 * i + 40], start=40 * i) for i in range(3)]
        for i in order:
            await agent.handle(events[i])
        results.append(
            [(a["timestamp"] - T0, a["method"], round(a["score"], 9)) for a in await anomalies(events_db, sensor)]
        )
    assert results[0] == results[1] and results[0]


async def test_a_regime_change_is_noted_in_the_open_incident_of_the_sensor(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    incident = await events_db.fetchval(
        "INSERT INTO incidents (sensor_id, status, severity, first_seen_at, last_seen_at) "
        "VALUES ($1, 'open', 'high', $2, $2) RETURNING id",
        sensor,
        T0,
    )
    await agent.handle(await add_readings(events_db, sensor, normal_values(70, sd=0.2)))
    await agent.handle(await add_readings(events_db, sensor, normal_values(5, seed=4), start=70 + 6 * 60))
    [note] = await events_db.fetch(
        "SELECT kind, event_at, note FROM incident_events WHERE incident_id = $1", incident
    )
    assert note["kind"] == "regime_change" and note["event_at"] == T0 + timedelta(minutes=70 + 6 * 60)
    assert "no data for 6.0 h" in note["note"]
