"""The outbox relay: moves committed outbox rows onto the event bus.

Protocol (one batch)::

    BEGIN;
    SELECT … FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED;
    -- publish every row's event to the bus and wait for its delivery (handled or dead-lettered)
    UPDATE outbox SET published_at = now() WHERE id IN (…);
    COMMIT;

* **When.** ``notify()`` wakes the relay at once; it is called automatically after every commit in this
  process that wrote rows through ``add_to_outbox`` (``core.events.outbox``); besides, it polls every
  ``SM_OUTBOX_POLL_INTERVAL_S`` so rows left behind by a crash, or
  written by another API process, are published too. At start-up it publishes every leftover row first.
* **Never twice at the same time.** ``FOR UPDATE SKIP LOCKED`` lets several relays (threads, processes,
  API replicas) run side by side: a row locked by one batch is invisible to the others until that batch
  commits, by which time it is marked published.
* **Guarantee: at least once.** A row is marked published only after its event has been delivered to every
  handler (each either succeeded or was dead-lettered in the database). If the process dies at any point
  before the batch commits, the locks vanish and the rows are published again by the next relay: an event can
  reach a handler twice, but no committed event is lost. Rolled-back transactions never wrote a row, so their
  events are never published. Handlers are therefore idempotent (core.events.bus).
* Batches are processed concurrently (up to ``max_inflight_batches``, each in its own transaction): a handler
  that is retrying with backoff delays only its own batch, not the rows committed after it. Ordering across
  batches is therefore not guaranteed.
* A row whose ``event_type`` has no registered class, or whose payload no longer validates, cannot be
  delivered: it is dead-lettered with handler ``outbox.relay`` and marked published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.events.dead_letter_repository import DeadLetterRepository
from core.events.outbox import register_relay, unregister_relay
from core.events.outbox_repository import OutboxRepository
from core.events.port import Bus
from core.events.types import UnknownEventType, event_from_row
from core.observability.metrics import OUTBOX_UNPUBLISHED

logger = logging.getLogger("core.events.relay")

#: Handler name recorded on dead letters of outbox rows that cannot be turned back into an event.
RELAY_HANDLER_NAME = "outbox.relay"


class DeliveryFailed(RuntimeError):
    """A delivery of the batch failed or was cancelled (bus stopped); the batch is rolled back."""


class OutboxRelay:
    """Publishes committed outbox rows to ``bus`` (module docstring)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 100,
        max_inflight_batches: int = 4,
    ) -> None:
        self._session_factory = session_factory
        self._bus = bus
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self._inflight = asyncio.Semaphore(max_inflight_batches)
        self._batches: dict[asyncio.Task[int], asyncio.Future[int]] = {}  # batch → its 'rows claimed'
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published_total = 0
        self.passes = 0
        """Completed passes of the loop (start-up pass, wake-ups and polls)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, session_factory: async_sessionmaker[AsyncSession], bus: Bus
    ) -> OutboxRelay:
        return cls(
            session_factory,
            bus,
            poll_interval_s=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
        )

    # --- public API -----------------------------------------------------------------------------------------
    @property
    def bus(self) -> Bus:
        return self._bus

    def notify(self) -> None:
        """Wake the relay now (call after committing a transaction that wrote outbox rows). Never blocks."""
        self._wake.set()

    def start(self) -> None:
        """Start the relay loop; its first pass publishes whatever earlier runs left unpublished."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-relay")
            register_relay(self)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming rows and wait (at most ``timeout``) for the batches in flight to commit.

        Batches still running after the timeout are cancelled: their transactions roll back and the rows stay
        unpublished for the next start.
        """
        self._stopping = True
        unregister_relay(self)
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task, claimed in list(self._batches.items()):
            if not claimed.done():  # still connecting or claiming: nothing published yet, cancel at once
                task.cancel()
        if self._batches:
            _done, pending = await asyncio.wait(list(self._batches), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim, publish and mark one batch; returns the number of rows published (0 when none was free)."""
        async with self._inflight:
            return await self._process_batch()

    async def drain(self) -> int:
        """Publish batches until no unpublished row is left (or free to claim); returns the rows published."""
        total = 0
        while published := await self.run_once():
            total += published
        return total

    async def unpublished(self) -> int:
        async with self._session_factory() as session:
            count = await OutboxRepository(session).count_unpublished()
        OUTBOX_UNPUBLISHED.set(count)
        return count

    # --- loop -----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        logger.info("outbox relay started", extra={"poll_interval_s": self.poll_interval_s})
        counted_at = float("-inf")
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                await self._pump()
                if (
                    loop.time() - counted_at >= self.poll_interval_s
                ):  # the gauge, at most once per poll interval
                    await self.unpublished()  # (a wake-up after every commit made it a query per pass)
                    counted_at = loop.time()
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down: log briefly, retry at the next poll
                logger.warning(
                    "outbox relay pass failed (%s: %s); retrying at the next poll", type(exc).__name__, exc
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    async def _pump(self) -> None:
        """Start batches while full ones are found; each runs in its own task and transaction."""
        while not self._stopping:
            await self._inflight.acquire()
            claimed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._batch_task(claimed), name="outbox-relay-batch")
            self._batches[task] = claimed
            task.add_done_callback(lambda t: self._batches.pop(t, None))
            # Continue with another batch only when this one claimed a full batch (more rows may be waiting).
            if await asyncio.shield(claimed) < self.batch_size:
                return

    async def _batch_task(self, claimed: asyncio.Future[int]) -> int:
        try:
            return await self._process_batch(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("outbox batch failed; its rows stay unpublished and are retried")
            return 0
        finally:
            if not claimed.done():
                claimed.set_result(0)
            self._inflight.release()

    async def _process_batch(self, claimed: asyncio.Future[int] | None = None) -> int:
        async with self._session_factory() as session, session.begin():
            outbox = OutboxRepository(session)
            rows = await outbox.claim_unpublished(self.batch_size)
            if claimed is not None and not claimed.done():
                claimed.set_result(len(rows))
            if not rows:
                return 0
            deliveries = []
            for row in rows:
                try:
                    event = event_from_row(row.event_type, row.payload)
                except (UnknownEventType, ValidationError) as exc:
                    await self._undeliverable(session, row.id, row.event_type, row.payload, exc)
                    continue
                deliveries.append(await self._bus.publish(event))
            # Acknowledge only when every handler finished: a failure here rolls the batch back.
            results = await asyncio.gather(*deliveries, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise DeliveryFailed(
                    f"{len(failures)} of {len(deliveries)} deliveries failed ({failures[0]!r}); "
                    f"the batch of {len(rows)} rows stays unpublished"
                )
            await outbox.mark_published([row.id for row in rows])
        self.published_total += len(rows)
        logger.debug("outbox batch published", extra={"rows": len(rows)})
        return len(rows)

    async def _undeliverable(
        self, session: AsyncSession, row_id: int, event_type: str, payload: dict[str, Any], exc: Exception
    ) -> None:
        logger.error("outbox row %d (%s) cannot be delivered: %s", row_id, event_type, exc)
        await DeadLetterRepository(session).add(
            event_type=event_type,
            payload=payload,
            handler=RELAY_HANDLER_NAME,
            error=f"{type(exc).__name__}: {exc}"[:4000],
            attempts=1,
        )


class HasRelay(Protocol):
    """What holds a process's relay: ``core.runtime.bootstrap.Runtime`` (``relay`` is None when it runs none)."""

    @property
    def relay(self) -> OutboxRelay | None: ...


async def after_commit(holder: HasRelay) -> None:
    """Wake ``holder``'s relay (a ``Runtime``) after a transaction that wrote outbox rows committed.

    Not needed after ``add_to_outbox`` (its commit wakes every relay of the process by itself); for rows
    written another way (raw SQL, COPY). Without a relay it does nothing: the rows wait for the next poll.
    """
    if holder.relay is not None:
        holder.relay.notify()


__all__ = ["RELAY_HANDLER_NAME", "DeliveryFailed", "HasRelay", "OutboxRelay", "after_commit"]
