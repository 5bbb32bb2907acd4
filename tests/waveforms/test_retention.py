"""Retention of snapshots, run by the ingest of the sensor's next snapshot: samples of diagnosed snapshots older than
30 days are dropped (row, features and diagnosis stay); an undiagnosed one keeps its samples; rows older than
SM_RETENTION_DAYS are deleted while their diagnoses stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.events.types import WaveformIngested
from core.waveforms.agent import DiagnoseSnapshot
from core.waveforms.schemas import SnapshotAccepted, SnapshotCreate
from core.waveforms.service import WaveformService
from tests.api.auth_support import bootstrap_headers, serve_app
from tests.support.db import session_factory_for
from tests.support.maintenance import connect
from tests.waveforms.support import make_waveform_sensor, snapshot


@pytest.fixture
async def factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings, pool_size=2) as factory:
        yield factory


async def ingest(
    factory: async_sessionmaker[AsyncSession], settings: Settings, sensor_id: str, at: datetime, now: datetime
) -> SnapshotAccepted:
    """Ingest a snapshot as of ``now`` (the service's clock), outside the API so that no agent diagnoses it."""
    body = SnapshotCreate.model_validate(snapshot(sensor_id, at, "none", seed=int(at.timestamp()) % 1000))
    async with unit_of_work(factory) as session:
        return await WaveformService(session).ingest(body, settings, now=now)


async def test_samples_then_rows_age_out(settings: Settings, factory: async_sessionmaker[AsyncSession]) -> None:
    async with serve_app(settings) as (_, client):
        client.headers.update(bootstrap_headers(settings))
        _, sensor_id = await make_waveform_sensor(client)
    now = datetime.now(UTC).replace(microsecond=0)
    very_old = now - timedelta(days=settings.retention_days + 1)
    old = now - timedelta(days=settings.waveform_samples_retention_days + 1)
    handler = DiagnoseSnapshot(factory)

    async def diagnose(accepted: SnapshotAccepted) -> None:
        event = WaveformIngested(
            snapshot_id=accepted.snapshot_id,
            sensor_id=sensor_id,
            timestamp=accepted.timestamp,
            sample_count=accepted.sample_count,
        )
        assert (await handler.handle(event)) is not None

    first = await ingest(factory, settings, sensor_id, very_old, now=very_old)  # accepted as of its own time
    await diagnose(first)
    second = await ingest(factory, settings, sensor_id, old, now=old)
    await diagnose(second)
    undiagnosed = await ingest(factory, settings, sensor_id, old + timedelta(seconds=1), now=now)

    await ingest(factory, settings, sensor_id, now - timedelta(seconds=5), now=now)  # runs retention
    async with connect(settings) as conn:
        rows = {
            r["id"]: r["has_samples"]
            for r in await conn.fetch(
                "SELECT id, samples IS NOT NULL AS has_samples FROM waveform_snapshots WHERE sensor_id = $1", sensor_id
            )
        }
        diagnoses = await conn.fetch(
            "SELECT snapshot_id, timestamp FROM waveform_diagnoses WHERE sensor_id = $1 ORDER BY timestamp", sensor_id
        )
    assert first.snapshot_id not in rows  # older than SM_RETENTION_DAYS: deleted …
    assert [d["snapshot_id"] for d in diagnoses] == [None, second.snapshot_id]  # … its diagnosis kept
    assert rows[second.snapshot_id] is False  # diagnosed, older than 30 days: samples dropped, row kept
    assert rows[undiagnosed.snapshot_id] is True  # not diagnosed yet: samples kept
    assert len(rows) == 3
