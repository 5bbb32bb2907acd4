"""Alerts raised from anomalies, with de-duplication: one unresolved alert per (sensor_id, rule)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Double, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, in_list
from core.incidents.models import SEVERITIES

ALERT_STATUSES = ("open", "acknowledged", "resolved")
#: Statuses that count as "open" for de-duplication: an acknowledged alert is still unresolved.
ALERT_UNRESOLVED_STATUSES = ("open", "acknowledged")
ALERT_SEVERITIES = SEVERITIES


class Alert(Base):
    """An alert on a sensor for one rule, part of an incident of its asset (``incident_id``).

    The partial unique index ``uq_alerts_sensor_id_rule_unresolved`` allows at most one unresolved
    (``open`` or ``acknowledged``) alert per (sensor_id, rule); any number of resolved ones. The alerting
    agent increments ``anomaly_count`` of the unresolved alert instead of opening a second one
    (``INSERT ... ON CONFLICT (sensor_id, rule) WHERE status IN ('open', 'acknowledged') DO UPDATE``).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(in_list("status", ALERT_STATUSES), name="status"),
        CheckConstraint(in_list("severity", ALERT_SEVERITIES), name="severity"),
        CheckConstraint("anomaly_count >= 0", name="anomaly_count_non_negative"),
        CheckConstraint(
            "status <> 'acknowledged' OR acknowledged_at IS NOT NULL", name="acknowledged_at_set"
        ),
        CheckConstraint("status <> 'resolved' OR resolved_at IS NOT NULL", name="resolved_at_set"),
        Index(
            "uq_alerts_sensor_id_rule_unresolved",
            "sensor_id",
            "rule",
            unique=True,
            postgresql_where=text("status IN ('open', 'acknowledged')"),
        ),
        Index("ix_alerts_status_opened_at", "status", "opened_at"),
        Index("ix_alerts_sensor_id_opened_at", "sensor_id", "opened_at"),
        Index("ix_alerts_incident_id", "incident_id"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False
    )
    rule: Mapped[str] = mapped_column(Text, nullable=False)
    severity: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, default="open", server_default=text("'open'"))
    opened_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    anomaly_count: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default=text("1"))
    incident_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("incidents.id", ondelete="SET NULL")
    )
    event_opened_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    """Event time (the reading's timestamp) at which the alert opened; ``opened_at`` is when it was written."""
    last_seen_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """Event time of the latest matching reading the alert counted."""
    event_resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    peak_score: Mapped[float | None] = mapped_column(Double)
    """Highest anomaly score the alert counted (anomaly rules), else None."""
