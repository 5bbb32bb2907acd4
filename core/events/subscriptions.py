"""Subscriptions of a bus: a handler's stable name, the event type it takes, the handler itself.

``SubscriptionTable`` is what both buses know of their subscribers (``core.events.bus.EventBus`` runs them,
``core.events.jetstream.JetStreamBus`` only knows them by name and event type for replays and the status).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.events.types import Event

Handler = Callable[[Event], Awaitable[None]]
#: Subscribing to this event type (or to the ``Event`` base class) receives every event.
ALL_EVENTS = "*"


@dataclass(frozen=True)
class Subscription:
    name: str
    event_type: str
    handler: Handler

    def matches(self, event: Event) -> bool:
        return self.event_type in (ALL_EVENTS, event.event_type)


class SubscriptionTable:
    """Handlers by name and event type: what both buses know of their subscribers (``_subscriptions``)."""

    _subscriptions: dict[str, Subscription]

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions.values())

    def has_handler(self, name: str) -> bool:
        return name in self._subscriptions

    def handlers_for(self, event: Event) -> list[Subscription]:
        return [s for s in self._subscriptions.values() if s.matches(event)]


__all__ = ["ALL_EVENTS", "Handler", "Subscription", "SubscriptionTable"]
