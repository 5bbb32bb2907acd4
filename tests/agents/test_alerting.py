"""Alerting agent on a real database: hysteresis, de-duplication, idempotency, suppression, no-data.

Handlers are called directly with events (no bus, no sleeps). The module has its own database with the default
rules disabled, and every test uses a sensor type of its own, so only the test's rules apply.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from apps.agents.alerting import (
    ANOMALY_HANDLER_NAME,
    READINGS_HANDLER_NAME,
    AnomalyHandler,
    NoDataChecker,
    ReadingsHandler,
    check_no_data,
)
from apps.agents.registry import register_handlers
from core.config import to_libpq_url
from core.db.repositories.alerting import AlertingRepository, Point, ReadingFilter
from core.events.bus import EventBus
from core.events.types import AnomalyDetected, ReadingsIngested
from core.observability.metrics import REGISTRY
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
)
from tests.unit.test_alert_reading_filter import kept

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(events_database_url: str) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    conn = await asyncpg.connect(to_libpq_url(events_database_url))
    await conn.execute("UPDATE alert_rules SET enabled = false WHERE name NOT LIKE 'test-%'")
    try:
        yield conn
    finally:
        await conn.close()


class World:
    """One asset with one sensor of a type of its own, and helpers to write readings, anomalies and rules."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.tag = uuid.uuid4().hex[:10]
        self.type = f"type-{self.tag}"
        self.sensor = f"s-{self.tag}"
        self.asset_id = 0

    async def setup(self) -> World:
        self.asset_id = await self.conn.fetchval(
            "INSERT INTO assets (name) VALUES ($1) RETURNING id", f"asset-{self.tag}"
        )
        await self.conn.execute(
            "INSERT INTO sensors (sensor_id, asset_id, type, created_at) VALUES ($1, $2, $3, $4)",
            self.sensor,
            self.asset_id,
            self.type,
            T0 - timedelta(days=1),
        )
        return self

    async def rule(self, kind: str, params: dict[str, Any], **options: Any) -> str:
        name = f"test-{kind}-{self.tag}"
        values = {"open_after_k": 3, "window_minutes": 5, "resolve_after_m": 2, "severity": "high", **options}
        await self.conn.execute(
            "INSERT INTO alert_rules (name, kind, sensor_type, params, severity, open_after_k, window_minutes, "
            "resolve_after_m) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
            name,
            kind,
            self.type,
            json.dumps(params),
            values["severity"],
            values["open_after_k"],
            values["window_minutes"],
            values["resolve_after_m"],
        )
        return name

    async def readings(
        self, start: datetime, values: list[float], step: timedelta = timedelta(minutes=1)
    ) -> ReadingsIngested:
        stamps = [start + i * step for i in range(len(values))]
        await self.conn.executemany(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3)",
            [(t, self.sensor, v) for t, v in zip(stamps, values, strict=True)],
        )
        return ReadingsIngested(
            sensor_ids=[self.sensor],
            count=len(values),
            first_timestamp=stamps[0],
            last_timestamp=stamps[-1],
            ingest_event_id=uuid.uuid4(),
        )

    async def anomaly(self, at: datetime, score: float = 8.0, value: float = 99.0) -> AnomalyDetected:
        await self.conn.execute(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            at,
            self.sensor,
            value,
        )
        anomaly_id = await self.conn.fetchval(
            "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) VALUES ($1, $2, $3, $4, 'robust_z') "
            "RETURNING id",
            self.sensor,
            at,
            value,
            score,
        )
        return AnomalyDetected(
            anomaly_id=anomaly_id,
            sensor_id=self.sensor,
            timestamp=at,
            value=value,
            score=score,
            method="robust_z",
        )

    async def alerts(self) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT id, rule, severity, status, anomaly_count FROM alerts WHERE sensor_id = $1 ORDER BY id",
            self.sensor,
        )

    async def state(self) -> dict[str, Any]:
        """Everything the agent writes about this sensor (for idempotency comparisons)."""
        return {
            "alerts": [
                dict(r)
                for r in await self.conn.fetch(
                    "SELECT id, rule, status, anomaly_count, opened_at, acknowledged_at, resolved_at FROM alerts "
                    "WHERE sensor_id = $1 ORDER BY id",
                    self.sensor,
                )
            ],
            "events": [
                dict(r)
                for r in await self.conn.fetch(
                    "SELECT e.alert_id, e.from_status, e.to_status, e.actor FROM alert_events e "
                    "JOIN alerts a ON a.id = e.alert_id WHERE a.sensor_id = $1 ORDER BY e.id",
                    self.sensor,
                )
            ],
            "observations": [
                dict(r)
                for r in await self.conn.fetch(
                    "SELECT o.* FROM alert_observations o JOIN alerts a ON a.id = o.alert_id WHERE a.sensor_id = $1 "
                    "ORDER BY 1, 2",
                    self.sensor,
                )
            ],
            "raised": await self.raised(),
        }

    async def raised(self) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT payload FROM outbox WHERE event_type = 'AlertRaised' AND payload->>'sensor_id' = $1 ORDER BY id",
            self.sensor,
        )
        return [json.loads(r["payload"]) for r in rows]

    async def events_of(self, alert_id: int) -> list[tuple[str | None, str]]:
        rows = await self.conn.fetch(
            "SELECT from_status, to_status FROM alert_events WHERE alert_id = $1 ORDER BY id", alert_id
        )
        return [(r["from_status"], r["to_status"]) for r in rows]


@pytest.fixture
async def world(db: asyncpg.Connection) -> World:
    return await World(db).setup()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- thresholds: k of window, m normal ----------------------------------------------------------------------------
async def test_threshold_opens_after_k_matching_readings_within_the_window(world, session_factory):  # noqa: F811
    rule = await world.rule("threshold", {"max": 10.0})
    handler = ReadingsHandler(session_factory)
    before = metric("sm_alerts_opened_total", rule=rule, severity="high")
    # two high readings: not yet
    await handler(await world.readings(T0, [5, 11, 5, 12]))
    assert await world.alerts() == []
    # the third within 5 minutes of the first two: opens, with the three readings counted
    await handler(await world.readings(T0 + timedelta(minutes=4), [13]))
    alerts = await world.alerts()
    assert [(a["rule"], a["severity"], a["status"], a["anomaly_count"]) for a in alerts] == [
        (rule, "high", "open", 3)
    ]
    assert await world.events_of(alerts[0]["id"]) == [(None, "open")]
    raised = await world.raised()
    assert [(r["alert_id"], r["rule"], r["severity"]) for r in raised] == [(alerts[0]["id"], rule, "high")]
    assert metric("sm_alerts_opened_total", rule=rule, severity="high") == before + 1


async def test_matching_readings_spread_beyond_the_window_do_not_open(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"min": 0.0, "max": 10.0})
    handler = ReadingsHandler(session_factory)
    # three violations (two high, one low), each 4 minutes apart: never 3 within 5 minutes
    await handler(await world.readings(T0, [11, 5, 5, 5, -1, 5, 5, 5, 12], step=timedelta(minutes=1)))
    assert await world.alerts() == []


async def test_resolves_only_after_m_consecutive_normal_readings(world, session_factory):  # noqa: F811
    rule = await world.rule("threshold", {"max": 10.0}, resolve_after_m=3)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    [alert] = await world.alerts()
    before = metric("sm_alerts_resolved_total", rule=rule)
    # two normal, then a violation (counted by the open alert), then two normal: still open
    await handler(await world.readings(T0 + timedelta(minutes=3), [5, 5, 14, 5, 5]))
    [again] = await world.alerts()
    assert (again["id"], again["status"], again["anomaly_count"]) == (alert["id"], "open", 4)
    # the third consecutive normal reading resolves it
    await handler(await world.readings(T0 + timedelta(minutes=8), [5]))
    [resolved] = await world.alerts()
    assert resolved["status"] == "resolved"
    assert await world.events_of(alert["id"]) == [(None, "open"), ("open", "resolved")]
    assert metric("sm_alerts_resolved_total", rule=rule) == before + 1
    # a new run of violations opens a new alert
    await handler(await world.readings(T0 + timedelta(minutes=9), [20, 21, 22]))
    assert [a["status"] for a in await world.alerts()] == ["resolved", "open"]


async def test_acknowledged_alerts_also_resolve_after_m_normal_readings(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    await world.conn.execute(
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE sensor_id = $1",
        world.sensor,
    )
    await handler(await world.readings(T0 + timedelta(minutes=3), [5, 5]))
    [alert] = await world.alerts()
    assert alert["status"] == "resolved"
    assert (await world.events_of(alert["id"]))[-1] == ("acknowledged", "resolved")


async def test_a_batch_that_returns_to_normal_opens_and_resolves(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13, 5, 5]))
    [alert] = await world.alerts()
    assert alert["status"] == "resolved"
    assert await world.events_of(alert["id"]) == [(None, "open"), ("open", "resolved")]


async def test_rate_of_change(world, session_factory):  # noqa: F811
    await world.rule("rate_of_change", {"max_rate_per_min": 2.0}, open_after_k=2)
    handler = ReadingsHandler(session_factory)
    # slow drift (1 per minute) never matches, however far it goes
    await handler(await world.readings(T0, [10, 11, 12, 13, 14, 15]))
    assert await world.alerts() == []
    # two jumps of 5 per minute: open
    await handler(await world.readings(T0 + timedelta(minutes=6), [20, 25]))
    [alert] = await world.alerts()
    assert (alert["status"], alert["anomaly_count"]) == ("open", 2)
    # the rate is per minute: +5 over 10 minutes is normal; two normal rates resolve it
    await handler(await world.readings(T0 + timedelta(minutes=17), [30, 30.5], step=timedelta(minutes=10)))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


# --- anomalies: de-duplication and linking --------------------------------------------------------------------------
async def test_repeated_anomalies_keep_one_unresolved_alert_per_sensor_and_rule(world, session_factory):  # noqa: F811
    rule = await world.rule("anomaly_score", {"min_score": 5.0}, open_after_k=2)
    handler = AnomalyHandler(session_factory)
    # below min_score: ignored
    await handler(await world.anomaly(T0, score=4.0))
    await handler(await world.anomaly(T0 + timedelta(minutes=1)))
    assert await world.alerts() == []
    for i in range(2, 7):
        await handler(await world.anomaly(T0 + timedelta(minutes=i)))
    alerts = await world.alerts()
    assert [(a["rule"], a["status"], a["anomaly_count"]) for a in alerts] == [(rule, "open", 6)]
    linked = await world.conn.fetchval(
        "SELECT count(*) FROM alert_observations WHERE alert_id = $1 AND anomaly_id IS NOT NULL",
        alerts[0]["id"],
    )
    assert linked == 6
    assert len(await world.raised()) == 1


async def test_anomaly_alerts_resolve_after_m_normal_readings(world, session_factory):  # noqa: F811
    await world.rule("anomaly_score", {"min_score": 5.0}, open_after_k=2, resolve_after_m=3)
    anomalies = AnomalyHandler(session_factory)
    readings = ReadingsHandler(session_factory)
    await anomalies(await world.anomaly(T0))
    await anomalies(await world.anomaly(T0 + timedelta(minutes=1)))
    [alert] = await world.alerts()
    # the anomalous readings themselves and two normal ones: still open
    await readings(await world.readings(T0 + timedelta(minutes=2), [1, 1]))
    assert [a["status"] for a in await world.alerts()] == ["open"]
    await readings(await world.readings(T0 + timedelta(minutes=4), [1]))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]
    assert await world.events_of(alert["id"]) == [(None, "open"), ("open", "resolved")]


# --- idempotency ----------------------------------------------------------------------------------------------------
async def test_duplicate_events_leave_the_same_state(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=2)
    readings = ReadingsHandler(session_factory)
    anomalies = AnomalyHandler(session_factory)
    batch = await world.readings(T0, [11, 12, 13, 14])
    first = await world.anomaly(T0 + timedelta(minutes=10))
    second = await world.anomaly(T0 + timedelta(minutes=11))
    for event, handler in ((batch, readings), (first, anomalies), (second, anomalies)):
        await handler(event)
    state = await world.state()
    assert [a["anomaly_count"] for a in state["alerts"]] == [4, 2]
    for event, handler in ((second, anomalies), (batch, readings), (first, anomalies), (batch, readings)):
        await handler(event)  # redeliveries, in another order
    assert await world.state() == state
    # after the alerts resolve, a late redelivery opens nothing new either
    await readings(closing := await world.readings(T0 + timedelta(minutes=12), [1, 1]))
    resolved = await world.state()
    assert [a["status"] for a in resolved["alerts"]] == ["resolved", "resolved"]
    for event, handler in ((batch, readings), (second, anomalies), (first, anomalies), (closing, readings)):
        await handler(event)
    assert await world.state() == resolved


# --- suppression ----------------------------------------------------------------------------------------------------
async def test_suppressed_while_the_asset_has_an_open_work_order(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=1)
    task_id = await world.conn.fetchval(
        "INSERT INTO maintenance_tasks (asset_id, title, status) VALUES ($1, 'bearing', 'in_progress') RETURNING id",
        world.asset_id,
    )
    before = metric("sm_alerts_suppressed_total", reason="maintenance_task")
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 12, 13]))
    await AnomalyHandler(session_factory)(await world.anomaly(T0 + timedelta(minutes=5)))
    assert await world.alerts() == []
    assert await world.raised() == []
    assert metric("sm_alerts_suppressed_total", reason="maintenance_task") == before + 2
    # once the work order is done, the next matching reading opens the alert
    await world.conn.execute("UPDATE maintenance_tasks SET status = 'done' WHERE id = $1", task_id)
    await ReadingsHandler(session_factory)(await world.readings(T0 + timedelta(minutes=6), [14, 15, 16]))
    assert [a["status"] for a in await world.alerts()] == ["open"]


async def test_suppressed_while_a_sensor_without_asset_has_an_open_work_order(world, session_factory):  # noqa: F811
    """Regression: sensors registered by ingest have no asset and their work orders carry only ``sensor_id``;
    a fault that comes back after the alert auto-resolved opened a second alert while the task was open."""
    await world.conn.execute("UPDATE sensors SET asset_id = NULL WHERE sensor_id = $1", world.sensor)
    await world.rule("threshold", {"max": 10.0})
    task_id = await world.conn.fetchval(
        "INSERT INTO maintenance_tasks (sensor_id, title, status) VALUES ($1, 'overheating', 'open') RETURNING id",
        world.sensor,
    )
    other = await world.conn.fetchval(  # an open task of another sensor suppresses nothing here
        "INSERT INTO maintenance_tasks (title, status) VALUES ('elsewhere', 'open') RETURNING id"
    )
    before = metric("sm_alerts_suppressed_total", reason="maintenance_task")
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    assert await world.alerts() == []
    assert await world.raised() == []
    assert metric("sm_alerts_suppressed_total", reason="maintenance_task") == before + 1
    # once the work order is done, the next matching readings open the alert
    await world.conn.execute("UPDATE maintenance_tasks SET status = 'done' WHERE id = $1", task_id)
    await handler(await world.readings(T0 + timedelta(minutes=6), [14, 15, 16]))
    assert [a["status"] for a in await world.alerts()] == ["open"]
    await world.conn.execute("UPDATE maintenance_tasks SET status = 'cancelled' WHERE id = $1", other)


async def test_suppressed_inside_a_maintenance_window(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    await world.conn.execute(
        "INSERT INTO maintenance_windows (asset_id, starts_at, ends_at, reason) VALUES ($1, $2, $3, 'overhaul')",
        world.asset_id,
        T0,
        T0 + timedelta(minutes=30),
    )
    before = metric("sm_alerts_suppressed_total", reason="maintenance_window")
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    assert await world.alerts() == []
    assert metric("sm_alerts_suppressed_total", reason="maintenance_window") == before + 1
    # after the window: new matching readings open an alert
    await handler(await world.readings(T0 + timedelta(minutes=30), [11, 12, 13]))
    assert [a["status"] for a in await world.alerts()] == ["open"]


# --- no data --------------------------------------------------------------------------------------------------------
async def test_no_data_opens_after_n_minutes_and_resolves_when_data_returns(world, session_factory):  # noqa: F811
    rule = await world.rule("no_data", {"no_data_minutes": 15}, severity="medium")
    await world.readings(T0, [1.0])
    # 10 minutes of silence: nothing
    await check_no_data(session_factory, T0 + timedelta(minutes=10))
    assert await world.alerts() == []
    # 16 minutes: open (once, however often the check runs)
    await check_no_data(session_factory, T0 + timedelta(minutes=16))
    await check_no_data(session_factory, T0 + timedelta(minutes=17))
    alerts = await world.alerts()
    assert [(a["rule"], a["severity"], a["status"]) for a in alerts] == [(rule, "medium", "open")]
    assert [r["rule"] for r in await world.raised()] == [rule]
    # data returns: resolved at the next check
    await world.readings(T0 + timedelta(minutes=18), [1.0])
    await check_no_data(session_factory, T0 + timedelta(minutes=19))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]
    assert await world.events_of(alerts[0]["id"]) == [(None, "open"), ("open", "resolved")]


async def test_no_data_is_suppressed_during_maintenance(world, session_factory):  # noqa: F811
    await world.rule("no_data", {"no_data_minutes": 15})
    await world.readings(T0, [1.0])
    await world.conn.execute(
        "INSERT INTO maintenance_windows (asset_id, starts_at, ends_at) VALUES ($1, $2, $3)",
        world.asset_id,
        T0,
        T0 + timedelta(hours=1),
    )
    await check_no_data(session_factory, T0 + timedelta(minutes=30))
    assert await world.alerts() == []
    await check_no_data(session_factory, T0 + timedelta(minutes=61))
    assert [a["status"] for a in await world.alerts()] == ["open"]


# --- wiring ---------------------------------------------------------------------------------------------------------
def test_registry_subscribes_the_alerting_handlers() -> None:
    bus = EventBus(None)
    subscriptions = register_handlers(bus, SimpleNamespace())
    pairs = {(s.name, s.event_type) for s in subscriptions}
    assert (READINGS_HANDLER_NAME, "ReadingsIngested") in pairs
    assert (ANOMALY_HANDLER_NAME, "AnomalyDetected") in pairs


async def test_no_data_checker_starts_and_stops(session_factory) -> None:  # noqa: F811
    off = NoDataChecker(session_factory, 0)
    off.start()
    assert off._task is None  # interval 0: disabled
    await off.stop()
    checker = NoDataChecker(session_factory, 3600)
    checker.start()
    assert checker._task is not None and not checker._task.done()
    await checker.stop()
    assert checker._task is None


async def test_an_anomaly_event_without_its_row_still_counts(world, session_factory):  # noqa: F811
    await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=1)
    handler = AnomalyHandler(session_factory)
    await handler(await world.anomaly(T0))
    ghost = AnomalyDetected(
        anomaly_id=999_999_999,
        sensor_id=world.sensor,
        timestamp=T0 + timedelta(minutes=1),
        value=5.0,
        score=9.0,
        method="robust_z",
    )
    await handler(ghost)
    [alert] = await world.alerts()
    assert alert["anomaly_count"] == 2


async def test_readings_for_answers_what_the_filter_keeps(world, session_factory):  # noqa: F811
    """The SQL of ``readings_for`` against its Python mirror (tests/unit/test_alert_reading_filter.py)."""
    values = [float(v) for v in random.Random(7).choices(range(-5, 15), k=60)]
    await world.readings(T0, values)
    rows = await world.conn.fetch(
        "SELECT timestamp, value FROM sensor_readings WHERE sensor_id = $1 ORDER BY timestamp", world.sensor
    )
    points = [Point(r["timestamp"], r["value"]) for r in rows]
    since, first = T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)
    filters = [
        ReadingFilter(world.sensor, lo=0.0, hi=10.0),
        ReadingFilter(world.sensor, after=T0 + timedelta(minutes=30), hi=12.0),
        ReadingFilter(world.sensor, keep_all=True),
        ReadingFilter(world.sensor),
    ]
    async with session_factory() as session:
        repo = AlertingRepository(session)
        for flt in filters:
            got = (await repo.readings_for([flt], since, first, T0 + timedelta(minutes=50), 3))[world.sensor]
            assert got == kept(flt, points[:51], since, first, 3), flt
            assert got  # each filter keeps the batch itself at least


async def test_the_match_cache_changes_no_outcome(db, session_factory):  # noqa: F811
    """The same random batches (in order, plus a late one and a redelivery) through a handler with the match
    cache and one without give the same alerts and observations."""
    rng = random.Random(11)
    worlds = [await World(db).setup(), await World(db).setup()]
    for w in worlds:
        await w.rule(
            "threshold", {"min": 2.0, "max": 10.0}, open_after_k=3, window_minutes=20, resolve_after_m=4
        )
    handlers = [ReadingsHandler(session_factory), ReadingsHandler(session_factory, cache=False)]
    assert handlers[0].cache is not None and handlers[1].cache is None
    values = [rng.choice([5.0, 6.0, 7.0, 1.0, 12.0, 5.5, 6.5, 4.0]) for _ in range(120)]
    starts = list(range(0, 120, 6))
    late = starts.pop(7)  # stored and delivered after the batch that follows it
    order = [*starts[:8], late, *starts[8:], starts[3]]  # … and one redelivery at the end
    events: dict[tuple[int, int], ReadingsIngested] = {}
    for start in order:
        for i, (w, handler) in enumerate(zip(worlds, handlers, strict=True)):
            if (i, start) not in events:
                events[(i, start)] = await w.readings(
                    T0 + timedelta(minutes=start), values[start : start + 6]
                )
            await handler(events[(i, start)])
    assert handlers[0].cache.hits > 0 and handlers[0].cache.misses > 0

    async def outcome(w: World) -> tuple[list[tuple[str, int]], list[tuple[datetime, float]]]:
        alerts = [(a["status"], a["anomaly_count"]) for a in await w.alerts()]
        observations = await w.conn.fetch(
            "SELECT o.observed_at, o.value FROM alert_observations o JOIN alerts a ON a.id = o.alert_id "
            "WHERE a.sensor_id = $1 ORDER BY 1",
            w.sensor,
        )
        return alerts, [(r["observed_at"], r["value"]) for r in observations]

    cached, uncached = await outcome(worlds[0]), await outcome(worlds[1])
    assert cached == uncached
    assert len(cached[0]) >= 2  # the data opened (and resolved) alerts: the comparison is not vacuous


async def test_a_burst_of_anomalies_handled_together_equals_one_by_one(db, session_factory):  # noqa: F811
    """Concurrent AnomalyDetected deliveries share a run (one unit of work): the same alerts and observations as
    the same events handled one at a time, in time order; redelivering the burst changes nothing."""
    worlds = [await World(db).setup(), await World(db).setup()]
    for w in worlds:
        await w.rule("anomaly_score", {"min_score": 2.0}, open_after_k=3, window_minutes=10)
    scores = [5.0, 1.0, 6.0, 7.0, 8.0, 9.0, 1.5, 9.5]
    bursts = [
        [await w.anomaly(T0 + timedelta(minutes=i), score=s) for i, s in enumerate(scores)] for w in worlds
    ]
    together = AnomalyHandler(session_factory)
    await asyncio.gather(*(together(e) for e in bursts[0]))
    assert together.coalescer.largest_run > 1
    one_by_one = AnomalyHandler(session_factory)
    for event in bursts[1]:
        await one_by_one(event)

    async def outcome(w: World) -> tuple[list[tuple[str, int]], list[tuple[datetime, bool]]]:
        rows = await w.conn.fetch(
            "SELECT o.observed_at, o.anomaly_id IS NOT NULL AS linked FROM alert_observations o "
            "JOIN alerts a ON a.id = o.alert_id WHERE a.sensor_id = $1 ORDER BY 1",
            w.sensor,
        )
        return [(a["status"], a["anomaly_count"]) for a in await w.alerts()], [tuple(r) for r in rows]

    first = await outcome(worlds[0])
    assert first == await outcome(worlds[1])
    assert first[0] == [("open", 6)]  # the 6 anomalies with score >= 2
    await asyncio.gather(*(together(e) for e in bursts[0]))
    assert await outcome(worlds[0]) == first
