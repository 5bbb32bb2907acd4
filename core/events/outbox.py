"""Writing events to the transactional outbox (DESIGN.md §5.2).

Call ``add_to_outbox(session, event)`` inside the unit of work that changes the data the event describes. The
row is flushed in the caller's transaction, never committed here: the event exists exactly when the data does
(a rollback discards both). After the commit, wake the relay (``core.events.relay.after_commit`` /
``OutboxRelay.notify``) so the event reaches the bus without waiting for the next poll.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.repositories.outbox import OutboxRepository
from core.events.types import Event


async def add_to_outbox(session: AsyncSession, event: Event) -> None:
    """Store ``event`` in the outbox in the session's current transaction (flush only)."""
    await OutboxRepository(session).add(event.event_type, event.to_payload())


__all__ = ["add_to_outbox"]
