"""Maintenance work orders: opening them by hand, assigning, status changes, completion (log row, the incident's
alerts resolved and the incident closed, healthy references re-learned after a confirmed fault, event) and the
labels completions produce. Opening them for alerts (the scheduling policy): ``core.maintenance.scheduling``.

Services flush, never commit (the unit of work that opened the transaction commits). Events go to the outbox in
the same transaction. Metrics are counted by the callers (the agent after its commit, the routers on success).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.repository import AlertingRepository
from core.anomaly.references import relearn_after_repair
from core.errors import Conflict, NotFound, ValidationFailed
from core.events.outbox import add_to_outbox
from core.events.types import MaintenanceTaskCompleted
from core.incidents.service import IncidentService
from core.maintenance.repository import LabelRow, MaintenanceRepository, TaskFilters
from core.maintenance.scheduling import announce_created
from core.maintenance.schemas import MaintenanceOutcome
from core.workorders.models import ACTIVE_TASK_STATUSES, MaintenanceLog, MaintenanceTask
from core.workorders.policy import (
    DEFAULT_DUE_AFTER,
    PRIORITY_BY_SEVERITY,
    PRIORITY_RANK,
    due_after_from_settings,
)

logger = logging.getLogger("core.maintenance")

#: Allowed status changes through ``update`` (``done`` only through ``complete``).
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"open", "cancelled"}),
    "done": frozenset(),
    "cancelled": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Completion:
    task: MaintenanceTask
    log: MaintenanceLog
    alert_resolved: bool


def _now() -> datetime:
    return datetime.now(UTC)


class MaintenanceService:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._repo = MaintenanceRepository(session)

    async def _created(self, task: MaintenanceTask) -> None:
        await announce_created(self._session, task)

    # --- tasks -----------------------------------------------------------------------------------------------
    async def create(self, values: Mapping[str, Any]) -> MaintenanceTask:
        """Open a task by hand (422: unknown asset, sensor or alert; 409: the alert has a task already)."""
        data = dict(values)
        alert_id = data.get("alert_id")
        if alert_id is not None:
            alert = await self._repo.get_alert(alert_id)
            if alert is None:
                raise ValidationFailed(
                    f"alert {alert_id} does not exist",
                    errors=[{"loc": ["body", "alert_id"], "msg": "unknown alert", "type": "value_error"}],
                )
            if data.get("sensor_id") is None:
                data["sensor_id"] = alert.sensor_id
            if alert.incident_id is not None:
                active = await self._repo.active_task(alert.incident_id)
                if active is not None:
                    raise Conflict(
                        f"alert {alert_id} belongs to incident {alert.incident_id}, whose work order {active.id} "
                        "is still open"
                    )
                data["incident_id"] = alert.incident_id
                data.setdefault("event_opened_at", alert.event_opened_at)
        sensor_id = data.get("sensor_id")
        if sensor_id is not None:
            exists, asset_id = await self._repo.sensor_asset_id(sensor_id)
            if not exists:
                raise ValidationFailed(
                    f"sensor {sensor_id!r} does not exist",
                    errors=[{"loc": ["body", "sensor_id"], "msg": "unknown sensor", "type": "value_error"}],
                )
            if data.get("asset_id") is None:
                data["asset_id"] = asset_id
        if data.get("asset_id") is not None and not await self._repo.asset_exists(data["asset_id"]):
            raise ValidationFailed(
                f"asset {data['asset_id']} does not exist",
                errors=[{"loc": ["body", "asset_id"], "msg": "unknown asset", "type": "value_error"}],
            )
        task = await self._repo.insert_task({**data, "status": "open"})
        if task is None:
            raise Conflict(f"alert {alert_id} already has a maintenance task")
        await self._created(task)
        return task

    async def get(self, task_id: int) -> MaintenanceTask:
        task = await self._repo.get_task(task_id)
        if task is None:
            raise NotFound(f"maintenance task {task_id} does not exist")
        return task

    async def page(
        self,
        filters: TaskFilters,
        *,
        sort: str = "created_at",
        descending: bool = True,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[MaintenanceTask], int]:
        return await self._repo.list_tasks(
            filters, sort=sort, descending=descending, limit=limit, offset=offset
        )

    async def assign(self, task_id: int, assignee: str) -> MaintenanceTask:
        """Set the assignee of an open or in-progress task (409 once it is done or cancelled)."""
        task = await self._repo.update_task(
            task_id, {"assignee": assignee}, from_statuses=ACTIVE_TASK_STATUSES
        )
        if task is None:
            current = await self.get(task_id)
            raise Conflict(f"maintenance task {task_id} is {current.status}; it can no longer be assigned")
        return task

    async def update(self, task_id: int, changes: Mapping[str, Any]) -> MaintenanceTask:
        """Apply field changes and a status transition (409 when the transition is not allowed)."""
        current = await self.get(task_id)
        values = dict(changes)
        new_status = values.get("status")
        if new_status is not None and new_status != current.status:
            if new_status == "done":
                raise Conflict(
                    f"maintenance task {task_id} is completed with POST /api/v1/maintenance/tasks/{task_id}/complete"
                    " (outcome, technician, notes)"
                )
            if new_status not in TRANSITIONS[current.status]:
                raise Conflict(f"maintenance task {task_id} cannot go from {current.status} to {new_status}")
        elif new_status is not None:
            values.pop("status")
        if current.status not in ACTIVE_TASK_STATUSES and values:
            raise Conflict(f"maintenance task {task_id} is {current.status}; it can no longer be changed")
        if not values:
            return current
        task = await self._repo.update_task(task_id, values, from_statuses=[current.status])
        if task is None:  # changed by a concurrent request in between
            raise Conflict(f"maintenance task {task_id} was changed concurrently; retry")
        if task.status == "cancelled":
            await self._close_cause(task, actor="maintenance", comment=f"maintenance task {task.id} cancelled")
        return task

    # --- completion ------------------------------------------------------------------------------------------
    async def complete(
        self, task_id: int, *, outcome: MaintenanceOutcome, technician: str | None, notes: str | None
    ) -> Completion:
        """Close an open or in-progress task: log row, status done, linked alert resolved, event in the outbox.

        409 when the task is done (completed twice) or cancelled; 404 when it does not exist.
        """
        task = await self._repo.update_task(task_id, {"status": "done"}, from_statuses=ACTIVE_TASK_STATUSES)
        if task is None:
            current = await self.get(task_id)
            raise Conflict(
                f"maintenance task {task_id} is already completed"
                if current.status == "done"
                else f"maintenance task {task_id} is {current.status}; it cannot be completed"
            )
        log = await self._repo.add_log(task_id=task.id, outcome=outcome, technician=technician, notes=notes)
        resolved = await self._close_cause(
            task, actor=technician or "maintenance", comment=f"maintenance task {task.id} completed: {outcome}"
        )
        if outcome == "fault_confirmed":
            await relearn_after_repair(self._session, task, at=log.completed_at)
        await add_to_outbox(
            self._session,
            MaintenanceTaskCompleted(
                task_id=task.id,
                log_id=log.id,
                outcome=outcome,
                completed_at=log.completed_at,
            ),
        )
        return Completion(task=task, log=log, alert_resolved=resolved > 0)

    async def _close_cause(self, task: MaintenanceTask, *, actor: str, comment: str) -> int:
        """The work order is over: resolve its incident's unresolved alerts (or its own alert) and close the
        incident, so that a later alert on the asset opens a new one. Answers how many alerts it resolved."""
        resolved = 0
        if task.incident_id is not None:
            for alert_id in await AlertingRepository(self._session).unresolved_in_incident(task.incident_id):
                if await self._repo.resolve_alert(alert_id, actor=actor, comment=comment) is not None:
                    resolved += 1
            await IncidentService(self._session).close(task.incident_id, task_id=task.id, note=comment)
        elif task.alert_id is not None:
            resolved += await self._repo.resolve_alert(task.alert_id, actor=actor, comment=comment) is not None
        return resolved

    # --- labels ----------------------------------------------------------------------------------------------
    async def labels(
        self,
        *,
        sensor_id: str | None = None,
        outcome: MaintenanceOutcome | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[LabelRow], int]:
        return await self._repo.list_labels(
            sensor_id=sensor_id, outcome=outcome, since=since, limit=limit, offset=offset
        )


__all__ = [
    "DEFAULT_DUE_AFTER",
    "PRIORITY_BY_SEVERITY",
    "PRIORITY_RANK",
    "TRANSITIONS",
    "Completion",
    "MaintenanceService",
    "due_after_from_settings",
]
