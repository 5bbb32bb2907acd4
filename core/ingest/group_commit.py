"""Group commit: concurrent single-reading ingest requests share transactions.

A request validates its reading, ``submit``s it and awaits a future. A worker takes the first queued reading,
gathers whatever else is queued (waiting at most ``max_wait_s`` once, up to ``max_size`` readings), writes them
with one set-based ``INSERT … ON CONFLICT DO NOTHING`` and one ``ReadingsIngested`` outbox event in ONE
transaction, commits, and only then resolves each future with that reading's own outcome (accepted, duplicate,
or rejected: unknown sensor, or a unit that does not convert to the sensor's). If the transaction fails, every
waiter of that group gets the exception: no request is acknowledged before its data is committed.

Sensors known to exist are remembered with their registered unit for ``SENSOR_CACHE_TTL_S`` (the existence query
is a fifth of a group's cost); if one was deleted meanwhile the insert fails on the foreign key, the cache is
cleared and the group is written once more with a fresh lookup. A group whose readings carry other units than the
cached ones is converted with the cached units (``core.ingest.sensors``); only a sensor without a unit receiving
its first one needs the lookup. A unit changed through the fleet API reaches this cache within its TTL.

While one group is being written the next one accumulates, so under load groups grow and the number of
commits per second stays bounded by the database, not by the number of clients. Every request of one group
reports the same ``event_id`` (the ``ingest_event_id`` of the group's event). The readings are written by the
insert-and-outbox step every ingest path shares (``core.ingest.store``); the commit wakes the outbox relay
(``core.events.outbox``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Literal
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.errors import as_service_unavailable
from core.db.session import unit_of_work
from core.errors import ServiceUnavailable
from core.ingest.repository import IngestRepository
from core.ingest.schemas import ValidReading
from core.ingest.sensors import Resolved, apply_units, resolve_sensors, with_sensors_registered
from core.ingest.store import count_readings, store_readings, to_record
from core.observability.metrics import INGEST_GROUP_COMMIT_SIZE

logger = logging.getLogger("core.ingest.group_commit")

CommitOutcome = Literal["accepted", "duplicate", "rejected"]

SENSOR_CACHE_TTL_S = 60.0
SENSOR_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class GroupResult:
    event_id: UUID
    outcome: CommitOutcome
    reason: str | None = None


@dataclass(slots=True)
class _Pending:
    reading: ValidReading
    api_key_id: int | None
    future: asyncio.Future[GroupResult] = field(repr=False)


def _as_app_error(exc: Exception) -> Exception:
    """A database that cannot be reached is a 503 (not a bug); anything else stays what it is (a 500)."""
    detail = "the database is unavailable; the reading was not stored, retry later"
    return as_service_unavailable(exc, detail) or exc


class GroupCommitter:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        auto_register: bool,
        max_size: int = 512,
        max_wait_s: float = 0.003,
        workers: int = 2,
        queue_size: int = 20_000,
        backfill_age: timedelta = timedelta(minutes=60),
    ) -> None:
        self._factory = session_factory
        self._backfill_age = backfill_age
        self._auto_register = auto_register
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._workers = workers
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._known_sensors: dict[str, tuple[float, str | None]] = {}  # sensor_id → (monotonic expiry, unit)
        #: Committed group transactions and the requests they carried (for tests and diagnostics).
        self.transactions = 0
        self.requests = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._closing

    def start(self) -> None:
        if self._tasks:
            return
        self._closing = False
        self._tasks = [
            asyncio.create_task(self._run(), name=f"ingest-group-commit-{i}") for i in range(self._workers)
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting readings, write what is queued, then end the workers."""
        if not self._tasks:
            return
        self._closing = True
        for _ in self._tasks:
            await self._queue.put(None)
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():  # only if the timeout hit: fail the waiters instead of hanging them
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(ServiceUnavailable("the API is shutting down"))

    async def submit(self, reading: ValidReading, api_key_id: int | None) -> GroupResult:
        """Queue one reading; returns once the transaction that stored it (or not) has committed."""
        if not self._tasks or self._closing:
            raise ServiceUnavailable("the ingest group committer is not running")
        future: asyncio.Future[GroupResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(reading, api_key_id, future))
        return await asyncio.shield(future)

    async def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        stop = False

        def drain() -> None:
            nonlocal stop
            while len(batch) < self._max_size and not stop:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if item is None:
                    stop = True
                else:
                    batch.append(item)

        drain()
        if len(batch) < self._max_size and not stop and self._max_wait_s > 0:
            await asyncio.sleep(self._max_wait_s)
            drain()
        return batch, stop

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, stop = await self._gather(first)
            write = partial(self._write, batch)
            try:
                try:
                    await with_sensors_registered(self._factory, write)
                except IntegrityError:  # a cached sensor was deleted meanwhile: look them up again
                    self._known_sensors.clear()
                    await with_sensors_registered(self._factory, write)
            except Exception as exc:  # noqa: BLE001 - every waiter gets the error
                logger.warning("group commit of %d readings failed: %s", len(batch), type(exc).__name__)
                error = _as_app_error(exc)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
            if stop:
                return

    async def _resolve(self, repo: IngestRepository, readings: list[ValidReading]) -> Resolved:
        now = time.monotonic()
        known = self._known_sensors
        cached: dict[str, str | None] = {}
        for reading in readings:
            entry = known.get(reading.sensor_id)
            if entry is None or entry[0] <= now:
                break
            cached[reading.sensor_id] = entry[1]
        else:
            plan = apply_units(readings, cached)
            if not plan.adopted:
                return Resolved(plan.readings, plan.rejected, cached)
        resolved = await resolve_sensors(repo, readings, auto_register=self._auto_register)
        resolved.require_registered()  # committed first by with_sensors_registered, then the group runs again
        if len(known) > SENSOR_CACHE_MAX:
            known.clear()
        expiry = now + SENSOR_CACHE_TTL_S
        for sensor_id, unit in resolved.units.items():
            known[sensor_id] = (expiry, unit)
        return resolved

    async def _write(self, batch: list[_Pending]) -> None:
        event_id = uuid4()
        results: dict[int, GroupResult] = {}
        async with unit_of_work(self._factory) as session:
            repo = IngestRepository(session)
            readings = [item.reading for item in batch]
            # index = position in the group (each request carried one reading)
            indexed = [
                ValidReading(i, r.sensor_id, r.value, r.timestamp, r.unit, r.quality, r.sensor_type)
                for i, r in enumerate(readings)
            ]
            resolved = await self._resolve(repo, indexed)
            for rejected in resolved.rejected:
                results[rejected.index] = GroupResult(event_id, "rejected", rejected.reason)
            first_of: dict[tuple[str, object], ValidReading] = {}
            for reading in resolved.readings:
                first_of.setdefault((reading.sensor_id, reading.timestamp), reading)
            rows = [to_record(reading) for reading in first_of.values()]
            key_ids = {item.api_key_id for item in batch}
            outcome = await store_readings(
                session,
                rows,
                event_id=event_id,
                api_key_id=key_ids.pop() if len(key_ids) == 1 else None,
                backfill_age=self._backfill_age,
                with_keys=True,
            )
            inserted = outcome.keys or set()
            for reading in resolved.readings:
                key = (reading.sensor_id, reading.timestamp)
                is_new = first_of[key].index == reading.index and key in inserted
                results[reading.index] = GroupResult(event_id, "accepted" if is_new else "duplicate")
        # committed
        self.transactions += 1
        self.requests += len(batch)
        INGEST_GROUP_COMMIT_SIZE.observe(len(batch))
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for result in results.values():
            counts[result.outcome] += 1
        count_readings(counts["accepted"], counts["duplicate"], counts["rejected"])
        for i, item in enumerate(batch):
            if not item.future.done():
                item.future.set_result(results[i])


__all__ = ["GroupCommitter", "GroupResult"]
