"""Alerting agent on a real database: k-of-n hysteresis in readings and event time, hold time, units, flat
lines, idempotency, suppression, no-data by cadence.

Handlers are called directly with events (no bus, no sleeps). The module has its own database with the default
rules disabled, and every test uses a sensor type of its own, so only the test's rules apply. Incidents and work
orders: ``test_incidents.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from core.alerts.agent import (
    READINGS_HANDLER_NAME,
    SCORED_HANDLER_NAME,
    NoDataChecker,
    ReadingsHandler,
    ScoredHandler,
    check_no_data,
)
from core.config import Settings, to_libpq_url
from core.events.bus import EventBus
from core.events.types import ReadingsIngested, ReadingsScored
from core.observability.metrics import REGISTRY
from core.runtime.handlers import register_handlers
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
)
from tests.support.runtime import runtime_for

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


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

    def __init__(self, conn: asyncpg.Connection, unit: str | None = None) -> None:
        self.conn = conn
        self.tag = uuid.uuid4().hex[:10]
        self.type = f"type-{self.tag}"
        self.sensor = f"s-{self.tag}"
        self.unit = unit
        self.asset_id = 0

    async def setup(self) -> World:
        self.asset_id = await self.conn.fetchval(
            "INSERT INTO assets (name) VALUES ($1) RETURNING id", f"asset-{self.tag}"
        )
        await self.add_sensor(self.sensor, unit=self.unit)
        return self

    async def add_sensor(self, sensor_id: str, *, unit: str | None = None, asset: bool = True) -> str:
        await self.conn.execute(
            "INSERT INTO sensors (sensor_id, asset_id, type, unit, created_at) VALUES ($1, $2, $3, $4, $5)",
            sensor_id,
            self.asset_id if asset else None,
            self.type,
            unit,
            T0 - timedelta(days=1),
        )
        return sensor_id

    async def rule(self, kind: str, params: dict[str, Any], **options: Any) -> str:
        name = f"test-{kind}-{uuid.uuid4().hex[:6]}-{self.tag}"
        values = {
            "open_after_k": 3,
            "window_readings": 5,
            "resolve_after_m": 2,
            "min_hold_minutes": 0.0,
            "max_age_minutes": None,
            "severity": "high",
            "unit": None,
            **options,
        }
        await self.conn.execute(
            "INSERT INTO alert_rules (name, kind, sensor_type, params, severity, open_after_k, window_readings, "
            "resolve_after_m, min_hold_minutes, max_age_minutes, unit) "
            "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)",
            name,
            kind,
            self.type,
            json.dumps(params),
            values["severity"],
            values["open_after_k"],
            values["window_readings"],
            values["resolve_after_m"],
            values["min_hold_minutes"],
            values["max_age_minutes"],
            values["unit"],
        )
        return name

    async def readings(
        self,
        start: datetime,
        values: list[float],
        step: timedelta = MINUTE,
        sensor: str | None = None,
        ingested_at: datetime | None = None,
    ) -> ReadingsIngested:
        sensor = sensor or self.sensor
        stamps = [start + i * step for i in range(len(values))]
        await self.conn.executemany(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value, ingested_at) "
            "VALUES ($1, $2, $3, COALESCE($4, now()))",
            [(t, sensor, v, ingested_at) for t, v in zip(stamps, values, strict=True)],
        )
        return ReadingsIngested(
            sensor_ids=[sensor],
            count=len(values),
            first_timestamp=stamps[0],
            last_timestamp=stamps[-1],
            ingest_event_id=uuid.uuid4(),
        )

    async def scored(
        self,
        start: datetime,
        values: list[float],
        anomalous: dict[int, float],
        step: timedelta = MINUTE,
        method: str = "robust_z",
        sensor: str | None = None,
    ) -> ReadingsScored:
        """Readings whose indexes in ``anomalous`` have an anomaly (with that score), as the anomaly agent
        leaves them, and the ``ReadingsScored`` it then writes."""
        sensor = sensor or self.sensor
        event = await self.readings(start, values, step, sensor=sensor)
        for i, score in anomalous.items():
            await self.conn.execute(
                "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) VALUES ($1, $2, $3, $4, $5)",
                sensor,
                start + i * step,
                values[i],
                score,
                method,
            )
        return ReadingsScored(
            sensor_ids=[sensor],
            count=len(values),
            first_timestamp=event.first_timestamp,
            last_timestamp=event.last_timestamp,
        )

    async def alerts(self, sensor: str | None = None) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT id, rule, severity, status, anomaly_count, event_opened_at, last_seen_at, event_resolved_at, "
            "incident_id, peak_score FROM alerts WHERE sensor_id = $1 ORDER BY id",
            sensor or self.sensor,
        )

    async def state(self) -> dict[str, Any]:
        """Everything the agent writes about this sensor (for idempotency comparisons)."""
        return {
            "alerts": [
                dict(r)
                for r in await self.conn.fetch(
                    "SELECT id, rule, status, anomaly_count, opened_at, resolved_at, event_opened_at, last_seen_at, "
                    "event_resolved_at, incident_id FROM alerts WHERE sensor_id = $1 ORDER BY id",
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
            "incidents": [
                dict(r)
                for r in await self.conn.fetch(
                    "SELECT id, status, severity, first_seen_at, last_seen_at, alert_count FROM incidents "
                    "WHERE asset_id = $1 ORDER BY id",
                    self.asset_id,
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


# --- k of the last n readings, m normal -----------------------------------------------------------------------------
async def test_threshold_opens_after_k_of_the_last_n_readings(world, session_factory):  # noqa: F811
    rule = await world.rule("threshold", {"max": 10.0})  # 3 of the last 5
    handler = ReadingsHandler(session_factory)
    before = metric("sm_alerts_opened_total", rule=rule, severity="high")
    await handler(await world.readings(T0, [5, 11, 5, 12]))
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 4 * MINUTE, [13]))
    [alert] = await world.alerts()
    assert (alert["rule"], alert["severity"], alert["status"], alert["anomaly_count"]) == (rule, "high", "open", 3)
    assert alert["event_opened_at"] == T0 + 4 * MINUTE  # the reading that completed 3 of 5, not the wall clock
    assert await world.events_of(alert["id"]) == [(None, "open")]
    [raised] = await world.raised()
    assert (raised["alert_id"], raised["rule"], raised["severity"]) == (alert["id"], rule, "high")
    assert raised["event_opened_at"].startswith("2026-11-01T12:04:00") and raised["incident_id"] == alert["incident_id"]
    assert metric("sm_alerts_opened_total", rule=rule, severity="high") == before + 1


async def test_matches_more_than_n_readings_apart_do_not_open(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"min": 0.0, "max": 10.0})
    # three violations, each three normal readings apart: never 3 among 5 consecutive readings
    await ReadingsHandler(session_factory)(await world.readings(T0, [11, 5, 5, 5, -1, 5, 5, 5, 12]))
    assert await world.alerts() == []


@pytest.mark.parametrize("step", [timedelta(seconds=1), timedelta(minutes=10)])
async def test_the_same_readings_give_the_same_alerts_at_any_cadence(world, session_factory, step):  # noqa: F811
    """Hysteresis counts readings: one reading a second and one every ten minutes behave alike."""
    await world.rule("threshold", {"max": 10.0}, resolve_after_m=3)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [5, 11, 12, 5, 13, 5, 5, 5, 5], step=step))
    [alert] = await world.alerts()
    assert (alert["status"], alert["anomaly_count"]) == ("resolved", 3)
    assert alert["event_opened_at"] == T0 + 4 * step and alert["event_resolved_at"] == T0 + 7 * step


async def test_max_age_keeps_old_matches_from_counting(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0}, max_age_minutes=30)
    handler = ReadingsHandler(session_factory)
    hour = timedelta(hours=1)
    # three matches in consecutive readings, but an hour apart: older than 30 minutes, they do not add up
    await handler(await world.readings(T0, [11, 12, 13], step=hour))
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 3 * hour, [14, 15]))
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 3 * hour + 2 * MINUTE, [16]))
    [alert] = await world.alerts()
    assert alert["anomaly_count"] == 3
    observed = await world.conn.fetch(
        "SELECT observed_at FROM alert_observations WHERE alert_id = $1 ORDER BY 1", alert["id"]
    )
    assert [r["observed_at"] for r in observed] == [T0 + 3 * hour + i * MINUTE for i in range(3)]


async def test_resolves_after_m_normal_readings_once_the_hold_time_has_passed(world, session_factory):  # noqa: F811
    rule = await world.rule("threshold", {"max": 10.0}, resolve_after_m=3, min_hold_minutes=30)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    [alert] = await world.alerts()
    before = metric("sm_alerts_resolved_total", rule=rule)
    # five normal readings within 10 minutes of the opening: m is reached, the hold time is not
    await handler(await world.readings(T0 + 3 * MINUTE, [5, 5, 5, 5, 5]))
    assert [a["status"] for a in await world.alerts()] == ["open"]
    # a violation while held is counted by the open alert and restarts the normal streak
    await handler(await world.readings(T0 + 8 * MINUTE, [14, 5, 5]))
    [again] = await world.alerts()
    assert (again["status"], again["anomaly_count"], again["last_seen_at"]) == ("open", 4, T0 + 8 * MINUTE)
    # it opened at 12:02 (event time): the first normal reading 30 minutes later, with 3 in a row, resolves it
    await handler(await world.readings(T0 + 31 * MINUTE, [5, 5, 5]))
    [resolved] = await world.alerts()
    assert (resolved["status"], resolved["event_resolved_at"]) == ("resolved", T0 + 32 * MINUTE)
    assert await world.events_of(alert["id"]) == [(None, "open"), ("open", "resolved")]
    assert metric("sm_alerts_resolved_total", rule=rule) == before + 1
    # a new run of violations opens a new alert
    await handler(await world.readings(T0 + 40 * MINUTE, [20, 21, 22]))
    assert [a["status"] for a in await world.alerts()] == ["resolved", "open"]


async def test_acknowledged_alerts_also_resolve(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [11, 12, 13]))
    await world.conn.execute(
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE sensor_id = $1",
        world.sensor,
    )
    await handler(await world.readings(T0 + 3 * MINUTE, [5, 5]))
    [alert] = await world.alerts()
    assert alert["status"] == "resolved"
    assert (await world.events_of(alert["id"]))[-1] == ("acknowledged", "resolved")


async def test_rate_of_change(world, session_factory):  # noqa: F811
    await world.rule("rate_of_change", {"max_rate_per_min": 2.0}, open_after_k=2)
    handler = ReadingsHandler(session_factory)
    # slow drift (1 per minute) never matches, however far it goes
    await handler(await world.readings(T0, [10, 11, 12, 13, 14, 15]))
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 6 * MINUTE, [20, 25]))
    [alert] = await world.alerts()
    assert (alert["status"], alert["anomaly_count"]) == ("open", 2)
    # the rate is per minute: +5 over 10 minutes is normal; two normal rates resolve it
    await handler(await world.readings(T0 + 17 * MINUTE, [30, 30.5], step=10 * MINUTE))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


# --- units ----------------------------------------------------------------------------------------------------------
async def test_a_threshold_judges_only_sensors_whose_unit_converts(db, session_factory):  # noqa: F811
    """An ISO 10816 velocity limit never judges an acceleration sensor; a sensor in in/s gets the limit in in/s."""
    velocity = await World(db, unit="in/s").setup()
    accel = World(db, unit="g")
    accel.type = velocity.type  # same sensor type, another unit
    accel.asset_id = velocity.asset_id
    await accel.add_sensor(accel.sensor, unit="g")
    await velocity.rule("threshold", {"max": 7.1}, unit="mm/s")  # 7.1 mm/s = 0.2795 in/s
    handler = ReadingsHandler(session_factory)
    await handler(await velocity.readings(T0, [0.25, 0.29, 0.30, 0.31]))
    await handler(await velocity.readings(T0, [8.0, 9.0, 10.0, 11.0], sensor=accel.sensor))
    [alert] = await velocity.alerts()
    assert alert["anomaly_count"] == 3
    assert await velocity.alerts(accel.sensor) == []


# --- flat line ------------------------------------------------------------------------------------------------------
async def test_a_flat_line_opens_and_a_moving_signal_resolves_it(world, session_factory):  # noqa: F811
    await world.rule("flatline", {"tolerance": 0.0}, open_after_k=6, window_readings=6, resolve_after_m=2)
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [1.0, 1.1, 1.0, 1.2, 1.2, 1.2, 1.2, 1.2]))  # 5 repeats: not yet
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 8 * MINUTE, [1.2, 1.2]))
    [alert] = await world.alerts()
    assert alert["status"] == "open"
    await handler(await world.readings(T0 + 10 * MINUTE, [1.3, 1.1]))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


async def test_a_flat_line_must_outlast_the_longest_one_of_the_healthy_reference(world, session_factory):  # noqa: F811
    """A slow, quantised sensor repeats values while healthy: its reference's longest run (4) makes the rule wait
    for 13 equal readings (3 × 4 + 1) instead of 6."""
    await world.rule("flatline", {"tolerance": 0.0}, open_after_k=6, window_readings=6)
    await world.conn.execute(
        "INSERT INTO sensor_references (sensor_id, kind, started_at, reason, status, ready_at, readings, median, "
        "scale, longest_run) VALUES ($1, 'initial', $2, 'test', 'ready', $2, 100, 20.0, 0.1, 4)",
        world.sensor,
        T0 - timedelta(days=1),
    )
    handler = ReadingsHandler(session_factory)
    await handler(await world.readings(T0, [20.0] * 12))
    assert await world.alerts() == []
    await handler(await world.readings(T0 + 12 * MINUTE, [20.0]))
    assert [a["status"] for a in await world.alerts()] == ["open"]


# --- anomalies, scored batches ----------------------------------------------------------------------------------------
async def test_anomaly_rules_count_the_scored_anomalies_of_their_methods(world, session_factory):  # noqa: F811
    rule = await world.rule("anomaly_score", {"min_score": 5.0, "methods": ["robust_z"]}, window_readings=7)
    handler = ScoredHandler(session_factory)
    # a degradation anomaly and one below min_score do not count; two outliers among 7 readings do not suffice
    await handler(await world.scored(T0, [1, 9, 1, 9, 9], {1: 8.0, 3: 4.0, 4: 7.0}))
    await world.conn.execute(
        "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) VALUES ($1, $2, 1, 9, 'trend_ewma')",
        world.sensor,
        T0,
    )
    await handler(await world.scored(T0 + 5 * MINUTE, [1], {}))
    assert await world.alerts() == []
    await handler(await world.scored(T0 + 6 * MINUTE, [9], {0: 11.0}))
    [alert] = await world.alerts()
    assert (alert["rule"], alert["status"], alert["anomaly_count"], alert["peak_score"]) == (rule, "open", 3, 11.0)
    linked = await world.conn.fetchval(
        "SELECT count(*) FROM alert_observations WHERE alert_id = $1 AND anomaly_id IS NOT NULL", alert["id"]
    )
    assert linked == 3
    # scored normal readings resolve it (m = 2)
    await handler(await world.scored(T0 + 7 * MINUTE, [1, 1], {}))
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


async def test_duplicate_events_leave_the_same_state(world, session_factory):  # noqa: F811
    await world.rule("threshold", {"max": 10.0})
    await world.rule("anomaly_score", {"min_score": 1.0}, open_after_k=2)
    readings = ReadingsHandler(session_factory)
    scored = ScoredHandler(session_factory)
    batch = await world.readings(T0, [11, 12, 13, 14])
    first = await world.scored(T0 + 10 * MINUTE, [50], {0: 9.0})
    second = await world.scored(T0 + 11 * MINUTE, [51], {0: 9.5})
    for event, handler in ((batch, readings), (first, scored), (second, scored)):
        await handler(event)
    state = await world.state()
    assert [a["anomaly_count"] for a in state["alerts"]] == [4, 2]
    assert len(state["incidents"]) == 1  # both rules, one asset, one incident
    for event, handler in ((second, scored), (batch, readings), (first, scored), (batch, readings)):
        await handler(event)  # redeliveries, in another order
    assert await world.state() == state
    # after the alerts resolve, a late redelivery opens nothing new either
    closing = await world.scored(T0 + 12 * MINUTE, [1, 1], {})
    await readings(ReadingsIngested(**{**closing.model_dump(exclude={"event_id"}), "ingest_event_id": uuid.uuid4()}))
    await scored(closing)
    resolved = await world.state()
    assert [a["status"] for a in resolved["alerts"]] == ["resolved", "resolved"]
    for event, handler in ((batch, readings), (second, scored), (first, scored), (closing, scored)):
        await handler(event)
    assert await world.state() == resolved


async def test_a_replay_in_one_batch_equals_the_live_stream(db, session_factory):  # noqa: F811
    """Event time: the same readings sent one by one or back-filled in one batch give the same alerts."""
    values = [5, 11, 12, 13, 5, 5, 5, 14, 15, 16, 17, 5, 5, 5, 5]
    outcomes = []
    for split in (1, len(values)):
        world = await World(db).setup()
        await world.rule("threshold", {"max": 10.0}, resolve_after_m=3)
        handler = ReadingsHandler(session_factory)
        for i in range(0, len(values), split):
            await handler(await world.readings(T0 + i * MINUTE, values[i : i + split]))
        outcomes.append(
            [
                (a["status"], a["anomaly_count"], a["event_opened_at"], a["event_resolved_at"])
                for a in await world.alerts()
            ]
        )
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 2


# --- suppression ----------------------------------------------------------------------------------------------------
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
    await handler(await world.readings(T0 + 30 * MINUTE, [11, 12, 13]))
    assert [a["status"] for a in await world.alerts()] == ["open"]


# --- no data --------------------------------------------------------------------------------------------------------
async def test_no_data_timeout_follows_the_sensors_cadence(world, session_factory):  # noqa: F811
    """No ``no_data_minutes``: 10 × the median interval (at least 2 minutes). Ten-minute data is silent after
    100 minutes, not after a fixed quarter of an hour."""
    rule = await world.rule("no_data", {"interval_multiple": 10, "min_minutes": 2}, severity="medium")
    last = T0 + 10 * 10 * MINUTE
    await world.readings(T0, [1.0] * 11, step=10 * MINUTE, ingested_at=last)  # live: stored as they happened
    await check_no_data(session_factory, last + 30 * MINUTE)
    assert await world.alerts() == []
    await check_no_data(session_factory, last + 101 * MINUTE)
    await check_no_data(session_factory, last + 102 * MINUTE)
    [alert] = await world.alerts()
    assert (alert["rule"], alert["severity"], alert["status"]) == (rule, "medium", "open")
    assert alert["event_opened_at"] == last + 100 * MINUTE  # when the silence began to count
    await world.readings(last + 110 * MINUTE, [1.0], ingested_at=last + 110 * MINUTE)
    await check_no_data(session_factory, last + 111 * MINUTE)
    assert [a["status"] for a in await world.alerts()] == ["resolved"]


async def test_no_data_with_explicit_minutes(world, session_factory):  # noqa: F811
    await world.rule("no_data", {"no_data_minutes": 15}, severity="medium")
    await world.readings(T0, [1.0], ingested_at=T0)
    await check_no_data(session_factory, T0 + 10 * MINUTE)
    assert await world.alerts() == []
    await check_no_data(session_factory, T0 + 16 * MINUTE)
    assert [a["status"] for a in await world.alerts()] == ["open"]


async def test_back_filled_history_is_judged_in_event_time(world, session_factory):  # noqa: F811
    """History loaded today: the wall clock is years ahead, yet nothing is silent while the asset's sensors report
    together (a pause of the whole machine is a pause); one sensor that stops while its sibling goes on is."""
    await world.rule("no_data", {"interval_multiple": 10, "min_minutes": 2}, severity="medium")
    sibling = await world.add_sensor(f"sib-{world.tag}")
    old = datetime(2003, 10, 22, 12, 0, tzinfo=UTC)
    today = datetime.now(UTC)
    for sensor in (world.sensor, sibling):
        await world.readings(old, [1.0] * 20, step=10 * MINUTE, sensor=sensor, ingested_at=today)
        # a pause of six days of the whole asset, then both again
        await world.readings(old + timedelta(days=6), [1.0] * 20, step=10 * MINUTE, sensor=sensor, ingested_at=today)
    await check_no_data(session_factory, today)
    assert await world.alerts() == [] and await world.alerts(sibling) == []
    # the sibling reports for another day; this sensor does not
    await world.readings(
        old + timedelta(days=6, hours=4), [1.0] * 144, step=10 * MINUTE, sensor=sibling, ingested_at=today
    )
    await check_no_data(session_factory, today)
    [alert] = await world.alerts()
    assert alert["status"] == "open" and alert["event_opened_at"].year == 2003
    assert await world.alerts(sibling) == []
    [raised] = [r for r in await world.raised() if r["alert_id"] == alert["id"]]
    assert raised["backfill"] is True


async def test_no_data_is_suppressed_during_maintenance(world, session_factory):  # noqa: F811
    await world.rule("no_data", {"no_data_minutes": 15})
    await world.readings(T0, [1.0], ingested_at=T0)
    await world.conn.execute(
        "INSERT INTO maintenance_windows (asset_id, starts_at, ends_at) VALUES ($1, $2, $3)",
        world.asset_id,
        T0,
        T0 + timedelta(hours=1),
    )
    await check_no_data(session_factory, T0 + 30 * MINUTE)
    assert await world.alerts() == []
    # silence began at 15 minutes, inside the window: still suppressed at every later check
    await check_no_data(session_factory, T0 + 61 * MINUTE)
    assert await world.alerts() == []


# --- wiring ---------------------------------------------------------------------------------------------------------
def test_registry_subscribes_the_alerting_handlers(settings: Settings) -> None:
    bus = EventBus(None)
    subscriptions = register_handlers(bus, runtime_for(settings))
    pairs = {(s.name, s.event_type) for s in subscriptions}
    assert (READINGS_HANDLER_NAME, "ReadingsIngested") in pairs
    assert (SCORED_HANDLER_NAME, "ReadingsScored") in pairs
    assert not any(event_type == "AnomalyDetected" and name.startswith("alerting.") for name, event_type in pairs)


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


async def test_the_flat_line_length_raises_only_the_flat_line_rule(world, session_factory):  # noqa: F811
    """Regression (bench-alerts): a sensor's longest healthy run raised k of every reading rule, not just the
    flat-line rule, so a threshold needed 3 × the run matches."""
    await world.rule("flatline", {"tolerance": 0.0}, open_after_k=6, window_readings=6)
    rule = await world.rule("threshold", {"max": 30.0})  # 3 of the last 5
    await world.conn.execute(
        "INSERT INTO sensor_references (sensor_id, kind, started_at, reason, status, ready_at, readings, median, "
        "scale, longest_run) VALUES ($1, 'initial', $2, 'test', 'ready', $2, 100, 20.0, 0.1, 4)",
        world.sensor,
        T0 - timedelta(days=1),
    )
    await ReadingsHandler(session_factory)(await world.readings(T0, [31.0, 32.0, 33.0]))
    assert [(a["rule"], a["anomaly_count"]) for a in await world.alerts()] == [(rule, 3)]


@pytest.mark.parametrize("handler_kind", ["readings", "scored"])
async def test_a_later_batch_delivered_first_gives_the_in_order_alerts(db, session_factory, handler_kind):  # noqa: F811
    """The relay and the bus may deliver a sensor's batches out of order (a back-fill running ahead of the agents):
    the handler evaluates from where it left off, so the alerts are those of the in-order delivery."""
    values = [5, 11, 12, 13, 5, 5, 5, 14, 15, 16, 17, 5, 5, 5, 5]
    outcomes = []
    for order in ([0, 1, 2], [0, 2, 1]):
        world = await World(db).setup()
        if handler_kind == "readings":
            await world.rule("threshold", {"max": 10.0}, resolve_after_m=3)
            events = [await world.readings(T0 + 5 * i * MINUTE, values[5 * i : 5 * i + 5]) for i in range(3)]
            handler: Any = ReadingsHandler(session_factory)
        else:
            await world.rule("anomaly_score", {"min_score": 1.0}, resolve_after_m=3)
            events = [
                await world.scored(
                    T0 + 5 * i * MINUTE,
                    values[5 * i : 5 * i + 5],
                    {j: 8.0 for j, v in enumerate(values[5 * i : 5 * i + 5]) if v > 10},
                )
                for i in range(3)
            ]
            handler = ScoredHandler(session_factory)
        for i in order:
            await handler(events[i])
        outcomes.append(
            [
                (a["status"], a["anomaly_count"], a["event_opened_at"], a["event_resolved_at"])
                for a in await world.alerts()
            ]
        )
    assert outcomes[0] == outcomes[1]
    assert [o[0] for o in outcomes[0]] == ["resolved", "resolved"] and outcomes[0][0][2] == T0 + 3 * MINUTE
