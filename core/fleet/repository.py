"""Assets and sensors: idempotent upserts for ingest and the seed, single-row management for the fleet API (SQL
only here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Boolean, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Asset, Sensor


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
        upsert = stmt.on_conflict_do_update(
            index_elements=[Asset.name],
            set_={"site": stmt.excluded.site, "kind": stmt.excluded.kind},
            where=or_(
                Asset.site.is_distinct_from(stmt.excluded.site),
                Asset.kind.is_distinct_from(stmt.excluded.kind),
            ),
        ).returning(Asset.name, Asset.id, literal_column("xmax = 0", Boolean).label("created"))
        rows = (await self._session.execute(upsert)).all()
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
        upsert = stmt.on_conflict_do_update(
            index_elements=[Sensor.sensor_id],
            set_={c: stmt.excluded[c] for c in updated_columns},
            where=or_(*(Sensor.__table__.c[c].is_distinct_from(stmt.excluded[c]) for c in updated_columns)),
        ).returning(Sensor.sensor_id, literal_column("xmax = 0", Boolean).label("created"))
        rows = (await self._session.execute(upsert)).all()
        created = sum(1 for row in rows if row.created)
        return UpsertResult(created, len(rows) - created, len(sensors) - len(rows))

    async def sensor_types(self, sensor_ids: Sequence[str]) -> Mapping[str, str]:
        """``{sensor_id: type}`` of the given sensors that exist."""
        rows = await self._session.execute(
            select(Sensor.sensor_id, Sensor.type).where(Sensor.sensor_id.in_(list(sensor_ids)))
        )
        return {row.sensor_id: row.type for row in rows}

    # --- single-row management (fleet API) -------------------------------------------------------------------
    async def get_asset(self, asset_id: int) -> Asset | None:
        return await self._session.get(Asset, asset_id)

    async def asset_name_taken(self, name: str, *, other_than: int | None = None) -> bool:
        stmt = select(Asset.id).where(Asset.name == name)
        if other_than is not None:
            stmt = stmt.where(Asset.id != other_than)
        return (await self._session.execute(stmt.limit(1))).first() is not None

    async def create_asset(self, *, name: str, site: str | None, kind: str | None) -> Asset | None:
        """The new asset, or None when the name is taken (``ON CONFLICT DO NOTHING``: no error under races)."""
        stmt = (
            insert(Asset)
            .values(name=name, site=site, kind=kind)
            .on_conflict_do_nothing(index_elements=[Asset.name])
            .returning(Asset)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def update_asset(self, asset_id: int, values: dict[str, Any]) -> Asset | None:
        stmt = update(Asset).where(Asset.id == asset_id).values(**values).returning(Asset)
        options = {"synchronize_session": False, "populate_existing": True}  # refresh a loaded instance
        return (await self._session.execute(stmt, execution_options=options)).scalar_one_or_none()

    async def create_sensor(self, sensor: SensorUpsert) -> bool:
        """Insert a sensor; False when ``sensor_id`` exists already."""
        stmt = (
            insert(Sensor)
            .values(
                sensor_id=sensor.sensor_id,
                asset_id=sensor.asset_id,
                type=sensor.type,
                unit=sensor.unit,
                location=sensor.location,
                status=sensor.status,
            )
            .on_conflict_do_nothing(index_elements=[Sensor.sensor_id])
            .returning(Sensor.sensor_id)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def update_sensor(self, sensor_id: str, values: dict[str, Any]) -> bool:
        """Change the given columns of a sensor; False when it does not exist."""
        stmt = (
            update(Sensor).where(Sensor.sensor_id == sensor_id).values(**values).returning(Sensor.sensor_id)
        )
        result = await self._session.execute(stmt, execution_options={"synchronize_session": False})
        return result.first() is not None
