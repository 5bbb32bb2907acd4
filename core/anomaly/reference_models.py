"""Healthy references of sensors: what the degradation detector compares a sensor's level with.

One row per (re)learning of a sensor's reference, newest ``started_at`` = current:

* ``initial``: learned on the sensor's first readings (at least ``SM_REFERENCE_MIN_READINGS`` spanning
  ``SM_REFERENCE_MIN_HOURS``);
* ``regime_change``: after a regime gap (the machine stopped), re-centred on the first
  ``SM_REFERENCE_RECENTER_READINGS`` readings after it, keeping the previous scale (``reason`` says how long the
  gap was; ``previous_median`` keeps the level before, so the step stays visible);
* ``repair``: after a work order of the asset was completed with ``fault_confirmed``, re-centred on the readings
  after the repair.

``status``: ``learning`` until enough readings, then ``ready`` (``median``, ``scale``, ``readings``,
``ready_at``: event time of the last reading learned); ``superseded`` once a newer row exists. ``longest_run``
is the longest run of equal consecutive readings seen while learning (the flat-line rule needs a longer one).
Natural key ``(sensor_id, started_at)``: the agent re-learning the same thing twice inserts nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Double, ForeignKey, Integer, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column, in_list

REFERENCE_KINDS = ("initial", "regime_change", "repair")
REFERENCE_STATUSES = ("learning", "ready", "superseded")


class SensorReference(Base):
    __tablename__ = "sensor_references"
    __table_args__ = (
        CheckConstraint(in_list("kind", REFERENCE_KINDS), name="kind"),
        CheckConstraint(in_list("status", REFERENCE_STATUSES), name="status"),
        CheckConstraint("status = 'learning' OR (median IS NOT NULL AND scale > 0)", name="learned"),
        UniqueConstraint("sensor_id", "started_at"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'learning'"))
    ready_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    readings: Mapped[int | None] = mapped_column(Integer)
    median: Mapped[float | None] = mapped_column(Double)
    scale: Mapped[float | None] = mapped_column(Double)
    longest_run: Mapped[int | None] = mapped_column(Integer)
    previous_median: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = created_at_column()
