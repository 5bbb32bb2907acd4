"""Transactional outbox and dead letters of the event bus."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import JSON, TZDateTime, bigint_identity_pk, created_at_column


class OutboxEvent(Base):
    """An event written in the same transaction as the change it describes; published after the commit.

    The relay reads ``WHERE published_at IS NULL ORDER BY id`` (partial index ``ix_outbox_unpublished``).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = bigint_identity_pk()
    event_type: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[JSON] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    published_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class DeadLetter(Base):
    """An event delivery that failed after its retries; ``replayed_at`` is set when it is replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_dead_letters_pending", "created_at", postgresql_where=text("replayed_at IS NULL")),
        Index("ix_dead_letters_event_type", "event_type"),
    )

    id: Mapped[int] = bigint_identity_pk()
    event_type: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[JSON] = mapped_column(JSONB, nullable=False)
    handler: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = created_at_column()
    replayed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
