"""Anomaly agent on a real PostgreSQL: robust_z baseline, idempotent redelivery, state rebuilt from the database."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.anomaly.agent import HANDLER_NAME
from core.config import Settings
from core.events.bus import EventBus
from core.events.types import AnomalyDetected, event_from_row
from core.observability.metrics import REGISTRY
from core.runtime.handlers import register_handlers
from tests.agents.anomaly_support import (
    add_readings,
    add_sensor,
    agent_for,
    anomalies,
    anomaly_events,
    normal_values,
    sensor_id,
)
from tests.support.events import (  # noqa: F401  (fixtures)
    events_database_url,
    events_db,
    events_settings,
    session_factory,
)
from tests.support.runtime import runtime_for


@pytest.fixture
def agent_settings(events_settings: Settings) -> Settings:
    return events_settings.model_copy(
        update={
            "anomaly_baseline_window": 50,
            "anomaly_baseline_warmup": 10,
            "anomaly_baseline_threshold": 6.0,
        }
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_spike_becomes_one_anomaly_and_one_event(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    scored = metric("sm_anomaly_readings_scored_total", method="robust_z")
    detected = metric("sm_anomaly_detected_total", method="robust_z")

    normal = await add_readings(events_db, sensor, normal_values(40))
    await agent(normal)
    assert await anomalies(events_db, sensor) == []
    assert await anomaly_events(events_db, sensor) == []

    spike = await add_readings(events_db, sensor, [20.1, 35.0, 19.9], start=40)
    await agent(spike)
    rows = await anomalies(events_db, sensor)
    assert len(rows) == 1
    row = rows[0]
    assert (row["value"], row["method"], row["model_name"], row["model_version"]) == (
        35.0,
        "robust_z",
        None,
        None,
    )
    assert row["timestamp"] == spike.first_timestamp + timedelta(minutes=1)
    assert row["score"] >= 6.0
    outbox = await anomaly_events(events_db, sensor)
    assert len(outbox) == 1
    event = event_from_row(outbox[0]["event_type"], json.loads(outbox[0]["payload"]))
    assert isinstance(event, AnomalyDetected)
    assert (event.anomaly_id, event.sensor_id, event.value, event.method) == (
        row["id"],
        sensor,
        35.0,
        "robust_z",
    )
    assert event.score == pytest.approx(row["score"])
    assert event.timestamp == row["timestamp"]
    assert outbox[0]["published_at"] is None  # the relay publishes it after the commit

    assert metric("sm_anomaly_readings_scored_total", method="robust_z") == scored + 43
    assert metric("sm_anomaly_detected_total", method="robust_z") == detected + 1


async def test_the_same_event_twice_gives_one_anomaly_and_one_event(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    await agent(await add_readings(events_db, sensor, normal_values(30, seed=1)))
    spike = await add_readings(events_db, sensor, [50.0, 20.0], start=30)
    await agent(spike)
    await agent(spike)  # at-least-once redelivery
    second = agent_for(agent_settings, session_factory)
    await second(spike)  # redelivery to another process (or after a restart)
    assert len(await anomalies(events_db, sensor)) == 1
    assert len(await anomaly_events(events_db, sensor)) == 1
    # the redelivery did not feed the spike into the window twice
    assert list(agent.detector.states.get(sensor).values).count(50.0) == 1  # type: ignore[union-attr]


async def test_readings_during_warm_up_are_not_flagged(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    await agent(await add_readings(events_db, sensor, [*normal_values(5, seed=2), 90.0, 20.0]))
    assert await anomalies(events_db, sensor) == []


async def test_state_is_rebuilt_from_the_database_by_a_new_agent(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    sensor = sensor_id()
    await add_sensor(events_db, sensor)
    first = agent_for(agent_settings, session_factory)
    await first(await add_readings(events_db, sensor, normal_values(80, seed=3)))

    restarted = agent_for(agent_settings, session_factory)  # a new process: empty memory
    assert sensor not in restarted.detector.states
    spike = await add_readings(events_db, sensor, [-5.0], start=80)
    await restarted(spike)
    rows = await anomalies(events_db, sensor)
    assert [r["value"] for r in rows] == [-5.0], "without the rebuilt window the spike would be in warm-up"
    state = restarted.detector.states.get(sensor)
    assert state is not None
    assert len(state.values) == 50  # the window: the last 49 readings before the spike, then the spike
    assert state.last_timestamp == spike.last_timestamp
    assert list(state.values)[:49] == pytest.approx(normal_values(80, seed=3)[-49:])


async def test_several_sensors_in_one_event_and_an_unknown_one(
    agent_settings: Settings, session_factory: async_sessionmaker[AsyncSession], events_db: asyncpg.Connection
) -> None:
    agent = agent_for(agent_settings, session_factory)
    quiet, noisy = sensor_id(), sensor_id()
    for sensor in (quiet, noisy):
        await add_sensor(events_db, sensor, "vibration")
        await agent(await add_readings(events_db, sensor, normal_values(30, seed=4, mean=1.0, sd=0.05)))
    a = await add_readings(events_db, quiet, [1.0], start=30)
    b = await add_readings(events_db, noisy, [9.0], start=30)
    both = a.model_copy(update={"sensor_ids": [quiet, noisy, "no-such-sensor"], "count": 2})
    await agent(both)
    assert await anomalies(events_db, quiet) == []
    assert [r["value"] for r in await anomalies(events_db, noisy)] == [9.0]
    assert b.first_timestamp == a.first_timestamp


def test_registry_subscribes_the_anomaly_agent(agent_settings: Settings) -> None:
    bus = EventBus(None)
    subscriptions = register_handlers(bus, runtime_for(agent_settings))
    assert (HANDLER_NAME, "ReadingsIngested") in [(s.name, s.event_type) for s in subscriptions]
    assert bus.has_handler(HANDLER_NAME)
