"""Expired idempotency keys: purged by a periodic lifespan task and ``python -m apps.cli purge-idempotency``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.session import unit_of_work
from core.ingest.repository import IngestRepository


async def purge_expired_keys(factory: async_sessionmaker[AsyncSession]) -> int:
    """Delete every idempotency record past ``expires_at`` in its own transaction; return how many."""
    async with unit_of_work(factory) as session:
        return await IngestRepository(session).purge_expired_idempotency_keys()


__all__ = ["purge_expired_keys"]
