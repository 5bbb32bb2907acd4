"""Dead letters of the event bus (SQL only here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.pages import equal_to, fetch_page
from core.events.models import DeadLetter
from core.events.schemas import DeadLetterFilter


class DeadLetterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, *, event_type: str, payload: dict[str, Any], handler: str, error: str, attempts: int
    ) -> int:
        result = await self._session.execute(
            insert(DeadLetter)
            .values(event_type=event_type, payload=payload, handler=handler, error=error, attempts=attempts)
            .returning(DeadLetter.id)
        )
        return int(result.scalar_one())

    async def list(self, where: DeadLetterFilter, *, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        """A page of dead letters (newest first) and the total matching the filter."""
        conditions = equal_to((DeadLetter.handler, where.handler), (DeadLetter.event_type, where.event_type))
        if where.replayed is True:
            conditions.append(DeadLetter.replayed_at.is_not(None))
        elif where.replayed is False:
            conditions.append(DeadLetter.replayed_at.is_(None))
        newest_first = (DeadLetter.id.desc(),)
        return await fetch_page(self._session, DeadLetter, conditions, newest_first, limit=limit, offset=offset)

    async def get(self, dead_letter_id: int) -> DeadLetter | None:
        return await self._session.get(DeadLetter, dead_letter_id)

    async def claim_for_replay(self, dead_letter_id: int, when: datetime | None = None) -> DeadLetter | None:
        """Set ``replayed_at`` if it is not set yet (atomically, row locked until commit); None otherwise."""
        stmt = (
            update(DeadLetter)
            .where(DeadLetter.id == dead_letter_id, DeadLetter.replayed_at.is_(None))
            .values(replayed_at=when or datetime.now(UTC))
            .returning(DeadLetter)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.scalars(stmt)).one_or_none()
