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
from typing import Any

from core.db.session import unit_of_work
from core.events.coalesce import Coalescer
from core.events.types import Event
from core.notifications.envelope import NOTIFIED_EVENTS
from core.notifications.service import NotificationService
from core.notifications.subscriptions import DEFAULT_TTL_S, SubscriptionCache
from core.notifications.worker import DeliveryWorker

logger = logging.getLogger("core.notifications.agent")

HANDLER_NAME = "notification.enqueue"


class NotificationEnqueuer:
    """The handler; ``app_state`` gives settings, the session factory and (when running) the worker to wake."""

    def __init__(self, app_state: Any, *, subscriptions_ttl_s: float = DEFAULT_TTL_S) -> None:
        self._state = app_state
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
        state = self._state
        if state.settings.smtp_host and state.settings.notification_email_to:
            return True
        return await self.subscriptions.wants(state.session_factory, event_type)

    async def _run(self, events: list[Event]) -> None:
        await self.enqueue(events)

    async def enqueue(self, events: list[Event]) -> list[int]:
        """One run: every event in one unit of work (no coalescing, no cache; what a run of the coalescer does)."""
        state = self._state
        async with unit_of_work(state.session_factory) as session:
            ids = await NotificationService(session, state.settings).enqueue_many(events)
        if ids:
            logger.info(
                "%d notification(s) queued for %d %s event(s)",
                len(ids),
                len(events),
                events[0].event_type,
                extra={"event_ids": [str(e.event_id) for e in events], "delivery_ids": ids},
            )
            worker: DeliveryWorker | None = getattr(state, "notification_worker", None)
            if worker is not None:
                worker.wake()
        return ids


def subscribe(bus: Any, app_state: Any) -> list[Any]:
    """Subscribe the handler to every notified event type, as ``notification.enqueue.<EventType>``.

    One name per event type because the bus keys subscriptions (and dead-letter replays) by name.
    """
    handler = NotificationEnqueuer(app_state)
    return [bus.subscribe(cls, handler, name=handler_name(cls.event_type)) for cls in NOTIFIED_EVENTS]


def handler_name(event_type: str) -> str:
    return f"{HANDLER_NAME}.{event_type}"


async def start_worker(app_state: Any) -> None:
    # ``webhook_resolver``: the resolver of the destination checks (the API uses the same one; tests simulate DNS)
    worker = DeliveryWorker(
        app_state.settings, app_state.session_factory, resolver=getattr(app_state, "webhook_resolver", None)
    )
    app_state.notification_worker = worker
    worker.start()


async def stop_worker(app_state: Any) -> None:
    worker: DeliveryWorker | None = getattr(app_state, "notification_worker", None)
    app_state.notification_worker = None
    if worker is not None:
        await worker.stop()


__all__ = ["HANDLER_NAME", "NotificationEnqueuer", "handler_name", "start_worker", "stop_worker", "subscribe"]
