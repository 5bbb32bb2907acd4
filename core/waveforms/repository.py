"""SQL of waveform sensors, snapshots and diagnoses (the only module of the package that talks SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Sensor
from core.waveforms.models import WaveformDiagnosis, WaveformSensor, WaveformSnapshot


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """A waveform sensor's configuration with the columns of its ``sensors`` row."""

    config: WaveformSensor
    asset_id: int | None
    unit: str | None
    type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A snapshot to diagnose, with its sensor's configuration."""

    snapshot: WaveformSnapshot
    sensor: SensorConfig


class WaveformRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- sensors ------------------------------------------------------------------------------------------------
    async def insert_config(self, values: dict[str, Any]) -> None:
        await self._session.execute(pg_insert(WaveformSensor).values(**values))

    async def config(self, sensor_id: str) -> SensorConfig | None:
        row = (
            await self._session.execute(
                select(WaveformSensor, Sensor.asset_id, Sensor.unit, Sensor.type, Sensor.created_at)
                .join(Sensor, Sensor.sensor_id == WaveformSensor.sensor_id)
                .where(WaveformSensor.sensor_id == sensor_id)
            )
        ).one_or_none()
        return None if row is None else SensorConfig(row[0], row[1], row[2], row[3], row[4])

    # --- snapshots ----------------------------------------------------------------------------------------------
    async def insert_snapshot(self, values: dict[str, Any]) -> int | None:
        """Store a snapshot; None when one of the sensor at that timestamp exists."""
        stmt = (
            pg_insert(WaveformSnapshot)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[WaveformSnapshot.sensor_id, WaveformSnapshot.timestamp])
            .returning(WaveformSnapshot.id)
        )
        return await self._session.scalar(stmt)

    async def snapshot_at(self, sensor_id: str, timestamp: datetime) -> WaveformSnapshot | None:
        return await self._session.scalar(
            select(WaveformSnapshot)
            .where(WaveformSnapshot.sensor_id == sensor_id, WaveformSnapshot.timestamp == timestamp)
            .execution_options(populate_existing=True)
        )

    async def stored_snapshot(self, snapshot_id: int) -> StoredSnapshot | None:
        snapshot = await self._session.get(WaveformSnapshot, snapshot_id, populate_existing=True)
        if snapshot is None:
            return None
        sensor = await self.config(snapshot.sensor_id)
        return None if sensor is None else StoredSnapshot(snapshot, sensor)

    async def purge_samples(self, sensor_id: str, before: datetime, *, limit: int) -> int:
        """Drop the samples (keep the row, its features and diagnoses) of up to ``limit`` snapshots of the sensor
        older than ``before`` that have been diagnosed (a back-filled snapshot keeps its samples until then)."""
        diagnosed = select(WaveformDiagnosis.id).where(WaveformDiagnosis.snapshot_id == WaveformSnapshot.id)
        oldest = (
            select(WaveformSnapshot.id)
            .where(
                WaveformSnapshot.sensor_id == sensor_id,
                WaveformSnapshot.timestamp < before,
                WaveformSnapshot.samples.is_not(None),
                diagnosed.exists(),
            )
            .order_by(WaveformSnapshot.timestamp)
            .limit(limit)
        )
        result = await self._session.execute(
            update(WaveformSnapshot)
            .where(WaveformSnapshot.id.in_(oldest.scalar_subquery()))
            .values(samples=None)
            .returning(WaveformSnapshot.id)
        )
        return len(result.all())

    async def delete_snapshots(self, sensor_id: str, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` snapshot rows of the sensor older than ``before`` (their diagnoses stay)."""
        oldest = (
            select(WaveformSnapshot.id)
            .where(WaveformSnapshot.sensor_id == sensor_id, WaveformSnapshot.timestamp < before)
            .order_by(WaveformSnapshot.timestamp)
            .limit(limit)
        )
        result = await self._session.execute(
            delete(WaveformSnapshot)
            .where(WaveformSnapshot.id.in_(oldest.scalar_subquery()))
            .returning(WaveformSnapshot.id)
        )
        return len(result.all())

    # --- diagnoses ----------------------------------------------------------------------------------------------
    async def diagnosis_of_snapshot(self, snapshot_id: int) -> WaveformDiagnosis | None:
        return await self._session.scalar(select(WaveformDiagnosis).where(WaveformDiagnosis.snapshot_id == snapshot_id))

    async def insert_diagnosis(self, values: dict[str, Any]) -> int | None:
        """Store a diagnosis; None when the snapshot has one already (a redelivered event)."""
        stmt = (
            pg_insert(WaveformDiagnosis)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[WaveformDiagnosis.snapshot_id])
            .returning(WaveformDiagnosis.id)
        )
        return await self._session.scalar(stmt)

    async def set_alert(self, diagnosis_id: int, alert_id: int) -> None:
        await self._session.execute(
            update(WaveformDiagnosis).where(WaveformDiagnosis.id == diagnosis_id).values(alert_id=alert_id)
        )

    async def latest_faults(self, sensor_id: str, until: datetime, count: int) -> list[str]:
        """The faults of the sensor's last ``count`` diagnoses at or before ``until`` (newest first)."""
        rows = await self._session.scalars(
            select(WaveformDiagnosis.fault)
            .where(WaveformDiagnosis.sensor_id == sensor_id, WaveformDiagnosis.timestamp <= until)
            .order_by(WaveformDiagnosis.timestamp.desc(), WaveformDiagnosis.id.desc())
            .limit(count)
        )
        return list(rows)

    async def diagnoses(
        self, sensor_id: str, *, limit: int, offset: int, fault: str | None = None
    ) -> tuple[list[WaveformDiagnosis], int]:
        """A page of the sensor's diagnoses, newest first, and how many there are."""
        where = [WaveformDiagnosis.sensor_id == sensor_id]
        if fault is not None:
            where.append(WaveformDiagnosis.fault == fault)
        total = await self._session.scalar(select(func.count()).select_from(WaveformDiagnosis).where(*where))
        rows = await self._session.scalars(
            select(WaveformDiagnosis)
            .where(*where)
            .order_by(WaveformDiagnosis.timestamp.desc(), WaveformDiagnosis.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), int(total or 0)

    async def latest_for_alert(self, alert_id: int) -> WaveformDiagnosis | None:
        return await self._session.scalar(
            select(WaveformDiagnosis)
            .where(WaveformDiagnosis.alert_id == alert_id)
            .order_by(WaveformDiagnosis.timestamp.desc(), WaveformDiagnosis.id.desc())
            .limit(1)
        )


__all__ = ["SensorConfig", "StoredSnapshot", "WaveformRepository"]
