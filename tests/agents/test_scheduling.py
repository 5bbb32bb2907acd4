"""Scheduling agent: a high/critical AlertRaised opens one maintenance task for the sensor's asset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.events.bus import EventBus
from core.maintenance import agent as scheduling
from core.observability.metrics import REGISTRY
from core.runtime.handlers import HANDLERS, register_handlers
from tests.support.db import session_factory_for
from tests.support.events import make_bus
from tests.support.maintenance import (
    connect,
    hours_between,
    make_alert,
    make_plant,
    outbox_rows,
    tasks_for_alert,
    tasks_for_sensor,
)
from tests.support.runtime import runtime_for


@pytest.fixture
async def factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings, pool_size=4) as factory:
        yield factory


def opened(priority: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "sm_maintenance_tasks_opened_total", {"source": "agent", "priority": priority}
        )
        or 0.0
    )


@pytest.mark.parametrize(("severity", "due_hours"), [("critical", 4), ("high", 24)])
async def test_high_and_critical_alerts_open_one_task(
    settings: Settings, factory: async_sessionmaker[AsyncSession], severity: str, due_hours: int
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    before = opened(severity)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        event = await make_alert(conn, plant.sensor_ids[0], severity=severity)
        started = datetime.now(UTC)
        await handler(event)
        [task] = await tasks_for_alert(conn, event.alert_id)
        assert task["asset_id"] == plant.asset_id
        assert task["sensor_id"] == plant.sensor_ids[0]
        assert task["priority"] == severity
        assert task["status"] == "open"
        assert "vibration_max" in task["title"] and plant.sensor_ids[0] in task["title"]
        assert due_hours - 0.1 < hours_between(task["due_at"], started) < due_hours + 0.1
        [created] = await outbox_rows(conn, "MaintenanceTaskCreated", task["id"])
        assert created["payload"]["alert_id"] == event.alert_id
        assert created["payload"]["asset_id"] == plant.asset_id
        assert created["payload"]["priority"] == severity
    assert opened(severity) == before + 1


@pytest.mark.parametrize("severity", ["info", "low", "medium"])
async def test_lower_severities_open_no_task(
    settings: Settings, factory: async_sessionmaker[AsyncSession], severity: str
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        event = await make_alert(conn, plant.sensor_ids[0], severity=severity)
        await handler(event)
        assert await tasks_for_sensor(conn, plant.sensor_ids[0]) == []


async def test_duplicate_delivery_opens_one_task(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        event = await make_alert(conn, plant.sensor_ids[0], severity="critical")
        await handler(event)
        await handler(event)  # redelivery, one after the other
        await asyncio.gather(handler(event), handler(event))  # and concurrently
        tasks = await tasks_for_alert(conn, event.alert_id)
        assert len(tasks) == 1
        assert len(await outbox_rows(conn, "MaintenanceTaskCreated", tasks[0]["id"])) == 1


async def test_no_second_task_for_the_same_cause_while_one_is_open(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        sensor = plant.sensor_ids[0]
        first = await make_alert(conn, sensor, severity="high")
        await handler(first)
        # the first alert resolved by itself, the same fault raises a new alert while the task is still open
        await conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE id = $1", first.alert_id
        )
        second = await make_alert(conn, sensor, severity="critical")
        await handler(second)
        [task] = await tasks_for_sensor(conn, sensor)
        assert task["alert_id"] == first.alert_id

        # in progress counts as open too
        await conn.execute("UPDATE maintenance_tasks SET status = 'in_progress' WHERE id = $1", task["id"])
        await conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE id = $1", second.alert_id
        )
        third = await make_alert(conn, sensor, severity="critical")
        await handler(third)
        assert len(await tasks_for_sensor(conn, sensor)) == 1

        # another rule on the same sensor, or the same rule on another sensor, is another cause
        other_rule = await make_alert(conn, sensor, rule="temperature_max", severity="high")
        other_sensor = await make_alert(conn, plant.sensor_ids[1], severity="high")
        await handler(other_rule)
        await handler(other_sensor)
        assert len(await tasks_for_alert(conn, other_rule.alert_id)) == 1
        assert len(await tasks_for_alert(conn, other_sensor.alert_id)) == 1

        # once the task is closed, a new alert for the cause opens a new task
        await conn.execute("UPDATE maintenance_tasks SET status = 'cancelled' WHERE id = $1", task["id"])
        await handler(third)
        assert len(await tasks_for_alert(conn, third.alert_id)) == 1


async def test_concurrent_alerts_for_the_same_cause_open_one_task(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        sensor = plant.sensor_ids[0]
        first = await make_alert(conn, sensor, severity="high")
        await conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE id = $1", first.alert_id
        )
        second = await make_alert(conn, sensor, severity="high")
        await asyncio.gather(handler(first), handler(second))
        assert len(await tasks_for_sensor(conn, sensor)) == 1


async def test_unknown_alert_is_ignored(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    handler = scheduling.OpenTaskForAlert(factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        event = await make_alert(conn, plant.sensor_ids[0], severity="critical")
        await conn.execute("DELETE FROM alerts WHERE id = $1", event.alert_id)
        await handler(event)
        assert await tasks_for_sensor(conn, plant.sensor_ids[0]) == []


def test_registry_subscribes_the_scheduling_handler(settings: Settings) -> None:
    bus = EventBus(None)
    subscriptions = register_handlers(bus, runtime_for(settings))
    assert (scheduling.HANDLER_NAME, "AlertRaised") in [(s.name, s.event_type) for s in subscriptions]


async def test_due_dates_come_from_the_settings(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    custom = settings.model_copy(update={"maintenance_due_critical_h": 1.5})
    handler = scheduling.OpenTaskForAlert.from_settings(custom, factory)
    async with connect(settings) as conn:
        plant = await make_plant(conn)
        event = await make_alert(conn, plant.sensor_ids[0], severity="critical")
        started = datetime.now(UTC)
        await handler(event)
        [task] = await tasks_for_alert(conn, event.alert_id)
        assert 1.4 < hours_between(task["due_at"], started) < 1.6


async def test_through_the_bus_with_redelivery(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    bus = make_bus(factory)
    [spec] = [spec for spec in HANDLERS if spec.name == scheduling.HANDLER_NAME]  # as the table subscribes it
    bus.subscribe(spec.event, spec.build(runtime_for(settings, factory)), name=spec.name)
    bus.start()
    try:
        async with connect(settings) as conn:
            plant = await make_plant(conn)
            event = await make_alert(conn, plant.sensor_ids[0], severity="critical")
            first, second = await bus.publish(event), await bus.publish(event)
            assert await first == {scheduling.HANDLER_NAME: "ok"}
            assert await second == {scheduling.HANDLER_NAME: "ok"}
            assert len(await tasks_for_alert(conn, event.alert_id)) == 1
    finally:
        await bus.stop(timeout=5)
