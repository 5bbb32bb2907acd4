"""core/ml/drift/agent.py against a real migrated database: a shifted sensor starts a drift episode that emits
DriftDetected once (outbox), an unshifted one and an autocorrelated but stationary one do not, re-runs and a
lasting drift emit nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest
from scipy import stats

from core.config import Settings, to_libpq_url
from core.ml.drift.agent import DriftChecker
from tests.support.events import (  # noqa: F401 - fixtures
    events_database_url,
    events_settings,
    session_factory,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


@pytest.fixture
async def db(events_database_url: str) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    conn = await asyncpg.connect(to_libpq_url(events_database_url))
    await conn.execute("DELETE FROM drift_checks; DELETE FROM outbox")
    await conn.execute("DELETE FROM sensors WHERE sensor_id LIKE 'drift-%'")
    try:
        yield conn
    finally:
        await conn.close()


async def add_sensor(
    db: asyncpg.Connection, sensor_id: str, values: np.ndarray, start: datetime = T0
) -> None:
    await db.execute(
        "INSERT INTO sensors (sensor_id, type) VALUES ($1, 'temperature') ON CONFLICT DO NOTHING", sensor_id
    )
    rows = [(start + i * STEP, sensor_id, float(v)) for i, v in enumerate(values)]
    await db.executemany(
        "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3)", rows
    )


def checker_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"drift_recent_h": 6.0, "drift_reference_offset_h": 24.0})


async def outbox(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT event_type, payload FROM outbox WHERE event_type = 'DriftDetected'")


def autocorrelated(n: int, seed: int = 6) -> np.ndarray:
    """A stationary sensor like the demo fleet's: daily cycle plus AR(1) noise (φ = 0.9, σ = 0.5)."""
    rng = np.random.default_rng(seed)
    noise = np.empty(n)
    noise[0] = rng.normal(0.0, 0.5)
    for t in range(1, n):
        noise[t] = 0.9 * noise[t - 1] + rng.normal(0.0, 0.5 * np.sqrt(1 - 0.81))
    return 20.0 + np.cos(2 * np.pi * np.arange(n) / 288) + noise


async def test_drift_agent_emits_once_per_episode(db, events_settings, session_factory) -> None:  # noqa: F811
    rng = np.random.default_rng(3)
    n = 30 * 12  # 30 h of 5-minute readings
    steady = rng.normal(20.0, 0.5, n)
    shifted = steady.copy()
    shifted[-72:] += 3.0  # the last 6 h moved by 6 standard deviations
    wandering = autocorrelated(n)
    # the independent-samples KS test would call this stationary series drifted (the false alarm fixed here)
    assert stats.ks_2samp(wandering[-72 - 288 : -288], wandering[-72:]).pvalue < 1e-4
    await add_sensor(db, "drift-steady", steady)
    await add_sensor(db, "drift-shifted", shifted)
    await add_sensor(db, "drift-wandering", wandering)
    checker = DriftChecker(session_factory, checker_settings(events_settings))

    first = await checker.run_once()
    by_sensor = {r.sensor_id: r for r in first.checked}
    assert by_sensor["drift-steady"].stats is not None and not by_sensor["drift-steady"].stats.drifted
    assert by_sensor["drift-shifted"].stats is not None and by_sensor["drift-shifted"].stats.drifted
    assert by_sensor["drift-shifted"].stats.recent_count == 72
    wander = by_sensor["drift-wandering"].stats
    assert wander is not None and not wander.drifted and wander.autocorrelation > 0.5
    assert [e.sensor_id for e in first.emitted] == ["drift-shifted"]
    assert first.emitted[0].model_names == ["anomaly_temperature", "forecast_temperature"]
    events = await outbox(db)
    assert len(events) == 1 and events[0]["payload"]
    rows = await db.fetch("SELECT sensor_id, drifted, retrain_requested FROM drift_checks ORDER BY sensor_id")
    assert [tuple(r) for r in rows] == [
        ("drift-shifted", True, True),
        ("drift-steady", False, False),
        ("drift-wandering", False, False),
    ]

    # the same data again (redelivery, a second process): nothing stored, nothing emitted
    again = await checker.run_once()
    assert again.stored == 0 and again.emitted == []
    assert len(await outbox(db)) == 1

    # the drift lasts: new readings, a new check is stored, but the episode was already reported
    await add_sensor(db, "drift-shifted", rng.normal(23.0, 0.5, 6), start=T0 + n * STEP)
    lasting = await checker.run_once()
    assert lasting.stored == 1 and lasting.emitted == []
    assert len(await outbox(db)) == 1
    assert await db.fetchval("SELECT count(*) FROM drift_checks WHERE sensor_id = 'drift-shifted'") == 2


async def test_too_few_readings_are_skipped_not_stored(db, events_settings, session_factory) -> None:  # noqa: F811
    await add_sensor(db, "drift-short", np.full(20, 1.0))
    outcome = await DriftChecker(session_factory, checker_settings(events_settings)).run_once()
    [short] = [r for r in outcome.checked if r.sensor_id == "drift-short"]
    assert short.stats is None and "not enough readings" in (short.skipped or "")
    assert await db.fetchval("SELECT count(*) FROM drift_checks") == 0


async def test_checker_disabled_with_zero_interval(events_settings, session_factory) -> None:  # noqa: F811
    off = DriftChecker(session_factory, events_settings.model_copy(update={"drift_check_interval_s": 0}))
    off.start()
    assert off._task is None
    on = DriftChecker(session_factory, events_settings.model_copy(update={"drift_check_interval_s": 3600}))
    on.start()
    assert on._task is not None and not on._task.done()
    await on.stop()
    assert on._task is None
