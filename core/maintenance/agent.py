"""Scheduling agent: on ``AlertRaised``, one work order per incident (opened by a high or critical alert,
escalated by later more severe ones).

The policy lives in ``core.maintenance.scheduling.SchedulingService.open_for_alert``: priority from the severity,
due date from the alert's event time plus ``SM_MAINTENANCE_DUE_CRITICAL_H`` (4) / ``SM_MAINTENANCE_DUE_HIGH_H``
(24), linked ``alert_id`` and ``incident_id``. Idempotent under redelivery (unique ``alert_id`` and one active task
per incident). ``MaintenanceTaskCreated`` / ``MaintenanceTaskEscalated`` go to the outbox in the same transaction.
Counter: ``sm_maintenance_tasks_opened_total{source="agent"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.session import unit_of_work
from core.events.bus import EventBus, Subscription
from core.events.types import AlertRaised, Event
from core.maintenance.policy import DEFAULT_DUE_AFTER, due_after_from_settings
from core.maintenance.scheduling import SchedulingService
from core.observability.metrics import MAINTENANCE_TASKS_OPENED_TOTAL

logger = logging.getLogger("core.maintenance.agent")

HANDLER_NAME = "scheduling.open_task"


class OpenTaskForAlert:
    """The handler: one transaction per delivery."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        due_after: Mapping[str, timedelta] | None = None,
        *,
        app_state: Any = None,
    ) -> None:
        self._factory = session_factory
        self._app_state = app_state
        self._due_after = dict(due_after) if due_after is not None else None

    @classmethod
    def for_app(cls, app_state: Any) -> OpenTaskForAlert:
        """A handler using ``app_state.session_factory`` (looked up at delivery time)."""
        return cls(app_state=app_state)

    def _due(self) -> dict[str, timedelta]:
        if self._due_after is not None:
            return self._due_after
        settings = getattr(self._app_state, "settings", None)
        return due_after_from_settings(settings) if settings is not None else dict(DEFAULT_DUE_AFTER)

    def _session_factory(self) -> async_sessionmaker[AsyncSession]:
        if self._factory is not None:
            return self._factory
        return self._app_state.session_factory  # type: ignore[no-any-return]

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AlertRaised)
        async with unit_of_work(self._session_factory()) as session:
            task = await SchedulingService(session).open_for_alert(event, due_after=self._due())
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


def subscribe(bus: EventBus, app_state: Any) -> Subscription:
    """Registry hook: ``OpenTaskForAlert`` on ``AlertRaised`` under ``scheduling.open_task``."""
    return bus.subscribe(AlertRaised, OpenTaskForAlert.for_app(app_state), name=HANDLER_NAME)


__all__ = ["HANDLER_NAME", "OpenTaskForAlert", "subscribe"]
