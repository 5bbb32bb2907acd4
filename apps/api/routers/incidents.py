"""Incidents (scope ``read``): one fault of one asset — its alerts, its work order and its timeline — and the
healthy references of a sensor (what its degradation detector compares with, and why it was re-learned)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AssetIdQuery, Limit, Offset, SensorIdPath, big_id_path
from apps.api.security import ReadPrincipal
from core.maintenance.schemas import MaintenanceTaskRead, TaskEvidence
from core.paging import Page
from core.queries.incident_schemas import (
    IncidentDetail,
    IncidentEventRead,
    IncidentRead,
    SensorReferenceList,
    SensorReferenceRead,
)
from core.queries.incidents import IncidentReads
from core.queries.schemas import AlertRead

router = APIRouter(prefix="/api/v1", tags=["alerting"], responses=problem_responses(401, 403, 429))

IncidentId = Annotated[int, big_id_path("Incident id.")]


@router.get(
    "/incidents",
    response_model=Page[IncidentRead],
    summary="List incidents",
    description="Alerts on one asset within the correlation window (`SM_INCIDENT_WINDOW_MINUTES`, event time) "
    "join one incident, handled by at most one open work order. Newest evidence first.",
    responses=problem_responses(422),
)
async def list_incidents(
    principal: ReadPrincipal,
    session: SessionDep,
    status: Annotated[Literal["open", "resolved", "closed"] | None, Query()] = None,
    asset_id: AssetIdQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[IncidentRead]:
    rows, total = await IncidentReads(session).page(status=status, asset_id=asset_id, limit=limit, offset=offset)
    return Page[IncidentRead].of(rows, total=total, limit=limit, offset=offset)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    summary="Get an incident",
    description="The incident with its alerts (oldest first), its work orders and its timeline.",
    responses=problem_responses(404, 422),
)
async def get_incident(incident_id: IncidentId, principal: ReadPrincipal, session: SessionDep) -> IncidentDetail:
    view = await IncidentReads(session).detail(incident_id)
    evidence = view.evidence.get(view.incident.id)
    return IncidentDetail(
        **IncidentRead.model_validate(view.incident).model_dump(),
        alerts=[AlertRead.model_validate(a) for a in view.alerts],
        work_orders=[
            MaintenanceTaskRead.model_validate(t).model_copy(
                update={"evidence": TaskEvidence.model_validate(evidence) if evidence else None}
            )
            for t in view.tasks
        ],
        timeline=[IncidentEventRead.model_validate(e) for e in view.timeline],
    )


@router.get(
    "/sensors/{sensor_id}/references",
    response_model=SensorReferenceList,
    summary="Healthy references of a sensor",
    description="What the degradation detector compares the sensor's level with: learned on its first readings, "
    "re-centred after a regime change (a long gap: the machine stopped) or a confirmed repair. Newest first.",
    responses=problem_responses(404, 422),
)
async def sensor_references(
    sensor_id: SensorIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
) -> SensorReferenceList:
    rows = await IncidentReads(session).references(sensor_id)
    return SensorReferenceList(items=[SensorReferenceRead.model_validate(r) for r in rows])
