"""Notification agent: events → pending deliveries (handlers ``notification.enqueue.<EventType>``) and the worker.

The handler only writes rows (in its own transaction, idempotent on the event id, see
``core.notifications.service.NotificationService``) and wakes the worker; sending happens in the worker
(``core.notifications.worker.DeliveryWorker``), never inside a request or a handler.

Two things keep it off the loop's critical path (a fault emits ~20 ``AnomalyDetected`` a second):

* an event type no active subscription wants (and no e-mail recipient) is dropped without a query: the wanted
  types are cached (``core.notifications.subscriptions``: short TTL, invalidated when a subscription changes
  through the API of this process);
* deliveries of one event type that arrive while a run of that type is in progress are enqueued together in the
  next run, one transaction for all of them (``core.events.coalesce``: a failing merged run is retried event by
  event; the same event twice in a run enqueues once).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.events.coalesce import Coalescer
from core.events.types import Event
from core.notifications.service import NotificationService
from core.notifications.subscriptions import DEFAULT_TTL_S, SubscriptionCache
from core.notifications.worker import DeliveryWorker

logger = logging.getLogger("core.notifications.agent")

HANDLER_NAME = "notification.enqueue"


class NotificationEnqueuer:
    """The handler: enqueues with ``settings`` through ``session_factory`` and wakes ``worker`` (when there is one)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        worker: DeliveryWorker | None = None,
        subscriptions_ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.worker = worker
        self.subscriptions = SubscriptionCache(subscriptions_ttl_s)
        self.coalescers: dict[str, Coalescer[Event]] = {}
        self.skipped = 0

    async def __call__(self, event: Event) -> None:
        if not await self.wanted(event.event_type):
            self.skipped += 1
            return
        coalescer = self.coalescers.get(event.event_type)
        if coalescer is None:
            coalescer = self.coalescers[event.event_type] = Coalescer(self._run)
        await coalescer.submit(event)

    async def wanted(self, event_type: str) -> bool:
        if self.settings.smtp_host and self.settings.notification_email_to:
            return True
        return await self.subscriptions.wants(self.session_factory, event_type)

    async def _run(self, events: list[Event]) -> None:
        await self.enqueue(events)

    async def enqueue(self, events: list[Event]) -> list[int]:
        """One run: every event in one unit of work (no coalescing, no cache; what a run of the coalescer does)."""
        async with unit_of_work(self.session_factory) as session:
            ids = await NotificationService(session, self.settings).enqueue_many(events)
        if ids:
            logger.info(
                "%d notification(s) queued for %d %s event(s)",
                len(ids),
                len(events),
                events[0].event_type,
                extra={"event_ids": [str(e.event_id) for e in events], "delivery_ids": ids},
            )
            if self.worker is not None:
                self.worker.wake()
        return ids


def handler_name(event_type: str) -> str:
    """The handler's name for one notified event type, ``notification.enqueue.<EventType>`` (one name per event
    type because the bus keys subscriptions, and dead-letter replays, by name; ``core.runtime.handlers``)."""
    return f"{HANDLER_NAME}.{event_type}"


__all__ = ["HANDLER_NAME", "NotificationEnqueuer", "handler_name"]
