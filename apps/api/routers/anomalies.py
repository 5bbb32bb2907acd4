"""Anomalies (scope ``read``): the list, filtered by sensor, time range, method and score. HTTP concerns only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from apps.api.errors import problem_responses
from apps.api.params import End, Limit, Offset, QueryServiceDep, SensorIdQuery, Start, TextQuery
from apps.api.security import ReadPrincipal
from core.paging import Page, PageRequest
from core.queries.schemas import AnomalyFilter, AnomalyRead, AnomalySort

router = APIRouter(prefix="/api/v1/anomalies", tags=["queries"], responses=problem_responses(401, 403, 429))


@router.get(
    "",
    response_model=Page[AnomalyRead],
    summary="List anomalies",
    description="Filter by sensor, time range `[start, end)`, method and minimum score; newest first by default.",
    responses=problem_responses(422),
)
async def list_anomalies(
    principal: ReadPrincipal,
    service: QueryServiceDep,
    sensor_id: SensorIdQuery = None,
    start: Start = None,
    end: End = None,
    method: TextQuery = None,
    min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    sort: AnomalySort = "-timestamp",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AnomalyRead]:
    where = AnomalyFilter(sensor_id=sensor_id, start=start, end=end, method=method, min_score=min_score)
    return await service.anomalies(where, PageRequest(sort, limit, offset))
