"""Fleet management: create and change assets, register sensors and link them to assets.

Domain errors only (404 unknown asset/sensor, 409 name or id taken, 422 invalid change); the caller's unit of
work commits.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core import units
from core.errors import Conflict, NotFound, ValidationFailed
from core.fleet.models import Asset
from core.fleet.repository import FleetRepository, SensorUpsert
from core.fleet.schemas import AssetCreate, AssetUpdate, SensorCreate, SensorUpdate
from core.fleet.types import canonical_unit


def _unit(unit: str | None, sensor_type: str | None) -> str | None:
    """A sensor's unit in the platform's spelling. Refused: a unit the platform does not know (readings in another
    unit are converted to the sensor's, which needs one it understands; '' is dimensionless), and a commonly
    confused spelling (``C``, ``F``, ``G``) that does not fit the type (a temperature in coulombs). Other
    combinations are allowed: a vibration sensor may measure acceleration in g; unit-aware rules judge it
    accordingly."""
    if unit is None:
        return None
    normal = units.normalize(unit)
    extra = units.hint(normal)
    if normal and not units.is_known(normal):
        raise ValidationFailed.at(
            ["body", "unit"], f"unit {unit!r} is not a unit the platform knows" + (f" ({extra})" if extra else "")
        )
    canonical = canonical_unit(sensor_type)
    if extra and canonical is not None and not units.compatible(normal, canonical):
        raise ValidationFailed.at(["body", "unit"], f"unit {unit!r} does not fit a {sensor_type} sensor ({extra})")
    return normal


class FleetService:
    def __init__(self, session: AsyncSession) -> None:
        self._repo = FleetRepository(session)

    async def asset(self, asset_id: int) -> Asset:
        asset = await self._repo.get_asset(asset_id)
        if asset is None:
            raise NotFound(f"asset {asset_id} does not exist")
        return asset

    async def create_asset(self, body: AssetCreate) -> Asset:
        asset = await self._repo.create_asset(name=body.name, site=body.site, kind=body.kind)
        if asset is None:
            raise Conflict(f"an asset named {body.name!r} exists already")
        return asset

    async def update_asset(self, asset_id: int, body: AssetUpdate) -> Asset:
        values = body.model_dump(exclude_unset=True)
        if "name" in values and values["name"] is None:
            raise ValidationFailed.at(["body", "name"], "an asset's name cannot be removed")
        current = await self.asset(asset_id)
        if not values:
            return current
        if "name" in values and await self._repo.asset_name_taken(values["name"], other_than=asset_id):
            raise Conflict(f"an asset named {values['name']!r} exists already")
        updated = await self._repo.update_asset(asset_id, values)
        if updated is None:  # deleted concurrently
            raise NotFound(f"asset {asset_id} does not exist")
        return updated

    async def _check_asset(self, asset_id: int | None) -> None:
        if asset_id is not None and await self._repo.get_asset(asset_id) is None:
            raise ValidationFailed.at(["body", "asset_id"], f"asset {asset_id} does not exist")

    async def create_sensor(self, body: SensorCreate) -> None:
        await self._check_asset(body.asset_id)
        created = await self._repo.create_sensor(
            SensorUpsert(
                sensor_id=body.sensor_id,
                asset_id=body.asset_id,
                type=body.type,
                unit=_unit(body.unit, body.type),
                location=body.location,
                status=body.status,
            )
        )
        if not created:
            raise Conflict(f"sensor {body.sensor_id!r} exists already")

    async def update_sensor(self, sensor_id: str, body: SensorUpdate) -> None:
        values = body.model_dump(exclude_unset=True)
        if "status" in values and values["status"] is None:
            raise ValidationFailed.at(["body", "status"], "a sensor's status cannot be removed")
        if values.get("unit") is not None:
            types = await self._repo.sensor_types([sensor_id])
            values["unit"] = _unit(values["unit"], types.get(sensor_id))
        await self._check_asset(values.get("asset_id"))
        if not values:
            if not await self._repo.sensor_types([sensor_id]):
                raise NotFound(f"sensor {sensor_id!r} does not exist")
            return
        if not await self._repo.update_sensor(sensor_id, values):
            raise NotFound(f"sensor {sensor_id!r} does not exist")
