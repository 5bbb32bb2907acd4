"""Telemetry agent: logs every ``ReadingsIngested`` event (at DEBUG: one per ingest request; the INFO view of
ingest is the API's periodic summary, ``core.observability.ingest_log``) and counts the readings it reports.

Counter: ``sm_bus_readings_ingested_total``. Idempotent within a process: a redelivered event (same
``event_id``; delivery is at least once) is recognised among the last ``MAX_REMEMBERED`` events and not counted
again. Across a restart a redelivery may be counted twice; the counter is for dashboards, not accounting.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from uuid import UUID

from core.events.types import Event, ReadingsIngested
from core.observability.metrics import BUS_READINGS_INGESTED_TOTAL

logger = logging.getLogger("core.observability.agent")

HANDLER_NAME = "telemetry.readings_ingested"
MAX_REMEMBERED = 10_000


class ReadingsIngestedCounter:
    """The handler (a callable object so that each bus, e.g. each test app, has its own memory)."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._max = max_remembered
        self.readings = 0

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, ReadingsIngested)
        if event.event_id in self._seen:
            logger.info("duplicate ReadingsIngested %s ignored", event.event_id)
            return
        self._seen[event.event_id] = None
        if len(self._seen) > self._max:
            self._seen.popitem(last=False)
        self.readings += event.count
        BUS_READINGS_INGESTED_TOTAL.inc(event.count)
        logger.debug(
            "%d readings ingested from %d sensors",
            event.count,
            len(event.sensor_ids),
            extra={
                "event_id": str(event.event_id),
                "ingest_event_id": str(event.ingest_event_id),
                "api_key_id": event.api_key_id,
                "first_timestamp": event.first_timestamp.isoformat(),
                "last_timestamp": event.last_timestamp.isoformat(),
            },
        )


__all__ = ["HANDLER_NAME", "MAX_REMEMBERED", "ReadingsIngestedCounter"]
