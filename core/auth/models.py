"""API keys (hashed, never stored in clear)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import TZDateTime, bigint_identity_pk, created_at_column


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
