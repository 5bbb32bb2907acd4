"""Notification agent: events → pending deliveries (handlers ``notification.enqueue.<EventType>``) and the worker.

The handler only writes rows (in its own transaction, idempotent on the event id, see
``core.notifications.service.NotificationService``) and wakes the worker; sending happens in the worker
(``core.notifications.worker.DeliveryWorker``), never inside a request or a handler.
"""

from __future__ import annotations

import logging
from typing import Any

from core.db.session import unit_of_work
from core.events.types import Event
from core.notifications.envelope import NOTIFIED_EVENTS
from core.notifications.service import NotificationService
from core.notifications.worker import DeliveryWorker

logger = logging.getLogger("apps.agents.notification")

HANDLER_NAME = "notification.enqueue"


class NotificationEnqueuer:
    """The handler; ``app_state`` gives settings, the session factory and (when running) the worker to wake."""

    def __init__(self, app_state: Any) -> None:
        self._state = app_state

    async def __call__(self, event: Event) -> None:
        state = self._state
        async with unit_of_work(state.session_factory) as session:
            ids = await NotificationService(session, state.settings).enqueue(event)
        if ids:
            logger.info(
                "%d notification(s) queued for %s",
                len(ids),
                event.event_type,
                extra={"event_id": str(event.event_id), "delivery_ids": ids},
            )
            worker: DeliveryWorker | None = getattr(state, "notification_worker", None)
            if worker is not None:
                worker.wake()


def subscribe(bus: Any, app_state: Any) -> list[Any]:
    """Subscribe the handler to every notified event type, as ``notification.enqueue.<EventType>``.

    One name per event type because the bus keys subscriptions (and dead-letter replays) by name.
    """
    handler = NotificationEnqueuer(app_state)
    return [bus.subscribe(cls, handler, name=handler_name(cls.event_type)) for cls in NOTIFIED_EVENTS]


def handler_name(event_type: str) -> str:
    return f"{HANDLER_NAME}.{event_type}"


async def start_worker(app_state: Any) -> None:
    worker = DeliveryWorker(app_state.settings, app_state.session_factory)
    app_state.notification_worker = worker
    worker.start()


async def stop_worker(app_state: Any) -> None:
    worker: DeliveryWorker | None = getattr(app_state, "notification_worker", None)
    app_state.notification_worker = None
    if worker is not None:
        await worker.stop()


__all__ = ["HANDLER_NAME", "NotificationEnqueuer", "handler_name", "start_worker", "stop_worker", "subscribe"]
