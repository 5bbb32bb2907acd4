"""Maintenance work orders and the logs that close them (the outcome is a training label).

The tables live below incidents and alerts (an incident looks up its active work order); what is done with them —
opening them for alerts, completing them, the labels — is ``core.maintenance``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column, in_list

TASK_STATUSES = ("open", "in_progress", "done", "cancelled")
#: Statuses of a task that still needs work (a second task for the same cause is not opened meanwhile).
ACTIVE_TASK_STATUSES = ("open", "in_progress")
TASK_PRIORITIES = ("low", "medium", "high", "critical")
LOG_OUTCOMES = ("fault_confirmed", "no_fault_found")


class MaintenanceTask(Base):
    """A work order, usually opened for an incident; at most one task per alert (``uq_maintenance_tasks_alert_id``)
    and one open or in-progress task per incident (``uq_maintenance_tasks_incident_id_active``)."""

    __tablename__ = "maintenance_tasks"
    __table_args__ = (
        CheckConstraint(in_list("status", TASK_STATUSES), name="status"),
        CheckConstraint(in_list("priority", TASK_PRIORITIES), name="priority"),
        UniqueConstraint("alert_id"),
        Index(
            "uq_maintenance_tasks_incident_id_active",
            "incident_id",
            unique=True,
            postgresql_where=text("status IN ('open', 'in_progress')"),
        ),
        Index("ix_maintenance_tasks_status_due_at", "status", "due_at"),
        Index("ix_maintenance_tasks_asset_id_status", "asset_id", "status"),
        Index("ix_maintenance_tasks_sensor_id", "sensor_id"),
    )

    id: Mapped[int] = bigint_identity_pk()
    asset_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("assets.id", ondelete="SET NULL"))
    sensor_id: Mapped[str | None] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="SET NULL"))
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"))
    """The alert that opened the work order (the first high/critical alert of its incident)."""
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="SET NULL")
    )
    event_opened_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """Event time (reading timestamp) of the evidence that opened it; ``due_at`` counts from it."""
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(
        Text, nullable=False, default="medium", server_default=text("'medium'")
    )
    status: Mapped[str] = mapped_column(Text, nullable=False, default="open", server_default=text("'open'"))
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    assignee: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()

    logs: Mapped[list[MaintenanceLog]] = relationship(
        back_populates="task", lazy="raise", passive_deletes=True
    )


class MaintenanceLog(Base):
    """What the technician found when closing a task: ``fault_confirmed`` or ``no_fault_found``."""

    __tablename__ = "maintenance_logs"
    __table_args__ = (
        CheckConstraint(in_list("outcome", LOG_OUTCOMES), name="outcome"),
        Index("ix_maintenance_logs_task_id", "task_id"),
        Index("ix_maintenance_logs_completed_at", "completed_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("maintenance_tasks.id", ondelete="CASCADE"), nullable=False
    )
    completed_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    technician: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)

    task: Mapped[MaintenanceTask] = relationship(back_populates="logs", lazy="raise")
