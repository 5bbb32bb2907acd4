"""What the outbox relay, dead-letter replays and the status endpoint need of a bus: ``Bus``.

Two implementations: the in-process ``core.events.bus.EventBus`` (runs the handlers itself) and
``core.events.jetstream.JetStreamBus`` (publishes to the NATS JetStream stream; the workers run the handlers).
"""

from __future__ import annotations

from typing import Protocol

from core.events.bus import Delivery, Subscription
from core.events.types import Event


class Bus(Protocol):
    @property
    def running(self) -> bool: ...

    def has_handler(self, name: str) -> bool: ...

    def handlers_for(self, event: Event) -> list[Subscription]: ...

    async def publish(self, event: Event, *, handler: str | None = None) -> Delivery: ...

    async def current_activity(self) -> tuple[int, int]: ...

    async def open(self) -> None: ...

    async def stop(self, timeout: float | None = None) -> None: ...


__all__ = ["Bus"]
