"""Fleet management: get an asset (scope ``read``); create and change assets, register sensors and link them to
assets (scope ``admin``). Sensors also register themselves on first ingest; this is how an operator gives them an
asset, which maintenance tasks and alert suppression (open work order, maintenance window) key on."""

from __future__ import annotations

from fastapi import APIRouter, status

from apps.api.deps import SessionDep, SettingsDep
from apps.api.errors import problem_responses
from apps.api.params import AssetIdPath, SensorIdPath
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.fleet.schemas import AssetCreate, AssetUpdate, SensorCreate, SensorUpdate
from core.fleet.service import FleetService
from core.readings.schemas import AssetRead, SensorRead
from core.readings.service import QueryService

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=problem_responses(401, 403, 429))


async def _sensor(session: SessionDep, settings: SettingsDep, sensor_id: str) -> SensorRead:
    return await QueryService(session, max_points=settings.query_max_points).sensor(sensor_id)


@router.get(
    "/assets/{asset_id}",
    response_model=AssetRead,
    summary="Get an asset",
    responses=problem_responses(404, 422),
)
async def get_asset(asset_id: AssetIdPath, principal: ReadPrincipal, session: SessionDep) -> AssetRead:
    return AssetRead.model_validate(await FleetService(session).asset(asset_id))


@router.post(
    "/assets",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetRead,
    summary="Create an asset",
    description="A machine that carries sensors and receives maintenance. Names are unique (409 otherwise).",
    responses=problem_responses(409, 422),
)
async def create_asset(body: AssetCreate, principal: AdminPrincipal, session: SessionDep) -> AssetRead:
    asset = await FleetService(session).create_asset(body)
    principal.audit("asset.create", target=f"asset:{asset.id}", target_name=asset.name)
    return AssetRead.model_validate(asset)


@router.patch(
    "/assets/{asset_id}",
    response_model=AssetRead,
    summary="Change an asset",
    description="Only the fields sent change; `null` clears `site` or `kind`. A name in use by another asset is a 409.",
    responses=problem_responses(404, 409, 422),
)
async def update_asset(
    asset_id: AssetIdPath, body: AssetUpdate, principal: AdminPrincipal, session: SessionDep
) -> AssetRead:
    asset = await FleetService(session).update_asset(asset_id, body)
    principal.audit("asset.update", target=f"asset:{asset.id}", target_name=asset.name)
    return AssetRead.model_validate(asset)


@router.post(
    "/sensors",
    status_code=status.HTTP_201_CREATED,
    response_model=SensorRead,
    summary="Register a sensor",
    description="Registers a sensor before its first reading (type, unit, location, asset). An existing "
    "`sensor_id` is a 409; an unknown `asset_id` a 422.",
    responses=problem_responses(409, 422),
)
async def create_sensor(
    body: SensorCreate, principal: AdminPrincipal, session: SessionDep, settings: SettingsDep
) -> SensorRead:
    await FleetService(session).create_sensor(body)
    principal.audit("sensor.create", target=f"sensor:{body.sensor_id}", asset_id=body.asset_id)
    return await _sensor(session, settings, body.sensor_id)


@router.patch(
    "/sensors/{sensor_id}",
    response_model=SensorRead,
    summary="Link a sensor to an asset or change it",
    description="Only the fields sent change: `asset_id` (`null` unlinks), `unit`, `location`, `status` "
    "(active, inactive, retired).",
    responses=problem_responses(404, 422),
)
async def update_sensor(
    sensor_id: SensorIdPath, body: SensorUpdate, principal: AdminPrincipal, session: SessionDep, settings: SettingsDep
) -> SensorRead:
    await FleetService(session).update_sensor(sensor_id, body)
    principal.audit("sensor.update", target=f"sensor:{sensor_id}", **body.model_dump(exclude_unset=True))
    return await _sensor(session, settings, sensor_id)
