"""Labels for retraining (scope ``read``): one row per completed maintenance task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import Limit, Offset, SensorIdQuery, datetime_query
from apps.api.security import ReadPrincipal
from core.maintenance.schemas import LabelRead, MaintenanceOutcome
from core.maintenance.service import MaintenanceService
from core.paging import Page
from core.schemas_common import Timestamp

router = APIRouter(prefix="/api/v1/labels", tags=["labels"], responses=problem_responses(401, 403, 429))


@router.get(
    "",
    response_model=Page[LabelRead],
    summary="List labels",
    description=(
        "One row per completed maintenance task: sensor, asset, alert rule and window (opened..resolved), the "
        "alert's anomalies (count, first and last timestamp), outcome, technician and completion time. Newest "
        "first. The same rows as `python -m apps.cli export-labels`."
    ),
    responses=problem_responses(422),
)
async def list_labels(
    principal: ReadPrincipal,
    session: SessionDep,
    sensor_id: SensorIdQuery = None,
    outcome: MaintenanceOutcome | None = None,
    since: Annotated[Timestamp | None, datetime_query("Completed at or after.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[LabelRead]:
    rows, total = await MaintenanceService(session).labels(
        sensor_id=sensor_id, outcome=outcome, since=since, limit=limit, offset=offset
    )
    return Page[LabelRead].of(rows, total=total, limit=limit, offset=offset)
