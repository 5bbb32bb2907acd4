"""Transactional outbox (SQL only here). See core/events/relay.py for the delivery protocol."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.events.models import OutboxEvent


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, event_type: str, payload: dict[str, Any]) -> int:
        """Insert one unpublished row in the caller's transaction (flushes; never commits). Returns its id."""
        result = await self._session.execute(
            insert(OutboxEvent).values(event_type=event_type, payload=payload).returning(OutboxEvent.id)
        )
        return int(result.scalar_one())

    async def add_many(self, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Insert unpublished rows ``(event_type, payload)`` with one statement, in order (flushes only)."""
        if rows:
            await self._session.execute(
                insert(OutboxEvent), [{"event_type": t, "payload": p} for t, p in rows]
            )

    async def claim_unpublished(self, limit: int) -> Sequence[OutboxEvent]:
        """Lock up to ``limit`` unpublished rows, oldest first, skipping rows another transaction holds.

        ``SELECT … WHERE published_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED LIMIT n``: two relays (or two
        API processes) never claim the same row while its transaction is open.
        """
        stmt = (
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self._session.scalars(stmt)).all()

    async def mark_published(self, ids: Sequence[int], when: datetime | None = None) -> None:
        if not ids:
            return
        await self._session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(list(ids)))
            .values(published_at=when or datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )

    async def count_unpublished(self) -> int:
        stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        return int((await self._session.execute(stmt)).scalar_one())

    async def get(self, outbox_id: int) -> OutboxEvent | None:
        return await self._session.get(OutboxEvent, outbox_id)
