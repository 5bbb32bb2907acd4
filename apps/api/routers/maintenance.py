"""Maintenance tasks (work orders): list and get (scope ``read``); assign and complete (scope ``operate``, a
technician's key); create and update (scope ``admin``, which implies ``operate``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AlertIdQuery, AssetIdQuery, Limit, Offset, SensorIdQuery, TextQuery, big_id_path
from apps.api.security import AdminPrincipal, OperatePrincipal, ReadPrincipal
from core.maintenance.repository import TaskFilters
from core.maintenance.schemas import (
    MaintenanceCompletionCreate,
    MaintenanceCompletionRead,
    MaintenanceLogRead,
    MaintenanceTaskAssign,
    MaintenanceTaskCreate,
    MaintenanceTaskRead,
    MaintenanceTaskUpdate,
    TaskEvidence,
    TaskPriority,
    TaskSort,
    TaskStatus,
)
from core.maintenance.service import MaintenanceService
from core.observability.metrics import MAINTENANCE_TASKS_COMPLETED_TOTAL, MAINTENANCE_TASKS_OPENED_TOTAL
from core.paging import Page
from core.queries.incidents import IncidentReads
from core.workorders.models import MaintenanceTask

router = APIRouter(
    prefix="/api/v1/maintenance/tasks",
    tags=["maintenance"],
    responses=problem_responses(401, 403, 429),
)

TaskId = Annotated[int, big_id_path("Id of the maintenance task.")]


@router.get(
    "",
    response_model=Page[MaintenanceTaskRead],
    summary="List maintenance tasks",
    description="Filter by status, asset, sensor, priority, assignee and alert; sort by a column "
    "(`-` prefix not used: set `order`). Default: newest first.",
    responses=problem_responses(422),
)
async def list_tasks(
    principal: ReadPrincipal,
    session: SessionDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    asset_id: AssetIdQuery = None,
    sensor_id: SensorIdQuery = None,
    priority: TaskPriority | None = None,
    assignee: TextQuery = None,
    alert_id: AlertIdQuery = None,
    sort: TaskSort = "created_at",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[MaintenanceTaskRead]:
    filters = TaskFilters(
        status=status_,
        asset_id=asset_id,
        sensor_id=sensor_id,
        priority=priority,
        assignee=assignee,
        alert_id=alert_id,
    )
    service = MaintenanceService(session)
    rows, total = await service.page(
        filters, sort=sort, descending=order == "desc", limit=limit, offset=offset
    )
    return Page[MaintenanceTaskRead](items=await _reads(session, rows), total=total, limit=limit, offset=offset)


async def _reads(session: AsyncSession, tasks: Sequence[MaintenanceTask]) -> list[MaintenanceTaskRead]:
    """The tasks with the evidence of their incidents (one query for all of them)."""
    evidence = await IncidentReads(session).work_order_evidence(tasks)
    return [
        MaintenanceTaskRead.model_validate(t).model_copy(
            update={
                "evidence": TaskEvidence.model_validate(evidence[t.incident_id])
                if t.incident_id in evidence
                else None
            }
        )
        for t in tasks
    ]


@router.get(
    "/{task_id}",
    response_model=MaintenanceTaskRead,
    summary="Get a maintenance task",
    responses=problem_responses(404, 422),
)
async def get_task(task_id: TaskId, principal: ReadPrincipal, session: SessionDep) -> MaintenanceTaskRead:
    service = MaintenanceService(session)
    [read] = await _reads(session, [await service.get(task_id)])
    return read


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MaintenanceTaskRead,
    summary="Open a maintenance task by hand",
    description="Emits `MaintenanceTaskCreated`. The asset defaults to the sensor's; an alert has at most one "
    "task (409).",
    responses=problem_responses(409, 422),
)
async def create_task(
    body: MaintenanceTaskCreate, principal: AdminPrincipal, session: SessionDep
) -> MaintenanceTaskRead:
    task = await MaintenanceService(session).create(body.model_dump(exclude_unset=True))
    await session.flush()
    principal.audit(
        "maintenance_task.create",
        target=f"maintenance_task:{task.id}",
    )
    result = MaintenanceTaskRead.model_validate(task)
    MAINTENANCE_TASKS_OPENED_TOTAL.labels(source="manual", priority=task.priority).inc()
    return result


@router.post(
    "/{task_id}/assign",
    response_model=MaintenanceTaskRead,
    summary="Assign a maintenance task",
    description="Sets the assignee of an open or in-progress task (409 once it is done or cancelled).",
    responses=problem_responses(404, 409, 422),
)
async def assign_task(
    task_id: TaskId, body: MaintenanceTaskAssign, principal: OperatePrincipal, session: SessionDep
) -> MaintenanceTaskRead:
    service = MaintenanceService(session)
    task = await service.assign(task_id, body.assignee)
    principal.audit(
        "maintenance_task.assign",
        target=f"maintenance_task:{task.id}",
        assignee=body.assignee,
    )
    [read] = await _reads(session, [task])
    return read


@router.patch(
    "/{task_id}",
    response_model=MaintenanceTaskRead,
    summary="Update a maintenance task",
    description=(
        "Changes fields and the status. Transitions: `open` → `in_progress` | `cancelled`, `in_progress` → "
        "`open` | `cancelled`; anything else is 409. `done` is reached only with `POST …/{task_id}/complete`, "
        "which records the outcome. Done and cancelled tasks cannot be changed."
    ),
    responses=problem_responses(404, 409, 422),
)
async def update_task(
    task_id: TaskId, body: MaintenanceTaskUpdate, principal: AdminPrincipal, session: SessionDep
) -> MaintenanceTaskRead:
    changes = body.model_dump(exclude_unset=True)
    service = MaintenanceService(session)
    task = await service.update(task_id, changes)
    principal.audit(
        "maintenance_task.update",
        target=f"maintenance_task:{task.id}",
        fields=sorted(changes),
    )
    [read] = await _reads(session, [task])
    return read


@router.post(
    "/{task_id}/complete",
    response_model=MaintenanceCompletionRead,
    summary="Complete a maintenance task",
    description=(
        "Records the outcome (`fault_confirmed` | `no_fault_found`) in a `maintenance_logs` row, sets the task "
        "`done`, resolves the linked alert and emits `MaintenanceTaskCompleted`. The outcome becomes a label "
        "(`GET /api/v1/labels`). Completing a done or cancelled task is 409."
    ),
    responses=problem_responses(404, 409, 422),
)
async def complete_task(
    task_id: TaskId, body: MaintenanceCompletionCreate, principal: OperatePrincipal, session: SessionDep
) -> MaintenanceCompletionRead:
    done = await MaintenanceService(session).complete(
        task_id, outcome=body.outcome, technician=body.technician, notes=body.notes
    )
    principal.audit(
        "maintenance_task.complete",
        target=f"maintenance_task:{task_id}",
        outcome=body.outcome,
    )
    result = MaintenanceCompletionRead(
        task=MaintenanceTaskRead.model_validate(done.task),
        log=MaintenanceLogRead.model_validate(done.log),
        alert_resolved=done.alert_resolved,
    )
    MAINTENANCE_TASKS_COMPLETED_TOTAL.labels(outcome=body.outcome).inc()
    return result
