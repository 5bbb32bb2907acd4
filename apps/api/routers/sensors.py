"""Sensors: list and get, each with its last reading (scope ``read``); register and change, e.g. link to an
asset (scope ``admin``). HTTP concerns only.

Sensors also register themselves on first ingest; registering one here gives it its type, unit, location and
asset beforehand. The list and the get keep their OpenAPI tag ``queries``, the changes ``fleet``. A sensor's
readings are ``apps.api.routers.readings``, its healthy references ``apps.api.routers.incidents``.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AssetIdQuery, Limit, Offset, QueryServiceDep, SensorIdPath, TextQuery
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.fleet.schemas import SensorCreate, SensorUpdate
from core.fleet.service import FleetService
from core.paging import Page, PageRequest
from core.queries.schemas import SensorFilter, SensorRead, SensorSort

router = APIRouter(prefix="/api/v1/sensors", responses=problem_responses(401, 403, 429))


@router.get(
    "",
    tags=["queries"],
    response_model=Page[SensorRead],
    summary="List sensors with their last reading",
    description="Filter by `type`, `asset_id` and `status`; each item carries its latest reading's time and value.",
    responses=problem_responses(422),
)
async def list_sensors(
    principal: ReadPrincipal,
    service: QueryServiceDep,
    type: TextQuery = None,
    asset_id: AssetIdQuery = None,
    status: TextQuery = None,
    sort: SensorSort = "sensor_id",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SensorRead]:
    where = SensorFilter(type=type, asset_id=asset_id, status=status)
    return await service.sensors(where, PageRequest(sort, limit, offset))


@router.get(
    "/{sensor_id}",
    tags=["queries"],
    response_model=SensorRead,
    summary="Get a sensor",
    responses=problem_responses(404, 422),
)
async def get_sensor(sensor_id: SensorIdPath, principal: ReadPrincipal, service: QueryServiceDep) -> SensorRead:
    return await service.sensor(sensor_id)


@router.post(
    "",
    tags=["fleet"],
    status_code=status.HTTP_201_CREATED,
    response_model=SensorRead,
    summary="Register a sensor",
    description="Registers a sensor before its first reading (type, unit, location, asset). An existing "
    "`sensor_id` is a 409; an unknown `asset_id` a 422.",
    responses=problem_responses(409, 422),
)
async def create_sensor(
    body: SensorCreate, principal: AdminPrincipal, session: SessionDep, service: QueryServiceDep
) -> SensorRead:
    await FleetService(session).create_sensor(body)
    principal.audit("sensor.create", target=f"sensor:{body.sensor_id}", asset_id=body.asset_id)
    return await service.sensor(body.sensor_id)


@router.patch(
    "/{sensor_id}",
    tags=["fleet"],
    response_model=SensorRead,
    summary="Link a sensor to an asset or change it",
    description="Only the fields sent change: `asset_id` (`null` unlinks), `unit`, `location`, `status` "
    "(active, inactive, retired).",
    responses=problem_responses(404, 422),
)
async def update_sensor(
    sensor_id: SensorIdPath,
    body: SensorUpdate,
    principal: AdminPrincipal,
    session: SessionDep,
    service: QueryServiceDep,
) -> SensorRead:
    await FleetService(session).update_sensor(sensor_id, body)
    principal.audit("sensor.update", target=f"sensor:{sensor_id}", **body.model_dump(exclude_unset=True))
    return await service.sensor(sensor_id)
