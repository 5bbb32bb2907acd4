"""Webhook subscriptions and the record of every notification delivery (webhook or e-mail)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base
from core.db.types import JSON, TZDateTime, bigint_identity_pk, created_at_column, in_list

DELIVERY_CHANNELS = ("webhook", "email")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class Webhook(Base):
    """An HTTP endpoint subscribed to event types (``event_types`` empty = every event)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = bigint_identity_pk()
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    event_types: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, default=list, server_default=text("'{}'::text[]")
    )
    is_active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=text("true")
    )
    created_at: Mapped[datetime] = created_at_column()

    deliveries: Mapped[list[NotificationDelivery]] = relationship(
        back_populates="webhook", lazy="raise", passive_deletes=True
    )


class NotificationDelivery(Base):
    """One notification of one event to one target; retried until ``delivered`` or ``failed``.

    ``webhook_id`` is set for the webhook channel (check ``webhook_has_webhook_id``); e-mail deliveries
    carry the address in ``target``.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint(in_list("channel", DELIVERY_CHANNELS), name="channel"),
        CheckConstraint(in_list("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("channel <> 'webhook' OR webhook_id IS NOT NULL", name="webhook_has_webhook_id"),
        Index("ix_notification_deliveries_webhook_id", "webhook_id"),
        Index(
            "ix_notification_deliveries_pending", "created_at", postgresql_where=text("status = 'pending'")
        ),
    )

    id: Mapped[int] = bigint_identity_pk()
    webhook_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("webhooks.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(
        Text, nullable=False, default="webhook", server_default=text("'webhook'")
    )
    target: Mapped[str] = mapped_column(Text, nullable=False)
    event: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[JSON] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(
        Text, nullable=False, default="pending", server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    webhook: Mapped[Webhook | None] = relationship(back_populates="deliveries", lazy="raise")
