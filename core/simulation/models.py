"""Ground truth of the demo faults the seed script injects into generated readings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Double, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column


class InjectedFault(Base):
    """A fault of ``kind`` (e.g. spike, drift, stuck, noise) on one sensor from ``started_at`` to ``ended_at``."""

    __tablename__ = "injected_faults"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ended_after_started"),
        Index("ix_injected_faults_sensor_id_started_at", "sensor_id", "started_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    magnitude: Mapped[float | None] = mapped_column(Double)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
