"""Reads of the RUL estimate of an asset (SQL only here): the asset, its sensors, and its last complete cycles.

A **cycle** of an asset is a timestamp at which every channel the model reads has a reading (one reading per
channel sensor, all stamped with the cycle's time — how a gateway sends one C-MAPSS row). Timestamps at which a
channel is missing are not cycles and are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Asset, Sensor

_CYCLES_SQL = text(
    """
    WITH complete AS (
        SELECT r.timestamp
        FROM sensor_readings r
        WHERE r.sensor_id IN :sensor_ids
        GROUP BY r.timestamp
        HAVING count(DISTINCT r.sensor_id) = :n_sensors
    ), recent AS (
        SELECT c.timestamp, count(*) OVER () AS total
        FROM complete c
        ORDER BY c.timestamp DESC
        LIMIT :limit
    )
    SELECT r.sensor_id, r.timestamp, r.value, recent.total
    FROM sensor_readings r
    JOIN recent ON recent.timestamp = r.timestamp
    WHERE r.sensor_id IN :sensor_ids
    ORDER BY r.timestamp, r.sensor_id
    """
).bindparams(bindparam("sensor_ids", expanding=True))


@dataclass(frozen=True)
class AssetCycles:
    """The last complete cycles of an asset: ``total`` cycles stored, ``rows`` = (sensor_id, timestamp, value) of
    the last ``min(total, limit)`` of them, oldest first."""

    total: int
    rows: list[tuple[str, datetime, float]]


class RulRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def asset_kind(self, asset_id: int) -> tuple[bool, str | None]:
        """``(exists, kind)`` of the asset."""
        row = (await self.session.execute(select(Asset.id, Asset.kind).where(Asset.id == asset_id))).first()
        return (False, None) if row is None else (True, row[1])

    async def sensors(self, asset_id: int) -> list[tuple[str, str]]:
        """``(sensor_id, type)`` of the asset's sensors that are not retired, by id."""
        query = (
            select(Sensor.sensor_id, Sensor.type)
            .where(Sensor.asset_id == asset_id, Sensor.status != "retired")
            .order_by(Sensor.sensor_id)
        )
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    async def has_sensor_of_types(self, asset_id: int, types: Sequence[str]) -> bool:
        """Whether the asset has a (not retired) sensor whose type is one of ``types`` (case-insensitive)."""
        lowered = [t.lower() for t in types]
        query = (
            select(func.count())
            .select_from(Sensor)
            .where(Sensor.asset_id == asset_id, Sensor.status != "retired", func.lower(Sensor.type).in_(lowered))
        )
        return bool(await self.session.scalar(query))

    async def last_cycles(self, sensor_ids: Sequence[str], limit: int) -> AssetCycles:
        """The asset's last ``limit`` complete cycles over ``sensor_ids`` (module docstring) and their total."""
        if not sensor_ids:
            return AssetCycles(0, [])
        result = await self.session.execute(
            _CYCLES_SQL, {"sensor_ids": list(sensor_ids), "n_sensors": len(set(sensor_ids)), "limit": limit}
        )
        rows = result.all()
        total = int(rows[0].total) if rows else 0
        return AssetCycles(total, [(r.sensor_id, r.timestamp, float(r.value)) for r in rows])


__all__ = ["AssetCycles", "RulRepository"]
