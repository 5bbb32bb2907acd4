"""Alerting: rules, the lifecycle history of alerts, what each alert observed, and maintenance windows.

* ``alert_rules``: what turns observations into alerts (kind ``anomaly_score`` | ``threshold`` |
  ``rate_of_change`` | ``flatline`` | ``no_data``), scoped to a sensor type, one sensor, or every sensor (both
  NULL), with hysteresis counted in readings, not minutes: open after ``open_after_k`` matching readings among
  the sensor's last ``window_readings`` (matches older than ``max_age_minutes`` before the reading, when set, do
  not count); resolve after ``resolve_after_m`` consecutive normal readings once ``min_hold_minutes`` have passed
  since it opened (all in event time: the readings' timestamps). ``unit`` is the unit of a threshold rule's
  bounds; the rule applies to a sensor only when the sensor's unit converts to it. ``alerts.rule`` holds the
  rule's ``name``.
* ``alert_events``: every lifecycle change of an alert (``from_status`` NULL when it opened).
* ``alert_observations``: the matching observations an alert counted, one row per (alert, reading timestamp);
  ``anomaly_id`` links the anomaly when the rule is an anomaly rule. ``alerts.anomaly_count`` is the number of
  these rows, so a redelivered event (same reading, same anomaly) changes nothing: the natural key makes the
  alerting handlers idempotent.
* ``maintenance_windows``: planned downtime of an asset; alerts of its sensors are suppressed inside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.alerts.models import ALERT_SEVERITIES
from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column, in_list

RULE_KINDS = ("anomaly_score", "threshold", "rate_of_change", "flatline", "no_data")


class AlertRule(Base):
    """A rule of the alerting agent; at most one of ``sensor_type`` / ``sensor_id`` (neither = every sensor)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(in_list("kind", RULE_KINDS), name="kind"),
        CheckConstraint(in_list("severity", ALERT_SEVERITIES), name="severity"),
        CheckConstraint("sensor_type IS NULL OR sensor_id IS NULL", name="one_scope"),
        CheckConstraint("open_after_k >= 1", name="open_after_k_positive"),
        CheckConstraint("window_readings >= open_after_k", name="window_covers_k"),
        CheckConstraint("max_age_minutes IS NULL OR max_age_minutes > 0", name="max_age_positive"),
        CheckConstraint("resolve_after_m >= 1", name="resolve_after_m_positive"),
        CheckConstraint("min_hold_minutes >= 0", name="min_hold_not_negative"),
    )

    id: Mapped[int] = bigint_identity_pk()
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    sensor_type: Mapped[str | None] = mapped_column(Text)
    sensor_id: Mapped[str | None] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    severity: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'medium'"))
    unit: Mapped[str | None] = mapped_column(Text)
    open_after_k: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    window_readings: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("20"))
    max_age_minutes: Mapped[float | None] = mapped_column(Double)
    resolve_after_m: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3"))
    min_hold_minutes: Mapped[float] = mapped_column(Double, nullable=False, server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = created_at_column()


class AlertEvent(Base):
    """One lifecycle change of an alert: who (``actor``), when, from which status to which, and why."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_id_at", "alert_id", "at"),)

    id: Mapped[int] = bigint_identity_pk()
    alert_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
    )
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)


class AlertObservation(Base):
    """A matching observation counted by an alert (natural key: the alert and the reading's timestamp)."""

    __tablename__ = "alert_observations"
    __table_args__ = (Index("ix_alert_observations_anomaly_id", "anomaly_id"),)

    alert_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    observed_at: Mapped[datetime] = mapped_column(TZDateTime, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)
    anomaly_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("anomalies.id", ondelete="SET NULL")
    )


class MaintenanceWindow(Base):
    """Planned downtime of an asset: ``[starts_at, ends_at)``."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        Index("ix_maintenance_windows_asset_id_ends_at", "asset_id", "ends_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    asset_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False
    )
    starts_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
