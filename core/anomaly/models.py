"""Anomalies emitted by the anomaly agent (model score or statistical baseline)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column


class Anomaly(Base):
    """An anomalous reading. At most one row per (sensor_id, timestamp, method): re-scoring is idempotent."""

    __tablename__ = "anomalies"
    __table_args__ = (
        # Also the "anomalies of a sensor over time" index (a b-tree scans backwards for DESC).
        UniqueConstraint("sensor_id", "timestamp", "method"),
        Index("ix_anomalies_timestamp", "timestamp"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False
    )
    timestamp: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    value: Mapped[float] = mapped_column(Double, nullable=False)
    score: Mapped[float] = mapped_column(Double, nullable=False)
    method: Mapped[str] = mapped_column(Text, nullable=False)
    model_name: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
