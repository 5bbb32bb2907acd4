"""Which event types any active webhook subscription wants, cached so that unwanted events cost no query.

The notification agent receives every ``AnomalyDetected`` (hundreds a minute during a fault) although most
deployments subscribe to alerts and work orders only. ``SubscriptionCache.wants(event_type)`` answers from
memory; it reloads (one ``SELECT event_types FROM webhooks WHERE is_active``) when

* ``ttl_s`` seconds passed since the last load (subscriptions changed by another process: an API replica, SQL),
* or a subscription was created, changed or deleted through ``WebhookService`` in this process: the service marks
  its session and the commit calls ``invalidate()`` (an ``after_commit`` listener), so a webhook added through
  the API gets the very next event.

A load that overlapped an invalidation is not kept (generation check), so a load that started before the commit
cannot hide the change for a whole TTL. Events of another process's new subscription can be missed for at most
``ttl_s`` (documented in docs/architecture/notifications.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from core.notifications.repository import WebhookRepository

#: Default lifetime of a load (seconds).
DEFAULT_TTL_S = 2.0
_CHANGED = "sm_webhooks_changed"

_generation = 0


def invalidate() -> None:
    """Forget every cache's load (called after a commit that changed subscriptions)."""
    global _generation
    _generation += 1


def mark_changed(session: AsyncSession) -> None:
    """Invalidate the caches once this session's transaction commits (``WebhookService`` calls it)."""
    session.info[_CHANGED] = True


@sa_event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        invalidate()


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class SubscriptionCache:
    """Event types wanted by active subscriptions (module docstring)."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._types: frozenset[str] | None = None
        self._every = False
        self._generation = -1
        self._loaded_at = float("-inf")
        self.loads = 0
        self._loading: asyncio.Lock | None = None  # one load at a time: a burst after expiry loads once

    def _fresh(self) -> bool:
        return self._generation == _generation and self._clock() - self._loaded_at < self.ttl_s

    async def wants(self, session_factory: async_sessionmaker[AsyncSession], event_type: str) -> bool:
        if not self._fresh():
            if self._loading is None:
                self._loading = asyncio.Lock()
            async with self._loading:
                if not self._fresh():
                    await self._load(session_factory)
        return self._every or event_type in (self._types or frozenset())

    async def _load(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        generation, started = _generation, self._clock()
        async with session_factory() as session:
            rows = await WebhookRepository(session).active_event_types()
        self.loads += 1
        self._every = any(not types for types in rows)
        self._types = frozenset(t for types in rows for t in types)
        self._generation, self._loaded_at = generation, started


__all__ = ["DEFAULT_TTL_S", "SubscriptionCache", "invalidate", "mark_changed"]
