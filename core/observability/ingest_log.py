"""One INFO line per interval summarising ingest, instead of one access line per ingest request.

A plant sending a reading per sensor per second makes thousands of ingest requests a minute; one log line each
filled ``api.log`` by megabytes per quarter hour. The API writes the access lines of its ingest route at DEBUG
(``apps.api.middleware``) and :class:`IngestLogSummary` writes, every ``SM_INGEST_LOG_INTERVAL_S`` (60 s) and
once more at shutdown, one line on logger ``apps.api.ingest`` such as::

    ingest in the last 60.0 s: 4210 requests (2xx 4198, 4xx 12, 5xx 0), readings 41990 accepted, 110 duplicates,
    7 rejected, 3 idempotent replays, mean 4.1 ms

with the same figures as fields of the JSON line (``requests``, ``status_2xx``/``status_4xx``/``status_5xx``,
``readings_accepted``, ``readings_duplicate``, ``readings_rejected``, ``replays``, ``mean_ms``, ``interval_s``).
An interval without ingest requests writes nothing.

Requests, their status classes and mean duration are counted by the API's request middleware, which sees every
request (also those refused before routing: missing key, body too large) and calls :meth:`record`. Readings
(accepted, duplicate, rejected) and idempotent replays are the differences of the process's Prometheus counters
``sm_ingest_readings_total`` and ``sm_ingest_requests_total`` between two flushes, so the log and ``/metrics``
cannot disagree; those counters are per process (with several apps in one process, tests, they count all).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from core.observability.metrics import INGEST_READINGS_TOTAL, INGEST_REQUESTS_TOTAL

SUMMARY_LOGGER = "apps.api.ingest"
STATUS_CLASSES = ("2xx", "4xx", "5xx")
READING_RESULTS = ("accepted", "duplicate", "rejected")


def _samples(metric: MetricWrapperBase, suffix: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of the metric's samples whose name ends with ``suffix`` (``_total``, ``_sum``, …)."""
    return [
        (sample.labels, sample.value)
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith(suffix)
    ]


class IngestLogSummary:
    """Counts of the ingest route since the last :meth:`flush`, written as one INFO line by ``flush``."""

    def __init__(
        self, *, logger: logging.Logger | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger or logging.getLogger(SUMMARY_LOGGER)
        self._clock = clock
        self._statuses: dict[str, int] = {}
        self._duration_ms = 0.0
        self._last = self._counters()
        self._since = clock()

    def record(self, status: int | None, duration_ms: float) -> None:
        """One ingest request answered with ``status`` (None: no response, counted as 5xx)."""
        key = f"{status // 100}xx" if status is not None else "5xx"
        self._statuses[key] = self._statuses.get(key, 0) + 1
        self._duration_ms += duration_ms

    @staticmethod
    def _counters() -> dict[str, float]:
        counts: dict[str, float] = {}
        for labels, value in _samples(INGEST_READINGS_TOTAL, "_total"):
            counts[f"readings_{labels.get('result', '')}"] = value
        for labels, value in _samples(INGEST_REQUESTS_TOTAL, "_total"):
            counts[f"mode_{labels.get('mode', '')}"] = value
        return counts

    def figures(self) -> dict[str, Any]:
        """The counts since the last flush (without resetting them)."""
        now = self._counters()
        delta = {key: now.get(key, 0.0) - self._last.get(key, 0.0) for key in now.keys() | self._last.keys()}
        requests = sum(self._statuses.values())
        return {
            "interval_s": round(self._clock() - self._since, 1),
            "requests": requests,
            **{f"status_{c}": self._statuses.get(c, 0) for c in STATUS_CLASSES},
            **{f"readings_{r}": int(delta.get(f"readings_{r}", 0)) for r in READING_RESULTS},
            "replays": int(delta.get("mode_replay", 0)),
            "mean_ms": round(self._duration_ms / requests, 1) if requests else None,
        }

    def flush(self) -> dict[str, Any] | None:
        """Write the summary of the counts since the last flush (nothing when there was no request); reset."""
        figures = self.figures()
        self._last = self._counters()
        self._statuses = {}
        self._duration_ms = 0.0
        self._since = self._clock()
        if figures["requests"] == 0:
            return None
        mean = "" if figures["mean_ms"] is None else f", mean {figures['mean_ms']:.1f} ms"
        self.logger.info(
            "ingest in the last %.1f s: %d requests (2xx %d, 4xx %d, 5xx %d), readings %d accepted, "
            "%d duplicates, %d rejected, %d idempotent replays%s",
            figures["interval_s"],
            figures["requests"],
            figures["status_2xx"],
            figures["status_4xx"],
            figures["status_5xx"],
            figures["readings_accepted"],
            figures["readings_duplicate"],
            figures["readings_rejected"],
            figures["replays"],
            mean,
            extra=figures,
        )
        return figures

    async def run(
        self, interval_s: float, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> None:
        """Flush every ``interval_s`` until cancelled; a failed flush is logged and does not stop the loop."""
        while True:
            await sleep(interval_s)
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the summary must never take the API down
                self.logger.warning("ingest log summary failed: %s", type(exc).__name__)


__all__ = ["SUMMARY_LOGGER", "IngestLogSummary"]
