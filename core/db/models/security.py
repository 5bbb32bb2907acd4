"""API keys (hashed, never stored in clear) and idempotency records of write requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.models._types import JSON, TZDateTime, bigint_identity_pk, created_at_column, in_list

IDEMPOTENCY_STATUSES = ("in_progress", "completed")


class ApiKey(Base):
    """An API key: ``key_hash`` is a hash of the secret; ``scopes`` is a text[] such as ``{ingest, read}``.

    The bootstrap key from the settings is not required to have a row; code that needs an ``api_key_id``
    for it (idempotency records) registers it here once, under its hash.
    """

    __tablename__ = "api_keys"
    id: Mapped[int] = bigint_identity_pk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, default=list, server_default=text("'{}'::text[]")
    )
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)


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
