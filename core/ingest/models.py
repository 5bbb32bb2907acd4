"""Idempotency records of write requests (``Idempotency-Key`` header), per API key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import JSON, TZDateTime, created_at_column, in_list

IDEMPOTENCY_STATUSES = ("in_progress", "completed")


class IdempotencyKey(Base):
    """The outcome of a request sent with an ``Idempotency-Key`` header, per API key.

    ``status`` is ``in_progress`` while the first request runs, then ``completed`` with the stored response
    (``response`` body as jsonb and ``response_status_code``). A replay with a different ``request_hash``
    is a conflict. Rows past ``expires_at`` are purged (index ``ix_idempotency_keys_expires_at``).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(in_list("status", IDEMPOTENCY_STATUSES), name="status"),
        CheckConstraint(
            "status <> 'completed' OR response_status_code IS NOT NULL", name="completed_has_status_code"
        ),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    api_key_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        Text, nullable=False, default="in_progress", server_default=text("'in_progress'")
    )
    response: Mapped[JSON | None] = mapped_column(JSONB)
    response_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(
        TZDateTime, nullable=False, server_default=text("(now() + interval '24 hours')")
    )
