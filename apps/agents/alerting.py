"""Alerting agent: bus handlers and the periodic no-data check (thin; the logic is ``core.alerts.service``).

Each handler runs one unit of work per event delivery (``AlertRaised`` goes to the outbox in it).
Idempotent by natural keys, see ``core.alerts.service``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts.service import AlertingService, Outcome
from core.alerts.window import MatchCache
from core.db.session import unit_of_work
from core.events.coalesce import Coalescer, merge_readings
from core.events.types import AnomalyDetected, Event, ReadingsIngested

logger = logging.getLogger("apps.agents.alerting")

ANOMALY_HANDLER_NAME = "alerting.anomaly_detected"
READINGS_HANDLER_NAME = "alerting.readings_ingested"


class AnomalyHandler:
    """Anomaly-score rules on ``AnomalyDetected``; a fault emits bursts of them, so deliveries arriving while a
    run is in progress are handled together in the next one (one unit of work, shared lookups)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession] | None) -> None:
        self._factory = session_factory
        self.coalescer: Coalescer[AnomalyDetected] = Coalescer(self._handle)

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, AnomalyDetected)
        if self._factory is None:
            raise RuntimeError("the alerting agent needs the database session factory")
        await self.coalescer.submit(event)

    async def _handle(self, events: list[AnomalyDetected]) -> None:
        assert self._factory is not None
        async with unit_of_work(self._factory) as session:
            await AlertingService(session).on_anomalies(events)


class ReadingsHandler:
    """Threshold/rate/resolution evaluation of ``ReadingsIngested``; deliveries that arrive while an evaluation
    runs are evaluated together in the next one (``core.events.coalesce``): every evaluation reads the rules'
    window of readings, so one per event falls behind the simulator's ten batches a second."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession] | None, *, cache: bool = True
    ) -> None:
        self._factory = session_factory
        self.coalescer: Coalescer[ReadingsIngested] = Coalescer(self._evaluate)
        self.cache = MatchCache() if cache else None

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, ReadingsIngested)
        if self._factory is None:
            raise RuntimeError("the alerting agent needs the database session factory")
        await self.coalescer.submit(event)

    async def _evaluate(self, events: list[ReadingsIngested]) -> None:
        assert self._factory is not None
        for merged in merge_readings(events):
            async with unit_of_work(self._factory) as session:
                await AlertingService(session).on_readings(merged, self.cache)


async def check_no_data(
    session_factory: async_sessionmaker[AsyncSession], now: datetime | None = None
) -> Outcome:
    """One no-data pass in its own unit of work."""
    async with unit_of_work(session_factory) as session:
        return await AlertingService(session).check_no_data(now or datetime.now(UTC))


class NoDataChecker:
    """Runs ``check_no_data`` every ``interval_s`` seconds (first pass after one interval); 0 disables it."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._factory = session_factory
        self._interval = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="alerting-no-data")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                outcome = await check_no_data(self._factory, self._clock())
                if outcome.opened or outcome.resolved:
                    logger.info(
                        "no-data check: %d opened, %d resolved", len(outcome.opened), len(outcome.resolved)
                    )
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is logged; the next one retries
                logger.exception("no-data check failed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = [
    "ANOMALY_HANDLER_NAME",
    "READINGS_HANDLER_NAME",
    "AnomalyHandler",
    "NoDataChecker",
    "ReadingsHandler",
    "check_no_data",
]
