"""ML operations: drift checks of the drift agent (core/ml/drift/statistics.py, core/ml/drift/agent.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Double, ForeignKey, Index, Integer, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column


class DriftCheck(Base):
    """One drift check of one sensor: KS test and PSI of a recent window against a reference window.

    At most one row per (sensor_id, recent_end): re-running a check over the same data inserts nothing, which is
    what makes the agent's ``DriftDetected`` emission idempotent. ``retrain_requested`` is set on the check that
    opened a drift episode (the previous check of the sensor was not drifted) and emitted ``DriftDetected``.
    """

    __tablename__ = "drift_checks"
    __table_args__ = (
        UniqueConstraint("sensor_id", "recent_end"),
        Index("ix_drift_checks_checked_at", "checked_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False
    )
    sensor_type: Mapped[str] = mapped_column(Text, nullable=False)
    checked_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    reference_start: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    reference_end: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    recent_start: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    recent_end: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    reference_count: Mapped[int] = mapped_column(Integer, nullable=False)
    recent_count: Mapped[int] = mapped_column(Integer, nullable=False)
    ks_statistic: Mapped[float] = mapped_column(Double, nullable=False)
    ks_pvalue: Mapped[float] = mapped_column(Double, nullable=False)
    psi: Mapped[float] = mapped_column(Double, nullable=False)
    ks_pvalue_threshold: Mapped[float] = mapped_column(Double, nullable=False)
    psi_threshold: Mapped[float] = mapped_column(Double, nullable=False)
    drifted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    retrain_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    created_at: Mapped[datetime] = created_at_column()
