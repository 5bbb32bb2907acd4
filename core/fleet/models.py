"""Assets (the machines) and their sensors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Identity, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base
from core.db.types import created_at_column

#: Default lifecycle value of ``sensors.status`` (free text: the platform uses active/inactive/retired).
SENSOR_STATUS_ACTIVE = "active"


class Asset(Base):
    """A machine that carries sensors and receives maintenance."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    site: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()

    sensors: Mapped[list[Sensor]] = relationship(back_populates="asset", lazy="raise", passive_deletes=True)


class Sensor(Base):
    """A measurement source; ``sensor_id`` is the identifier devices send with each reading."""

    __tablename__ = "sensors"
    __table_args__ = (
        Index("ix_sensors_asset_id", "asset_id"),
        Index("ix_sensors_type", "type"),
    )

    sensor_id: Mapped[str] = mapped_column(Text, primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("assets.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(Text, nullable=False)
    unit: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        Text, nullable=False, default=SENSOR_STATUS_ACTIVE, server_default=text("'active'")
    )
    created_at: Mapped[datetime] = created_at_column()

    asset: Mapped[Asset | None] = relationship(back_populates="sensors", lazy="raise")
