"""Writing events to the transactional outbox (DESIGN.md §5.2).

Call ``add_to_outbox(session, event)`` inside the unit of work that changes the data the event describes. The
row is flushed in the caller's transaction, never committed here: the event exists exactly when the data does
(a rollback discards both).

After the commit the relays of this process are woken automatically: ``add_to_outbox`` marks the session, and
a SQLAlchemy ``after_commit`` listener calls ``notify()`` on every running ``OutboxRelay`` (they register
themselves with ``register_relay``). Nothing to do in routers or services; ``core.events.relay.after_commit``
remains for code that writes outbox rows with raw SQL. Rows committed by other processes are found by the
relay's periodic poll.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.events.outbox_repository import OutboxRepository
from core.events.types import Event

logger = logging.getLogger("core.events.outbox")

_PENDING = "sm_outbox_pending"


class Notifiable(Protocol):
    def notify(self) -> None: ...


_relays: weakref.WeakSet[Any] = weakref.WeakSet()


def register_relay(relay: Notifiable) -> None:
    """Wake ``relay`` after every commit that wrote outbox rows through ``add_to_outbox`` (this process)."""
    _relays.add(relay)


def unregister_relay(relay: Notifiable) -> None:
    _relays.discard(relay)


async def add_to_outbox(session: AsyncSession, event: Event) -> None:
    """Store ``event`` in the outbox in the session's current transaction (flush only)."""
    await OutboxRepository(session).add(event.event_type, event.to_payload())
    session.info[_PENDING] = True


async def add_many_to_outbox(session: AsyncSession, events: Sequence[Event]) -> None:
    """``add_to_outbox`` for several events with one INSERT (a fault's burst of ``AnomalyDetected``)."""
    if events:
        await OutboxRepository(session).add_many([(e.event_type, e.to_payload()) for e in events])
        session.info[_PENDING] = True


@sa_event.listens_for(Session, "after_commit")
def _wake_relays_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        for relay in list(_relays):
            try:
                relay.notify()
            except Exception:  # a relay of a closed event loop must not fail the commit
                logger.debug("relay notify failed", exc_info=True)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


__all__ = ["add_many_to_outbox", "add_to_outbox", "register_relay", "unregister_relay"]
