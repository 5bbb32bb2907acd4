"""Scheduling agent: on ``AlertRaised``, one work order per incident (opened by a high or critical alert,
escalated by later more severe ones).

The policy lives in ``core.maintenance.scheduling.SchedulingService.open_for_alert``: priority from the severity,
due date from the alert's event time plus ``SM_MAINTENANCE_DUE_CRITICAL_H`` (4) / ``SM_MAINTENANCE_DUE_HIGH_H``
(24), linked ``alert_id`` and ``incident_id``. Idempotent under redelivery (unique ``alert_id`` and one active task
per incident). ``MaintenanceTaskCreated`` / ``MaintenanceTaskEscalated`` go to the outbox in the same transaction.
A due date is brought forward to the RUL lower bound of the asset when the injected
:class:`~core.maintenance.rul_due.RulBound` has one (:mod:`core.maintenance.rul_due`).
Counter: ``sm_maintenance_tasks_opened_total{source="agent"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.events.types import AlertRaised, Event
from core.maintenance.rul_due import RulBound
from core.maintenance.scheduling import SchedulingService
from core.observability.metrics import MAINTENANCE_TASKS_OPENED_TOTAL
from core.workorders.policy import DEFAULT_DUE_AFTER, due_after_from_settings

logger = logging.getLogger("core.maintenance.agent")

HANDLER_NAME = "scheduling.open_task"


class OpenTaskForAlert:
    """The handler: one transaction per delivery."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        due_after: Mapping[str, timedelta] | None = None,
        *,
        rul: RulBound | None = None,
    ) -> None:
        self._factory = session_factory
        self._due_after = dict(due_after) if due_after is not None else dict(DEFAULT_DUE_AFTER)
        self._rul = rul

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        rul: RulBound | None = None,
    ) -> OpenTaskForAlert:
        """A handler with the due dates of ``settings`` (``SM_MAINTENANCE_DUE_*_H``) and the RUL source ``rul``
        (the runtime injects it; None: due dates by severity only)."""
        return cls(session_factory, due_after_from_settings(settings), rul=rul)

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        async with unit_of_work(self._factory) as session:
            task = await SchedulingService(session, rul=self._rul).open_for_alert(event, due_after=self._due_after)
            task_id, priority = (task.id, task.priority) if task is not None else (None, None)
        if task_id is None:
            return
        MAINTENANCE_TASKS_OPENED_TOTAL.labels(source="agent", priority=priority).inc()
        logger.info(
            "maintenance task %s opened for alert %s (%s, %s)",
            task_id,
            event.alert_id,
            event.sensor_id,
            event.rule,
            extra={"event_id": str(event.event_id), "priority": priority},
        )


__all__ = ["HANDLER_NAME", "OpenTaskForAlert"]
