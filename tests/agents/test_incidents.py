"""One fault, one work order: incidents of an asset, work orders per incident, escalation, attachment, closing.

The alerting handlers open real alerts from readings; the scheduling handler is then given the ``AlertRaised``
events the alerting agent wrote to the outbox (no bus, no sleeps).
"""
# ruff: noqa: F811  (pytest fixtures imported from tests.agents.test_alerting and tests.support.events)

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from core.alerts.agent import ReadingsHandler, ScoredHandler
from core.db.session import unit_of_work
from core.events.types import AlertRaised, ReadingsScored
from core.maintenance.agent import OpenTaskForAlert
from core.maintenance.service import MaintenanceService
from tests.agents.test_alerting import MINUTE, T0, World, db, world  # noqa: F401 - fixtures
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
)


async def schedule(world: World, session_factory, done: set[int]) -> list[AlertRaised]:
    """Deliver every AlertRaised of the world's asset not delivered yet to the scheduling agent."""
    rows = await world.conn.fetch(
        "SELECT o.id, o.payload FROM outbox o WHERE o.event_type = 'AlertRaised' "
        "AND (o.payload->>'asset_id')::int = $1 ORDER BY o.id",
        world.asset_id,
    )
    handler = OpenTaskForAlert(session_factory)
    delivered = []
    for row in rows:
        if row["id"] in done:
            continue
        done.add(row["id"])
        event = AlertRaised.model_validate(json.loads(row["payload"]))
        await handler(event)
        delivered.append(event)
    return delivered


async def tasks(world: World) -> list[asyncpg.Record]:
    return await world.conn.fetch(
        "SELECT id, status, priority, incident_id, alert_id, event_opened_at, due_at FROM maintenance_tasks "
        "WHERE asset_id = $1 ORDER BY id",
        world.asset_id,
    )


async def incidents(world: World) -> list[asyncpg.Record]:
    return await world.conn.fetch(
        "SELECT id, status, severity, alert_count, first_seen_at, last_seen_at FROM incidents "
        "WHERE asset_id = $1 ORDER BY id",
        world.asset_id,
    )


async def timeline(conn: asyncpg.Connection, incident_id: int) -> list[str]:
    rows = await conn.fetch("SELECT kind FROM incident_events WHERE incident_id = $1 ORDER BY id", incident_id)
    return [r["kind"] for r in rows]


async def test_a_fault_seen_by_two_sensors_and_rules_is_one_incident_and_one_work_order(
    world: World, session_factory
) -> None:
    """A spike fault used to open two alerts and two work orders (range rule and anomaly rule, a second apart)."""
    other = await world.add_sensor(f"o-{world.tag}")
    await world.rule("threshold", {"max": 10.0}, severity="high")
    await world.rule("anomaly_score", {"min_score": 1.0}, severity="critical", open_after_k=2)
    done: set[int] = set()
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13]))
    await schedule(world, session_factory, done)
    [task] = await tasks(world)
    assert (task["priority"], task["status"]) == ("high", "open")
    assert task["due_at"] - task["event_opened_at"] == timedelta(hours=24)
    # the other sensor of the same asset: anomalies a few minutes later join the incident and escalate
    event = await world.scored(T0 + 5 * MINUTE, [50, 51], {0: 7.0, 1: 9.0}, sensor=other)
    await ScoredHandler(session_factory)(event)
    raised = await schedule(world, session_factory, done)
    assert [(e.rule.startswith("test-anomaly_score"), e.task_id) for e in raised] == [(True, task["id"])]
    [again] = await tasks(world)
    assert (again["id"], again["priority"]) == (task["id"], "critical")
    assert again["due_at"] == (T0 + 6 * MINUTE) + timedelta(hours=4)  # brought forward by the critical alert
    [incident] = await incidents(world)
    assert (incident["status"], incident["severity"], incident["alert_count"]) == ("open", "critical", 2)
    assert await timeline(world.conn, incident["id"]) == ["opened", "work_order_opened", "alert_joined", "escalated"]
    escalated = await world.conn.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'MaintenanceTaskEscalated' AND (payload->>'task_id')::int = $1",
        task["id"],
    )
    assert [json.loads(r["payload"])["to_priority"] for r in escalated] == ["critical"]
    sensors = await world.conn.fetch("SELECT DISTINCT sensor_id FROM alerts WHERE incident_id = $1", incident["id"])
    assert {r["sensor_id"] for r in sensors} == {world.sensor, other}  # the asset's incident, not a sensor's


async def test_a_later_alert_on_the_asset_attaches_to_the_open_work_order(world, session_factory) -> None:
    """An open work order used to hide every later alert on its asset; now they open, attach and notify."""
    await world.rule("threshold", {"max": 10.0}, severity="high", resolve_after_m=2)
    done: set[int] = set()
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13, 5, 5]))  # opens and resolves
    await schedule(world, session_factory, done)
    [task] = await tasks(world)
    # three hours later (far beyond the correlation window) the fault returns: the work order is still open
    await handler(await world.readings(T0 + timedelta(hours=3), [14, 15, 16]))
    [raised] = await schedule(world, session_factory, done)
    assert raised.task_id == task["id"] and raised.incident_id == task["incident_id"]
    assert [a["status"] for a in await world.alerts()] == ["resolved", "open"]
    assert len(await tasks(world)) == 1
    # completing the work order resolves the incident's alerts and closes it; the next fault is a new one
    async with unit_of_work(session_factory) as session:
        await MaintenanceService(session).complete(task["id"], outcome="fault_confirmed", technician="t", notes=None)
    assert [a["status"] for a in await world.alerts()] == ["resolved", "resolved"]
    [incident] = await incidents(world)
    assert incident["status"] == "closed"
    assert (await timeline(world.conn, incident["id"]))[-1] == "closed"
    await handler(await world.readings(T0 + timedelta(hours=4), [17, 18, 19]))
    await schedule(world, session_factory, done)
    assert [(t["status"], t["incident_id"] != task["incident_id"]) for t in await tasks(world)] == [
        ("done", False),
        ("open", True),
    ]


async def test_a_confirmed_repair_re_learns_the_assets_references(world, session_factory) -> None:
    sibling = await world.add_sensor(f"sib-{world.tag}")
    await world.rule("threshold", {"max": 10.0}, severity="high")
    for sensor in (world.sensor, sibling):
        await world.conn.execute(
            "INSERT INTO sensor_references (sensor_id, kind, started_at, reason, status, ready_at, readings, "
            "median, scale, longest_run) VALUES ($1, 'initial', $2, 'test', 'ready', $2, 100, 5.0, 0.5, 1)",
            sensor,
            T0 - timedelta(days=2),
        )
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13]))
    await world.readings(T0, [5.0, 5.1], sensor=sibling)
    await schedule(world, session_factory, set())
    [task] = await tasks(world)
    async with unit_of_work(session_factory) as session:
        await MaintenanceService(session).complete(task["id"], outcome="fault_confirmed", technician="t", notes=None)
    rows = await world.conn.fetch(
        "SELECT sensor_id, kind, status, started_at, previous_median FROM sensor_references "
        "WHERE kind = 'repair' AND sensor_id = ANY($1::text[]) ORDER BY sensor_id",
        [world.sensor, sibling],
    )
    assert [(r["kind"], r["status"], r["previous_median"]) for r in rows] == [("repair", "learning", 5.0)] * 2
    # each re-learns from the readings after its latest one (event time), not from today's clock
    starts = {r["sensor_id"]: r["started_at"] for r in rows}
    assert starts[world.sensor] == T0 + 2 * MINUTE + timedelta(microseconds=1)
    assert starts[sibling] == T0 + MINUTE + timedelta(microseconds=1)


async def test_no_fault_found_keeps_the_references(world, session_factory) -> None:
    await world.rule("threshold", {"max": 10.0}, severity="high")
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13]))
    await schedule(world, session_factory, set())
    [task] = await tasks(world)
    async with unit_of_work(session_factory) as session:
        await MaintenanceService(session).complete(task["id"], outcome="no_fault_found", technician="t", notes=None)
    count = await world.conn.fetchval(
        "SELECT count(*) FROM sensor_references WHERE sensor_id = $1 AND kind = 'repair'", world.sensor
    )
    assert count == 0


async def test_medium_incidents_resolve_and_re_open_within_the_window(world, session_factory) -> None:
    await world.rule("threshold", {"max": 10.0}, severity="medium", resolve_after_m=2)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13, 5, 5]))
    await schedule(world, session_factory, set())
    assert await tasks(world) == []  # medium: no work order
    [incident] = await incidents(world)
    assert incident["status"] == "resolved"
    # within the 60-minute window: the same incident re-opens
    await handler(await world.readings(T0 + 30 * MINUTE, [11, 12, 13]))
    [again] = await incidents(world)
    assert (again["id"], again["status"], again["alert_count"]) == (incident["id"], "open", 2)
    assert "reopened" in await timeline(world.conn, incident["id"])
    # resolved again, then a fault two hours later: a new incident
    await handler(await world.readings(T0 + 33 * MINUTE, [5, 5]))
    await handler(await world.readings(T0 + timedelta(hours=3), [11, 12, 13]))
    assert [i["status"] for i in await incidents(world)] == ["resolved", "open"]


async def test_a_high_incident_stays_open_for_its_work_order_whatever_the_agents_speed(
    world: World, session_factory
) -> None:
    """A back-fill runs the alerting agent far ahead of the scheduling agent: the alert has resolved before its
    work order exists. The incident must still be the one the next alert joins (event time decides, not speed)."""
    await world.rule("threshold", {"max": 10.0}, severity="high", resolve_after_m=2)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13, 5, 5]))  # opens and resolves; nothing scheduled yet
    [incident] = await incidents(world)
    assert incident["status"] == "open"
    await handler(await world.readings(T0 + timedelta(days=2), [14, 15, 16]))  # long after: still the same incident
    done: set[int] = set()
    await schedule(world, session_factory, done)
    assert len(await incidents(world)) == 1
    [task] = await tasks(world)
    assert task["incident_id"] == incident["id"]


async def test_due_dates_follow_event_time_for_history(world, session_factory) -> None:
    await world.rule("threshold", {"max": 10.0}, severity="critical")
    old = datetime(2003, 11, 22, 15, 0, tzinfo=UTC)
    await ReadingsHandler(session_factory)(await world.readings(old, [11, 12, 13], step=timedelta(minutes=10)))
    await schedule(world, session_factory, set())
    [task] = await tasks(world)
    assert task["event_opened_at"] == old + timedelta(minutes=20)
    assert task["due_at"] == old + timedelta(minutes=20, hours=4)


async def test_cancelling_the_work_order_closes_the_incident(world, session_factory) -> None:
    await world.rule("threshold", {"max": 10.0}, severity="high")
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13]))
    await schedule(world, session_factory, set())
    [task] = await tasks(world)
    async with unit_of_work(session_factory) as session:
        await MaintenanceService(session).update(task["id"], {"status": "cancelled"})
    assert [i["status"] for i in await incidents(world)] == ["closed"]
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


@pytest.mark.parametrize("order", ["readings first", "scores first"])
async def test_concurrent_alerts_of_one_asset_join_one_incident(world, session_factory, order) -> None:
    """The readings handler and the scoring handler open alerts of one asset in two transactions at once."""
    await world.rule("threshold", {"max": 10.0}, severity="high")
    await world.rule("anomaly_score", {"min_score": 1.0}, severity="high", open_after_k=3)
    readings = await world.readings(T0, [11, 12, 13])
    for i in range(3):
        await world.conn.execute(
            "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) VALUES ($1, $2, 1, 5, 'robust_z')",
            world.sensor,
            T0 + i * MINUTE,
        )
    scored = ReadingsScored(
        sensor_ids=[world.sensor], count=3, first_timestamp=T0, last_timestamp=T0 + 2 * MINUTE
    )
    jobs = [ReadingsHandler(session_factory)(readings), ScoredHandler(session_factory)(scored)]
    if order == "scores first":
        jobs.reverse()
    await asyncio.gather(*jobs)
    assert len(await world.alerts()) == 2
    [incident] = await incidents(world)
    assert incident["alert_count"] == 2


async def test_the_work_order_dates_from_the_earliest_evidence_whatever_the_delivery_order(
    world: World, session_factory
) -> None:
    """Two high alerts of one incident reach the scheduling agent in the reverse order of their event times (a
    back-fill, a retry): the work order is dated — and due — from the earlier one."""
    other = await world.add_sensor(f"o-{world.tag}")
    await world.rule("threshold", {"max": 10.0}, severity="high")
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    await handler(await world.readings(T0 + 20 * MINUTE, [14, 15, 16], sensor=other))
    rows = await world.conn.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'AlertRaised' AND (payload->>'asset_id')::int = $1 "
        "ORDER BY id DESC",
        world.asset_id,
    )
    scheduler = OpenTaskForAlert(session_factory)
    for row in rows:  # the later alert first
        await scheduler(AlertRaised.model_validate(json.loads(row["payload"])))
    [task] = await tasks(world)
    assert task["event_opened_at"] == T0 + 2 * MINUTE
    assert task["due_at"] == T0 + 2 * MINUTE + timedelta(hours=24)
