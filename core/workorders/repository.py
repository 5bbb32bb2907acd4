"""The work order of an incident (SQL only here; ``core.maintenance.repository`` extends it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.workorders.models import ACTIVE_TASK_STATUSES, MaintenanceTask


class WorkOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def active_task(self, incident_id: int) -> MaintenanceTask | None:
        """The incident's open or in-progress work order (at most one: ``uq_maintenance_tasks_incident_id_active``)."""
        return (
            await self._session.scalars(
                select(MaintenanceTask)
                .where(
                    MaintenanceTask.incident_id == incident_id,
                    MaintenanceTask.status.in_(ACTIVE_TASK_STATUSES),
                )
                .execution_options(populate_existing=True)
            )
        ).first()


__all__ = ["WorkOrderRepository"]
