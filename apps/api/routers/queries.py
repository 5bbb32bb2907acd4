"""Query API (scope ``read``): assets, sensors with their last reading, readings (raw or bucketed, keyset-paged),
anomalies and alerts (read-only here; alert lifecycle routes live elsewhere). HTTP concerns only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from apps.api.deps import SessionDep, SettingsDep
from apps.api.errors import problem_responses
from apps.api.params import (
    AssetIdQuery,
    End,
    Limit,
    Offset,
    SensorIdPath,
    SensorIdQuery,
    Start,
    TextQuery,
)
from apps.api.security import require_scope
from core.auth.keys import READ
from core.readings.query_repository import Agg, Bucket
from core.readings.schemas import (
    AlertPage,
    AlertSort,
    AnomalyPage,
    AnomalySort,
    AssetPage,
    AssetSort,
    ReadingSeries,
    SensorPage,
    SensorRead,
    SensorSort,
)
from core.readings.service import QueryService

router = APIRouter(
    prefix="/api/v1",
    tags=["queries"],
    dependencies=[Depends(require_scope(READ))],
    responses=problem_responses(401, 403, 422, 429),
)


def _service(session: SessionDep, settings: SettingsDep) -> QueryService:
    return QueryService(session, max_points=settings.query_max_points)


ServiceDep = Annotated[QueryService, Depends(_service)]


@router.get(
    "/assets",
    response_model=AssetPage,
    summary="List assets",
    description="Filter by `site` and `kind`; sort by a field (`-` for descending); offset pagination.",
)
async def list_assets(
    service: ServiceDep,
    site: TextQuery = None,
    kind: TextQuery = None,
    sort: AssetSort = "id",
    limit: Limit = 100,
    offset: Offset = 0,
) -> AssetPage:
    return await service.assets(site=site, kind=kind, sort=sort, limit=limit, offset=offset)


@router.get(
    "/sensors",
    response_model=SensorPage,
    summary="List sensors with their last reading",
    description="Filter by `type`, `asset_id` and `status`; each item carries its latest reading's time and value.",
)
async def list_sensors(
    service: ServiceDep,
    type: TextQuery = None,
    asset_id: AssetIdQuery = None,
    status: TextQuery = None,
    sort: SensorSort = "sensor_id",
    limit: Limit = 100,
    offset: Offset = 0,
) -> SensorPage:
    return await service.sensors(
        type=type, asset_id=asset_id, status=status, sort=sort, limit=limit, offset=offset
    )


@router.get(
    "/sensors/{sensor_id}",
    response_model=SensorRead,
    summary="Get a sensor",
    responses=problem_responses(404),
)
async def get_sensor(sensor_id: SensorIdPath, service: ServiceDep) -> SensorRead:
    return await service.sensor(sensor_id)


@router.get(
    "/sensors/{sensor_id}/readings",
    response_model=ReadingSeries,
    summary="Readings of a sensor, raw or bucketed",
    description=(
        "Readings in `[start, end)` (timezone-aware; default: the last 24 hours), ascending. Without `bucket`: "
        "raw readings. With `bucket`: one `agg` (default `avg`) per bucket, from the hourly continuous aggregate "
        "when it covers the request (TimescaleDB, `1h`/`1d`, whole hours), else `time_bucket`/`date_bin` over "
        "raw readings. At most `limit` points per response (default and maximum `SM_QUERY_MAX_POINTS`); follow "
        "`next_cursor` for the rest."
    ),
    responses=problem_responses(404),
)
async def sensor_readings(
    sensor_id: SensorIdPath,
    service: ServiceDep,
    start: Start = None,
    end: End = None,
    bucket: Bucket | None = None,
    agg: Agg | None = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="Points per page (≤ SM_QUERY_MAX_POINTS).")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[A-Za-z0-9_=-]+$",
            description="`next_cursor` of the previous page (opaque; a cursor of another series is a 422).",
        ),
    ] = None,
) -> ReadingSeries:
    return await service.readings(
        sensor_id, start=start, end=end, bucket=bucket, agg=agg, limit=limit, cursor=cursor
    )


@router.get(
    "/anomalies",
    response_model=AnomalyPage,
    summary="List anomalies",
    description="Filter by sensor, time range `[start, end)`, method and minimum score; newest first by default.",
)
async def list_anomalies(
    service: ServiceDep,
    sensor_id: SensorIdQuery = None,
    start: Start = None,
    end: End = None,
    method: TextQuery = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    sort: AnomalySort = "-timestamp",
    limit: Limit = 100,
    offset: Offset = 0,
) -> AnomalyPage:
    return await service.anomalies(
        sensor_id=sensor_id,
        start=start,
        end=end,
        method=method,
        min_score=min_score,
        sort=sort,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="List alerts",
    description="Filter by status, severity, sensor and rule; most recently opened first by default.",
)
async def list_alerts(
    service: ServiceDep,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    severity: Literal["info", "low", "medium", "high", "critical"] | None = None,
    sensor_id: SensorIdQuery = None,
    rule: TextQuery = None,
    sort: AlertSort = "-opened_at",
    limit: Limit = 100,
    offset: Offset = 0,
) -> AlertPage:
    return await service.alerts(
        status=status,
        severity=severity,
        sensor_id=sensor_id,
        rule=rule,
        sort=sort,
        limit=limit,
        offset=offset,
    )
