"""The in-process event bus: a bounded queue, worker tasks, per-handler retries, dead letters.

Usage::

    bus = EventBus.from_settings(settings, session_factory)
    bus.subscribe(ReadingsIngested, handle_readings, name="anomaly.score_readings")
    bus.start()
    await bus.publish(event)          # waits while the queue is full (back-pressure)
    await bus.join()                  # tests: every queued event handled (or dead-lettered)
    await bus.stop()                  # drains with a timeout, then cancels the workers

Semantics
---------
* **Off the request path.** ``publish`` only puts the event on an ``asyncio.Queue`` of bounded size
  (``SM_BUS_QUEUE_SIZE``); when the queue is full it *awaits* until a worker takes an item, so a burst slows the
  producer (the outbox relay) instead of growing memory. ``SM_BUS_WORKERS`` worker tasks take events off the
  queue; each event is delivered to all its subscribed handlers concurrently. With one worker events are handled
  in publication order; with several, events may overlap (handlers must not rely on a global order).
* **Retries.** Every handler invocation is retried with tenacity: up to ``SM_BUS_HANDLER_ATTEMPTS`` attempts,
  exponential backoff starting at ``SM_BUS_RETRY_BASE_S`` and capped at ``SM_BUS_RETRY_MAX_S``. A handler that
  still fails is **dead-lettered**: one ``dead_letters`` row (event type, payload, handler name, error text,
  attempts) written in its own transaction. The other handlers of the event are unaffected.
* **At least once.** An event can be delivered more than once (the relay re-publishes outbox rows whose batch
  did not commit; an operator replays a dead letter; a crash after a handler's own commit). Handlers **must be
  idempotent**: key their writes on ``event.event_id`` or on natural keys (``ON CONFLICT DO NOTHING``), never
  assume a first delivery.
* **Acknowledgement.** ``publish`` returns a ``Delivery`` future that completes when every handler of the event
  has succeeded or been dead-lettered; it fails when a dead letter could not be stored (the event would
  otherwise be lost). The outbox relay marks rows published only once their deliveries completed.
* Handlers run with the event's ``correlation_id`` bound (``core.observability.logging``), so their log lines
  carry the id of the request that produced the event.
* **Activity.** ``activity()`` answers ``(queued, running)``: events waiting in the queue, and deliveries taken
  off it whose handlers have not all finished (a retry's back-off, and a delivery waiting in a ``Coalescer`` for
  the run that includes its event, count as running). ``(0, 0)``: the bus has nothing to do
  (``GET /api/v1/admin/events`` adds the outbox rows not yet published).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential

from core.config import Settings
from core.db.session import unit_of_work
from core.events.dead_letter_repository import DeadLetterRepository
from core.events.subscriptions import ALL_EVENTS, Handler, Subscription, SubscriptionTable
from core.events.types import Event
from core.observability.logging import bind_correlation_id
from core.observability.metrics import (
    BUS_DEAD_LETTERS_TOTAL,
    BUS_EVENTS_HANDLED_TOTAL,
    BUS_EVENTS_PUBLISHED_TOTAL,
    BUS_HANDLER_LATENCY_SECONDS,
    BUS_HANDLER_RETRIES_TOTAL,
    BUS_QUEUE_DEPTH,
)

logger = logging.getLogger("core.events.bus")

#: Completes with ``{handler name: "ok" | "dead_lettered"}`` once every targeted handler finished.
Delivery = asyncio.Future[dict[str, str]]
MAX_ERROR_CHARS = 4000


class BusError(RuntimeError):
    """Misuse of the bus (unknown handler, duplicate name, publishing after stop)."""


class DeadLetterWriteFailed(RuntimeError):
    """A handler failed for good and its dead letter could not be stored; the delivery is not acknowledged."""


@dataclass
class _Envelope:
    event: Event
    only: str | None
    done: Delivery
    enqueued_at: float = field(default_factory=time.monotonic)


def _event_type_name(event_type: str | type[Event]) -> str:
    if isinstance(event_type, str):
        return event_type
    if event_type is Event:
        return ALL_EVENTS
    return event_type.event_type


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _consume_exception(future: Delivery) -> None:
    """Deliveries nobody awaits must not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


class EventBus(SubscriptionTable):
    """In-process publish/subscribe with a bounded queue, retries and dead letters (module docstring)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        *,
        queue_size: int = 10_000,
        workers: int = 4,
        handler_attempts: int = 5,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1 (the bus queue is never unbounded)")
        if workers < 1 or handler_attempts < 1:
            raise ValueError("workers and handler_attempts must be at least 1")
        self._session_factory = session_factory
        self._queue: asyncio.Queue[_Envelope] = asyncio.Queue(maxsize=queue_size)
        self._workers_count = workers
        self.handler_attempts = handler_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.stop_timeout_s = stop_timeout_s
        self._subscriptions: dict[str, Subscription] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._stopped = False
        self._active = 0
        """Deliveries taken off the queue and not finished yet (``activity``)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession] | None,
        *,
        workers: int | None = None,
    ) -> EventBus:
        return cls(
            session_factory,
            queue_size=settings.bus_queue_size,
            workers=settings.bus_workers if workers is None else workers,
            handler_attempts=settings.bus_handler_attempts,
            retry_base_s=settings.bus_retry_base_s,
            retry_max_s=settings.bus_retry_max_s,
            stop_timeout_s=settings.bus_stop_timeout_s,
        )

    # --- subscriptions --------------------------------------------------------------------------------------
    def subscribe(self, event_type: str | type[Event], handler: Handler, *, name: str) -> Subscription:
        """Register ``handler`` for ``event_type`` under a unique, stable ``name``.

        The name is what dead letters record and what a replay targets: keep it stable across releases
        (``<agent>.<action>``, e.g. ``anomaly.score_readings``).
        """
        if name in self._subscriptions:
            raise BusError(f"a handler named {name!r} is already subscribed")
        subscription = Subscription(name=name, event_type=_event_type_name(event_type), handler=handler)
        self._subscriptions[name] = subscription
        return subscription

    def unsubscribe(self, name: str) -> None:
        self._subscriptions.pop(name, None)

    # --- publishing -----------------------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def queue_size(self) -> int:
        return self._queue.maxsize

    @property
    def running(self) -> bool:
        return bool(self._workers) and not self._stopped

    def activity(self) -> tuple[int, int]:
        """``(queued, running)``: events waiting in the queue, deliveries being handled (module docstring)."""
        return self._queue.qsize(), self._active

    async def current_activity(self) -> tuple[int, int]:
        """``activity()`` (the JetStream bus answers this one from its server)."""
        return self.activity()

    async def publish(self, event: Event, *, handler: str | None = None) -> Delivery:
        """Queue ``event`` for its handlers (or only for the handler named ``handler``).

        Awaits while the queue is full. Returns the delivery future (see module docstring); awaiting it is
        optional. Call this only after the transaction that produced the event committed — normally the outbox
        relay does it; replays of dead letters call it directly.
        """
        if self._stopped:
            raise BusError("the bus is stopped")
        if handler is not None and handler not in self._subscriptions:
            raise BusError(f"no handler named {handler!r} is subscribed")
        done: Delivery = asyncio.get_running_loop().create_future()
        done.add_done_callback(_consume_exception)
        await self._queue.put(_Envelope(event=event, only=handler, done=done))
        BUS_QUEUE_DEPTH.set(self._queue.qsize())
        BUS_EVENTS_PUBLISHED_TOTAL.labels(event_type=event.event_type).inc()
        return done

    async def publish_many(self, events: Iterable[Event]) -> list[Delivery]:
        return [await self.publish(event) for event in events]

    # --- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker tasks (idempotent). Requires a running event loop."""
        if self._workers:
            return
        self._stopped = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"event-bus-worker-{i}")
            for i in range(self._workers_count)
        ]
        logger.info(
            "event bus started",
            extra={"workers": self._workers_count, "queue_size": self._queue.maxsize},
        )

    async def open(self) -> None:
        """``start()`` (the JetStream bus connects here)."""
        self.start()

    async def join(self) -> None:
        """Wait until the queue is empty and every handler invocation finished (retries and dead letters too)."""
        if not self._workers and self._queue.qsize():
            raise BusError("join() on a bus that is not started would wait forever")
        await self._queue.join()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting events, drain the queue for at most ``timeout`` seconds, then cancel the workers.

        Events still queued after the timeout get a cancelled delivery: the relay then leaves their outbox rows
        unpublished, so the next start (or another process) delivers them.
        """
        if self._stopped and not self._workers:
            return
        self._stopped = True
        timeout = self.stop_timeout_s if timeout is None else timeout
        if self._workers:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except TimeoutError:
                logger.warning(
                    "event bus stop: %d events not handled in %.1f s", self._queue.qsize(), timeout
                )
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        while not self._queue.empty():
            envelope = self._queue.get_nowait()
            envelope.done.cancel()
            self._queue.task_done()
        BUS_QUEUE_DEPTH.set(0)
        logger.info("event bus stopped")

    # --- delivery -------------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            envelope = await self._queue.get()
            self._active += 1  # no await since the get: never seen neither queued nor running
            BUS_QUEUE_DEPTH.set(self._queue.qsize())
            try:
                await self._deliver(envelope)
            except asyncio.CancelledError:
                if not envelope.done.done():
                    envelope.done.cancel()
                raise
            except Exception as exc:  # keep the worker alive; the delivery carries the error
                logger.exception("event delivery failed", extra={"event_type": envelope.event.event_type})
                if not envelope.done.done():
                    envelope.done.set_exception(exc)
            finally:
                self._active -= 1
                self._queue.task_done()

    async def _deliver(self, envelope: _Envelope) -> None:
        event = envelope.event
        if envelope.only is not None:
            subscription = self._subscriptions.get(envelope.only)
            targets = [subscription] if subscription is not None else []
        else:
            targets = self.handlers_for(event)
        with bind_correlation_id(event.correlation_id):
            results = await asyncio.gather(
                *(self._run_handler(s, event) for s in targets), return_exceptions=True
            )
        errors = [r for r in results if isinstance(r, BaseException)]
        if not envelope.done.done():
            if errors:
                envelope.done.set_exception(errors[0])
            else:
                envelope.done.set_result({s.name: str(r) for s, r in zip(targets, results, strict=True)})

    async def _run_handler(self, subscription: Subscription, event: Event) -> str:
        name = subscription.name

        def before_sleep(state: RetryCallState) -> None:
            BUS_HANDLER_RETRIES_TOTAL.labels(handler=name).inc()
            exc = state.outcome.exception() if state.outcome is not None else None
            logger.warning(
                "handler %s failed (attempt %d of %d), retrying: %s",
                name,
                state.attempt_number,
                self.handler_attempts,
                _error_text(exc) if exc else "?",
                extra={"handler": name, "event_type": event.event_type, "event_id": str(event.event_id)},
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.handler_attempts),
            wait=wait_exponential(multiplier=self.retry_base_s, min=self.retry_base_s, max=self.retry_max_s),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    started = time.perf_counter()
                    try:
                        await subscription.handler(event)
                    finally:
                        BUS_HANDLER_LATENCY_SECONDS.labels(handler=name).observe(
                            time.perf_counter() - started
                        )
        except Exception as exc:  # noqa: BLE001 - every failure of a handler is dead-lettered
            await self._dead_letter(subscription, event, exc, attempts)
            return "dead_lettered"
        BUS_EVENTS_HANDLED_TOTAL.labels(handler=name, result="ok").inc()
        return "ok"

    async def _dead_letter(
        self, subscription: Subscription, event: Event, exc: Exception, attempts: int
    ) -> None:
        name = subscription.name
        error = _error_text(exc)
        logger.error(
            "handler %s failed after %d attempts; dead-lettered: %s",
            name,
            attempts,
            error,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"handler": name, "event_type": event.event_type, "event_id": str(event.event_id)},
        )
        BUS_EVENTS_HANDLED_TOTAL.labels(handler=name, result="dead_lettered").inc()
        BUS_DEAD_LETTERS_TOTAL.labels(handler=name).inc()
        if self._session_factory is None:
            logger.error("no session factory: the dead letter of %s is only logged", name)
            return
        try:
            async with unit_of_work(self._session_factory) as session:
                await DeadLetterRepository(session).add(
                    event_type=event.event_type,
                    payload=event.to_payload(),
                    handler=name,
                    error=error,
                    attempts=attempts,
                )
        except Exception as write_error:
            logger.exception("could not store the dead letter of handler %s", name)
            raise DeadLetterWriteFailed(f"dead letter of {name} not stored: {write_error}") from exc


__all__ = [
    "ALL_EVENTS",
    "BusError",
    "DeadLetterWriteFailed",
    "Delivery",
    "EventBus",
    "Handler",
    "Subscription",
    "SubscriptionTable",
]
