"""Incidents: one fault of one asset, seen as one or more alerts, handled by at most one open work order.

Alerts on the same asset within the correlation window join one incident (``alerts.incident_id``); the incident
carries the evidence (first/last seen in event time, peak severity and score, how many alerts) and its timeline
(``incident_events``). A sensor without an asset has incidents of its own (``sensor_id`` set, ``asset_id`` NULL).

Statuses: ``open`` (an alert is unresolved or its work order is active), ``resolved`` (every alert resolved and
no active work order: an alert of the asset within the correlation window re-opens it), ``closed`` (its work
order was completed or cancelled, or it stayed resolved past the window).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Double, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, in_list

#: The severity scale of alerts and incidents, lowest first (an incident has the peak severity of its alerts).
SEVERITIES = ("info", "low", "medium", "high", "critical")
INCIDENT_STATUSES = ("open", "resolved", "closed")
INCIDENT_EVENT_KINDS = (
    "opened",
    "alert_joined",
    "alert_resolved",
    "resolved",
    "reopened",
    "work_order_opened",
    "escalated",
    "closed",
    "regime_change",
    "reference_relearned",
)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(in_list("status", INCIDENT_STATUSES), name="status"),
        CheckConstraint(in_list("severity", SEVERITIES), name="severity"),
        CheckConstraint("asset_id IS NOT NULL OR sensor_id IS NOT NULL", name="scope"),
        Index("ix_incidents_asset_id_status", "asset_id", "status"),
        Index("ix_incidents_sensor_id_status", "sensor_id", "status"),
        Index("ix_incidents_status_last_seen_at", "status", "last_seen_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    asset_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("assets.id", ondelete="CASCADE"))
    sensor_id: Mapped[str | None] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"))
    """Set only for a sensor without an asset."""
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'open'"))
    severity: Mapped[str] = mapped_column(Text, nullable=False)
    """Peak severity of its alerts."""
    first_seen_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    peak_score: Mapped[float | None] = mapped_column(Double)
    alert_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    opened_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class IncidentEvent(Base):
    """One entry of an incident's timeline: ``at`` when it was written, ``event_at`` the event time it is about."""

    __tablename__ = "incident_events"
    __table_args__ = (
        CheckConstraint(in_list("kind", INCIDENT_EVENT_KINDS), name="kind"),
        Index("ix_incident_events_incident_id_at", "incident_id", "at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    incident_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    event_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"))
    task_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("maintenance_tasks.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(Text)
