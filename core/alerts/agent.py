"""Alerting agent: bus handlers and the periodic no-data check (thin; the logic is ``core.alerts``).

* ``alerting.readings_ingested`` (``ReadingsIngested``): threshold, rate-of-change and flat-line rules;
* ``alerting.readings_scored`` (``ReadingsScored``, written by the anomaly agent once its anomalies are
  committed): anomaly-score rules;
* ``NoDataChecker``: no-data rules every ``SM_ALERT_NO_DATA_CHECK_INTERVAL_S``.

Each evaluation runs in one unit of work (``AlertRaised`` goes to the outbox in it); deliveries that arrive while
an evaluation runs are evaluated together in the next one (``core.events.coalesce``). Idempotent by natural keys,
see ``core.alerts.service``.

Order: the relay publishes outbox batches concurrently and the bus delivers with several workers, so a later batch
of a sensor can arrive before an earlier one (a back-fill sent faster than the agents keep up). Each handler
remembers, per sensor, up to which reading it has evaluated (``Watermarks``): a batch that starts after that point
is evaluated from just after it, i.e. together with the earlier batch not delivered yet, in time order; that batch's
own delivery later changes nothing. The outcome then depends on the readings, not on the delivery order (as long as
the earlier readings are committed, which the ingest order guarantees for one sender).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts.no_data import NoDataService
from core.alerts.service import AlertingService, EvaluationOutcome
from core.config import Settings
from core.db.session import unit_of_work
from core.events.coalesce import Coalescer, merge_readings, merge_scored
from core.events.types import Event, ReadingsIngested, ReadingsScored
from core.periodic import PeriodicWorker

logger = logging.getLogger("core.alerts.agent")

E = TypeVar("E", bound=ReadingsIngested | ReadingsScored)

READINGS_HANDLER_NAME = "alerting.readings_ingested"
SCORED_HANDLER_NAME = "alerting.readings_scored"


class Watermarks:
    """Per sensor, the timestamp of the last reading this handler evaluated (bounded, least recently used
    dropped: a dropped sensor is evaluated as its events say, as after a restart)."""

    def __init__(self, max_sensors: int = 10_000) -> None:
        self._until: OrderedDict[str, datetime] = OrderedDict()
        self.max_sensors = max_sensors

    def after(self, sensor_ids: list[str]) -> dict[str, datetime]:
        return {s: self._until[s] for s in sensor_ids if s in self._until}

    def forget(self, drop: Callable[[str], bool]) -> int:
        """Drop the sensors ``drop`` picks (a worker gained their partition: another one evaluated them since);
        the number dropped."""
        gone = [s for s in self._until if drop(s)]
        for sensor_id in gone:
            del self._until[sensor_id]
        return len(gone)

    def advance(self, sensor_ids: list[str], until: datetime) -> None:
        for sensor_id in sensor_ids:
            held = self._until.get(sensor_id)
            self._until[sensor_id] = until if held is None else max(held, until)
            self._until.move_to_end(sensor_id)
        while len(self._until) > self.max_sensors:
            self._until.popitem(last=False)


def _window(settings: Settings | None) -> timedelta:
    return timedelta(minutes=settings.incident_window_minutes if settings is not None else 60)


class _RuleHandler(Generic[E]):
    """One bus handler of the alert rules: coalesces its deliveries, evaluates each merged batch in one unit of
    work from just after the sensor's watermark, then advances the watermark."""

    def __init__(
        self,
        event_type: type[E],
        merge: Callable[[list[E]], list[E]],
        evaluate: Callable[[AlertingService, E, dict[str, datetime]], Awaitable[EvaluationOutcome]],
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings | None,
    ) -> None:
        self._event_type = event_type
        self._merge = merge
        self._evaluate_one = evaluate
        self._factory = session_factory
        self._window = _window(settings)
        self.watermarks = Watermarks()
        self.coalescer: Coalescer[E] = Coalescer(self._evaluate)

    def forget_sensors(self, drop: Callable[[str], bool]) -> int:
        """Drop the watermarks of the sensors ``drop`` picks (a worker gained their partition); the number dropped."""
        return self.watermarks.forget(drop)

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, self._event_type)
        await self.coalescer.submit(event)

    async def _evaluate(self, events: list[E]) -> None:
        for merged in self._merge(events):
            after = self.watermarks.after(merged.sensor_ids)
            async with unit_of_work(self._factory) as session:
                await self._evaluate_one(AlertingService(session, incident_window=self._window), merged, after)
            self.watermarks.advance(merged.sensor_ids, merged.last_timestamp)


class ReadingsHandler(_RuleHandler[ReadingsIngested]):
    """Threshold, rate-of-change and flat-line rules of ``ReadingsIngested``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], settings: Settings | None = None) -> None:
        super().__init__(ReadingsIngested, merge_readings, AlertingService.on_readings, session_factory, settings)


class ScoredHandler(_RuleHandler[ReadingsScored]):
    """Anomaly-score rules of ``ReadingsScored``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], settings: Settings | None = None) -> None:
        super().__init__(ReadingsScored, merge_scored, AlertingService.on_scored, session_factory, settings)


async def check_no_data(
    session_factory: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    *,
    backfill_age: timedelta = timedelta(minutes=60),
    incident_window: timedelta = timedelta(minutes=60),
) -> EvaluationOutcome:
    """One no-data pass in its own unit of work."""
    async with unit_of_work(session_factory) as session:
        service = NoDataService(session, incident_window=incident_window)
        return await service.check(now or datetime.now(UTC), backfill_age=backfill_age)


class NoDataChecker(PeriodicWorker):
    """Runs ``check_no_data`` every ``interval_s`` seconds (first pass after one interval); 0 disables it."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settings: Settings | None = None,
    ) -> None:
        super().__init__(interval_s, name="alerting-no-data", logger=logger, what="no-data check")
        self._factory = session_factory
        self._clock = clock
        self._backfill_age = timedelta(minutes=settings.backfill_age_minutes if settings is not None else 60.0)
        self._window = _window(settings)

    async def run_pass(self) -> None:
        outcome = await check_no_data(
            self._factory, self._clock(), backfill_age=self._backfill_age, incident_window=self._window
        )
        if outcome.opened or outcome.resolved:
            logger.info("no-data check: %d opened, %d resolved", len(outcome.opened), len(outcome.resolved))


__all__ = [
    "READINGS_HANDLER_NAME",
    "SCORED_HANDLER_NAME",
    "NoDataChecker",
    "ReadingsHandler",
    "ScoredHandler",
    "Watermarks",
    "check_no_data",
]
