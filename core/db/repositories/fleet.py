"""Assets and sensors: idempotent upserts (SQL only here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Asset, Sensor


class AssetLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def site(self) -> str | None: ...
    @property
    def kind(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SensorUpsert:
    sensor_id: str
    asset_id: int | None
    type: str
    unit: str | None
    location: str | None
    status: str = "active"


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """How many rows were created, changed and left alone by an upsert."""

    created: int
    updated: int
    unchanged: int


class FleetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert_assets(self, assets: Sequence[AssetLike]) -> tuple[dict[str, int], UpsertResult]:
        """Insert assets by their unique ``name`` or update ``site``/``kind``; return ``{name: id}``.

        Rows whose values are already current are not rewritten (no dead tuples on a re-run).
        """
        if not assets:
            return {}, UpsertResult(0, 0, 0)
        stmt = insert(Asset).values([{"name": a.name, "site": a.site, "kind": a.kind} for a in assets])
        stmt = stmt.on_conflict_do_update(
            index_elements=[Asset.name],
            set_={"site": stmt.excluded.site, "kind": stmt.excluded.kind},
            where=or_(
                Asset.site.is_distinct_from(stmt.excluded.site),
                Asset.kind.is_distinct_from(stmt.excluded.kind),
            ),
        ).returning(Asset.name, Asset.id, literal_column("xmax = 0").label("created"))
        rows = (await self._session.execute(stmt)).all()
        ids = {row.name: row.id for row in rows}
        missing = [a.name for a in assets if a.name not in ids]
        if missing:  # unchanged rows are not returned by a conditional DO UPDATE
            found = await self._session.execute(select(Asset.name, Asset.id).where(Asset.name.in_(missing)))
            ids.update({row.name: row.id for row in found})
        created = sum(1 for row in rows if row.created)
        return ids, UpsertResult(created, len(rows) - created, len(assets) - len(rows))

    async def upsert_sensors(self, sensors: Sequence[SensorUpsert]) -> UpsertResult:
        """Insert sensors by ``sensor_id`` or update asset, type, unit and location.

        ``status`` is only set on creation (an operator may have retired a sensor since) and ``created_at``
        is never touched.
        """
        if not sensors:
            return UpsertResult(0, 0, 0)
        stmt = insert(Sensor).values(
            [
                {
                    "sensor_id": s.sensor_id,
                    "asset_id": s.asset_id,
                    "type": s.type,
                    "unit": s.unit,
                    "location": s.location,
                    "status": s.status,
                }
                for s in sensors
            ]
        )
        updated_columns = ("asset_id", "type", "unit", "location")
        stmt = stmt.on_conflict_do_update(
            index_elements=[Sensor.sensor_id],
            set_={c: stmt.excluded[c] for c in updated_columns},
            where=or_(*(Sensor.__table__.c[c].is_distinct_from(stmt.excluded[c]) for c in updated_columns)),
        ).returning(Sensor.sensor_id, literal_column("xmax = 0").label("created"))
        rows = (await self._session.execute(stmt)).all()
        created = sum(1 for row in rows if row.created)
        return UpsertResult(created, len(rows) - created, len(sensors) - len(rows))

    async def sensor_types(self, sensor_ids: Sequence[str]) -> Mapping[str, str]:
        """``{sensor_id: type}`` of the given sensors that exist."""
        rows = await self._session.execute(
            select(Sensor.sensor_id, Sensor.type).where(Sensor.sensor_id.in_(list(sensor_ids)))
        )
        return {row.sensor_id: row.type for row in rows}
