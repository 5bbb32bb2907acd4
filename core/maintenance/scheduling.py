"""The scheduling policy: one work order per incident, escalated by new evidence (the scheduling agent's logic;
services flush, never commit).

``SchedulingService.open_for_alert(AlertRaised)``:

* the alert's incident has no active work order and the alert is high or critical → open one (priority from
  the severity, ``alert_id`` = this alert, ``incident_id``) due ``SM_MAINTENANCE_DUE_<SEVERITY>_H`` after the
  alert's **event time** (a back-filled fault is due in its own past, not from today);
* the incident has an active work order → the alert is attached to it (through the incident; visible on the work
  order and notified by ``AlertRaised``) and, when it is more severe than the work order's priority, escalates
  it (priority up, due date brought forward, ``MaintenanceTaskEscalated`` in the outbox, noted in the incident's
  timeline);
* medium and lower alerts never open a work order on their own;
* when the asset has a remaining-useful-life estimate, a due date is the earlier of the severity's and the time at
  which the lower bound of the RUL interval is reached (:mod:`core.maintenance.rul_due`; noted in the task's
  description).

Transactions for one incident are serialised by a row lock on it; the partial unique index
``uq_maintenance_tasks_incident_id_active`` backs "one active work order per incident", ``uq_..._alert_id`` makes
redelivery harmless. ``MaintenanceTaskCreated`` goes to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.events.outbox import add_to_outbox
from core.events.types import AlertRaised, MaintenanceTaskCreated, MaintenanceTaskEscalated
from core.incidents.repository import IncidentRepository
from core.maintenance.repository import MaintenanceRepository
from core.maintenance.rul_due import NoRulBound, RulBound, due_with_rul
from core.workorders.models import ACTIVE_TASK_STATUSES, MaintenanceTask
from core.workorders.policy import DEFAULT_DUE_AFTER, PRIORITY_BY_SEVERITY, PRIORITY_RANK

logger = logging.getLogger("core.maintenance.scheduling")


class SchedulingService:
    def __init__(self, session: AsyncSession, *, rul: RulBound | None = None) -> None:
        """``rul``: where RUL lower bounds come from (injected by the runtime); None: none, due by severity only."""
        self._session = session
        self._repo = MaintenanceRepository(session)
        self._rul: RulBound = rul if rul is not None else NoRulBound()

    async def _due(
        self, asset_id: int | None, seen_at: datetime, severity: str, due_after: Mapping[str, timedelta]
    ) -> tuple[datetime, str]:
        """The due date (severity's, brought forward to the RUL lower bound when earlier) and a note saying so."""
        by_severity = seen_at + due_after.get(severity, DEFAULT_DUE_AFTER[severity])
        bound = await self._rul.lower_bound_at(self._session, asset_id)
        due = due_with_rul(by_severity, bound)
        if bound is None or due != bound:
            return due, ""
        return due, f" Due by the RUL interval's lower bound ({bound.isoformat()})."

    async def open_for_alert(
        self, event: AlertRaised, *, due_after: Mapping[str, timedelta] = DEFAULT_DUE_AFTER
    ) -> MaintenanceTask | None:
        """One work order per incident: open one for a high/critical alert whose incident has none active; when
        it has one, a more severe alert escalates its priority (and brings its due date forward). Due dates count
        from the alert's event time. None when nothing was opened. Idempotent."""
        alert = await self._repo.get_alert(event.alert_id)
        if alert is None:
            logger.warning("alert %s of AlertRaised %s does not exist; no task", event.alert_id, event.event_id)
            return None
        incident_id = alert.incident_id or event.incident_id
        priority = PRIORITY_BY_SEVERITY.get(event.severity)
        if incident_id is None:  # an alert from before incidents existed
            return await self._open_legacy(event, alert, priority, due_after)
        incidents = IncidentRepository(self._session)
        incident = await incidents.lock_incident(incident_id)  # one transaction at a time decides for it
        if incident is None:
            return None
        seen_at = alert.event_opened_at
        active = await self._repo.active_task(incident_id)
        if active is not None:
            await self._escalate(active, event, seen_at, due_after, incidents)
            return None
        if priority is None or incident.status == "closed":
            return None
        due_at, due_note = await self._due(incident.asset_id, seen_at, event.severity, due_after)
        task = await self._repo.insert_task(
            {
                "asset_id": incident.asset_id,
                "sensor_id": event.sensor_id,
                "alert_id": event.alert_id,
                "incident_id": incident_id,
                "title": f"Alert '{event.rule}' ({event.severity}) on sensor {event.sensor_id}",
                "description": f"Opened by the scheduling agent for incident {incident_id} (alert {event.alert_id})."
                + due_note,
                "priority": priority,
                "status": "open",
                "event_opened_at": seen_at,
                "due_at": due_at,
            }
        )
        if task is None:  # a task for this alert exists (closed already, or a concurrent delivery)
            return None
        await incidents.add_event(
            incident_id,
            "work_order_opened",
            event_at=seen_at,
            alert_id=event.alert_id,
            task_id=task.id,
            note=f"{priority} priority, due {task.due_at.isoformat() if task.due_at else '-'}",
        )
        await self._created(task)
        return task

    async def _escalate(
        self,
        task: MaintenanceTask,
        event: AlertRaised,
        seen_at: datetime,
        due_after: Mapping[str, timedelta],
        incidents: IncidentRepository,
    ) -> None:
        priority = PRIORITY_BY_SEVERITY.get(event.severity)
        if priority is None:
            return
        earlier = task.event_opened_at is None or seen_at < task.event_opened_at
        if not earlier and PRIORITY_RANK[priority] <= PRIORITY_RANK.get(task.priority, 0):
            return  # nothing to change: no due date to work out (it may cost a RUL estimate)
        due, _ = await self._due(task.asset_id, seen_at, event.severity, due_after)
        if earlier:
            # evidence warranting a work order that happened before the one it was opened for (the agents
            # handled them out of order): the work order dates from the earliest, whatever the processing order
            task = (
                await self._repo.update_task(
                    task.id,
                    {"event_opened_at": seen_at, "due_at": min(due, task.due_at) if task.due_at else due},
                    from_statuses=ACTIVE_TASK_STATUSES,
                )
                or task
            )
        if PRIORITY_RANK[priority] <= PRIORITY_RANK.get(task.priority, 0):
            return
        changes: dict[str, Any] = {"priority": priority}
        if task.due_at is None or due < task.due_at:
            changes["due_at"] = due
        previous = task.priority
        await self._repo.update_task(task.id, changes, from_statuses=ACTIVE_TASK_STATUSES)
        await incidents.add_event(
            task.incident_id or 0,
            "escalated",
            event_at=seen_at,
            alert_id=event.alert_id,
            task_id=task.id,
            note=f"{previous} → {priority}: {event.rule} ({event.severity}) on {event.sensor_id}",
        )
        await add_to_outbox(
            self._session,
            MaintenanceTaskEscalated(
                task_id=task.id,
                incident_id=task.incident_id,
                alert_id=event.alert_id,
                from_priority=previous,
                to_priority=priority,
            ),
        )

    async def _open_legacy(
        self,
        event: AlertRaised,
        alert: Any,
        priority: str | None,
        due_after: Mapping[str, timedelta],
    ) -> MaintenanceTask | None:
        """An alert without an incident (opened before migration 0005): one task per cause, as before."""
        if priority is None:
            return None
        _, asset_id = await self._repo.sensor_asset_id(event.sensor_id)
        await self._repo.lock_cause(f"{event.sensor_id}\x1f{event.rule}")
        existing = await self._repo.active_task_for_cause(
            alert_id=event.alert_id, sensor_id=event.sensor_id, rule=event.rule, asset_id=asset_id
        )
        if existing is not None:
            return None
        seen_at = alert.event_opened_at
        due_at, due_note = await self._due(asset_id, seen_at, event.severity, due_after)
        task = await self._repo.insert_task(
            {
                "asset_id": asset_id,
                "sensor_id": event.sensor_id,
                "alert_id": event.alert_id,
                "title": f"Alert '{event.rule}' ({event.severity}) on sensor {event.sensor_id}",
                "description": f"Opened by the scheduling agent for alert {event.alert_id}." + due_note,
                "priority": priority,
                "status": "open",
                "event_opened_at": seen_at,
                "due_at": due_at,
            }
        )
        if task is not None:
            await self._created(task)
        return task

    async def _created(self, task: MaintenanceTask) -> None:
        await announce_created(self._session, task)


async def announce_created(session: AsyncSession, task: MaintenanceTask) -> None:
    """``MaintenanceTaskCreated`` of ``task`` to the outbox (in the caller's transaction)."""
    await add_to_outbox(
        session,
        MaintenanceTaskCreated(
            task_id=task.id,
            asset_id=task.asset_id,
            sensor_id=task.sensor_id,
            alert_id=task.alert_id,
            priority=task.priority,
        ),
    )


__all__ = ["SchedulingService", "announce_created"]
