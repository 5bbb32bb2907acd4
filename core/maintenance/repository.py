"""Maintenance work orders, their logs, the alerts they close and the labels they produce (SQL only here; the
tables are ``core.workorders.models``, the active work order of an incident ``core.workorders.repository``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from core.alerts.models import Alert
from core.alerts.rule_models import AlertEvent, AlertObservation
from core.anomaly.models import Anomaly
from core.db.pages import equal_to, fetch_page
from core.fleet.models import Asset, Sensor
from core.paging import sort_order
from core.readings.models import SensorReading
from core.workorders.models import ACTIVE_TASK_STATUSES, MaintenanceLog, MaintenanceTask
from core.workorders.repository import WorkOrderRepository

#: Sort keys of the task list: API name → column.
TASK_SORT_COLUMNS: dict[str, Any] = {
    "created_at": MaintenanceTask.created_at,
    "due_at": MaintenanceTask.due_at,
    "priority": MaintenanceTask.priority,
    "status": MaintenanceTask.status,
    "id": MaintenanceTask.id,
}


@dataclass(frozen=True, slots=True)
class TaskFilters:
    status: str | None = None
    asset_id: int | None = None
    sensor_id: str | None = None
    priority: str | None = None
    assignee: str | None = None
    alert_id: int | None = None


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One completed task as a training label."""

    task_id: int
    log_id: int
    sensor_id: str | None
    asset_id: int | None
    alert_id: int | None
    rule: str | None
    severity: str | None
    alert_opened_at: datetime | None
    """Event time the alert opened (the reading's timestamp)."""
    alert_resolved_at: datetime | None
    anomaly_count: int
    first_anomaly_at: datetime | None
    last_anomaly_at: datetime | None
    outcome: str
    technician: str | None
    notes: str | None
    completed_at: datetime


class MaintenanceRepository(WorkOrderRepository):
    """Every query of the maintenance service and the scheduling agent (``active_task`` of an incident is
    ``WorkOrderRepository``'s)."""

    # --- lookups ---------------------------------------------------------------------------------------------
    async def sensor_asset_id(self, sensor_id: str) -> tuple[bool, int | None]:
        """(whether the sensor exists, its asset id)."""
        row = (
            await self._session.execute(select(Sensor.asset_id).where(Sensor.sensor_id == sensor_id))
        ).one_or_none()
        return (row is not None, row[0] if row is not None else None)

    async def get_alert(self, alert_id: int) -> Alert | None:
        return await self._session.get(Alert, alert_id)

    async def asset_exists(self, asset_id: int) -> bool:
        return (await self._session.execute(select(Asset.id).where(Asset.id == asset_id))).first() is not None

    async def lock_cause(self, key: str) -> None:
        """Serialise the transactions that open tasks for one cause (released at commit or rollback)."""
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"maintenance:{key}"}
        )

    async def active_task_for_cause(
        self, *, alert_id: int, sensor_id: str, rule: str, asset_id: int | None
    ) -> MaintenanceTask | None:
        """An open or in-progress task for this alert, or for the same asset, sensor and rule."""
        same_cause = and_(
            MaintenanceTask.sensor_id == sensor_id,
            Alert.rule == rule,
            MaintenanceTask.asset_id.is_not_distinct_from(asset_id),
        )
        stmt = (
            select(MaintenanceTask)
            .outerjoin(Alert, Alert.id == MaintenanceTask.alert_id)
            .where(
                MaintenanceTask.status.in_(ACTIVE_TASK_STATUSES),
                or_(MaintenanceTask.alert_id == alert_id, same_cause),
            )
            .order_by(MaintenanceTask.id)
            .limit(1)
        )
        return (await self._session.scalars(stmt)).first()

    # --- tasks -----------------------------------------------------------------------------------------------
    async def insert_task(self, values: dict[str, Any]) -> MaintenanceTask | None:
        """Insert a task; None when a task for the same ``alert_id`` exists (ON CONFLICT DO NOTHING)."""
        stmt = (
            insert(MaintenanceTask)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[MaintenanceTask.alert_id])
            .returning(MaintenanceTask)
        )
        return (await self._session.scalars(stmt)).one_or_none()

    async def get_task(self, task_id: int) -> MaintenanceTask | None:
        return await self._session.get(MaintenanceTask, task_id)

    @staticmethod
    def _task_filters(filters: TaskFilters) -> list[ColumnElement[bool]]:
        return equal_to(
            (MaintenanceTask.status, filters.status),
            (MaintenanceTask.asset_id, filters.asset_id),
            (MaintenanceTask.sensor_id, filters.sensor_id),
            (MaintenanceTask.priority, filters.priority),
            (MaintenanceTask.assignee, filters.assignee),
            (MaintenanceTask.alert_id, filters.alert_id),
        )

    async def list_tasks(
        self, filters: TaskFilters, *, sort: str, descending: bool, limit: int, offset: int
    ) -> tuple[Sequence[MaintenanceTask], int]:
        column = TASK_SORT_COLUMNS[sort]
        if sort == "priority":  # by severity, not alphabetically
            column = func.array_position(
                literal_column("ARRAY['low','medium','high','critical']::text[]"), MaintenanceTask.priority
            )
        order = sort_order(column, MaintenanceTask.id, descending=descending)
        return await fetch_page(
            self._session, MaintenanceTask, self._task_filters(filters), order, limit=limit, offset=offset
        )

    async def update_task(
        self, task_id: int, values: dict[str, Any], *, from_statuses: Sequence[str] | None = None
    ) -> MaintenanceTask | None:
        """Update a task atomically, only while its status is one of ``from_statuses`` (any when None)."""
        stmt = update(MaintenanceTask).where(MaintenanceTask.id == task_id)
        if from_statuses is not None:
            stmt = stmt.where(MaintenanceTask.status.in_(list(from_statuses)))
        stmt = stmt.values(**values).returning(MaintenanceTask).execution_options(synchronize_session=False)
        row = (await self._session.scalars(stmt)).one_or_none()
        if row is not None:
            await self._session.refresh(row)
        return row

    # --- completion ------------------------------------------------------------------------------------------
    async def add_log(
        self, *, task_id: int, outcome: str, technician: str | None, notes: str | None
    ) -> MaintenanceLog:
        stmt = (
            insert(MaintenanceLog)
            .values(task_id=task_id, outcome=outcome, technician=technician, notes=notes)
            .returning(MaintenanceLog)
        )
        return (await self._session.scalars(stmt)).one()

    async def resolve_alert(self, alert_id: int, *, actor: str, comment: str | None = None) -> str | None:
        """Resolve the alert unless it is resolved already and record the change in ``alert_events``.

        Answers the previous status, or None when nothing changed (no such alert, or resolved already).
        """
        previous = select(Alert.status).where(Alert.id == alert_id).scalar_subquery()
        stmt = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.status != "resolved")
            .values(
                status="resolved",
                resolved_at=func.now(),
                # event time: the sensor's latest reading (its clock), not the wall clock — history stays history
                event_resolved_at=func.coalesce(
                    select(func.max(SensorReading.timestamp))
                    .where(SensorReading.sensor_id == Alert.sensor_id)
                    .scalar_subquery(),
                    func.now(),
                ),
            )
            .returning(previous)
            .execution_options(synchronize_session=False)
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            return None
        await self._session.execute(
            insert(AlertEvent).values(
                alert_id=alert_id, from_status=row[0], to_status="resolved", actor=actor, comment=comment
            )
        )
        return str(row[0])

    # --- labels ----------------------------------------------------------------------------------------------
    async def list_labels(
        self,
        *,
        sensor_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[LabelRow], int]:
        """Completed tasks joined with their log, alert and the anomalies linked to the alert
        (``alert_observations.anomaly_id``); newest first."""
        task_sensor = func.coalesce(MaintenanceTask.sensor_id, Alert.sensor_id)
        where = equal_to((task_sensor, sensor_id), (MaintenanceLog.outcome, outcome))
        if since is not None:
            where.append(MaintenanceLog.completed_at >= since)
        base = (
            select(MaintenanceLog.id)
            .join(MaintenanceTask, MaintenanceTask.id == MaintenanceLog.task_id)
            .outerjoin(Alert, Alert.id == MaintenanceTask.alert_id)
            .where(*where)
        )
        total = (await self._session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()

        anomalies = (
            select(
                func.count(Anomaly.id).label("n"),
                func.min(Anomaly.timestamp).label("first_at"),
                func.max(Anomaly.timestamp).label("last_at"),
            )
            .select_from(AlertObservation)
            .join(Anomaly, Anomaly.id == AlertObservation.anomaly_id)
            .where(AlertObservation.alert_id == MaintenanceTask.alert_id)
            .correlate(MaintenanceTask)
            .lateral("linked")
        )
        stmt = (
            select(
                MaintenanceTask.id,
                MaintenanceLog.id,
                task_sensor,
                MaintenanceTask.asset_id,
                MaintenanceTask.alert_id,
                Alert.rule,
                Alert.severity,
                Alert.event_opened_at,
                Alert.event_resolved_at,
                func.coalesce(anomalies.c.n, 0),
                anomalies.c.first_at,
                anomalies.c.last_at,
                MaintenanceLog.outcome,
                MaintenanceLog.technician,
                MaintenanceLog.notes,
                MaintenanceLog.completed_at,
            )
            .select_from(MaintenanceLog)
            .join(MaintenanceTask, MaintenanceTask.id == MaintenanceLog.task_id)
            .outerjoin(Alert, Alert.id == MaintenanceTask.alert_id)
            .outerjoin(anomalies, literal_column("true"))
            .where(*where)
            .order_by(MaintenanceLog.completed_at.desc(), MaintenanceLog.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = [LabelRow(*row) for row in (await self._session.execute(stmt)).all()]
        return rows, int(total)


__all__ = [
    "TASK_SORT_COLUMNS",
    "LabelRow",
    "MaintenanceRepository",
    "TaskFilters",
]
