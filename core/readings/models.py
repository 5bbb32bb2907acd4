"""Sensor readings: the time-series table (a TimescaleDB hypertable when the extension exists).

The hypertable, compression, retention and the ``sensor_readings_hourly`` rollup are created by the
TimescaleDB migration (see ``core/db/timescale.py``), not by the metadata: the ORM sees a plain table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, ForeignKey, Index, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime

#: Name of the hourly rollup (continuous aggregate with TimescaleDB, live view on plain PostgreSQL).
HOURLY_VIEW = "sensor_readings_hourly"


class SensorReading(Base):
    """One value of one sensor at one instant. PRIMARY KEY (timestamp, sensor_id) de-duplicates re-sends."""

    __tablename__ = "sensor_readings"

    timestamp: Mapped[datetime] = mapped_column(TZDateTime, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(
        Text, ForeignKey("sensors.sensor_id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[float] = mapped_column(Double, nullable=False)
    unit: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[float | None] = mapped_column(Double)
    ingested_at: Mapped[datetime] = mapped_column(TZDateTime, nullable=False, server_default=func.now())


# Latest readings of one sensor: (sensor_id, timestamp DESC). Also serves the FK.
Index(
    "ix_sensor_readings_sensor_id_timestamp",
    SensorReading.sensor_id,
    SensorReading.timestamp.desc(),
)
