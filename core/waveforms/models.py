"""Waveform sensors, snapshots and diagnoses (tables of migration 0007).

* ``waveform_sensors``: the configuration of a ``vibration_waveform`` sensor (one row per such sensor in
  ``sensors``): the bearing it watches (a geometry name of ``core.ml.vibration.bearings``), where it is mounted,
  the shaft's nominal speed (used when a snapshot carries no ``rpm``), an optional envelope band and the ids of
  its two feature sensors (RMS and kurtosis readings, ordinary sensors of the same asset).
* ``waveform_snapshots``: one waveform per (sensor, timestamp), samples as little-endian float32 bytes
  (``samples``, 4 bytes a sample; NULL once purged by retention, the row and its features stay).
* ``waveform_diagnoses``: one diagnosis per snapshot (``snapshot_id`` unique: a redelivered event finds it and
  does nothing), with the alert it raised or counted on (``alert_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Double, ForeignKey, Index, Integer, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column

#: ``sensors.type`` of a waveform sensor.
WAVEFORM_SENSOR_TYPE = "vibration_waveform"


class WaveformSensor(Base):
    """How to diagnose the snapshots of one ``vibration_waveform`` sensor."""

    __tablename__ = "waveform_sensors"
    __table_args__ = (
        CheckConstraint("nominal_rpm > 0", name="nominal_rpm_positive"),
        CheckConstraint(
            "(band_low_hz IS NULL AND band_high_hz IS NULL) OR (band_low_hz > 0 AND band_high_hz > band_low_hz)",
            name="band_ordered",
        ),
    )

    sensor_id: Mapped[str] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), primary_key=True)
    bearing: Mapped[str] = mapped_column(Text, nullable=False)
    mounting: Mapped[str | None] = mapped_column(Text)
    nominal_rpm: Mapped[float] = mapped_column(Double, nullable=False)
    band_low_hz: Mapped[float | None] = mapped_column(Double)
    band_high_hz: Mapped[float | None] = mapped_column(Double)
    rms_sensor_id: Mapped[str] = mapped_column(Text, nullable=False)
    kurtosis_sensor_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class WaveformSnapshot(Base):
    """One waveform of one sensor at one instant; (sensor_id, timestamp) de-duplicates re-sends."""

    __tablename__ = "waveform_snapshots"
    __table_args__ = (
        CheckConstraint("sample_rate_hz > 0", name="sample_rate_positive"),
        CheckConstraint("sample_count > 0", name="sample_count_positive"),
        CheckConstraint("rpm IS NULL OR rpm > 0", name="rpm_positive"),
        Index("uq_waveform_snapshots_sensor_id_timestamp", "sensor_id", "timestamp", unique=True),
        Index("ix_waveform_snapshots_timestamp", "timestamp"),
    )

    id: Mapped[int] = bigint_identity_pk()
    sensor_id: Mapped[str] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    sample_rate_hz: Mapped[float] = mapped_column(Double, nullable=False)
    sample_count: Mapped[int] = mapped_column(Integer, nullable=False)
    rpm: Mapped[float | None] = mapped_column(Double)
    """Shaft speed measured with the snapshot; None: the sensor's nominal speed applies."""
    samples: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Little-endian float32, ``sample_count`` × 4 bytes; None once purged (retention)."""
    rms: Mapped[float] = mapped_column(Double, nullable=False)
    kurtosis: Mapped[float] = mapped_column(Double, nullable=False)
    peak: Mapped[float] = mapped_column(Double, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class WaveformDiagnosis(Base):
    """The diagnosis of one snapshot (``fault``: outer race, inner race, ball, none or unknown)."""

    __tablename__ = "waveform_diagnoses"
    __table_args__ = (
        Index("uq_waveform_diagnoses_snapshot_id", "snapshot_id", unique=True),
        Index("ix_waveform_diagnoses_sensor_id_timestamp", "sensor_id", "timestamp"),
        Index("ix_waveform_diagnoses_alert_id", "alert_id"),
    )

    id: Mapped[int] = bigint_identity_pk()
    snapshot_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("waveform_snapshots.id", ondelete="SET NULL")
    )
    sensor_id: Mapped[str] = mapped_column(Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(TZDateTime, nullable=False)
    """The snapshot's timestamp (event time)."""
    fault: Mapped[str] = mapped_column(Text, nullable=False)
    score_db: Mapped[float | None] = mapped_column(Double)
    """The named fault's score (the best candidate's when none is named)."""
    threshold_db: Mapped[float | None] = mapped_column(Double)
    scores_db: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    defect_frequencies: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    """Everything ``Diagnosis.to_dict()`` returned (non-finite numbers as null), plus the band used."""
    bearing: Mapped[str] = mapped_column(Text, nullable=False)
    rpm: Mapped[float] = mapped_column(Double, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    """Why the snapshot could not be diagnosed (``fault`` is then ``unknown``)."""
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()


__all__ = ["WAVEFORM_SENSOR_TYPE", "WaveformDiagnosis", "WaveformSensor", "WaveformSnapshot"]
