"""Healthy references of sensors (``sensor_references``) and the readings they are learned from (SQL only here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.anomaly.reference_models import SensorReference
from core.fleet.models import Sensor
from core.readings.models import SensorReading

_CURRENT_SQL = text(
    """
    SELECT DISTINCT ON (r.sensor_id) r.id, r.sensor_id, r.kind, r.started_at, r.status, r.ready_at, r.readings,
           r.median, r.scale, r.longest_run, r.previous_median
    FROM sensor_references r
    WHERE r.sensor_id = ANY(CAST(:ids AS text[]))
    ORDER BY r.sensor_id, r.started_at DESC, r.id DESC
    """
)

_LAST_READING_SQL = text(
    """
    SELECT s.sensor_id, (SELECT max(x.timestamp) FROM sensor_readings x WHERE x.sensor_id = s.sensor_id)
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    """
)

_FIRST_READING_SQL = text(
    """
    SELECT s.sensor_id, (SELECT min(x.timestamp) FROM sensor_readings x WHERE x.sensor_id = s.sensor_id)
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    """
)


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    id: int
    sensor_id: str
    kind: str
    started_at: datetime
    status: str
    ready_at: datetime | None
    readings: int | None
    median: float | None
    scale: float | None
    longest_run: int | None
    previous_median: float | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Readings a learning reference has so far: how many, and their first and last timestamps."""

    count: int
    first: datetime | None
    last: datetime | None


class ReferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def current(self, sensor_ids: Sequence[str]) -> dict[str, ReferenceRow]:
        """Per sensor, its newest reference (any status)."""
        if not sensor_ids:
            return {}
        rows = await self._session.execute(_CURRENT_SQL, {"ids": list(sensor_ids)})
        return {row.sensor_id: ReferenceRow(*row) for row in rows}

    async def first_readings(self, sensor_ids: Sequence[str]) -> dict[str, datetime | None]:
        if not sensor_ids:
            return {}
        rows = await self._session.execute(_FIRST_READING_SQL, {"ids": list(sensor_ids)})
        return dict(rows.all())

    async def start(
        self,
        sensor_id: str,
        *,
        kind: str,
        started_at: datetime,
        reason: str,
        previous_median: float | None = None,
    ) -> bool:
        """A new learning reference (natural key: sensor and start; a repeat inserts nothing). Answers whether it
        was inserted."""
        row = (
            await self._session.execute(
                insert(SensorReference)
                .values(
                    sensor_id=sensor_id,
                    kind=kind,
                    started_at=started_at,
                    reason=reason,
                    status="learning",
                    previous_median=previous_median,
                )
                .on_conflict_do_nothing(index_elements=["sensor_id", "started_at"])
                .returning(SensorReference.id)
            )
        ).first()
        return row is not None

    async def start_for_asset(
        self, asset_id: int | None, sensor_id: str | None, *, kind: str, at: datetime, reason: str
    ) -> list[str]:
        """Learning references for every sensor of ``asset_id`` (or just ``sensor_id`` without an asset), from
        the readings after its latest stored one (event time: a sensor whose data is history re-learns from
        its next reading, not from today's wall clock); ``at`` for a sensor without readings."""
        if asset_id is not None:
            sensors = list(await self._session.scalars(select(Sensor.sensor_id).where(Sensor.asset_id == asset_id)))
        else:
            sensors = [sensor_id] if sensor_id is not None else []
        current = await self.current(sensors)
        rows = (await self._session.execute(_LAST_READING_SQL, {"ids": sensors})).all()
        latest: dict[str, datetime | None] = dict(rows)
        started = []
        for sid in sorted(sensors):
            held = current.get(sid)
            previous = held.median if held is not None and held.status == "ready" else None
            last = latest.get(sid)
            start = last + timedelta(microseconds=1) if last is not None else at
            if await self.start(sid, kind=kind, started_at=start, reason=reason, previous_median=previous):
                started.append(sid)
        return started

    async def progress(self, sensor_id: str, since: datetime, until: datetime) -> Progress:
        row = (
            await self._session.execute(
                select(func.count(), func.min(SensorReading.timestamp), func.max(SensorReading.timestamp)).where(
                    SensorReading.sensor_id == sensor_id,
                    SensorReading.timestamp >= since,
                    SensorReading.timestamp <= until,
                )
            )
        ).one()
        return Progress(int(row[0]), row[1], row[2])

    async def readings(
        self, sensor_id: str, since: datetime, until: datetime, limit: int
    ) -> list[tuple[datetime, float]]:
        """The sensor's readings in ``[since, until]``, oldest first, at most ``limit``."""
        rows = await self._session.execute(
            select(SensorReading.timestamp, SensorReading.value)
            .where(
                SensorReading.sensor_id == sensor_id,
                SensorReading.timestamp >= since,
                SensorReading.timestamp <= until,
            )
            .order_by(SensorReading.timestamp)
            .limit(limit)
        )
        return [(t, float(v)) for t, v in rows]

    async def learned(
        self,
        reference_id: int,
        *,
        ready_at: datetime,
        readings: int,
        median: float,
        scale: float,
        longest_run: int,
    ) -> bool:
        """Mark a learning reference ready (only once) and supersede the sensor's older ones."""
        row = (
            await self._session.execute(
                update(SensorReference)
                .where(SensorReference.id == reference_id, SensorReference.status == "learning")
                .values(
                    status="ready",
                    ready_at=ready_at,
                    readings=readings,
                    median=median,
                    scale=scale,
                    longest_run=longest_run,
                )
                .returning(SensorReference.sensor_id, SensorReference.started_at)
                .execution_options(synchronize_session=False)
            )
        ).first()
        if row is None:
            return False
        older = (SensorReference.sensor_id == row[0], SensorReference.started_at < row[1])
        # An older reference still learning never became one (nothing was judged against it): it goes. A
        # superseded row must carry what it had learned (ck_sensor_references_learned).
        await self._session.execute(
            delete(SensorReference)
            .where(*older, SensorReference.status == "learning")
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(
            update(SensorReference)
            .where(*older, SensorReference.status == "ready")
            .values(status="superseded")
            .execution_options(synchronize_session=False)
        )
        return True

    async def history(self, sensor_id: str, limit: int = 50) -> Sequence[SensorReference]:
        return (
            await self._session.scalars(
                select(SensorReference)
                .where(SensorReference.sensor_id == sensor_id)
                .order_by(SensorReference.started_at.desc(), SensorReference.id.desc())
                .limit(limit)
            )
        ).all()


__all__ = ["Progress", "ReferenceRepository", "ReferenceRow"]
