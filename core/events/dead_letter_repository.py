"""Dead letters of the event bus (SQL only here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.events.models import DeadLetter


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

    @staticmethod
    def _filters(
        handler: str | None, event_type: str | None, replayed: bool | None
    ) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if handler is not None:
            filters.append(DeadLetter.handler == handler)
        if event_type is not None:
            filters.append(DeadLetter.event_type == event_type)
        if replayed is True:
            filters.append(DeadLetter.replayed_at.is_not(None))
        elif replayed is False:
            filters.append(DeadLetter.replayed_at.is_(None))
        return filters

    async def list(
        self,
        *,
        handler: str | None = None,
        event_type: str | None = None,
        replayed: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[DeadLetter], int]:
        """A page of dead letters (newest first) and the total matching the filters."""
        filters = self._filters(handler, event_type, replayed)
        total = (
            await self._session.execute(select(func.count()).select_from(DeadLetter).where(*filters))
        ).scalar_one()
        rows = (
            await self._session.scalars(
                select(DeadLetter).where(*filters).order_by(DeadLetter.id.desc()).limit(limit).offset(offset)
            )
        ).all()
        return rows, int(total)

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
