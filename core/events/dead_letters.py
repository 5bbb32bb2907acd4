"""Dead letters: listing them and replaying one (used by the admin API and the CLI).

A dead letter is one (event, handler) delivery that failed after all its retries. Replaying it re-publishes the
stored event to **that handler only** (to every handler when the failure was the relay's own, i.e. the row could
not be decoded at the time) and sets ``replayed_at`` — atomically, so a dead letter is replayed at most once
through this service (a second replay is a 409). The event is queued on the bus of the process doing the replay
before the transaction that sets ``replayed_at`` commits: if that commit fails the dead letter stays pending
(the handler may then see the event twice, which idempotent handlers tolerate). If the handler fails again, the
bus writes a *new* dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound, ValidationFailed
from core.events.bus import Delivery
from core.events.dead_letter_repository import DeadLetterRepository
from core.events.models import DeadLetter
from core.events.port import Bus
from core.events.relay import RELAY_HANDLER_NAME
from core.events.schemas import DeadLetterFilter
from core.events.types import UnknownEventType, event_from_row


@dataclass(frozen=True)
class Replay:
    dead_letter: DeadLetter
    handlers: list[str]
    delivery: Delivery


class DeadLetterService:
    def __init__(self, session: AsyncSession) -> None:
        self._repo = DeadLetterRepository(session)

    async def page(self, where: DeadLetterFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[DeadLetter], int]:
        return await self._repo.list(where, limit=limit, offset=offset)

    async def get(self, dead_letter_id: int) -> DeadLetter:
        row = await self._repo.get(dead_letter_id)
        if row is None:
            raise NotFound(f"dead letter {dead_letter_id} does not exist")
        return row

    async def replay(self, dead_letter_id: int, bus: Bus) -> Replay:
        """Mark the dead letter replayed and queue its event for the handler that failed (caller commits).

        Raises NotFound (404), Conflict (409: already replayed, or the handler is not subscribed on ``bus``) or
        ValidationFailed (422: the stored payload is not a valid event of its type).
        """
        row = await self._repo.claim_for_replay(dead_letter_id)
        if row is None:
            existing = await self.get(dead_letter_id)  # 404 when it does not exist
            raise Conflict(
                f"dead letter {dead_letter_id} was already replayed at {existing.replayed_at.isoformat()}"
                if existing.replayed_at
                else f"dead letter {dead_letter_id} is being replayed by another request"
            )
        try:
            event = event_from_row(row.event_type, row.payload)
        except (UnknownEventType, ValidationError) as exc:
            raise ValidationFailed(
                f"dead letter {dead_letter_id} holds no valid {row.event_type!r} event: {type(exc).__name__}"
            ) from exc
        if row.handler == RELAY_HANDLER_NAME:
            handlers = [s.name for s in bus.handlers_for(event)]
            delivery = await bus.publish(event)
        elif bus.has_handler(row.handler):
            handlers = [row.handler]
            delivery = await bus.publish(event, handler=row.handler)
        else:
            raise Conflict(
                f"handler {row.handler!r} of dead letter {dead_letter_id} is not subscribed in this process"
            )
        return Replay(dead_letter=row, handlers=handlers, delivery=delivery)


__all__ = ["DeadLetterService", "Replay"]
