"""Drift check results (table ``drift_checks``; SQL only here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.ml.drift.models import DriftCheck


class DriftCheckRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, **values: Any) -> int | None:
        """Insert one check; None when a check of the same (sensor_id, recent_end) exists already."""
        statement = (
            insert(DriftCheck)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["sensor_id", "recent_end"])
            .returning(DriftCheck.id)
        )
        return await self.session.scalar(statement)

    async def previous(self, sensor_id: str, recent_end: datetime) -> DriftCheck | None:
        """The sensor's latest check whose recent window ends before ``recent_end``."""
        query = (
            select(DriftCheck)
            .where(DriftCheck.sensor_id == sensor_id, DriftCheck.recent_end < recent_end)
            .order_by(DriftCheck.recent_end.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def mark_retrain_requested(self, check_id: int) -> None:
        row = await self.session.get(DriftCheck, check_id)
        if row is not None:
            row.retrain_requested = True
            await self.session.flush()

    async def latest_per_sensor(
        self, sensor_type: str | None = None, drifted: bool | None = None
    ) -> list[DriftCheck]:
        """The latest check of every sensor (by recent_end), optionally filtered, by sensor id."""
        query = (
            select(DriftCheck)
            .ext(distinct_on(DriftCheck.sensor_id))
            .order_by(DriftCheck.sensor_id, DriftCheck.recent_end.desc(), DriftCheck.id.desc())
        )
        if sensor_type is not None:
            query = query.where(DriftCheck.sensor_type == sensor_type)
        rows = list(await self.session.scalars(query))
        if drifted is not None:
            rows = [row for row in rows if row.drifted is drifted]
        return rows


__all__ = ["DriftCheckRepository"]
