"""Readings of a sensor (scope ``read``): raw or bucketed, keyset-paged with an opaque cursor. HTTP concerns only;
defaults, limits and the cursor are ``core.queries.service``'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from apps.api.errors import problem_responses
from apps.api.params import Cursor, End, QueryServiceDep, SensorIdPath, Start
from apps.api.security import ReadPrincipal
from core.queries.schemas import ReadingSeries
from core.readings.buckets import Agg, Bucket

router = APIRouter(prefix="/api/v1", tags=["queries"], responses=problem_responses(401, 403, 429))

#: Points per page: the service refuses more than ``SM_QUERY_MAX_POINTS`` (422).
PointLimit = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="Points per page (≤ SM_QUERY_MAX_POINTS).")
]


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
    responses=problem_responses(404, 422),
)
async def sensor_readings(
    sensor_id: SensorIdPath,
    principal: ReadPrincipal,
    service: QueryServiceDep,
    start: Start = None,
    end: End = None,
    bucket: Bucket | None = None,
    agg: Agg | None = None,
    limit: PointLimit = None,
    cursor: Cursor = None,
) -> ReadingSeries:
    return await service.readings(
        sensor_id, start=start, end=end, bucket=bucket, agg=agg, limit=limit, cursor=cursor
    )
